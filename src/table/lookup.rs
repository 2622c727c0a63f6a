//! Finding a key and updating it where it lives: the neighbourhood scan (shared by the
//! single-limit fast path and [`KeyedLimit`]), the CAS loop on a live single-word slot, and
//! the strict window's charge-then-verify on a live ring.
//!
//! # Orderings
//! Slot loads and CASes are `SeqCst`, and a strict charge is followed by a `SeqCst` fence
//! before the key slot is re-read: see Orderings and "Identity and state change together"
//! in the table docs.

use super::keyed::{Access, KeyedLimit, Kind, Step};
use super::layout::{generation_of, neighbourhood_order, pack, state_of, tag_of, CLAIMING, MOVING};
use super::slot_atomics::SlotAtomics;
use super::KeyedReservation;
use crate::algorithm::sliding_strict::{Slot, StrictConfig};
use crate::algorithm::WordLimit;
use crate::decision::Decision;
use crate::decision::Mode;
use crate::error::CheckError;
use crate::sync::{fence, Ordering};
use crate::Reservation;

/// Where `fingerprint` sits in the neighbourhood starting at `start` of `keys` (a table of
/// `mask + 1` slots): the first slot carrying it, live or claimed, in
/// [`neighbourhood_order`]. Each slot's index is computed, not read from a table of line
/// starts: such a table, kept on the stack, would put a store-to-load round trip before
/// the first load (perf, `rc_keyed_1k`); the bounds check `get` keeps is one predictable
/// branch (an index is never out of bounds: it is masked to the table's capacity).
#[inline(always)] // see `Table::run`
pub(super) fn scan_neighbourhood(
    atomics: SlotAtomics,
    keys: &[Slot],
    start: usize,
    mask: usize,
    fingerprint: u64,
) -> Found {
    for index in neighbourhood_order(start, mask, fingerprint) {
        let Some(cell) = keys.get(index) else {
            continue;
        };
        // SeqCst: Orderings in the table docs.
        let slot = atomics.load(&cell.0);
        let tag = tag_of(slot);
        if tag & !CLAIMING == fingerprint {
            return if tag & CLAIMING == 0 {
                Found::Live(index, slot)
            } else {
                Found::Claiming(index, slot)
            };
        }
    }
    Found::Absent
}

/// What a key found in its neighbourhood.
pub(super) enum Found {
    /// Live at this index, with this slot value.
    Live(usize, u128),
    /// Being claimed at this index, with this slot value.
    Claiming(usize, u128),
    /// Absent.
    Absent,
}

/// A [`Decision`] as five words, with no padding: how the single-limit fast path hands a
/// decision on until it builds the caller's `Decision` once, field by field. Moved through
/// `Result` and `Option` wrappers as a `Decision` (a `bool` and 7 bytes of padding), it
/// would be copied in odd-sized pieces and read back with loads wider than the stores
/// that wrote it: a store-forwarding stall on every check (perf annotate of
/// `Table::check` and `peek` on one key).
#[derive(Clone, Copy)]
pub(super) struct Words {
    allowed: u64,
    limit: u64,
    remaining: u64,
    reset_after: u64,
    retry_after: u64,
}

impl Words {
    #[inline(always)]
    pub(super) const fn of(decision: &Decision) -> Self {
        Self {
            allowed: decision.allowed as u64,
            limit: decision.limit,
            remaining: decision.remaining,
            reset_after: decision.reset_after,
            retry_after: decision.retry_after,
        }
    }

    #[inline(always)]
    pub(super) const fn decision(self) -> Decision {
        Decision {
            allowed: self.allowed != 0,
            limit: self.limit,
            remaining: self.remaining,
            reset_after: self.reset_after,
            retry_after: self.retry_after,
        }
    }
}

/// How [`update_live_word`] ended.
pub(super) enum LiveUpdate {
    /// Decided; with `(new word, old state)` when the charge was stored.
    Done(Words, Option<(u64, u64)>),
    /// The slot no longer holds our key: start over.
    Lost,
}

