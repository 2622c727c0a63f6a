//! Keyed tables: per-key limits for millions of keys in memory fixed at creation.
//!
//! # Layout
//! For each limit, an array of `capacity` key slots (a power of two), and for a strict
//! window a ring of `N + 1` cells per key slot beside it. A key slot is one 128-bit
//! atomic holding `(tag, state)`: the tag is 0 for an empty slot, otherwise the key's
//! 63-bit fingerprint, with the top bit set while a claim is in progress. No key bytes
//! are stored. The state is the algorithm's word (GCRA, fixed and approximate windows)
//! or, for a strict window, the *generation* of the key's ring: ring cells written under
//! another generation read as empty, so a ring changes owner without being rewritten.
//! A claim in progress holds `[claim time in 2^30 ns units : 32 | generation : 32]`.
//!
//! A key hashes (ahash, seeded per table) to a fingerprint and a *neighbourhood*:
//! [`NEIGHBOURHOOD`] consecutive key slots (two 64-byte cache lines) starting at a
//! 4-slot boundary. Probing never leaves it.
//!
//! # Identity and state change together
//! For single-word algorithms every update is a 128-bit CAS whose expected value includes
//! the tag, so an update that raced an eviction or reclaim fails (the tag changed) and
//! the updater starts over: it can never land on another key's state. For the strict
//! window the ring's cells carry the generation, so a stale updater's CAS either fails or
//! writes a cell the new owner reads as empty; after charging, the updater re-reads the
//! key slot (after a `SeqCst` fence) and, if its key lost the slot meanwhile, takes the
//! charge back and starts over. A reclaimer in turn re-reads the ring after claiming (also
//! after a fence) and backs out if the key is no longer at rest. Dekker's pattern again:
//! one of the two always sees the other.
//!
//! # Claiming a slot without creating duplicates
//! A key not found in its neighbourhood claims a slot (empty first, then one at rest,
//! then — policy permitting — the active slot closest to rest) in three steps:
//! 1. CAS the slot to `(fingerprint | CLAIMING, claim state)`;
//! 2. `SeqCst` fence; re-scan the neighbourhood: if any *other* slot holds the
//!    fingerprint (live or claiming), back out (CAS our slot to empty) and start over;
//! 3. CAS our slot from claiming to `(fingerprint, state after this request)`.
//!
//! No two live copies of a key can result. Suppose A claims slot i and B claims slot j
//! for one key and both pass step 2. Between its claim and its re-scan each thread
//! issues a `SeqCst` fence (Dekker's pattern): the two fences are totally ordered, and
//! the re-scan after the later fence must see the claim made before the earlier one — so
//! at least one of A and B sees the other's claim and backs out. (Both may back out at
//! once; they then retry and usually pick the same empty slot, where only one CAS
//! succeeds.) A thread that finds a key mid-claim waits (bounded, yielding); a claim
//! older than [`STALE_CLAIM_NANOS`] of caller time (a crashed process) is taken over.
//!
//! # Rest, reclaim, eviction
//! A slot at rest (GCRA TAT ≤ now, window expired) holds no information, so giving it to
//! another key is lossless (`reclaims`). Only when all [`NEIGHBOURHOOD`] slots are active
//! does [`FullPolicy`] apply (`full_neighbourhoods`, plus `evictions`, `full_denied` or
//! `full_allowed`). Memory never grows.
//!
//! Hash collisions: two keys share a state only if their 63-bit fingerprints are equal
//! *and* they fall in the same neighbourhood (about one pair in 2^60 for a table of a
//! million slots). A slot reclaimed at rest and its key returning with a `now` earlier
//! than the reclaimer's starts fresh (the old state, already at rest, is gone).
//!
//! # Orderings
//! Slot operations are `SeqCst`, and `SeqCst` fences separate each write from the
//! cross-slot re-reads that validate it (above): those arguments need store→load ordering
//! across *different* atomics, which acquire/release does not give. Updates of a live
//! single-word slot need only the CAS's atomicity (the tag in the expected value carries
//! identity). Counters are `Relaxed` (see `stats`).

mod config;
#[cfg(not(ratecore_loom))]
pub mod region;
mod stats;

