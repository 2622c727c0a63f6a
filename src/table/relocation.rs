//! Relocation: freeing a slot of a new key's full neighbourhoods by moving a resident
//! single-word key from its first neighbourhood to its second (one move, or two when that
//! one is full too), carrying its state exactly (see the table docs, "Relocation").
//!
//! # Orderings
//! Every step of a move is one `SeqCst` CAS; the argument that no scan misses a moving key
//! rests on their single total order (table docs), so a move needs no fence of its own.

use super::keyed::KeyedLimit;
use super::layout::{
    claim_is_stale, claim_state, neighbourhood_order, neighbourhoods, pack, state_of, tag_of,
    CLAIMING, MOVING, NEIGHBOURHOOD, STALE_CLAIM_NANOS,
};
use super::stats;
use crate::algorithm::WordLimit;

/// How many rounds a check of a key in transit waits before it may take the move over as
/// abandoned (it must also be [`STALE_CLAIM_NANOS`] old by the checker's `now`).
pub(super) const MOVE_PATIENCE: u32 = 64;

/// A new key takes a move's slot over as abandoned only this much later than other
/// claims (about 2.3 minutes): a caller whose `now` runs ahead must not cut a live move
/// short; the moved key's own checks clear an abandoned move sooner.
pub(super) const ABANDONED_MOVE_NANOS: u64 = STALE_CLAIM_NANOS << 6;

/// How many slots a two-move relocation may examine before giving up (a bound on the
/// work a new key does in a nearly full table).
pub(super) const DEEP_PROBES: u32 = 128;

/// How many times a relocation tries to freeze a source whose state keeps changing
/// before it gives the move up.
pub(super) const FREEZE_ATTEMPTS: u32 = 4;

/// The end of a relocation attempt.
pub(super) enum Relocation {
    /// A key moved; this slot now holds our claim, with this value.
    Moved(usize, u128),
    /// A race spoiled the move: start over.
    Retry,
    /// No resident key can move.
    Nothing,
}

impl<'t> KeyedLimit<'t> {
    /// The resident of `index` (value `slot`) if it may move: a live key in its *first*
    /// neighbourhood (keys move only from their first neighbourhood to their second). Returns its
    /// fingerprint and the start of its second neighbourhood.
    pub(super) fn movable(&self, index: usize, slot: u128) -> Option<(u64, usize)> {
        let tag = tag_of(slot);
        if tag == 0 || tag & CLAIMING != 0 {
            return None;
        }
        let mask = self.mask();
        let [first, second] = neighbourhoods(tag, mask);
        let in_first = (index.wrapping_sub(first) & mask) < NEIGHBOURHOOD;
        (first != second && in_first).then_some((tag, second))
    }

