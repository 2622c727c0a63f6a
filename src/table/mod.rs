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
mod config;
#[cfg(not(ratecore_loom))]
pub mod region;
mod slot_atomics;
mod stats;

use core::hash::Hash;

use crossbeam_utils::Backoff;

use crate::algorithm::sliding_strict::{Slot, StrictConfig};
use crate::algorithm::WordLimit;
use crate::composite::{run_all, run_all_keeping, Member};
use crate::decision::Decision;
use crate::error::CheckError;
use crate::sync::{fence, AtomicU128, Ordering};
use crate::Reservation;

pub use charge::{TableCharge, TABLE_CHARGE_WORDS};
pub use config::{FullPolicy, LimitSpec, TableConfig, TableError, MAX_CAPACITY, MAX_TABLE_LIMITS};
pub use stats::TableStats;

pub(crate) use config::TableLimit;
use slot_atomics::SlotAtomics;
use stats::Counters;

/// Key slots in one neighbourhood: two 64-byte cache lines of 16-byte slots. Each key
/// has two neighbourhoods (one in a table of 8 slots).
pub const NEIGHBOURHOOD: usize = 8;

/// Slots per 64-byte line; neighbourhoods start on a line boundary.
const LINE: usize = 4;

// `find` scans a neighbourhood as two lines.
const _: () = assert!(NEIGHBOURHOOD == 2 * LINE);

/// Claim-state generation marking a *move* in progress (single-word limits only, whose
/// new-key claims use generation 0): both the reserved target and the frozen source of a
/// relocation carry it.
const MOVING: u32 = 1;

/// How many rounds a check of a key in transit waits before it may take the move over as
/// abandoned (it must also be [`STALE_CLAIM_NANOS`] old by the checker's `now`).
const MOVE_PATIENCE: u32 = 64;

/// A new key takes a move's slot over as abandoned only this much later than other
/// claims (about 2.3 minutes): a caller whose `now` runs ahead must not cut a live move
/// short; the moved key's own checks clear an abandoned move sooner.
const ABANDONED_MOVE_NANOS: u64 = STALE_CLAIM_NANOS << 6;

/// A first neighbourhood with at least this many empty slots takes a new key even if
/// the second has more.
const ROOMY: usize = NEIGHBOURHOOD / 2;

/// How many slots a two-move relocation may examine before giving up (a bound on the
/// work a new key does in a nearly full table).
const DEEP_PROBES: u32 = 128;

/// How many times a relocation tries to freeze a source whose state keeps changing
/// before it gives the move up.
const FREEZE_ATTEMPTS: u32 = 4;

/// The first slots of the two neighbourhoods of `fingerprint` in a table of `mask + 1`
/// slots (equal in a table of 8 slots, which has room for one).
///
/// Both come from the fingerprint alone, so a relocator knows them for any key it finds.
/// The first starts at line `fingerprint >> 17` (mod lines); the second 2 to `lines − 2`
/// lines further on (chosen by a multiplicative mix of the fingerprint), so the two never
/// overlap. In a 16-slot table they are the two halves.
fn neighbourhoods(fingerprint: u64, mask: usize) -> [usize; 2] {
    let lines = (mask / LINE).wrapping_add(1);
    let line_mask = lines.wrapping_sub(1);
    let first = first_neighbourhood(fingerprint, mask) / LINE;
    if lines < 4 {
        return [first * LINE; 2];
    }
    let mixed = fingerprint.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let choices = (lines - 3) as u128;
    // Multiply-shift: uniform in 0..choices without a division.
    let step = 2 + ((u128::from(mixed) * choices) >> 64) as usize;
    [first * LINE, ((first + step) & line_mask) * LINE]
}

/// The first slot of `fingerprint`'s first neighbourhood (see [`neighbourhoods`]): all the
/// single-limit fast path needs, without the second's multiplications.
#[inline(always)]
const fn first_neighbourhood(fingerprint: u64, mask: usize) -> usize {
    // lines − 1, for lines = (mask + 1) / LINE.
    let line_mask = mask / LINE;
    ((fingerprint >> 17) as usize & line_mask) * LINE
}

