//! The atomics the limiters use: `core`'s (and portable-atomic's 128-bit one) normally,
//! loom's under `cfg(ratecore_loom)` so the model checker can explore every interleaving
//! of the CAS protocols.

#[cfg(ratecore_loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU64, Ordering};

#[cfg(not(ratecore_loom))]
pub(crate) use core::sync::atomic::{fence, AtomicU64, Ordering};

/// Waits a little before retrying a lost race: `Backoff`'s spin-then-yield normally;
/// under loom an explicit yield, so the model checker schedules the thread we wait for
/// (loom cannot see through a spin loop).
pub(crate) fn backoff_wait(backoff: &crossbeam_utils::Backoff) {
    #[cfg(ratecore_loom)]
    {
        let _ = backoff;
        loom::thread::yield_now();
    }
    #[cfg(not(ratecore_loom))]
    backoff.snooze();
}

/// A lock-free 128-bit atomic: `cmpxchg16b` on x86-64, `casp`/`ldxp`/`stxp` on AArch64
/// (portable-atomic picks the instruction, detecting support at run time if needed).
/// Keyed tables check `is_lock_free()` before using it: a lock-based fallback would not
/// be atomic across processes sharing a region.
#[cfg(not(ratecore_loom))]
pub(crate) use portable_atomic::AtomicU128;

/// Loom has no 128-bit atomic; model one as a loom mutex, which gives the same
/// linearizable load / compare-exchange the real instruction does, so loom explores the
/// same interleavings of the table's protocol.
#[cfg(ratecore_loom)]
#[derive(Debug)]
pub(crate) struct AtomicU128(loom::sync::Mutex<u128>);

#[cfg(ratecore_loom)]
impl AtomicU128 {
    pub(crate) fn new(value: u128) -> Self {
        Self(loom::sync::Mutex::new(value))
    }

    pub(crate) fn load(&self, _: Ordering) -> u128 {
        *self.0.lock().unwrap()
    }

    pub(crate) fn compare_exchange(
        &self,
        current: u128,
        new: u128,
        _: Ordering,
        _: Ordering,
    ) -> Result<u128, u128> {
        let mut guard = self.0.lock().unwrap();
        if *guard == current {
            *guard = new;
            Ok(current)
        } else {
            Err(*guard)
        }
    }

    pub(crate) fn is_lock_free() -> bool {
        true
    }
}
