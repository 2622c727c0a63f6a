//! Loom model checks of every CAS protocol in the crate.
//!
//! Build and run with the crate's loom cfg, in a target directory of its own:
//!
//! ```text
//! RUSTFLAGS="--cfg ratecore_loom" CARGO_TARGET_DIR=target/loom LOOM_MAX_PREEMPTIONS=3 \
//!     cargo test --release --test loom
//! ```
//!
//! Under `cfg(ratecore_loom)` the limiters' atomics are loom's (see `src/sync.rs`), so each
//! `loom::model` below explores the interleavings (up to the preemption bound) of a few
//! threads racing on one limiter, and asserts after every one of them:
//!
//! - single-word limiters (GCRA, fixed window, approximate window): the threads' decisions
//!   and the final state are exactly those of *some* sequential order of the same calls
//!   (linearizability; the reference is the algorithm's own pure `evaluate`, since what is
//!   under test here is the CAS protocol, not the arithmetic); in particular admissions
//!   never exceed the quota;
//! - the strict window (reserve, then verify): never more than `limit` admissions in any
//!   interval of length `period` of effective times, and the ring afterwards holds exactly
//!   the admitted cost (a give-back leaves nothing behind);
//! - the composite: no limit is over-admitted, a denied request's reservations are given
//!   back, exactly where the protocol promises exactness.
//!
//! Models are deliberately tiny (2–3 threads, limits of 1–2) so the whole file stays within
//! a few minutes with `LOOM_MAX_PREEMPTIONS=3`.
//!
//! What loom can and cannot show for the strict window. Loom has no 128-bit atomic, so
//! `src/sync.rs` models each strict-window cell as a loom `Mutex<u128>`: in the model every
//! cell access is linearizable and acquire/release, which is *stronger* than the real
//! `SeqCst` 128-bit atomics plus the `fence(SeqCst)` before verification. So these models
//! check the protocol's logic (decide, charge, verify, give back) over linearizable cells,
//! and would catch a lost or misplaced charge, but not a missing fence: with the fence
//! removed they still pass (checked by hand). A loom-visible model would need a loom
//! atomic holding, say, an index into interned `u128` values, so that the orderings given
//! are what loom sees. (Loom also treats `SeqCst` accesses as `AcqRel` — loom README,
//! "Unsupported features"; tokio-rs/loom#180 — and models `fence(SeqCst)` properly.)
//!
//! The last two strict-window models reproduce over-admissions that an earlier
//! strict window had (a racing charge moving a slot's newest time backwards, and
//! a stale thread overwriting a newer sub-window); they guard the fix.
#![cfg(ratecore_loom)]

#[macro_use]
#[path = "support/loom_models.rs"]
mod loom_models;

use loom::sync::Arc;
use loom::thread;

use ratecore::decision::Outcome;
use ratecore::fixed_window::FixedWindowConfig;
use ratecore::gcra::GcraConfig;
use ratecore::sliding_approx::SlidingWindowConfig;
use ratecore::{
    Algorithm, CheckError, Composite, Decision, FixedWindow, Gcra, Limiter, Quota, RateLimiter,
    SlidingWindowApprox, SlidingWindowStrict,
};

// ---------------------------------------------------------------------------------------
// Linearizability of the single-word limiters.
// ---------------------------------------------------------------------------------------

/// One call: `(now, cost)`.
type Op = (u64, u64);

/// A pure sequential model: `(state, now, cost) -> (decision, new state)`.
type Step<'a> = &'a dyn Fn(u64, u64, u64) -> (Decision, u64);

