//! Keyed tables: per-key limits for millions of keys in memory fixed at creation.
//!
//! # Layout
//! For each limit, an array of `capacity` slots (a power of two). A slot is one 128-bit
//! atomic holding `(tag, state)`: the tag is 0 for an empty slot, otherwise the key's
//! 63-bit fingerprint, with the top bit set while a claim is in progress (then the state
//! holds the claimant's `now`). No key bytes are stored. A key hashes (ahash, seeded per
//! table) to a fingerprint and to a *neighbourhood*: [`NEIGHBOURHOOD`] consecutive slots
//! (two 64-byte cache lines) starting at a 4-slot boundary. Probing never leaves it.
//!
//! # Identity and state change together
//! Every update is a 128-bit CAS whose expected value includes the tag, so an update that
//! raced an eviction or reclaim fails (the tag changed) and the updater starts over: it
//! can never land on another key's state.
//!
//! # Claiming a slot without creating duplicates
//! A key not found in its neighbourhood claims a slot (empty first, then one at rest,
//! then — policy permitting — the active slot closest to rest) in three steps:
//! 1. CAS the slot to `(fingerprint | CLAIMING, now)`;
//! 2. re-scan the neighbourhood: if any *other* slot holds the fingerprint (live or
//!    claiming), back out (CAS our slot to empty) and start over;
//! 3. CAS our slot from claiming to `(fingerprint, state after this request)`.
//!
//! No two live copies of a key can result. Suppose A claims slot i and B claims slot j
//! for one key and both pass step 2. Between its claim and its re-scan each thread
//! issues a `SeqCst` fence (Dekker's pattern): the two fences are totally ordered, and
//! the re-scan after the later fence must see the claim made before the earlier one — so
//! at least one of A and B sees the other's claim and backs out. (Both may back out at
//! once; they then retry and usually pick the same empty slot, where only one CAS
//! succeeds.) A thread that finds a key mid-claim waits (bounded, yielding); a claim
//! whose claimant has been gone longer than [`STALE_CLAIM_NANOS`] of caller time (a
//! crashed process) is taken over.
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
//! Slot operations are `SeqCst`, and a `SeqCst` fence separates a claim from its
//! re-scan: the duplicate-freedom argument above needs store→load ordering across
//! *different* slots, which acquire/release does not give. Updates of a live slot need
//! only the CAS's atomicity (the tag in the expected value carries identity). Counters
//! are `Relaxed` (see `stats`).

mod config;
#[cfg(not(ratecore_loom))]
pub mod region;
mod stats;

use core::hash::Hash;

use crossbeam_utils::Backoff;

use crate::composite::{run_all, Member};
use crate::decision::Decision;
use crate::error::CheckError;
use crate::sync::{fence, AtomicU128, Ordering};
use crate::word::WordLimit;
use crate::Reservation;

pub use config::{FullPolicy, LimitSpec, TableConfig, TableError, MAX_CAPACITY, MAX_TABLE_LIMITS};
pub use stats::TableStats;

use stats::Counters;

/// Slots probed per key: two 64-byte cache lines of 16-byte slots.
pub const NEIGHBOURHOOD: usize = 8;

/// Slots per 64-byte line; neighbourhoods start on a line boundary.
const LINE: usize = 4;

/// A claim older than this (in the callers' `now`) is considered abandoned.
pub const STALE_CLAIM_NANOS: u64 = 1_000_000_000;

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

/// Where a table's slots and counters live: [`OwnedMemory`] or
/// [`region::RegionMemory`]. Sealed.
pub trait TableMemory: sealed::Access {}

impl<T: sealed::Access> TableMemory for T {}

mod sealed {
    use super::{AtomicU128, Counters};

    /// The accessors behind [`super::TableMemory`]; unnameable outside the crate.
    pub trait Access {
        /// Every limit's slot array, one after the other.
        fn slots(&self) -> &[AtomicU128];
        /// The shared counters.
        fn counters(&self) -> &Counters;
    }
}

/// Memory the table allocated itself ([`Table::new`]).
#[cfg(feature = "alloc")]
#[derive(Debug)]
pub struct OwnedMemory {
    counters: alloc::boxed::Box<Counters>,
    slots: alloc::boxed::Box<[AtomicU128]>,
}

