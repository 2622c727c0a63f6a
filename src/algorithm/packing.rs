//! Packing a window number and its counters into one `u64` state word.
//!
//! Window limiters keep `(window number, counter...)` in a single atomic word so one CAS
//! updates them together. The window number is stored *whole* (not modulo anything): a
//! truncated number would alias after enough idle windows, and a time step backwards
//! could then look like a step forwards and reset the counters — silent over-admission.
//! So at construction we check that every window number the `u64` time range can produce
//! fits beside the counters, and reject the quota otherwise.

use super::divide::Divisor;
use crate::error::{CheckError, QuotaError};
use crate::quota::Quota;

/// What both window algorithms fix at construction: the quota, its period prepared for
/// `div`-free division (window numbers on every check), and the word's layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct WindowParams {
    pub(crate) limit: u64,
    pub(crate) period: u64,
    pub(crate) per_period: Divisor,
    pub(crate) layout: Layout,
}

impl WindowParams {
    /// The parameters for `quota` with `counters` counts beside the window number;
    /// `wide` gives the counts every bit the window numbers leave (see `Layout::widest`).
    ///
    /// # Errors
    /// [`QuotaError::StateTooWide`] if window numbers over the whole `u64` range and
    /// `counters` counts up to the limit do not fit one word.
    pub(crate) const fn new(quota: &Quota, counters: u32, wide: bool) -> Result<Self, QuotaError> {
        let max_window = u64::MAX / quota.period();
        let layout = if wide {
            Layout::widest(quota.limit(), counters, max_window)
        } else {
            Layout::new(quota.limit(), counters, max_window)
        };
        match layout {
            Some(layout) => Ok(Self {
                limit: quota.limit(),
                period: quota.period(),
                per_period: Divisor::of_validated(quota.period()),
                layout,
            }),
            None => Err(QuotaError::StateTooWide),
        }
    }

    /// Rejects a `cost` that no window could ever admit, before any state is read.
    ///
    /// # Errors
    /// [`CheckError::CostExceedsLimit`] if `cost > limit`.
    #[inline]
    pub(crate) const fn check_cost(&self, cost: u64) -> Result<(), CheckError> {
        if cost > self.limit {
            return Err(CheckError::CostExceedsLimit {
                cost,
                limit: self.limit,
            });
        }
        Ok(())
    }
}

/// A window algorithm's config (a struct holding its `WindowParams`), with its
/// constructors and layout accessor for `$counters` counts beside the window number, its
/// limiter's constructor, and its `WordState` (whose undo is the same for both: counts
/// are additive). Both window algorithms build, read and undo the same way, and `const
/// fn`s cannot come from a trait. The config provides `evaluate`, `uncharge` and
/// `window_of`.
macro_rules! window_config {
    ($(#[$doc:meta])* $config:ident, $counters:literal, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct $config {
            window: WindowParams,
        }

        impl $config {
            /// Parameters for `quota`.
            ///
            /// # Errors
            /// [`QuotaError::StateTooWide`] if window numbers over the whole `u64` range
            #[doc = concat!("and ", $what, " up to `limit` do not fit one word.")]
            pub const fn new(quota: &Quota) -> Result<Self, QuotaError> {
                Self::with_width(quota, false)
            }

            /// How the state word is laid out.
            #[cfg_attr(not(feature = "std"), allow(dead_code))]
            pub(crate) const fn layout(&self) -> Layout {
                self.window.layout
            }

            /// [`new`](Self::new), or with `wide` every bit the window numbers leave
            /// given to the counts, so that the same state word can be read with any other
            /// limit up to that width (a policy's per-client overrides run on their
            /// limit's slots).
            pub(crate) const fn with_width(quota: &Quota, wide: bool) -> Result<Self, QuotaError> {
                match WindowParams::new(quota, $counters, wide) {
                    Ok(window) => Ok(Self { window }),
                    Err(e) => Err(e),
                }
            }
        }

        impl WordLimiter<$config> {
            /// A limiter for `quota`; starts empty.
            ///
            /// # Errors
            #[doc = concat!("[`QuotaError::StateTooWide`] (see [`", stringify!($config), "::new`]).")]
            pub fn new(quota: Quota) -> Result<Self, QuotaError> {
                Ok(Self::with_config($config::new(&quota)?))
            }
        }

        impl WordState for $config {
            #[inline]
            fn evaluate(&self, word: u64, now: u64, cost: u64) -> Result<Outcome, CheckError> {
                $config::evaluate(self, word, now, cost)
            }

            fn uncharge(&self, word: u64, reservation: &Reservation) -> Option<u64> {
                // Untouched since our charge: the word before it is the exact inverse (it
                // also forgets the window our charge moved the word to, which subtracting
                // would keep, and which shows if the caller's clock then steps back).
                if word == reservation.tag {
                    return Some(reservation.aux);
                }
                // Otherwise counts are additive, so subtracting our cost from the window
                // we charged is exact whatever else was charged since; once the window is
                // gone so is the charge.
                $config::uncharge(self, word, self.window_of(reservation.tag), reservation.cost)
            }
        }
    };
}
pub(crate) use window_config;

