//! Strict sliding window: never admits more than `limit` in *any* interval of length
//! `period`.
//!
//! # Semantics
//! Time is cut into `N` sub-windows per period, of `g = ⌈period / N⌉` ns each, aligned to
//! time 0; a ring of `N + 1` [`Slot`]s holds one sub-window each. A slot counts the cost
//! admitted in its sub-window and remembers its *newest* admission time `t`. That count
//! stays in the window until `t + period` and is released exactly then: everything in the
//! sub-window was admitted at or before `t`, so no interval of length `period` ever holds
//! more than `limit` — and a burst inside one sub-window comes back exactly one period
//! after its newest request (1000 requests at 11:59:00 on 1000/hour: denied at 12:58:59
//! with `retry_after` = 1 s, admitted at 12:59:00).
//!
//! At `now`, the effective time is `max(now, newest admission recorded)` (time going
//! backwards never refunds); a request of cost `n` is admitted iff the counts still in the
//! window plus `n` are at most `limit`.
//! - `remaining` = `limit` − counts in window (after the decision);
//! - `reset_after` = until the last count in the window is released (after the decision);
//! - denied: `retry_after` = the first release time at which enough has been released
//!   for `n` to fit (exact, since counts only leave at release times).
//!
//! A release time beyond `u64::MAX` never comes ([`NEVER`]).
//!
//! `N` trades precision for work: requests in one sub-window are released together (with
//! the newest of them), so a larger `N` tracks spread-out traffic more closely, and each
//! check reads all `N + 1` slots.
//!
//! # Orderings
//! The state spans many words, so the protocol is *reserve, then verify* (DESIGN §2):
//! 1. read every slot (word, then newest) and decide;
//! 2. `fetch_max` the current slot's `newest` to our time, then CAS our cost into its word;
//! 3. re-read every slot and, if the window now holds more than `limit`, give our cost
//!    back (a spurious denial, never an over-admission).
//!
//! All slot operations are `SeqCst`. Two racing admitters A and B charge different slots
//! (the same slot is serialised by its CAS) and then each reads the other's slot; with a
//! single total order over these operations, whichever charge comes second is followed
//! (in that order) by its own thread's re-read of the other slot, and the *other* thread's
//! re-read comes after its own charge — so at least one of them sees both charges and
//! gives back (store→load ordering across different words, which `AcqRel` does not give).
//! The `newest` bump precedes the charge in the same total order, so any reader that sees
//! a charge also sees a `newest` at least as late as it, and never releases it early.

use crossbeam_utils::Backoff;

use crate::decision::{Decision, NEVER};
use crate::error::{CheckError, QuotaError};
use crate::packing::Layout;
use crate::quota::Quota;
use crate::sync::{AtomicU64, Ordering};
use crate::{RateLimiter, Reservation, Reserve};

/// The most sub-windows a strict window may have (each check reads `N + 1` slots).
pub const MAX_SUB_WINDOWS: u32 = 4096;

/// How often a check retries after its verification found a racing over-subscription,
/// before it settles for a denial.
const MAX_ATTEMPTS: u32 = 8;

/// One sub-window of a strict sliding window: its count and newest admission time.
#[derive(Debug)]
pub struct Slot {
    /// `(lap, count)` packed; the sub-window is `lap × (N + 1) + slot index`.
    word: AtomicU64,
    /// The newest admission time recorded in this slot (monotonic across laps).
    newest: AtomicU64,
}

impl Slot {
    /// An empty slot.
    #[must_use]
    pub fn new() -> Self {
        Self {
            word: AtomicU64::new(0),
            newest: AtomicU64::new(0),
        }
    }
}

impl Default for Slot {
    fn default() -> Self {
        Self::new()
    }
}

/// Strict-window parameters; shared by keyed tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StrictConfig {
    limit: u64,
    period: u64,
    granule: u64,
    slots: u64,
    layout: Layout,
}

