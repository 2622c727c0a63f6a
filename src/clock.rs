//! Clocks for callers who do not manage time themselves (feature `std`).
//!
//! The hot path never reads a clock: pass `now` from one of these, or from your own
//! monotonic source (nginx's cached time, `CLOCK_MONOTONIC`, a simulated clock in tests).

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Monotonic nanoseconds since the clock was created, from [`Instant`].
///
/// Every limiter fed by one `MonotonicClock` sees consistent time. Processes sharing a
/// limiter state must instead share one system-wide clock (`CLOCK_MONOTONIC`).
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
