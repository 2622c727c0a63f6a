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
//! window plus `n` are at most `limit`. Durations are measured from the caller's `now`, so
//! they name moments on the caller's clock (never early).
//! - `remaining` = `limit` − counts in window (after the decision);
//! - `reset_after` = until the last count in the window is released (after the decision);
//! - denied: `retry_after` = the first release time at which enough has been released
//!   for `n` to fit (exact, since counts only leave at release times).
//!
//! A release time beyond `u64::MAX` never comes ([`NEVER`]). Limits above `u32::MAX` are
//! rejected ([`QuotaError::StateTooWide`]).
//!
//! `N` trades precision for work: requests in one sub-window are released together (with
//! the newest of them), so a larger `N` tracks spread-out traffic more closely, and each
//! check reads all `N + 1` slots.
//!
//! # State
//! A slot is one 128-bit atomic: `newest` (64 bits) | `generation` (32) | `count` (32).
//! The sub-window a slot holds is `newest / g` — its newest admission lies in it — so no
//! separate window number is stored, and one CAS moves count and newest together. The
//! generation lets a keyed table give a ring to another key without rewriting it: cells
//! of another generation read as empty (a single-key limiter always uses generation 0).
//!
//! # Orderings
//! The state spans many words, so the protocol is *reserve, then verify*:
//! 1. read every slot and decide;
//! 2. CAS the current sub-window's slot from the value read to the charged value (a
//!    failed CAS means someone changed that slot: decide again);
//! 3. `fence(SeqCst)`, re-read every slot and, if the window now holds more than `limit`,
//!    give our cost back (a spurious denial, never an over-admission).
//!
//! Two admitters racing on different slots form Dekker's pattern: each writes its slot,
//! then reads the other's. With a `SeqCst` fence between each one's write and its reads,
//! C11 guarantees at least one of them reads the other's write (both fences are in the
//! single total order of `SeqCst` operations; whichever fence is later is followed by a
//! read that sees the earlier thread's write) — so at least one sees both charges and
//! gives back. The same slot is serialised by its CAS. `AcqRel` alone would not do: it
//! gives no store→load ordering across different words.

use crate::decision::Mode;
use crossbeam_utils::Backoff;

use super::divide::Divisor;
use crate::decision::{Decision, NEVER};
use crate::error::{CheckError, QuotaError};
use crate::quota::Quota;
use crate::sync::{fence, AtomicU128, Ordering};
use crate::{RateLimiter, Reservation, Reserve};

/// The most sub-windows a strict window may have (each check reads `N + 1` slots).
pub const MAX_SUB_WINDOWS: u32 = 4096;

/// How often a check retries after a CAS or verification lost a race, before it settles
/// for a denial.
const MAX_ATTEMPTS: u32 = 64;

/// One sub-window of a strict sliding window: its count, newest admission time and
/// generation, in one 128-bit atomic.
#[derive(Debug)]
#[repr(transparent)]
pub struct Slot(pub(crate) AtomicU128);

impl Slot {
    /// An empty slot.
    #[must_use]
    pub fn new() -> Self {
        Self(AtomicU128::new(0))
    }

    pub(crate) fn load(&self) -> Cell {
        // SeqCst: part of the single total order the verification relies on (module
        // Orderings).
        Cell::from_bits(self.0.load(Ordering::SeqCst))
    }

    pub(crate) fn compare_exchange(&self, current: Cell, new: Cell) -> Result<Cell, Cell> {
        // SeqCst: as for `load`.
        self.0
            .compare_exchange(
                current.bits(),
                new.bits(),
                Ordering::SeqCst,
                Ordering::SeqCst,
            )
            .map(Cell::from_bits)
            .map_err(Cell::from_bits)
    }
}

impl Default for Slot {
    fn default() -> Self {
        Self::new()
    }
}

/// A slot of a ring one thread owns: the stored state a Redis check decodes, which no
/// one else can see, so every read and write is a plain one.
pub(crate) type PrivateSlot = core::cell::Cell<Cell>;

