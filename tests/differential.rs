//! Differential tests: every lock-free limiter, driven sequentially, must return exactly
//! the [`Decision`] (field by field, to the nanosecond) or the [`CheckError`] that the
//! naive reference models in `tests/model/` compute from the specification, at every step
//! of arbitrary request streams: forward and backward time steps, repeated times, huge
//! jumps, times near `u64::MAX`, costs of 0, up to and beyond the limit, and quotas from
//! tiny to enormous (including ones whose construction must fail with a typed
//! [`QuotaError`]).
//!
//! The runs are deterministic: proptest's RNG is seeded with a fixed value and failures
//! are not persisted to disk.

mod model;
mod support;

use model::{
    expected_quota, AnyModel, ApproxModel, CompositeModel, FixedModel, GcraModel, Model,
    QuotaParams, StrictModel,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use ratecore::{
    Algorithm, CheckError, Composite, Decision, FixedWindow, Gcra, Limiter, Quota, QuotaError,
    RateLimiter, SlidingWindowApprox, SlidingWindowStrict, Slot,
};
use support::gen::{
    advance, config, cost_spec, quota_params, start_time, step, CostSpec, Step, StepMix,
};

// ---------------------------------------------------------------------------------------
// Configuration and strategies
// ---------------------------------------------------------------------------------------

/// A GCRA burst, relative to the limit.
#[derive(Clone, Copy, Debug)]
enum BurstSpec {
    /// `Quota::new`'s default (= limit).
    Default,
    /// This exact burst (0 must be rejected).
    Exactly(u64),
    /// `limit × k`.
    Times(u8),
}

impl BurstSpec {
    fn resolve(self, limit: u64) -> Option<u64> {
        match self {
            Self::Default => None,
            Self::Exactly(burst) => Some(burst),
            Self::Times(k) => Some(limit.saturating_mul(u64::from(k))),
        }
    }
}

fn burst_spec() -> impl Strategy<Value = BurstSpec> {
    prop_oneof![
        4 => Just(BurstSpec::Default),
        3 => (0..=5u64).prop_map(BurstSpec::Exactly),
        2 => (1..=4u8).prop_map(BurstSpec::Times),
        1 => any::<u64>().prop_map(BurstSpec::Exactly),
    ]
}

/// `(limit, period, burst)`: [`quota_params`] with a [`burst_spec`] resolved against the
/// limit.
fn quota_with_burst() -> impl Strategy<Value = (u64, u64, Option<u64>)> {
    (quota_params(), burst_spec())
        .prop_map(|((limit, period), burst)| (limit, period, burst.resolve(limit)))
}

/// How time moves: mostly forward, often to window and sub-window boundaries (the
/// limiter's own sub-windows among them), rarely far.
const STEPS: StepMix = StepMix::BOUNDARIES;

/// One request in a stream.
#[derive(Clone, Copy, Debug)]
struct Op {
    step: Step,
    cost: CostSpec,
    /// What to call: `kind % 4 == 0` peeks (composites: 0 check, 1 check_each, 2 peek,
    /// 3 peek_each).
    kind: u8,
    /// Composites: which limit's period and capacity scale `step` and `cost`.
    select: u8,
}

fn ops(max_len: usize) -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        (step(STEPS), cost_spec(8, 5), 0..8u8, any::<u8>()).prop_map(
            |(step, cost, kind, select)| Op {
                step,
                cost,
                kind,
                select,
            },
        ),
        1..=max_len,
    )
}

fn algorithm() -> impl Strategy<Value = Algorithm> {
    prop_oneof![
        Just(Algorithm::Gcra),
        Just(Algorithm::FixedWindow),
        Just(Algorithm::SlidingWindowApprox),
        (1..=64u32).prop_map(|sub_windows| Algorithm::SlidingWindowStrict { sub_windows }),
    ]
}

fn sub_windows() -> impl Strategy<Value = u32> {
    prop_oneof![
        12 => 1..=64u32,
        1 => Just(0u32),
        1 => 4096..=4097u32,
    ]
}

// ---------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------

/// Builds the quota (and burst) both ways: the crate's must succeed exactly when the
/// spec says, with the same typed error otherwise. `None`: construction failed as it must.
fn build_quota(
    limit: u64,
    period: u64,
    burst: Option<u64>,
) -> Result<Option<(Quota, QuotaParams)>, TestCaseError> {
    let built = Quota::new(limit, period).and_then(|q| match burst {
        Some(b) => q.with_burst(b),
        None => Ok(q),
    });
    match (built, expected_quota(limit, period, burst)) {
        (Ok(quota), Ok(params)) => {
            prop_assert_eq!(
                (quota.limit(), quota.period(), quota.burst()),
                (params.limit, params.period, params.burst)
            );
            Ok(Some((quota, params)))
        }
        (Err(got), Err(want)) => {
            prop_assert_eq!(got, want, "quota {}/{} burst {:?}", limit, period, burst);
            Ok(None)
        }
        (got, want) => Err(TestCaseError::fail(format!(
            "quota {limit}/{period} burst {burst:?}: built {got:?}, spec says {want:?}"
        ))),
    }
}