/// Every interleaving of `threads` (each thread's calls in its own order), run through
/// `step` from `initial`: the per-thread decisions and the final state of each.
fn sequential_histories(
    threads: &[Vec<Op>],
    initial: u64,
    step: Step,
) -> Vec<(Vec<Vec<Decision>>, u64)> {
    fn go(
        threads: &[Vec<Op>],
        next: &mut Vec<usize>,
        state: u64,
        decisions: &mut Vec<Vec<Decision>>,
        step: Step,
        out: &mut Vec<(Vec<Vec<Decision>>, u64)>,
    ) {
        let mut any = false;
        for t in 0..threads.len() {
            let Some(&(now, cost)) = threads[t].get(next[t]) else {
                continue;
            };
            any = true;
            let (decision, new_state) = step(state, now, cost);
            next[t] += 1;
            decisions[t].push(decision);
            go(threads, next, new_state, decisions, step, out);
            decisions[t].pop();
            next[t] -= 1;
        }
        if !any {
            out.push((decisions.clone(), state));
        }
    }
    let mut out = Vec::new();
    let mut next = vec![0; threads.len()];
    let mut decisions = vec![Vec::new(); threads.len()];
    go(threads, &mut next, initial, &mut decisions, step, &mut out);
    out
}

/// Runs `threads` concurrently on a fresh limiter from `make` (after `setup` calls made
/// sequentially on the model's main thread), then asserts the observed decisions and the
/// final state (as seen by `probe`) match some sequential history.
fn check_linearizable<L>(
    (make, limiter_quota, step): Subject<L>,
    setup: &'static [Op],
    threads: &'static [&'static [Op]],
    probe: Op,
    quota: u64,
) where
    L: RateLimiter + Send + Sync + 'static,
{
    // The reference histories, computed once, outside the model.
    let mut initial = 0;
    for &(now, cost) in setup {
        initial = step(initial, now, cost).1;
    }
    let per_thread: Vec<Vec<Op>> = threads.iter().map(|ops| ops.to_vec()).collect();
    let histories: Vec<(Vec<Vec<Decision>>, Decision)> =
        sequential_histories(&per_thread, initial, step)
            .into_iter()
            .map(|(decisions, state)| (decisions, step(state, probe.0, probe.1).0))
            .collect();
    let histories = std::sync::Arc::new(histories);

    loom::model(move || {
        let limiter = Arc::new(make(limiter_quota));
        for &(now, cost) in setup {
            let _ = limiter.check(now, cost).unwrap();
        }
        let handles: Vec<_> = threads
            .iter()
            .map(|ops| {
                let limiter = Arc::clone(&limiter);
                thread::spawn(move || {
                    ops.iter()
                        .map(|&(now, cost)| limiter.check(now, cost).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let observed: Vec<Vec<Decision>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let final_probe = limiter.peek(probe.0, probe.1).unwrap();

        let admitted: u64 = observed
            .iter()
            .zip(threads.iter())
            .flat_map(|(ds, ops)| ds.iter().zip(ops.iter()))
            .filter(|(d, _)| d.allowed)
            .map(|(_, &(_, cost))| cost)
            .sum();
        assert!(
            admitted <= quota,
            "over-admission: {admitted} > {quota}: {observed:?}"
        );
        assert!(
            histories
                .iter()
                .any(|(decisions, probe)| *decisions == observed && *probe == final_probe),
            "not linearizable: observed {observed:?}, final {final_probe:?}"
        );
    });
}

/// The pure step of a single-word limiter from its config's `evaluate`, leaked so models
/// (which must be `'static`) can share it.
fn word_step(
    evaluate: impl Fn(u64, u64, u64) -> Result<Outcome, CheckError> + Sync + 'static,
) -> StaticStep {
    Box::leak(Box::new(move |word, now, cost| {
        let outcome = evaluate(word, now, cost).unwrap();
        (outcome.decision, outcome.new_word.unwrap_or(word))
    }))
}

/// `limit` requests per 1000 ns.
const fn per_1000_ns(limit: u64) -> Quota {
    match Quota::new(limit, 1_000) {
        Ok(q) => q,
        Err(_) => panic!("valid quota"),
    }
}

/// 1 request per 1000 ns (emission interval 1000, burst 1).
const fn q1() -> Quota {
    per_1000_ns(1)
}

/// 2 requests per 1000 ns (emission interval 500, burst 2).
const fn q2() -> Quota {
    per_1000_ns(2)
}

/// A limiter under test: how to build it, and its algorithm's pure step.
type Subject<L> = (fn(Quota) -> L, Quota, StaticStep);

/// A model's step function; leaked, since models must be `'static`.
type StaticStep = &'static (dyn Fn(u64, u64, u64) -> (Decision, u64) + Sync);

fn gcra(quota: Quota) -> Subject<Gcra> {
    let config = GcraConfig::new(&quota);
    let step = word_step(move |w, n, c| config.evaluate(w, n, c));
    (Gcra::new, quota, step)
}

fn fixed(quota: Quota) -> Subject<FixedWindow> {
    let config = FixedWindowConfig::new(&quota).unwrap();
    let step = word_step(move |w, n, c| config.evaluate(w, n, c));
    (|quota| FixedWindow::new(quota).unwrap(), quota, step)
}

fn approx(quota: Quota) -> Subject<SlidingWindowApprox> {
    let config = SlidingWindowConfig::new(&quota).unwrap();
    let step = word_step(move |w, n, c| config.evaluate(w, n, c));
    (
        |quota| SlidingWindowApprox::new(quota).unwrap(),
        quota,
        step,
    )
}

/// One `#[test]` per entry, each running [`check_linearizable`] on the entry's subject,
/// setup calls, threads (each thread's calls), final probe and admission bound.
macro_rules! linearizable {
    ($($(#[$attr:meta])* $name:ident => $subject:expr, setup $setup:expr,
        threads $threads:expr, probe $probe:expr, at most $quota:expr;)*) => {$(
        $(#[$attr])*
        #[test]
        fn $name() {
            check_linearizable($subject, $setup, $threads, $probe, $quota);
        }
    )*};
}

linearizable! {
    // --- GCRA ---------------------------------------------------------------------------

    gcra_frozen_clock_two_threads_limit_one => gcra(q1()), setup &[],
        threads &[&[(5_000, 1)], &[(5_000, 1)]], probe (5_000, 1), at most 1;

    gcra_frozen_clock_three_threads_limit_two => gcra(q2()), setup &[],
        threads &[&[(5_000, 1)], &[(5_000, 1)], &[(5_000, 1)]], probe (5_000, 1), at most 2;

    /// Cost 2 and cost 1 on burst 2: exactly one of them fits (or the 1 and nothing else).
    gcra_frozen_clock_mixed_costs => gcra(q2()), setup &[],
        threads &[&[(5_000, 2)], &[(5_000, 1)]], probe (5_000, 1), at most 2;

    /// T = 500, tau = 1000. A thread that lags behind ("time going backwards") must only
    /// ever see a larger backlog. Over [0, 900]: burst 2 plus one emission interval's worth
    /// (900 / 500), less the setup's admission.
    gcra_different_nows_per_thread => gcra(q2()), setup &[(0, 1)],
        threads &[&[(100, 1)], &[(400, 1)], &[(900, 1)]], probe (900, 1), at most 2;

    // --- fixed window -------------------------------------------------------------------

    fixed_window_frozen_clock_three_threads_limit_two => fixed(q2()), setup &[],
        threads &[&[(5_100, 1)], &[(5_100, 1)], &[(5_100, 1)]], probe (5_100, 1), at most 2;

    /// Windows of 1000 ns: 999 is window 0, 1000 and 1500 window 1. A thread at 999 that
    /// runs after the window moved on is clamped into window 1 (no refund). At most one per
    /// window, two windows.
    fixed_window_threads_across_a_window_boundary => fixed(q1()), setup &[],
        threads &[&[(999, 1)], &[(1_000, 1)], &[(1_500, 1)]], probe (1_500, 1), at most 2;

    fixed_window_one_thread_two_calls_against_one => fixed(q2()), setup &[],
        threads &[&[(100, 1), (100, 1)], &[(100, 1)]], probe (100, 1), at most 2;

    // --- approximate sliding window -----------------------------------------------------

    approx_window_frozen_clock_three_threads_limit_two => approx(q2()), setup &[],
        threads &[&[(5_100, 1)], &[(5_100, 1)], &[(5_100, 1)]], probe (5_100, 1), at most 2;

    /// Two admitted at 100 (window 0). At 1500 the previous window weighs 2 × 0.5 = 1, so
    /// one fits; at 2000 both windows have rolled away. Racing threads roll the word
    /// forward under each other. Not a quota bound (the estimate may over-admit by
    /// design): linearizability is the assertion here.
    approx_window_threads_rolling_the_windows => approx(q2()), setup &[(100, 1), (100, 1)],
        threads &[&[(1_500, 1)], &[(1_600, 1)], &[(2_000, 1)]], probe (2_000, 1), at most 3;
}

// ---------------------------------------------------------------------------------------
// Strict sliding window: reserve, then verify.
// ---------------------------------------------------------------------------------------

/// A strict window with an owned ring.
type Strict = SlidingWindowStrict<Box<[ratecore::Slot]>>;

/// Period 1000 ns in two sub-windows of 500 ns: a ring of three slots. Sub-window `s`
/// covers `[500 s, 500 (s + 1))` and lives in slot `s % 3` (lap `s / 3`: the ring's
/// `s / 3`-th turn).
fn strict(limit: u64) -> Strict {
    SlidingWindowStrict::new(Quota::new(limit, 1_000).unwrap(), 2).unwrap()
}

/// Runs one strict-window model: `setup` sequentially, then one thread per entry of
/// `nows` (cost 1 each); returns the admissions and the limiter for post-hoc checks.
fn strict_race(limit: u64, setup: &[u64], nows: &'static [u64]) -> (Vec<bool>, Arc<Strict>) {
    let limiter = Arc::new(strict(limit));
    for &now in setup {
        assert!(
            limiter.check(now, 1).unwrap().allowed,
            "setup admission at {now}"
        );
    }
    let handles: Vec<_> = nows
        .iter()
        .map(|&now| {
            let limiter = Arc::clone(&limiter);
            thread::spawn(move || limiter.check(now, 1).unwrap().allowed)
        })
        .collect();
    let admitted = handles.into_iter().map(|h| h.join().unwrap()).collect();
    (admitted, limiter)
}

fn count(admitted: &[bool]) -> u64 {
    admitted.iter().filter(|&&a| a).count() as u64
}

/// A [`strict_race`] with no setup: never more than `limit` admitted, and at `peek_at`
/// (no earlier than any thread's effective time) the ring holds exactly what was
/// admitted: a give-back leaves nothing behind.
fn strict_race_exact(limit: u64, nows: &'static [u64], peek_at: u64) {
    let (admitted, limiter) = strict_race(limit, &[], nows);
    let n = count(&admitted);
    assert!(n <= limit, "over-admission: {admitted:?}");
    assert_eq!(limiter.peek(peek_at, 0).unwrap().remaining, limit - n);
}

loom_models! {
    strict_window_frozen_clock_same_slot => strict_race_exact(1, &[100, 100], 100);
    strict_window_frozen_clock_three_threads_limit_two =>
        strict_race_exact(2, &[100, 100, 100], 100);

    /// The threads' times lie in different sub-windows, so they charge different slots,
    /// and only the verification re-read stops both from being admitted. All times lie
    /// within one period of each other (and so do the effective times, which are the
    /// maximum of a thread's `now` and the times already recorded), so any two admissions
    /// share a window. Both effective times are at most 600, so at 600 every admission is
    /// in window.
    strict_window_cross_slot_race => strict_race_exact(1, &[100, 600], 600);

    /// Slots 0, 1 and 2 (lap 0), all within 950 ns of each other; limit 2.
    strict_window_cross_slot_race_three_threads => strict_race_exact(2, &[100, 600, 1_050], 1_050);

    /// 1100 is sub-window 2 (slot 2, lap 0); 1500 is sub-window 3 (slot 0, lap 1). A fresh
    /// slot's `newest` is 0, released at 1000: a reader at 1500 that saw the charge at 1100
    /// without its newest time would drop it as released (the count and the newest time
    /// must move together).
    strict_window_charge_seen_with_its_newest_time_across_laps =>
        strict_race_exact(1, &[1_100, 1_500], 1_500);
}

#[test]
fn strict_window_release_boundary_with_a_prior_admission() {
    // Admitted at 0 (slot 0); released at exactly 1000. A thread at 600 may only be
    // admitted at an effective time of 1000 (after seeing the other thread's time), never
    // at 600, where the admission at 0 is still in the window.
    loom::model(|| {
        let (admitted, limiter) = strict_race(1, &[0], &[600, 1_000]);
        let n = count(&admitted);
        assert!(n <= 1, "over-admission: {admitted:?}");
        let after = limiter.peek(1_000, 1).unwrap();
        if n == 1 {
            // Whoever was admitted was recorded at effective time 1000: its count is
            // released at 2000, not 1600 (which would mean it was admitted at 600).
            assert!(!after.allowed);
            assert_eq!(
                after.retry_after, 1_000,
                "admitted at the wrong time: {admitted:?}"
            );
        } else {
            assert!(after.allowed, "a give-back left a charge behind");
        }
    });
}

// ---------------------------------------------------------------------------------------
// Composite: reserve every limit, give back on a denial.
// ---------------------------------------------------------------------------------------

fn limiter(algorithm: Algorithm, quota: Quota) -> Limiter {
    Limiter::new(algorithm, quota).unwrap()
}

fn composite(first: (Algorithm, Quota), second: (Algorithm, Quota)) -> Arc<Composite> {
    Arc::new(Composite::new(vec![limiter(first.0, first.1), limiter(second.0, second.1)]).unwrap())
}

fn remaining(composite: &Composite, index: usize, now: u64) -> u64 {
    composite.limits()[index].peek(now, 0).unwrap().remaining
}

/// In every interleaving: two threads check a fresh composite of `first` and `second` at
/// `now`, then `assert` gets the composite and how many of them were admitted.
fn two_composite_checks(
    first: (Algorithm, Quota),
    second: (Algorithm, Quota),
    now: u64,
    assert: impl Fn(&Composite, u64) + Sync + Send + 'static,
) {
    loom::model(move || {
        let composite = composite(first, second);
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let c = Arc::clone(&composite);
                thread::spawn(move || c.check(now, 1).unwrap().allowed)
            })
            .collect();
        let admitted = handles.into_iter().map(|h| h.join().unwrap());
        let n = admitted.filter(|&a| a).count() as u64;
        assert(&composite, n);
    });
}

#[test]
fn composite_undo_when_another_thread_exhausts_the_second_limit() {
    // (GCRA burst 2, fixed window limit 1). One thread checks the composite; the other
    // takes the fixed window's only unit directly. Nobody else touches the GCRA, so when
    // the composite is denied its GCRA reservation must come back exactly.
    const NOW: u64 = 5_100;
    loom::model(|| {
        let composite = composite((Algorithm::Gcra, q2()), (Algorithm::FixedWindow, q1()));
        let c = Arc::clone(&composite);
        let via_composite = thread::spawn(move || c.check(NOW, 1).unwrap().allowed);
        let c = Arc::clone(&composite);
        let direct = thread::spawn(move || c.limits()[1].check(NOW, 1).unwrap().allowed);
        let via_composite = via_composite.join().unwrap();
        let direct = direct.join().unwrap();

        assert!(
            via_composite != direct,
            "the single unit of B went to exactly one"
        );
        assert_eq!(remaining(&composite, 1, NOW), 0);
        let gcra_expected = if via_composite { 1 } else { 2 };
        assert_eq!(remaining(&composite, 0, NOW), gcra_expected);
    });
}

#[test]
fn composite_two_threads_compete_for_the_second_limit() {
    // (fixed window limit 2, GCRA burst 1): both pass the first limit, only one fits the
    // second; the loser's fixed-window charge is given back exactly (counts are additive).
    const NOW: u64 = 5_100;
    let (fixed, gcra) = ((Algorithm::FixedWindow, q2()), (Algorithm::Gcra, q1()));
    two_composite_checks(fixed, gcra, NOW, |composite, n| {
        assert_eq!(n, 1, "the GCRA's single unit goes to exactly one");
        assert_eq!(remaining(composite, 0, NOW), 1, "fixed window not restored");
        assert_eq!(remaining(composite, 1, NOW), 0);
    });
}

#[test]
fn composite_gcra_give_back_never_erases_another_charge() {
    // (GCRA burst 2, fixed window limit 1), two composite checks. The loser's GCRA
    // reservation is restored only if nothing stacked on it since; otherwise it stays
    // charged (a spurious loss), but the winner's charge must never be erased.
    const NOW: u64 = 5_100;
    let (gcra, fixed) = ((Algorithm::Gcra, q2()), (Algorithm::FixedWindow, q1()));
    two_composite_checks(gcra, fixed, NOW, |composite, n| {
        assert_eq!(n, 1);
        assert_eq!(remaining(composite, 1, NOW), 0);
        let gcra = remaining(composite, 0, NOW);
        assert!(
            gcra <= 2 - n,
            "GCRA over-admittable: remaining {gcra} after {n} admitted"
        );
    });
}

#[test]
fn composite_strict_window_give_back() {
    // (strict window limit 2, fixed window limit 1): the strict window's give-back is
    // exact on a frozen clock.
    const NOW: u64 = 100;
    let strict = (Algorithm::SlidingWindowStrict { sub_windows: 1 }, q2());
    let fixed = (Algorithm::FixedWindow, q1());
    two_composite_checks(strict, fixed, NOW, |composite, n| {
        assert!(n <= 1, "over-admission of the fixed window");
        assert_eq!(
            remaining(composite, 0, NOW),
            2 - n,
            "strict window not restored"
        );
        assert_eq!(remaining(composite, 1, NOW), 1 - n);
    });
}

// Regression models for two over-admissions an earlier strict window had.

/// Limit 2, threads at `nows`; when the second thread (at `nows[1]`, its effective time:
/// nothing later is recorded) is admitted, its admission is in the window at `later_at`,
/// so at most one more fits there.
fn strict_race_then_two_more(nows: &'static [u64; 2], later_at: u64) {
    let (admitted, limiter) = strict_race(2, &[], nows);
    assert!(count(&admitted) <= 2, "over-admission: {admitted:?}");
    if admitted[1] {
        let later = (0..2).filter(|_| limiter.check(later_at, 1).unwrap().allowed);
        let later = later.count();
        assert!(
            later <= 1,
            "over-admission: 1 at {} and {later} more at {later_at} within one period of \
             1000 (limit 2); threads admitted {admitted:?}",
            nows[1]
        );
    }
}

loom_models! {
    /// 100 and 400 share sub-window 0 (slot 0); limit 2, so both may be admitted, and then
    /// their count stays in the window until 400 + 1000 = 1400 (a sub-window is released
    /// with its newest admission). Race: the thread at 100 reads the ring (effective time
    /// 100), the thread at 400 charges the slot (newest 400), then the thread at 100 loads
    /// that cell and replaces it with count 2 and newest *100*: the slot is released at
    /// 1100, and two more requests at 1100 join the admission at 400 inside
    /// [400, 1400) — three admissions on a limit of 2.
    strict_window_same_slot_different_nows_keeps_the_newest_time =>
        strict_race_then_two_more(&[100, 400], 1_100);

    /// 100 is sub-window 0 (slot 0, lap 0); 1600 is sub-window 3 (slot 0, lap 1). Race:
    /// the thread at 100 reads the ring (effective time 100), the thread at 1600 charges
    /// slot 0 (newest 1600, count 1), then the thread at 100 loads that cell, sees it is
    /// not its own sub-window, counts it as 0 and replaces it with (newest 100, count 1):
    /// the admission at 1600 is forgotten, and two more at 1600 are admitted beside it.
    /// The admission at 1600 (effective time >= 1600) is in the window until >= 2600.
    strict_window_stale_thread_never_overwrites_a_newer_sub_window =>
        strict_race_then_two_more(&[100, 1_600], 1_600);
}
