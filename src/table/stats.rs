//! Table statistics: atomic counters any thread (or process sharing the region) reads at
//! any time.
//!
//! # Orderings
//! Every counter is an independent statistic: nothing is published through it and no
//! decision reads it, so all operations are `Relaxed` (each RMW is still atomic, so no
//! increment is lost).

use crate::sync::{AtomicU64, Ordering};

/// One counter alone on a 64-byte cache line, so hot counters do not false-share with
/// each other or with slots. Hand-written rather than `crossbeam_utils::CachePadded`
/// because the size must be the same on every architecture: it is part of the shared
/// region's layout.
#[repr(C, align(64))]
#[derive(Debug)]
pub(crate) struct PaddedCounter(pub(crate) AtomicU64);

impl PaddedCounter {
    #[cfg_attr(not(feature = "alloc"), allow(dead_code))]
    pub(crate) fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    pub(crate) fn add(&self, n: u64) {
        // Relaxed: a statistic (module Orderings).
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn sub(&self, n: u64) {
        // Relaxed: a statistic (module Orderings).
        self.0.fetch_sub(n, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        // Relaxed: a statistic (module Orderings).
        self.0.load(Ordering::Relaxed)
    }
}

/// Number of counters in [`Counters`].
pub(crate) const COUNTERS: usize = 10;

/// The live counters, laid out as in the shared region.
#[repr(C)]
#[derive(Debug)]
pub struct Counters {
    pub(crate) cells: [PaddedCounter; COUNTERS],
}

pub(crate) const OCCUPIED: usize = 0;
pub(crate) const NEW_KEYS: usize = 1;
pub(crate) const RECLAIMS: usize = 2;
pub(crate) const EVICTIONS: usize = 3;
pub(crate) const FULL_NEIGHBOURHOODS: usize = 4;
pub(crate) const FULL_DENIED: usize = 5;
pub(crate) const FULL_ALLOWED: usize = 6;
pub(crate) const CONTENDED: usize = 7;
pub(crate) const STALE_CLAIMS: usize = 8;
pub(crate) const RELOCATIONS: usize = 9;

impl Counters {
    #[cfg_attr(not(feature = "alloc"), allow(dead_code))]
    pub(crate) fn new() -> Self {
        Self {
            cells: core::array::from_fn(|_| PaddedCounter::new()),
        }
    }

    pub(crate) fn bump(&self, which: usize) {
        if let Some(cell) = self.cells.get(which) {
            cell.add(1);
        }
    }

    pub(crate) fn drop_one(&self, which: usize) {
        if let Some(cell) = self.cells.get(which) {
            cell.sub(1);
        }
    }

    fn read(&self, which: usize) -> u64 {
        self.cells.get(which).map_or(0, PaddedCounter::get)
    }

    pub(crate) fn snapshot(&self) -> TableStats {
        TableStats {
            occupied: self.read(OCCUPIED),
            new_keys: self.read(NEW_KEYS),
            reclaims: self.read(RECLAIMS),
            evictions: self.read(EVICTIONS),
            full_neighbourhoods: self.read(FULL_NEIGHBOURHOODS),
            full_denied: self.read(FULL_DENIED),
            full_allowed: self.read(FULL_ALLOWED),
            contended: self.read(CONTENDED),
            stale_claims: self.read(STALE_CLAIMS),
            relocations: self.read(RELOCATIONS),
        }
    }
}

/// A snapshot of a table's counters. Each is exact; they are read one after another, so
/// a snapshot taken under load mixes slightly different moments.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TableStats {
    /// Slots holding a key (summed over every limit's slot array).
    pub occupied: u64,
    /// Keys that got a slot (new keys, and keys back after their slot was reused).
    pub new_keys: u64,
    /// Slots whose key was at rest (no information) and were given to another key:
    /// lossless.
    pub reclaims: u64,
    /// Slots whose key was still active and were given to another key (policy
    /// `EvictClosestToRest`): that key's state was lost, and it will start fresh.
    pub evictions: u64,
    /// Times a new key found both its neighbourhoods active and no resident key could
    /// move (whatever the policy did).
    pub full_neighbourhoods: u64,
    /// Requests denied because the neighbourhood was full (policy `Deny`).
    pub full_denied: u64,
    /// Requests admitted untracked because the neighbourhood was full (policy `Allow`).
    pub full_allowed: u64,
    /// Requests denied because the key's slot stayed contended past the retry bound.
    pub contended: u64,
    /// Claims abandoned mid-way (e.g. by a crashed process) and taken over.
    pub stale_claims: u64,
    /// Keys moved (state intact) from their first neighbourhood to their second, to make
    /// room for a new key whose two neighbourhoods were full: lossless.
    pub relocations: u64,
}
