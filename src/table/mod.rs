//! Keyed tables: per-key limits for millions of keys in memory fixed at creation.
//!
//! This file holds the [`Table`] API and the single-limit fast path; the protocol below
//! is split by step:
//! - `layout`: neighbourhoods, lookup order and what a key slot holds;
//! - `keyed`: one limit of one key, and its check loop;
//! - `lookup`: finding a key and updating it where it lives;
//! - `placement`: where a new key goes, and eviction when there is no room;
//! - `claim`: giving an absent key a slot without creating a duplicate;
//! - `relocation`: moving a resident key to its other neighbourhood;
//! - `charge`: reservations, and the charges [`Table::undo`] gives back;
//! - `multi`: one request against several tables, all or nothing ([`check_tables`]);
//! - `memory`, [`region`], `config`, `stats`, `slot_atomics`: where the slots live, how a
//!   table is configured and counted, and how a slot is loaded and swapped.
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
//! A key hashes (ahash, seeded per table) to a fingerprint and *two neighbourhoods* of
//! [`NEIGHBOURHOOD`] consecutive key slots (two 64-byte cache lines) starting at 4-slot
//! boundaries, both computed from the fingerprint alone (so whoever finds a key's slot
//! knows both): the first from its bits 17 and up, the second 2 to `lines − 2` lines
//! further on (a multiplicative mix of the fingerprint), so the two never overlap. A table
//! of 8 slots has room for one. Probing never leaves the two; lookups scan the first, then
//! the second, each from the key's *home* offset (its fingerprint mod 8), wrapping round;
//! a new key takes the free slot closest to its home, so most lookups end at their first
//! load.
//!
//! # Identity and state change together
//! For single-word algorithms every update is a 128-bit CAS whose expected value includes
//! the tag, so an update that raced an eviction or reclaim fails (the tag changed) and
//! the updater starts over: it can never land on another key's state. For the strict
//! window the ring's cells carry the generation, so a stale updater's CAS either fails or
//! writes a cell the new owner reads as empty; after charging, the updater re-reads the
//! key slot (after a `SeqCst` fence) and, if its key lost the slot meanwhile, takes the
//! charge back and starts over. A reclaimer in turn first *freezes* the old key's slot
//! (the old key's own fingerprint, marked claiming, so its checkers wait instead of
//! finding it absent and claiming a second slot), re-reads the ring after a fence, and
//! unfreezes the key if it is no longer at rest; only then does the slot become the
//! reclaimer's claim. Dekker's pattern again: one of the two always sees the other.
//!
//! # Placement
//! A key not found claims a slot: an empty slot of its first neighbourhood while that is
//! at most half full, else of the less loaded one (two-choice balance); else a slot at
//! rest or an abandoned claim in either; else — single-word limits — it *relocates* a
//! resident key (below) and takes the freed slot; only then does [`FullPolicy`] apply,
//! over all 16 slots (the active slot closest to rest is the victim).
//!
//! # Claiming a slot without creating duplicates
//! A claim takes three steps:
//! 1. CAS the slot to `(fingerprint | CLAIMING, claim state)`;
//! 2. `SeqCst` fence; re-scan both neighbourhoods: if any *other* slot holds the
//!    fingerprint (live or claiming), back out (CAS our slot to empty) and start over;
//! 3. CAS our slot from claiming to `(fingerprint, state after this request)`.
//!
//! No two live copies of a key can result. Suppose A claims slot i and B claims slot j
//! for one key and both pass step 2. Between its claim and its re-scan each thread
//! issues a `SeqCst` fence (Dekker's pattern): the two fences are totally ordered, and
//! the re-scan after the later fence starts after the claim made before the earlier one
//! — and a scan cannot miss a key present throughout it, even one being moved (next
//! section) — so at least one of A and B sees the other's claim and backs out. (Both may
//! back out at once; they then retry and usually pick the same empty slot, where only
//! one CAS succeeds.) A thread that finds a key mid-claim waits (bounded, yielding); a
//! claim older than [`STALE_CLAIM_NANOS`] of caller time (a crashed process) is taken
//! over.
//!
//! # Relocation
//! When both neighbourhoods of a new key G are full of active keys, a resident single-word
//! key K (fingerprint f) living in its *first* neighbourhood, at slot i, moves to an empty
//! (else at-rest) slot j of its *second*:
//! - (a) CAS j: empty or at rest → `(f | CLAIMING, claim state marked MOVING)`;
//! - (b) CAS i: `(f, s)` → the same moving claim: K is frozen, its state s is carried by
//!   the mover (an update that wins the race changes s, and the mover retries with the
//!   new s; if K left i, (a) is undone, to empty);
//! - (c) CAS j: moving claim → `(f, s)`: K is live again, exactly as it was;
//! - (d) CAS i: moving claim → G's claim, which then goes through steps 2 and 3 above.
//!
//! If K's second neighbourhood has no room either, a resident of it that sits in *its*
//! first neighbourhood moves on first and hands its freed slot to K's move as (a) (two
//! moves, a bounded search). Keys only ever move from their first neighbourhood to their
//! second, which is the order every scan reads them, and only live copies move. So a
//! scan cannot miss a key present throughout it: K's tag is in slot i until (d) and in
//! slot j from (a) on; a scan that reads i after (d) reads j later still — all slot
//! operations are `SeqCst`, so that read comes after (a) in their total order and sees f
//! in j (or K's later removal: a reclaim or eviction, never another move, as K is in its
//! second neighbourhood now). A move therefore needs no fence or re-scan of its own and
//! creates no duplicate, and lookups, placements and re-scans never see a key vanish
//! while it moves. A check that meets a moving claim waits, like any claim; a peek waits
//! for moves (the key has a state) but not for new keys' claims. A charge taken back
//! (`cancel`) follows its key if it moved. A new key that finds a move in flight in its
//! neighbourhoods waits for it rather than call them full.
//!
//! The one lossy case is a mover that stalls or dies between (b) and (c): its claims age,
//! and after [`STALE_CLAIM_NANOS`] (and some waiting, so that a caller whose `now` runs
//! ahead does not cut a live move short) K's next check takes them over and K starts
//! fresh — counted in `stale_claims`, like any abandoned claim. A new key takes a move's
//! slot over as abandoned only much later (`ABANDONED_MOVE_NANOS`, about 2.3 minutes).
//! Strict windows never move: their ring belongs to the slot index (they get two
//! choices, no relocation).
//!
//! # Rest, reclaim, eviction
//! A slot at rest (GCRA TAT ≤ now, window expired) holds no information, so giving it to
//! another key is lossless (`reclaims`). Only when all slots of both neighbourhoods are
//! active and no key can move does [`FullPolicy`] apply (`full_neighbourhoods`, plus
//! `evictions`, `full_denied` or `full_allowed`). Moves are counted (`relocations`).
//! Memory never grows. Measured (`benches/memory.rs`, `benches/README.md`): no forced
//! eviction up to a load of 0.925 of always-active keys; the design load is 0.9, 17.8
//! bytes per live key.
//!
//! Hash collisions: two keys share a state only if their 63-bit fingerprints are equal
//! (their neighbourhoods then are too): a new key meets a live key's fingerprint with
//! probability (live keys) / 2^63, about 2^-43 per new key among a million live keys. A
//! slot reclaimed at rest and its key returning with a `now` earlier than the
//! reclaimer's starts fresh (the old state, already at rest, is gone).
//!
//! # Orderings
//! Slot operations are `SeqCst`, and `SeqCst` fences separate each write from the
//! cross-slot re-reads that validate it (above): those arguments need store→load ordering
//! across *different* atomics, which acquire/release does not give. The relocation
//! argument uses the single total order of `SeqCst` operations (a scan's later read
//! follows a move's earlier CAS). Updates of a live
//! single-word slot need only the CAS's atomicity (the tag in the expected value carries
//! identity). Counters are `Relaxed` (see `stats`).