/// A ring's slot: shared ([`Slot`]) or private ([`PrivateSlot`]). The algorithm is
/// written once over this; only a shared ring pays for atomics, the fence and the
/// verification walk.
pub(crate) trait RingSlot {
    /// Whether other threads may change the ring between two reads (module Orderings).
    const SHARED: bool;

    fn cell(&self) -> Cell;

    /// Replaces the cell if it still is `current`; else the cell found.
    fn replace(&self, current: Cell, new: Cell) -> Result<Cell, Cell>;
}

impl RingSlot for Slot {
    const SHARED: bool = true;

    fn cell(&self) -> Cell {
        self.load()
    }

    fn replace(&self, current: Cell, new: Cell) -> Result<Cell, Cell> {
        self.compare_exchange(current, new)
    }
}

impl RingSlot for PrivateSlot {
    const SHARED: bool = false;

    fn cell(&self) -> Cell {
        self.get()
    }

    fn replace(&self, current: Cell, new: Cell) -> Result<Cell, Cell> {
        let found = self.get();
        if found != current {
            return Err(found);
        }
        self.set(new);
        Ok(found)
    }
}

/// A slot's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cell {
    pub(crate) newest: u64,
    pub(crate) generation: u32,
    pub(crate) count: u32,
}

impl Cell {
    const fn from_bits(bits: u128) -> Self {
        Self {
            newest: (bits >> 64) as u64,
            generation: (bits >> 32) as u32,
            count: bits as u32,
        }
    }

    const fn bits(self) -> u128 {
        ((self.newest as u128) << 64) | ((self.generation as u128) << 32) | self.count as u128
    }
}

/// Strict-window parameters; shared by keyed tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StrictConfig {
    limit: u64,
    period: u64,
    granule: u64,
    /// `granule`, prepared for `div`-free division (sub-window numbers on every check).
    per_granule: Divisor,
    slots: u64,
}

impl StrictConfig {
    /// Parameters for `quota` cut into `sub_windows` sub-windows.
    ///
    /// # Errors
    /// [`QuotaError::ZeroSubWindows`], [`QuotaError::TooManySubWindows`], or
    /// [`QuotaError::StateTooWide`] when the limit exceeds `u32::MAX`.
    pub const fn new(quota: &Quota, sub_windows: u32) -> Result<Self, QuotaError> {
        if sub_windows == 0 {
            return Err(QuotaError::ZeroSubWindows);
        }
        if sub_windows > MAX_SUB_WINDOWS || sub_windows as u64 > quota.period() {
            return Err(QuotaError::TooManySubWindows);
        }
        if quota.limit() > u32::MAX as u64 {
            return Err(QuotaError::StateTooWide);
        }
        Ok(Self {
            limit: quota.limit(),
            period: quota.period(),
            granule: quota.period().div_ceil(sub_windows as u64),
            per_granule: Divisor::of_validated(quota.period().div_ceil(sub_windows as u64)),
            slots: sub_windows as u64 + 1,
        })
    }

    /// Slots a ring needs: `sub_windows + 1`.
    #[must_use]
    pub const fn slot_count(&self) -> usize {
        self.slots as usize
    }

    /// The limit per period.
    #[must_use]
    pub const fn limit(&self) -> u64 {
        self.limit
    }

    /// Whether `cell` counts for `generation` and is still in the window at `now`.
    const fn in_window(&self, cell: Cell, generation: u32, now: u64) -> bool {
        if cell.generation != generation || cell.count == 0 {
            return false;
        }
        match cell.newest.checked_add(self.period) {
            Some(release) => release > now,
            None => true,
        }
    }

    /// Whether the ring holds no information for `generation` at `now`.
    #[must_use]
    pub fn is_at_rest(&self, ring: &[Slot], generation: u32, now: u64) -> bool {
        ring.iter()
            .all(|slot| !self.in_window(slot.load(), generation, now))
    }