use core::hash::Hash;

use crossbeam_utils::Backoff;

use crate::composite::{run_all, Member};
use crate::decision::Decision;
use crate::error::CheckError;
use crate::sliding_strict::{Slot, StrictConfig};
use crate::sync::{fence, AtomicU128, Ordering};
use crate::word::WordLimit;
use crate::Reservation;

pub use config::{FullPolicy, LimitSpec, TableConfig, TableError, MAX_CAPACITY, MAX_TABLE_LIMITS};
pub use stats::TableStats;

use config::TableLimit;
use stats::Counters;

/// Key slots probed per key: two 64-byte cache lines of 16-byte slots.
pub const NEIGHBOURHOOD: usize = 8;

/// Slots per 64-byte line; neighbourhoods start on a line boundary.
const LINE: usize = 4;

/// A claim older than this (in the callers' `now`) is considered abandoned.
pub const STALE_CLAIM_NANOS: u64 = 1 << 31;

/// Claim times are stored in units of 2^30 ns (about 1.07 s) to fit 32 bits.
const CLAIM_TIME_SHIFT: u32 = 30;

/// Tag bit set while a claim is in progress.
const CLAIMING: u64 = 1 << 63;

/// How many times one check starts over (each after a yielding backoff) before it gives
/// up with a `contended` denial.
const MAX_ATTEMPTS: u32 = 1 << 16;

const fn pack(tag: u64, state: u64) -> u128 {
    ((tag as u128) << 64) | state as u128
}

const fn tag_of(slot: u128) -> u64 {
    (slot >> 64) as u64
}

const fn state_of(slot: u128) -> u64 {
    slot as u64
}

/// The generation half of a strict key slot's state (live, claiming or empty).
const fn generation_of(slot: u128) -> u32 {
    slot as u32
}

fn claim_state(now: u64, generation: u32) -> u64 {
    let coarse = u32::try_from(now >> CLAIM_TIME_SHIFT).unwrap_or(u32::MAX);
    (u64::from(coarse) << 32) | u64::from(generation)
}

fn claim_is_stale(slot: u128, now: u64) -> bool {
    let claimed = (state_of(slot) >> 32) << CLAIM_TIME_SHIFT;
    now.saturating_sub(claimed) >= STALE_CLAIM_NANOS
}

/// Where a table's slots and counters live: [`OwnedMemory`] or
/// [`region::RegionMemory`]. Sealed.
pub trait TableMemory: sealed::Access {}

impl<T: sealed::Access> TableMemory for T {}

mod sealed {
    use super::{Counters, Slot};

    /// The accessors behind [`super::TableMemory`]; unnameable outside the crate.
    pub trait Access {
        /// Every limit's slots, one limit after the other.
        fn slots(&self) -> &[Slot];
        /// The shared counters.
        fn counters(&self) -> &Counters;
    }
}

/// Memory the table allocated itself ([`Table::new`]).
#[cfg(feature = "alloc")]
#[derive(Debug)]
pub struct OwnedMemory {
    counters: alloc::boxed::Box<Counters>,
    slots: alloc::boxed::Box<[Slot]>,
}

#[cfg(feature = "alloc")]
impl sealed::Access for OwnedMemory {
    fn slots(&self) -> &[Slot] {
        &self.slots
    }
    fn counters(&self) -> &Counters {
        &self.counters
    }
}

/// A fixed-capacity, lock-free, allocation-free table of per-key limits.
///
/// Shared across threads by `&self`; `check` never allocates, locks or reads a clock.
#[derive(Debug)]
pub struct Table<M: TableMemory> {
    config: TableConfig,
    limits: [TableLimit; MAX_TABLE_LIMITS],
    /// Where each limit's slots start in the memory.
    bases: [usize; MAX_TABLE_LIMITS],
    hasher: ahash::RandomState,
    /// `capacity − 1`.
    mask: usize,
    memory: M,
}

/// A table over memory it allocated itself.
#[cfg(feature = "alloc")]
pub type OwnedTable = Table<OwnedMemory>;