mod charge;
mod claim;
mod config;
mod keyed;
mod layout;
mod lookup;
mod memory;
mod multi;
mod placement;
#[cfg(not(ratecore_loom))]
pub mod region;
mod relocation;
mod slot_atomics;
mod stats;

use crate::decision::Mode;
use core::hash::Hash;

use crate::algorithm::WordLimit;
use crate::composite::run_all;
use crate::decision::Decision;
use crate::error::CheckError;
use crate::sync::AtomicU128;

pub use charge::{TableCharge, TABLE_CHARGE_WORDS};
pub use config::{FullPolicy, LimitSpec, TableConfig, TableError, MAX_CAPACITY, MAX_TABLE_LIMITS};
pub use layout::{NEIGHBOURHOOD, STALE_CLAIM_NANOS};
#[cfg(feature = "alloc")]
pub use memory::OwnedMemory;
pub use memory::TableMemory;
pub use multi::{check_tables, TableCheck, TablesDecision, TablesError};
pub use stats::TableStats;

pub(crate) use charge::KeyedReservation;
pub(crate) use config::TableLimit;
pub(crate) use keyed::KeyedLimit;
use keyed::Kind;
use layout::{fingerprint_of, first_neighbourhood, neighbourhoods};
use lookup::{scan_neighbourhood, update_live_word, Found, LiveUpdate, Words};
use slot_atomics::SlotAtomics;

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
    /// How key slots are loaded and compare-exchanged on this CPU.
    atomics: SlotAtomics,
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
        let memory = OwnedMemory::new(total)?;
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
            atomics: SlotAtomics::detect(),
            memory,
        })
    }

    /// The configuration the table runs with.
    #[must_use]
    pub const fn config(&self) -> &TableConfig {
        &self.config
    }

    /// The parameters of the table's limit `index` running on `quota` instead of its own,
    /// for keys whose quota is overridden ([`KeyedLimit::with_limit`]). Only the limit
    /// (and a GCRA burst) may differ: the algorithm and the period give the slots their
    /// layout and the state its meaning, so those must stay.
    ///
    /// # Errors
    /// `None` when `index` is not a limit of the table or the period differs;
    /// `Some(Err)` when the algorithm rejects `quota`.
    #[cfg(feature = "std")]
    pub(crate) fn limit_with_quota(
        &self,
        index: usize,
        quota: crate::Quota,
    ) -> Option<Result<TableLimit, crate::QuotaError>> {
        let base = self.config.specs.get(index).copied().flatten()?;
        if base.quota.period() != quota.period() {
            return None;
        }
        let own = self.limits.get(index)?;
        let limit = TableLimit::build(
            &LimitSpec {
                algorithm: base.algorithm,
                quota,
            },
            self.config.wide,
        );
        // The state word must read the same under both: a count wider than the window
        // numbers leave room for cannot share the key's word.
        match (&limit, own) {
            (Ok(TableLimit::Word(new)), TableLimit::Word(old)) if new.layout() != old.layout() => {
                Some(Err(crate::QuotaError::StateTooWide))
            }
            _ => Some(limit),
        }
    }

    /// Bytes of slot memory the table uses (every limit's key slots and rings).
    #[must_use]
    pub fn memory_bytes(&self) -> usize {
        core::mem::size_of_val(self.memory.slots())
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
    // Inlinable across crates (the C ABI, and callers without LTO): the fast path then
    // writes its decision straight into the caller's variable; called out of line, the
    // 40-byte result comes back through memory and is copied on with loads wider than
    // the stores that wrote it (a store-forwarding stall; perf on `benches/ffi.rs`).
    #[inline]
    pub fn check(&self, key: &[u8], now: u64, cost: u64) -> Result<Decision, CheckError> {
        self.run(self.hasher.hash_one(key), now, cost, Mode::Charge, &mut [])
    }

    /// The decision [`check`](Self::check) would return, consuming nothing.
    ///
    /// # Errors
    /// As for [`check`](Self::check).
    #[inline] // see `check`
    pub fn peek(&self, key: &[u8], now: u64, cost: u64) -> Result<Decision, CheckError> {
        self.run(self.hasher.hash_one(key), now, cost, Mode::Peek, &mut [])
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
        self.run(self.hasher.hash_one(key), now, cost, Mode::Charge, states)
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
        self.run(self.hasher.hash_one(key), now, cost, Mode::Peek, states)
    }

    /// Like [`check`](Self::check) for any hashable key (e.g. a `u64` account id or an
    /// `(app, user)` tuple). Every entry point hashes a key with its `Hash` impl and the
    /// table's seeded hasher, so byte keys (`&[u8]`, `Vec<u8>`, and the C ABI's pointer and
    /// length) reach the same counter as [`check`](Self::check). Use one key type per
    /// table: `b"42"`, `"42"` (a `str` hashes with a terminator) and `42u64` are three keys.
    ///
    /// # Errors
    /// As for [`check`](Self::check).
    pub fn check_key<K: Hash + ?Sized>(
        &self,
        key: &K,
        now: u64,
        cost: u64,
    ) -> Result<Decision, CheckError> {
        self.run(self.hasher.hash_one(key), now, cost, Mode::Charge, &mut [])
    }

    // Always inlined, with the single-limit fast path (`decide_live`, and the scan
    // and CAS loop it shares with `KeyedLimit`): a live key is then decided with no call
    // but the atomics, and the rest of the machinery sits behind one out-of-line call
    // (`decide_single`). On this path the calls, not the arithmetic, are the cost: out of
    // line, a check of a live key runs about twice the instructions (callgrind,
    // `profile_driver rc_keyed_1k` with a fixed seed), and the fast path covers both
    // neighbourhoods because a third or so of the keys live in the second.
    #[inline(always)]
    fn run(
        &self,
        hash: u64,
        now: u64,
        cost: u64,
        mode: Mode,
        states: &mut [Decision],
    ) -> Result<Decision, CheckError> {
        let fingerprint = fingerprint_of(hash);
        let count = self.config.count;
        if count == 1 && states.is_empty() {
            if let TableLimit::Word(word) = &self.limits[0] {
                if let Some(decision) = self.decide_live(word, fingerprint, now, cost, mode) {
                    return Ok(decision.decision());
                }
            }
            return self.decide_single(fingerprint, now, cost, mode);
        }
        let members = self.key_members(fingerprint);
        run_all(
            members.get(..count).unwrap_or(&members),
            now,
            cost,
            mode,
            states,
        )
    }

    /// The single-limit, single-word fast path: a live key decided with a scan of its
    /// first neighbourhood (the second only if need be) and one CAS loop, without building
    /// a [`KeyedLimit`]. `None` for anything else (absent from both neighbourhoods, mid-claim or
    /// mid-move, the slot lost to another key meanwhile, an error such as an impossible
    /// cost): [`KeyedLimit::decide`] then starts from the beginning and returns the same
    /// decision or error. Deciding here is exactly what `decide` would do, since its
    /// `find` scans the first neighbourhood first and takes the first slot with our
    /// fingerprint (callgrind, `rc_keyed_1k`).
    #[inline(always)] // see `run`
    fn decide_live(
        &self,
        word: &WordLimit,
        fingerprint: u64,
        now: u64,
        cost: u64,
        mode: Mode,
    ) -> Option<Words> {
        // The first limit's key slots start at 0 (`with_memory`).
        let keys = self.memory.slots();
        let start = first_neighbourhood(fingerprint, self.mask);
        let atomics = self.atomics;
        let (index, slot) = match scan_neighbourhood(atomics, keys, start, self.mask, fingerprint) {
            Found::Live(index, slot) => (index, slot),
            Found::Claiming(..) => return None,
            // Not in the first: the second, as `find` would (a third or so of the keys at
            // half load live there: two-choice placement), computed only now.
            Found::Absent => {
                let [_, second] = neighbourhoods(fingerprint, self.mask);
                if second == start {
                    return None;
                }
                match scan_neighbourhood(atomics, keys, second, self.mask, fingerprint) {
                    Found::Live(index, slot) => (index, slot),
                    Found::Claiming(..) | Found::Absent => return None,
                }
            }
        };
        match update_live_word(
            atomics,
            keys.get(index),
            word,
            fingerprint,
            slot,
            now,
            cost,
            mode,
        ) {
            Ok(LiveUpdate::Done(decision, _)) => Some(decision),
            Ok(LiveUpdate::Lost) | Err(_) => None,
        }
    }

    /// A table of one limit, when [`decide_live`](Self::decide_live) could not
    /// decide: the whole lookup, claim and relocation machinery.
    #[inline(never)]
    fn decide_single(
        &self,
        fingerprint: u64,
        now: u64,
        cost: u64,
        mode: Mode,
    ) -> Result<Decision, CheckError> {
        self.member(0, fingerprint, neighbourhoods(fingerprint, self.mask))
            .decide(now, cost, mode)
    }

    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    /// The hash a key of any `Hash` type gets in this table.
    pub(crate) fn hash_of<K: Hash + ?Sized>(&self, key: &K) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Every limit of the key with `fingerprint`, in order (entries from the table's
    /// limit count on repeat its last limit: take `..count`). Both neighbourhoods come
    /// from the fingerprint alone (module docs).
    #[inline(always)] // see `run`
    fn key_members(&self, fingerprint: u64) -> [KeyedLimit<'_>; MAX_TABLE_LIMITS] {
        let starts = neighbourhoods(fingerprint, self.mask);
        core::array::from_fn(|i| self.member(i, fingerprint, starts))
    }

    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    /// Every limit of the key hashing to `hash`, in order.
    pub(crate) fn members(&self, hash: u64) -> impl Iterator<Item = KeyedLimit<'_>> + '_ {
        let fingerprint = fingerprint_of(hash);
        let starts = neighbourhoods(fingerprint, self.mask);
        (0..self.config.count).map(move |index| self.member(index, fingerprint, starts))
    }

    /// The first slot of each of `key`'s two neighbourhoods (equal in an 8-slot table),
    /// as [`check`](Self::check) hashes it. For tests and diagnostics.
    #[doc(hidden)]
    #[must_use]
    pub fn neighbourhoods_of(&self, key: &[u8]) -> [usize; 2] {
        neighbourhoods(fingerprint_of(self.hasher.hash_one(key)), self.mask)
    }

    /// The slot holding `key` live in the first limit's slot array, if any. For tests and
    /// diagnostics: the answer may be stale as soon as it is returned.
    #[doc(hidden)]
    #[must_use]
    pub fn slot_of(&self, key: &[u8]) -> Option<usize> {
        let fingerprint = fingerprint_of(self.hasher.hash_one(key));
        match self
            .member(0, fingerprint, neighbourhoods(fingerprint, self.mask))
            .find()
        {
            Found::Live(index, _) => Some(index),
            _ => None,
        }
    }

    fn member(&self, index: usize, fingerprint: u64, starts: [usize; 2]) -> KeyedLimit<'_> {
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
            atomics: self.atomics,
            counters: self.memory.counters(),
            policy: self.config.policy,
            fingerprint,
            starts,
            choices: if starts[0] == starts[1] { 1 } else { 2 },
        }
    }
}

#[cfg(all(test, feature = "alloc", not(ratecore_loom)))]
mod tests {
    use super::memory::sealed::Access;
    use super::{LimitSpec, Table, TableConfig};
    use crate::{Algorithm, Quota};

    /// Owned tables start on a 128-byte boundary whatever the allocator returned, so a
    /// neighbourhood's two 4-slot lines are real cache lines; small and huge-page-advised
    /// (≥ 4 MiB) tables alike, with every slot of the table inside the allocation.
    #[test]
    fn owned_slots_start_on_a_128_byte_boundary() {
        for capacity in [8u64, 1000, 1 << 18, 1 << 20] {
            let spec = LimitSpec {
                algorithm: Algorithm::Gcra,
                quota: Quota::per_second(5).unwrap(),
            };
            let table = Table::new(TableConfig::new(capacity, &[spec]).unwrap()).unwrap();
            let slots = table.memory.slots();
            assert_eq!(slots.as_ptr() as usize % 128, 0, "capacity {capacity}");
            assert_eq!(slots.len() as u64, table.config().capacity);
            assert!(table.check(b"k", 1, 1).unwrap().allowed);
        }
    }
}
