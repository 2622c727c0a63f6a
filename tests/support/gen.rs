//! Deterministic proptest runs and the generators of request streams: how `now` moves
//! between requests ([`Step`]) and what a request costs ([`CostSpec`]), each relative to
//! the limit it is checked against, so that one stream exercises any quota.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed, TestCaseError, TestRunner};

/// `cases` cases from a fixed seed, nothing written to disk. XorShift rather than the
/// default ChaCha: in debug builds ChaCha dominated the run time.
pub fn config(cases: u32, seed: u64) -> Config {
    let mut config = Config::with_cases(cases);
    config.failure_persistence = None;
    config.rng_algorithm = RngAlgorithm::XorShift;
    config.rng_seed = RngSeed::Fixed(seed);
    config
}

/// Runs `cases` proptest cases of `strategy` (seeded with `seed`); `test` gets each
/// value and the case's number, from 1, to keep the cases' keys apart.
pub fn run_cases<S: Strategy>(
    cases: u32,
    seed: u64,
    strategy: S,
    test: impl Fn(S::Value, u64) -> Result<(), TestCaseError>,
) {
    let mut runner = TestRunner::new(config(cases, seed));
    let case = std::cell::Cell::new(0u64);
    runner
        .run(&strategy, |value| {
            case.set(case.get() + 1);
            test(value, case.get())
        })
        .unwrap();
}

/// `value`, or `u64::MAX` when it does not fit.
pub fn saturate(value: u128) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

/// `(limit, period)`: mostly constructible, from a few nanoseconds to `u64::MAX`, with
/// some that must be rejected.
pub fn quota_params() -> impl Strategy<Value = (u64, u64)> {
    prop_oneof![
        // Tiny periods: every nanosecond matters.
        5 => (1..=8u64).prop_flat_map(|l| (Just(l), l..=l * 64)),
        // Small limits, periods long enough for every window layout.
        6 => (1..=12u64, 256..=100_000u64),
        // Realistic: up to 1000 per 10 s.
        4 => (1..=1000u64, 1_000..=10_000_000_000u64),
        // Huge periods: moments beyond u64::MAX are common.
        3 => (1..=100u64, (u64::MAX / 4)..=u64::MAX),
        // Large limits.
        1 => ((1u64 << 20)..=(1u64 << 40), (1u64 << 40)..=u64::MAX),
        // Anything at all (mostly rejected or state too wide).
        1 => (any::<u64>(), any::<u64>()),
        // Zeros and other degenerate values.
        1 => (0..=2u64, 0..=2u64),
        1 => (prop_oneof![Just(u64::MAX), Just(u64::MAX - 1), 1..=3u64], prop_oneof![Just(u64::MAX), Just(u64::MAX - 1), 1..=3u64]),
    ]
}

/// `(limit, period, burst)` without the ones that are mostly rejected, so that every
/// algorithm accepts them and composites of several limits are usually constructible.
pub fn valid_quota_params() -> impl Strategy<Value = (u64, u64, Option<u64>)> {
    let limit_period = prop_oneof![
        4 => (1..=8u64).prop_flat_map(|l| (Just(l), (l * 32).max(256)..=l * 1024)),
        5 => (1..=12u64, 256..=100_000u64),
        4 => (1..=1000u64, 1_000_000..=10_000_000_000u64),
        2 => (1..=100u64, (u64::MAX / 4)..=u64::MAX),
    ];
    let burst = prop_oneof![4 => Just(None), 1 => (1..=5u64).prop_map(Some)];
    (limit_period, burst).prop_map(|((l, p), b)| (l, p, b))
}

/// The first `now`: zero, small, anything, or near `u64::MAX`.
pub fn start_time() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => Just(0u64),
        4 => 0..=1_000_000u64,
        2 => any::<u64>(),
        1 => (u64::MAX - 1_000_000)..=u64::MAX,
    ]
}

/// How `now` moves between two requests, relative to a time unit (a period).
#[derive(Clone, Copy, Debug)]
pub enum Step {
    /// The same `now` again.
    Same,
    /// Forward by `unit × k / 256` (up to four units).
    Forward(u16),
    /// Forward by a few nanoseconds.
    Tiny(u8),
    /// Backward by `unit × k / 256` (up to two units).
    Back(u16),
    /// Backward by a few nanoseconds.
    BackTiny(u8),
    /// To the next multiple of `⌈unit / k⌉` (a window or sub-window boundary), ±1 ns;
    /// `k = 0` means the limiter's own sub-window count.
    Align(u8, i8),
    /// To an arbitrary moment.
    Absolute(u64),
    /// To `u64::MAX − unit × k / 256`.
    NearMax(u16),
    /// To `u64::MAX − k`.
    MaxTiny(u8),
}