#[cfg(feature = "alloc")]
impl Table<OwnedMemory> {
    /// A table in memory it allocates now (all of it: checks never allocate).
    ///
    /// # Errors
    /// [`TableError::NotLockFree`] on a CPU without lock-free 128-bit atomics;
    /// [`TableError::BadCapacity`] if the memory size overflows;
    /// [`TableError::OutOfMemory`] if the system refuses the memory.
    pub fn new(config: TableConfig) -> Result<Self, TableError> {
        let total = config
            .total_slots()
            .and_then(|t| usize::try_from(t).ok())
            .ok_or(TableError::BadCapacity)?;
        // Fallible: a huge capacity must be an error, not an abort.
        let mut slots = alloc::vec::Vec::new();
        slots
            .try_reserve_exact(total)
            .map_err(|_| TableError::OutOfMemory)?;
        slots.extend((0..total).map(|_| Slot::new()));
        let memory = OwnedMemory {
            counters: alloc::boxed::Box::new(Counters::new()),
            slots: slots.into_boxed_slice(),
        };
        Self::with_memory(config, memory)
    }
}

impl<M: TableMemory> Table<M> {
    pub(crate) fn with_memory(config: TableConfig, memory: M) -> Result<Self, TableError> {
        if !AtomicU128::is_lock_free() {
            return Err(TableError::NotLockFree);
        }
        let first = config.limits[0].ok_or(TableError::NoLimits)?;
        let limits = core::array::from_fn(|i| config.limits[i].unwrap_or(first));
        let mut bases = [0usize; MAX_TABLE_LIMITS];
        let mut next = 0u64;
        for (base, limit) in bases.iter_mut().zip(config.limits.iter().flatten()) {
            *base = usize::try_from(next).map_err(|_| TableError::BadCapacity)?;
            next = config
                .slots_for(limit)
                .and_then(|n| next.checked_add(n))
                .ok_or(TableError::BadCapacity)?;
        }
        if usize::try_from(next).ok() != Some(memory.slots().len()) {
            return Err(TableError::BadCapacity);
        }
        let [a, b, c, d] = config.seed;
        let mask = usize::try_from(config.capacity - 1).map_err(|_| TableError::BadCapacity)?;
        Ok(Self {
            config,
            limits,
            bases,
            hasher: ahash::RandomState::with_seeds(a, b, c, d),
            mask,
            memory,
        })
    }

    /// The configuration the table runs with.
    #[must_use]
    pub const fn config(&self) -> &TableConfig {
        &self.config
    }

    /// A snapshot of the table's counters.
    #[must_use]
    pub fn stats(&self) -> TableStats {
        self.memory.counters().snapshot()
    }

    /// Decides a request of `cost` by `key` at `now` against every limit (admitted only if
    /// all admit; a denial consumes nothing). A `cost` of 0 reports the key's state: it
    /// never consumes and never gives the key a slot.
    ///
    /// # Errors
    /// [`CheckError::CostExceedsLimit`] if `cost` can never fit some limit.
    pub fn check(&self, key: &[u8], now: u64, cost: u64) -> Result<Decision, CheckError> {
        self.run(self.hasher.hash_one(key), now, cost, true, &mut [])
    }

    /// The decision [`check`](Self::check) would return, consuming nothing.
    ///
    /// # Errors
    /// As for [`check`](Self::check).
    pub fn peek(&self, key: &[u8], now: u64, cost: u64) -> Result<Decision, CheckError> {
        self.run(self.hasher.hash_one(key), now, cost, false, &mut [])
    }

    /// Like [`check`](Self::check), and writes each limit's state into `states` (as
    /// [`crate::Composite::check_each`]).
    ///
    /// # Errors
    /// As for [`check`](Self::check).
    pub fn check_each(
        &self,
        key: &[u8],
        now: u64,
        cost: u64,
        states: &mut [Decision],
    ) -> Result<Decision, CheckError> {
        self.run(self.hasher.hash_one(key), now, cost, true, states)
    }

    /// Like [`peek`](Self::peek), and writes each limit's state into `states` (as
    /// [`crate::Composite::peek_each`]). Consumes nothing and never gives the key a slot.
    ///
    /// # Errors
    /// As for [`check`](Self::check).
    pub fn peek_each(
        &self,
        key: &[u8],
        now: u64,
        cost: u64,
        states: &mut [Decision],
    ) -> Result<Decision, CheckError> {
        self.run(self.hasher.hash_one(key), now, cost, false, states)
    }