impl StrictConfig {
    /// Parameters for `quota` cut into `sub_windows` sub-windows.
    ///
    /// # Errors
    /// [`QuotaError::ZeroSubWindows`], [`QuotaError::TooManySubWindows`], or
    /// [`QuotaError::StateTooWide`] when lap numbers and counts do not fit one word.
    pub const fn new(quota: &Quota, sub_windows: u32) -> Result<Self, QuotaError> {
        if sub_windows == 0 {
            return Err(QuotaError::ZeroSubWindows);
        }
        if sub_windows > MAX_SUB_WINDOWS || sub_windows as u64 > quota.period() {
            return Err(QuotaError::TooManySubWindows);
        }
        let granule = quota.period().div_ceil(sub_windows as u64);
        let slots = sub_windows as u64 + 1;
        let max_lap = u64::MAX / granule / slots;
        match Layout::new(quota.limit(), 1, max_lap) {
            Some(layout) => Ok(Self {
                limit: quota.limit(),
                period: quota.period(),
                granule,
                slots,
                layout,
            }),
            None => Err(QuotaError::StateTooWide),
        }
    }

    /// Slots a ring needs: `sub_windows + 1`.
    #[must_use]
    pub const fn slot_count(&self) -> usize {
        self.slots as usize
    }

    /// Whether a count whose newest admission is `newest` is still in the window at `now`.
    const fn in_window(&self, newest: u64, now: u64) -> bool {
        match newest.checked_add(self.period) {
            Some(release) => release > now,
            None => true,
        }
    }

    /// `(slot index, lap)` of the sub-window holding `now`.
    const fn position(&self, now: u64) -> (usize, u64) {
        let sub_window = now / self.granule;
        ((sub_window % self.slots) as usize, sub_window / self.slots)
    }

    /// Whether the ring holds no information at `now`.
    #[must_use]
    pub fn is_at_rest(&self, ring: &[Slot], now: u64) -> bool {
        ring.iter().all(|slot| {
            // SeqCst: see the module's Orderings; read word, then newest.
            let word = slot.word.load(Ordering::SeqCst);
            let newest = slot.newest.load(Ordering::SeqCst);
            self.layout.counter(word, 0) == 0 || !self.in_window(newest, now)
        })
    }

    /// The latest time the ring records, or `now` if later.
    fn effective_now(&self, ring: &[Slot], now: u64) -> u64 {
        ring.iter().fold(now, |latest, slot| {
            // SeqCst: part of the single total order the protocol relies on.
            latest.max(slot.newest.load(Ordering::SeqCst))
        })
    }

