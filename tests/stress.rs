//! Multi-thread stress tests: 2, 4 and 8 threads hammering *one* limiter per algorithm.
//!
//! Frozen-clock rounds: all threads start a round together (a barrier) at one `now` and
//! make twice the quota's worth of checks between them; a new round moves far enough
//! ahead that the previous one is forgotten. Per round:
//!
//! - single-word limiters (GCRA, fixed window, approximate window) admit *exactly* the
//!   quota — never more, and, their CAS loops being lock-free and exact, never fewer;
//! - the strict window and composites may deny spuriously under contention
//!   (docs/algorithms.md, "Algorithms" and "Composite limits"), so they admit *at most*
//!   the quota, and a sequential follow-up agrees with the count: `peek` reports
//!   `limit − admitted` remaining, and exactly that many further checks are admitted (a
//!   give-back left nothing behind, and nothing was lost).
//!
//! Advancing clock (strict window): threads bump a shared `AtomicU64` clock and check at
//! the time they read (or a little earlier); admissions are recorded with bounds on their
//! effective time and merged, and no interval of length `period` may certainly hold more
//! than `limit`. These two caught an over-admission an earlier strict window had
//! (reproduced minimally in `tests/loom.rs`) and now guard its fix.
//!
//! Sizes: millions of checks in release builds; under `cfg(debug_assertions)` far fewer,
//! so a debug `cargo test` stays quick. `RATECORE_STRESS_SCALE` (a float, default 1)
//! multiplies the number of rounds / checks either way.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};
use std::thread;

use ratecore::{
    Algorithm, Composite, FixedWindow, Gcra, Limiter, Quota, RateLimiter, SlidingWindowApprox,
    SlidingWindowStrict,
};
use support::XorShift;

const SECOND: u64 = 1_000_000_000;

/// Thread counts every frozen-clock stress runs with.
const THREADS: [usize; 3] = [2, 4, 8];

/// The quota of the frozen-clock rounds (per second).
const LIMIT: u64 = if cfg!(debug_assertions) {
    1_000
} else {
    10_000
};

fn scale() -> f64 {
    std::env::var("RATECORE_STRESS_SCALE")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(1.0)
}

/// `release` in release builds, `debug` in debug builds, times the scale; at least 1.
fn scaled(release: u64, debug: u64) -> u64 {
    let base = if cfg!(debug_assertions) {
        debug
    } else {
        release
    };
    ((base as f64 * scale()).round() as u64).max(1)
}

/// Rounds per (algorithm, thread count): each round makes `2 × LIMIT` checks, so release
/// builds run 100 × 20 000 = 2 M checks per thread count.
fn rounds() -> u64 {
    scaled(100, 5)
}

/// The `now` of round `r`: mid-window, three periods after the previous round, so every
/// algorithm has forgotten it (GCRA is replenished, both approximate windows have rolled
/// away, every strict sub-window is released).
fn round_time(r: u64, period: u64) -> u64 {
    (3 * r + 5) * period + period / 2
}

/// What a round must admit.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Exactly `limit`.
    Exact,
    /// At most `limit`; spurious denials are allowed.
    AtMost,
}

/// Runs the frozen-clock rounds on `limiter` with `threads` threads. After each round one
/// thread calls `verify(now, admitted)`, which returns an error message on failure (all
/// threads then stop, so a failure never deadlocks the barrier).
fn frozen_rounds<L, V>(
    name: &str,
    limiter: &L,
    threads: usize,
    limit: u64,
    period: u64,
    expect: Expect,
    verify: V,
) where
    L: RateLimiter + Sync,
    V: Fn(u64, u64) -> Result<(), String> + Sync,
{
    let rounds = rounds();
    let per_thread = (2 * limit).div_ceil(threads as u64);
    let barrier = Barrier::new(threads);
    let admitted: Vec<AtomicU64> = (0..rounds).map(|_| AtomicU64::new(0)).collect();
    let failed = AtomicBool::new(false);
    let failure = Mutex::new(None::<String>);
    thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                for r in 0..rounds {
                    let now = round_time(r, period);
                    barrier.wait();
                    if failed.load(Ordering::SeqCst) {
                        return;
                    }
                    let mut mine = 0;
                    for _ in 0..per_thread {
                        if limiter.check(now, 1).unwrap().allowed {
                            mine += 1;
                        }
                    }
                    admitted[r as usize].fetch_add(mine, Ordering::SeqCst);
                    if barrier.wait().is_leader() {
                        let total = admitted[r as usize].load(Ordering::SeqCst);
                        let outcome = match expect {
                            Expect::Exact if total != limit => {
                                Err(format!("admitted {total}, expected exactly {limit}"))
                            }
                            Expect::AtMost if total > limit => {
                                Err(format!("over-admission: {total} > {limit}"))
                            }
                            _ => verify(now, total),
                        };
                        if let Err(message) = outcome {
                            *failure.lock().unwrap() =
                                Some(format!("{name}, {threads} threads, round {r}: {message}"));
                            failed.store(true, Ordering::SeqCst);
                        }
                    }
                }
            });
        }
    });
    if let Some(message) = failure.into_inner().unwrap() {
        panic!("{message}");
    }
}