    /// Nanoseconds until the ring is at rest for `generation` (0 if it is).
    #[must_use]
    pub fn time_to_rest(&self, ring: &[Slot], generation: u32, now: u64) -> u64 {
        let effective = self.effective_now(ring, generation, now);
        let (sum, latest_release) = self.in_window_sum(ring, generation, effective);
        if sum == 0 {
            return 0;
        }
        release_to_after(latest_release, now)
    }

    /// The latest admission the ring records for `generation`, or `now` if later.
    fn effective_now<S: RingSlot>(&self, ring: &[S], generation: u32, now: u64) -> u64 {
        ring.iter().fold(now, |latest, slot| {
            let cell = slot.cell();
            if cell.generation == generation && cell.count > 0 {
                latest.max(cell.newest)
            } else {
                latest
            }
        })
    }

    /// Counts in the window at `now`, and the latest release among them.
    fn in_window_sum<S: RingSlot>(
        &self,
        ring: &[S],
        generation: u32,
        now: u64,
    ) -> (u64, Option<u64>) {
        let mut sum = 0u64;
        let mut latest_release = Some(now);
        for slot in ring {
            let cell = slot.cell();
            if self.in_window(cell, generation, now) {
                sum = sum.saturating_add(u64::from(cell.count));
                latest_release = max_release(latest_release, cell.newest.checked_add(self.period));
            }
        }
        (sum, latest_release)
    }

    /// The first release time at which `sum − released + cost ≤ limit`, walking the ring
    /// from the oldest sub-window to the newest; relative to `now`.
    #[allow(clippy::too_many_arguments)]
    fn retry_after<S: RingSlot>(
        &self,
        ring: &[S],
        generation: u32,
        now: u64,
        caller_now: u64,
        current: usize,
        sum: u64,
        cost: u64,
    ) -> u64 {
        let mut left = sum;
        let mut moment = now;
        for step in 1..=ring.len() {
            let Some(slot) = ring.get((current + step) % ring.len()) else {
                continue;
            };
            let cell = slot.cell();
            if !self.in_window(cell, generation, now) {
                continue;
            }
            let Some(release) = cell.newest.checked_add(self.period) else {
                return NEVER;
            };
            // Sequentially releases ascend in ring order; under races `max` keeps the
            // answer a moment at which everything walked so far has been released.
            moment = moment.max(release);
            left = left.saturating_sub(u64::from(cell.count));
            if left.saturating_add(cost) <= self.limit {
                // Cannot underflow: moment >= now >= caller_now.
                return moment - caller_now;
            }
        }
        // Unreachable for a consistent ring (everything is released eventually and
        // cost <= limit); under a race, answer with the latest release seen.
        if moment > now {
            moment - caller_now
        } else {
            1
        }
    }

    /// One full check on `ring` (which must have [`slot_count`](Self::slot_count) slots)
    /// for `generation`; charges only if `commit`.
    ///
    /// # Errors
    /// [`CheckError::CostExceedsLimit`] if `cost > limit`.
    pub fn check(
        &self,
        ring: &[Slot],
        generation: u32,
        now: u64,
        cost: u64,
        mode: Mode,
    ) -> Result<(Decision, Option<Reservation>), CheckError> {
        self.check_ring(ring, generation, now, cost, mode)
    }