    /// Counts in the window at `now`, and the latest release among them.
    fn in_window_sum(&self, ring: &[Slot], now: u64) -> (u64, Option<u64>) {
        let mut sum = 0u64;
        let mut latest_release = Some(now);
        for slot in ring {
            // SeqCst, word before newest: a reader that sees a charge also sees the
            // `newest` bump that preceded it (module Orderings).
            let word = slot.word.load(Ordering::SeqCst);
            let newest = slot.newest.load(Ordering::SeqCst);
            let count = self.layout.counter(word, 0);
            if count > 0 && self.in_window(newest, now) {
                sum = sum.saturating_add(count);
                latest_release = match (latest_release, newest.checked_add(self.period)) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                };
            }
        }
        (sum, latest_release)
    }

    /// The first release time at which `sum − released + cost ≤ limit`, walking the ring
    /// from the oldest sub-window to the newest; relative to `now`.
    fn retry_after(&self, ring: &[Slot], now: u64, current: usize, sum: u64, cost: u64) -> u64 {
        let mut left = sum;
        let mut moment = now;
        for step in 1..=ring.len() {
            let Some(slot) = ring.get((current + step) % ring.len()) else {
                continue;
            };
            // SeqCst: as in `in_window_sum`.
            let word = slot.word.load(Ordering::SeqCst);
            let newest = slot.newest.load(Ordering::SeqCst);
            let count = self.layout.counter(word, 0);
            if count == 0 || !self.in_window(newest, now) {
                continue;
            }
            let Some(release) = newest.checked_add(self.period) else {
                return NEVER;
            };
            // Sequentially releases ascend in ring order; under races `max` keeps the
            // answer a moment at which everything walked so far has been released.
            moment = moment.max(release);
            left = left.saturating_sub(count);
            if left.saturating_add(cost) <= self.limit {
                return moment - now;
            }
        }
        // Unreachable for a consistent ring (everything is released eventually and
        // cost <= limit); under a race, answer with the latest release seen.
        if moment > now {
            moment - now
        } else {
            1
        }
    }

    /// One full check on `ring` (which must have [`slot_count`](Self::slot_count) slots).
    ///
    /// # Errors
    /// [`CheckError::CostExceedsLimit`] if `cost > limit`.
    pub fn check(
        &self,
        ring: &[Slot],
        now: u64,
        cost: u64,
        commit: bool,
    ) -> Result<(Decision, Option<Reservation>), CheckError> {
        if cost > self.limit {
            return Err(CheckError::CostExceedsLimit {
                cost,
                limit: self.limit,
            });
        }
        let backoff = Backoff::new();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let now = self.effective_now(ring, now);
            let (index, lap) = self.position(now);
            let Some(slot) = ring.get(index) else {
                // A ring shorter than the config says: refuse rather than panic.
                return Ok((self.denied(0, 1), None));
            };
            // SeqCst: the CAS below expects exactly this word (module Orderings).
            let observed = slot.word.load(Ordering::SeqCst);
            let (sum, latest_release) = self.in_window_sum(ring, now);
            if sum.saturating_add(cost) > self.limit {
                let retry = self.retry_after(ring, now, index, sum, cost);
                return Ok((
                    Decision {
                        allowed: false,
                        limit: self.limit,
                        remaining: self.limit.saturating_sub(sum),
                        reset_after: release_to_after(latest_release, now),
                        retry_after: retry,
                    },
                    None,
                ));
            }
            let allowed = Decision {
                allowed: true,
                limit: self.limit,
                remaining: self.limit - sum - cost,
                reset_after: if cost == 0 {
                    release_to_after(latest_release, now)
                } else {
                    let ours = now.checked_add(self.period);
                    release_to_after(max_release(latest_release, ours), now)
                },
                retry_after: 0,
            };
            if cost == 0 || !commit {
                return Ok((allowed, None));
            }
            let charged = if self.layout.window(observed, 1) == lap {
                self.layout.counter(observed, 0)
            } else {
                0
            };
            let count = charged.saturating_add(cost);
            if count > self.limit {
                // Only a ring changed under us can get here; decide again.
                if attempt >= MAX_ATTEMPTS {
                    return Ok((self.denied(sum, 1), None));
                }
                backoff.spin();
                continue;
            }
            // SeqCst: the bump precedes the charge in the total order, so whoever sees
            // the charge sees a newest time at least ours.
            slot.newest.fetch_max(now, Ordering::SeqCst);
            // SeqCst on success: orders our charge before our verification re-read (module
            // Orderings). Failure: someone else changed this slot; decide again.
            if slot
                .word
                .compare_exchange(
                    observed,
                    self.layout.pack1(lap, count),
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                )
                .is_err()
            {
                backoff.spin();
                continue;
            }
            let (verified, _) = self.in_window_sum(ring, now);
            if verified <= self.limit {
                let reservation = Reservation {
                    tag: lap,
                    aux: index as u64,
                    cost,
                };
                return Ok((allowed, Some(reservation)));
            }
            // A racing admission in another slot over-subscribed the window: give back.
            self.uncharge(ring, index, lap, cost);
            if attempt >= MAX_ATTEMPTS {
                return Ok((self.denied(sum, 1), None));
            }
            backoff.snooze();
        }
    }

    /// A denial produced by contention rather than by the quota.
    const fn denied(&self, sum: u64, retry_after: u64) -> Decision {
        Decision {
            allowed: false,
            limit: self.limit,
            remaining: self.limit.saturating_sub(sum),
            reset_after: self.period,
            retry_after,
        }
    }

    /// Gives `cost` back to slot `index` if it still holds lap `lap`.
    pub(crate) fn uncharge(&self, ring: &[Slot], index: usize, lap: u64, cost: u64) {
        let Some(slot) = ring.get(index) else {
            return;
        };
        // SeqCst: same total order as the charge we are undoing.
        let mut current = slot.word.load(Ordering::SeqCst);
        while self.layout.window(current, 1) == lap {
            let count = self.layout.counter(current, 0).saturating_sub(cost);
            // SeqCst: as above; on failure retry with the fresh word.
            match slot.word.compare_exchange_weak(
                current,
                self.layout.pack1(lap, count),
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }
}

fn max_release(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        _ => None,
    }
}

