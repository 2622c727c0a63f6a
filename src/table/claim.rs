//! Giving an absent key a slot without creating a duplicate: claim the slot picked for it
//! (or freed by a relocation, or frozen from a strict key at rest), fence, re-scan both
//! neighbourhoods for another copy, then publish the key's first state (see the table
//! docs, "Claiming a slot without creating duplicates").
//!
//! # Orderings
//! Slot CASes are `SeqCst`, and a `SeqCst` fence separates each claim (and each freeze)
//! from the re-reads that validate it: Dekker's pattern, argued in the table docs.

use super::config::FullPolicy;
use super::keyed::{Access, KeyedLimit, Kind, Step};
use super::layout::{claim_state, generation_of, pack, tag_of, CLAIMING};
use super::placement::{Pick, Takeover};
use super::relocation::Relocation;
use super::stats;
use super::KeyedReservation;
use crate::algorithm::sliding_strict::StrictConfig;
use crate::decision::Mode;
use crate::error::CheckError;
use crate::sync::{fence, Ordering};
use crate::Reservation;

impl<'t> KeyedLimit<'t> {
    /// Takes the slot of a strict key K at rest for our claim, without ever hiding K:
    /// 1. CAS K's slot to `(K | CLAIMING, K's generation)`: K is frozen, and its checkers
    ///    wait on it as on any claim of their key (rather than finding K absent and
    ///    claiming a second slot for it while we might still give this one back);
    /// 2. `SeqCst` fence, then re-read K's ring (Dekker with K's checker, which charges,
    ///    fences and re-reads the slot): if K was charged after all, unfreeze K
    ///    (loom: `strict_reclaim_never_leaves_two_copies`);
    /// 3. else CAS the frozen slot to our claim, with the next generation.
    ///
    /// `None`: retry (K was charged, or the slot changed under us).
    pub(super) fn freeze_and_take(
        &self,
        config: &StrictConfig,
        index: usize,
        old: u128,
        now: u64,
    ) -> Option<u128> {
        let generation = generation_of(old);
        let frozen = pack(tag_of(old) | CLAIMING, claim_state(now, generation));
        self.cas(index, old, frozen).ok()?;
        // SeqCst fence: our freeze, then the re-read of K's ring (above).
        fence(Ordering::SeqCst);
        if !config.is_at_rest(self.ring(index), generation, now) {
            let _ = self.cas(index, frozen, old);
            return None;
        }
        let claim = pack(
            self.fingerprint | CLAIMING,
            claim_state(now, generation.wrapping_add(1)),
        );
        // Fails only if a checker of K took the frozen slot over as abandoned.
        self.cas(index, frozen, claim).ok()?;
        Some(claim)
    }

    /// One attempt at giving an absent key a slot and charging it.
    pub(super) fn claim(
        &self,
        now: u64,
        cost: u64,
        mode: Mode,
    ) -> Result<Step<Access>, CheckError> {
        let (fresh, fresh_word) = self.fresh(now, cost)?;
        if !mode.charges() || cost == 0 || fresh_word.is_none() {
            return Ok(Step::Done((fresh, None)));
        }
        let generation_after = |old: u128| match self.kind {
            Kind::Word(_) => 0,
            Kind::Strict { .. } => generation_of(old).wrapping_add(1),
        };
        let mut relocated = None;
        let (index, old, takeover) = match self.pick_slot(now) {
            Pick::Present => return Ok(Step::Retry),
            Pick::Take(index, old, takeover) => (index, old, takeover),
            Pick::Full { victim, wait } => {
                // Lossless first: move a resident key (single-word limits only: a strict
                // key's ring belongs to its slot index).
                let moved = match self.kind {
                    Kind::Word(word) => self.relocate(word, now),
                    Kind::Strict { .. } => Relocation::Nothing,
                };
                match (moved, victim, self.policy) {
                    (Relocation::Moved(index, claim), _, _) => {
                        relocated = Some(claim);
                        (index, 0, Takeover::Relocated)
                    }
                    (Relocation::Retry, _, _) => return Ok(Step::Retry),
                    (Relocation::Nothing, Some((index, old)), FullPolicy::EvictClosestToRest) => {
                        (index, old, Takeover::Evicted)
                    }
                    (Relocation::Nothing, _, _) => {
                        self.counters.bump(stats::FULL_NEIGHBOURHOODS);
                        return Ok(Step::Done(self.refuse_or_admit_untracked(fresh, wait)));
                    }
                }
            }
        };
        let claim = match (relocated, self.kind, takeover) {
            // The relocation turned the freed slot into our claim already.
            (Some(claim), _, _) => claim,
            (None, Kind::Strict { config, .. }, Takeover::AtRest) => {
                match self.freeze_and_take(config, index, old, now) {
                    Some(claim) => claim,
                    None => return Ok(Step::Retry),
                }
            }
            (None, _, _) => {
                let claim = pack(
                    self.fingerprint | CLAIMING,
                    claim_state(now, generation_after(old)),
                );
                if self.cas(index, old, claim).is_err() {
                    return Ok(Step::Retry);
                }
                claim
            }
        };
        let generation = generation_of(claim);
        // SeqCst fence between our claim and the re-reads that validate it: the other
        // slots (duplicates) and, for a strict ring, the ring we took (table docs).
        fence(Ordering::SeqCst);
        match takeover {
            Takeover::Empty => self.counters.bump(stats::OCCUPIED),
            Takeover::AtRest => self.counters.bump(stats::RECLAIMS),
            Takeover::Abandoned => self.counters.bump(stats::STALE_CLAIMS),
            Takeover::Evicted => {
                self.counters.bump(stats::FULL_NEIGHBOURHOODS);
                self.counters.bump(stats::EVICTIONS);
            }
            Takeover::Relocated => {}
        }
        if self.has_other_copy(index) {
            if self
                .cas(index, claim, pack(0, u64::from(generation)))
                .is_ok()
            {
                self.counters.drop_one(stats::OCCUPIED);
            }
            return Ok(Step::Retry);
        }
        match self.kind {
            Kind::Word(_) => {
                let new_word = fresh_word.unwrap_or(0);
                if self
                    .cas(index, claim, pack(self.fingerprint, new_word))
                    .is_err()
                {
                    // Our claim was taken over as abandoned: start over.
                    return Ok(Step::Retry);
                }
                self.counters.bump(stats::NEW_KEYS);
                let inner = Reservation::word(new_word, 0, cost);
                Ok(Step::Done((fresh, Some(KeyedReservation { index, inner }))))
            }
            Kind::Strict { config, .. } => {
                let live = pack(self.fingerprint, u64::from(generation));
                if self.cas(index, claim, live).is_err() {
                    return Ok(Step::Retry);
                }
                self.counters.bump(stats::NEW_KEYS);
                // The ring of a new generation is empty; charge it like any live key.
                self.update_strict(config, index, live, now, cost, Mode::Charge)
            }
        }
    }
}
