//! Keyed GCRA at 1,000 / 100,000 / 1,000,000 / 10,000,000 live keys, random access order:
//! ratecore's `Table::check_key(&u64, now, 1)` against governor's
//! `RateLimiter::keyed(q).check_key(&u64)` (its default DashMap store and quanta clock),
//! side by side in one process.
//!
//! - Keys are the integers `0..n`; every key is checked once before timing, so all are
//!   live (the quota never denies and never lets a key come to rest: T = 1 ns, huge
//!   burst, constant `now` for ratecore).
//! - The access order is a pre-generated sequence of 2^22 uniformly random keys (SplitMix64,
//!   fixed seed), read cyclically; both libraries read the same sequence.
//! - ratecore's table capacity is `next_pow2(ceil(n / 0.75))` slots (the table rounds up to
//!   a power of two), i.e. a load between 0.38 and 0.75; the load is printed.
//! - `ratecore_quanta` also reads governor's clock per check (same-clock comparison).
//! - Besides criterion's medians, the summary prints *paired* ratios (`common::Paired`):
//!   interleaved rounds of a few milliseconds per library, the median of the per-round
//!   ratios. Both structures are alive for the whole size, so they share the machine's
//!   cache and memory pressure alike.
//!
//! Run: `cargo bench --bench keyed -- --warm-up-time 1 --measurement-time 3`.
//! Set `RATECORE_BENCH_KEYED_SIZES=1000,100000` to run only some sizes.

mod common;

use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use common::{observe, Paired, SplitMix64, Summary, Target};
use governor::{Quota as GovQuota, RateLimiter as GovLimiter};
use ratecore::{Algorithm, LimitSpec, Quota, Table, TableConfig};

const GROUP: &str = "keyed";
const SEQUENCE: usize = 1 << 22;
const DEFAULT_SIZES: [u64; 4] = [1_000, 100_000, 1_000_000, 10_000_000];

/// The design load used to size the table: capacity = next_pow2(ceil(keys / LOAD)).
const LOAD: f64 = 0.75;

fn sizes() -> Vec<u64> {
    match std::env::var("RATECORE_BENCH_KEYED_SIZES") {
        Ok(list) => list
            .split(',')
            .filter_map(|s| s.trim().replace('_', "").parse().ok())
            .collect(),
        Err(_) => DEFAULT_SIZES.to_vec(),
    }
}

fn capacity_for(keys: u64) -> u64 {
    ((keys as f64 / LOAD).ceil() as u64)
        .next_power_of_two()
        .max(8)
}