    /// Frees a slot of our (full) neighbourhoods by moving a resident single-word key
    /// from its first neighbourhood to an empty — else at-rest — slot of its second; if
    /// none has room, by first moving a key out of such a second neighbourhood (two
    /// moves; at most [`DEEP_PROBES`] slots examined). The freed slot becomes our claim.
    pub(super) fn relocate(&self, word: &WordLimit, now: u64) -> Relocation {
        if self.choices < 2 {
            return Relocation::Nothing;
        }
        let mask = self.mask();
        let claim = pack(self.fingerprint | CLAIMING, claim_state(now, 0));
        let done = |moved: bool, from: usize| {
            if moved {
                Relocation::Moved(from, claim)
            } else {
                Relocation::Retry
            }
        };
        // One move, into an empty slot; remember an at-rest one.
        let mut at_rest: Option<(usize, u64, usize, u128)> = None;
        let mut moving = false;
        for from in self.union() {
            let slot = self.load(from);
            let tag = tag_of(slot);
            if tag == 0 || tag & !CLAIMING == self.fingerprint {
                // A slot freed, or our key claimed by another thread: look again.
                return Relocation::Retry;
            }
            let Some((key, second)) = self.movable(from, slot) else {
                // A move in flight here ends with its source claimed for a new key —
                // maybe ours: wait for it rather than call the neighbourhoods full.
                moving |= self.is_moving(slot) && !claim_is_stale(slot, now);
                continue;
            };
            // In the moved key's lookup order, as a placement would.
            for to in neighbourhood_order(second, mask, key) {
                let target = self.load(to);
                let target_tag = tag_of(target);
                if target_tag == 0 {
                    return done(self.move_key(from, key, to, target, now, claim), from);
                }
                if at_rest.is_none()
                    && target_tag & CLAIMING == 0
                    && word.time_to_rest(state_of(target), now) == 0
                {
                    at_rest = Some((from, key, to, target));
                }
            }
        }
        if let Some((from, key, to, target)) = at_rest {
            return done(self.move_key(from, key, to, target, now, claim), from);
        }
        if moving {
            return Relocation::Retry;
        }
        // Two moves: `inner` from `via` (in our resident's second neighbourhood) to an
        // empty slot of its own second, handing `via` straight to our resident's move.
        let mut budget = DEEP_PROBES;
        for from in self.union() {
            let Some((key, second)) = self.movable(from, self.load(from)) else {
                continue;
            };
            for via in (0..NEIGHBOURHOOD).map(|offset| (second + offset) & mask) {
                let Some((inner, inner_second)) = self.movable(via, self.load(via)) else {
                    continue;
                };
                for to in neighbourhood_order(inner_second, mask, inner) {
                    budget = budget.saturating_sub(1);
                    if budget == 0 {
                        return Relocation::Nothing;
                    }
                    let target = self.load(to);
                    if tag_of(target) != 0 || to == from {
                        continue;
                    }
                    let hold = pack(key | CLAIMING, claim_state(now, MOVING));
                    if !self.move_key(via, inner, to, target, now, hold) {
                        return Relocation::Retry;
                    }
                    return done(self.move_key(from, key, via, hold, now, claim), from);
                }
            }
        }
        Relocation::Nothing
    }

    /// Moves the live key with fingerprint `key` from slot `from` (in its first
    /// neighbourhood) to slot `to` (in its second), then stores `next` in `from`. `target`
    /// is `to`'s value: empty or at rest — or already this move's reservation, handed over
    /// by a previous move. Steps (a) to (d) of the table docs; returns whether the key
    /// moved and `from` now holds `next`. On failure every step is undone except a
    /// displaced at-rest key (lossless) and a move that completed before a stall.
    pub(super) fn move_key(
        &self,
        from: usize,
        key: u64,
        to: usize,
        target: u128,
        now: u64,
        next: u128,
    ) -> bool {
        let hold = pack(key | CLAIMING, claim_state(now, MOVING));
        if target != hold {
            // (a) Reserve the target with a claim of the moving key. SeqCst like every
            // slot operation (Orderings in the table docs).
            if self.cas(to, target, hold).is_err() {
                return false;
            }
            if tag_of(target) == 0 {
                self.counters.bump(stats::OCCUPIED);
            } else {
                // The target's key was at rest: reclaimed (lossless).
                self.counters.bump(stats::RECLAIMS);
            }
        }
        // (b) Freeze the source: from here its state is ours to carry.
        let mut live = None;
        let mut current = self.load(from);
        for _ in 0..FREEZE_ATTEMPTS {
            if tag_of(current) != key {
                // Reclaimed, evicted or moved by someone else: nothing to move.
                break;
            }
            match self.cas(from, current, hold) {
                Ok(_) => {
                    live = Some(current);
                    break;
                }
                // Updated meanwhile: carry the newer state.
                Err(actual) => current = actual,
            }
        }
        let Some(live) = live else {
            // Undo (a). An at-rest key we displaced is not restored: its checkers may
            // already have given it a fresh slot, and its state held nothing anyway.
            if self.cas(to, hold, pack(0, 0)).is_ok() {
                self.counters.drop_one(stats::OCCUPIED);
            }
            return false;
        };
        // (c) The key is live again, at the target, with exactly the state it had.
        if self.cas(to, hold, live).is_err() {
            // Our reservation was taken over as abandoned (we stalled for
            // STALE_CLAIM_NANOS of someone's time): put the key back where it was. If that
            // was taken over too, its state is lost, as with any abandoned claim.
            let _ = self.cas(from, hold, live);
            return false;
        }
        self.counters.bump(stats::RELOCATIONS);
        // (d) The source is free: hand it on.
        self.cas(from, hold, next).is_ok()
    }
}
