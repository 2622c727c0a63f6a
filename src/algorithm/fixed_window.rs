//! Fixed window: a counter per aligned window `[w·period, (w+1)·period)`, in one `u64`.
//!
//! Windows are aligned to the caller's epoch (time 0). State: `(window number, count)`
//! packed in one word (see `packing`). At `now`, window `w = now / period`:
//!
//! - if the stored window is older, the count starts at 0 in window `w`;
//! - if the stored window is *newer* (time went backwards), the stored window is used and
//!   `now` is clamped to its start — no refund (durations are still measured from the
//!   caller's `now`, so they name moments on the caller's clock);
//! - a request of cost `n` is admitted iff `count + n ≤ limit`;
//! - `reset_after` = window end − now; denied: `retry_after` = window end − now (the next
//!   window starts empty), `remaining` = `limit − count`. A window end beyond `u64::MAX`
//!   gives [`NEVER`] for both.
//!
//! # Orderings
//! One word, one CAS loop, shared by the single-word algorithms.

use super::packing::{window_config, Layout, WindowParams};
use super::word::{WordLimiter, WordState};
use crate::decision::{Decision, Outcome, NEVER};
use crate::error::{CheckError, QuotaError};
use crate::quota::Quota;
use crate::Reservation;

/// A lock-free fixed-window limiter for one key.
pub type FixedWindow = WordLimiter<FixedWindowConfig>;

window_config! {
    /// Fixed-window parameters and state layout; shared by keyed tables.
    FixedWindowConfig, 1, "a count"
}

impl FixedWindowConfig {
    /// Evaluates a request of `cost` at `now` against `word`. Pure; never panics.
    ///
    /// # Errors
    /// [`CheckError::CostExceedsLimit`] if `cost > limit`.
    #[inline]
    #[doc(hidden)]
    pub fn evaluate(&self, word: u64, now: u64, cost: u64) -> Result<Outcome, CheckError> {
        self.window.check_cost(cost)?;
        let stored_window = self.window.layout.window(word, 1);
        let now_window = self.window.per_period.divide(now);
        // Durations are measured from the caller's `now`: moments on the caller's clock.
        let caller_now = now;
        let (window, used) = if now_window > stored_window {
            (now_window, 0)
        } else {
            // Same window, or time went backwards: stay in the stored window.
            (stored_window, self.window.layout.counter(word, 0))
        };
        let until_end = match (window + 1).checked_mul(self.window.period) {
            // Cannot underflow: the window's end is after `now` (its window, or a later
            // stored one).
            Some(end) => end - caller_now,
            None => NEVER,
        };
        // Cannot overflow: used <= limit and cost <= limit, both < 2^63 after layout check.
        let allowed = used + cost <= self.window.limit;
        // Scalars per branch, one `Outcome` at the end (see `GcraConfig::evaluate_inline`).
        let (remaining, retry_after, new_word) = if allowed {
            let count = used + cost;
            let new_word = if cost == 0 {
                None
            } else {
                Some(self.window.layout.pack1(window, count))
            };
            (self.window.limit - count, 0, new_word)
        } else {
            (self.window.limit.saturating_sub(used), until_end, None)
        };
        Ok(Outcome {
            decision: Decision {
                allowed,
                limit: self.window.limit,
                remaining,
                reset_after: until_end,
                retry_after,
            },
            new_word,
        })
    }

    /// Gives back `cost` charged in `window` (see [`crate::Reserve::cancel`]); `None` if the word
    /// no longer holds that window (the charge has expired with it).
    #[must_use]
    pub const fn uncharge(&self, word: u64, window: u64, cost: u64) -> Option<u64> {
        if self.window.layout.window(word, 1) != window {
            return None;
        }
        let count = self.window.layout.counter(word, 0);
        let count = count.saturating_sub(cost);
        Some(self.window.layout.pack1(window, count))
    }

    /// The limit per window.
    #[must_use]
    pub const fn limit(&self) -> u64 {
        self.window.limit
    }

    /// The window number a state word holds.
    #[must_use]
    pub const fn window_of(&self, word: u64) -> u64 {
        self.window.layout.window(word, 1)
    }

    /// Whether `word` holds no information at `now` (its window has ended).
    #[must_use]
    pub const fn is_at_rest(&self, word: u64, now: u64) -> bool {
        self.window.per_period.divide(now) > self.window.layout.window(word, 1)
            || self.window.layout.counter(word, 0) == 0
    }
}
