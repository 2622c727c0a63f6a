//! One key hammered by 2 threads: total checks per second, ratecore's `Gcra` against
//! governor's direct limiter, side by side in one process.
//!
//! Each criterion iteration is one check on *each* of the two threads (2 checks); the
//! time measured is the wall time from a barrier until both threads have made `iters`
//! checks (criterion's `iter_custom`). Total throughput = 2 / (time per iteration); the
//! summary prints it and the throughput ratio ratecore / governor (higher is better).
//!
//! Regimes: `allow` (every check admitted, so every check is a CAS on the shared word —
//! the contended case) and `deny` (every check after the first denied: read-only for
//! both). Variants: ratecore with a constant caller-passed `now`, ratecore reading
//! governor's clock (quanta), governor with its default (quanta) clock.
//!
//! Before criterion's runs, *paired* rounds (as the other benches' `common::Paired`):
//! 101 interleaved batches of 100,000 checks per thread, alternating which library goes
//! first; the summary prints the median of the per-round throughput ratios too.
//!
//! Run: `cargo bench --bench contended -- --warm-up-time 1 --measurement-time 3`.

mod common;

use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use common::{observe, Paired, Summary, Target};
use criterion::Throughput;
use crossbeam_utils::CachePadded;
use governor::{Quota as GovQuota, RateLimiter as GovLimiter};
use ratecore::{Gcra, Quota, RateLimiter};

const GROUP: &str = "contended_2_threads";

/// Runs `check` `iters` times on each of two threads; the wall time both took. Each
/// thread runs its own copy of the closure (its captures on its own stack): one shared
/// copy lives in the timing thread's stack frame, whose writes then bounce the cache
/// line under the other thread's every call.
fn two_threads<F: Fn() + Send + Clone>(iters: u64, check: F) -> Duration {
    let barrier = Barrier::new(2);
    std::thread::scope(|s| {
        let (theirs, barrier) = (check.clone(), &barrier);
        let other = s.spawn(move || {
            barrier.wait();
            hammer(iters, &theirs);
        });
        barrier.wait();
        let start = Instant::now();
        hammer(iters, &check);
        other.join().expect("bench thread");
        start.elapsed()
    })
}

/// One thread's loop. Both threads run this one function, so `check` has a single call
/// site and is inlined into it, as in the single-thread benches. With a loop written
/// out on each thread, LLVM saw two call sites and outlined ratecore's larger check
/// body (it carries the `remaining` arithmetic inline) while it inlined governor's
/// (whose clock read stays a call): ratecore alone then paid a call and six register
/// saves per check, 20 % of a denied check with the quanta clock.
#[inline(never)]
fn hammer<F: Fn()>(iters: u64, check: &F) {
    for _ in 0..iters {
        check();
    }
}

/// Interleaved rounds (as `common::Paired` in the other benches): `batch` checks on each
/// thread for one library, then for the other, alternating which goes first. A drift of
/// the host slower than a round slows both halves of it alike and cancels out of its
/// ratio; criterion's medians, each taken over seconds of one library alone, moved by a
/// quarter between runs here.
fn paired_two_threads<A, B>(rounds: usize, batch: u64, ours: A, theirs: B) -> Paired
where
    A: Fn() + Send + Clone,
    B: Fn() + Send + Clone,
{
    Paired::interleave(
        rounds,
        batch as usize,
        || two_threads(batch, ours.clone()).as_secs_f64(),
        || two_threads(batch, theirs.clone()).as_secs_f64(),
    )
}

/// A paired line as a throughput ratio (ours / governor's, higher is better): the inverse
/// of the paired time ratio, its quartiles swapped.
fn throughput_line(label: &str, paired: &Paired) -> String {
    let verdict = if common::bench_mode() {
        Target::AtLeast(1.0).verdict(1.0 / paired.median)
    } else {
        " (smoke run: no verdict)".to_owned()
    };
    format!(
        "{label}: paired throughput ratio {:.3} (quartiles {:.3}–{:.3}; {} rounds of {} \
         checks per thread; median {:.1} vs {:.1} M checks/s){verdict}",
        1.0 / paired.median,
        1.0 / paired.quartiles.1,
        1.0 / paired.quartiles.0,
        paired.rounds,
        paired.batch,
        2e3 / paired.per_call_ns.0,
        2e3 / paired.per_call_ns.1,
    )
}

