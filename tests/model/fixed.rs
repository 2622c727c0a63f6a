//! Fixed window, naively: `(window number, count)` with the window number as a `u128`.

use ratecore::{CheckError, Decision, QuotaError};

use super::{cost_check, until, window_quota, window_requota, Decide, QuotaParams};

/// Reference fixed window: windows `[w·period, (w+1)·period)` aligned to time 0.
#[derive(Clone, Debug)]
pub struct FixedModel {
    limit: u64,
    period: u128,
    window: u128,
    count: u64,
}

impl FixedModel {
    /// An empty fixed window for `quota`, or `StateTooWide` when window numbers over the
    /// whole `u64` range and one count do not fit one word.
    pub fn new(quota: QuotaParams) -> Result<Self, QuotaError> {
        let period = u128::from(quota.period);
        window_quota(quota.limit, 1, period)?;
        Ok(Self {
            limit: quota.limit,
            period,
            window: 0,
            count: 0,
        })
    }

    /// The same window judged from now on under another quota of the same period (a
    /// per-client override): the count carries over; `StateTooWide` as [`Self::new`].
    pub fn requota(&mut self, quota: QuotaParams) -> Result<(), QuotaError> {
        window_requota(&mut self.limit, 1, self.period, quota)
    }
}

impl Decide for FixedModel {
    type Write = (u128, u64);

    /// The decision, and the `(window, count)` to store if admitted with a cost.
    fn decide(&self, now: u64, cost: u64) -> Result<(Decision, Option<Self::Write>), CheckError> {
        cost_check(cost, self.limit)?;
        let now = u128::from(now);
        let caller = now;
        let now_window = now / self.period;
        let (window, used) = if now_window > self.window {
            // A later window starts empty.
            (now_window, 0)
        } else {
            // Same window, or time went backwards: stay in the stored window.
            (self.window, self.count)
        };
        // Durations are measured from the caller's time, not the clamped one.
        let until_end = until((window + 1) * self.period, caller);
        if u128::from(used) + u128::from(cost) <= u128::from(self.limit) {
            let count = used + cost;
            let decision = Decision {
                allowed: true,
                limit: self.limit,
                remaining: self.limit - count,
                reset_after: until_end,
                retry_after: 0,
            };
            Ok((decision, (cost > 0).then_some((window, count))))
        } else {
            let decision = Decision {
                allowed: false,
                limit: self.limit,
                // A count above the limit (the key's quota was lowered) leaves nothing.
                remaining: self.limit.saturating_sub(used),
                reset_after: until_end,
                retry_after: until_end,
            };
            Ok((decision, None))
        }
    }

    fn apply(&mut self, (window, count): (u128, u64)) {
        self.window = window;
        self.count = count;
    }

    fn capacity(&self) -> u64 {
        self.limit
    }
}
