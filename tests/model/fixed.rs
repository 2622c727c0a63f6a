//! Fixed window, naively: `(window number, count)` with the window number as a `u128`.

use ratecore::{CheckError, Decision, QuotaError};

use super::{cost_check, until, Decide, QuotaParams, Window};

/// Reference fixed window: windows `[w·period, (w+1)·period)` aligned to time 0.
#[derive(Clone, Debug)]
pub struct FixedModel {
    window: Window,
    count: u64,
}

impl FixedModel {
    /// An empty fixed window for `quota`, or `StateTooWide` when window numbers over the
    /// whole `u64` range and one count do not fit one word.
    pub fn new(quota: QuotaParams) -> Result<Self, QuotaError> {
        Ok(Self {
            window: Window::new(quota, 1)?,
            count: 0,
        })
    }

    /// The same window judged from now on under another quota of the same period (a
    /// per-client override): the count carries over; `StateTooWide` as [`Self::new`].
    pub fn requota(&mut self, quota: QuotaParams) -> Result<(), QuotaError> {
        self.window.requota(quota)
    }
}

impl Decide for FixedModel {
    type Write = (u128, u64);

    /// The decision, and the `(window, count)` to store if admitted with a cost.
    fn decide(&self, now: u64, cost: u64) -> Result<(Decision, Option<Self::Write>), CheckError> {
        cost_check(cost, self.window.limit)?;
        let now = u128::from(now);
        let caller = now;
        let now_window = now / self.window.period;
        let (window, used) = if now_window > self.window.number {
            // A later window starts empty.
            (now_window, 0)
        } else {
            // Same window, or time went backwards: stay in the stored window.
            (self.window.number, self.count)
        };
        // Durations are measured from the caller's time, not the clamped one.
        let until_end = until((window + 1) * self.window.period, caller);
        if u128::from(used) + u128::from(cost) <= u128::from(self.window.limit) {
            let count = used + cost;
            let decision = Decision {
                allowed: true,
                limit: self.window.limit,
                remaining: self.window.limit - count,
                reset_after: until_end,
                retry_after: 0,
            };
            Ok((decision, (cost > 0).then_some((window, count))))
        } else {
            let decision = Decision {
                allowed: false,
                limit: self.window.limit,
                // A count above the limit (the key's quota was lowered) leaves nothing.
                remaining: self.window.limit.saturating_sub(used),
                reset_after: until_end,
                retry_after: until_end,
            };
            Ok((decision, None))
        }
    }

    fn apply(&mut self, (window, count): (u128, u64)) {
        self.window.number = window;
        self.count = count;
    }

    fn capacity(&self) -> u64 {
        self.window.limit
    }
}