    /// Like [`check`](Self::check) for any hashable key (e.g. a `u64` account id or an
    /// `(app, user)` tuple). Keys are hashed with their `Hash` impl: use one key type per
    /// table, since `b"42"` and `42u64` hash differently.
    ///
    /// # Errors
    /// As for [`check`](Self::check).
    pub fn check_key<K: Hash + ?Sized>(
        &self,
        key: &K,
        now: u64,
        cost: u64,
    ) -> Result<Decision, CheckError> {
        self.run(self.hasher.hash_one(key), now, cost, true, &mut [])
    }

    fn run(
        &self,
        hash: u64,
        now: u64,
        cost: u64,
        commit: bool,
        states: &mut [Decision],
    ) -> Result<Decision, CheckError> {
        // Fingerprint: 63 bits, never 0 (0 marks an empty slot).
        let fingerprint = (hash & !CLAIMING).max(1);
        // Neighbourhood start: line-aligned, from bits the fingerprint also uses — keys in
        // one neighbourhood agree on them, so collisions need all 63 bits equal.
        let start = (hash.rotate_right(17) as usize).wrapping_mul(LINE) & self.mask;
        let count = self.config.count;
        if count == 1 && states.is_empty() {
            let member = self.member(0, fingerprint, start);
            return if commit {
                member.reserve(now, cost).map(|(d, _)| d)
            } else {
                member.peek(now, cost)
            };
        }
        let members: [KeyedLimit<'_>; MAX_TABLE_LIMITS] =
            core::array::from_fn(|i| self.member(i, fingerprint, start));
        run_all(
            members.get(..count).unwrap_or(&members),
            now,
            cost,
            commit,
            states,
        )
    }

    #[cfg_attr(not(feature = "alloc"), allow(dead_code))]
    /// The hash a key of any `Hash` type gets in this table.
    pub(crate) fn hash_of<K: Hash + ?Sized>(&self, key: &K) -> u64 {
        self.hasher.hash_one(key)
    }

    #[cfg_attr(not(feature = "alloc"), allow(dead_code))]
    /// Every limit of the key hashing to `hash`, written to `out` from index 0; returns
    /// how many were written (all of them, if `out` is long enough).
    pub(crate) fn members_into<'t>(&'t self, hash: u64, out: &mut [KeyedLimit<'t>]) -> usize {
        let fingerprint = (hash & !CLAIMING).max(1);
        let start = (hash.rotate_right(17) as usize).wrapping_mul(LINE) & self.mask;
        let mut written = 0;
        for (index, slot) in out.iter_mut().take(self.config.count).enumerate() {
            *slot = self.member(index, fingerprint, start);
            written += 1;
        }
        written
    }

    #[cfg_attr(not(feature = "alloc"), allow(dead_code))]
    /// A member for filling arrays before [`members_into`](Self::members_into).
    pub(crate) fn placeholder(&self) -> KeyedLimit<'_> {
        self.member(0, 1, 0)
    }

    fn member(&self, index: usize, fingerprint: u64, start: usize) -> KeyedLimit<'_> {
        let index = index.min(self.config.count.saturating_sub(1));
        let limit = &self.limits[index.min(MAX_TABLE_LIMITS - 1)];
        let capacity = self.mask + 1;
        let base = self.bases.get(index).copied().unwrap_or(0);
        let all = self.memory.slots();
        let keys = all.get(base..base + capacity).unwrap_or(&[]);
        let kind = match limit {
            TableLimit::Word(word) => Kind::Word(word),
            TableLimit::Strict(strict) => {
                let ring_len = strict.slot_count();
                let rings_base = base + capacity;
                let rings = all
                    .get(rings_base..rings_base + capacity * ring_len)
                    .unwrap_or(&[]);
                Kind::Strict {
                    config: strict,
                    rings,
                    ring_len,
                }
            }
        };
        KeyedLimit {
            kind,
            keys,
            counters: self.memory.counters(),
            policy: self.config.policy,
            fingerprint,
            start,
        }
    }
}

