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
//!   represent the admission, and saturating would over-admit); likewise `remaining`
//!   never counts admissions whose TAT would pass `u64::MAX`.
//! - cost 0 never writes.
//!
//! Time going backwards: `tat` never decreases, so an earlier `now` only sees a larger
//! backlog — a stricter decision, never a refund. (GCRA's state records no "latest now";
//! the decision is evaluated at the `now` given.)
//!
//! # Orderings
//! One word, one CAS loop, shared by the single-word algorithms.

use super::divide::Divisor;
use super::word::{WordLimiter, WordState};
use crate::decision::{Decision, Outcome, NEVER};
use crate::error::CheckError;
use crate::quota::Quota;
use crate::Reservation;

/// A lock-free GCRA limiter for one key.
pub type Gcra = WordLimiter<GcraConfig>;

/// GCRA's parameters, derived once from a [`Quota`]; shared by keyed tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GcraConfig {
    interval: u64,
    burst: u64,
    tolerance: u64,
    /// `interval`, prepared for `div`-free division (`remaining` on every check).
    per_interval: Divisor,
    /// `u64::MAX − tolerance`: below it every TAT `remaining` could count fits, so the
    /// representability cap needs no division.
    uncapped_below: u64,
}

impl GcraConfig {
    /// Parameters for `quota` (rate `limit/period`, capacity `burst`).
    #[must_use]
    pub const fn new(quota: &Quota) -> Self {
        let interval = quota.emission_interval();
        // Cannot overflow: Quota::with_burst validated burst × interval.
        let tolerance = quota.burst() * interval;
        // A Quota's emission interval is at least 1 ns.
        let per_interval = Divisor::of_validated(interval);
        Self {
            interval,
            burst: quota.burst(),
            tolerance,
            per_interval,
            uncapped_below: u64::MAX - tolerance,
        }
    }

    /// `remaining`, capped at the admissions the state can still record after `tat`
    /// (TATs up to `u64::MAX`), so near the end of the time range it never promises what
    /// `check` would deny.
    #[inline]
    const fn remaining(&self, room: u64, tat: u64) -> u64 {
        let remaining = self.per_interval.divide(room);
        if tat <= self.uncapped_below {
            // remaining ≤ tolerance / interval, and tat + tolerance fits.
            return remaining;
        }
        let representable = self.per_interval.divide(u64::MAX - tat);
        if representable < remaining {
            representable
        } else {
            remaining
        }
    }

    /// Evaluates a request of `cost` at `now` against stored `tat`. Pure; never panics.
    ///
    /// # Errors
    /// [`CheckError::CostExceedsLimit`] if `cost > burst`.
    #[inline]
    #[doc(hidden)]
    pub fn evaluate(&self, tat: u64, now: u64, cost: u64) -> Result<Outcome, CheckError> {
        self.evaluate_inline(tat, now, cost)
    }

    /// [`evaluate`](Self::evaluate), always inlined: the keyed table's single-limit check
    /// (through [`WordLimit::evaluate_inline`](super::WordLimit::evaluate_inline)).
    #[inline(always)]
    pub(crate) fn evaluate_inline(
        &self,
        tat: u64,
        now: u64,
        cost: u64,
    ) -> Result<Outcome, CheckError> {
        if cost > self.burst {
            return Err(CheckError::CostExceedsLimit {
                cost,
                limit: self.burst,
            });
        }
        let base = if tat > now { tat } else { now };
        let backlog = base - now;
        // Cannot overflow: cost <= burst and burst × interval fits (Quota invariant).
        let increment = cost * self.interval;
        // The branches yield scalars and the `Outcome` is built once, at the end: built in
        // each branch, it is merged through a stack temporary and read back with loads
        // wider than its stores (a store-forwarding stall per check, visible in perf
        // annotate of the C ABI's table check).
        // (allowed, room left, the TAT `remaining` is counted at, reset, retry, new word)
        let (allowed, room, at, reset_after, retry_after, new_word) =
            match base.checked_add(increment) {
                // The new TAT is not representable: denied, never admissible.
                None => (
                    false,
                    self.tolerance.saturating_sub(backlog),
                    base,
                    backlog,
                    NEVER,
                    None,
                ),
                Some(new_tat) if new_tat - now <= self.tolerance => {
                    let ahead = new_tat - now;
                    let new_word = if cost == 0 { None } else { Some(new_tat) };
                    (true, self.tolerance - ahead, new_tat, ahead, 0, new_word)
                }
                Some(new_tat) => (
                    false,
                    self.tolerance.saturating_sub(backlog),
                    base,
                    backlog,
                    new_tat - now - self.tolerance,
                    None,
                ),
            };
        // Denied with a cost of 1, nothing remains, so no division is needed (a denied
        // client hammering a key takes this path on every request): by tolerance,
        // backlog + T > τ, so the room τ − backlog is less than one T; by an
        // unrepresentable TAT, base > u64::MAX − T ≥ u64::MAX − τ, so `remaining`'s cap,
        // (u64::MAX − base) / T, is 0.
        let remaining = if !allowed && cost == 1 {
            0
        } else {
            self.remaining(room, at)
        };
        Ok(Outcome {
            decision: Decision {
                allowed,
                limit: self.burst,
                remaining,
                reset_after,
                retry_after,
            },
            new_word,
        })
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

impl WordLimiter<GcraConfig> {
    /// A limiter for `quota` with its burst; starts fully replenished.
    #[must_use]
    pub fn new(quota: Quota) -> Self {
        Self::with_config(GcraConfig::new(&quota))
    }
}

impl WordState for GcraConfig {
    #[inline]
    fn evaluate(&self, word: u64, now: u64, cost: u64) -> Result<Outcome, CheckError> {
        GcraConfig::evaluate(self, word, now, cost)
    }

    fn uncharge(&self, word: u64, reservation: &Reservation) -> Option<u64> {
        // Only the exact inverse is safe: if another admission stacked on our TAT, simply
        // subtracting our increment could erase part of *its* charge (it may have started
        // from `now` rather than from our TAT), i.e. over-admit. So we restore the old TAT
        // only if ours is still the current one, and otherwise leave the charge in place
        // (a possible spurious denial under contention, never an over-admission).
        (word == reservation.tag).then_some(reservation.aux)
    }
}
