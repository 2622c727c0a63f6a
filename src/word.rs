//! The single-word algorithms (GCRA, fixed window, approximate sliding window) behind one
//! interface: evaluate a state word, give a charge back, tell when a word is at rest —
//! and [`WordLimiter`], the one lock-free single-key limiter they all run in.
//!
//! # Orderings
//! The state is one word and every decision depends on that word alone, so the protocol
//! is a plain CAS loop: load, compute, `compare_exchange_weak`. No other memory is
//! published through the word, so `Relaxed` would be enough for single-key correctness
//! (the CAS's read-modify-write atomicity gives the total order per word). We use
//! `Acquire`/`AcqRel` anyway so that a composite's reads of several limiters are ordered
//! after the writes they observe; on x86-64 these cost nothing extra.

use crate::algorithm::Algorithm;
use crate::decision::{Decision, Outcome};
use crate::error::{CheckError, QuotaError};
use crate::fixed_window::FixedWindowConfig;
use crate::gcra::GcraConfig;
use crate::quota::Quota;
use crate::sliding_approx::SlidingWindowConfig;
use crate::sync::{AtomicU64, Ordering};
use crate::Reservation;
use crate::{RateLimiter, Reserve};

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

    /// The window algorithms' word layout (`None` for GCRA, whose word is a time).
    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    pub(crate) const fn layout(&self) -> Option<crate::packing::Layout> {
        match self {
            Self::Gcra(_) => None,
            Self::FixedWindow(c) => Some(c.layout()),
            Self::SlidingWindow(c) => Some(c.layout()),
        }
    }

    /// [`new`](Self::new) with window counters as wide as the window numbers allow, so
    /// a word written under one limit reads the same under another (overrides).
    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    pub(crate) const fn new_wide(
        algorithm: Algorithm,
        quota: &Quota,
    ) -> Result<Option<Self>, QuotaError> {
        match algorithm {
            Algorithm::FixedWindow => match FixedWindowConfig::new_wide(quota) {
                Ok(c) => Ok(Some(Self::FixedWindow(c))),
                Err(e) => Err(e),
            },
            Algorithm::SlidingWindow => match SlidingWindowConfig::new_wide(quota) {
                Ok(c) => Ok(Some(Self::SlidingWindow(c))),
                Err(e) => Err(e),
            },
            _ => Self::new(algorithm, quota),
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
            Self::SlidingWindow(c) => c.evaluate(word, now, cost),
        }
    }

    /// The word with `reservation` given back, or `None` when nothing (more) can safely
    /// be given back from `word`.
    #[must_use]
    pub fn uncharge(&self, word: u64, reservation: &Reservation) -> Option<u64> {
        match self {
            Self::Gcra(c) => WordState::uncharge(c, word, reservation),
            Self::FixedWindow(c) => WordState::uncharge(c, word, reservation),
            Self::SlidingWindow(c) => WordState::uncharge(c, word, reservation),
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

/// One single-word algorithm's parameters: what [`WordLimiter`] runs.
pub trait WordState {
    /// Evaluates a request of `cost` at `now` against `word`. Pure; never panics.
    ///
    /// # Errors
    /// [`CheckError::CostExceedsLimit`] if `cost` can never fit.
    fn evaluate(&self, word: u64, now: u64, cost: u64) -> Result<Outcome, CheckError>;

    /// `word` with `reservation` given back, or `None` when nothing (more) can safely be
    /// given back from it.
    fn uncharge(&self, word: u64, reservation: &Reservation) -> Option<u64>;
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

/// A lock-free single-key limiter whose whole state is one `u64`: [`crate::Gcra`],
/// [`crate::FixedWindow`] and [`crate::SlidingWindow`] are this type with their
/// algorithm's parameters.
#[derive(Debug)]
pub struct WordLimiter<C> {
    word: AtomicU64,
    config: C,
}

impl<C: WordState> WordLimiter<C> {
    /// A limiter with `config`, starting from the fresh state (0, for every algorithm).
    #[must_use]
    pub fn with_config(config: C) -> Self {
        Self {
            word: AtomicU64::new(0),
            config,
        }
    }

    /// The parameters this limiter runs with.
    #[must_use]
    pub const fn config(&self) -> &C {
        &self.config
    }

    // Always inlined: out of line, the whole `(Decision, Option<Reservation>)` goes back
    // through the stack, which cost more than the check itself (profile_driver).
    #[inline(always)]
    fn reserve_inner(
        &self,
        now: u64,
        cost: u64,
    ) -> Result<(Decision, Option<Reservation>), CheckError> {
        // Acquire: evaluate a state its writer published (module Orderings).
        let mut current = self.word.load(Ordering::Acquire);
        loop {
            let outcome = self.config.evaluate(current, now, cost)?;
            let Some(new_word) = outcome.new_word else {
                return Ok((outcome.decision, None));
            };
            // AcqRel on success publishes our charge; Acquire on failure reads a
            // published state to retry with.
            match self.word.compare_exchange_weak(
                current,
                new_word,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    let reservation = Reservation::word(new_word, current, cost);
                    return Ok((outcome.decision, Some(reservation)));
                }
                Err(actual) => {
                    // Lost a race: pause once before retrying, so the winner's next CAS
                    // finds the line still in its cache instead of both cores bouncing
                    // it on every attempt (one `pause`; never taken uncontended).
                    core::hint::spin_loop();
                    current = actual;
                }
            }
        }
    }
}

impl<C: WordState> RateLimiter for WordLimiter<C> {
    #[inline]
    fn check(&self, now: u64, cost: u64) -> Result<Decision, CheckError> {
        self.reserve_inner(now, cost).map(|(decision, _)| decision)
    }

    #[inline]
    fn peek(&self, now: u64, cost: u64) -> Result<Decision, CheckError> {
        // Acquire: pairs with the writer's AcqRel CAS.
        let word = self.word.load(Ordering::Acquire);
        self.config.evaluate(word, now, cost).map(|o| o.decision)
    }
}

impl<C: WordState> Reserve for WordLimiter<C> {
    fn reserve(&self, now: u64, cost: u64) -> Result<(Decision, Option<Reservation>), CheckError> {
        self.reserve_inner(now, cost)
    }

    fn cancel(&self, reservation: Reservation) {
        // Acquire: compute the uncharged word from a published state.
        let mut current = self.word.load(Ordering::Acquire);
        while let Some(new_word) = self.config.uncharge(current, &reservation) {
            // AcqRel/Acquire as in `reserve_inner`.
            match self.word.compare_exchange_weak(
                current,
                new_word,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }
}