/// The algorithm side of a keyed limit.
#[derive(Clone, Copy)]
enum Kind<'t> {
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
    kind: Kind<'t>,
    keys: &'t [Slot],
    counters: &'t Counters,
    policy: FullPolicy,
    fingerprint: u64,
    start: usize,
}

/// What `cancel` needs to give a keyed charge back.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeyedReservation {
    index: usize,
    inner: Reservation,
}

/// What a key found in its neighbourhood.
enum Found {
    /// Live at this index, with this slot value.
    Live(usize, u128),
    /// Being claimed at this index, with this slot value.
    Claiming(usize, u128),
    /// Absent.
    Absent,
}

/// Which kind of slot a claim takes over.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Takeover {
    Empty,
    AtRest,
    Abandoned,
    Evicted,
}

/// The end of one attempt: a result, or start over.
enum Step<T> {
    Done(T),
    Retry,
}

type Access = (Decision, Option<KeyedReservation>);

impl<'t> KeyedLimit<'t> {
    fn index(&self, offset: usize) -> usize {
        (self.start + offset) & self.keys.len().wrapping_sub(1)
    }

    fn load(&self, index: usize) -> u128 {
        // SeqCst: module Orderings.
        self.keys
            .get(index)
            .map_or(0, |s| s.0.load(Ordering::SeqCst))
    }

    fn cas(&self, index: usize, current: u128, new: u128) -> Result<u128, u128> {
        match self.keys.get(index) {
            // SeqCst both ways: module Orderings.
            Some(slot) => slot
                .0
                .compare_exchange(current, new, Ordering::SeqCst, Ordering::SeqCst),
            None => Err(current),
        }
    }

    fn ring(&self, index: usize) -> &'t [Slot] {
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

    fn capacity(&self) -> u64 {
        match self.kind {
            Kind::Word(word) => word.capacity(),
            Kind::Strict { config, .. } => config.limit(),
        }
    }

    /// Nanoseconds until the live slot at `index` (value `slot`) is at rest.
    fn time_to_rest(&self, index: usize, slot: u128, now: u64) -> u64 {
        match self.kind {
            Kind::Word(word) => word.time_to_rest(state_of(slot), now),
            Kind::Strict { config, .. } => {
                config.time_to_rest(self.ring(index), generation_of(slot), now)
            }
        }
    }

    /// The decision for a key with no state, without storing anything.
    fn fresh(&self, now: u64, cost: u64) -> Result<(Decision, Option<u64>), CheckError> {
        match self.kind {
            Kind::Word(word) => word
                .evaluate(0, now, cost)
                .map(|o| (o.decision, o.new_word)),
            Kind::Strict { config, .. } => Ok((config.fresh(now, cost)?, Some(0))),
        }
    }

    fn find(&self) -> Found {
        for offset in 0..NEIGHBOURHOOD {
            let index = self.index(offset);
            let slot = self.load(index);
            let tag = tag_of(slot);
            if tag & !CLAIMING == self.fingerprint {
                return if tag & CLAIMING == 0 {
                    Found::Live(index, slot)
                } else {
                    Found::Claiming(index, slot)
                };
            }
        }
        Found::Absent
    }

    /// Whether any slot other than `ours` holds our fingerprint (live or claiming).
    fn has_other_copy(&self, ours: usize) -> bool {
        (0..NEIGHBOURHOOD).any(|offset| {
            let index = self.index(offset);
            index != ours && tag_of(self.load(index)) & !CLAIMING == self.fingerprint
        })
    }

