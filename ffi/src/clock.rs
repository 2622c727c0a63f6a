//! The clocks C callers pass as `now`: the system-wide monotonic clock that processes
//! sharing a region agree on, and the wall clock that header rendering needs.

use crate::panic::boundary;

/// Nanoseconds on `CLOCK_MONOTONIC`, the clock every process on the machine reads alike:
/// the `now` to pass to tables shared through a region (the nginx module reads the same
/// clock). Its origin is unspecified; it never jumps with the wall clock. 0 on a
/// platform without `CLOCK_MONOTONIC` (not Unix).
///
/// Thread-safe; no allocation.
#[no_mangle]
pub extern "C" fn ratecore_monotonic_now_ns() -> u64 {
    #[cfg(unix)]
    return boundary(0, ratecore::clock::system_monotonic_nanos);
    #[cfg(not(unix))]
    0
}

/// Nanoseconds since the Unix epoch on the wall clock: for `unix_now_ns` when rendering
/// absolute reset times, never as a check's `now` (the wall clock can jump). 0 if the
/// clock reads before 1970.
///
/// Thread-safe; no allocation.
#[no_mangle]
pub extern "C" fn ratecore_unix_now_ns() -> u64 {
    boundary(0, ratecore::clock::unix_time_nanos)
}
