//! [`KeyedLimit`]: one limit of one key, a view on that limit's slots, and its check loop —
//! find the key, update it where it lives, wait on a claim in flight (taking it over when
//! abandoned), or give an absent key a slot — retried with backoff up to a bound.
//!
//! # Orderings
//! Every slot load and CAS here is `SeqCst` (Orderings in the table docs); counters are
//! `Relaxed` (see `stats`).

use super::config::FullPolicy;
#[cfg(feature = "std")]
use super::config::TableLimit;
use super::layout::{claim_is_stale, generation_of, neighbourhood_order, pack, state_of};
use super::lookup::{Found, LiveUpdate};
use super::relocation::MOVE_PATIENCE;
use super::slot_atomics::SlotAtomics;
use super::stats::{self, Counters};
use super::KeyedReservation;
use crate::algorithm::sliding_strict::{Slot, StrictConfig};
use crate::algorithm::WordLimit;
use crate::decision::Decision;
use crate::decision::Mode;
use crate::error::CheckError;
use crossbeam_utils::Backoff;

/// The algorithm side of a keyed limit.
#[derive(Clone, Copy)]
pub(super) enum Kind<'t> {
    Word(&'t WordLimit),
    Strict {
        config: &'t StrictConfig,
        rings: &'t [Slot],
        ring_len: usize,
    },
}

/// One limit of one key: a view on that limit's slots.
#[derive(Clone, Copy)]
pub(crate) struct KeyedLimit<'t> {
    pub(super) kind: Kind<'t>,
    pub(super) keys: &'t [Slot],
    pub(super) atomics: SlotAtomics,
    pub(super) counters: &'t Counters,
    pub(super) policy: FullPolicy,
    pub(super) fingerprint: u64,
    /// The first slot of each neighbourhood.
    pub(super) starts: [usize; 2],
    /// How many distinct neighbourhoods: 2, or 1 in an 8-slot table.
    pub(super) choices: usize,
}

/// The end of one attempt: a result, or start over.
pub(super) enum Step<T> {
    Done(T),
    Retry,
}

pub(super) type Access = (Decision, Option<KeyedReservation>);

/// How many times one check starts over (each after a yielding backoff) before it gives
/// up with a `contended` denial.
pub(super) const MAX_ATTEMPTS: u32 = 1 << 16;

impl<'t> KeyedLimit<'t> {
    /// This key's limit run with `limit`'s parameters (from
    /// [`Table::limit_with_quota`](super::Table::limit_with_quota) on the same table and
    /// limit, so the slot layout is the same); a limit of the other kind leaves it
    /// unchanged.
    #[cfg(feature = "std")]
    pub(crate) fn with_limit(mut self, limit: &'t TableLimit) -> Self {
        self.kind = match (self.kind, limit) {
            (Kind::Word(_), TableLimit::Word(word)) => Kind::Word(word),
            (
                Kind::Strict {
                    rings, ring_len, ..
                },
                TableLimit::Strict(config),
            ) if config.slot_count() == ring_len => Kind::Strict {
                config,
                rings,
                ring_len,
            },
            (kind, _) => kind,
        };
        self
    }

    pub(super) fn mask(&self) -> usize {
        self.keys.len().wrapping_sub(1)
    }

    /// The starts of our distinct neighbourhoods (one or two).
    pub(super) fn starts(&self) -> &[usize] {
        self.starts.get(..self.choices).unwrap_or(&self.starts)
    }