/// Bits needed to hold every value in `0..=max`.
pub(crate) const fn bits_for(max: u64) -> u32 {
    u64::BITS - max.leading_zeros()
}

/// A layout: `counters` fields of `counter_bits` each in the low bits, the window number
/// above them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Layout {
    counter_bits: u32,
}

impl Layout {
    /// A layout for counters up to `max_count`, `counters` of them, below window numbers up
    /// to `max_window`; `None` if it does not fit 64 bits.
    pub(crate) const fn new(max_count: u64, counters: u32, max_window: u64) -> Option<Self> {
        let counter_bits = bits_for(max_count);
        let low_bits = counter_bits * counters;
        if low_bits >= u64::BITS {
            return None;
        }
        if bits_for(max_window) > u64::BITS - low_bits {
            return None;
        }
        Some(Self { counter_bits })
    }

    /// The widest layout for `counters` counters below window numbers up to
    /// `max_window`, with room for counts of at least `max_count`: every bit the window
    /// numbers leave goes to the counters. `None` if not even `max_count` fits.
    pub(crate) const fn widest(max_count: u64, counters: u32, max_window: u64) -> Option<Self> {
        let room = (u64::BITS - bits_for(max_window)) / counters;
        let counter_bits = if room > bits_for(max_count) {
            room
        } else {
            bits_for(max_count)
        };
        if counter_bits == 0 || counter_bits >= u64::BITS {
            return Self::new(max_count, counters, max_window);
        }
        Self::new((1u64 << counter_bits) - 1, counters, max_window)
    }

    /// The largest count a counter holds.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) const fn max_count(&self) -> u64 {
        self.mask()
    }

    const fn mask(&self) -> u64 {
        (1u64 << self.counter_bits) - 1
    }

    /// Counter `index` (0 = lowest bits).
    pub(crate) const fn counter(&self, word: u64, index: u32) -> u64 {
        (word >> (self.counter_bits * index)) & self.mask()
    }

    /// The window number of a word with `counters` counters.
    pub(crate) const fn window(&self, word: u64, counters: u32) -> u64 {
        word >> (self.counter_bits * counters)
    }

    /// A word with one counter.
    pub(crate) const fn pack1(&self, window: u64, count: u64) -> u64 {
        (window << self.counter_bits) | count
    }

    /// A word with two counters: `high` above `low`.
    pub(crate) const fn pack2(&self, window: u64, high: u64, low: u64) -> u64 {
        (window << (2 * self.counter_bits)) | (high << self.counter_bits) | low
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_for_edges() {
        assert_eq!(bits_for(0), 0);
        assert_eq!(bits_for(1000), 10);
        assert_eq!(bits_for(u64::MAX), 64);
        // Every power of two needs one bit more than the value just below it.
        for bits in 1..64 {
            let power = 1u64 << bits;
            assert_eq!(bits_for(power - 1), bits, "bits_for(2^{bits} - 1)");
            assert_eq!(bits_for(power), bits + 1, "bits_for(2^{bits})");
        }
    }

    #[test]
    fn layout_round_trips_extremes() {
        let layout = Layout::new(1000, 2, u64::MAX >> 20).expect("fits");
        let word = layout.pack2(u64::MAX >> 20, 1000, 999);
        assert_eq!(layout.window(word, 2), u64::MAX >> 20);
        assert_eq!(layout.counter(word, 1), 1000);
        assert_eq!(layout.counter(word, 0), 999);
        assert!(Layout::new(1000, 2, u64::MAX >> 19).is_none());
        assert!(Layout::new(u64::MAX, 1, 0).is_none());
    }
}