#[cfg(feature = "alloc")]
impl sealed::Access for OwnedMemory {
    fn slots(&self) -> &[AtomicU128] {
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
    limits: [WordLimit; MAX_TABLE_LIMITS],
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
    /// [`TableError::NotLockFree`] on a CPU without lock-free 128-bit atomics.
    pub fn new(config: TableConfig) -> Result<Self, TableError> {
        let total = usize::try_from(config.total_slots()).map_err(|_| TableError::BadCapacity)?;
        let slots = (0..total).map(|_| AtomicU128::new(0)).collect();
        let memory = OwnedMemory {
            counters: alloc::boxed::Box::new(Counters::new()),
            slots,
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
        let [a, b, c, d] = config.seed;
        let mask = usize::try_from(config.capacity - 1).map_err(|_| TableError::BadCapacity)?;
        Ok(Self {
            config,
            limits,
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
    /// all admit; a denial consumes nothing).
    ///
    /// # Errors
    /// [`CheckError::CostExceedsLimit`] if `cost` can never fit some limit.
    pub fn check(&self, key: &[u8], now: u64, cost: u64) -> Result<Decision, CheckError> {
        self.run(self.hash(key), now, cost, true, &mut [])
    }

    /// The decision [`check`](Self::check) would return, consuming nothing.
    ///
    /// # Errors
    /// As for [`check`](Self::check).
    pub fn peek(&self, key: &[u8], now: u64, cost: u64) -> Result<Decision, CheckError> {
        self.run(self.hash(key), now, cost, false, &mut [])
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
        self.run(self.hash(key), now, cost, true, states)
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

    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
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

    fn member(&self, index: usize, fingerprint: u64, start: usize) -> KeyedLimit<'_> {
        let capacity = self.mask + 1;
        let base = index.min(self.config.count.saturating_sub(1)) * capacity;
        let slots = self
            .memory
            .slots()
            .get(base..base + capacity)
            .unwrap_or(&[]);
        KeyedLimit {
            limit: &self.limits[index.min(MAX_TABLE_LIMITS - 1)],
            slots,
            counters: self.memory.counters(),
            policy: self.config.policy,
            fingerprint,
            start,
        }
    }
}

/// One limit of one key: a view on that limit's slot array.
struct KeyedLimit<'t> {
    limit: &'t WordLimit,
    slots: &'t [AtomicU128],
    counters: &'t Counters,
    policy: FullPolicy,
    fingerprint: u64,
    start: usize,
}

/// What `cancel` needs to give a keyed charge back.
#[derive(Clone, Copy, Debug)]
struct KeyedReservation {
    index: usize,
    inner: Reservation,
}

/// What a key found in its neighbourhood.
enum Found {
    /// Live at this index, with this slot value.
    Live(usize, u128),
    /// Being claimed by someone else since this (caller) time.
    Claiming(usize, u128),
    /// Absent.
    Absent,
}

/// Which kind of slot a claim takes over.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Takeover {
    Empty,
    AtRest,
    Evicted,
}

impl KeyedLimit<'_> {
    fn index(&self, offset: usize) -> usize {
        (self.start + offset) & (self.slots.len().wrapping_sub(1))
    }

    fn load(&self, index: usize) -> u128 {
        // SeqCst: every slot operation takes part in the single total order the
        // duplicate-freedom argument needs (module Orderings).
        self.slots
            .get(index)
            .map_or(0, |s| s.load(Ordering::SeqCst))
    }

    fn cas(&self, index: usize, current: u128, new: u128) -> Result<u128, u128> {
        match self.slots.get(index) {
            // SeqCst both ways: module Orderings.
            Some(slot) => slot.compare_exchange(current, new, Ordering::SeqCst, Ordering::SeqCst),
            None => Err(current),
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
                if now.saturating_sub(state_of(slot)) >= STALE_CLAIM_NANOS && at_rest.is_none() {
                    at_rest = Some((index, slot, Takeover::AtRest));
                }
                continue;
            }
            let to_rest = self.limit.time_to_rest(state_of(slot), now);
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

    /// CAS loop on a live slot; `None` if the slot stopped holding our key.
    fn update_live(
        &self,
        index: usize,
        mut slot: u128,
        now: u64,
        cost: u64,
        commit: bool,
    ) -> Result<Option<(Decision, Option<KeyedReservation>)>, CheckError> {
        loop {
            let state = state_of(slot);
            let outcome = self.limit.evaluate(state, now, cost)?;
            let new_word = match outcome.new_word {
                Some(word) if commit => word,
                _ => return Ok(Some((outcome.decision, None))),
            };
            match self.cas(index, slot, pack(self.fingerprint, new_word)) {
                Ok(_) => {
                    let inner = Reservation {
                        tag: new_word,
                        aux: state,
                        cost,
                    };
                    return Ok(Some((
                        outcome.decision,
                        Some(KeyedReservation { index, inner }),
                    )));
                }
                Err(actual) if tag_of(actual) == self.fingerprint => slot = actual,
                Err(_) => return Ok(None),
            }
        }
    }

    fn access(
        &self,
        now: u64,
        cost: u64,
        commit: bool,
    ) -> Result<(Decision, Option<KeyedReservation>), CheckError> {
        let backoff = Backoff::new();
        for _ in 0..MAX_ATTEMPTS {
            match self.find() {
                Found::Live(index, slot) => {
                    if let Some(result) = self.update_live(index, slot, now, cost, commit)? {
                        return Ok(result);
                    }
                    continue;
                }
                Found::Claiming(index, slot) => {
                    if now.saturating_sub(state_of(slot)) >= STALE_CLAIM_NANOS
                        && self.cas(index, slot, 0).is_ok()
                    {
                        self.counters.bump(stats::STALE_CLAIMS);
                        self.counters.drop_one(stats::OCCUPIED);
                        continue;
                    }
                    if !commit {
                        // A peek does not wait: the key is about to hold a fresh state
                        // plus its claimant's request; report the fresh state.
                        return Ok((self.limit.evaluate(0, now, cost)?.decision, None));
                    }
                    backoff.snooze();
                    continue;
                }
                Found::Absent => {}
            }
            let fresh = self.limit.evaluate(0, now, cost)?;
            let new_word = match fresh.new_word {
                Some(word) if commit => word,
                _ => return Ok((fresh.decision, None)),
            };
            let (pick, wait) = self.pick_slot(now);
            let Some((index, old, takeover)) = pick else {
                self.counters.bump(stats::FULL_NEIGHBOURHOODS);
                return Ok(self.refuse_or_admit_untracked(fresh.decision, wait));
            };
            let claim = pack(self.fingerprint | CLAIMING, now);
            if self.cas(index, old, claim).is_err() {
                backoff.spin();
                continue;
            }
            match takeover {
                Takeover::Empty => self.counters.bump(stats::OCCUPIED),
                Takeover::AtRest => self.counters.bump(stats::RECLAIMS),
                Takeover::Evicted => {
                    self.counters.bump(stats::FULL_NEIGHBOURHOODS);
                    self.counters.bump(stats::EVICTIONS);
                }
            }
            // SeqCst fence between our claim and the re-scan of the other slots: Dekker's
            // pattern (module docs), which needs store→load ordering across words.
            fence(Ordering::SeqCst);
            if self.has_other_copy(index) {
                if self.cas(index, claim, 0).is_ok() {
                    self.counters.drop_one(stats::OCCUPIED);
                }
                backoff.snooze();
                continue;
            }
            if self
                .cas(index, claim, pack(self.fingerprint, new_word))
                .is_err()
            {
                // Our claim was taken over as abandoned: start over.
                continue;
            }
            self.counters.bump(stats::NEW_KEYS);
            let inner = Reservation {
                tag: new_word,
                aux: 0,
                cost,
            };
            return Ok((fresh.decision, Some(KeyedReservation { index, inner })));
        }
        self.counters.bump(stats::CONTENDED);
        Ok((
            Decision {
                allowed: false,
                limit: self.limit.capacity(),
                remaining: 0,
                reset_after: 0,
                retry_after: 1,
            },
            None,
        ))
    }

    /// A full neighbourhood under policy `Deny` or `Allow` (or `Evict` with nothing to
    /// evict, which cannot happen with an active neighbourhood).
    fn refuse_or_admit_untracked(
        &self,
        fresh: Decision,
        wait: u64,
    ) -> (Decision, Option<KeyedReservation>) {
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

    fn reserve(
        &self,
        now: u64,
        cost: u64,
    ) -> Result<(Decision, Option<KeyedReservation>), CheckError> {
        self.access(now, cost, true)
    }

    fn cancel(&self, token: KeyedReservation) {
        let mut slot = self.load(token.index);
        while tag_of(slot) == self.fingerprint {
            let Some(word) = self.limit.uncharge(state_of(slot), &token.inner) else {
                return;
            };
            match self.cas(token.index, slot, pack(self.fingerprint, word)) {
                Ok(_) => return,
                Err(actual) => slot = actual,
            }
        }
    }
}