/// Compares a limiter's construction with the model's: both succeed, or both fail with
/// the same typed error (`None`).
fn build_both<L, M: Model>(
    what: &str,
    built: Result<L, QuotaError>,
    model: Result<M, QuotaError>,
) -> Result<Option<(L, M)>, TestCaseError> {
    match (built, model) {
        (Ok(limiter), Ok(model)) => Ok(Some((limiter, model))),
        (Err(got), Err(want)) => {
            prop_assert_eq!(got, want, "{}", what);
            Ok(None)
        }
        (got, want) => Err(TestCaseError::fail(format!(
            "{what}: construction {}, spec says {want:?}",
            if got.is_ok() { "succeeded" } else { "failed" },
            want = want.err()
        ))),
    }
}

/// [`build_both`], then, when both were built, [`run_single`] on them.
fn build_and_run<L: RateLimiter, M: Model>(
    what: &str,
    (built, model): (Result<L, QuotaError>, Result<M, QuotaError>),
    start: u64,
    (unit, sub_windows): (u64, u32),
    ops: &[Op],
) -> Result<(), TestCaseError> {
    if let Some((limiter, mut model)) = build_both(what, built, model)? {
        run_single(&limiter, &mut model, start, unit, sub_windows, ops)?;
    }
    Ok(())
}

/// The number of sub-windows time steps align to: the strict window's own, else 1.
fn sub_windows_of(algorithm: Algorithm) -> u32 {
    match algorithm {
        Algorithm::SlidingWindowStrict { sub_windows } => sub_windows,
        _ => 1,
    }
}

/// Drives `limiter` and `model` through `ops` from `start`, comparing every answer.
fn run_single(
    limiter: &dyn RateLimiter,
    model: &mut dyn Model,
    start: u64,
    unit: u64,
    sub_windows: u32,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let mut now = start;
    for (i, op) in ops.iter().enumerate() {
        now = advance(now, op.step, unit, sub_windows);
        let cost = op.cost.resolve(model.capacity());
        let peek = op.kind % 4 == 0;
        let (got, want) = if peek {
            (limiter.peek(now, cost), model.peek(now, cost))
        } else {
            (limiter.check(now, cost), model.check(now, cost))
        };
        prop_assert_eq!(
            got,
            want,
            "step {} ({}) at now={} cost={}",
            i,
            if peek { "peek" } else { "check" },
            now,
            cost
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// One algorithm at a time
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(2000, 0x6C2A_0001))]

    /// GCRA against its model.
    #[test]
    fn gcra_matches_model(
        (limit, period, burst) in quota_with_burst(),
        start in start_time(),
        ops in ops(96),
    ) {
        let Some((quota, params)) = build_quota(limit, period, burst)? else {
            return Ok(());
        };
        let limiter = Gcra::new(quota);
        let mut model = GcraModel::new(params);
        run_single(&limiter, &mut model, start, period, 1, &ops)?;
    }
}

