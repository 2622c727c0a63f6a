//! Approximate sliding window (Cloudflare's two-window weighted estimate), in one `u64`.
//!
//! State: `(window number w, previous count p, current count c)` packed in one word.
//! Windows are aligned to time 0. At `now` with `e = now − w·period` elapsed in the
//! current window, the estimated usage of the last `period` is
//! `p · (period − e) / period + c`, and a request of cost `n` is admitted iff
//! `p · (period − e) + (c + n) · period ≤ limit · period` — exact rational arithmetic (in
//! `u128`), no rounding. Moving on one window shifts `c` into `p`; two or more clears both.
//! A window number older than the stored one (time went backwards) is clamped to the
//! stored window's start — no refund; durations are still measured from the caller's
//! `now`.
//!
//! - `remaining` = ⌊(limit·period − usage·period) / period⌋ after the decision;
//! - `reset_after` = until no counted request weighs anymore: end of the next window when
//!   `c > 0`, end of this window when only `p > 0`, else 0;
//! - denied: `retry_after` = the exact first nanosecond at which the decaying estimate lets
//!   `n` in (possibly in the next window, once `c` has become the decaying `p`).
//!
//! Like every two-window estimate it may admit more than `limit` in some intervals of
//! length `period` (it assumes the previous window's requests were spread evenly); use
//! [`crate::SlidingWindowStrict`] when that matters.
//!
//! # Orderings
//! One word, one CAS loop, shared by the single-word algorithms.

use super::packing::{window_config, Layout, WindowParams};
use super::word::{WordLimiter, WordState};
use crate::decision::{Decision, Outcome, NEVER};
use crate::error::{CheckError, QuotaError};
use crate::quota::Quota;
use crate::Reservation;

/// A lock-free approximate sliding-window limiter for one key.
pub type SlidingWindowApprox = WordLimiter<SlidingWindowConfig>;

window_config! {
    /// Approximate sliding-window parameters and state layout; shared by keyed tables.
    SlidingWindowConfig, 2, "two counts"
}

impl SlidingWindowConfig {
    /// `(window, previous, current, now)` as seen at `now`, after rolling windows forward
    /// and clamping time that went backwards.
    const fn view(&self, word: u64, now: u64) -> (u64, u64, u64, u64) {
        let stored = self.window.layout.window(word, 2);
        let previous = self.window.layout.counter(word, 1);
        let current = self.window.layout.counter(word, 0);
        let now_window = self.window.per_period.divide(now);
        if now_window > stored {
            if now_window == stored + 1 {
                (now_window, current, 0, now)
            } else {
                (now_window, 0, 0, now)
            }
        } else {
            // Stored windows come from `now / period` of an earlier `now`, so the product
            // fits — unless the word is corrupt (e.g. a damaged shared region): a window no
            // `now` can reach holds no usable state, and is read as empty.
            match stored.checked_mul(self.window.period) {
                Some(start) => (
                    stored,
                    previous,
                    current,
                    if now > start { now } else { start },
                ),
                None => (now_window, 0, 0, now),
            }
        }
    }

    /// Evaluates a request of `cost` at `now` against `word`. Pure; never panics.
    ///
    /// # Errors
    /// [`CheckError::CostExceedsLimit`] if `cost > limit`.
    #[inline]
    #[doc(hidden)]
    pub fn evaluate(&self, word: u64, now: u64, cost: u64) -> Result<Outcome, CheckError> {
        self.window.check_cost(cost)?;
        // Durations are measured from the caller's `now`, even when the decision uses a
        // clamped time: they are moments on the caller's clock, never early.
        let caller_now = now;
        let (window, previous, current, now) = self.view(word, now);
        let period = u128::from(self.window.period);
        // Cannot overflow: now >= window·period (view clamps), and e < period.
        let elapsed = now - window * self.window.period;
        let weight = u128::from(self.window.period - elapsed);
        let capacity = u128::from(self.window.limit) * period;
        let used = u128::from(previous) * weight + u128::from(current) * period;
        let charged = used + u128::from(cost) * period;
        let window_start = window * self.window.period;
        let allowed = charged <= capacity;
        // Scalars per branch, one `Outcome` at the end (see `GcraConfig::evaluate_inline`).
        // `counted`: the current window's count the reset is measured from.
        let (counted, remaining, retry_after, new_word) = if allowed {
            let current_after = current + cost;
            let new_word = if cost == 0 {
                None
            } else {
                Some(self.window.layout.pack2(window, previous, current_after))
            };
            (
                current_after,
                self.in_periods(capacity - charged),
                0,
                new_word,
            )
        } else {
            let retry_after = self.retry_after(window_start, previous, current, cost, caller_now);
            (
                current,
                self.in_periods(capacity.saturating_sub(used)),
                retry_after,
                None,
            )
        };
        let reset_after = if counted > 0 {
            self.until(window_start, 2, caller_now)
        } else if previous > 0 {
            self.until(window_start, 1, caller_now)
        } else {
            0
        };
        Ok(Outcome {
            decision: Decision {
                allowed,
                limit: self.window.limit,
                remaining,
                reset_after,
                retry_after,
            },
            new_word,
        })
    }

