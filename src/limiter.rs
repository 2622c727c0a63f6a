//! [`Limiter`]: any of the four algorithms behind one type, chosen at run time.

use alloc::boxed::Box;

use crate::algorithm::sliding_strict::Slot;
pub use crate::algorithm::Algorithm;
use crate::decision::Decision;
use crate::error::{CheckError, QuotaError};
use crate::quota::Quota;
use crate::{
    FixedWindow, Gcra, RateLimiter, Reservation, Reserve, SlidingWindowApprox, SlidingWindowStrict,
};

/// A single-key limiter running any [`Algorithm`].
#[derive(Debug)]
pub enum Limiter {
    /// GCRA.
    Gcra(Gcra),
    /// Fixed window.
    FixedWindow(FixedWindow),
    /// Approximate sliding window.
    SlidingWindowApprox(SlidingWindowApprox),
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
            Algorithm::SlidingWindowApprox => {
                Self::SlidingWindowApprox(SlidingWindowApprox::new(quota)?)
            }
            Algorithm::SlidingWindowStrict { sub_windows } => {
                Self::SlidingWindowStrict(SlidingWindowStrict::new(quota, sub_windows)?)
            }
        })
    }

    fn as_reserve(&self) -> &dyn Reserve {
        match self {
            Self::Gcra(l) => l,
            Self::FixedWindow(l) => l,
            Self::SlidingWindowApprox(l) => l,
            Self::SlidingWindowStrict(l) => l,
        }
    }
}

// `check` and `peek` match on the algorithm rather than going through `as_reserve`: a
// call through the `dyn Reserve` vtable stays indirect wherever the caller is not inlined
// into (the C ABI's exported functions were), and the match lets each arm inline.
impl RateLimiter for Limiter {
    #[inline(always)]
    fn check(&self, now: u64, cost: u64) -> Result<Decision, CheckError> {
        match self {
            Self::Gcra(l) => l.check(now, cost),
            Self::FixedWindow(l) => l.check(now, cost),
            Self::SlidingWindowApprox(l) => l.check(now, cost),
            Self::SlidingWindowStrict(l) => l.check(now, cost),
        }
    }

    #[inline]
    fn peek(&self, now: u64, cost: u64) -> Result<Decision, CheckError> {
        match self {
            Self::Gcra(l) => l.peek(now, cost),
            Self::FixedWindow(l) => l.peek(now, cost),
            Self::SlidingWindowApprox(l) => l.peek(now, cost),
            Self::SlidingWindowStrict(l) => l.peek(now, cost),
        }
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
