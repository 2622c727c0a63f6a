//! C ABI overhead: the same check called from Rust directly and through the ffi crate's
//! exported `extern "C"` functions (handle validation, panic boundary, status code and the
//! `ratecore_decision` out-parameter included).
//!
//! - `limiter`: `Limiter::check` (GCRA) vs `ratecore_limiter_check`;
//! - `table`: `Table::check` with a byte key (1,000 live keys in random order) vs
//!   `ratecore_table_check`.
//!
//! Two callers of the C ABI are measured:
//!
//! - `c_abi`: from Rust, through a function pointer passed through `black_box`, so the
//!   optimiser cannot inline the exported function into the loop;
//! - `c_loop`: from C. `benches/c_caller/c_calls.c`, compiled by the platform's C compiler
//!   at -O2, loops over `ratecore_limiter_check` / `ratecore_table_check` as declared in
//!   `include/ratecore.h` and reads each decision's `allowed`, as a C server does. It is
//!   timed against `rust_loop`, the same loop written in Rust over the Rust API (the
//!   check inlined, as a Rust caller gets it), both with criterion (`iter_custom`) and in
//!   interleaved paired rounds.
//!
//! Run: `cargo bench --bench ffi -- --warm-up-time 1 --measurement-time 3`.

mod common;

use std::hint::black_box;

use common::{bench_mode, observe, Paired, SplitMix64, Summary, Target};
use ratecore::table::OwnedTable;
use ratecore::{Algorithm, LimitSpec, Limiter, Quota, RateLimiter, Table, TableConfig};
use ratecore_bench_c_caller::{ratecore_bench_c_limiter_checks, ratecore_bench_c_table_checks};
use ratecore_ffi::{
    ratecore_decision, ratecore_limiter, ratecore_limiter_check, ratecore_limiter_free,
    ratecore_limiter_new, ratecore_quota, ratecore_status, ratecore_table, ratecore_table_check,
    ratecore_table_free, ratecore_table_new,
};

const GROUP: &str = "ffi";
const NOW: u64 = 1_000_000_000;
const KEYS: usize = 1_000;

type LimiterCheck = unsafe extern "C" fn(
    *const ratecore_limiter,
    u64,
    u64,
    *mut ratecore_decision,
) -> ratecore_status;
type TableCheck = unsafe extern "C" fn(
    *const ratecore_table,
    *const u8,
    usize,
    u64,
    u64,
    *mut ratecore_decision,
) -> ratecore_status;

/// T = 1 ns, burst 2^40: never denies at a constant `now` during a run.
fn c_quota() -> ratecore_quota {
    ratecore_quota {
        limit: 1 << 40,
        period_ns: 1 << 40,
        burst: 0,
        algorithm: Algorithm::Gcra.code(),
        sub_windows: 0,
    }
}

fn rust_quota() -> Quota {
    Quota::new(1 << 40, 1 << 40).expect("valid quota")
}

/// A C limiter of `c_quota()`.
fn c_limiter_new() -> *mut ratecore_limiter {
    let quota = c_quota();
    let mut handle: *mut ratecore_limiter = std::ptr::null_mut();
    // SAFETY: one readable quota; `handle` is valid for one pointer write.
    let status = unsafe { ratecore_limiter_new(&quota, 1, &mut handle) };
    assert_eq!(status, ratecore_status::Ok);
    handle
}

/// A C table of 2048 slots under `c_quota()`.
fn c_table_new() -> *mut ratecore_table {
    let quota = c_quota();
    let mut handle: *mut ratecore_table = std::ptr::null_mut();
    // SAFETY: one readable quota; `handle` is valid for one pointer write.
    let status = unsafe { ratecore_table_new(&quota, 1, 2048, 0, &mut handle) };
    assert_eq!(status, ratecore_status::Ok);
    handle
}

/// The Rust table `c_table_new` makes in C, with every key of `keys` live in it.
fn warm_rust_table(keys: &CKeys) -> OwnedTable {
    let spec = LimitSpec {
        algorithm: Algorithm::Gcra,
        quota: rust_quota(),
    };
    let table = Table::new(TableConfig::new(2048, &[spec]).expect("valid")).expect("table");
    for key in &keys.keys {
        assert!(
            table.check(key, NOW, 1).expect("check").allowed,
            "warm-up admitted"
        );
    }
    table
}

/// Byte keys in the layout the C loop takes them: pointers, lengths, and a random access
/// order of 2^16 indices.
struct CKeys {
    keys: Vec<Vec<u8>>,
    pointers: Vec<*const u8>,
    lengths: Vec<usize>,
    order: Vec<u32>,
}

impl CKeys {
    fn new() -> Self {
        let keys: Vec<Vec<u8>> = (0..KEYS)
            .map(|i| format!("198.51.100.{i}").into_bytes())
            .collect();
        let mut rng = SplitMix64::new(11);
        let order = (0..1 << 16)
            .map(|_| rng.below(KEYS as u64) as u32)
            .collect();
        Self {
            pointers: keys.iter().map(|k| k.as_ptr()).collect(),
            lengths: keys.iter().map(Vec::len).collect(),
            keys,
            order,
        }
    }