    /// The slot a new key should take at `now`, if any: empty first, then at rest (or an
    /// abandoned claim), then — by policy — the active slot closest to rest. Also the
    /// shortest time until some slot comes to rest, for a `Deny` answer.
    fn pick_slot(&self, now: u64) -> (Option<(usize, u128, Takeover)>, u64) {
        let mut at_rest = None;
        let mut closest: Option<(usize, u128, u64)> = None;
        for offset in 0..NEIGHBOURHOOD {
            let index = self.index(offset);
            let slot = self.load(index);
            let tag = tag_of(slot);
            if tag == 0 {
                return (Some((index, slot, Takeover::Empty)), 0);
            }
            if tag & CLAIMING != 0 {
                // Someone else's claim: never a victim unless abandoned.
                if at_rest.is_none() && claim_is_stale(slot, now) {
                    at_rest = Some((index, slot, Takeover::Abandoned));
                }
                continue;
            }
            let to_rest = self.time_to_rest(index, slot, now);
            if to_rest == 0 {
                if at_rest.is_none() {
                    at_rest = Some((index, slot, Takeover::AtRest));
                }
            } else if closest.is_none_or(|(_, _, best)| to_rest < best) {
                closest = Some((index, slot, to_rest));
            }
        }
        if at_rest.is_some() {
            return (at_rest, 0);
        }
        let wait = closest.map_or(1, |(_, _, t)| t.max(1));
        match (self.policy, closest) {
            (FullPolicy::EvictClosestToRest, Some((index, slot, _))) => {
                (Some((index, slot, Takeover::Evicted)), wait)
            }
            _ => (None, wait),
        }
    }

    /// One attempt at a live single-word slot: a CAS loop while the slot holds our key.
    fn update_word(
        &self,
        word: &WordLimit,
        index: usize,
        mut slot: u128,
        now: u64,
        cost: u64,
        commit: bool,
    ) -> Result<Step<Access>, CheckError> {
        loop {
            let state = state_of(slot);
            let outcome = word.evaluate(state, now, cost)?;
            let new_word = match outcome.new_word {
                Some(new_word) if commit => new_word,
                _ => return Ok(Step::Done((outcome.decision, None))),
            };
            match self.cas(index, slot, pack(self.fingerprint, new_word)) {
                Ok(_) => {
                    let inner = Reservation {
                        tag: new_word,
                        aux: state,
                        cost,
                    };
                    let token = KeyedReservation { index, inner };
                    return Ok(Step::Done((outcome.decision, Some(token))));
                }
                Err(actual) if tag_of(actual) == self.fingerprint => slot = actual,
                Err(_) => return Ok(Step::Retry),
            }
        }
    }