    /// `⌊amount / period⌋` for a `u128` amount: without a division when it fits a `u64`
    /// (`limit · period` does for every common quota), saturating otherwise.
    #[inline]
    fn in_periods(&self, amount: u128) -> u64 {
        match u64::try_from(amount) {
            Ok(amount) => self.window.per_period.divide(amount),
            Err(_) => narrow(amount / u128::from(self.window.period)),
        }
    }

    /// Nanoseconds from `now` until `windows` windows after `start`, or [`NEVER`].
    fn until(&self, start: u64, windows: u64, now: u64) -> u64 {
        match windows
            .checked_mul(self.window.period)
            .and_then(|span| start.checked_add(span))
        {
            Some(end) => end - now,
            None => NEVER,
        }
    }

    /// The first moment a denied request of `cost` fits, if nothing else happens.
    fn retry_after(&self, start: u64, previous: u64, current: u64, cost: u64, now: u64) -> u64 {
        let period = u128::from(self.window.period);
        let budget = self.window.limit - cost;
        // In this window the estimate decays with p; it fits once
        // p·(period − e) ≤ (budget − c)·period, i.e. e ≥ period − ⌊(budget − c)·period / p⌋.
        // Otherwise, in the next window c becomes the decaying p' and the new c is 0.
        let (offset, decaying, room) = if current <= budget {
            (0, previous, budget - current)
        } else {
            (self.window.period, current, budget)
        };
        // decaying > 0 here: with it 0 the request would fit at the window start, and in
        // the current window it would have been admitted.
        let free = if decaying == 0 {
            period
        } else {
            (u128::from(room) * period / u128::from(decaying)).min(period)
        };
        // Cannot underflow: free <= period.
        let elapsed_needed = narrow(period - free);
        let moment = start
            .checked_add(offset)
            .and_then(|t| t.checked_add(elapsed_needed));
        match moment {
            Some(t) if t > now => t - now,
            // Already fits at `now`: unreachable for a denied request, kept total.
            Some(_) => 0,
            None => NEVER,
        }
    }

    /// Gives back `cost` charged in `window`: from the current count if the word is still
    /// in that window, from the previous count if it moved on by one; `None` if the charge
    /// no longer weighs.
    #[must_use]
    pub const fn uncharge(&self, word: u64, window: u64, cost: u64) -> Option<u64> {
        let stored = self.window.layout.window(word, 2);
        let previous = self.window.layout.counter(word, 1);
        let current = self.window.layout.counter(word, 0);
        if stored == window {
            let current = current.saturating_sub(cost);
            Some(self.window.layout.pack2(stored, previous, current))
        } else if stored == window + 1 {
            let previous = previous.saturating_sub(cost);
            Some(self.window.layout.pack2(stored, previous, current))
        } else {
            None
        }
    }

    /// The limit per window.
    #[must_use]
    pub const fn limit(&self) -> u64 {
        self.window.limit
    }

    /// The window number a state word holds.
    #[must_use]
    pub const fn window_of(&self, word: u64) -> u64 {
        self.window.layout.window(word, 2)
    }

    /// Whether `word` holds no information at `now` (no counted request weighs anymore).
    #[must_use]
    pub const fn is_at_rest(&self, word: u64, now: u64) -> bool {
        let (_, previous, current, _) = self.view(word, now);
        previous == 0 && current == 0
    }
}

/// A `u128` known to be at most a `u64` limit, as `u64` (saturating, for totality).
fn narrow(value: u128) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}
