//! Keyed tables in a caller-provided region (an `mmap(MAP_SHARED)` mapping, an nginx
//! shared zone) so several processes share one table.
//!
//! # Layout (version 2)
//! | offset | size | content |
//! |---|---|---|
//! | 0 | 208 | header fields: magic `RATECORE`, layout version, capacity, limits, policy, hash seed, hash probe, checksum |
//! | 208 | 8 | initialisation state (atomic): 0 blank, 1 initialising, 2 ready |
//! | 256 | 640 | 10 counters, one per 64-byte line |
//! | 896 | 16 × capacity × limits | slots, limit by limit |
//!
//! The region holds no pointers, only this fixed layout, so every process may map it at a
//! different address. It must start on a 64-byte boundary (pages do).
//!
//! The version covers what the bytes *mean*, not only where they are. Version 2 has the
//! byte layout of version 1 but places each key in one of two neighbourhoods (and counts
//! relocations in the tenth counter, reserved in version 1): a version-1 region's keys
//! would not be found where version 2 looks, so it is refused
//! ([`TableError::UnsupportedVersion`]).
//!
//! # Sharing rules
//! - One process initialises ([`init`]); the others [`attach`] after initialisation
//!   finished (attaching earlier fails with [`TableError::NotReady`], never races).
//! - Every process must run the same ratecore build: the header records a probe hash,
//!   and a build that hashes keys differently is refused ([`TableError::HashMismatch`]).
//! - Every process must pass `now` from one system-wide monotonic clock (on Linux,
//!   `CLOCK_MONOTONIC`), or per-process clocks would disagree about every window.
//! - The header is validated on attach (magic, version, checksum, every field); a
//!   corrupt or foreign region is an error, never undefined behaviour. Slot contents
//!   need no validation: every 128-bit value is a state the algorithms handle (a
//!   nonsense state can only deny or admit, never crash).
//!
//! # Orderings
//! `init` writes the header with plain stores, then publishes it by storing "ready" with
//! `Release`; `attach` loads the state with `Acquire` before reading any header field, so
//! it sees the complete header.

#![allow(unsafe_code)] // The one module that turns raw region bytes into typed views.
use core::marker::PhantomData;
use core::mem::{align_of, size_of};

use super::config::{
    FullPolicy, LimitSpec, TableConfig, TableError, MAX_CAPACITY, MAX_TABLE_LIMITS,
};
use super::stats::{Counters, COUNTERS};
use super::Table;
use crate::algorithm::sliding_strict::Slot;
use crate::algorithm::Algorithm;
use crate::quota::Quota;
use crate::sync::{AtomicU128, AtomicU64, Ordering};

/// The first 8 bytes of every initialised region.
pub const MAGIC: [u8; 8] = *b"RATECORE";

/// The layout version this build reads and writes.
pub const LAYOUT_VERSION: u32 = 2;

/// Where the header fields end and the initialisation state lives.
const STATE_OFFSET: usize = 208;
/// Where the counters start.
const COUNTERS_OFFSET: usize = 256;
/// Where the slots start.
const SLOTS_OFFSET: usize = COUNTERS_OFFSET + 64 * COUNTERS;
/// The alignment a region must have.
pub const REGION_ALIGN: usize = 64;

const BLANK: u64 = 0;
const INITIALISING: u64 = 1;
const READY: u64 = 2;

/// A fixed string hashed with the table's seed: equal probes mean equal hashing.
const PROBE_KEY: &[u8] = b"ratecore layout probe";

/// One limit as stored in the header.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct RawLimit {
    algorithm: u32,
    sub_windows: u32,
    limit: u64,
    period: u64,
    burst: u64,
}

/// The header fields (no padding: every field is naturally aligned and sized).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct HeaderFields {
    magic: [u8; 8],
    version: u32,
    header_bytes: u32,
    capacity: u64,
    limit_count: u32,
    policy: u32,
    seed: [u64; 4],
    limits: [RawLimit; MAX_TABLE_LIMITS],
    hash_probe: u64,
    checksum: u64,
}

const _: () = assert!(size_of::<HeaderFields>() == STATE_OFFSET);
const _: () = assert!(size_of::<Counters>() == 64 * COUNTERS);
const _: () = assert!(align_of::<Counters>() <= REGION_ALIGN);
const _: () = assert!(size_of::<AtomicU128>() == 16 && align_of::<AtomicU128>() == 16);
const _: () = assert!(size_of::<Slot>() == 16 && align_of::<Slot>() == 16);
const _: () = assert!(SLOTS_OFFSET % 64 == 0);