/// A proptest of a window limiter (no burst, no sub-windows) against its model, both built
/// with `new` from the quota.
macro_rules! window_matches_model {
    ($(#[$doc:meta])* $name:ident, $seed:expr, $what:expr, $limiter:ident, $model:ident) => {
        proptest! {
            #![proptest_config(config(2000, $seed))]

            $(#[$doc])*
            #[test]
            fn $name(
                (limit, period) in quota_params(),
                start in start_time(),
                ops in ops(96),
            ) {
                let Some((quota, params)) = build_quota(limit, period, None)? else {
                    return Ok(());
                };
                let both = ($limiter::new(quota), $model::new(params));
                build_and_run($what, both, start, (period, 1), &ops)?;
            }
        }
    };
}

window_matches_model!(
    /// Fixed window against its model.
    fixed_window_matches_model,
    0x6C2A_0002,
    "fixed window",
    FixedWindow,
    FixedModel
);

window_matches_model!(
    /// Approximate sliding window against its model.
    sliding_window_matches_model,
    0x6C2A_0003,
    "sliding window",
    SlidingWindowApprox,
    ApproxModel
);

proptest! {
    #![proptest_config(config(2000, 0x6C2A_0004))]

    /// Strict sliding window (owned ring, or caller-provided slots) against its model.
    #[test]
    fn strict_window_matches_model(
        (limit, period) in quota_params(),
        sub_windows in sub_windows(),
        caller_storage in any::<bool>(),
        start in start_time(),
        ops in ops(96),
    ) {
        let Some((quota, params)) = build_quota(limit, period, None)? else {
            return Ok(());
        };
        let model = StrictModel::new(params, sub_windows);
        let what = format!("strict window, {sub_windows} sub-windows");
        if caller_storage {
            let slots = usize::try_from(sub_windows).unwrap() + 1;
            let ring: Vec<Slot> = (0..slots).map(|_| Slot::new()).collect();
            let built = SlidingWindowStrict::with_storage(quota, sub_windows, ring);
            build_and_run(&what, (built, model), start, (period, sub_windows), &ops)?;
        } else {
            let built = SlidingWindowStrict::new(quota, sub_windows);
            build_and_run(&what, (built, model), start, (period, sub_windows), &ops)?;
        }
    }
}

proptest! {
    #![proptest_config(config(1000, 0x6C2A_0005))]

    /// The run-time `Limiter` enum against the model of the algorithm it runs.
    #[test]
    fn limiter_enum_matches_model(
        algorithm in algorithm(),
        (limit, period, burst) in quota_with_burst(),
        start in start_time(),
        ops in ops(96),
    ) {
        let Some((quota, params)) = build_quota(limit, period, burst)? else {
            return Ok(());
        };
        let what = format!("{algorithm:?}");
        let both = (Limiter::new(algorithm, quota), AnyModel::new(algorithm, params));
        build_and_run(&what, both, start, (period, sub_windows_of(algorithm)), &ops)?;
    }
}

// ---------------------------------------------------------------------------------------
// Composites
// ---------------------------------------------------------------------------------------

/// A decision no limiter ever returns, to see which `states` entries were written.
const SENTINEL: Decision = Decision {
    allowed: true,
    limit: 0,
    remaining: 0xDEAD,
    reset_after: 0xBEEF,
    retry_after: 0xF00D,
};

/// Builds what can be built of `specs` (checking every failure is the specified typed
/// error): the limiters, their models and their time scales `(period, sub-windows)`.
#[allow(clippy::type_complexity)]
fn build_limits(
    specs: &[(Algorithm, (u64, u64), BurstSpec)],
) -> Result<(Vec<Limiter>, Vec<AnyModel>, Vec<(u64, u32)>), TestCaseError> {
    let mut limiters = Vec::new();
    let mut models = Vec::new();
    let mut scales = Vec::new();
    for &(algorithm, (limit, period), burst) in specs {
        let Some((quota, params)) = build_quota(limit, period, burst.resolve(limit))? else {
            continue;
        };
        let what = format!("{algorithm:?} in a composite");
        let built = Limiter::new(algorithm, quota);
        if let Some((limiter, model)) = build_both(&what, built, AnyModel::new(algorithm, params))?
        {
            limiters.push(limiter);
            models.push(model);
            scales.push((period, sub_windows_of(algorithm)));
        }
    }
    Ok((limiters, models, scales))
}

proptest! {
    #![proptest_config(config(1500, 0x6C2A_0006))]

    /// A composite of 2-3 mixed limits against the composite model, including every
    /// limit's state from `check_each` / `peek_each`.
    #[test]
    fn composite_matches_model(
        specs in prop::collection::vec((algorithm(), quota_params(), burst_spec()), 2..=3),
        start in start_time(),
        ops in ops(64),
    ) {
        let (limiters, models, scales) = build_limits(&specs)?;
        if limiters.is_empty() {
            prop_assert_eq!(Composite::new(limiters).err(), Some(QuotaError::EmptyComposite));
            return Ok(());
        }
        let count = limiters.len();
        let composite = Composite::new(limiters).unwrap();
        let mut model = CompositeModel::new(models);
        let mut now = start;
        for (i, op) in ops.iter().enumerate() {
            let chosen = usize::from(op.select) % count;
            let (period, sub_windows) = scales[chosen];
            now = advance(now, op.step, period, sub_windows);
            let cost = op.cost.resolve(model.limits[chosen].capacity());
            let kind = op.kind % 4;
            let commit = kind < 2;
            let with_states = kind % 2 == 1;
            let mut states = vec![SENTINEL; count + 1];
            let got = match (commit, with_states) {
                (true, false) => composite.check(now, cost),
                (true, true) => composite.check_each(now, cost, &mut states),
                (false, false) => composite.peek(now, cost),
                (false, true) => composite.peek_each(now, cost, &mut states),
            };
            let call = ["check", "check_each", "peek", "peek_each"][usize::from(kind)];
            match model.run(now, cost, commit) {
                Err(allowed_errors) => {
                    let got = got.err();
                    prop_assert!(
                        got.is_some_and(|e| allowed_errors.contains(&e)),
                        "step {} ({}) at now={} cost={}: got {:?}, want one of {:?}",
                        i, call, now, cost, got, allowed_errors
                    );
                }
                Ok(want) => {
                    prop_assert_eq!(
                        got, Ok(want.decision),
                        "step {} ({}) at now={} cost={}", i, call, now, cost
                    );
                    if with_states {
                        prop_assert_eq!(
                            &states[..count], &want.states[..],
                            "states, step {} ({}) at now={} cost={}", i, call, now, cost
                        );
                        prop_assert_eq!(states[count], SENTINEL, "entry beyond the limits written");
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Plain cases
// ---------------------------------------------------------------------------------------

#[test]
fn composite_rejects_empty_and_too_many_limits() {
    assert_eq!(
        Composite::new(Vec::new()).err(),
        Some(QuotaError::EmptyComposite)
    );
    let many = (0..17)
        .map(|_| Limiter::new(Algorithm::Gcra, Quota::per_second(5).unwrap()).unwrap())
        .collect();
    assert_eq!(Composite::new(many).err(), Some(QuotaError::TooManyLimits));
    let sixteen = (0..16)
        .map(|_| Limiter::new(Algorithm::Gcra, Quota::per_second(5).unwrap()).unwrap())
        .collect();
    assert!(Composite::new(sixteen).is_ok());
}

#[test]
fn strict_storage_of_the_wrong_length_is_a_typed_error() {
    let quota = Quota::per_second(10).unwrap();
    for len in [0usize, 4, 6, 10] {
        let ring: Vec<Slot> = (0..len).map(|_| Slot::new()).collect();
        assert_eq!(
            SlidingWindowStrict::with_storage(quota, 4, ring).err(),
            Some(QuotaError::StorageLength {
                expected: 5,
                actual: len
            })
        );
    }
}

#[test]
fn cost_above_capacity_is_an_error_for_every_algorithm() {
    let quota = Quota::new(10, 1_000_000).unwrap().with_burst(4).unwrap();
    let gcra = Gcra::new(quota);
    assert_eq!(
        gcra.check(0, 5),
        Err(CheckError::CostExceedsLimit { cost: 5, limit: 4 })
    );
    assert_eq!(
        gcra.peek(0, u64::MAX),
        Err(CheckError::CostExceedsLimit {
            cost: u64::MAX,
            limit: 4
        })
    );
    for algorithm in [
        Algorithm::FixedWindow,
        Algorithm::SlidingWindowApprox,
        Algorithm::SlidingWindowStrict { sub_windows: 7 },
    ] {
        let limiter = Limiter::new(algorithm, quota).unwrap();
        assert_eq!(
            limiter.check(0, 11),
            Err(CheckError::CostExceedsLimit {
                cost: 11,
                limit: 10
            }),
            "{algorithm:?}"
        );
        assert!(limiter.check(0, 10).unwrap().allowed, "{algorithm:?}");
    }
}

/// The models themselves reproduce the worked examples of the spec (docs/algorithms.md, lib docs).
#[test]
fn models_reproduce_the_spec_examples() {
    const SECOND: u64 = 1_000_000_000;
    const HOUR: u64 = 3600 * SECOND;
    let at_11_59 = 11 * HOUR + 59 * 60 * SECOND;
    let per_hour = expected_quota(1000, HOUR, None).unwrap();
    let mut strict = StrictModel::new(per_hour, 60).unwrap();
    for _ in 0..1000 {
        assert!(strict.check(at_11_59, 1).unwrap().allowed);
    }
    assert_eq!(
        strict.check(at_11_59 + HOUR - SECOND, 1).unwrap(),
        Decision {
            allowed: false,
            limit: 1000,
            remaining: 0,
            reset_after: SECOND,
            retry_after: SECOND,
        }
    );
    let admitted = strict.check(at_11_59 + HOUR, 1).unwrap();
    assert!(admitted.allowed);
    assert_eq!(admitted.remaining, 999);

    let mut gcra = GcraModel::new(expected_quota(5, SECOND, None).unwrap());
    for _ in 0..5 {
        assert!(gcra.check(SECOND, 1).unwrap().allowed);
    }
    assert_eq!(gcra.check(SECOND, 1).unwrap().retry_after, 200_000_000);
}