    fn key(&self, call: usize) -> &[u8] {
        &self.keys[self.order[call & (ORDER_LEN - 1)] as usize]
    }
}

const ORDER_LEN: usize = 1 << 16;

/// The Rust twin of `ratecore_bench_c_limiter_checks`: `calls` checks, admitted counted.
/// The result is observed in place (`black_box(&result)`), so every field is computed,
/// as for the C caller, who gets every field written.
#[inline(never)]
fn rust_limiter_checks(limiter: &Limiter, now: u64, calls: u64) -> u64 {
    let mut admitted = 0;
    for _ in 0..calls {
        // Every field observed, as the C caller receives every field.
        let result = limiter.check(black_box(now), 1);
        black_box(&result);
        if matches!(result, Ok(d) if d.allowed) {
            admitted += 1;
        }
    }
    admitted
}

/// The Rust twin of `ratecore_bench_c_table_checks`.
#[inline(never)]
fn rust_table_checks(table: &OwnedTable, keys: &CKeys, start: usize, now: u64, calls: u64) -> u64 {
    let mut admitted = 0;
    for i in 0..calls as usize {
        let result = table.check(keys.key(start + i), black_box(now), 1);
        black_box(&result);
        if matches!(result, Ok(d) if d.allowed) {
            admitted += 1;
        }
    }
    admitted
}

/// `calls` checks of the C limiter handle from the C loop.
fn c_limiter_checks(handle: *const ratecore_limiter, now: u64, calls: u64) -> u64 {
    // SAFETY: `handle` is a live limiter handle for the whole bench.
    unsafe { ratecore_bench_c_limiter_checks(handle, now, calls) }
}

/// `calls` checks of the C table handle from the C loop, keys from `start` on.
fn c_table_checks(
    handle: *const ratecore_table,
    keys: &CKeys,
    start: usize,
    now: u64,
    calls: u64,
) -> u64 {
    // SAFETY: `handle` is live; `order` holds ORDER_LEN indices below KEYS, and every
    // pointer/length pair describes one of `keys.keys`, alive as long as `keys`.
    unsafe {
        ratecore_bench_c_table_checks(
            handle,
            keys.pointers.as_ptr(),
            keys.lengths.as_ptr(),
            keys.order.as_ptr(),
            ORDER_LEN - 1,
            start,
            now,
            calls,
        )
    }
}

/// Seconds taken by `calls` calls of `run`, its result black-boxed.
fn seconds(calls: u64, run: impl FnOnce(u64) -> u64) -> f64 {
    let started = std::time::Instant::now();
    black_box(run(calls));
    started.elapsed().as_secs_f64()
}

/// Paired rounds: the C loop against the Rust loop (ratio = C caller's time / Rust's).
fn paired_c_vs_rust(
    mut c_batch: impl FnMut(u64) -> u64,
    mut rust_batch: impl FnMut(u64) -> u64,
) -> Paired {
    let (rounds, batch) = if bench_mode() {
        (101, 100_000)
    } else {
        (3, 1_000)
    };
    Paired::interleave(
        rounds,
        batch,
        || seconds(batch as u64, &mut c_batch),
        || seconds(batch as u64, &mut rust_batch),
    )
}

/// The C loop vs the Rust loop with criterion (`iter_custom`) and in paired rounds;
/// returns the paired summary lines.
fn bench_loops(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
) -> Vec<String> {
    let mut lines = Vec::new();
    let limiter = Limiter::new(Algorithm::Gcra, rust_quota()).expect("valid");
    let c_limiter = c_limiter_new();
    assert_eq!(
        c_limiter_checks(c_limiter, NOW, 10),
        10,
        "the C loop admits"
    );
    assert_eq!(
        rust_limiter_checks(&limiter, NOW, 10),
        10,
        "the Rust loop admits"
    );

    group.bench_function("limiter/rust_loop", |b| {
        b.iter_custom(|iters| {
            std::time::Duration::from_secs_f64(seconds(iters, |n| {
                rust_limiter_checks(&limiter, NOW, n)
            }))
        });
    });
    group.bench_function("limiter/c_loop", |b| {
        b.iter_custom(|iters| {
            std::time::Duration::from_secs_f64(seconds(iters, |n| {
                c_limiter_checks(c_limiter, NOW, n)
            }))
        });
    });
    let paired = paired_c_vs_rust(
        |n| c_limiter_checks(c_limiter, NOW, n),
        |n| rust_limiter_checks(&limiter, NOW, n),
    );
    lines.push(paired.line("limiter: C loop / Rust loop", Target::None));
    // SAFETY: a live handle no longer used.
    unsafe { ratecore_limiter_free(c_limiter) };

    // Every key live in both tables before timing.
    let keys = CKeys::new();
    let table = warm_rust_table(&keys);
    let c_table = c_table_new();
    let all = c_table_checks(c_table, &keys, 0, NOW, 4 * ORDER_LEN as u64);
    assert_eq!(all, 4 * ORDER_LEN as u64, "the C table loop admits");

    let (mut rust_at, mut c_at) = (0usize, 0usize);
    group.bench_function("table_1000_keys/rust_loop", |b| {
        b.iter_custom(|iters| {
            let started = rust_at;
            rust_at = rust_at.wrapping_add(iters as usize);
            std::time::Duration::from_secs_f64(seconds(iters, |n| {
                rust_table_checks(&table, &keys, started, NOW, n)
            }))
        });
    });
    group.bench_function("table_1000_keys/c_loop", |b| {
        b.iter_custom(|iters| {
            let started = c_at;
            c_at = c_at.wrapping_add(iters as usize);
            std::time::Duration::from_secs_f64(seconds(iters, |n| {
                c_table_checks(c_table, &keys, started, NOW, n)
            }))
        });
    });
    let paired = paired_c_vs_rust(
        |n| {
            let started = c_at;
            c_at = c_at.wrapping_add(n as usize);
            c_table_checks(c_table, &keys, started, NOW, n)
        },
        |n| {
            let started = rust_at;
            rust_at = rust_at.wrapping_add(n as usize);
            rust_table_checks(&table, &keys, started, NOW, n)
        },
    );
    lines.push(paired.line("table_1000_keys: C loop / Rust loop", Target::None));
    // SAFETY: a live handle no longer used.
    unsafe { ratecore_table_free(c_table) };
    lines
}