    /// Every slot of our neighbourhoods: the first's, then the second's, each in our
    /// lookup order (so a slot taken over goes to the free one closest to our home).
    pub(super) fn union(&self) -> impl Iterator<Item = usize> + '_ {
        let (mask, fingerprint) = (self.mask(), self.fingerprint);
        self.starts()
            .iter()
            .flat_map(move |&start| neighbourhood_order(start, mask, fingerprint))
    }

    pub(super) fn load(&self, index: usize) -> u128 {
        // SeqCst: Orderings in the table docs.
        self.keys.get(index).map_or(0, |s| self.atomics.load(&s.0))
    }

    pub(super) fn cas(&self, index: usize, current: u128, new: u128) -> Result<u128, u128> {
        match self.keys.get(index) {
            // SeqCst both ways: Orderings in the table docs.
            Some(slot) => self.atomics.compare_exchange(&slot.0, current, new),
            None => Err(current),
        }
    }

    pub(super) fn ring(&self, index: usize) -> &'t [Slot] {
        match self.kind {
            Kind::Word(_) => &[],
            Kind::Strict {
                rings, ring_len, ..
            } => {
                let start = index * ring_len;
                rings.get(start..start + ring_len).unwrap_or(&[])
            }
        }
    }

    pub(super) fn capacity(&self) -> u64 {
        match self.kind {
            Kind::Word(word) => word.capacity(),
            Kind::Strict { config, .. } => config.limit(),
        }
    }

    /// Nanoseconds until the live slot at `index` (value `slot`) is at rest.
    pub(super) fn time_to_rest(&self, index: usize, slot: u128, now: u64) -> u64 {
        match self.kind {
            Kind::Word(word) => word.time_to_rest(state_of(slot), now),
            Kind::Strict { config, .. } => {
                config.time_to_rest(self.ring(index), generation_of(slot), now)
            }
        }
    }

    /// The decision for a key with no state, without storing anything.
    pub(super) fn fresh(&self, now: u64, cost: u64) -> Result<(Decision, Option<u64>), CheckError> {
        match self.kind {
            Kind::Word(word) => word
                .evaluate(0, now, cost)
                .map(|o| (o.decision, o.new_word)),
            Kind::Strict { config, .. } => Ok((config.fresh(now, cost)?, Some(0))),
        }
    }

    /// A check (`commit`) or peek that needs no reservation — a table of one limit, and
    /// every peek: a live single-word key is decided right here (one scan, one CAS loop);
    /// anything else (absent, mid-claim or mid-move, strict, the slot lost to another key
    /// meanwhile) goes through [`access`](Self::access), which starts over. Saves the
    /// composite's plumbing where no reservation is needed: a one-limit table's slow path
    /// ([`Table::decide_single`](super::Table::decide_single)) and composites' peeks.
    #[inline(always)] // two callers: `Table::decide_single` and composites' peeks
    pub(crate) fn decide(&self, now: u64, cost: u64, mode: Mode) -> Result<Decision, CheckError> {
        if let Kind::Word(word) = self.kind {
            if let Found::Live(index, slot) = self.find() {
                if let LiveUpdate::Done(decision, _) =
                    self.update_word(word, index, slot, now, cost, mode)?
                {
                    return Ok(decision.decision());
                }
            }
        }
        self.access(now, cost, mode).map(|(d, _)| d)
    }

    pub(super) fn access(&self, now: u64, cost: u64, mode: Mode) -> Result<Access, CheckError> {
        let backoff = Backoff::new();
        let mut waited_on_move = 0u32;
        for _ in 0..MAX_ATTEMPTS {
            let step = match self.find() {
                Found::Live(index, slot) => match self.kind {
                    Kind::Word(word) => {
                        let update = self.update_word(word, index, slot, now, cost, mode)?;
                        Self::word_step(index, cost, update)
                    }
                    Kind::Strict { config, .. } => {
                        self.update_strict(config, index, slot, now, cost, mode)?
                    }
                },
                Found::Claiming(index, slot) => {
                    // A move is taken over only after we have waited for it a while as
                    // well: its claim time is its mover's `now`, and a caller whose
                    // `now` runs far ahead must not cut a live move short (that loses
                    // the moved key's state).
                    let patient = !self.is_moving(slot) || waited_on_move >= MOVE_PATIENCE;
                    if patient && claim_is_stale(slot, now) {
                        if self
                            .cas(index, slot, pack(0, u64::from(generation_of(slot))))
                            .is_ok()
                        {
                            self.counters.bump(stats::STALE_CLAIMS);
                            self.counters.drop_one(stats::OCCUPIED);
                        }
                        continue;
                    }
                    if !mode.charges() && !self.is_moving(slot) {
                        // A peek does not wait for a new key's claim: the key is about
                        // to hold a fresh state plus its claimant's request; report the
                        // fresh state. A key in transit has a state: wait for it.
                        return Ok((self.fresh(now, cost)?.0, None));
                    }
                    waited_on_move += u32::from(self.is_moving(slot));
                    crate::sync::backoff_wait(&backoff);
                    continue;
                }
                Found::Absent => self.claim(now, cost, mode)?,
            };
            match step {
                Step::Done(result) => return Ok(result),
                Step::Retry => crate::sync::backoff_wait(&backoff),
            }
        }
        self.counters.bump(stats::CONTENDED);
        Ok((
            Decision {
                allowed: false,
                limit: self.capacity(),
                remaining: 0,
                reset_after: 0,
                retry_after: 1,
            },
            None,
        ))
    }
}
