//! [`Algorithm`]: which limiting algorithm a limit runs, chosen at run time.

/// Which algorithm a limit runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// [`crate::Gcra`]: smooth rate with a burst (the quota's `burst`).
    Gcra,
    /// [`crate::FixedWindow`]: count per aligned window.
    FixedWindow,
    /// [`crate::SlidingWindow`]: Cloudflare's two-window weighted estimate.
    SlidingWindow,
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
            Self::SlidingWindow => 3,
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
            3 => Some(Self::SlidingWindow),
            4 => Some(Self::SlidingWindowStrict { sub_windows }),
            _ => None,
        }
    }
}
