//! Typed errors: invalid quotas at construction, impossible costs at check time.

use core::fmt;

/// Why a quota (or a limiter built from it) was rejected at construction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum QuotaError {
    /// The limit is 0: nothing could ever be admitted.
    ZeroLimit,
    /// The period is 0 ns.
    ZeroPeriod,
    /// The GCRA burst is 0: nothing could ever be admitted.
    ZeroBurst,
    /// `period / limit` is below 1 ns: the emission interval would round to 0 ns.
    EmissionIntervalTooSmall {
        /// The requested limit.
        limit: u64,
        /// The requested period, in nanoseconds.
        period: u64,
    },
    /// `burst × emission interval` does not fit in 64 bits of nanoseconds.
    BurstOverflow,
    /// A strict sliding window needs at least one sub-window.
    ZeroSubWindows,
    /// More sub-windows than [`crate::sliding_strict::MAX_SUB_WINDOWS`], or more than the
    /// period has nanoseconds.
    TooManySubWindows,
    /// A caller-provided slot array does not have `sub_windows + 1` slots.
    StorageLength {
        /// Slots required.
        expected: usize,
        /// Slots provided.
        actual: usize,
    },
    /// The window state (window number over the whole `u64` time range plus its
    /// counters) does not fit in one 64-bit word for this limit and period. Use a longer
    /// period, a smaller limit, or GCRA.
    StateTooWide,
    /// A composite needs at least one limit.
    EmptyComposite,
    /// A composite combines at most [`crate::composite::MAX_LIMITS`] limits.
    TooManyLimits,
}

impl fmt::Display for QuotaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroLimit => f.write_str("quota limit must be at least 1"),
            Self::ZeroPeriod => f.write_str("quota period must be at least 1 ns"),
            Self::ZeroBurst => f.write_str("GCRA burst must be at least 1"),
            Self::EmissionIntervalTooSmall { limit, period } => write!(
                f,
                "{limit} per {period} ns gives an emission interval below 1 ns"
            ),
            Self::BurstOverflow => {
                f.write_str("burst times emission interval overflows 64-bit nanoseconds")
            }
            Self::ZeroSubWindows => f.write_str("a strict sliding window needs at least 1 sub-window"),
            Self::TooManySubWindows => f.write_str(
                "too many sub-windows (more than the maximum, or more than the period has nanoseconds)",
            ),
            Self::StorageLength { expected, actual } => write!(
                f,
                "strict window storage must hold {expected} slots, got {actual}"
            ),
            Self::StateTooWide => f.write_str(
                "window number and counters for this limit and period do not fit one 64-bit word",
            ),
            Self::EmptyComposite => f.write_str("a composite limiter needs at least one limit"),
            Self::TooManyLimits => f.write_str("a composite limiter combines at most 16 limits"),
        }
    }
}

/// Why a check could not be decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CheckError {
    /// The cost is larger than the limiter's capacity (its limit, or burst for GCRA): the
    /// request could never be admitted, at any time.
    CostExceedsLimit {
        /// The cost asked for.
        cost: u64,
        /// The most a single request may cost.
        limit: u64,
    },
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CostExceedsLimit { cost, limit } => write!(
                f,
                "cost {cost} exceeds the limit {limit}: the request could never be admitted"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for QuotaError {}

#[cfg(feature = "std")]
impl std::error::Error for CheckError {}

/// Why a shared backend (Redis) could not decide a check, so that its failure mode
/// (fail closed or open) answered instead. In-process checks never fault. Defined here,
/// not with the Redis backend, so that layers built without Redis name the same type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Fault {
    /// No reply (or no connection) within the backend's timeout
    /// (`RedisConfig::timeout`).
    Timeout,
    /// The backend is unreachable: connection refused or dropped, or a connect within
    /// the reconnect backoff.
    Unavailable,
    /// The backend answered with an error (out of memory, busy, loading, a key holding
    /// a foreign value, ...).
    Server,
    /// The backend's reply disagrees with the crate's own algorithm run on the state it
    /// read (a corrupted state, or a script from another version).
    Inconsistent,
    /// The write was not acknowledged by as many replicas as the backend must wait for
    /// (`RedisConfig::wait_replicas`) in time: a failover could lose it.
    Replication,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Timeout => "Redis did not answer in time",
            Self::Unavailable => "Redis is unavailable",
            Self::Server => "Redis answered with an error",
            Self::Inconsistent => "Redis's reply is inconsistent with the algorithm",
            Self::Replication => "Redis replicas did not acknowledge the write in time",
        })
    }
}