/// What a composite's `limit` (named `name`) shows remaining at `now` after `n`
/// admissions (a cost-0 peek), if `ok` accepts it; otherwise why not.
fn remaining(
    limit: &Limiter,
    name: &str,
    now: u64,
    n: u64,
    ok: impl Fn(u64) -> bool,
) -> Result<u64, String> {
    let remaining = limit.peek(now, 0).unwrap().remaining;
    if ok(remaining) {
        Ok(remaining)
    } else {
        Err(format!("{name} shows {remaining} remaining after {n}"))
    }
}

/// The sequential follow-up: `peek` reports `limit − admitted` remaining, and exactly that
/// many further checks are admitted, then one is denied.
fn follow_up(
    limiter: &impl RateLimiter,
    now: u64,
    limit: u64,
    admitted: u64,
) -> Result<(), String> {
    let remaining = limiter.peek(now, 0).unwrap().remaining;
    if remaining != limit - admitted {
        return Err(format!(
            "peek says {remaining} remaining after {admitted} of {limit} admitted"
        ));
    }
    for i in 0..remaining {
        if !limiter.check(now, 1).unwrap().allowed {
            return Err(format!(
                "sequential check {i} of {remaining} denied after {admitted} admitted"
            ));
        }
    }
    if limiter.check(now, 1).unwrap().allowed {
        return Err(format!(
            "admitted beyond the limit after {admitted} + {remaining}"
        ));
    }
    Ok(())
}

fn per_second(limit: u64) -> Quota {
    Quota::per_second(limit).unwrap()
}

/// Frozen-clock rounds at every thread count, each on a fresh limiter from `make` with
/// [`LIMIT`] per second, which must admit exactly its limit per round.
fn exact_frozen_rounds<L: RateLimiter + Sync>(name: &str, make: impl Fn() -> L) {
    for threads in THREADS {
        let limiter = make();
        frozen_rounds(
            name,
            &limiter,
            threads,
            LIMIT,
            SECOND,
            Expect::Exact,
            |now, n| follow_up(&limiter, now, LIMIT, n),
        );
    }
}

#[test]
fn gcra_frozen_clock_admits_exactly_the_burst() {
    exact_frozen_rounds("GCRA", || Gcra::new(per_second(LIMIT)));
}

#[test]
fn fixed_window_frozen_clock_admits_exactly_the_limit() {
    exact_frozen_rounds("fixed window", || {
        FixedWindow::new(per_second(LIMIT)).unwrap()
    });
}

#[test]
fn approx_window_frozen_clock_admits_exactly_the_limit() {
    exact_frozen_rounds("approximate window", || {
        SlidingWindowApprox::new(per_second(LIMIT)).unwrap()
    });
}

#[test]
fn strict_window_frozen_clock_never_over_admits() {
    for threads in THREADS {
        let limiter = SlidingWindowStrict::new(per_second(LIMIT), 60).unwrap();
        frozen_rounds(
            "strict window",
            &limiter,
            threads,
            LIMIT,
            SECOND,
            Expect::AtMost,
            |now, n| follow_up(&limiter, now, LIMIT, n),
        );
    }
}

#[test]
fn limiter_enum_frozen_clock() {
    // The same through the run-time-chosen `Limiter` (dispatch must not change anything).
    for (algorithm, expect) in [
        (Algorithm::Gcra, Expect::Exact),
        (Algorithm::FixedWindow, Expect::Exact),
        (Algorithm::SlidingWindowApprox, Expect::Exact),
        (
            Algorithm::SlidingWindowStrict { sub_windows: 60 },
            Expect::AtMost,
        ),
    ] {
        let limiter = Limiter::new(algorithm, per_second(LIMIT)).unwrap();
        let name = format!("Limiter::{algorithm:?}");
        frozen_rounds(&name, &limiter, 4, LIMIT, SECOND, expect, |now, n| {
            follow_up(&limiter, now, LIMIT, n)
        });
    }
}