/// How often each kind of [`Step`] comes, relatively; `Align`'s `k` starts at
/// `align_from` (0 lets it align to the limiter's own sub-windows).
#[derive(Clone, Copy, Debug)]
pub struct StepMix {
    pub same: u32,
    pub forward: u32,
    pub tiny: u32,
    pub back: u32,
    pub back_tiny: u32,
    pub align: u32,
    pub align_from: u8,
    pub absolute: u32,
    pub near_max: u32,
    pub max_tiny: u32,
}

impl StepMix {
    /// Mostly forward, often to window and sub-window boundaries (the limiter's own
    /// sub-windows among them), rarely far: the single-limiter differential tests' mix.
    pub const BOUNDARIES: Self = Self {
        same: 30,
        forward: 100,
        tiny: 40,
        back: 30,
        back_tiny: 20,
        align: 40,
        align_from: 0,
        absolute: 2,
        near_max: 2,
        max_tiny: 1,
    };
}

/// Steps drawn as `mix` says. Jumps to arbitrary moments and near `u64::MAX` should be
/// rare, so that most streams spend most of their time away from `u64::MAX`.
pub fn step(mix: StepMix) -> impl Strategy<Value = Step> {
    prop_oneof![
        mix.same => Just(Step::Same),
        mix.forward => (0..=1024u16).prop_map(Step::Forward),
        mix.tiny => (1..=3u8).prop_map(Step::Tiny),
        mix.back => (1..=512u16).prop_map(Step::Back),
        mix.back_tiny => (1..=3u8).prop_map(Step::BackTiny),
        mix.align => (mix.align_from..=64u8, -1..=1i8).prop_map(|(k, d)| Step::Align(k, d)),
        mix.absolute => any::<u64>().prop_map(Step::Absolute),
        mix.near_max => (0..=1024u16).prop_map(Step::NearMax),
        mix.max_tiny => (0..=3u8).prop_map(Step::MaxTiny),
    ]
}

/// `now` after `step`, for a limit whose period is `unit` with `sub_windows` (or 1).
pub fn advance(now: u64, step: Step, unit: u64, sub_windows: u32) -> u64 {
    let scaled = |k: u16| u128::from(unit) * u128::from(k) / 256;
    let now128 = u128::from(now);
    match step {
        Step::Same => now,
        Step::Forward(k) => saturate(now128 + scaled(k)),
        Step::Tiny(k) => now.saturating_add(u64::from(k)),
        Step::Back(k) => saturate(now128.saturating_sub(scaled(k))),
        Step::BackTiny(k) => now.saturating_sub(u64::from(k)),
        Step::Align(k, delta) => {
            let k = if k == 0 {
                sub_windows.max(1)
            } else {
                u32::from(k)
            };
            let grid = u128::from(unit).div_ceil(u128::from(k)).max(1);
            let next = (now128 / grid + 1) * grid;
            saturate(match delta {
                -1 => next - 1,
                0 => next,
                _ => next + 1,
            })
        }
        Step::Absolute(t) => t,
        Step::NearMax(k) => saturate(u128::from(u64::MAX).saturating_sub(scaled(k))),
        Step::MaxTiny(k) => u64::MAX - u64::from(k),
    }
}

/// A request's cost, relative to the capacity it is checked against.
#[derive(Clone, Copy, Debug)]
pub enum CostSpec {
    /// A peek.
    Zero,
    /// The usual request.
    One,
    /// `capacity × k / 65535`.
    Fraction(u16),
    /// Exactly the capacity.
    Full,
    /// More than the capacity (by `k + 1`): must be `CostExceedsLimit`.
    Over(u8),
    /// Anything.
    Any(u64),
}

impl CostSpec {
    /// The cost against `capacity`.
    pub fn resolve(self, capacity: u64) -> u64 {
        match self {
            Self::Zero => 0,
            Self::One => 1,
            Self::Fraction(k) => saturate(u128::from(capacity) * u128::from(k) / 65535),
            Self::Full => capacity,
            Self::Over(k) => capacity.saturating_add(u64::from(k) + 1),
            Self::Any(cost) => cost,
        }
    }
}

/// Costs: mostly one, sometimes a fraction of the capacity, rarely all of it, above it
/// or anything; `one` and `fraction` weigh the common ones.
pub fn cost_spec(one: u32, fraction: u32) -> impl Strategy<Value = CostSpec> {
    prop_oneof![
        2 => Just(CostSpec::Zero),
        one => Just(CostSpec::One),
        fraction => any::<u16>().prop_map(CostSpec::Fraction),
        1 => Just(CostSpec::Full),
        1 => (0..=2u8).prop_map(CostSpec::Over),
        1 => any::<u64>().prop_map(CostSpec::Any),
    ]
}
