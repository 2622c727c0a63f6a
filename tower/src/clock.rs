//! The layer's two times: monotonic nanoseconds, which in-process checks decide with, and
//! Unix-epoch nanoseconds, which absolute reset headers (Uphold's epoch seconds, Switch's
//! ISO 8601) are rendered from and Redis checks decide with (every host sharing a Redis
//! must pass time on one epoch). Tests inject both.

use std::sync::OnceLock;

use ratecore::clock::unix_time_nanos;

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

/// The process's clocks: monotonic time from the CPU's time-stamp counter through the
/// `quanta` crate, counted from the clock's creation, and the system's wall clock.
///
/// `quanta` reads the counter only where it ticks at a constant rate (an invariant or
/// constant TSC, which it checks with `cpuid`), scaled to nanoseconds by a calibration
/// against the OS's monotonic clock made once per process, the first time a clock is
/// created (a few milliseconds at most); elsewhere it reads the OS's monotonic clock
/// (`clock_gettime`). The readings of one process come from one `quanta` clock, which
/// never goes backwards. A read costs a few instructions instead of a `clock_gettime`
/// call, on every request.
#[derive(Clone, Copy, Debug)]
pub struct SystemClock {
    origin: quanta::Instant,
}

/// The one `quanta` clock every [`SystemClock`] reads: its readings are monotonic
/// across the clones of one clock, so the process keeps a single one.
fn tsc() -> &'static quanta::Clock {
    static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();
    CLOCK.get_or_init(quanta::Clock::new)
}

impl SystemClock {
    /// A clock whose monotonic time 0 is now.
    #[must_use]
    pub fn new() -> Self {
        Self {
            origin: tsc().now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn monotonic_nanos(&self) -> u64 {
        let elapsed = tsc().now().saturating_duration_since(self.origin);
        // u64 arithmetic rather than `as_nanos()`'s u128: the same value (saturating after
        // 584 years), a few instructions less on every read.
        elapsed
            .as_secs()
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::from(elapsed.subsec_nanos()))
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

#[cfg(test)]
mod tests {
    use super::{Clock, SystemClock};

    /// Two clocks read one `quanta` clock: neither's readings ever go backwards.
    #[test]
    fn system_clock_never_goes_backwards() {
        let first = SystemClock::new();
        let second = SystemClock::new();
        let mut previous = (first.monotonic_nanos(), second.monotonic_nanos());
        for _ in 0..10_000 {
            let now = (first.monotonic_nanos(), second.monotonic_nanos());
            assert!(
                now.0 >= previous.0 && now.1 >= previous.1,
                "{now:?} after {previous:?}"
            );
            previous = now;
        }
    }
}