/// Where in each of its neighbourhoods a key's lookups start, and a new key is placed if
/// that slot is free: offset `fingerprint mod 8`. A key then mostly sits in the first slot
/// its lookups read, so a lookup usually ends at its first load, and the branch that ends
/// it is predictable; with every key read from offset 0, a key sat at a random offset
/// and the scan's exit branch mispredicted on nearly every check (perf, `profile_driver
/// rc_keyed_1k`). Any order within a neighbourhood keeps the table's invariants, which
/// rest only on the first neighbourhood being read before the second.
#[inline(always)]
const fn home_offset(fingerprint: u64) -> usize {
    fingerprint as usize % NEIGHBOURHOOD
}

/// The slots of the neighbourhood starting at `start` (in a table of `mask + 1` slots), in
/// the order the lookups of `fingerprint` read them: from its [`home_offset`] on, wrapping
/// within the neighbourhood.
#[inline(always)] // see `Table::run`
fn neighbourhood_order(start: usize, mask: usize, fingerprint: u64) -> impl Iterator<Item = usize> {
    let home = home_offset(fingerprint);
    (0..NEIGHBOURHOOD).map(move |step| (start + (home + step) % NEIGHBOURHOOD) & mask)
}

/// Where `fingerprint` sits in the neighbourhood starting at `start` of `keys` (a table of
/// `mask + 1` slots): the first slot carrying it, live or claimed, in
/// [`neighbourhood_order`]. Each slot's index is computed, not read from a table of line
/// starts: that table, kept on the stack, put a store-to-load round trip before the
/// first load (perf, `rc_keyed_1k`); the bounds check `get` keeps is one predictable
/// branch (an index is never out of bounds: it is masked to the table's capacity).
#[inline(always)] // see `Table::run`
fn scan_neighbourhood(
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
        // SeqCst: module Orderings.
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

/// A [`Decision`] as five words, with no padding: how the single-limit fast path hands a
/// decision on until it builds the caller's `Decision` once, field by field. Moved through
/// `Result` and `Option` wrappers as a `Decision` (a `bool` and 7 bytes of padding), it
/// was copied in odd-sized pieces and read back with loads wider than the stores that
/// wrote it: a store-forwarding stall on every check (perf annotate of `Table::check` and
/// `peek` on one key).
#[derive(Clone, Copy)]
struct Words {
    allowed: u64,
    limit: u64,
    remaining: u64,
    reset_after: u64,
    retry_after: u64,
}

impl Words {
    #[inline(always)]
    const fn of(decision: &Decision) -> Self {
        Self {
            allowed: decision.allowed as u64,
            limit: decision.limit,
            remaining: decision.remaining,
            reset_after: decision.reset_after,
            retry_after: decision.retry_after,
        }
    }

    #[inline(always)]
    const fn decision(self) -> Decision {
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
enum LiveUpdate {
    /// Decided; with `(new word, old state)` when the charge was stored.
    Done(Words, Option<(u64, u64)>),
    /// The slot no longer holds our key: start over.
    Lost,
}

/// The CAS loop on the live single-word slot `cell` of the key `fingerprint`, starting
/// from `slot` (the value a scan read): evaluate, store the new state with a 128-bit CAS
/// whose expected value carries our tag (module docs: identity and state change
/// together), and retry on a race while the slot still holds our key.
#[inline(always)] // see `Table::run`
#[allow(clippy::too_many_arguments)] // inlined into two callers; a struct would only wrap them
fn update_live_word(
    atomics: SlotAtomics,
    cell: Option<&Slot>,
    word: &WordLimit,
    fingerprint: u64,
    mut slot: u128,
    now: u64,
    cost: u64,
    commit: bool,
) -> Result<LiveUpdate, CheckError> {
    let Some(cell) = cell else {
        return Ok(LiveUpdate::Lost);
    };
    loop {
        let state = state_of(slot);
        let outcome = word.evaluate_inline(state, now, cost)?;
        let decision = Words::of(&outcome.decision);
        let new_word = match outcome.new_word {
            Some(new_word) if commit => new_word,
            _ => return Ok(LiveUpdate::Done(decision, None)),
        };
        // SeqCst both ways: module Orderings.
        match atomics.compare_exchange(&cell.0, slot, pack(fingerprint, new_word)) {
            Ok(_) => return Ok(LiveUpdate::Done(decision, Some((new_word, state)))),
            Err(actual) if tag_of(actual) == fingerprint => slot = actual,
            Err(_) => return Ok(LiveUpdate::Lost),
        }
    }
}

/// The fingerprint of a key's hash: 63 bits, never 0 (0 marks an empty slot).
const fn fingerprint_of(hash: u64) -> u64 {
    let fingerprint = hash & !CLAIMING;
    if fingerprint == 0 {
        1
    } else {
        fingerprint
    }
}

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
    /// The allocation, `ALIGN_SLOTS − 1` slots longer than the table.
    allocation: alloc::boxed::Box<[Slot]>,
    /// Where the table starts in it: the first slot on a 128-byte boundary.
    offset: usize,
    len: usize,
}

/// Slots per 128 bytes: an owned table starts on a 128-byte boundary, so its 4-slot
/// lines are real 64-byte cache lines (a neighbourhood touches two, not three straddled
/// from a 16-byte-aligned heap block) and line pairs are what the adjacent-line
/// prefetcher fetches together.
/// (1 under loom, whose model slot is larger than 128 bytes and needs no alignment.)
#[cfg(feature = "alloc")]
const ALIGN_SLOTS: usize = {
    let per_128 = 128 / core::mem::size_of::<Slot>();
    if per_128 == 0 {
        1
    } else {
        per_128
    }
};

#[cfg(feature = "alloc")]
impl sealed::Access for OwnedMemory {
    fn slots(&self) -> &[Slot] {
        self.allocation
            .get(self.offset..self.offset + self.len)
            .unwrap_or(&[])
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
        let allocated = total
            .checked_add(ALIGN_SLOTS - 1)
            .ok_or(TableError::BadCapacity)?;
        // Fallible: a huge capacity must be an error, not an abort.
        let mut slots = alloc::vec::Vec::new();
        slots
            .try_reserve_exact(allocated)
            .map_err(|_| TableError::OutOfMemory)?;
        // Before the first touch, so the kernel can back the table with huge pages.
        advise_huge_pages(slots.spare_capacity_mut());
        slots.extend((0..allocated).map(|_| Slot::new()));
        let allocation = slots.into_boxed_slice();
        // Slots are 16-byte aligned, so the next 128-byte boundary is at most 7 slots
        // away (`align_offset`); anything else (loom's model slot) starts at 0.
        let offset = match allocation.as_ptr().align_offset(128) {
            offset if offset < ALIGN_SLOTS => offset,
            _ => 0,
        };
        let memory = OwnedMemory {
            counters: alloc::boxed::Box::new(Counters::new()),
            allocation,
            offset,
            len: total,
        };
        Self::with_memory(config, memory)
    }
}

/// Asks Linux to back a big table with transparent huge pages (`MADV_HUGEPAGE`): a lookup
/// lands on a random slot, so with 4 KiB pages a table of millions of keys misses the TLB
/// on nearly every check; with 2 MiB pages it mostly does not (`benches/README.md`,
/// keyed at 1 M / 10 M keys). Advice only: a kernel that says no (THP off, or not
/// Linux) leaves the table exactly as it was, so the result is ignored.
#[cfg(feature = "alloc")]
#[allow(unsafe_code)] // One system call (madvise), at creation; see the SAFETY note.
fn advise_huge_pages<T>(memory: &mut [T]) {
    #[cfg(all(target_os = "linux", not(ratecore_loom)))]
    {
        const HUGE_PAGE: usize = 2 << 20;
        let bytes = core::mem::size_of_val(memory);
        if bytes < 2 * HUGE_PAGE {
            return;
        }
        // madvise wants a page-aligned start: round in to whole 4 KiB pages.
        const PAGE: usize = 4096;
        let start = memory.as_mut_ptr() as usize;
        let aligned = (start + PAGE - 1) & !(PAGE - 1);
        let length = (start + bytes - aligned) & !(PAGE - 1);
        // SAFETY: [aligned, aligned + length) lies within `memory`, a live allocation we
        // own exclusively (`&mut`); MADV_HUGEPAGE changes only how the kernel backs those
        // pages, never their contents or validity, and its failure is harmless.
        let _ = unsafe { libc::madvise(aligned as *mut libc::c_void, length, libc::MADV_HUGEPAGE) };
    }
    #[cfg(not(all(target_os = "linux", not(ratecore_loom))))]
    let _ = memory;
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
    // 40-byte result came back through memory and was copied on with loads wider than
    // the stores that wrote it (a store-forwarding stall; perf on `benches/ffi.rs`).
    #[inline]
    pub fn check(&self, key: &[u8], now: u64, cost: u64) -> Result<Decision, CheckError> {
        self.run(self.hasher.hash_one(key), now, cost, true, &mut [])
    }

    /// The decision [`check`](Self::check) would return, consuming nothing.
    ///
    /// # Errors
    /// As for [`check`](Self::check).
    #[inline] // see `check`
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

    /// Like [`check_each`](Self::check_each) (pass `&mut []` for no states), and also
    /// returns what was consumed, as a [`TableCharge`] that [`undo`](Self::undo) gives
    /// back: `None` when nothing was (a denial, or cost 0).
    ///
    /// For a request checked against several tables: consume from each in turn, and if a
    /// later one denies, undo the earlier charges, so that a denial consumes nothing
    /// anywhere. (Peeking every table first avoids most undos; a concurrent request can
    /// still change a table between the peek and the check.)
    ///
    /// It takes the general path even for a single-limit table (no live-key fast path),
    /// since it must keep each limit's reservation.
    ///
    /// # Errors
    /// As for [`check`](Self::check).
    pub fn check_undoable(
        &self,
        key: &[u8],
        now: u64,
        cost: u64,
        states: &mut [Decision],
    ) -> Result<(Decision, Option<TableCharge>), CheckError> {
        let hash = self.hasher.hash_one(key);
        let members = self.key_members(fingerprint_of(hash));
        let mut tokens = [None; MAX_TABLE_LIMITS];
        let decision = run_all_keeping(
            members.get(..self.config.count).unwrap_or(&members),
            now,
            cost,
            true,
            states,
            &mut tokens,
        )?;
        let charge = tokens.iter().any(Option::is_some).then_some(TableCharge {
            table: self.identity(),
            hash,
            tokens,
        });
        Ok((decision, charge))
    }

    /// Gives back a charge [`check_undoable`](Self::check_undoable) made on this table,
    /// newest limit first, as a composite's cancel does ([`crate::Reserve::cancel`]):
    /// exact when nothing else touched the key since (but a strict window's sub-window
    /// that already held admissions keeps the undone request's time); under contention
    /// (or after the key lost its slot) only what is provably safe, possibly nothing, so
    /// it never creates over-admission. A charge made by
    /// another table is ignored. It takes the charge by value: a charge is undone once.
    /// (Its plain words, read back twice with [`charge_from_words`](Self::charge_from_words),
    /// would give the windows' cost back twice; the C ABI clears them on undo.)
    pub fn undo(&self, charge: TableCharge) {
        if charge.table != self.identity() {
            return;
        }
        let members = self.key_members(fingerprint_of(charge.hash));
        for (member, token) in members
            .iter()
            .zip(&charge.tokens)
            .take(self.config.count)
            .rev()
        {
            if let Some(token) = token {
                member.cancel(*token);
            }
        }
    }

    /// A charge as plain words, sealed with a checksum keyed by this table's hash seed
    /// (for carrying it through C; [`charge_from_words`](Self::charge_from_words) reads it
    /// back).
    #[must_use]
    pub fn charge_to_words(&self, charge: &TableCharge) -> [u64; TABLE_CHARGE_WORDS] {
        let mut words = charge.unsealed_words();
        words[TABLE_CHARGE_WORDS - 1] = self.charge_checksum(&words);
        words
    }

    /// The charge [`charge_to_words`](Self::charge_to_words) sealed, if these words are
    /// exactly that for this table; `None` for words from another table or altered in any
    /// way (short of breaking a 64-bit keyed hash).
    #[must_use]
    pub fn charge_from_words(&self, words: &[u64; TABLE_CHARGE_WORDS]) -> Option<TableCharge> {
        (words[0] == self.identity()
            && words[TABLE_CHARGE_WORDS - 1] == self.charge_checksum(words))
        .then(|| TableCharge::from_verified_words(words))
    }

    /// Checksum of a charge's words (all but the last), keyed by the table's hash seed.
    fn charge_checksum(&self, words: &[u64; TABLE_CHARGE_WORDS]) -> u64 {
        self.hasher
            .hash_one(words.get(..TABLE_CHARGE_WORDS - 1).unwrap_or(&[]))
    }

    /// This table's identity in this process: where its slots are. (A table freed and
    /// another created at the same address with the same explicit seed would accept the
    /// first one's charges: a charge is meant to be undone right after it was made.)
    fn identity(&self) -> u64 {
        self.memory.slots().as_ptr() as usize as u64
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

    // Always inlined, with the single-limit fast path (`decide_live`, and the scan
    // and CAS loop it shares with `KeyedLimit`): a live key is then decided with no call
    // but the atomics, and the rest of the machinery sits behind one out-of-line call
    // (`decide_single`). callgrind, `profile_driver rc_keyed_1k` with a fixed seed: 381
    // instructions per check with no inlining, 260 with `KeyedLimit::decide` inlined, 224
    // with a fast path for the first neighbourhood, 180 for either.
    #[inline(always)]
    fn run(
        &self,
        hash: u64,
        now: u64,
        cost: u64,
        commit: bool,
        states: &mut [Decision],
    ) -> Result<Decision, CheckError> {
        let fingerprint = fingerprint_of(hash);
        let count = self.config.count;
        if count == 1 && states.is_empty() {
            if let TableLimit::Word(word) = &self.limits[0] {
                if let Some(decision) = self.decide_live(word, fingerprint, now, cost, commit) {
                    return Ok(decision.decision());
                }
            }
            return self.decide_single(fingerprint, now, cost, commit);
        }
        let members = self.key_members(fingerprint);
        run_all(
            members.get(..count).unwrap_or(&members),
            now,
            cost,
            commit,
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
        commit: bool,
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
            commit,
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
        commit: bool,
    ) -> Result<Decision, CheckError> {
        self.member(0, fingerprint, neighbourhoods(fingerprint, self.mask))
            .decide(now, cost, commit)
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
    /// Every limit of the key hashing to `hash`, written to `out` from index 0; returns
    /// how many were written (all of them, if `out` is long enough).
    pub(crate) fn members_into<'t>(&'t self, hash: u64, out: &mut [KeyedLimit<'t>]) -> usize {
        let fingerprint = fingerprint_of(hash);
        let starts = neighbourhoods(fingerprint, self.mask);
        let mut written = 0;
        for (index, slot) in out.iter_mut().take(self.config.count).enumerate() {
            *slot = self.member(index, fingerprint, starts);
            written += 1;
        }
        written
    }

    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    /// A member for filling arrays before [`members_into`](Self::members_into).
    pub(crate) fn placeholder(&self) -> KeyedLimit<'_> {
        self.member(0, 1, [0, 0])
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
    atomics: SlotAtomics,
    counters: &'t Counters,
    policy: FullPolicy,
    fingerprint: u64,
    /// The first slot of each neighbourhood.
    starts: [usize; 2],
    /// How many distinct neighbourhoods: 2, or 1 in an 8-slot table.
    choices: usize,
}

/// What `cancel` needs to give a keyed charge back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    /// Freed by moving its key to its other neighbourhood (already counted).
    Relocated,
}

/// Where a new key may go.
enum Pick {
    /// This slot (index, value seen), of this kind.
    Take(usize, u128, Takeover),
    /// Every slot of both neighbourhoods is active (or claimed): the active slot closest
    /// to rest, if any, and the time until it rests.
    Full {
        victim: Option<(usize, u128)>,
        wait: u64,
    },
    /// Our own key showed up: look it up again.
    Present,
}

/// The end of a relocation attempt.
enum Relocation {
    /// A key moved; this slot now holds our claim, with this value.
    Moved(usize, u128),
    /// A race spoiled the move: start over.
    Retry,
    /// No resident key can move.
    Nothing,
}

/// The end of one attempt: a result, or start over.
enum Step<T> {
    Done(T),
    Retry,
}

type Access = (Decision, Option<KeyedReservation>);

impl<'t> KeyedLimit<'t> {
    /// This key's limit run with `limit`'s parameters (from [`Table::limit_with_quota`]
    /// on the same table and limit, so the slot layout is the same); a limit of the
    /// other kind leaves it unchanged.
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

    fn mask(&self) -> usize {
        self.keys.len().wrapping_sub(1)
    }

    /// The starts of our distinct neighbourhoods (one or two).
    fn starts(&self) -> &[usize] {
        self.starts.get(..self.choices).unwrap_or(&self.starts)
    }

    /// Every slot of our neighbourhoods: the first's, then the second's, each in our
    /// lookup order (so a slot taken over goes to the free one closest to our home).
    fn union(&self) -> impl Iterator<Item = usize> + '_ {
        let (mask, fingerprint) = (self.mask(), self.fingerprint);
        self.starts()
            .iter()
            .flat_map(move |&start| neighbourhood_order(start, mask, fingerprint))
    }

    fn load(&self, index: usize) -> u128 {
        // SeqCst: module Orderings.
        self.keys.get(index).map_or(0, |s| self.atomics.load(&s.0))
    }

    fn cas(&self, index: usize, current: u128, new: u128) -> Result<u128, u128> {
        match self.keys.get(index) {
            // SeqCst both ways: module Orderings.
            Some(slot) => self.atomics.compare_exchange(&slot.0, current, new),
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

    /// Our key's slot: the first neighbourhood is scanned, then the second, always in
    /// that order — a relocation moves a key only from its first neighbourhood to its
    /// second, so a scan can never miss a key that is being moved (module docs).
    fn find(&self) -> Found {
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
    fn has_other_copy(&self, ours: usize) -> bool {
        self.union()
            .any(|index| index != ours && tag_of(self.load(index)) & !CLAIMING == self.fingerprint)
    }

    /// Whether `slot` holds a single-word key's state in transit (module docs).
    fn is_moving(&self, slot: u128) -> bool {
        matches!(self.kind, Kind::Word(_))
            && tag_of(slot) & CLAIMING != 0
            && generation_of(slot) == MOVING
    }

    /// Where a new key should go at `now`: an empty slot of the less loaded neighbourhood
    /// (the first on a tie); else a slot at rest or an abandoned claim; else [`Pick::Full`]
    /// with the active slot closest to rest and the time until it rests.
    fn pick_slot(&self, now: u64) -> Pick {
        // Pass 1: loads only. Count each neighbourhood's empty slots.
        let mask = self.mask();
        let mut empties = [(0usize, None::<(usize, u128)>); 2];
        for (&start, (count, first)) in self.starts().iter().zip(empties.iter_mut()) {
            // Lookup order: the first empty slot is the one closest to our home.
            for index in neighbourhood_order(start, mask, self.fingerprint) {
                let slot = self.load(index);
                let tag = tag_of(slot);
                if tag == 0 {
                    *count += 1;
                    first.get_or_insert((index, slot));
                } else if tag & !CLAIMING == self.fingerprint {
                    // Our key appeared (created or moved in since `find`): look again.
                    return Pick::Present;
                }
            }
        }
        let [(first_count, first_empty), (second_count, second_empty)] = empties;
        // The first neighbourhood while it is at most half full (lookups scan it first,
        // so most keys stay one scan away); past that the less loaded one (two-choice
        // balance, which is what lets the table run nearly full).
        let empty = if first_count < ROOMY && second_count > first_count {
            second_empty
        } else {
            first_empty.or(second_empty)
        };
        if let Some((index, slot)) = empty {
            return Pick::Take(index, slot, Takeover::Empty);
        }
        // Pass 2: every slot is taken. A slot at rest or an abandoned claim, else the
        // active slot closest to rest.
        let mut closest: Option<(usize, u128, u64)> = None;
        for index in self.union() {
            let slot = self.load(index);
            let tag = tag_of(slot);
            if tag == 0 {
                // Freed since pass 1.
                return Pick::Take(index, slot, Takeover::Empty);
            }
            if tag & !CLAIMING == self.fingerprint {
                return Pick::Present;
            }
            if tag & CLAIMING != 0 {
                // Someone else's claim (or move): never a victim unless abandoned — a
                // move only long after its time (see `MOVE_PATIENCE`).
                let stale = if self.is_moving(slot) {
                    claim_is_stale(slot, now.saturating_sub(ABANDONED_MOVE_NANOS))
                } else {
                    claim_is_stale(slot, now)
                };
                if stale {
                    return Pick::Take(index, slot, Takeover::Abandoned);
                }
                continue;
            }
            let to_rest = self.time_to_rest(index, slot, now);
            if to_rest == 0 {
                return Pick::Take(index, slot, Takeover::AtRest);
            }
            if closest.is_none_or(|(_, _, best)| to_rest < best) {
                closest = Some((index, slot, to_rest));
            }
        }
        Pick::Full {
            victim: closest.map(|(index, slot, _)| (index, slot)),
            wait: closest.map_or(1, |(_, _, t)| t.max(1)),
        }
    }

    /// The resident of `index` (value `slot`) if it may move: a live key in its *first*
    /// neighbourhood (keys move only from their first neighbourhood to their second). Returns its
    /// fingerprint and the start of its second neighbourhood.
    fn movable(&self, index: usize, slot: u128) -> Option<(u64, usize)> {
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
    fn relocate(&self, word: &WordLimit, now: u64) -> Relocation {
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
    /// by a previous move. Steps (a) to (d) of the module docs; returns whether the key
    /// moved and `from` now holds `next`. On failure every step is undone except a
    /// displaced at-rest key (lossless) and a move that completed before a stall.
    fn move_key(
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
            // slot operation (module Orderings).
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

    /// One attempt at a live single-word slot: a CAS loop while the slot holds our key.
    fn update_word(
        &self,
        word: &WordLimit,
        index: usize,
        slot: u128,
        now: u64,
        cost: u64,
        commit: bool,
    ) -> Result<Step<Access>, CheckError> {
        Ok(
            match self.update_word_slot(word, index, slot, now, cost, commit)? {
                LiveUpdate::Done(decision, None) => Step::Done((decision.decision(), None)),
                LiveUpdate::Done(decision, Some((new_word, state))) => {
                    let inner = Reservation::word(new_word, state, cost);
                    let token = KeyedReservation { index, inner };
                    Step::Done((decision.decision(), Some(token)))
                }
                LiveUpdate::Lost => Step::Retry,
            },
        )
    }

    /// The CAS loop on a live single-word slot, without the reservation plumbing (which
    /// only composites need): for `update_word` and [`decide`](Self::decide).
    #[inline(always)]
    fn update_word_slot(
        &self,
        word: &WordLimit,
        index: usize,
        slot: u128,
        now: u64,
        cost: u64,
        commit: bool,
    ) -> Result<LiveUpdate, CheckError> {
        update_live_word(
            self.atomics,
            self.keys.get(index),
            word,
            self.fingerprint,
            slot,
            now,
            cost,
            commit,
        )
    }

    /// A check (`commit`) or peek that needs no reservation — a table of one limit, and
    /// every peek: a live single-word key is decided right here (one scan, one CAS loop);
    /// anything else (absent, mid-claim or mid-move, strict, the slot lost to another key
    /// meanwhile) goes through [`access`](Self::access), which starts over. Saves the
    /// composite's plumbing where no reservation is needed: a one-limit table's slow path
    /// ([`Table::decide_single`]) and composites' peeks.
    #[inline(always)] // two callers: `Table::decide_single` and composites' peeks
    pub(crate) fn decide(&self, now: u64, cost: u64, commit: bool) -> Result<Decision, CheckError> {
        if let Kind::Word(word) = self.kind {
            if let Found::Live(index, slot) = self.find() {
                if let LiveUpdate::Done(decision, _) =
                    self.update_word_slot(word, index, slot, now, cost, commit)?
                {
                    return Ok(decision.decision());
                }
            }
        }
        self.access(now, cost, commit).map(|(d, _)| d)
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
        let mut waited_on_move = 0u32;
        for _ in 0..MAX_ATTEMPTS {
            let step = match self.find() {
                Found::Live(index, slot) => match self.kind {
                    Kind::Word(word) => self.update_word(word, index, slot, now, cost, commit)?,
                    Kind::Strict { config, .. } => {
                        self.update_strict(config, index, slot, now, cost, commit)?
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
                    if !commit && !self.is_moving(slot) {
                        // A peek does not wait for a new key's claim: the key is about
                        // to hold a fresh state plus its claimant's request; report the
                        // fresh state. A key in transit has a state: wait for it.
                        return Ok((self.fresh(now, cost)?.0, None));
                    }
                    waited_on_move += u32::from(self.is_moving(slot));
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
    fn freeze_and_take(
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
    fn claim(&self, now: u64, cost: u64, commit: bool) -> Result<Step<Access>, CheckError> {
        let (fresh, fresh_word) = self.fresh(now, cost)?;
        if !commit || cost == 0 || fresh_word.is_none() {
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
        // slots (duplicates) and, for a strict ring, the ring we took (module docs).
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
        self.decide(now, cost, false)
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
                let mut index = token.index;
                let backoff = Backoff::new();
                for _ in 0..MAX_ATTEMPTS {
                    if tag_of(slot) == self.fingerprint {
                        let Some(new_word) = word.uncharge(state_of(slot), &token.inner) else {
                            return;
                        };
                        match self.cas(index, slot, pack(self.fingerprint, new_word)) {
                            Ok(_) => return,
                            Err(actual) => slot = actual,
                        }
                        continue;
                    }
                    // Not live here: the key may have been relocated since the charge,
                    // with its state (and our charge) intact.
                    match self.find() {
                        Found::Live(found, live) => (index, slot) = (found, live),
                        Found::Claiming(_, moving) if self.is_moving(moving) => {
                            crate::sync::backoff_wait(&backoff);
                            slot = self.load(index);
                        }
                        _ => return,
                    }
                }
            }
        }
    }
}

#[cfg(all(test, feature = "alloc", not(ratecore_loom)))]
mod tests {
    use super::sealed::Access;
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