    /// One attempt at a live strict slot: charge the ring of our generation, then make
    /// sure the slot is still ours (module docs), else take the charge back.
    fn update_strict(
        &self,
        config: &StrictConfig,
        index: usize,
        slot: u128,
        now: u64,
        cost: u64,
        commit: bool,
    ) -> Result<Step<Access>, CheckError> {
        let ring = self.ring(index);
        let generation = generation_of(slot);
        let (decision, reservation) = config.check(ring, generation, now, cost, commit)?;
        // SeqCst fence: our charge (if any), then the re-read of the key slot (Dekker with
        // the reclaimer's claim-then-re-read; module docs). Whatever the decision, it only
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

    fn access(&self, now: u64, cost: u64, commit: bool) -> Result<Access, CheckError> {
        let backoff = Backoff::new();
        for _ in 0..MAX_ATTEMPTS {
            let step = match self.find() {
                Found::Live(index, slot) => match self.kind {
                    Kind::Word(word) => self.update_word(word, index, slot, now, cost, commit)?,
                    Kind::Strict { config, .. } => {
                        self.update_strict(config, index, slot, now, cost, commit)?
                    }
                },
                Found::Claiming(index, slot) => {
                    if claim_is_stale(slot, now) {
                        if self
                            .cas(index, slot, pack(0, u64::from(generation_of(slot))))
                            .is_ok()
                        {
                            self.counters.bump(stats::STALE_CLAIMS);
                            self.counters.drop_one(stats::OCCUPIED);
                        }
                        continue;
                    }
                    if !commit {
                        // A peek does not wait: the key is about to hold a fresh state
                        // plus its claimant's request; report the fresh state.
                        return Ok((self.fresh(now, cost)?.0, None));
                    }
                    crate::sync::backoff_wait(&backoff);
                    continue;
                }
                Found::Absent => self.claim(now, cost, commit)?,
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

    /// One attempt at giving an absent key a slot and charging it.
    fn claim(&self, now: u64, cost: u64, commit: bool) -> Result<Step<Access>, CheckError> {
        let (fresh, fresh_word) = self.fresh(now, cost)?;
        if !commit || cost == 0 || fresh_word.is_none() {
            return Ok(Step::Done((fresh, None)));
        }
        let (pick, wait) = self.pick_slot(now);
        let Some((index, old, takeover)) = pick else {
            self.counters.bump(stats::FULL_NEIGHBOURHOODS);
            return Ok(Step::Done(self.refuse_or_admit_untracked(fresh, wait)));
        };
        let generation = match self.kind {
            Kind::Word(_) => 0,
            Kind::Strict { .. } => generation_of(old).wrapping_add(1),
        };
        let claim = pack(self.fingerprint | CLAIMING, claim_state(now, generation));
        if self.cas(index, old, claim).is_err() {
            return Ok(Step::Retry);
        }
        // SeqCst fence between our claim and the re-reads that validate it: the other
        // slots (duplicates) and, for a strict ring, the ring we took (module docs).
        fence(Ordering::SeqCst);
        let still_at_rest = match (self.kind, takeover) {
            (Kind::Strict { config, .. }, Takeover::AtRest) => {
                config.is_at_rest(self.ring(index), generation_of(old), now)
            }
            _ => true,
        };
        if !still_at_rest {
            // The old key was charged after we judged it at rest: give its slot back.
            let _ = self.cas(index, claim, old);
            return Ok(Step::Retry);
        }
        match takeover {
            Takeover::Empty => self.counters.bump(stats::OCCUPIED),
            Takeover::AtRest => self.counters.bump(stats::RECLAIMS),
            Takeover::Abandoned => self.counters.bump(stats::STALE_CLAIMS),
            Takeover::Evicted => {
                self.counters.bump(stats::FULL_NEIGHBOURHOODS);
                self.counters.bump(stats::EVICTIONS);
            }
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
                let inner = Reservation {
                    tag: new_word,
                    aux: 0,
                    cost,
                };
                Ok(Step::Done((fresh, Some(KeyedReservation { index, inner }))))
            }
            Kind::Strict { config, .. } => {
                let live = pack(self.fingerprint, u64::from(generation));
                if self.cas(index, claim, live).is_err() {
                    return Ok(Step::Retry);
                }
                self.counters.bump(stats::NEW_KEYS);
                // The ring of a new generation is empty; charge it like any live key.
                self.update_strict(config, index, live, now, cost, true)
            }
        }
    }

    /// A full neighbourhood under policy `Deny` or `Allow`.
    fn refuse_or_admit_untracked(&self, fresh: Decision, wait: u64) -> Access {
        if self.policy == FullPolicy::Allow {
            self.counters.bump(stats::FULL_ALLOWED);
            return (fresh, None);
        }
        self.counters.bump(stats::FULL_DENIED);
        (
            Decision {
                allowed: false,
                limit: fresh.limit,
                remaining: 0,
                reset_after: wait,
                retry_after: wait,
            },
            None,
        )
    }
}

impl Member for KeyedLimit<'_> {
    type Token = KeyedReservation;

    fn peek(&self, now: u64, cost: u64) -> Result<Decision, CheckError> {
        self.access(now, cost, false).map(|(d, _)| d)
    }

    fn reserve(&self, now: u64, cost: u64) -> Result<Access, CheckError> {
        self.access(now, cost, true)
    }

    fn cancel(&self, token: KeyedReservation) {
        let mut slot = self.load(token.index);
        match self.kind {
            Kind::Strict { config, .. } => {
                // Ring cells carry the generation: a reservation on a ring that changed
                // owner is simply not found.
                if tag_of(slot) == self.fingerprint {
                    config.uncharge(self.ring(token.index), token.inner);
                }
            }
            Kind::Word(word) => {
                while tag_of(slot) == self.fingerprint {
                    let Some(new_word) = word.uncharge(state_of(slot), &token.inner) else {
                        return;
                    };
                    match self.cas(token.index, slot, pack(self.fingerprint, new_word)) {
                        Ok(_) => return,
                        Err(actual) => slot = actual,
                    }
                }
            }
        }
    }
}
