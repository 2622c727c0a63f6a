//! The hot path never allocates: `check` and `peek` on every algorithm, on the [`Limiter`]
//! enum and on [`Composite`] (admissions, denials, `check_each` / `peek_each`, errors),
//! over many calls with varied times and costs.

use std::hint::black_box;

use ratecore::{
    Algorithm, CheckError, Composite, Decision, FixedWindow, Gcra, Limiter, Quota, RateLimiter,
    SlidingWindowApprox, SlidingWindowStrict, Slot, NEVER,
};

use crate::assert_no_alloc;

const SECOND: u64 = 1_000_000_000;

/// A deterministic spread of times: mostly advancing, sometimes going backwards, sometimes
/// frozen, sometimes jumping ahead; and, once asked to, at the far end of the `u64` range
/// (where the limiters' states get stuck for good: time never comes back).
struct Times {
    state: u64,
    now: u64,
    at_the_end: bool,
}

impl Times {
    fn new(seed: u64) -> Self {
        Self {
            state: seed | 1,
            now: 10 * SECOND,
            at_the_end: false,
        }
    }

    fn next(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        let r = self.state;
        if self.at_the_end {
            return u64::MAX - r % (3 * SECOND);
        }
        match r % 16 {
            0 => self.now.saturating_sub(r % SECOND), // backwards
            1..=4 => self.now,                        // frozen
            5 => {
                // a long pause
                self.now = self.now.saturating_add(r % (5 * SECOND));
                self.now
            }
            _ => {
                self.now = self.now.saturating_add(r % (SECOND / 100));
                self.now
            }
        }
    }
}

/// Calls per limiter: enough to pass through admission, denial, window turnover and
/// replenishment many times over.
const CALLS: usize = 20_000;

/// Drives `limiter` with `CALLS` checks and peeks of varied times and costs (including
/// cost 0 and a cost above the limit, which is an error), all inside one measured section.
fn exercise(what: &str, limiter: &impl RateLimiter, limit: u64, seed: u64) {
    let mut times = Times::new(seed);
    let (allowed, denied) = assert_no_alloc(what, || {
        let mut allowed = 0u64;
        let mut denied = 0u64;
        for i in 0..CALLS {
            times.at_the_end = i >= CALLS - CALLS / 50;
            let now = times.next();
            let cost = match i % 7 {
                0 => 0,
                1 => limit,
                _ => 1 + (i as u64 % limit.min(3)),
            };
            match limiter.check(black_box(now), black_box(cost)) {
                Ok(d) if d.allowed => allowed += 1,
                Ok(_) => denied += 1,
                Err(e) => panic!("{e}"),
            }
            let _ = black_box(limiter.peek(now, cost).unwrap());
            let _ = black_box(limiter.peek(now, 1).unwrap());
            if i % 101 == 0 {
                let error = limiter.check(now, limit + 1).unwrap_err();
                assert!(matches!(error, CheckError::CostExceedsLimit { .. }));
                black_box(limiter.peek(now, u64::MAX).unwrap_err());
            }
        }
        (allowed, denied)
    });
    // The measured section really went through both paths.
    assert!(allowed > 100, "{what}: only {allowed} admitted");
    assert!(denied > 100, "{what}: only {denied} denied");
}

fn quota(limit: u64) -> Quota {
    Quota::per_second(limit).unwrap()
}

#[test]
fn single_limiters_never_allocate() {
    exercise("Gcra", &Gcra::new(quota(5)), 5, 1);
    exercise(
        "Gcra with burst",
        &Gcra::new(quota(50).with_burst(3).unwrap()),
        3,
        2,
    );
    exercise("FixedWindow", &FixedWindow::new(quota(5)).unwrap(), 5, 3);
    exercise(
        "SlidingWindowApprox",
        &SlidingWindowApprox::new(quota(5)).unwrap(),
        5,
        4,
    );
    exercise(
        "SlidingWindowStrict (boxed ring)",
        &SlidingWindowStrict::new(quota(5), 60).unwrap(),
        5,
        5,
    );
    let ring: [Slot; 5] = std::array::from_fn(|_| Slot::new());
    exercise(
        "SlidingWindowStrict (caller's storage)",
        &SlidingWindowStrict::with_storage(quota(5), 4, ring).unwrap(),
        5,
        6,
    );
}

#[test]
fn limiter_enum_never_allocates() {
    for (seed, algorithm) in [
        Algorithm::Gcra,
        Algorithm::FixedWindow,
        Algorithm::SlidingWindowApprox,
        Algorithm::SlidingWindowStrict { sub_windows: 1 },
        Algorithm::SlidingWindowStrict { sub_windows: 60 },
    ]
    .into_iter()
    .enumerate()
    {
        let limiter = Limiter::new(algorithm, quota(4)).unwrap();
        exercise(
            &format!("Limiter::{algorithm:?}"),
            &limiter,
            4,
            10 + seed as u64,
        );
    }
}

