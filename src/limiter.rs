//! [`Limiter`]: any of the four algorithms behind one type, chosen at run time.

use alloc::boxed::Box;

pub use crate::algorithm::Algorithm;
use crate::decision::Decision;
use crate::error::{CheckError, QuotaError};
use crate::quota::Quota;
use crate::sliding_strict::Slot;
use crate::{
    FixedWindow, Gcra, RateLimiter, Reservation, Reserve, SlidingWindow, SlidingWindowStrict,
};

/// A single-key limiter running any [`Algorithm`].
#[derive(Debug)]
pub enum Limiter {
    /// GCRA.
    Gcra(Gcra),
    /// Fixed window.
    FixedWindow(FixedWindow),
    /// Approximate sliding window.
    SlidingWindow(SlidingWindow),
    /// Strict sliding window.
    SlidingWindowStrict(SlidingWindowStrict<Box<[Slot]>>),
}

impl Limiter {
    /// A limiter running `algorithm` on `quota`.
    ///
    /// # Errors
    /// Whatever the algorithm's constructor rejects (see [`QuotaError`]).
    pub fn new(algorithm: Algorithm, quota: Quota) -> Result<Self, QuotaError> {
        Ok(match algorithm {
            Algorithm::Gcra => Self::Gcra(Gcra::new(quota)),
            Algorithm::FixedWindow => Self::FixedWindow(FixedWindow::new(quota)?),
            Algorithm::SlidingWindow => Self::SlidingWindow(SlidingWindow::new(quota)?),
            Algorithm::SlidingWindowStrict { sub_windows } => {
                Self::SlidingWindowStrict(SlidingWindowStrict::new(quota, sub_windows)?)
            }
        })
    }

    fn as_reserve(&self) -> &dyn Reserve {
        match self {
            Self::Gcra(l) => l,
            Self::FixedWindow(l) => l,
            Self::SlidingWindow(l) => l,
            Self::SlidingWindowStrict(l) => l,
        }
    }
}

impl RateLimiter for Limiter {
    fn check(&self, now: u64, cost: u64) -> Result<Decision, CheckError> {
        self.as_reserve().check(now, cost)
    }

    fn peek(&self, now: u64, cost: u64) -> Result<Decision, CheckError> {
        self.as_reserve().peek(now, cost)
    }
}

impl Reserve for Limiter {
    fn reserve(&self, now: u64, cost: u64) -> Result<(Decision, Option<Reservation>), CheckError> {
        self.as_reserve().reserve(now, cost)
    }

    fn cancel(&self, reservation: Reservation) {
        self.as_reserve().cancel(reservation);
    }
}
