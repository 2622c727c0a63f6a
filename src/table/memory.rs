//! Where a table's slots and counters live: [`TableMemory`], sealed, with two
//! implementations — [`OwnedMemory`], allocated by the table itself (on a 128-byte
//! boundary, with huge pages advised), and `region::RegionMemory`, a shared region.

use super::stats::Counters;
#[cfg(feature = "alloc")]
use super::TableError;
use crate::algorithm::sliding_strict::Slot;

/// Where a table's slots and counters live: [`OwnedMemory`] or
/// [`RegionMemory`](super::region::RegionMemory). Sealed.
pub trait TableMemory: sealed::Access {}

impl<T: sealed::Access> TableMemory for T {}

pub(super) mod sealed {
    use super::{Counters, Slot};

    /// The accessors behind [`super::TableMemory`]; unnameable outside the crate.
    pub trait Access {
        /// Every limit's slots, one limit after the other.
        fn slots(&self) -> &[Slot];
        /// The shared counters.
        fn counters(&self) -> &Counters;
    }
}

/// Memory the table allocated itself ([`Table::new`](super::Table::new)).
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
pub(super) const ALIGN_SLOTS: usize = {
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

#[cfg(feature = "alloc")]
impl OwnedMemory {
    /// `total` slots (and the counters), all allocated now, the slots starting on a
    /// 128-byte boundary.
    ///
    /// # Errors
    /// [`TableError::BadCapacity`] if the memory size overflows;
    /// [`TableError::OutOfMemory`] if the system refuses the memory.
    pub(super) fn new(total: usize) -> Result<Self, TableError> {
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
        Ok(Self {
            counters: alloc::boxed::Box::new(Counters::new()),
            allocation,
            offset,
            len: total,
        })
    }
}

/// Asks Linux to back a big table with transparent huge pages (`MADV_HUGEPAGE`): a lookup
/// lands on a random slot, so with 4 KiB pages a table of millions of keys misses the TLB
/// on nearly every check; with 2 MiB pages it mostly does not (`benches/README.md`,
/// keyed at 1 M / 10 M keys). Advice only: a kernel that says no (THP off, or not
/// Linux) leaves the table exactly as it was, so the result is ignored.
#[cfg(feature = "alloc")]
#[allow(unsafe_code)] // One system call (madvise), at creation; see the SAFETY note.
pub(super) fn advise_huge_pages<T>(memory: &mut [T]) {
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