#[test]
fn composite_of_windows_never_over_admits_and_gives_back_exactly() {
    // Fixed window and strict window bind at LIMIT; the approximate window (1.5 × LIMIT:
    // its two counters and window number must fit one word) is charged on every admission
    // and given back on every late denial. Window give-backs are exact, so after each
    // round every limit shows exactly the composite's admissions.
    const APPROX: u64 = LIMIT + LIMIT / 2;
    for threads in THREADS {
        let composite = Composite::new(vec![
            Limiter::new(Algorithm::SlidingWindowApprox, per_second(APPROX)).unwrap(),
            Limiter::new(Algorithm::FixedWindow, per_second(LIMIT)).unwrap(),
            Limiter::new(
                Algorithm::SlidingWindowStrict { sub_windows: 60 },
                per_second(LIMIT),
            )
            .unwrap(),
        ])
        .unwrap();
        frozen_rounds(
            "composite(approx, fixed, strict)",
            &composite,
            threads,
            LIMIT,
            SECOND,
            Expect::AtMost,
            |now, n| {
                let [approx, fixed, strict] = composite.limits() else {
                    unreachable!("three limits")
                };
                remaining(approx, "approximate window", now, n, |r| r == APPROX - n)?;
                remaining(fixed, "fixed window", now, n, |r| r == LIMIT - n)?;
                remaining(strict, "strict window", now, n, |r| r == LIMIT - n)?;
                follow_up(&composite, now, LIMIT, n)
            },
        );
    }
}

#[test]
fn composite_with_gcra_never_over_admits() {
    // GCRA (burst LIMIT) first, fixed window (LIMIT / 2) second: every late denial by the
    // fixed window gives a GCRA reservation back. That give-back is exact only if nothing
    // stacked on it, so the GCRA may end up charged for more than was admitted (spurious
    // loss) — but never for less (that would be over-admission).
    let half = LIMIT / 2;
    for threads in THREADS {
        let composite = Composite::new(vec![
            Limiter::new(Algorithm::Gcra, per_second(LIMIT)).unwrap(),
            Limiter::new(Algorithm::FixedWindow, per_second(half)).unwrap(),
        ])
        .unwrap();
        frozen_rounds(
            "composite(GCRA, fixed)",
            &composite,
            threads,
            half,
            SECOND,
            Expect::AtMost,
            |now, n| {
                let limits = composite.limits();
                let gcra = remaining(&limits[0], "GCRA", now, n, |r| r <= LIMIT - n)?;
                let fixed = remaining(&limits[1], "fixed window", now, n, |r| r == half - n)?;
                // Sequentially the composite admits until the tighter of the two runs out.
                let expected_more = fixed.min(gcra);
                for i in 0..expected_more {
                    if !composite.check(now, 1).unwrap().allowed {
                        return Err(format!("sequential check {i} of {expected_more} denied"));
                    }
                }
                if composite.check(now, 1).unwrap().allowed {
                    return Err("admitted beyond the limits".to_owned());
                }
                Ok(())
            },
        );
    }
}

// ---------------------------------------------------------------------------------------
// Strict window on an advancing shared clock.
// ---------------------------------------------------------------------------------------

/// One admission: its effective time lies in `[lo, hi]`.
///
/// The strict window decides at `max(now, newest time recorded)`. Every recorded time is
/// some earlier check's effective time, which (by induction) never exceeds the clock's
/// value when it was computed, and the clock only grows; so an effective time lies between
/// the `now` passed (`lo`) and the clock read right after the check returns (`hi`).
#[derive(Clone, Copy, Debug)]
struct Admission {
    lo: u64,
    hi: u64,
}

/// The most admissions any interval `[s, s + period)` *certainly* holds (both bounds
/// inside it), and one such `s`. Sound: a count above the limit is a proven
/// over-admission, whatever the exact effective times were.
fn max_certain_in_window(admissions: &mut [Admission], period: u64) -> (u64, u64) {
    admissions.sort_by_key(|a| a.lo);
    let mut best = (0, 0);
    for i in 0..admissions.len() {
        let start = admissions[i].lo;
        let end = start.saturating_add(period);
        let first = admissions.partition_point(|a| a.lo < start);
        let count = admissions[first..]
            .iter()
            .take_while(|a| a.lo < end)
            .filter(|a| a.hi < end)
            .count() as u64;
        if count > best.0 {
            best = (count, start);
        }
    }
    best
}