impl HeaderFields {
    fn checksum(&self) -> u64 {
        // FNV-1a over every field but the checksum: cheap, and any single corrupted
        // field changes it.
        let mut hash = 0xcbf2_9ce4_8422_2325_u64;
        let mut mix = |value: u64| {
            for byte in value.to_le_bytes() {
                hash ^= u64::from(byte);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
        };
        mix(u64::from_le_bytes(self.magic));
        mix(u64::from(self.version));
        mix(u64::from(self.header_bytes));
        mix(self.capacity);
        mix(u64::from(self.limit_count));
        mix(u64::from(self.policy));
        self.seed.iter().for_each(|&s| mix(s));
        for limit in &self.limits {
            mix(u64::from(limit.algorithm));
            mix(u64::from(limit.sub_windows));
            mix(limit.limit);
            mix(limit.period);
            mix(limit.burst);
        }
        mix(self.hash_probe);
        hash
    }

    fn from_config(config: &TableConfig) -> Self {
        let mut limits = [RawLimit::default(); MAX_TABLE_LIMITS];
        for (raw, spec) in limits.iter_mut().zip(config.limits()) {
            *raw = RawLimit {
                algorithm: spec.algorithm.code(),
                sub_windows: spec.algorithm.sub_windows(),
                limit: spec.quota.limit(),
                period: spec.quota.period(),
                burst: spec.quota.burst(),
            };
        }
        let mut fields = Self {
            magic: MAGIC,
            version: LAYOUT_VERSION,
            header_bytes: SLOTS_OFFSET as u32,
            capacity: config.capacity,
            limit_count: config.count as u32,
            policy: config.policy as u32,
            seed: config.seed,
            limits,
            hash_probe: probe(&config.seed),
            checksum: 0,
        };
        fields.checksum = fields.checksum();
        fields
    }

    /// Rebuilds the configuration, validating every field.
    fn to_config(self) -> Result<TableConfig, TableError> {
        if self.magic != MAGIC {
            return Err(TableError::BadMagic);
        }
        if self.version != LAYOUT_VERSION {
            return Err(TableError::UnsupportedVersion {
                found: self.version,
            });
        }
        if self.checksum != self.checksum() || self.header_bytes as usize != SLOTS_OFFSET {
            return Err(TableError::CorruptHeader);
        }
        let count = self.limit_count as usize;
        if count == 0
            || count > MAX_TABLE_LIMITS
            || !self.capacity.is_power_of_two()
            || self.capacity < 8
            || self.capacity > MAX_CAPACITY
        {
            return Err(TableError::CorruptHeader);
        }
        let policy = FullPolicy::from_code(self.policy).ok_or(TableError::CorruptHeader)?;
        let mut specs = [None; MAX_TABLE_LIMITS];
        for (spec, raw) in specs.iter_mut().zip(&self.limits).take(count) {
            let algorithm = Algorithm::from_code(raw.algorithm, raw.sub_windows)
                .ok_or(TableError::CorruptHeader)?;
            let quota = Quota::new(raw.limit, raw.period)
                .and_then(|q| q.with_burst(raw.burst))
                .map_err(|_| TableError::CorruptHeader)?;
            *spec = Some(LimitSpec { algorithm, quota });
        }
        let specs: &[LimitSpec] = &specs.map(|s| {
            s.unwrap_or(LimitSpec {
                algorithm: Algorithm::Gcra,
                quota: Quota::per_second(1).unwrap_or_else(|_| unreachable_quota()),
            })
        })[..count];
        let config = TableConfig::new(self.capacity, specs)
            .map_err(|_| TableError::CorruptHeader)?
            .with_policy(policy)
            .with_seed(self.seed);
        if config.capacity != self.capacity {
            return Err(TableError::CorruptHeader);
        }
        if probe(&self.seed) != self.hash_probe {
            return Err(TableError::HashMismatch);
        }
        Ok(config)
    }
}

/// `Quota::per_second(1)` cannot fail; this keeps the code total without a panic.
#[cold]
fn unreachable_quota() -> Quota {
    loop {
        if let Ok(q) = Quota::new(1, 1) {
            return q;
        }
    }
}

fn probe(seed: &[u64; 4]) -> u64 {
    let [a, b, c, d] = *seed;
    ahash::RandomState::with_seeds(a, b, c, d).hash_one(PROBE_KEY)
}

/// The bytes a region needs for `config`.
///
/// # Errors
/// [`TableError::BadCapacity`] if the size does not fit `usize`.
pub fn region_size(config: &TableConfig) -> Result<usize, TableError> {
    config
        .total_slots()
        .and_then(|slots| usize::try_from(slots).ok())
        .and_then(|slots| slots.checked_mul(16))
        .and_then(|bytes| bytes.checked_add(SLOTS_OFFSET))
        .ok_or(TableError::BadCapacity)
}

/// A table's view of a caller-provided region.
#[derive(Debug)]
pub struct RegionMemory<'a> {
    counters: &'a Counters,
    slots: &'a [Slot],
    _region: PhantomData<&'a [u8]>,
}