fn bench(c: &mut criterion::Criterion, summary: &mut Summary) {
    let mut group = c.benchmark_group(GROUP);
    group.throughput(Throughput::Elements(2));
    let allow_rc = Quota::new(1 << 40, 1 << 40).expect("valid quota");
    let allow_gov = GovQuota::with_period(Duration::from_nanos(1))
        .expect("non-zero period")
        .allow_burst(NonZeroU32::MAX);
    let deny_rc = Quota::per_second(1).expect("valid quota");
    let deny_gov = GovQuota::per_second(NonZeroU32::new(1).expect("non-zero"));
    // Paired rounds: about 10 ms per round admitting, 2 ms denying.
    let (rounds, batch) = if common::bench_mode() {
        (101, 100_000)
    } else {
        (3, 100)
    };
    // Every limiter lives alone in its own cache-padded heap block: on the stack, criterion's
    // bookkeeping (written by the timing thread during the run) can share a cache line
    // with it, and that false sharing swung single runs by 3× or more.
    for (regime, rq, gq) in [("allow", allow_rc, allow_gov), ("deny", deny_rc, deny_gov)] {
        // Paired rounds first, each library on its own fresh limiter.
        {
            let now = 1_000_000_000u64;
            let caller_now = Box::new(CachePadded::new(Gcra::new(rq)));
            let quanta_limiter = Box::new(CachePadded::new(Gcra::new(rq)));
            let clock = Box::new(CachePadded::new(quanta::Clock::new()));
            let governor = Box::new(CachePadded::new(GovLimiter::direct(gq)));
            let (caller_now, quanta_limiter, clock, governor) =
                (&**caller_now, &**quanta_limiter, &**clock, &**governor);
            let theirs = move || observe(governor.check());
            let paired = paired_two_threads(
                rounds,
                batch,
                move || observe(caller_now.check(black_box(now), 1)),
                theirs,
            );
            summary.line(throughput_line(
                &format!("{regime}: ratecore_caller_now vs governor_quanta"),
                &paired,
            ));
            let paired = paired_two_threads(
                rounds,
                batch,
                move || {
                    let now = clock.delta_as_nanos(0, clock.raw());
                    observe(quanta_limiter.check(now, 1));
                },
                theirs,
            );
            summary.line(throughput_line(
                &format!("{regime}: ratecore_quanta vs governor_quanta"),
                &paired,
            ));
        }
        let limiter = Box::new(CachePadded::new(Gcra::new(rq)));
        let now = 1_000_000_000u64;
        group.bench_function(format!("{regime}/ratecore_caller_now"), |b| {
            b.iter_custom(|iters| {
                let limiter = &**limiter;
                two_threads(iters, move || {
                    observe(limiter.check(black_box(now), 1));
                })
            });
        });

        let limiter = Box::new(CachePadded::new(Gcra::new(rq)));
        let clock = Box::new(CachePadded::new(quanta::Clock::new()));
        group.bench_function(format!("{regime}/ratecore_quanta"), |b| {
            b.iter_custom(|iters| {
                let (limiter, clock) = (&**limiter, &**clock);
                two_threads(iters, move || {
                    let now = clock.delta_as_nanos(0, clock.raw());
                    observe(limiter.check(now, 1));
                })
            });
        });

        let governor = Box::new(CachePadded::new(GovLimiter::direct(gq)));
        group.bench_function(format!("{regime}/governor_quanta"), |b| {
            b.iter_custom(|iters| {
                let governor = &**governor;
                two_threads(iters, move || {
                    observe(governor.check());
                })
            });
        });
    }
    group.finish();
}

fn main() {
    let mut summary = common::run(bench);
    for regime in ["allow", "deny"] {
        let id = |name: &str| format!("{GROUP}/{regime}/{name}");
        let governor = summary.median_ns(&id("governor_quanta"));
        for name in ["ratecore_caller_now", "ratecore_quanta"] {
            match (summary.median_ns(&id(name)), governor) {
                (Some(ours), Some(theirs)) => {
                    // Two checks per iteration; throughput ratio = time ratio inverted.
                    let ratio = theirs / ours;
                    summary.line(format!(
                        "{regime}: {name} {:.1} M checks/s, governor {:.1} M checks/s, \
                         throughput ratio {ratio:.3}{}",
                        2e3 / ours,
                        2e3 / theirs,
                        Target::AtLeast(1.0).verdict(ratio)
                    ));
                }
                _ => summary.line(format!("{regime}: {name}: n/a (not run in this process)")),
            }
        }
    }
    summary.print("one key, 2 threads: total checks/s (throughput ratio, higher is better)");
}