/// 100 per 2000 ns of simulated time, 60 sub-windows of 34 ns. Threads step the shared
/// clock by 0..=8 ns per check (≈ 500 checks per period against a limit of 100), so the
/// window is always under pressure and sub-windows turn over constantly. Each check passes
/// the clock's value less a random lag below `lag` ns (a thread's time read a little
/// earlier than another's), which makes racing threads charge one sub-window with
/// different times.
fn advancing_clock(lag: u64) {
    const LIMIT: u64 = 100;
    const PERIOD: u64 = 2_000;
    let checks_per_thread_total = scaled(1_200_000, 40_000);
    for threads in THREADS {
        let limiter = SlidingWindowStrict::new(Quota::new(LIMIT, PERIOD).unwrap(), 60).unwrap();
        let clock = AtomicU64::new(PERIOD);
        let checks = checks_per_thread_total / threads as u64;
        let mut admissions: Vec<Admission> = thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let limiter = &limiter;
                    let clock = &clock;
                    scope.spawn(move || {
                        let mut rng =
                            XorShift(0x9E37_79B9_7F4A_7C15 ^ ((t as u64 + 1) * 0x1234_5678));
                        let mut mine = Vec::new();
                        for _ in 0..checks {
                            let lo = clock.load(Ordering::SeqCst) - rng.next() % lag.max(1);
                            let decision = limiter.check(lo, 1).unwrap();
                            let hi = clock.load(Ordering::SeqCst);
                            if decision.allowed {
                                mine.push(Admission { lo, hi });
                            }
                            clock.fetch_add(rng.next() % 9, Ordering::SeqCst);
                        }
                        mine
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        let end = clock.load(Ordering::SeqCst);

        assert!(
            !admissions.is_empty(),
            "{threads} threads: nothing admitted"
        );
        // Globally: effective times lie in [PERIOD, end], which `k` periods cover.
        let periods = (end - PERIOD) / PERIOD + 1;
        assert!(
            admissions.len() as u64 <= LIMIT * periods,
            "lag {lag}, {threads} threads: {} admitted over {periods} periods of {LIMIT}",
            admissions.len()
        );
        let exact = admissions.iter().filter(|a| a.lo == a.hi).count();
        let tight = admissions
            .iter()
            .filter(|a| a.hi - a.lo < PERIOD / 10)
            .count();
        let widest = admissions.iter().map(|a| a.hi - a.lo).max().unwrap_or(0);
        eprintln!(
            "lag {lag}, {threads} threads: {} admitted over {periods} periods; effective time exact for \
             {exact}, within {} ns for {tight}; widest bound {widest} ns",
            admissions.len(),
            PERIOD / 10
        );
        let (most, start) = max_certain_in_window(&mut admissions, PERIOD);
        assert!(
            most <= LIMIT,
            "lag {lag}, {threads} threads: {most} admissions certainly within [{start}, {}) (limit {LIMIT})",
            start + PERIOD
        );
        // The bounds must be tight enough for that check to mean something: nearly every
        // admission's effective time is known to within a tenth of a period.
        assert!(
            tight * 10 >= admissions.len() * 9,
            "{threads} threads: only {tight} of {} admissions have tight time bounds",
            admissions.len()
        );
        // Every count is released one period after the latest time recorded: afterwards
        // the full limit is available again, exactly.
        follow_up(&limiter, end + PERIOD, LIMIT, 0)
            .unwrap_or_else(|e| panic!("{threads} threads, after the run: {e}"));
    }
}

#[test]
fn strict_window_advancing_clock_never_over_admits_in_any_period() {
    advancing_clock(0);
}

#[test]
fn strict_window_lagging_times_never_over_admit_in_any_period() {
    advancing_clock(34);
}

#[test]
fn max_certain_in_window_counts_only_certain_admissions() {
    // The checker itself: two pinned admissions in one window count, a loose one does not.
    let mut admissions = vec![
        Admission { lo: 10, hi: 10 },
        Admission { lo: 20, hi: 20 },
        Admission { lo: 15, hi: 5_000 },
        Admission {
            lo: 1_500,
            hi: 1_500,
        },
    ];
    assert_eq!(max_certain_in_window(&mut admissions, 1_000), (2, 10));
    assert_eq!(max_certain_in_window(&mut admissions, 2_000), (3, 10));
}