fn release_to_after(release: Option<u64>, now: u64) -> u64 {
    match release {
        Some(release) => release.saturating_sub(now),
        None => NEVER,
    }
}

/// A lock-free strict sliding-window limiter for one key, over a ring of [`Slot`]s.
///
/// `S` is the ring's storage: `Box<[Slot]>` from [`new`](Self::new) (feature `alloc`), or
/// any `AsRef<[Slot]>` the caller provides ([`with_storage`](Self::with_storage)), e.g. a
/// `[Slot; 61]` in `no_std`.
#[derive(Debug)]
pub struct SlidingWindowStrict<S> {
    ring: S,
    config: StrictConfig,
}

#[cfg(feature = "alloc")]
impl SlidingWindowStrict<alloc::boxed::Box<[Slot]>> {
    /// A limiter for `quota` with `sub_windows` sub-windows per period; starts empty.
    ///
    /// # Errors
    /// As for [`StrictConfig::new`].
    pub fn new(quota: Quota, sub_windows: u32) -> Result<Self, QuotaError> {
        let config = StrictConfig::new(&quota, sub_windows)?;
        let ring = (0..config.slot_count()).map(|_| Slot::new()).collect();
        Ok(Self { ring, config })
    }
}

impl<S: AsRef<[Slot]>> SlidingWindowStrict<S> {
    /// A limiter over caller-provided slots (exactly `sub_windows + 1`, all fresh).
    ///
    /// # Errors
    /// As for [`StrictConfig::new`], or [`QuotaError::StorageLength`].
    pub fn with_storage(quota: Quota, sub_windows: u32, ring: S) -> Result<Self, QuotaError> {
        let config = StrictConfig::new(&quota, sub_windows)?;
        let actual = ring.as_ref().len();
        if actual != config.slot_count() {
            return Err(QuotaError::StorageLength {
                expected: config.slot_count(),
                actual,
            });
        }
        Ok(Self { ring, config })
    }

    /// The parameters this limiter runs with.
    #[must_use]
    pub const fn config(&self) -> &StrictConfig {
        &self.config
    }
}

impl<S: AsRef<[Slot]>> RateLimiter for SlidingWindowStrict<S> {
    fn check(&self, now: u64, cost: u64) -> Result<Decision, CheckError> {
        self.config
            .check(self.ring.as_ref(), now, cost, true)
            .map(|(d, _)| d)
    }

    fn peek(&self, now: u64, cost: u64) -> Result<Decision, CheckError> {
        self.config
            .check(self.ring.as_ref(), now, cost, false)
            .map(|(d, _)| d)
    }
}

impl<S: AsRef<[Slot]>> Reserve for SlidingWindowStrict<S> {
    fn reserve(&self, now: u64, cost: u64) -> Result<(Decision, Option<Reservation>), CheckError> {
        self.config.check(self.ring.as_ref(), now, cost, true)
    }

    fn cancel(&self, reservation: Reservation) {
        // Counts are additive: subtracting our cost from the slot we charged, while it
        // still holds our lap, is exact. The `newest` bump stays (stricter, never looser).
        let index = usize::try_from(reservation.aux).unwrap_or(usize::MAX);
        self.config
            .uncharge(self.ring.as_ref(), index, reservation.tag, reservation.cost);
    }
}
