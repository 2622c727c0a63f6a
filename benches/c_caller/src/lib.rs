//! Loops written in C (`c_calls.c`, compiled by `build.rs`) that call ratecore's C ABI,
//! for `benches/ffi.rs`: they time the `extern "C"` call as a C program makes it, against
//! the same loop written in Rust over the Rust API.
//!
//! Not part of ratecore; a bench helper only (`publish = false`).

use ratecore_ffi::{ratecore_limiter, ratecore_table};

// The handles are opaque to C: only their pointers cross, never their layout.
#[allow(improper_ctypes)]
extern "C" {
    /// Makes `calls` calls of `ratecore_limiter_check(limiter, now_ns, 1, &d)` from C and
    /// returns how many were admitted.
    ///
    /// # Safety
    /// `limiter` is a live handle from `ratecore_limiter_new`.
    pub fn ratecore_bench_c_limiter_checks(
        limiter: *const ratecore_limiter,
        now_ns: u64,
        calls: u64,
    ) -> u64;

    /// Makes `calls` calls of `ratecore_table_check` from C, call `i` with key
    /// `keys[order[(start + i) & order_mask]]` (`key_lens` the lengths), and returns how
    /// many were admitted.
    ///
    /// # Safety
    /// `table` is a live handle; `order` holds `order_mask + 1` indices, each below the
    /// length of `keys` and `key_lens`; every `keys[k]` is readable for `key_lens[k]`
    /// bytes.
    #[allow(clippy::too_many_arguments)]
    pub fn ratecore_bench_c_table_checks(
        table: *const ratecore_table,
        keys: *const *const u8,
        key_lens: *const usize,
        order: *const u32,
        order_mask: usize,
        start: usize,
        now_ns: u64,
        calls: u64,
    ) -> u64;
}
