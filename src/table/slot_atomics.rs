//! 128-bit loads and compare-exchanges of key slots, inlined where the CPU allows.
//!
//! # Why hand-written
//! The crate's 128-bit atomic is portable-atomic's. Unless a build enables the
//! `cmpxchg16b` and `avx` target features (default builds do not), portable-atomic picks
//! its instructions at run time: every load and CAS of a key slot is then an indirect call,
//! and the CAS hands its result back through memory. A lookup makes up to nine such calls,
//! and the calls, not the instructions, cost about a sixth of a keyed check (perf on
//! `profile_driver rc_keyed_1k`, against a build with the instructions inline through
//! `-C target-feature=+cmpxchg16b,+avx`; `benches/README.md`).
//!
//! So the table asks the CPU once, at creation, and keeps the answer as a [`SlotAtomics`].
//! With `cmpxchg16b` and AVX present, its operations are the very instructions
//! portable-atomic would pick — `vmovdqa` for a load (an aligned 16-byte access is atomic
//! on CPUs with AVX: Intel SDM vol. 3A, "Guaranteed Atomic Operations"; AMD APM vol. 2,
//! "Access Atomicity"), `lock cmpxchg16b` for a CAS — written inline.
//! Being the same instructions on the same memory, they mix freely with portable-atomic's
//! operations on those slots (the table's cold paths, other processes sharing a region).
//! Everywhere else (other CPUs and architectures, `no_std` builds, loom) they are
//! portable-atomic's.
//!
//! # Orderings
//! Both are `SeqCst`, as the table's protocol requires (table module, Orderings): on
//! x86-64 every store to a slot is a locked instruction, a full barrier, and a plain load
//! after it is ordered; `vmovdqa` is how portable-atomic and LLVM implement a `SeqCst`
//! 128-bit load there. Neither asm block is marked `nomem` or `readonly`, so the compiler
//! moves no memory access across them either.

use crate::sync::{AtomicU128, Ordering};

/// How the table loads and compare-exchanges its key slots: inline instructions on an
/// x86-64 CPU with `cmpxchg16b` and AVX, portable-atomic's otherwise. Holding an `inline`
/// value is the proof that the CPU has both (only [`SlotAtomics::detect`] makes one).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SlotAtomics {
    // Read only where the inline variant exists.
    #[cfg_attr(
        not(all(target_arch = "x86_64", feature = "std", not(ratecore_loom))),
        allow(dead_code)
    )]
    inline: bool,
}

impl SlotAtomics {
    /// What this CPU supports (the check is made once per table, at creation).
    pub(crate) fn detect() -> Self {
        Self {
            inline: inline_supported(),
        }
    }

    /// The slot's value (`SeqCst`).
    #[inline(always)]
    #[allow(unsafe_code)] // The inline instruction; see the SAFETY note.
    pub(crate) fn load(self, atomic: &AtomicU128) -> u128 {
        #[cfg(all(target_arch = "x86_64", feature = "std", not(ratecore_loom)))]
        if self.inline {
            // SAFETY: `inline` is true only if the CPU has AVX (`detect`), on which a
            // 16-byte-aligned `vmovdqa` is a single atomic access; `as_ptr` points to
            // the live, 16-byte-aligned atomic behind `atomic`, which is only ever
            // accessed atomically.
            return unsafe { x86_64::load(atomic.as_ptr()) };
        }
        let _ = self;
        // SeqCst: module Orderings.
        atomic.load(Ordering::SeqCst)
    }

    /// Replaces the slot's value with `new` if it is `current` (`SeqCst` both ways);
    /// `Err` with the value found otherwise.
    #[inline(always)]
    #[allow(unsafe_code)] // The inline instruction; see the SAFETY note.
    pub(crate) fn compare_exchange(
        self,
        atomic: &AtomicU128,
        current: u128,
        new: u128,
    ) -> Result<u128, u128> {
        #[cfg(all(target_arch = "x86_64", feature = "std", not(ratecore_loom)))]
        if self.inline {
            // SAFETY: `inline` is true only if the CPU has `cmpxchg16b` (`detect`);
            // `as_ptr` points to the live, 16-byte-aligned atomic behind `atomic`,
            // which is only ever accessed atomically.
            return unsafe { x86_64::compare_exchange(atomic.as_ptr(), current, new) };
        }
        let _ = self;
        // SeqCst both ways: module Orderings.
        atomic.compare_exchange(current, new, Ordering::SeqCst, Ordering::SeqCst)
    }
}

#[cfg(all(target_arch = "x86_64", feature = "std", not(ratecore_loom)))]
fn inline_supported() -> bool {
    // The std macro checks the OS saves AVX state too, and caches its answer.
    std::arch::is_x86_feature_detected!("cmpxchg16b") && std::arch::is_x86_feature_detected!("avx")
}

