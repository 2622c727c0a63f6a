//! Clocks for callers who do not manage time themselves (feature `std`).
//!
//! The hot path never reads a clock: pass `now` from one of these, or from your own
//! monotonic source (nginx's cached time, `CLOCK_MONOTONIC`, a simulated clock in tests).

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Monotonic nanoseconds since the clock was created, from [`Instant`].
///
/// Every limiter fed by one `MonotonicClock` sees consistent time. Processes sharing a
/// limiter state (a table in a shared region) must instead share one system-wide clock:
/// [`system_monotonic_nanos`].
#[derive(Clone, Copy, Debug)]
pub struct MonotonicClock {
    origin: Instant,
}

impl MonotonicClock {
    /// A clock whose time 0 is now.
    #[must_use]
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }

    /// Nanoseconds since creation (saturating after 584 years).
    #[inline]
    #[must_use]
    pub fn now(&self) -> u64 {
        let elapsed = self.origin.elapsed();
        // u64 arithmetic rather than `as_nanos()`'s u128: the same value (saturating),
        // a few instructions less on every read.
        elapsed
            .as_secs()
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::from(elapsed.subsec_nanos()))
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

/// Wall-clock nanoseconds since the Unix epoch: for rendering absolute reset times
/// (epoch seconds, ISO 8601), never for deciding — wall time can jump.
#[must_use]
pub fn unix_time_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Nanoseconds on the system-wide monotonic clock, `CLOCK_MONOTONIC`: the clock every
/// process on the machine reads alike, so the one to pass to tables that processes share
/// through a region (the nginx module reads it too). Its origin is unspecified (usually
/// the boot); it never jumps with the wall clock. Unix only.
#[cfg(unix)]
#[must_use]
pub fn system_monotonic_nanos() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    // Both fields are non-negative for CLOCK_MONOTONIC; 0 rather than a panic otherwise.
    u64::try_from(now.tv_sec)
        .unwrap_or(0)
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::try_from(now.tv_nsec).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    /// Never backwards, and past the origin. (That it is `CLOCK_MONOTONIC` exactly is
    /// checked from C, between two `clock_gettime` reads: `tests/c/test_clock.c`.)
    #[cfg(unix)]
    #[test]
    fn system_monotonic_never_goes_backwards() {
        let mut previous = super::system_monotonic_nanos();
        assert!(previous > 0);
        for _ in 0..10_000 {
            let now = super::system_monotonic_nanos();
            assert!(now >= previous);
            previous = now;
        }
    }
}