fn composite() -> Composite {
    Composite::new(vec![
        Limiter::new(Algorithm::Gcra, quota(4)).unwrap(),
        Limiter::new(Algorithm::FixedWindow, Quota::per_minute(20).unwrap()).unwrap(),
        Limiter::new(Algorithm::SlidingWindowApprox, quota(6)).unwrap(),
        Limiter::new(
            Algorithm::SlidingWindowStrict { sub_windows: 10 },
            Quota::new(8, 2 * SECOND).unwrap(),
        )
        .unwrap(),
    ])
    .unwrap()
}

#[test]
fn composite_never_allocates() {
    exercise("Composite", &composite(), 4, 20);
}

#[test]
fn composite_each_never_allocates() {
    let composite = composite();
    // The caller's buffers: exactly as many entries, fewer, more, and none.
    let mut exact = [Decision {
        allowed: false,
        limit: 0,
        remaining: 0,
        reset_after: 0,
        retry_after: 0,
    }; 4];
    let mut fewer = [exact[0]; 2];
    let mut more = [exact[0]; 6];
    let mut times = Times::new(30);
    let (allowed, denied) = assert_no_alloc("Composite::check_each / peek_each", || {
        let mut allowed = 0u64;
        let mut denied = 0u64;
        for i in 0..CALLS {
            times.at_the_end = i >= CALLS - CALLS / 50;
            let now = times.next();
            let cost = 1 + i as u64 % 2;
            let states: &mut [Decision] = match i % 4 {
                0 => &mut exact,
                1 => &mut fewer,
                2 => &mut more,
                _ => &mut [],
            };
            let d = composite.check_each(now, cost, states).unwrap();
            if d.allowed {
                allowed += 1;
            } else {
                denied += 1;
            }
            black_box(&*states);
            let _ = black_box(composite.peek_each(now, cost, states).unwrap());
            let _ = black_box(composite.peek_each(now, 0, states).unwrap());
            if i % 97 == 0 {
                black_box(composite.check_each(now, 5, states).unwrap_err());
            }
        }
        (allowed, denied)
    });
    assert!(
        allowed > 100 && denied > 100,
        "{allowed} admitted, {denied} denied"
    );
}

#[test]
fn composite_deny_path_never_allocates() {
    // A denial after the first limit admits: the second limit is exhausted.
    let composite = Composite::new(vec![
        Limiter::new(Algorithm::FixedWindow, quota(100)).unwrap(),
        Limiter::new(Algorithm::Gcra, quota(1)).unwrap(),
    ])
    .unwrap();
    let now = 5 * SECOND;
    assert!(composite.check(now, 1).unwrap().allowed);
    let mut states = [composite.peek(now, 0).unwrap(); 2];
    assert_no_alloc("Composite deny path", || {
        for _ in 0..CALLS {
            let d = composite.check(now, 1).unwrap();
            assert!(!d.allowed);
            let d = composite.check_each(now, 1, &mut states).unwrap();
            assert!(!d.allowed);
            assert!(states[0].allowed && !states[1].allowed);
        }
    });
    // A denial consumed nothing from the admitting limit.
    assert_eq!(composite.limits()[0].peek(now, 0).unwrap().remaining, 99);
}

#[test]
fn composite_give_back_under_contention_never_allocates() {
    // A second thread takes the last limit's units directly, at the same (shared) time,
    // while this thread checks the composite: some of this thread's checks pass the peek
    // and are then denied by a reservation, which takes the give-back path. (Best effort:
    // the interleaving is up to the scheduler.) Only this thread's allocations count.
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let composite = Composite::new(vec![
        Limiter::new(Algorithm::Gcra, quota(1_000_000)).unwrap(),
        Limiter::new(Algorithm::FixedWindow, Quota::new(1, 1_000).unwrap()).unwrap(),
    ])
    .unwrap();
    let clock = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let now = clock.load(Ordering::Relaxed);
                let _ = black_box(composite.limits()[1].check(now, 1).unwrap());
            }
        });
        assert_no_alloc("Composite under contention", || {
            for _ in 0..CALLS * 5 {
                let now = clock.fetch_add(250, Ordering::Relaxed) + 250;
                let _ = black_box(composite.check(now, 1).unwrap());
            }
        });
        stop.store(true, Ordering::Relaxed);
    });
}

#[test]
fn far_future_and_never_never_allocate() {
    // Decisions at the end of the u64 range report NEVER without allocating.
    let gcra = Gcra::new(quota(2));
    let strict = SlidingWindowStrict::new(quota(2), 4).unwrap();
    let end = u64::MAX - 1;
    assert_no_alloc("edge-of-time checks", || {
        for _ in 0..3 {
            let _ = black_box(gcra.check(end, 1).unwrap());
            let _ = black_box(strict.check(end, 1).unwrap());
        }
        let d = gcra.check(end, 2).unwrap();
        assert!(!d.allowed);
        assert_eq!(d.retry_after, NEVER);
    });
}