    /// [`check`](Self::check) on a ring of either kind of [`RingSlot`].
    pub(crate) fn check_ring<S: RingSlot>(
        &self,
        ring: &[S],
        generation: u32,
        now: u64,
        cost: u64,
        mode: Mode,
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
            // Decide at the effective time; measure durations from the caller's `now`.
            let caller_now = now;
            let now = self.effective_now(ring, generation, caller_now);
            let sub_window = self.per_granule.divide(now);
            let index = (sub_window % self.slots) as usize;
            let Some(slot) = ring.get(index) else {
                // A ring shorter than the config says: refuse rather than panic.
                return Ok((self.contended(0), None));
            };
            let observed = slot.cell();
            if observed.count > 0 && is_newer(observed.generation, generation) {
                // The ring has a newer owner (a keyed table gave our key's slot to another
                // key): never overwrite its cells. The table re-checks its key and starts
                // over.
                return Ok((self.contended(0), None));
            }
            let (sum, latest_release) = self.in_window_sum(ring, generation, now);
            // "Fully replenished" is at the latest release, or already (the caller's now).
            let latest_release = latest_release.map(|r| if sum == 0 { caller_now } else { r });
            if sum.saturating_add(cost) > self.limit {
                let retry = self.retry_after(ring, generation, now, caller_now, index, sum, cost);
                return Ok((
                    Decision {
                        allowed: false,
                        limit: self.limit,
                        remaining: self.limit.saturating_sub(sum),
                        reset_after: release_to_after(latest_release, caller_now),
                        retry_after: retry,
                    },
                    None,
                ));
            }
            let reset_after = if cost == 0 {
                release_to_after(latest_release, caller_now)
            } else {
                let ours = now.checked_add(self.period);
                release_to_after(max_release(latest_release, ours), caller_now)
            };
            let allowed = Decision {
                allowed: true,
                limit: self.limit,
                remaining: self.limit - sum - cost,
                reset_after,
                retry_after: 0,
            };
            if cost == 0 || !mode.charges() {
                return Ok((allowed, None));
            }
            let live = observed.generation == generation && observed.count > 0;
            if live && observed.newest > now {
                // Someone charged this slot after we read the ring's time (a later
                // admission in our sub-window, or a later lap): our effective time is
                // stale. Writing now would move the slot's newest time backwards (an
                // early release) or erase a newer sub-window's count — decide again.
                if attempt >= MAX_ATTEMPTS {
                    return Ok((self.contended(sum), None));
                }
                crate::sync::backoff_wait(&backoff);
                continue;
            }
            let ours = live && self.per_granule.divide(observed.newest) == sub_window;
            let charged = if ours { u64::from(observed.count) } else { 0 };
            let count = charged + cost;
            if count > self.limit {
                // Only a ring changed under us can get here; decide again.
                if attempt >= MAX_ATTEMPTS {
                    return Ok((self.contended(sum), None));
                }
                crate::sync::backoff_wait(&backoff);
                continue;
            }
            let charged_cell = Cell {
                newest: now,
                generation,
                // Cannot truncate: count <= limit <= u32::MAX (StrictConfig::new).
                count: count as u32,
            };
            if slot.replace(observed, charged_cell).is_err() {
                if attempt >= MAX_ATTEMPTS {
                    return Ok((self.contended(sum), None));
                }
                crate::sync::backoff_wait(&backoff);
                continue;
            }
            let reservation = Reservation {
                tag: now,
                aux: ((index as u64) << 32) | u64::from(generation),
                cost,
                before_newest: observed.newest,
                before_meta: (u64::from(observed.generation) << 32) | u64::from(observed.count),
            };
            if !S::SHARED {
                // No one else charges a private ring: the sum read is the sum.
                return Ok((allowed, Some(reservation)));
            }
            // SeqCst fence: orders our charge before the re-read below (Dekker; module
            // Orderings).
            fence(Ordering::SeqCst);
            let (verified, _) = self.in_window_sum(ring, generation, now);
            if verified <= self.limit {
                return Ok((allowed, Some(reservation)));
            }
            // A racing admission in another slot over-subscribed the window: give back.
            self.uncharge(ring, reservation);
            if attempt >= MAX_ATTEMPTS {
                return Ok((self.contended(sum), None));
            }
            crate::sync::backoff_wait(&backoff);
        }
    }

    /// The decision for a ring nobody has charged (what `check` returns on an empty
    /// ring), without needing one.
    ///
    /// # Errors
    /// [`CheckError::CostExceedsLimit`] if `cost > limit`.
    pub fn fresh(&self, now: u64, cost: u64) -> Result<Decision, CheckError> {
        if cost > self.limit {
            return Err(CheckError::CostExceedsLimit {
                cost,
                limit: self.limit,
            });
        }
        let reset_after = if cost == 0 {
            0
        } else {
            release_to_after(now.checked_add(self.period), now)
        };
        Ok(Decision {
            allowed: true,
            limit: self.limit,
            remaining: self.limit - cost,
            reset_after,
            retry_after: 0,
        })
    }

    /// A denial produced by contention rather than by the quota.
    const fn contended(&self, sum: u64) -> Decision {
        Decision {
            allowed: false,
            limit: self.limit,
            remaining: self.limit.saturating_sub(sum),
            reset_after: self.period,
            retry_after: 1,
        }
    }

    /// Gives a reservation back, if its slot still holds its sub-window and generation.
    pub(crate) fn uncharge<S: RingSlot>(&self, ring: &[S], reservation: Reservation) {
        let index = (reservation.aux >> 32) as usize;
        let generation = reservation.aux as u32;
        let Some(slot) = ring.get(index) else {
            return;
        };
        let sub_window = self.per_granule.divide(reservation.tag);
        let before = Cell {
            newest: reservation.before_newest,
            generation: (reservation.before_meta >> 32) as u32,
            count: reservation.before_meta as u32,
        };
        // The cell as our charge left it (as `reserve` built it from `before`).
        let ours = before.generation == generation
            && before.count > 0
            && self.per_granule.divide(before.newest) == sub_window;
        let charged =
            u64::from(if ours { before.count } else { 0 }).saturating_add(reservation.cost);
        let written = Cell {
            newest: reservation.tag,
            generation,
            count: u32::try_from(charged).unwrap_or(u32::MAX),
        };
        let mut current = slot.cell();
        if !ours && current == written {
            // Our charge opened the sub-window's cell, and the cell is exactly as it left
            // it: the count is our cost alone (any later charge and its give-back netted
            // to zero), so putting back the cell as it was is the exact inverse.
            //
            // Not when the cell already held this sub-window (`ours`): then an equal cell
            // does not prove the charges in it are the ones that were there before ours
            // (another request may have given back and a third charged at our time), and
            // restoring the older newest time would release that third charge early (an
            // over-admission). Subtracting keeps our newest time instead: the rest of the
            // sub-window's count is released with it, at most one sub-window late (a
            // possible spurious denial, never an extra admission).
            //
            // On a lost race, fall through to subtracting from what is there now.
            match slot.replace(current, before) {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
        while current.generation == generation
            && current.count > 0
            && self.per_granule.divide(current.newest) == sub_window
        {
            let count = u64::from(current.count).saturating_sub(reservation.cost);
            let new = Cell {
                // Cannot truncate: count <= current.count.
                count: count as u32,
                ..current
            };
            match slot.replace(current, new) {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }
}

/// Whether generation `a` is newer than `b` (wrapping: within half the 32-bit range).
const fn is_newer(a: u32, b: u32) -> bool {
    let ahead = a.wrapping_sub(b);
    ahead != 0 && ahead < 1 << 31
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
            .check(self.ring.as_ref(), 0, now, cost, Mode::Charge)
            .map(|(d, _)| d)
    }

    fn peek(&self, now: u64, cost: u64) -> Result<Decision, CheckError> {
        self.config
            .check(self.ring.as_ref(), 0, now, cost, Mode::Peek)
            .map(|(d, _)| d)
    }
}

impl<S: AsRef<[Slot]>> Reserve for SlidingWindowStrict<S> {
    fn reserve(&self, now: u64, cost: u64) -> Result<(Decision, Option<Reservation>), CheckError> {
        self.config
            .check(self.ring.as_ref(), 0, now, cost, Mode::Charge)
    }

    fn cancel(&self, reservation: Reservation) {
        // `StrictConfig::uncharge`: the cell our charge opened goes back as it was if
        // nothing changed it; otherwise our cost is subtracted from the cell while it
        // still holds our sub-window (counts are additive), its `newest` kept (stricter,
        // never looser).
        self.config.uncharge(self.ring.as_ref(), reservation);
    }
}
