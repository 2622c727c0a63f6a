//! Approximate sliding window, naively: `(window, previous, current)` with exact rational
//! comparisons in `u128`, and `retry_after` found by searching time itself.

use ratecore::{CheckError, Decision, QuotaError};

use super::{cost_check, narrow, until, Decide, QuotaParams, Window};

/// Reference two-window weighted estimate.
#[derive(Clone, Debug)]
pub struct ApproxModel {
    window: Window,
    previous: u64,
    current: u64,
}

/// The stored state as seen at some moment.
#[derive(Clone, Copy, Debug)]
pub struct View {
    window: u128,
    previous: u64,
    current: u64,
    /// The moment, clamped to the stored window's start if time went backwards.
    now: u128,
}

impl ApproxModel {
    /// An empty window for `quota`, or `StateTooWide` when window numbers over the whole
    /// `u64` range and two counts do not fit one word.
    pub fn new(quota: QuotaParams) -> Result<Self, QuotaError> {
        Ok(Self {
            window: Window::new(quota, 2)?,
            previous: 0,
            current: 0,
        })
    }

    /// The same windows judged from now on under another quota of the same period (a
    /// per-client override): both counts carry over; `StateTooWide` as [`Self::new`].
    pub fn requota(&mut self, quota: QuotaParams) -> Result<(), QuotaError> {
        self.window.requota(quota)
    }

    /// The stored state rolled forward to `t` (or `t` clamped back onto the stored window).
    fn view(&self, t: u128) -> View {
        let t_window = t / self.window.period;
        if t_window > self.window.number {
            let previous = if t_window == self.window.number + 1 {
                self.current
            } else {
                0
            };
            View {
                window: t_window,
                previous,
                current: 0,
                now: t,
            }
        } else {
            View {
                window: self.window.number,
                previous: self.previous,
                current: self.current,
                now: t.max(self.window.number * self.window.period),
            }
        }
    }

    /// `usage × period` at a view: `p · (period − e) + c · period`.
    fn used(&self, v: View) -> u128 {
        let elapsed = v.now - v.window * self.window.period;
        u128::from(v.previous) * (self.window.period - elapsed)
            + u128::from(v.current) * self.window.period
    }

    /// `limit × period`.
    fn capacity_scaled(&self) -> u128 {
        u128::from(self.window.limit) * self.window.period
    }

    /// Whether `cost` fits at moment `t` if the state is left as it is.
    fn fits_at(&self, t: u128, cost: u64) -> bool {
        let v = self.view(t);
        self.used(v) + u128::from(cost) * self.window.period <= self.capacity_scaled()
    }

    /// Until no counted request weighs anymore.
    /// Measured from the caller's time `caller` (not the clamped `v.now`).
    fn reset_after(&self, v: View, current: u64, caller: u128) -> u64 {
        if current > 0 {
            until((v.window + 2) * self.window.period, caller)
        } else if v.previous > 0 {
            until((v.window + 1) * self.window.period, caller)
        } else {
            0
        }
    }
}

impl Decide for ApproxModel {
    type Write = View;

    /// The decision, and the state to store if admitted with a cost.
    fn decide(&self, now: u64, cost: u64) -> Result<(Decision, Option<Self::Write>), CheckError> {
        cost_check(cost, self.window.limit)?;
        let caller = u128::from(now);
        let v = self.view(caller);
        let used = self.used(v);
        let charged = used + u128::from(cost) * self.window.period;
        let capacity = self.capacity_scaled();
        if charged <= capacity {
            let current = v.current + cost;
            let decision = Decision {
                allowed: true,
                limit: self.window.limit,
                remaining: narrow((capacity - charged) / self.window.period),
                reset_after: self.reset_after(v, current, caller),
                retry_after: 0,
            };
            Ok((decision, (cost > 0).then_some(View { current, ..v })))
        } else {
            // Fitting only gets easier as time passes (the estimate only decays), and two
            // windows on everything is forgotten: binary-search the first fitting moment.
            let mut lo = v.now; // does not fit
            let mut hi = (v.window + 2) * self.window.period; // fits: both counts are gone
            assert!(self.fits_at(hi, cost), "model bug: no room two windows on");
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if self.fits_at(mid, cost) {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            let decision = Decision {
                allowed: false,
                limit: self.window.limit,
                remaining: narrow(capacity.saturating_sub(used) / self.window.period),
                reset_after: self.reset_after(v, v.current, caller),
                retry_after: until(hi, caller),
            };
            Ok((decision, None))
        }
    }

    fn apply(&mut self, v: View) {
        self.window.number = v.window;
        self.previous = v.previous;
        self.current = v.current;
    }

    fn capacity(&self) -> u64 {
        self.window.limit
    }
}
