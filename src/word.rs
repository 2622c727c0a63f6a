//! The single-word algorithms behind one interface, for keyed tables: evaluate a state
//! word, give a charge back, tell when a word is at rest.

use crate::algorithm::Algorithm;
use crate::decision::Outcome;
use crate::error::{CheckError, QuotaError};
use crate::fixed_window::FixedWindowConfig;
use crate::gcra::GcraConfig;
use crate::quota::Quota;
use crate::sliding_approx::SlidingWindowConfig;
use crate::Reservation;

/// A single-word algorithm's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WordLimit {
    /// GCRA.
    Gcra(GcraConfig),
    /// Fixed window.
    FixedWindow(FixedWindowConfig),
    /// Approximate sliding window.
    SlidingWindow(SlidingWindowConfig),
}

impl WordLimit {
    /// Parameters for `algorithm` on `quota`; `Ok(None)` if `algorithm` is not a
    /// single-word algorithm.
    ///
    /// # Errors
    /// Whatever the algorithm rejects (see [`QuotaError`]).
    pub const fn new(algorithm: Algorithm, quota: &Quota) -> Result<Option<Self>, QuotaError> {
        match algorithm {
            Algorithm::Gcra => Ok(Some(Self::Gcra(GcraConfig::new(quota)))),
            Algorithm::FixedWindow => match FixedWindowConfig::new(quota) {
                Ok(c) => Ok(Some(Self::FixedWindow(c))),
                Err(e) => Err(e),
            },
            Algorithm::SlidingWindow => match SlidingWindowConfig::new(quota) {
                Ok(c) => Ok(Some(Self::SlidingWindow(c))),
                Err(e) => Err(e),
            },
            Algorithm::SlidingWindowStrict { .. } => Ok(None),
        }
    }

    /// Evaluates a request against `word` (0 is the fresh state for every algorithm).
    ///
    /// # Errors
    /// [`CheckError::CostExceedsLimit`].
    pub fn evaluate(&self, word: u64, now: u64, cost: u64) -> Result<Outcome, CheckError> {
        match self {
            Self::Gcra(c) => c.evaluate(word, now, cost),
            Self::FixedWindow(c) => c.evaluate(word, now, cost),
            Self::SlidingWindow(c) => c.evaluate(word, now, cost),
        }
    }

    /// The word with `reservation` given back, or `None` when nothing (more) can safely
    /// be given back from `word`.
    #[must_use]
    pub fn uncharge(&self, word: u64, reservation: &Reservation) -> Option<u64> {
        match self {
            // Only the exact inverse is safe for GCRA (see `Gcra::cancel`).
            Self::Gcra(_) => (word == reservation.tag).then_some(reservation.aux),
            Self::FixedWindow(c) => {
                c.uncharge(word, c.window_of(reservation.tag), reservation.cost)
            }
            Self::SlidingWindow(c) => {
                c.uncharge(word, c.window_of(reservation.tag), reservation.cost)
            }
        }
    }

    /// Whether `word` holds no information at `now`.
    #[must_use]
    pub fn is_at_rest(&self, word: u64, now: u64) -> bool {
        match self {
            Self::Gcra(c) => c.is_at_rest(word, now),
            Self::FixedWindow(c) => c.is_at_rest(word, now),
            Self::SlidingWindow(c) => c.is_at_rest(word, now),
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
            Self::SlidingWindow(c) => c.limit(),
        }
    }
}