impl super::memory::sealed::Access for RegionMemory<'_> {
    fn slots(&self) -> &[Slot] {
        self.slots
    }
    fn counters(&self) -> &Counters {
        self.counters
    }
}

/// A table living in a caller-provided region.
pub type RegionTable<'a> = Table<RegionMemory<'a>>;

fn check_region(ptr: *mut u8, len: usize, needed: usize) -> Result<(), TableError> {
    if ptr.is_null() || (ptr as usize) % REGION_ALIGN != 0 {
        return Err(TableError::RegionMisaligned);
    }
    if len < needed {
        return Err(TableError::RegionTooSmall {
            needed,
            actual: len,
        });
    }
    Ok(())
}

/// The region's initialisation-state word.
///
/// # Safety
/// `ptr` is valid for `SLOTS_OFFSET` bytes and 64-byte aligned.
unsafe fn state_word<'a>(ptr: *mut u8) -> &'a AtomicU64 {
    // SAFETY: STATE_OFFSET (208) is 8-aligned within a 64-aligned region of at least
    // SLOTS_OFFSET bytes (caller), AtomicU64 has u64's size and alignment, and the word
    // is only ever accessed atomically.
    unsafe { &*ptr.add(STATE_OFFSET).cast::<AtomicU64>() }
}

/// Builds the views once the header is known good.
///
/// # Safety
/// `ptr` is valid for reads and writes of `region_size(config)` bytes for `'a`, 64-byte
/// aligned, and only accessed through ratecore (atomically) while the table lives.
unsafe fn views<'a>(ptr: *mut u8, config: TableConfig) -> Result<RegionTable<'a>, TableError> {
    let total = config
        .total_slots()
        .and_then(|slots| usize::try_from(slots).ok())
        .ok_or(TableError::BadCapacity)?;
    // SAFETY: COUNTERS_OFFSET is 64-aligned inside a 64-aligned region (caller); the
    // counters are 640 bytes inside the region; they are only accessed atomically.
    let counters = unsafe { &*ptr.add(COUNTERS_OFFSET).cast::<Counters>() };
    // SAFETY: SLOTS_OFFSET is 64-aligned; `total` 16-byte slots fit (region_size); a
    // Slot is a transparent AtomicU128, which has the size and alignment of u128
    // (asserted above), and every bit pattern is a valid u128; slots are only accessed
    // atomically.
    let slots = unsafe { core::slice::from_raw_parts(ptr.add(SLOTS_OFFSET).cast::<Slot>(), total) };
    Table::with_memory(
        config,
        RegionMemory {
            counters,
            slots,
            _region: PhantomData,
        },
    )
}

