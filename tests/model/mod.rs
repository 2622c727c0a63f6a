//! Deliberately naive, sequential reference models of every ratecore algorithm.
//!
//! They are written from the specification (the module docs of the algorithms in
//! `src/algorithm/` and of `src/composite.rs`, and `docs/algorithms.md`), not from the
//! implementation: all state and arithmetic is kept in `u128`, where nothing near
//! `u64::MAX` can overflow, and only the final answer is mapped to the documented [`NEVER`] when a moment is not representable
//! in `u64` nanoseconds. Nothing here is lock-free or clever; it is meant to be obviously
//! right.

// Each test binary that includes this module uses only some of the models.
#![allow(dead_code)]

pub mod approx;
pub mod composite;
pub mod fixed;
pub mod gcra;
pub mod strict;

use ratecore::{Algorithm, CheckError, Decision, QuotaError, NEVER};

pub use approx::ApproxModel;
pub use composite::CompositeModel;
pub use fixed::FixedModel;
pub use gcra::GcraModel;
pub use strict::StrictModel;

/// `u64::MAX` as a `u128`: the last representable nanosecond.
pub const MAX: u128 = u64::MAX as u128;

/// The most sub-windows a strict window may have (`MAX_SUB_WINDOWS` in the spec).
pub const MAX_SUB_WINDOWS: u32 = 4096;

/// Nanoseconds from `now` until `moment`, or [`NEVER`] when `moment` lies beyond
/// `u64::MAX`.
pub fn until(moment: u128, now: u128) -> u64 {
    assert!(moment >= now, "model bug: moment {moment} before now {now}");
    if moment > MAX {
        NEVER
    } else {
        narrow(moment - now)
    }
}

/// A `u128` the model knows to fit in `u64`.
pub fn narrow(value: u128) -> u64 {
    u64::try_from(value).expect("model bug: value does not fit u64")
}

/// Bits needed to write every value in `0..=max`.
pub fn bits(max: u128) -> u32 {
    128 - max.leading_zeros()
}

/// `⌈a / b⌉` for `b > 0`.
pub fn ceil_div(a: u128, b: u128) -> u128 {
    a / b + u128::from(a % b != 0)
}

/// The `CostExceedsLimit` error every algorithm returns for a cost above its capacity.
pub fn cost_check(cost: u64, capacity: u64) -> Result<(), CheckError> {
    if cost > capacity {
        Err(CheckError::CostExceedsLimit {
            cost,
            limit: capacity,
        })
    } else {
        Ok(())
    }
}

/// The quota parameters a model is built from (`burst` already defaulted to `limit`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaParams {
    /// Requests per period.
    pub limit: u64,
    /// Period in nanoseconds.
    pub period: u64,
    /// GCRA burst.
    pub burst: u64,
}

impl QuotaParams {
    /// The parameters of an already validated `quota`.
    pub fn of(quota: &ratecore::Quota) -> Self {
        Self {
            limit: quota.limit(),
            period: quota.period(),
            burst: quota.burst(),
        }
    }
}

/// What `Quota::new(limit, period)` followed by `with_burst(burst)` (when `Some`) must
/// return, per the documented validation rules.
pub fn expected_quota(
    limit: u64,
    period: u64,
    burst: Option<u64>,
) -> Result<QuotaParams, QuotaError> {
    if limit == 0 {
        return Err(QuotaError::ZeroLimit);
    }
    if period == 0 {
        return Err(QuotaError::ZeroPeriod);
    }
    // The emission interval ⌈period / limit⌉ is below 1 ns exactly when period < limit.
    if period < limit {
        return Err(QuotaError::EmissionIntervalTooSmall { limit, period });
    }
    let interval = ceil_div(u128::from(period), u128::from(limit));
    // `Quota::new` validates its default burst (= limit) first.
    if u128::from(limit) * interval > MAX {
        return Err(QuotaError::BurstOverflow);
    }
    let burst = match burst {
        None => limit,
        Some(0) => return Err(QuotaError::ZeroBurst),
        Some(b) => b,
    };
    if u128::from(burst) * interval > MAX {
        return Err(QuotaError::BurstOverflow);
    }
    Ok(QuotaParams {
        limit,
        period,
        burst,
    })
}

/// Whether window numbers over the whole `u64` time range (`0..=max_window`) and
/// `counters` counts up to `limit` fit together in one 64-bit word.
pub fn window_state_fits(limit: u64, counters: u32, max_window: u128) -> bool {
    bits(u128::from(limit)) * counters + bits(max_window) <= 64
}

/// What a window model keeps besides its counts: the limit, the period, and the stored
/// window's number.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub limit: u64,
    pub period: u128,
    pub number: u128,
    /// How many counts the model's state word holds.
    counters: u32,
}

impl Window {
    /// Window 0 of `quota` for a model of `counters` counts, or `StateTooWide` unless
    /// window numbers over the whole `u64` range and `counters` counts up to the limit
    /// fit one word.
    pub fn new(quota: QuotaParams, counters: u32) -> Result<Self, QuotaError> {
        let period = u128::from(quota.period);
        Self::fits(quota.limit, counters, period)?;
        Ok(Self {
            limit: quota.limit,
            period,
            number: 0,
            counters,
        })
    }

