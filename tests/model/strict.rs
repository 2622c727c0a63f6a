//! Strict sliding window, naively: a log of admissions grouped by sub-window, each group
//! released exactly one period after its newest admission.

use ratecore::{CheckError, Decision, QuotaError};

use super::{ceil_div, cost_check, until, Decide, QuotaParams, MAX_SUB_WINDOWS};

/// The admissions of one sub-window: how much, and the newest of them.
#[derive(Clone, Copy, Debug)]
struct SubWindow {
    index: u128,
    count: u64,
    newest: u128,
}

/// Reference strict window. No ring: every sub-window ever charged is kept.
#[derive(Clone, Debug)]
pub struct StrictModel {
    limit: u64,
    period: u128,
    granule: u128,
    log: Vec<SubWindow>,
    /// The latest admission time recorded (0 before any).
    latest: u128,
}

impl StrictModel {
    /// An empty strict window of `sub_windows` sub-windows for `quota`, or the
    /// documented construction error.
    pub fn new(quota: QuotaParams, sub_windows: u32) -> Result<Self, QuotaError> {
        if sub_windows == 0 {
            return Err(QuotaError::ZeroSubWindows);
        }
        if sub_windows > MAX_SUB_WINDOWS || u64::from(sub_windows) > quota.period {
            return Err(QuotaError::TooManySubWindows);
        }
        // "Limits above u32::MAX are rejected (StateTooWide)."
        if quota.limit > u64::from(u32::MAX) {
            return Err(QuotaError::StateTooWide);
        }
        let period = u128::from(quota.period);
        let granule = ceil_div(period, u128::from(sub_windows));
        Ok(Self {
            limit: quota.limit,
            period,
            granule,
            log: Vec::new(),
            latest: 0,
        })
    }

    /// The same log judged from now on under another quota of the same period and
    /// sub-windows (a per-client override): every admission carries over;
    /// `StateTooWide` as [`Self::new`].
    pub fn requota(&mut self, quota: QuotaParams) -> Result<(), QuotaError> {
        assert_eq!(
            u128::from(quota.period),
            self.period,
            "model bug: period changed"
        );
        if quota.limit > u64::from(u32::MAX) {
            return Err(QuotaError::StateTooWide);
        }
        self.limit = quota.limit;
        Ok(())
    }

    /// `(release time, count)` of every sub-window still in the window at `now`.
    fn in_window(&self, now: u128) -> Vec<(u128, u64)> {
        self.log
            .iter()
            .filter(|s| s.count > 0 && s.newest + self.period > now)
            .map(|s| (s.newest + self.period, s.count))
            .collect()
    }

    /// The documented effect of undoing, right away, the one admission of `cost` that
    /// turned `before` into `after` (`Table::undo`, a composite's cancel): if that
    /// admission opened its sub-window, everything is as before it; if the sub-window
    /// already held admissions, only the count goes back, and the sub-window keeps the
    /// undone admission's (newer) time, so the rest is released no earlier than that.
    #[allow(dead_code)] // used by some of the test crates that include the models
    pub fn undone(before: &Self, after: &Self, cost: u64) -> Self {
        let changed = after.log.iter().find(|s| {
            before
                .log
                .iter()
                .find(|b| b.index == s.index)
                .is_none_or(|b| b.count != s.count)
        });
        let Some(changed) = changed else {
            return before.clone();
        };
        let opened = before
            .log
            .iter()
            .find(|b| b.index == changed.index)
            .is_none_or(|b| b.count == 0);
        if opened {
            return before.clone();
        }
        let mut undone = after.clone();
        if let Some(sub) = undone.log.iter_mut().find(|s| s.index == changed.index) {
            sub.count -= cost;
        }
        undone
    }
}

impl Decide for StrictModel {
    /// The effective time and cost of an admission.
    type Write = (u128, u64);

    /// The decision at the effective time, and that time with the cost when the request
    /// is admitted and costs something.
    fn decide(&self, now: u64, cost: u64) -> Result<(Decision, Option<Self::Write>), CheckError> {
        cost_check(cost, self.limit)?;
        // Time going backwards never refunds: judge at the latest admission if later.
        let caller = u128::from(now);
        let now = caller.max(self.latest);
        let mut releases = self.in_window(now);
        let sum: u128 = releases.iter().map(|&(_, c)| u128::from(c)).sum();
        let last_release = |releases: &[(u128, u64)], extra: Option<u128>| {
            let last = releases.iter().map(|&(r, _)| r).chain(extra).max();
            // Durations are measured from the caller's time.
            last.map_or(0, |r| until(r, caller))
        };
        if sum + u128::from(cost) <= u128::from(self.limit) {
            // Our own admission, if any, is released one period from now.
            let ours = (cost > 0).then_some(now + self.period);
            let decision = Decision {
                allowed: true,
                limit: self.limit,
                remaining: self.limit - u64::try_from(sum).unwrap() - cost,
                reset_after: last_release(&releases, ours),
                retry_after: 0,
            };
            Ok((decision, (cost > 0).then_some((now, cost))))
        } else {
            releases.sort_unstable();
            let mut left = sum;
            let mut retry = None;
            for &(release, count) in &releases {
                left -= u128::from(count);
                if left + u128::from(cost) <= u128::from(self.limit) {
                    retry = Some(until(release, caller));
                    break;
                }
            }
            let decision = Decision {
                allowed: false,
                limit: self.limit,
                remaining: u64::try_from(u128::from(self.limit).saturating_sub(sum)).unwrap(),
                reset_after: last_release(&releases, None),
                retry_after: retry.expect("model bug: cost <= limit always fits eventually"),
            };
            Ok((decision, None))
        }
    }

    fn apply(&mut self, (now, cost): (u128, u64)) {
        let index = now / self.granule;
        match self.log.iter_mut().find(|s| s.index == index) {
            Some(sub) => {
                sub.count += cost;
                sub.newest = sub.newest.max(now);
            }
            None => self.log.push(SubWindow {
                index,
                count: cost,
                newest: now,
            }),
        }
        self.latest = self.latest.max(now);
    }

    fn capacity(&self) -> u64 {
        self.limit
    }
}