#[cfg(not(all(target_arch = "x86_64", feature = "std", not(ratecore_loom))))]
const fn inline_supported() -> bool {
    false
}

#[cfg(all(target_arch = "x86_64", feature = "std", not(ratecore_loom)))]
#[allow(unsafe_code)] // Two instructions; see the module docs and each SAFETY note.
mod x86_64 {
    use core::arch::asm;
    use core::arch::x86_64::__m128i;

    /// `vmovdqa`: one atomic 16-byte load.
    ///
    /// # Safety
    /// `source` is valid for reads, 16-byte aligned and accessed only atomically; the CPU
    /// has AVX.
    #[inline(always)]
    pub(super) unsafe fn load(source: *const u128) -> u128 {
        let value: __m128i;
        // SAFETY: the caller's contract; the block only reads `source`'s 16 bytes.
        unsafe {
            asm!(
                "vmovdqa {value}, xmmword ptr [{source}]",
                source = in(reg) source,
                value = out(xmm_reg) value,
                options(nostack, preserves_flags),
            );
        }
        // SAFETY: `__m128i` and `u128` are both 16 plain bytes, every pattern valid.
        unsafe { core::mem::transmute::<__m128i, u128>(value) }
    }

    /// `lock cmpxchg16b`: replaces `*target` with `new` if it equals `current`.
    ///
    /// # Safety
    /// `target` is valid for reads and writes, 16-byte aligned (the instruction faults
    /// otherwise) and accessed only atomically; the CPU has `cmpxchg16b`.
    #[inline(always)]
    pub(super) unsafe fn compare_exchange(
        target: *mut u128,
        current: u128,
        new: u128,
    ) -> Result<u128, u128> {
        let (found_low, found_high): (u64, u64);
        let failed: u8;
        // SAFETY: the caller's contract. The instruction compares rdx:rax with the 16
        // bytes at `target` and stores rcx:rbx there if equal (ZF set), else loads them
        // into rdx:rax. rbx is reserved by LLVM and cannot be named as an operand, yet
        // the allocator may hand it out for a `reg` operand: so every operand here has an
        // explicit register. The new low half goes in through r8, swapped into rbx around
        // the instruction and swapped back, so rbx leaves the block as it came in.
        // (An `in(reg)` target could be given rbx itself, and the swap would then
        // overwrite the address.)
        unsafe {
            asm!(
                "xchg r8, rbx",
                "lock cmpxchg16b xmmword ptr [rsi]",
                "setne cl",
                "mov rbx, r8",
                in("rsi") target,
                inout("r8") new as u64 => _,
                in("rcx") (new >> 64) as u64,
                inout("rax") current as u64 => found_low,
                inout("rdx") (current >> 64) as u64 => found_high,
                lateout("cl") failed,
                // Not `preserves_flags`: the instruction writes ZF.
                options(nostack),
            );
        }
        let found = (u128::from(found_high) << 64) | u128::from(found_low);
        if failed == 0 {
            Ok(current)
        } else {
            Err(found)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SlotAtomics;
    use crate::sync::{AtomicU128, Ordering};

    const A: u128 = (0x0123_4567_89ab_cdef_u128 << 64) | 0xfedc_ba98_7654_3210;
    const B: u128 = (0x1111_2222_3333_4444_u128 << 64) | 0x5555_6666_7777_8888;

    /// Both the inline and the portable-atomic variant: a load sees both halves, a CAS
    /// with the right expected value swaps both, one with a wrong half of either kind
    /// fails and reports the value found.
    #[test]
    fn load_and_compare_exchange_agree_with_portable_atomic() {
        for atomics in [SlotAtomics::detect(), SlotAtomics { inline: false }] {
            let slot = AtomicU128::new(A);
            assert_eq!(atomics.load(&slot), A);
            assert_eq!(atomics.compare_exchange(&slot, A ^ 1, B), Err(A));
            assert_eq!(atomics.compare_exchange(&slot, A ^ (1 << 64), B), Err(A));
            assert_eq!(slot.load(Ordering::SeqCst), A);
            assert_eq!(atomics.compare_exchange(&slot, A, B), Ok(A));
            assert_eq!(slot.load(Ordering::SeqCst), B);
            assert_eq!(atomics.load(&slot), B);
        }
    }

    /// On this project's CI machines (x86-64 with AVX) the inline variant is the one in
    /// use, so the test above exercises it.
    #[test]
    #[cfg(all(target_arch = "x86_64", feature = "std", not(ratecore_loom)))]
    fn inline_variant_is_detected_where_the_cpu_has_avx() {
        assert_eq!(
            SlotAtomics::detect().inline,
            std::arch::is_x86_feature_detected!("avx")
                && std::arch::is_x86_feature_detected!("cmpxchg16b")
        );
    }
}
