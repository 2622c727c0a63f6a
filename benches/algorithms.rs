//! ratecore's other algorithms, single key, against its own GCRA (governor has no
//! equivalent): fixed window, approximate sliding window, strict sliding window with
//! 10 / 60 / 600 sub-windows, the composite 5/s AND 20/min (two fixed windows), and a
//! full `Policy` check of the Uphold seed (`POST /password/forgot`: three keyed limits).
//!
//! The caller passes `now`. Two regimes per limiter:
//! - `allow`: simulated time advances on every check so that every check is admitted
//!   (16,000/s quotas checked every 100 µs of simulated time: windows roll, strict
//!   sub-windows fill and expire as in real traffic);
//! - `deny`: the quota is exhausted at a constant `now`, then every check is denied.
//!
//! The composite checks every 3 s of simulated time in `allow` (under both 5/s and
//! 20/min); the policy rotates over 1,000 (IP, account) pairs, 101 ms apart, so each pair
//! is checked every 101 s (under Uphold's 3 per 5 min per account).
//!
//! Run: `cargo bench --bench algorithms -- --warm-up-time 1 --measurement-time 3`.

mod common;

use std::hint::black_box;

use common::{observe, Target};
use ratecore::{
    Algorithm, Composite, FixedWindow, Gcra, Limiter, Quota, RateLimiter, SlidingWindowApprox,
    SlidingWindowStrict,
};

const GROUP: &str = "algorithms";
const STEP: u64 = 100_000; // 100 µs of simulated time per check in `allow`
const RATE: u64 = 16_000; // per second: under the approximate window's 16,383 maximum
const SUB_WINDOWS: [u32; 3] = [10, 60, 600];

fn quota() -> Quota {
    Quota::per_second(RATE).expect("valid quota")
}

/// Benches `limiter` in both regimes under `name`.
fn both<L: RateLimiter>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    make: impl Fn() -> L,
) {
    let limiter = make();
    let mut now = 1_000_000_000u64;
    group.bench_function(format!("allow/{name}"), |b| {
        b.iter(|| {
            now += STEP;
            let d = limiter.check(black_box(now), 1);
            debug_assert!(d.is_ok_and(|d| d.allowed));
            observe(d)
        });
    });

    let limiter = make();
    let now = 1_000_000_000u64;
    while limiter.check(now, 1).is_ok_and(|d| d.allowed) {}
    group.bench_function(format!("deny/{name}"), |b| {
        b.iter(|| observe(limiter.check(black_box(now), 1)));
    });
}

fn bench(c: &mut criterion::Criterion) {
    let mut group = c.benchmark_group(GROUP);
    both(&mut group, "gcra", || Gcra::new(quota()));
    both(&mut group, "fixed_window", || {
        FixedWindow::new(quota()).expect("valid")
    });
    both(&mut group, "sliding_approx", || {
        SlidingWindowApprox::new(quota()).expect("valid")
    });
    for n in SUB_WINDOWS {
        both(&mut group, &format!("sliding_strict_{n}"), || {
            SlidingWindowStrict::new(quota(), n).expect("valid")
        });
    }

    // Switch: 5 per second AND 20 per minute, fixed windows.
    let switch = || {
        Composite::new(vec![
            Limiter::new(Algorithm::FixedWindow, Quota::per_second(5).expect("valid"))
                .expect("valid"),
            Limiter::new(
                Algorithm::FixedWindow,
                Quota::per_minute(20).expect("valid"),
            )
            .expect("valid"),
        ])
        .expect("valid")
    };
    let composite = switch();
    let mut now = 1_000_000_000u64;
    group.bench_function("allow/composite_5s_20min", |b| {
        b.iter(|| {
            now += 3_000_000_000;
            observe(composite.check(black_box(now), 1))
        });
    });
    let composite = switch();
    let now = 1_000_000_000u64;
    while composite.check(now, 1).is_ok_and(|d| d.allowed) {}
    group.bench_function("deny/composite_5s_20min", |b| {
        b.iter(|| observe(composite.check(black_box(now), 1)));
    });

    // Uphold: POST /password/forgot — global 300/5 min per IP, 10/10 min per IP, 3/5 min
    // per account (fixed windows, keyed tables of 65,536 slots).
    let (policy, pairs) = common::uphold_policy_and_pairs();
    let request = |i: usize| common::uphold_request(&pairs, i);
    let mut now = 1_000_000_000u64;
    let mut i = 0usize;
    group.bench_function("allow/policy_uphold_password_forgot", |b| {
        b.iter(|| {
            now += 101_000_000;
            i += 1;
            let d = policy
                .check(&request(i), black_box(now), 1)
                .map(|d| d.allowed());
            debug_assert!(d == Ok(true));
            black_box(d)
        });
    });
    let (policy, _) = common::uphold_policy_and_pairs();
    let now = 1_000_000_000u64;
    let denied = request(0);
    while policy.check(&denied, now, 1).is_ok_and(|d| d.allowed()) {}
    group.bench_function("deny/policy_uphold_password_forgot", |b| {
        b.iter(|| {
            black_box(
                policy
                    .check(&denied, black_box(now), 1)
                    .map(|d| d.allowed()),
            )
        });
    });
    group.finish();
}

fn main() {
    let mut summary = common::run(|c, _| bench(c));
    let mut names: Vec<String> = ["fixed_window", "sliding_approx"]
        .iter()
        .map(ToString::to_string)
        .collect();
    names.extend(SUB_WINDOWS.iter().map(|n| format!("sliding_strict_{n}")));
    names.push("composite_5s_20min".into());
    names.push("policy_uphold_password_forgot".into());
    for regime in ["allow", "deny"] {
        let gcra = format!("{GROUP}/{regime}/gcra");
        if let Some(ns) = summary.median_ns(&gcra) {
            summary.line(format!("{regime}: gcra {ns:.2} ns (the 1.0 reference)"));
        }
        for name in &names {
            summary.ratio(
                &format!("{regime}: {name} vs ratecore gcra"),
                &format!("{GROUP}/{regime}/{name}"),
                &gcra,
                Target::None,
            );
        }
        // Strict window: cost per sub-window, least squares over 10 / 60 / 600.
        let points: Vec<(f64, f64)> = SUB_WINDOWS
            .iter()
            .filter_map(|&n| {
                summary
                    .median_ns(&format!("{GROUP}/{regime}/sliding_strict_{n}"))
                    .map(|t| (f64::from(n), t))
            })
            .collect();
        if points.len() == SUB_WINDOWS.len() {
            let k = points.len() as f64;
            let mx = points.iter().map(|p| p.0).sum::<f64>() / k;
            let my = points.iter().map(|p| p.1).sum::<f64>() / k;
            let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
            let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
            let slope = sxy / sxx;
            let intercept = my - slope * mx;
            summary.line(format!(
                "{regime}: strict window cost ≈ {intercept:.1} ns + {slope:.3} ns per sub-window \
                 (least squares over N = 10, 60, 600)"
            ));
        }
    }
    summary.print("ratecore algorithms, single key (ratio to ratecore's GCRA)");
}
