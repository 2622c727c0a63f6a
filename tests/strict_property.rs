//! The strict sliding window's promise, checked directly rather than against a model:
//! across random request streams, the cost admitted in *any* interval `[t, t + period)`
//! of effective admission times never exceeds `limit`.
//!
//! The effective time of a request is `max(now, latest admission time so far)` (time
//! going backwards never refunds quota); the test tracks it itself. The heaviest interval
//! of length `period` always starts at an admission, so checking the intervals that start
//! at every admission checks them all.
//!
//! A limiter that denied everything would pass that, so the test also checks a liveness
//! property the spec implies: a request arriving when nothing was admitted in the last
//! `period` (every count released) is admitted.
//!
//! Deterministic: proptest's RNG is seeded with a fixed value; nothing is written to disk.

mod support;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use ratecore::{CheckError, Quota, QuotaError, RateLimiter, SlidingWindowStrict};
use support::gen::config;

/// `(limit, period)`: small limits so the window fills up, periods from a few ns on.
fn quota_params() -> impl Strategy<Value = (u64, u64)> {
    prop_oneof![
        4 => (1..=16u64).prop_flat_map(|l| (Just(l), l..=l * 200)),
        4 => (1..=100u64, 1_000..=1_000_000u64),
        2 => (1..=1000u64, 1_000_000_000..=3_600_000_000_000u64),
        1 => (1..=10u64, (u64::MAX / 2)..=u64::MAX),
        1 => (1u64 << 31..=u64::from(u32::MAX) + 2, 1u64 << 40..=1u64 << 50),
    ]
}

/// How `now` moves: mostly forward, sometimes backwards, now and then to near `u64::MAX`.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// The same moment again.
    Same,
    /// Forward by `period × k / 1024` (up to a quarter period).
    Forward(u16),
    /// Forward by `period × k / 256` (up to two periods).
    Leap(u16),
    /// Forward by a few nanoseconds.
    Tiny(u8),
    /// Backward by `period × k / 256` (up to a period).
    Back(u16),
    /// To `u64::MAX − period × k / 256`.
    NearMax(u16),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        10 => Just(Step::Same),
        40 => (0..=256u16).prop_map(Step::Forward),
        8 => (0..=512u16).prop_map(Step::Leap),
        10 => (1..=3u8).prop_map(Step::Tiny),
        8 => (1..=256u16).prop_map(Step::Back),
        1 => (0..=1024u16).prop_map(Step::NearMax),
    ]
}

fn advance(now: u64, step: Step, period: u64) -> u64 {
    let scaled = |k: u16, div: u128| u128::from(period) * u128::from(k) / div;
    let saturate = |v: u128| u64::try_from(v).unwrap_or(u64::MAX);
    match step {
        Step::Same => now,
        Step::Forward(k) => saturate(u128::from(now) + scaled(k, 1024)),
        Step::Leap(k) => saturate(u128::from(now) + scaled(k, 256)),
        Step::Tiny(k) => now.saturating_add(u64::from(k)),
        Step::Back(k) => saturate(u128::from(now).saturating_sub(scaled(k, 256))),
        Step::NearMax(k) => saturate(u128::from(u64::MAX).saturating_sub(scaled(k, 256))),
    }
}

/// A cost relative to the limit: `Fraction(k)` is `⌈limit × k / 256⌉`; `Over` exceeds it.
#[derive(Clone, Copy, Debug)]
enum Cost {
    Zero,
    One,
    Fraction(u8),
    Over,
}

fn cost() -> impl Strategy<Value = Cost> {
    prop_oneof![
        1 => Just(Cost::Zero),
        8 => Just(Cost::One),
        4 => any::<u8>().prop_map(Cost::Fraction),
        1 => Just(Cost::Over),
    ]
}

impl Cost {
    fn resolve(self, limit: u64) -> u64 {
        match self {
            Self::Zero => 0,
            Self::One => 1,
            Self::Fraction(k) => {
                let scaled = (u128::from(limit) * u128::from(k)).div_ceil(256);
                u64::try_from(scaled).unwrap().max(1)
            }
            Self::Over => limit + 1,
        }
    }
}

/// Drives one limiter through `requests` and checks both properties.
fn run(
    limit: u64,
    period: u64,
    sub_windows: u32,
    start: u64,
    requests: &[(Step, Cost)],
) -> Result<(), TestCaseError> {
    let quota = match Quota::new(limit, period) {
        Ok(quota) => quota,
        Err(e) => {
            let expected = QuotaError::EmissionIntervalTooSmall { limit, period };
            prop_assert_eq!(e, expected);
            return Ok(());
        }
    };
    let limiter = match SlidingWindowStrict::new(quota, sub_windows) {
        Ok(limiter) => limiter,
        Err(e) => {
            prop_assert!(
                (e == QuotaError::TooManySubWindows && u64::from(sub_windows) > period)
                    || (e == QuotaError::StateTooWide && limit > u64::from(u32::MAX)),
                "unexpected {:?} for {}/{} with {} sub-windows",
                e,
                limit,
                period,
                sub_windows
            );
            return Ok(());
        }
    };
    let period = u128::from(period);
    let mut now = start;
    // Latest admission time so far (0 before any: the ring starts at time 0).
    let mut latest: u64 = 0;
    // (effective time, cost) of every admission, in time order.
    let mut admitted: Vec<(u128, u128)> = Vec::new();
    for (i, &(step, cost)) in requests.iter().enumerate() {
        now = advance(now, step, quota.period());
        let cost = cost.resolve(limit);
        let effective = now.max(latest);
        let decision = limiter.check(now, cost);
        if cost > limit {
            prop_assert_eq!(
                decision,
                Err(CheckError::CostExceedsLimit { cost, limit }),
                "request {}",
                i
            );
            continue;
        }
        let decision = decision.unwrap();
        let idle = admitted
            .last()
            .is_none_or(|&(t, _)| t + period <= u128::from(effective));
        prop_assert!(
            decision.allowed || !idle,
            "request {} (now={}, cost={}) denied although nothing was admitted in the last \
             period: {:?}",
            i,
            now,
            cost,
            decision
        );
        if decision.allowed && cost > 0 {
            admitted.push((u128::from(effective), u128::from(cost)));
            latest = effective;
        }
    }
    for (i, &(from, _)) in admitted.iter().enumerate() {
        let in_interval: u128 = admitted[i..]
            .iter()
            .take_while(|&&(t, _)| t < from + period)
            .map(|&(_, c)| c)
            .sum();
        prop_assert!(
            in_interval <= u128::from(limit),
            "{} admitted in [{}, {} + {}) but the limit is {}; admissions: {:?}",
            in_interval,
            from,
            from,
            period,
            limit,
            admitted
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(1500, 0x5791_C701))]

    /// No interval of length `period` ever holds more than `limit` of admitted cost, and
    /// an idle window admits.
    #[test]
    fn strict_window_never_over_admits(
        (limit, period) in quota_params(),
        sub_windows in 1..=64u32,
        start in prop_oneof![4 => 0..=1_000_000u64, 1 => any::<u64>()],
        requests in prop::collection::vec((step(), cost()), 1..=160),
    ) {
        run(limit, period, sub_windows, start, &requests)?;
    }
}
