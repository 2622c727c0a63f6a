//! The panic boundary: every exported body runs inside `boundary` (or `guard`), so a
//! Rust panic becomes `RATECORE_STATUS_PANIC` (or a documented fallback value) instead of
//! unwinding into C, which would abort the process.
//!
//! The handles stay usable after a panic: every piece of shared state ratecore keeps is an
//! atomic word that is valid at every instant, so no invariant can be left half-updated.
//! That is why asserting unwind safety is sound here.

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::status::ratecore_status;

/// Runs `body`, turning a panic into `fallback`.
///
/// Always inlined: out of line, every exported check called it through a closure whose
/// captures went through the stack, and it was the largest single cost a C caller paid
/// (perf of the `ffi` bench's loop compiled from C, `benches/ffi.rs`).
#[inline(always)]
pub(crate) fn boundary<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(payload) => {
            // Dropping a payload may itself panic (a payload type with a panicking Drop):
            // contain that too, and forget its own payload rather than risk a third.
            if let Err(nested) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
                std::mem::forget(nested);
            }
            fallback
        }
    }
}

/// Runs a status-returning `body`: `Ok(())` is `RATECORE_STATUS_OK`, `Err(status)` that
/// status, and a panic `RATECORE_STATUS_PANIC`. Always inlined, as `boundary` is.
#[inline(always)]
pub(crate) fn guard(body: impl FnOnce() -> Result<(), ratecore_status>) -> ratecore_status {
    boundary(ratecore_status::Panic, || match body() {
        Ok(()) => ratecore_status::Ok,
        Err(status) => status,
    })
}
