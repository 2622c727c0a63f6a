//! Giving back a strict-window charge never releases anyone else's charge early.
//!
//! The sequence an independent review found against a first version of the exact undo
//! (`StrictConfig::uncharge`), which restored a cell whenever it compared equal to the
//! cell our charge wrote: after C charges, A charges, C gives back and D charges at A's
//! time, the cell equals A's again, but the charge in it is D's. Restoring the cell as it
//! was before A (newest time 1.0 s) would release D's charge, made at 1.5 s, half a second
//! early, and admit a fourth request inside one period.

use ratecore::{Quota, RateLimiter, Reserve, SlidingWindowStrict};

const MS: u64 = 1_000_000;

#[test]
fn a_give_back_never_moves_another_charge_earlier() {
    // 3 per 10 s, sub-windows of 1 s.
    let window = SlidingWindowStrict::new(Quota::new(3, 10_000 * MS).unwrap(), 10).unwrap();
    let (_, c) = window.reserve(1_000 * MS, 1).unwrap();
    let (_, a) = window.reserve(1_500 * MS, 1).unwrap();
    window.cancel(c.unwrap());
    let (d, _) = window.reserve(1_500 * MS, 1).unwrap();
    assert!(d.allowed);
    window.cancel(a.unwrap());
    // D's charge (1.5 s) is the only one left: it holds until 11.5 s.
    let at = 11_000 * MS;
    let admitted: Vec<bool> = (0..3)
        .map(|_| window.check(at, 1).unwrap().allowed)
        .collect();
    assert_eq!(
        admitted,
        [true, true, false],
        "at most 3 in [1.5 s, 11.5 s)"
    );
}

#[test]
fn a_give_back_of_the_charge_that_opened_a_sub_window_is_exact() {
    // The charge that opened its sub-window, given back untouched: as if never made.
    let window = SlidingWindowStrict::new(Quota::new(2, 10_000 * MS).unwrap(), 10).unwrap();
    assert!(window.check(1_000 * MS, 1).unwrap().allowed);
    let (_, late) = window.reserve(9_500 * MS, 1).unwrap();
    window.cancel(late.unwrap());
    // Only the 1.0 s charge counts: it is released at 11.0 s, not at 19.5 s.
    let d = window.peek(10_000 * MS, 2).unwrap();
    assert!(!d.allowed);
    assert_eq!(d.retry_after, 1_000 * MS);
}
