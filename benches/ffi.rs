//! C ABI overhead: the same check called from Rust directly and through the ffi crate's
//! exported `extern "C"` functions (handle validation, panic boundary, status code and the
//! `ratecore_decision` out-parameter included).
//!
//! - `limiter`: `Limiter::check` (GCRA) vs `ratecore_limiter_check`;
//! - `table`: `Table::check` with a byte key (1,000 live keys in random order) vs
//!   `ratecore_table_check`.
//!
//! The C functions are called through a function pointer passed through `black_box`, so
//! the optimiser cannot inline them into the loop: the call crosses the C ABI as a C
//! caller's would (a C program linking the static library makes the same direct call).
//!
//! Run: `cargo bench --bench ffi -- --warm-up-time 1 --measurement-time 3`.

mod common;

use std::hint::black_box;

use common::{observe, SplitMix64, Summary, Target};
use ratecore::{Algorithm, LimitSpec, Limiter, Quota, RateLimiter, Table, TableConfig};
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

fn bench(c: &mut criterion::Criterion) {
    let mut group = c.benchmark_group(GROUP);

    let limiter = Limiter::new(Algorithm::Gcra, rust_quota()).expect("valid");
    group.bench_function("limiter/rust", |b| {
        b.iter(|| observe(limiter.check(black_box(NOW), 1)));
    });

    let quota = c_quota();
    let mut handle: *mut ratecore_limiter = std::ptr::null_mut();
    // SAFETY: one readable quota; `handle` is valid for one pointer write.
    let status = unsafe { ratecore_limiter_new(&quota, 1, &mut handle) };
    assert_eq!(status, ratecore_status::Ok);
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
    let keys: Vec<Vec<u8>> = (0..KEYS)
        .map(|i| format!("198.51.100.{i}").into_bytes())
        .collect();
    let mut rng = SplitMix64::new(11);
    let order: Vec<usize> = (0..1 << 16)
        .map(|_| rng.below(KEYS as u64) as usize)
        .collect();

    let spec = LimitSpec {
        algorithm: Algorithm::Gcra,
        quota: rust_quota(),
    };
    let table = Table::new(TableConfig::new(2048, &[spec]).expect("valid")).expect("table");
    for key in &keys {
        table.check(key, NOW, 1).expect("check");
    }
    let mut i = 0usize;
    group.bench_function("table_1000_keys/rust", |b| {
        b.iter(|| {
            let key = &keys[order[i & 0xffff]];
            i = i.wrapping_add(1);
            observe(table.check(key, black_box(NOW), 1))
        });
    });

    let mut handle: *mut ratecore_table = std::ptr::null_mut();
    // SAFETY: one readable quota; `handle` is valid for one pointer write.
    let status = unsafe { ratecore_table_new(&quota, 1, 2048, 0, &mut handle) };
    assert_eq!(status, ratecore_status::Ok);
    let check: TableCheck = black_box(ratecore_table_check);
    for key in &keys {
        // SAFETY: live handle; `key` readable for its length; `out` valid for one write.
        let status = unsafe { check(handle, key.as_ptr(), key.len(), NOW, 1, &mut out) };
        assert_eq!(status, ratecore_status::Ok);
    }
    let mut i = 0usize;
    group.bench_function("table_1000_keys/c_abi", |b| {
        b.iter(|| {
            let key = &keys[order[i & 0xffff]];
            i = i.wrapping_add(1);
            // SAFETY: as above.
            let status =
                unsafe { check(handle, key.as_ptr(), key.len(), black_box(NOW), 1, &mut out) };
            black_box((status, &out));
        });
    });
    // SAFETY: a live handle no longer used.
    unsafe { ratecore_table_free(handle) };
    group.finish();
}

fn main() {
    let mut summary = Summary::start();
    let mut c = common::criterion();
    bench(&mut c);
    c.final_summary();
    for case in ["limiter", "table_1000_keys"] {
        let rust = format!("{GROUP}/{case}/rust");
        let c_abi = format!("{GROUP}/{case}/c_abi");
        if let (Some(r), Some(a)) = (summary.median_ns(&rust), summary.median_ns(&c_abi)) {
            summary.line(format!(
                "{case}: C ABI overhead {:.2} ns per call ({:.2} ns vs {:.2} ns)",
                a - r,
                a,
                r
            ));
        }
        summary.ratio(
            &format!("{case}: C ABI / Rust"),
            &c_abi,
            &rust,
            Target::None,
        );
    }
    summary.print("C ABI call vs Rust call");
}
