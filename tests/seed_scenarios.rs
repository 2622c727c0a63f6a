//! The seed policies' single-key promises, replayed on a simulated clock.

use ratecore::{
    Algorithm, Composite, Decision, Gcra, Limiter, Quota, RateLimiter, SlidingWindowStrict,
};

const SECOND: u64 = 1_000_000_000;
const MINUTE: u64 = 60 * SECOND;
const HOUR: u64 = 60 * MINUTE;

/// 11:59:00 on some day, as nanoseconds since that day's midnight.
const AT_11_59: u64 = 11 * HOUR + 59 * MINUTE;

/// A denial of a `limit` with nothing left, whose next admission is `wait` away.
const fn denied(limit: u64, wait: u64) -> Decision {
    Decision {
        allowed: false,
        limit,
        remaining: 0,
        reset_after: wait,
        retry_after: wait,
    }
}

#[test]
fn evenergy_rolling_hour_releases_exactly_one_hour_after_the_burst() {
    let limiter = SlidingWindowStrict::new(Quota::per_hour(1000).unwrap(), 60).unwrap();
    for i in 0..1000 {
        let d = limiter.check(AT_11_59, 1).unwrap();
        assert!(d.allowed, "request {i} at 11:59 must be admitted");
        assert_eq!(d.remaining, 999 - i);
    }
    let at_11_59_00_plus = limiter.check(AT_11_59 + 1, 1).unwrap();
    assert!(!at_11_59_00_plus.allowed);
    let at_12_58_59 = limiter.check(AT_11_59 + HOUR - SECOND, 1).unwrap();
    assert_eq!(at_12_58_59, denied(1000, SECOND));
    let just_before = limiter.check(AT_11_59 + HOUR - 1, 1).unwrap();
    assert!(!just_before.allowed);
    assert_eq!(just_before.retry_after, 1);
    let at_12_59 = limiter.check(AT_11_59 + HOUR, 1).unwrap();
    assert!(at_12_59.allowed);
    assert_eq!(at_12_59.remaining, 999);
}

#[test]
fn switch_five_per_second_and_twenty_per_minute() {
    // Switch speaks of windows that reset ("X-Rate-Limit-Reset: the time at which the
    // current rate limit window resets"): fixed windows, 5/s AND 20/min.
    let limits = vec![
        Limiter::new(Algorithm::FixedWindow, Quota::per_second(5).unwrap()).unwrap(),
        Limiter::new(Algorithm::FixedWindow, Quota::per_minute(20).unwrap()).unwrap(),
    ];
    let composite = Composite::new(limits).unwrap();
    let t0 = 10 * MINUTE;
    for _ in 0..5 {
        assert!(composite.check(t0, 1).unwrap().allowed);
    }
    let sixth = composite.check(t0 + 500_000_000, 1).unwrap();
    assert_eq!(sixth, denied(5, 500_000_000));
    // Four more seconds of 5 each: 20 admitted in total, then the minute is spent.
    for second in 1..4 {
        for _ in 0..5 {
            assert!(composite.check(t0 + second * SECOND, 1).unwrap().allowed);
        }
    }
    let twenty_first = composite.check(t0 + 19 * SECOND, 1).unwrap();
    assert!(!twenty_first.allowed);
    assert_eq!(twenty_first.limit, 20);
    assert_eq!(twenty_first.retry_after, 41 * SECOND);
    // A denial consumed nothing: the per-second window still has all 5.
    let mut states = [Decision::EMPTY; 2];
    let again = composite
        .check_each(t0 + 19 * SECOND, 1, &mut states)
        .unwrap();
    assert!(!again.allowed);
    assert!(states[0].allowed);
    assert_eq!(states[0].remaining, 5);
    assert!(!states[1].allowed);
    assert_eq!(states[1].remaining, 0);
    assert!(composite.check(t0 + MINUTE, 1).unwrap().allowed);
}

#[test]
fn gcra_smooths_with_a_burst() {
    let limiter = Gcra::new(Quota::per_minute(20).unwrap());
    let t0 = 10 * MINUTE;
    for _ in 0..20 {
        assert!(limiter.check(t0, 1).unwrap().allowed);
    }
    let denied = limiter.check(t0, 1).unwrap();
    assert!(!denied.allowed);
    assert_eq!(denied.retry_after, 3 * SECOND);
    assert_eq!(denied.reset_after, MINUTE);
    assert!(limiter.check(t0 + 3 * SECOND, 1).unwrap().allowed);
}