/// Initialises a table for `config` in the region at `ptr` (`len` bytes, at least
/// [`region_size`]) and returns it. Any previous content is overwritten.
///
/// # Errors
/// [`TableError::RegionMisaligned`], [`TableError::RegionTooSmall`],
/// [`TableError::NotLockFree`].
///
/// # Safety
/// - `ptr` must be valid for reads and writes of `len` bytes for `'a`;
/// - no other thread or process may access the region during this call;
/// - afterwards the region may only be accessed through ratecore tables (this one, or
///   ones [`attach`]ed to it) until they are all dropped.
pub unsafe fn init<'a>(
    ptr: *mut u8,
    len: usize,
    config: &TableConfig,
) -> Result<RegionTable<'a>, TableError> {
    let needed = region_size(config)?;
    check_region(ptr, len, needed)?;
    // SAFETY: valid, aligned region (checked above and by the caller).
    let state = unsafe { state_word(ptr) };
    // Relaxed: nobody may look at the region during init (caller contract); this only
    // makes a crash mid-way leave "initialising", never a stale "ready".
    state.store(INITIALISING, Ordering::Relaxed);
    // SAFETY: the caller gives exclusive access during init; `needed` bytes are valid;
    // zero is a valid value for every counter and slot.
    unsafe {
        core::ptr::write_bytes(ptr.add(COUNTERS_OFFSET), 0, needed - COUNTERS_OFFSET);
    }
    let fields = HeaderFields::from_config(config);
    // SAFETY: offset 0 is aligned for HeaderFields (8) and the fields end before the
    // state word; exclusive access during init.
    unsafe { core::ptr::write_volatile(ptr.cast::<HeaderFields>(), fields) };
    // Release: publishes the header, counters and zeroed slots to whoever Acquires
    // "ready" (module Orderings).
    state.store(READY, Ordering::Release);
    // SAFETY: as promised by the caller, region valid and exclusively ours via ratecore.
    unsafe { views(ptr, *config) }
}

/// Attaches to a region another table (possibly in another process) initialised.
///
/// # Errors
/// [`TableError::RegionMisaligned`], [`TableError::RegionTooSmall`],
/// [`TableError::NotReady`], [`TableError::BadMagic`],
/// [`TableError::UnsupportedVersion`], [`TableError::CorruptHeader`],
/// [`TableError::HashMismatch`], [`TableError::NotLockFree`].
///
/// # Safety
/// `ptr` must be valid for reads and writes of `len` bytes for `'a`, and only accessed
/// through ratecore tables while they live.
pub unsafe fn attach<'a>(ptr: *mut u8, len: usize) -> Result<RegionTable<'a>, TableError> {
    check_region(ptr, len, SLOTS_OFFSET)?;
    // SAFETY: valid, aligned, at least SLOTS_OFFSET bytes (checked above + caller).
    let state = unsafe { state_word(ptr) };
    // Acquire: pairs with init's Release, so the header read below is complete.
    match state.load(Ordering::Acquire) {
        READY => {}
        BLANK if first_bytes_are_not_magic(ptr) => return Err(TableError::BadMagic),
        _ => return Err(TableError::NotReady),
    }
    // SAFETY: aligned, within the region; read as a copy (volatile: the bytes live in
    // shared memory another process wrote).
    let fields = unsafe { core::ptr::read_volatile(ptr.cast::<HeaderFields>()) };
    let config = fields.to_config()?;
    let needed = region_size(&config)?;
    if len < needed {
        return Err(TableError::RegionTooSmall {
            needed,
            actual: len,
        });
    }
    // SAFETY: region valid for `len >= needed` bytes, aligned, ratecore-only (caller).
    unsafe { views(ptr, config) }
}

fn first_bytes_are_not_magic(ptr: *mut u8) -> bool {
    // SAFETY: the region is at least SLOTS_OFFSET bytes (checked by the caller of this
    // private helper); reading 8 bytes as a copy.
    let magic = unsafe { core::ptr::read_volatile(ptr.cast::<[u8; 8]>()) };
    magic != MAGIC
}

impl<'a> RegionTable<'a> {
    /// Safe [`init`] over a region this process owns exclusively (e.g. a buffer, or a
    /// mapping not yet shared). The returned table keeps the region borrowed.
    ///
    /// # Errors
    /// As for [`init`].
    pub fn init_in(region: &'a mut [u8], config: &TableConfig) -> Result<Self, TableError> {
        // SAFETY: `&'a mut` gives exclusive access to `region.len()` valid bytes for 'a,
        // and the borrow is held by the returned table, so nothing else touches them.
        unsafe { init(region.as_mut_ptr(), region.len(), config) }
    }

    /// Safe [`attach`] over a region this process owns exclusively (already initialised,
    /// e.g. by a table that has since been dropped).
    ///
    /// # Errors
    /// As for [`attach`].
    pub fn attach_in(region: &'a mut [u8]) -> Result<Self, TableError> {
        // SAFETY: as for `init_in`.
        unsafe { attach(region.as_mut_ptr(), region.len()) }
    }
}
