//! Test-only exports (cargo feature `test-hooks`): they let the C tests prove properties
//! of the boundary that no valid input should ever reach.

use crate::ffi::output;
use crate::panic::guard;
use crate::quota::ratecore_decision;
use crate::status::ratecore_status;

/// TEST ONLY (built with the cargo feature `test-hooks`; declared when
/// `RATECORE_TEST_HOOKS` is defined). Panics inside the library, after checking
/// `decision_out` and before writing it, to prove that a panic comes back as
/// `RATECORE_STATUS_PANIC`, leaves outputs unwritten, and never unwinds into C.
///
/// Errors: `NULL_POINTER`; otherwise always `PANIC`.
///
/// # Safety
/// `decision_out` is NULL or valid for writing one `ratecore_decision`.
#[no_mangle]
pub unsafe extern "C" fn ratecore_test_panic(
    decision_out: *mut ratecore_decision,
) -> ratecore_status {
    guard(|| {
        // SAFETY: valid for one write during this call, or NULL (caller's promise).
        let out = unsafe { output(decision_out)? };
        let reason = std::hint::black_box("ratecore_test_panic: deliberate panic (test hook)");
        if !reason.is_empty() {
            panic!("{reason}");
        }
        out.write(ratecore_decision::default());
        Ok(())
    })
}
