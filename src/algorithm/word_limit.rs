//! [`WordLimit`]: a single-word algorithm (GCRA, fixed window, approximate sliding window)
//! chosen at run time, for the keyed tables and the Redis backend, which hold many limits
//! of different algorithms side by side.

use super::fixed_window::FixedWindowConfig;
use super::gcra::GcraConfig;
use super::sliding_approx::SlidingWindowConfig;
use super::word::WordState;
use super::Algorithm;
use crate::decision::Outcome;
use crate::error::{CheckError, QuotaError};
use crate::quota::Quota;
use crate::Reservation;

/// A single-word algorithm's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WordLimit {
    /// GCRA.
    Gcra(GcraConfig),
    /// Fixed window.
    FixedWindow(FixedWindowConfig),
    /// Approximate sliding window.
    SlidingWindowApprox(SlidingWindowConfig),
}

impl WordLimit {
    /// Parameters for `algorithm` on `quota`; `Ok(None)` if `algorithm` is not a
    /// single-word algorithm.
    ///
    /// # Errors
    /// Whatever the algorithm rejects (see [`QuotaError`]).
    pub const fn new(algorithm: Algorithm, quota: &Quota) -> Result<Option<Self>, QuotaError> {
        Self::with_width(algorithm, quota, false)
    }

    /// The window algorithms' word layout (`None` for GCRA, whose word is a time).
    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    pub(crate) const fn layout(&self) -> Option<super::packing::Layout> {
        match self {
            Self::Gcra(_) => None,
            Self::FixedWindow(c) => Some(c.layout()),
            Self::SlidingWindowApprox(c) => Some(c.layout()),
        }
    }

    /// [`new`](Self::new) with window counters as wide as the window numbers allow, so
    /// a word written under one limit reads the same under another (overrides).
    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    pub(crate) const fn new_wide(
        algorithm: Algorithm,
        quota: &Quota,
    ) -> Result<Option<Self>, QuotaError> {
        Self::with_width(algorithm, quota, true)
    }

    const fn with_width(
        algorithm: Algorithm,
        quota: &Quota,
        wide: bool,
    ) -> Result<Option<Self>, QuotaError> {
        match algorithm {
            Algorithm::Gcra => Ok(Some(Self::Gcra(GcraConfig::new(quota)))),
            Algorithm::FixedWindow => match FixedWindowConfig::with_width(quota, wide) {
                Ok(c) => Ok(Some(Self::FixedWindow(c))),
                Err(e) => Err(e),
            },
            Algorithm::SlidingWindowApprox => match SlidingWindowConfig::with_width(quota, wide) {
                Ok(c) => Ok(Some(Self::SlidingWindowApprox(c))),
                Err(e) => Err(e),
            },
            Algorithm::SlidingWindowStrict { .. } => Ok(None),
        }
    }

    /// Evaluates a request against `word` (0 is the fresh state for every algorithm).
    ///
    /// # Errors
    /// [`CheckError::CostExceedsLimit`].
    #[inline]
    pub fn evaluate(&self, word: u64, now: u64, cost: u64) -> Result<Outcome, CheckError> {
        self.evaluate_inline(word, now, cost)
    }

    /// [`evaluate`](Self::evaluate), always inlined: for the keyed table's single-limit
    /// check, where the call and the `Outcome` written back through memory cost more than
    /// the GCRA arithmetic (callgrind, `profile_driver rc_keyed_1k`). Other callers keep
    /// the out-of-line call and its smaller code.
    #[inline(always)]
    pub(crate) fn evaluate_inline(
        &self,
        word: u64,
        now: u64,
        cost: u64,
    ) -> Result<Outcome, CheckError> {
        match self {
            Self::Gcra(c) => c.evaluate_inline(word, now, cost),
            Self::FixedWindow(c) => c.evaluate(word, now, cost),
            Self::SlidingWindowApprox(c) => c.evaluate(word, now, cost),
        }
    }

    /// The word with `reservation` given back, or `None` when nothing (more) can safely
    /// be given back from `word`.
    #[must_use]
    pub fn uncharge(&self, word: u64, reservation: &Reservation) -> Option<u64> {
        match self {
            Self::Gcra(c) => WordState::uncharge(c, word, reservation),
            Self::FixedWindow(c) => WordState::uncharge(c, word, reservation),
            Self::SlidingWindowApprox(c) => WordState::uncharge(c, word, reservation),
        }
    }

    /// Whether `word` holds no information at `now`.
    #[must_use]
    pub fn is_at_rest(&self, word: u64, now: u64) -> bool {
        match self {
            Self::Gcra(c) => c.is_at_rest(word, now),
            Self::FixedWindow(c) => c.is_at_rest(word, now),
            Self::SlidingWindowApprox(c) => c.is_at_rest(word, now),
        }
    }

    /// Nanoseconds until `word` is at rest (0 if it is), for picking an eviction victim.
    #[must_use]
    pub fn time_to_rest(&self, word: u64, now: u64) -> u64 {
        if self.is_at_rest(word, now) {
            return 0;
        }
        self.evaluate(word, now, 0)
            .map_or(u64::MAX, |o| o.decision.reset_after)
    }

    /// The most one request may cost.
    #[must_use]
    pub const fn capacity(&self) -> u64 {
        match self {
            Self::Gcra(c) => c.burst(),
            Self::FixedWindow(c) => c.limit(),
            Self::SlidingWindowApprox(c) => c.limit(),
        }
    }
}

impl WordState for WordLimit {
    #[inline]
    fn evaluate(&self, word: u64, now: u64, cost: u64) -> Result<Outcome, CheckError> {
        WordLimit::evaluate(self, word, now, cost)
    }

    fn uncharge(&self, word: u64, reservation: &Reservation) -> Option<u64> {
        WordLimit::uncharge(self, word, reservation)
    }
}
