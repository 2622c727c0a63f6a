//! The seed demo's promises (`examples/seed_policies/`), asserted on the very scenarios
//! the demo prints: ev.energy's rolling hour, Switch's two windows, Uphold's 5-minute
//! window, the four algorithms on one trace, and the three policy files replayed as HTTP
//! exchanges. Every check's `retry_after` is verified exact to the nanosecond.

#[path = "../examples/seed_policies/scenarios.rs"]
mod scenarios;
#[path = "support/seed_replay.rs"]
mod seed_replay;

use ratecore::policy::Policy;
use ratecore::{Decision, RateLimiter, NEVER};

use scenarios::{
    at, compared_limiters, comparison_trace, evenergy_limiter, most_in_any_interval,
    switch_composite, switch_trace, uphold_limiters, uphold_trace, COMPARED, EVENERGY_BURST_AT,
    EVENERGY_OPEN_AGAIN, EVENERGY_PROBES, HOUR, MINUTE, MS, SECOND,
};

/// A placeholder for [`ratecore::Composite::check_each`]'s output slots.
const EMPTY: Decision = Decision {
    allowed: false,
    limit: 0,
    remaining: 0,
    reset_after: 0,
    retry_after: 0,
};

/// A check of `cost` at `now` that must succeed, with its `retry_after` verified.
fn check<L: RateLimiter + ?Sized>(limiter: &L, now: u64, cost: u64) -> Decision {
    let d = limiter.check(now, cost).expect("cost fits the quota");
    verify_retry_after(limiter, now, cost, &d);
    d
}

/// A denial's `retry_after` must be exact: one nanosecond earlier the same request is still
/// denied, at `now + retry_after` it is admitted (peeks consume nothing, and limiters record
/// no time from them, so looking ahead does not disturb the replay).
fn verify_retry_after<L: RateLimiter + ?Sized>(limiter: &L, now: u64, cost: u64, d: &Decision) {
    if d.allowed {
        assert_eq!(d.retry_after, 0, "an admission has retry_after 0");
        return;
    }
    assert!(
        d.retry_after > 0,
        "a denial at {now} ns has retry_after > 0"
    );
    if d.retry_after == NEVER {
        return;
    }
    let moment = now + d.retry_after;
    let then = limiter.peek(moment, cost).expect("cost fits");
    assert!(
        then.allowed,
        "denied at {now} ns: must be admitted after retry_after {} ns",
        d.retry_after
    );
    let just_before = limiter.peek(moment - 1, cost).expect("cost fits");
    assert!(
        !just_before.allowed,
        "denied at {now} ns: retry_after {} ns must be the earliest moment",
        d.retry_after
    );
}

/// The most admissions in one aligned window `[w·length, (w+1)·length)`; `times` ascending.
fn most_in_aligned_windows(times: &[u64], length: u64) -> usize {
    let mut most = 0;
    let mut run = 0;
    let mut window = None;
    for &t in times {
        if window == Some(t / length) {
            run += 1;
        } else {
            window = Some(t / length);
            run = 1;
        }
        most = most.max(run);
    }
    most
}

/// ev.energy: "if you make 1000 requests at 11:59, you cannot make any more until 12:59".
#[test]
fn evenergy_demo_keeps_the_rolling_hour() {
    let limiter = evenergy_limiter();
    let mut admitted = Vec::new();
    for n in 1..=1000 {
        let d = check(&limiter, EVENERGY_BURST_AT, 1);
        assert!(d.allowed, "request #{n} at 11:59 must be admitted");
        assert_eq!(d.remaining, 1000 - n, "remaining after request #{n}");
        admitted.push(EVENERGY_BURST_AT);
    }
    let mut decisions = Vec::new();
    for &now in &EVENERGY_PROBES {
        let d = check(&limiter, now, 1);
        if d.allowed {
            admitted.push(now);
        }
        decisions.push((now, d));
    }

    // Nothing between the burst and 12:59:00, and every denial says to come back at
    // exactly 12:59:00; then the quota is back.
    for &(now, d) in &decisions[..3] {
        assert!(!d.allowed, "{now} ns must be denied");
        assert_eq!(
            now + d.retry_after,
            EVENERGY_OPEN_AGAIN,
            "a denial at {now} ns must point at 12:59:00"
        );
    }
    assert_eq!(
        decisions[2].1.retry_after, SECOND,
        "12:58:59 retries in 1 s"
    );
    assert!(decisions[3].1.allowed, "12:59:00 must be admitted");
    assert_eq!(decisions[3].1.remaining, 999);
    assert!(decisions[4].1.allowed);
    assert_eq!(decisions[4].1.remaining, 998);
    let most = most_in_any_interval(&admitted, HOUR);
    assert!(most <= 1000, "{most} admitted within one hour");
}