/// The CAS loop on the live single-word slot `cell` of the key `fingerprint`, starting
/// from `slot` (the value a scan read): evaluate, store the new state with a 128-bit CAS
/// whose expected value carries our tag (table docs: identity and state change
/// together), and retry on a race while the slot still holds our key.
#[inline(always)] // see `Table::run`
#[allow(clippy::too_many_arguments)] // inlined into two callers; a struct would only wrap them
pub(super) fn update_live_word(
    atomics: SlotAtomics,
    cell: Option<&Slot>,
    word: &WordLimit,
    fingerprint: u64,
    mut slot: u128,
    now: u64,
    cost: u64,
    mode: Mode,
) -> Result<LiveUpdate, CheckError> {
    let Some(cell) = cell else {
        return Ok(LiveUpdate::Lost);
    };
    loop {
        let state = state_of(slot);
        let outcome = word.evaluate_inline(state, now, cost)?;
        let decision = Words::of(&outcome.decision);
        let new_word = match outcome.new_word {
            Some(new_word) if mode.charges() => new_word,
            _ => return Ok(LiveUpdate::Done(decision, None)),
        };
        // SeqCst both ways: Orderings in the table docs.
        match atomics.compare_exchange(&cell.0, slot, pack(fingerprint, new_word)) {
            Ok(_) => return Ok(LiveUpdate::Done(decision, Some((new_word, state)))),
            Err(actual) if tag_of(actual) == fingerprint => slot = actual,
            Err(_) => return Ok(LiveUpdate::Lost),
        }
    }
}

impl<'t> KeyedLimit<'t> {
    /// Our key's slot: the first neighbourhood is scanned, then the second, always in
    /// that order — a relocation moves a key only from its first neighbourhood to its
    /// second, so a scan can never miss a key that is being moved (table docs).
    pub(super) fn find(&self) -> Found {
        let mask = self.mask();
        for &start in self.starts() {
            if let found @ (Found::Live(..) | Found::Claiming(..)) =
                scan_neighbourhood(self.atomics, self.keys, start, mask, self.fingerprint)
            {
                return found;
            }
        }
        Found::Absent
    }

    /// Whether any slot other than `ours` holds our fingerprint (live or claiming). Scans
    /// in [`find`](Self::find)'s order, which a moving key cannot dodge.
    pub(super) fn has_other_copy(&self, ours: usize) -> bool {
        self.union()
            .any(|index| index != ours && tag_of(self.load(index)) & !CLAIMING == self.fingerprint)
    }

    /// Whether `slot` holds a single-word key's state in transit (table docs).
    pub(super) fn is_moving(&self, slot: u128) -> bool {
        matches!(self.kind, Kind::Word(_))
            && tag_of(slot) & CLAIMING != 0
            && generation_of(slot) == MOVING
    }

    /// One attempt at a live single-word slot: a CAS loop while the slot holds our key.
    /// Leaves out the reservation plumbing (which only composites need, see
    /// [`word_step`](Self::word_step)) so [`decide`](Self::decide) can use it alone.
    #[inline(always)]
    pub(super) fn update_word(
        &self,
        word: &WordLimit,
        index: usize,
        slot: u128,
        now: u64,
        cost: u64,
        mode: Mode,
    ) -> Result<LiveUpdate, CheckError> {
        update_live_word(
            self.atomics,
            self.keys.get(index),
            word,
            self.fingerprint,
            slot,
            now,
            cost,
            mode,
        )
    }

    /// The outcome of [`update_word`](Self::update_word) on slot `index` as a step of
    /// [`access`](Self::access): a charge that moved the word becomes a reservation of
    /// `cost` a composite can release.
    pub(super) fn word_step(index: usize, cost: u64, update: LiveUpdate) -> Step<Access> {
        match update {
            LiveUpdate::Done(decision, None) => Step::Done((decision.decision(), None)),
            LiveUpdate::Done(decision, Some((new_word, state))) => {
                let inner = Reservation::word(new_word, state, cost);
                let token = KeyedReservation { index, inner };
                Step::Done((decision.decision(), Some(token)))
            }
            LiveUpdate::Lost => Step::Retry,
        }
    }

    /// One attempt at a live strict slot: charge the ring of our generation, then make
    /// sure the slot is still ours (table docs), else take the charge back.
    pub(super) fn update_strict(
        &self,
        config: &StrictConfig,
        index: usize,
        slot: u128,
        now: u64,
        cost: u64,
        mode: Mode,
    ) -> Result<Step<Access>, CheckError> {
        let ring = self.ring(index);
        let generation = generation_of(slot);
        let (decision, reservation) = config.check(ring, generation, now, cost, mode)?;
        // SeqCst fence: our charge (if any), then the re-read of the key slot (Dekker with
        // the reclaimer's claim-then-re-read; table docs). Whatever the decision, it only
        // counts if the ring was still our key's throughout: `check` refuses to overwrite
        // a cell of a newer generation, so a decision made on a ring that changed owner
        // is caught here and made again.
        fence(Ordering::SeqCst);
        if self.load(index) != slot {
            if let Some(inner) = reservation {
                config.uncharge(ring, inner);
            }
            return Ok(Step::Retry);
        }
        let token = reservation.map(|inner| KeyedReservation { index, inner });
        Ok(Step::Done((decision, token)))
    }
}
