//! The machinery the single-word algorithms (GCRA, fixed window, approximate sliding
//! window) share: [`WordState`], the interface each implements — evaluate a state word,
//! give a charge back — and [`WordLimiter`], the one lock-free single-key limiter they all
//! run in.
//!
//! # Orderings
//! The state is one word and every decision depends on that word alone, so the protocol
//! is a plain CAS loop: load, compute, `compare_exchange_weak`. No other memory is
//! published through the word, so `Relaxed` would be enough for single-key correctness
//! (the CAS's read-modify-write atomicity gives the total order per word). We use
//! `Acquire`/`AcqRel` anyway so that a composite's reads of several limiters are ordered
//! after the writes they observe; on x86-64 these cost nothing extra.

use crate::decision::{Decision, Outcome};
use crate::error::CheckError;
use crate::sync::{AtomicU64, Ordering};
use crate::Reservation;
use crate::{RateLimiter, Reserve};

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

/// A lock-free single-key limiter whose whole state is one `u64`: [`crate::Gcra`],
/// [`crate::FixedWindow`] and [`crate::SlidingWindowApprox`] are this type with their
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