/// Switch: 5 per second AND 20 per minute; the 21st in a minute waits the seed's 41 s.
#[test]
fn switch_demo_keeps_both_windows() {
    let composite = switch_composite();
    let mut admitted = Vec::new();
    let mut rows = Vec::new();
    for now in switch_trace() {
        let mut each = [EMPTY; 2];
        let d = composite
            .check_each(now, 1, &mut each)
            .expect("cost 1 always fits");
        verify_retry_after(&composite, now, 1, &d);
        if d.allowed {
            admitted.push(now);
        }
        rows.push((now, d, each));
    }

    // The promise, as Switch's own example words it.
    let (_, sixth, each) = rows[5];
    assert!(
        !sixth.allowed,
        "the 6th request within one second is denied"
    );
    assert_eq!(sixth.limit, 5, "denied by the per-second limit");
    assert_eq!(sixth.retry_after, 500 * MS, "until the next second");
    assert_eq!(
        each[1].remaining, 15,
        "the denied 6th consumed nothing per minute"
    );
    let (when, twenty_first, each) = rows[rows.len() - 2];
    assert_eq!(when, at(12, 0, 19));
    assert!(
        !twenty_first.allowed,
        "the 21st within the minute is denied"
    );
    assert_eq!(twenty_first.limit, 20, "denied by the per-minute limit");
    assert_eq!(
        twenty_first.retry_after,
        41 * SECOND,
        "the seed's 41 seconds"
    );
    assert_eq!(
        each[0].remaining, 5,
        "the denial consumed nothing per second"
    );
    for (now, d, _) in &rows[6..rows.len() - 2] {
        assert!(d.allowed, "{now} ns is within both limits");
    }
    let (_, next_minute, _) = rows[rows.len() - 1];
    assert!(next_minute.allowed, "admitted again at 12:01:00");
    assert_eq!(
        next_minute.remaining, 4,
        "the per-second limit is now the tightest"
    );
    assert!(most_in_aligned_windows(&admitted, SECOND) <= 5);
    assert!(most_in_aligned_windows(&admitted, MINUTE) <= 20);
}

/// Uphold: 300 per aligned 5-minute window; `Retry-After` names the window's end (85 s
/// at 16:28:35). GCRA on the same quota never runs ahead of its burst plus one a second.
#[test]
fn uphold_demo_keeps_the_five_minute_window() {
    let (fixed, gcra) = uphold_limiters();
    let mut fixed_rows = Vec::new();
    let mut gcra_admitted = Vec::new();
    for now in uphold_trace() {
        let f = check(&fixed, now, 1);
        let g = check(&gcra, now, 1);
        if g.allowed {
            gcra_admitted.push(now);
        }
        fixed_rows.push((now, f));
    }

    for (i, (now, f)) in fixed_rows.iter().enumerate() {
        assert_eq!(
            f.allowed,
            i < 300 || *now >= at(16, 30, 0),
            "fixed at #{}",
            i + 1
        );
        if !f.allowed {
            // Uphold: Retry-After and X-RateLimit-Reset both name the window's end.
            assert_eq!(now + f.retry_after, at(16, 30, 0));
            assert_eq!(f.reset_after, f.retry_after);
        }
    }
    let (_, at_16_28_35) = fixed_rows[fixed_rows.len() - 2];
    assert_eq!(
        at_16_28_35.retry_after,
        85 * SECOND,
        "the seed's Retry-After: 85"
    );
    let (_, next_window) = fixed_rows[fixed_rows.len() - 1];
    assert_eq!(next_window.remaining, 299);
    assert_eq!(next_window.reset_after, 5 * MINUTE);
    // GCRA: a burst of 300, then one per emission interval (1 s), never faster.
    let first = gcra_admitted[0];
    for (k, &t) in gcra_admitted.iter().enumerate() {
        // The n-th admission comes at least n - 300 seconds after the first.
        let n = k as u64 + 1;
        assert!(n <= 300 + (t - first) / SECOND, "GCRA ran ahead at #{n}");
    }
}

/// The four algorithms on one burst-then-trickle trace: four different promises.
#[test]
fn the_four_algorithms_decide_differently_on_the_demo_trace() {
    let limiters = compared_limiters();
    let mut admitted: Vec<Vec<u64>> = vec![Vec::new(); limiters.len()];
    let mut verdicts: Vec<Vec<bool>> = vec![Vec::new(); limiters.len()];
    for now in comparison_trace() {
        for (k, limiter) in limiters.iter().enumerate() {
            let d = check(limiter, now, 1);
            if d.allowed {
                admitted[k].push(now);
            }
            verdicts[k].push(d.allowed);
        }
    }
    let peaks: Vec<usize> = admitted
        .iter()
        .map(|times| most_in_any_interval(times, MINUTE))
        .collect();

    let [gcra, fixed, approx, strict] = [peaks[0], peaks[1], peaks[2], peaks[3]];
    assert!(
        strict <= 10,
        "strict must never exceed the limit in any period"
    );
    assert!(gcra <= 20, "GCRA: at most burst + one period's worth");
    assert!(
        fixed > 10,
        "fixed windows reset at the boundary: two bursts back to back"
    );
    assert!(
        approx > 10,
        "the two-window estimate assumes evenly spread traffic"
    );
    for a in 0..verdicts.len() {
        for b in a + 1..verdicts.len() {
            assert_ne!(
                verdicts[a], verdicts[b],
                "{} and {} should decide differently on this trace",
                COMPARED[a].0, COMPARED[b].0
            );
        }
    }
}

/// The three policy files, replayed as HTTP exchanges: every verdict is the seed's, and a
/// denial's `Retry-After` is never early.
#[test]
fn the_demo_http_exchanges_get_the_seed_verdicts() {
    seed_replay::assert_seed_exchanges(|file| {
        Policy::from_toml_file(file).expect("seed policy parses")
    });
}