    /// A per-client override: the period stays, the counts carry over, the limit
    /// becomes `quota`'s (checked as by [`Self::new`]).
    pub fn requota(&mut self, quota: QuotaParams) -> Result<(), QuotaError> {
        assert_eq!(
            u128::from(quota.period),
            self.period,
            "model bug: period changed"
        );
        Self::fits(quota.limit, self.counters, self.period)?;
        self.limit = quota.limit;
        Ok(())
    }

    fn fits(limit: u64, counters: u32, period: u128) -> Result<(), QuotaError> {
        if window_state_fits(limit, counters, MAX / period) {
            Ok(())
        } else {
            Err(QuotaError::StateTooWide)
        }
    }
}

/// A naive model of one limiter.
pub trait Model {
    /// The most one request may cost (the limit, or the burst for GCRA).
    fn capacity(&self) -> u64;
    /// The decision for a request of `cost` at `now`, without changing anything.
    fn peek(&self, now: u64, cost: u64) -> Result<Decision, CheckError>;
    /// The decision for a request of `cost` at `now`, consuming `cost` if admitted.
    fn check(&mut self, now: u64, cost: u64) -> Result<Decision, CheckError>;
}

/// A model as a pure decision and the write an admission makes; [`Model`] follows.
pub trait Decide {
    /// What an admission that costs something stores.
    type Write;
    /// The decision for a request of `cost` at `now`, and what to store if it consumes
    /// quota.
    fn decide(&self, now: u64, cost: u64) -> Result<(Decision, Option<Self::Write>), CheckError>;
    /// Stores an admission's write.
    fn apply(&mut self, write: Self::Write);
    /// The most one request may cost (the limit, or the burst for GCRA).
    fn capacity(&self) -> u64;
}

impl<T: Decide> Model for T {
    fn capacity(&self) -> u64 {
        Decide::capacity(self)
    }

    fn peek(&self, now: u64, cost: u64) -> Result<Decision, CheckError> {
        self.decide(now, cost).map(|(d, _)| d)
    }

    fn check(&mut self, now: u64, cost: u64) -> Result<Decision, CheckError> {
        let (decision, write) = self.decide(now, cost)?;
        if let Some(write) = write {
            self.apply(write);
        }
        Ok(decision)
    }
}

/// Any of the four models, chosen at run time (mirrors `ratecore::Limiter`).
#[derive(Clone, Debug)]
pub enum AnyModel {
    /// GCRA.
    Gcra(GcraModel),
    /// Fixed window.
    Fixed(FixedModel),
    /// Approximate sliding window.
    Approx(ApproxModel),
    /// Strict sliding window.
    Strict(StrictModel),
}

impl AnyModel {
    /// The model of `algorithm` on `quota`, or the construction error the spec demands.
    pub fn new(algorithm: Algorithm, quota: QuotaParams) -> Result<Self, QuotaError> {
        Ok(match algorithm {
            Algorithm::Gcra => Self::Gcra(GcraModel::new(quota)),
            Algorithm::FixedWindow => Self::Fixed(FixedModel::new(quota)?),
            Algorithm::SlidingWindowApprox => Self::Approx(ApproxModel::new(quota)?),
            Algorithm::SlidingWindowStrict { sub_windows } => {
                Self::Strict(StrictModel::new(quota, sub_windows)?)
            }
        })
    }

    /// The same state judged from now on under `quota`, of the same algorithm and period
    /// (a per-client override): windows keep their counts, GCRA its theoretical arrival
    /// time, the strict window its log; the quota's construction error otherwise.
    pub fn requota(&mut self, quota: QuotaParams) -> Result<(), QuotaError> {
        match self {
            Self::Gcra(m) => {
                m.requota(quota);
                Ok(())
            }
            Self::Fixed(m) => m.requota(quota),
            Self::Approx(m) => m.requota(quota),
            Self::Strict(m) => m.requota(quota),
        }
    }

    fn as_model(&self) -> &dyn Model {
        match self {
            Self::Gcra(m) => m,
            Self::Fixed(m) => m,
            Self::Approx(m) => m,
            Self::Strict(m) => m,
        }
    }

    /// The documented effect of undoing, right away, the one admission of `cost` that
    /// turned `before` into `after`: exactly `before` for the single-word algorithms,
    /// [`StrictModel::undone`] for the strict window.
    #[allow(dead_code)] // used by some of the test crates that include the models
    pub fn undone(before: &Self, after: &Self, cost: u64) -> Self {
        match (before, after) {
            (Self::Strict(b), Self::Strict(a)) => Self::Strict(StrictModel::undone(b, a, cost)),
            _ => before.clone(),
        }
    }

    fn as_model_mut(&mut self) -> &mut dyn Model {
        match self {
            Self::Gcra(m) => m,
            Self::Fixed(m) => m,
            Self::Approx(m) => m,
            Self::Strict(m) => m,
        }
    }
}

impl Model for AnyModel {
    fn capacity(&self) -> u64 {
        self.as_model().capacity()
    }

    fn peek(&self, now: u64, cost: u64) -> Result<Decision, CheckError> {
        self.as_model().peek(now, cost)
    }

    fn check(&mut self, now: u64, cost: u64) -> Result<Decision, CheckError> {
        self.as_model_mut().check(now, cost)
    }
}
