//! Single-key GCRA: ratecore's `Gcra::check` against governor's direct limiter, side by
//! side in one process.
//!
//! Variants, each under a quota that never denies (`allow`) and one that denies all but
//! the first check of each second (`deny`):
//! - `ratecore_caller_now`: the caller passes `now` (a constant, as a server passing its
//!   cached time would) — no clock read at all;
//! - `governor_quanta`: `RateLimiter::direct(q).check()` with governor's default clock
//!   (`QuantaClock`, quanta's TSC reading);
//! - `ratecore_quanta`: ratecore fed by the same clock read the same way as governor's
//!   `QuantaClock::now` (`clock.raw()` then `delta_as_nanos(0, raw)`);
//! - `ratecore_instant` / `governor_instant`: both reading `std::time::Instant`
//!   (ratecore's `clock::MonotonicClock`, governor's `clock::MonotonicClock`).
//!
//! Run: `cargo bench --bench single_key -- --warm-up-time 1 --measurement-time 3`.

mod common;

use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::Duration;

use common::{observe, Paired, Summary, Target};
use governor::clock::MonotonicClock as GovInstantClock;
use governor::{Quota as GovQuota, RateLimiter as GovLimiter};
use ratecore::clock::MonotonicClock;
use ratecore::{Gcra, Quota, RateLimiter};

const GROUP: &str = "single_key";

/// ratecore quota that never denies: T = 1 ns, burst 2^40 (a constant `now` admits 2^40
/// checks, far more than a run makes).
fn ratecore_allow() -> Quota {
    Quota::new(1 << 40, 1 << 40).expect("valid quota")
}

/// governor quota that never denies: T = 1 ns, burst u32::MAX (its clock advances faster
/// than 1 ns per check).
fn governor_allow() -> GovQuota {
    GovQuota::with_period(Duration::from_nanos(1))
        .expect("non-zero period")
        .allow_burst(NonZeroU32::MAX)
}

/// 1 per second, burst 1, for both: after the first check nearly every check is denied.
fn ratecore_deny() -> Quota {
    Quota::per_second(1).expect("valid quota")
}

fn governor_deny() -> GovQuota {
    GovQuota::per_second(NonZeroU32::new(1).expect("non-zero"))
}

fn bench(c: &mut criterion::Criterion, summary: &mut Summary) {
    let quick = !common::bench_mode();
    let (rounds, batch) = if quick { (3, 100) } else { (201, 50_000) };
    let mut group = c.benchmark_group(GROUP);
    for (regime, rq, gq) in [
        ("allow", ratecore_allow(), governor_allow()),
        ("deny", ratecore_deny(), governor_deny()),
    ] {
        // Interleaved rounds (common::Paired), each pair of libraries on fresh limiters.
        {
            let now = 1_000_000_000u64;
            let limiter = Gcra::new(rq);
            let governor = GovLimiter::direct(gq);
            let paired = Paired::measure(
                rounds,
                batch,
                |_| limiter.check(black_box(now), 1),
                |_| governor.check(),
            );
            summary.line(paired.line(
                &format!("{regime}: caller now vs governor default clock"),
                Target::AtMost(0.5),
            ));
            let limiter = Gcra::new(rq);
            let governor = GovLimiter::direct(gq);
            let clock = quanta::Clock::new();
            let paired = Paired::measure(
                rounds,
                batch,
                |_| limiter.check(clock.delta_as_nanos(0, clock.raw()), 1),
                |_| governor.check(),
            );
            summary.line(paired.line(
                &format!("{regime}: same clock (quanta TSC)"),
                Target::AtMost(0.9),
            ));
            let limiter = Gcra::new(rq);
            let governor = GovLimiter::direct_with_clock(gq, GovInstantClock);
            let clock = MonotonicClock::new();
            let paired = Paired::measure(
                rounds,
                batch,
                |_| limiter.check(clock.now(), 1),
                |_| governor.check(),
            );
            summary.line(paired.line(
                &format!("{regime}: same clock (std Instant)"),
                Target::AtMost(0.9),
            ));
        }
        let limiter = Gcra::new(rq);
        let now = 1_000_000_000u64;
        group.bench_function(format!("{regime}/ratecore_caller_now"), |b| {
            b.iter(|| observe(limiter.check(black_box(now), 1)));
        });

        let governor = GovLimiter::direct(gq);
        group.bench_function(format!("{regime}/governor_quanta"), |b| {
            b.iter(|| observe(governor.check()));
        });

        // The same two, keeping only the verdict (what a caller that reads nothing else
        // gets once the optimiser drops the unused fields).
        let limiter = Gcra::new(rq);
        group.bench_function(format!("{regime}/ratecore_caller_now_verdict"), |b| {
            b.iter(|| black_box(limiter.check(black_box(now), 1).is_ok_and(|d| d.allowed)));
        });
        let governor = GovLimiter::direct(gq);
        group.bench_function(format!("{regime}/governor_quanta_verdict"), |b| {
            b.iter(|| black_box(governor.check().is_ok()));
        });

        // The same clock governor's default reads, read the same way.
        let limiter = Gcra::new(rq);
        let clock = quanta::Clock::new();
        group.bench_function(format!("{regime}/ratecore_quanta"), |b| {
            b.iter(|| {
                let now = clock.delta_as_nanos(0, clock.raw());
                observe(limiter.check(now, 1))
            });
        });

        let limiter = Gcra::new(rq);
        let clock = MonotonicClock::new();
        group.bench_function(format!("{regime}/ratecore_instant"), |b| {
            b.iter(|| observe(limiter.check(clock.now(), 1)));
        });

        let governor = GovLimiter::direct_with_clock(gq, GovInstantClock);
        group.bench_function(format!("{regime}/governor_instant"), |b| {
            b.iter(|| observe(governor.check()));
        });
    }
    group.finish();
}

fn main() {
    let mut summary = common::run(bench);

    // (what, ratecore's benchmark, governor's, the most the time ratio may be)
    let pairs = [
        (
            "caller now vs governor default clock",
            "ratecore_caller_now",
            "governor_quanta",
            0.5,
        ),
        (
            "caller now vs governor, verdict only",
            "ratecore_caller_now_verdict",
            "governor_quanta_verdict",
            0.5,
        ),
        (
            "same clock (quanta TSC)",
            "ratecore_quanta",
            "governor_quanta",
            0.9,
        ),
        (
            "same clock (std Instant)",
            "ratecore_instant",
            "governor_instant",
            0.9,
        ),
    ];
    for regime in ["allow", "deny"] {
        let id = |name: &str| format!("{GROUP}/{regime}/{name}");
        for (what, ours, theirs, at_most) in pairs {
            summary.ratio(
                &format!("{regime}: {what}"),
                &id(ours),
                &id(theirs),
                Target::AtMost(at_most),
            );
        }
    }
    summary.print("single-key GCRA, ratecore / governor (time ratio, lower is better)");
}
