//! The four limiting algorithms, one file each, and [`Algorithm`], the run-time choice
//! among them.
//!
//! - [`gcra`], [`fixed_window`] and [`sliding_approx`] keep a key's whole state in one
//!   `u64` and share the single-word machinery in `word` (one CAS loop); `WordLimit`
//!   picks one of them at run time.
//! - [`sliding_strict`] keeps a ring of sub-window slots and has its own protocol.
//! - `divide` (division by a quota constant without `div`) and `packing` (a window number
//!   and counters in one word) are the arithmetic they share.

mod divide;
pub mod fixed_window;
pub mod gcra;
pub(crate) mod packing;
pub mod sliding_approx;
pub mod sliding_strict;
pub(crate) mod word;
mod word_limit;

pub(crate) use word_limit::WordLimit;

/// Which algorithm a limit runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// [`crate::Gcra`]: smooth rate with a burst (the quota's `burst`).
    Gcra,
    /// [`crate::FixedWindow`]: count per aligned window.
    FixedWindow,
    /// [`crate::SlidingWindowApprox`]: Cloudflare's two-window weighted estimate.
    SlidingWindowApprox,
    /// [`crate::SlidingWindowStrict`] with this many sub-windows per period.
    SlidingWindowStrict {
        /// Sub-windows per period (`N`; the ring has `N + 1` slots).
        sub_windows: u32,
    },
}

impl Algorithm {
    /// A stable number for storage (shared-region headers, the C ABI).
    #[must_use]
    pub const fn code(&self) -> u32 {
        match self {
            Self::Gcra => 1,
            Self::FixedWindow => 2,
            Self::SlidingWindowApprox => 3,
            Self::SlidingWindowStrict { .. } => 4,
        }
    }

    /// Sub-windows (0 for algorithms without any).
    #[must_use]
    pub const fn sub_windows(&self) -> u32 {
        match self {
            Self::SlidingWindowStrict { sub_windows } => *sub_windows,
            _ => 0,
        }
    }

    /// The algorithm stored as `code` (with `sub_windows` for the strict window).
    #[must_use]
    pub const fn from_code(code: u32, sub_windows: u32) -> Option<Self> {
        match code {
            1 => Some(Self::Gcra),
            2 => Some(Self::FixedWindow),
            3 => Some(Self::SlidingWindowApprox),
            4 => Some(Self::SlidingWindowStrict { sub_windows }),
            _ => None,
        }
    }

    /// The earlier name of [`Algorithm::SlidingWindowApprox`], which let the approximate
    /// window pass for the exact one.
    #[deprecated(
        note = "renamed `Algorithm::SlidingWindowApprox` (the exact window is `SlidingWindowStrict`)"
    )]
    #[allow(non_upper_case_globals)]
    pub const SlidingWindow: Self = Self::SlidingWindowApprox;
}

#[cfg(test)]
mod tests {
    use super::Algorithm;

    /// Code written against the earlier names still builds (with a deprecation warning)
    /// and means the same thing, in expressions, patterns and types.
    #[test]
    #[allow(deprecated)]
    fn the_earlier_names_still_resolve() {
        assert_eq!(Algorithm::SlidingWindow, Algorithm::SlidingWindowApprox);
        assert_eq!(Algorithm::SlidingWindow.code(), 3);
        assert!(matches!(
            Algorithm::SlidingWindowApprox,
            Algorithm::SlidingWindow
        ));
        let quota = crate::Quota::new(10, 1_000_000_000).unwrap();
        let limiter: crate::SlidingWindow = crate::SlidingWindowApprox::new(quota).unwrap();
        assert!(crate::RateLimiter::check(&limiter, 0, 1).unwrap().allowed);
    }
}