fn bench(c: &mut criterion::Criterion) -> Vec<String> {
    let mut group = c.benchmark_group(GROUP);

    let limiter = Limiter::new(Algorithm::Gcra, rust_quota()).expect("valid");
    group.bench_function("limiter/rust", |b| {
        b.iter(|| observe(limiter.check(black_box(NOW), 1)));
    });

    let handle = c_limiter_new();
    let check: LimiterCheck = black_box(ratecore_limiter_check);
    let mut out = ratecore_decision::default();
    group.bench_function("limiter/c_abi", |b| {
        b.iter(|| {
            // SAFETY: `handle` is live until freed below; `out` is valid for one write.
            let status = unsafe { check(handle, black_box(NOW), 1, &mut out) };
            black_box((status, &out));
        });
    });
    // SAFETY: a live handle no longer used.
    unsafe { ratecore_limiter_free(handle) };

    // Byte keys, as the C ABI takes them.
    let keys = CKeys::new();
    let table = warm_rust_table(&keys);
    let mut i = 0usize;
    group.bench_function("table_1000_keys/rust", |b| {
        b.iter(|| {
            let key = keys.key(i);
            i = i.wrapping_add(1);
            observe(table.check(key, black_box(NOW), 1))
        });
    });

    let handle = c_table_new();
    let check: TableCheck = black_box(ratecore_table_check);
    for key in &keys.keys {
        // SAFETY: live handle; `key` readable for its length; `out` valid for one write.
        let status = unsafe { check(handle, key.as_ptr(), key.len(), NOW, 1, &mut out) };
        assert_eq!(status, ratecore_status::Ok);
    }
    let mut i = 0usize;
    group.bench_function("table_1000_keys/c_abi", |b| {
        b.iter(|| {
            let key = keys.key(i);
            i = i.wrapping_add(1);
            // SAFETY: as above.
            let status =
                unsafe { check(handle, key.as_ptr(), key.len(), black_box(NOW), 1, &mut out) };
            black_box((status, &out));
        });
    });
    // SAFETY: a live handle no longer used.
    unsafe { ratecore_table_free(handle) };

    let paired = bench_loops(&mut group);
    group.finish();
    paired
}

fn main() {
    let mut summary = Summary::start();
    let mut c = common::criterion();
    let paired = bench(&mut c);
    c.final_summary();
    for case in ["limiter", "table_1000_keys"] {
        // (Rust's benchmark, the C one, what the overhead is, the ratio's name, after the
        // Rust figure)
        let pairs = [
            ("rust", "c_abi", "C ABI overhead", "C ABI / Rust", ""),
            (
                "rust_loop",
                "c_loop",
                "called from C, overhead",
                "C loop / Rust loop",
                " in Rust",
            ),
        ];
        for (rust, c_side, overhead, ratio, in_rust) in pairs {
            let rust = format!("{GROUP}/{case}/{rust}");
            let c_side = format!("{GROUP}/{case}/{c_side}");
            if let (Some(r), Some(c)) = (summary.median_ns(&rust), summary.median_ns(&c_side)) {
                summary.line(format!(
                    "{case}: {overhead} {:.2} ns per call ({:.2} ns vs {:.2} ns{in_rust})",
                    c - r,
                    c,
                    r
                ));
            }
            summary.ratio(&format!("{case}: {ratio}"), &c_side, &rust, Target::None);
        }
    }
    for line in paired {
        summary.line(line);
    }
    summary.print("C ABI call vs Rust call");
}
