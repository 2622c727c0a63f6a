//! The layer's two times: monotonic nanoseconds, which in-process checks decide with, and
//! Unix-epoch nanoseconds, which absolute reset headers (Uphold's epoch seconds, Switch's
//! ISO 8601) are rendered from and Redis checks decide with (every host sharing a Redis
//! must pass time on one epoch). Tests inject both.

use ratecore::clock::{unix_time_nanos, MonotonicClock};

/// Where the layer reads time: once per request, each reading the check needs (an
/// in-process check reads the wall clock only for a style with absolute resets).
pub trait Clock: Send + Sync + 'static {
    /// Monotonic nanoseconds since an origin the clock chooses; never goes backwards
    /// (a value earlier than one already seen is treated as the latest seen anyway).
    fn monotonic_nanos(&self) -> u64;
    /// Wall-clock nanoseconds since the Unix epoch: for rendering absolute resets, and
    /// the time the `Redis` backend decides with (hosts sharing a Redis share one epoch).
    fn unix_nanos(&self) -> u64;
}

/// The process's clocks: [`MonotonicClock`] from the layer's creation, and the system's
/// wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock {
    monotonic: MonotonicClock,
}

impl SystemClock {
    /// A clock whose monotonic time 0 is now.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

impl Clock for SystemClock {
    fn monotonic_nanos(&self) -> u64 {
        self.monotonic.now()
    }

    fn unix_nanos(&self) -> u64 {
        unix_time_nanos()
    }
}

/// One reading of a [`Clock`], taken when a request arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    /// Monotonic nanoseconds: what the policy decides with.
    pub monotonic: u64,
    /// Unix-epoch nanoseconds: what absolute reset headers are rendered from, and what
    /// the `Redis` backend decides with.
    pub unix: u64,
}

impl Now {
    /// Reads `clock`.
    pub fn read(clock: &dyn Clock) -> Self {
        Self {
            monotonic: clock.monotonic_nanos(),
            unix: clock.unix_nanos(),
        }
    }
}
