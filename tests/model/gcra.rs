//! GCRA, naively: the theoretical arrival time as a `u128`, plain arithmetic.

use ratecore::{CheckError, Decision, NEVER};

use super::{ceil_div, cost_check, narrow, Decide, QuotaParams, MAX};

/// Reference GCRA: emission interval `T = ⌈period / limit⌉`, tolerance `τ = burst · T`.
#[derive(Clone, Debug)]
pub struct GcraModel {
    tat: u128,
    interval: u128,
    tolerance: u128,
    burst: u64,
}

impl GcraModel {
    /// A fully replenished GCRA for `quota`.
    pub fn new(quota: QuotaParams) -> Self {
        let interval = ceil_div(u128::from(quota.period), u128::from(quota.limit));
        Self {
            tat: 0,
            interval,
            tolerance: u128::from(quota.burst) * interval,
            burst: quota.burst,
        }
    }

    /// The same TAT judged from now on under another quota (a per-client override): the
    /// time owed carries over, the interval, tolerance and burst are the new quota's.
    pub fn requota(&mut self, quota: QuotaParams) {
        let fresh = Self::new(quota);
        *self = Self {
            tat: self.tat,
            ..fresh
        };
    }
}

impl Decide for GcraModel {
    type Write = u128;

    /// The decision, and the TAT to store if the request is admitted and costs something.
    fn decide(&self, now: u64, cost: u64) -> Result<(Decision, Option<Self::Write>), CheckError> {
        cost_check(cost, self.burst)?;
        let now = u128::from(now);
        let base = self.tat.max(now);
        let backlog = base - now;
        let new_tat = base + u128::from(cost) * self.interval;
        // Denied: nothing changes, the state is described by the backlog.
        let denied = |retry_after: u64| Decision {
            allowed: false,
            limit: self.burst,
            // Only admissions the state can still record (before u64::MAX) remain.
            remaining: narrow(
                (self.tolerance.saturating_sub(backlog) / self.interval)
                    .min((MAX - base) / self.interval),
            ),
            reset_after: narrow(backlog),
            retry_after,
        };
        if new_tat > MAX {
            // The state could never record this admission.
            return Ok((denied(NEVER), None));
        }
        let ahead = new_tat - now;
        if ahead <= self.tolerance {
            let decision = Decision {
                allowed: true,
                limit: self.burst,
                remaining: narrow(
                    ((self.tolerance - ahead) / self.interval).min((MAX - new_tat) / self.interval),
                ),
                reset_after: narrow(ahead),
                retry_after: 0,
            };
            Ok((decision, (cost > 0).then_some(new_tat)))
        } else {
            Ok((denied(narrow(ahead - self.tolerance)), None))
        }
    }

    fn apply(&mut self, tat: u128) {
        self.tat = tat;
    }

    fn capacity(&self) -> u64 {
        self.burst
    }
}
