//! GCRA (generic cell rate algorithm): a smooth rate with a burst, in one `u64`.
//!
//! State: the theoretical arrival time `tat` (nanoseconds). With emission interval `T`
//! and tolerance `τ = burst × T`, a request of cost `n` at `now` computes
//! `new_tat = max(tat, now) + n·T` and is admitted iff `new_tat − now ≤ τ`.
//!
//! - allowed: `remaining = (τ − (new_tat − now)) / T`, `reset_after = new_tat − now`.
//! - denied: `retry_after = new_tat − now − τ` (exact: at that moment `new_tat − t = τ`),
//!   `remaining = (τ − backlog) / T` and `reset_after = backlog`, where
//!   `backlog = max(tat, now) − now`.
//! - `new_tat` beyond `u64::MAX`: denied with `retry_after = NEVER` (the state cannot
//!   represent the admission, and saturating would over-admit).
//! - cost 0 never writes.
//!
//! Time going backwards: `tat` never decreases, so an earlier `now` only sees a larger
//! backlog — a stricter decision, never a refund. (GCRA's state records no "latest now";
//! the decision is evaluated at the `now` given.)
//!
//! # Orderings
//! The state is one word and every decision depends on that word alone, so the protocol
//! is a plain CAS loop: load, compute, `compare_exchange_weak`. No other memory is
//! published through the word, so `Relaxed` would be enough for single-key correctness
//! (the CAS's read-modify-write atomicity gives the total order per word). We use
//! `Acquire`/`AcqRel` anyway so that a composite's reads of several limiters are ordered
//! after the writes they observe; on x86-64 these cost nothing extra.

use crate::decision::{Decision, Outcome, NEVER};
use crate::error::CheckError;
use crate::quota::Quota;
use crate::sync::{AtomicU64, Ordering};
use crate::{RateLimiter, Reservation, Reserve};

/// A lock-free GCRA limiter for one key.
#[derive(Debug)]
pub struct Gcra {
    tat: AtomicU64,
    config: GcraConfig,
}

/// GCRA's parameters, derived once from a [`Quota`]; shared by keyed tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GcraConfig {
    interval: u64,
    burst: u64,
    tolerance: u64,
}

impl GcraConfig {
    /// Parameters for `quota` (rate `limit/period`, capacity `burst`).
    #[must_use]
    pub const fn new(quota: &Quota) -> Self {
        let interval = quota.emission_interval();
        // Cannot overflow: Quota::with_burst validated burst × interval.
        let tolerance = quota.burst() * interval;
        Self {
            interval,
            burst: quota.burst(),
            tolerance,
        }
    }

    /// Evaluates a request of `cost` at `now` against stored `tat`. Pure; never panics.
    ///
    /// # Errors
    /// [`CheckError::CostExceedsLimit`] if `cost > burst`.
    pub fn evaluate(&self, tat: u64, now: u64, cost: u64) -> Result<Outcome, CheckError> {
        if cost > self.burst {
            return Err(CheckError::CostExceedsLimit {
                cost,
                limit: self.burst,
            });
        }
        let base = if tat > now { tat } else { now };
        let backlog = base - now;
        let remaining_before = self.tolerance.saturating_sub(backlog) / self.interval;
        // Cannot overflow: cost <= burst and burst × interval fits (Quota invariant).
        let increment = cost * self.interval;
        let Some(new_tat) = base.checked_add(increment) else {
            return Ok(Outcome {
                decision: Decision {
                    allowed: false,
                    limit: self.burst,
                    remaining: remaining_before,
                    reset_after: backlog,
                    retry_after: NEVER,
                },
                new_word: None,
            });
        };
        let ahead = new_tat - now;
        if ahead <= self.tolerance {
            Ok(Outcome {
                decision: Decision {
                    allowed: true,
                    limit: self.burst,
                    remaining: (self.tolerance - ahead) / self.interval,
                    reset_after: ahead,
                    retry_after: 0,
                },
                new_word: if cost == 0 { None } else { Some(new_tat) },
            })
        } else {
            Ok(Outcome {
                decision: Decision {
                    allowed: false,
                    limit: self.burst,
                    remaining: remaining_before,
                    reset_after: backlog,
                    retry_after: ahead - self.tolerance,
                },
                new_word: None,
            })
        }
    }

    /// The most one request may cost (the burst).
    #[must_use]
    pub const fn burst(&self) -> u64 {
        self.burst
    }

    /// Whether `tat` holds no information at `now` (the key is fully replenished), so a
    /// keyed table may reclaim its slot.
    #[must_use]
    pub const fn is_at_rest(&self, tat: u64, now: u64) -> bool {
        tat <= now
    }
}

impl Gcra {
    /// A limiter for `quota` with its burst; starts fully replenished.
    #[must_use]
    pub fn new(quota: Quota) -> Self {
        Self {
            tat: AtomicU64::new(0),
            config: GcraConfig::new(&quota),
        }
    }

    /// The parameters this limiter runs with.
    #[must_use]
    pub const fn config(&self) -> &GcraConfig {
        &self.config
    }

    fn reserve_inner(
        &self,
        now: u64,
        cost: u64,
    ) -> Result<(Decision, Option<Reservation>), CheckError> {
        // Acquire: see the state (and, for composites, everything before it) that the
        // last writer published.
        let mut current = self.tat.load(Ordering::Acquire);
        loop {
            let outcome = self.config.evaluate(current, now, cost)?;
            let Some(new_tat) = outcome.new_word else {
                return Ok((outcome.decision, None));
            };
            // AcqRel on success: publish our TAT and order it after the value we read.
            // Acquire on failure: the fresh value we retry with is a published state.
            match self.tat.compare_exchange_weak(
                current,
                new_tat,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    let reservation = Reservation {
                        tag: new_tat,
                        aux: current,
                        cost,
                    };
                    return Ok((outcome.decision, Some(reservation)));
                }
                Err(actual) => current = actual,
            }
        }
    }
}

impl RateLimiter for Gcra {
    fn check(&self, now: u64, cost: u64) -> Result<Decision, CheckError> {
        self.reserve_inner(now, cost).map(|(decision, _)| decision)
    }

    fn peek(&self, now: u64, cost: u64) -> Result<Decision, CheckError> {
        // Acquire: pairs with the AcqRel CAS of the writer whose state we evaluate.
        let tat = self.tat.load(Ordering::Acquire);
        self.config.evaluate(tat, now, cost).map(|o| o.decision)
    }
}

impl Reserve for Gcra {
    fn reserve(&self, now: u64, cost: u64) -> Result<(Decision, Option<Reservation>), CheckError> {
        self.reserve_inner(now, cost)
    }

    fn cancel(&self, reservation: Reservation) {
        // Only the exact inverse is safe: if another admission stacked on our TAT, simply
        // subtracting our increment could erase part of *its* charge (it may have started
        // from `now` rather than from our TAT), i.e. over-admit. So we restore the old TAT
        // only if ours is still the current one, and otherwise leave the charge in place
        // (a possible spurious denial under contention, never an over-admission).
        // AcqRel/Relaxed: success publishes the restored state like any other update; on
        // failure we read nothing we act on.
        let _ = self.tat.compare_exchange(
            reservation.tag,
            reservation.aux,
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
    }
}