fn bench(c: &mut criterion::Criterion, summary: &mut Summary) {
    let quick = !common::bench_mode();
    let mut group = c.benchmark_group(GROUP);
    let now = 1_000_000_000u64;
    for keys in sizes() {
        // In smoke-test mode (no `--bench`) only exercise the smallest size.
        if quick && keys > 1_000 {
            continue;
        }
        let mut rng = SplitMix64::new(0x5eed ^ keys);
        let sequence: Vec<u64> = (0..SEQUENCE).map(|_| rng.below(keys)).collect();

        // ratecore
        let quota = Quota::new(1 << 40, 1 << 40).expect("valid quota");
        let spec = LimitSpec {
            algorithm: Algorithm::Gcra,
            quota,
        };
        let capacity = capacity_for(keys);
        let config = TableConfig::new(capacity, &[spec]).expect("valid table");
        let started = Instant::now();
        let table = Table::new(config).expect("table");
        for key in 0..keys {
            let d = table.check_key(&key, now, 1).expect("check");
            assert!(d.allowed);
        }
        let stats = table.stats();
        summary.line(format!(
            "keys {keys}: ratecore capacity {} (load {:.3}), filled in {:.2?}; occupied {}, \
             evictions {}, full neighbourhoods {}",
            config.capacity(),
            keys as f64 / config.capacity() as f64,
            started.elapsed(),
            stats.occupied,
            stats.evictions,
            stats.full_neighbourhoods,
        ));

        // governor, filled the same way and alive at the same time, so the paired rounds
        // below can alternate between the two.
        let gq = GovQuota::with_period(Duration::from_nanos(1))
            .expect("non-zero period")
            .allow_burst(NonZeroU32::MAX);
        let started = Instant::now();
        let governor = GovLimiter::keyed(gq);
        for key in 0..keys {
            assert!(governor.check_key(&key).is_ok());
        }
        summary.line(format!(
            "keys {keys}: governor holds {} keys, filled in {:.2?}",
            governor.len(),
            started.elapsed()
        ));

        let mask = SEQUENCE - 1;
        let clock = quanta::Clock::new();
        let base = clock.delta_as_nanos(0, clock.raw());
        // Interleaved rounds first (common::Paired): the ratios least moved by the host.
        // A batch is a few milliseconds at every size.
        let (rounds, batch) = match (quick, keys) {
            (true, _) => (3, 100),
            (false, k) if k <= 100_000 => (201, 20_000),
            _ => (101, 5_000),
        };
        let paired = Paired::measure(
            rounds,
            batch,
            |i| table.check_key(&sequence[i & mask], black_box(now), 1),
            |i| governor.check_key(&sequence[i & mask]),
        );
        summary.line(paired.line(
            &format!("{keys} keys: caller now vs governor"),
            Target::AtMost(0.5),
        ));
        let paired = Paired::measure(
            rounds,
            batch,
            |i| {
                let t = clock.delta_as_nanos(0, clock.raw()) - base + now;
                table.check_key(&sequence[i & mask], t, 1)
            },
            |i| governor.check_key(&sequence[i & mask]),
        );
        summary.line(paired.line(&format!("{keys} keys: same clock (quanta)"), Target::None));

        let mut i = 0usize;
        group.bench_function(format!("{keys}/ratecore_caller_now"), |b| {
            b.iter(|| {
                let key = sequence[i & mask];
                i = i.wrapping_add(1);
                observe(table.check_key(&key, black_box(now), 1))
            });
        });

        let mut i = 0usize;
        group.bench_function(format!("{keys}/ratecore_quanta"), |b| {
            b.iter(|| {
                let key = sequence[i & mask];
                i = i.wrapping_add(1);
                // Never earlier than the fill's `now`, so no key looks at rest.
                let t = clock.delta_as_nanos(0, clock.raw()) - base + now;
                observe(table.check_key(&key, t, 1))
            });
        });

        let mut i = 0usize;
        group.bench_function(format!("{keys}/governor_quanta"), |b| {
            b.iter(|| {
                let key = sequence[i & mask];
                i = i.wrapping_add(1);
                observe(governor.check_key(&key))
            });
        });
        drop(table);
        drop(governor);
    }
    // The floor under every admitting check: one uncontended load + compare-exchange on
    // the word a check updates. ratecore's table slots are 128-bit (fingerprint and state
    // change together); governor's and ratecore's single-key states are 64-bit. The
    // 128-bit case is portable-atomic's, as a default build gets it (instructions chosen
    // at run time, through a function pointer); the table's own slot operations are the
    // same instructions inline (`src/table/slot_atomics.rs`; the figures table in
    // benches/README.md has the measured floor). It shows how much of a keyed check no
    // probing change can remove.
    let word = std::sync::atomic::AtomicU64::new(0);
    group.bench_function("floor/cas_u64", |b| {
        b.iter(|| {
            let v = word.load(std::sync::atomic::Ordering::Acquire);
            black_box(word.compare_exchange(
                v,
                v + 1,
                std::sync::atomic::Ordering::AcqRel,
                std::sync::atomic::Ordering::Acquire,
            ))
        });
    });
    let slot = portable_atomic::AtomicU128::new(0);
    group.bench_function("floor/cas_u128", |b| {
        b.iter(|| {
            let v = slot.load(portable_atomic::Ordering::SeqCst);
            black_box(slot.compare_exchange(
                v,
                v + 1,
                portable_atomic::Ordering::SeqCst,
                portable_atomic::Ordering::SeqCst,
            ))
        });
    });
    group.finish();
}

fn main() {
    let mut summary = common::run(bench);
    for keys in sizes() {
        let id = |name: &str| format!("{GROUP}/{keys}/{name}");
        summary.ratio(
            &format!("{keys} keys: caller now vs governor"),
            &id("ratecore_caller_now"),
            &id("governor_quanta"),
            Target::AtMost(0.5),
        );
        summary.ratio(
            &format!("{keys} keys: same clock (quanta)"),
            &id("ratecore_quanta"),
            &id("governor_quanta"),
            Target::None,
        );
    }
    summary.ratio(
        "floor: 128-bit slot CAS vs 64-bit CAS",
        &format!("{GROUP}/floor/cas_u128"),
        &format!("{GROUP}/floor/cas_u64"),
        Target::None,
    );
    summary.print("keyed GCRA, ratecore / governor (time ratio, lower is better)");
}
