//! The status every fallible function returns, and its message.
//!
//! Values are explicit, grouped by area, and never reused or renumbered: a value
//! retired from use keeps its number. Each group keeps a catch-all (its first value) for
//! errors a newer core may add before this enum names them.

use std::ffi::{c_char, CStr};

use ratecore::{CheckError, QuotaError, TableError};

use crate::panic::boundary;

/// What a ratecore function did. `RATECORE_STATUS_OK` (0) is success; everything else is
/// an error, and outputs were not written.
///
/// Ranges: 1–99 calling errors; 100–199 invalid quotas and limit sets; 200–299 check
/// errors; 300–399 tables and shared regions; 400–499 policies; 500–599 header
/// rendering.
///
/// In C the type is a `uint32_t`: compare with the `RATECORE_STATUS_*` constants, and
/// expect values a newer library may add.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ratecore_status {
    /// Success.
    Ok = 0,
    /// A required pointer argument was NULL.
    NullPointer = 1,
    /// An argument is out of range: a length above `PTRDIFF_MAX`, a pointer not aligned for
    /// its type, or a quota field its algorithm does not use set to a non-default value.
    InvalidArgument = 2,
    /// An output buffer is shorter than the result.
    BufferTooSmall = 3,
    /// The library panicked (a bug in ratecore); the call had no effect on its outputs.
    /// The handle remains usable.
    Panic = 4,
    /// `ratecore_quota.algorithm` is not a `RATECORE_ALGORITHM_*` value.
    UnknownAlgorithm = 5,
    /// The full-neighbourhood policy is not a `RATECORE_FULL_POLICY_*` value.
    UnknownFullPolicy = 6,
    /// The system refused the memory a table needs (see `ratecore_table_region_size` for
    /// how much that is).
    OutOfMemory = 7,

    /// The quota is invalid (a reason this library version does not name yet).
    InvalidQuota = 100,
    /// The quota's limit is 0.
    ZeroLimit = 101,
    /// The quota's period is 0 ns.
    ZeroPeriod = 102,
    /// The GCRA burst is 0.
    ZeroBurst = 103,
    /// The period is shorter than the limit (less than 1 ns per request).
    EmissionIntervalTooSmall = 104,
    /// `burst × (period / limit)` overflows 64-bit nanoseconds.
    BurstOverflow = 105,
    /// A strict sliding window needs at least 1 sub-window.
    ZeroSubWindows = 106,
    /// More sub-windows than `RATECORE_MAX_SUB_WINDOWS`, or than the period has
    /// nanoseconds.
    TooManySubWindows = 107,
    /// A strict window's storage has the wrong length (not produced by this API).
    StorageLength = 108,
    /// The window state for this limit and period does not fit one 64-bit word: use a
    /// longer period, a smaller limit, or GCRA.
    StateTooWide = 109,
    /// No quotas were given (a limiter or table needs at least one).
    NoLimits = 110,
    /// Too many quotas: at most `RATECORE_MAX_LIMITER_LIMITS` for a limiter,
    /// `RATECORE_MAX_TABLE_LIMITS` for a table.
    TooManyLimits = 111,

    /// The check failed (a reason this library version does not name yet).
    CheckError = 200,
    /// The cost exceeds the capacity (the limit, or the burst for GCRA): such a request
    /// could never be admitted. A caller bug, not a rate-limit decision.
    CostExceedsLimit = 201,

    /// The table could not be created or attached (a reason this library version does not
    /// name yet).
    TableError = 300,
    /// Table capacity is 0, above `RATECORE_MAX_TABLE_CAPACITY`, or its memory size
    /// overflows.
    BadCapacity = 301,
    /// 128-bit atomics are not lock-free on this CPU, so tables are unavailable.
    NotLockFree = 302,
    /// The region is smaller than `ratecore_table_region_size` says.
    RegionTooSmall = 303,
    /// The region does not start on a `RATECORE_REGION_ALIGN`-byte boundary.
    RegionMisaligned = 304,
    /// The region does not hold an initialised ratecore table.
    BadMagic = 305,
    /// The region was laid out by an incompatible ratecore version.
    UnsupportedVersion = 306,
    /// The region's initialisation has not finished (or crashed half-way).
    NotReady = 307,
    /// The region's header fails its checksum or holds impossible values.
    CorruptHeader = 308,
    /// The region was initialised by a ratecore build that hashes keys differently:
    /// every process sharing a region must run the same build.
    HashMismatch = 309,

    /// The policy could not be built (a reason this library version does not name yet).
    PolicyError = 400,
    /// A configuration (a policy, or a server directive's parameters) is malformed; the
    /// error text says where and why.
    InvalidConfig = 401,
    /// The policy file could not be read.
    ConfigUnreadable = 402,
    /// The policy has no limit of that name in that rule.
    UnknownLimit = 403,
    /// An override is invalid for its limit: its attribute name, its quota (the limit's
    /// own rules apply, such as a limit of at least 1), or a burst on a limit that is not
    /// GCRA; the error text says why.
    InvalidOverride = 404,

    /// Rendering failed (a reason this library version does not name yet).
    RenderError = 500,
    /// The header style is not a `RATECORE_HEADER_STYLE_*` value.
    UnknownHeaderStyle = 501,
    /// A string argument is not valid UTF-8.
    InvalidUtf8 = 502,
}

impl ratecore_status {
    /// Every status, in value order.
    #[must_use]
    pub const fn all() -> [Self; 40] {
        [
            Self::Ok,
            Self::NullPointer,
            Self::InvalidArgument,
            Self::BufferTooSmall,
            Self::Panic,
            Self::UnknownAlgorithm,
            Self::UnknownFullPolicy,
            Self::OutOfMemory,
            Self::InvalidQuota,
            Self::ZeroLimit,
            Self::ZeroPeriod,
            Self::ZeroBurst,
            Self::EmissionIntervalTooSmall,
            Self::BurstOverflow,
            Self::ZeroSubWindows,
            Self::TooManySubWindows,
            Self::StorageLength,
            Self::StateTooWide,
            Self::NoLimits,
            Self::TooManyLimits,
            Self::CheckError,
            Self::CostExceedsLimit,
            Self::TableError,
            Self::BadCapacity,
            Self::NotLockFree,
            Self::RegionTooSmall,
            Self::RegionMisaligned,
            Self::BadMagic,
            Self::UnsupportedVersion,
            Self::NotReady,
            Self::CorruptHeader,
            Self::HashMismatch,
            Self::PolicyError,
            Self::InvalidConfig,
            Self::ConfigUnreadable,
            Self::UnknownLimit,
            Self::InvalidOverride,
            Self::RenderError,
            Self::UnknownHeaderStyle,
            Self::InvalidUtf8,
        ]
    }

    /// The status with numeric value `code`, if this version knows it.
    #[must_use]
    pub fn from_code(code: u32) -> Option<Self> {
        Self::all().into_iter().find(|s| *s as u32 == code)
    }

    /// A short English description, NUL-terminated.
    #[must_use]
    pub const fn message(self) -> &'static CStr {
        match self {
            Self::Ok => c"success",
            Self::NullPointer => c"a required pointer argument was NULL",
            Self::InvalidArgument => {
                c"invalid argument (length above PTRDIFF_MAX, misaligned pointer, or a quota field its algorithm does not use)"
            }
            Self::BufferTooSmall => c"output buffer too small",
            Self::Panic => c"internal error: ratecore panicked (please report this bug)",
            Self::UnknownAlgorithm => c"unknown algorithm (expected a RATECORE_ALGORITHM_* value)",
            Self::UnknownFullPolicy => {
                c"unknown full-neighbourhood policy (expected a RATECORE_FULL_POLICY_* value)"
            }
            Self::OutOfMemory => c"out of memory: the system refused the memory the table needs",
            Self::InvalidQuota => c"invalid quota",
            Self::ZeroLimit => c"quota limit must be at least 1",
            Self::ZeroPeriod => c"quota period must be at least 1 ns",
            Self::ZeroBurst => c"GCRA burst must be at least 1",
            Self::EmissionIntervalTooSmall => {
                c"quota period is shorter than its limit (emission interval below 1 ns)"
            }
            Self::BurstOverflow => c"burst times emission interval overflows 64-bit nanoseconds",
            Self::ZeroSubWindows => c"a strict sliding window needs at least 1 sub-window",
            Self::TooManySubWindows => {
                c"too many sub-windows (more than RATECORE_MAX_SUB_WINDOWS, or than the period has nanoseconds)"
            }
            Self::StorageLength => c"strict window storage has the wrong number of slots",
            Self::StateTooWide => {
                c"window state for this limit and period does not fit one 64-bit word"
            }
            Self::NoLimits => c"at least one quota is required",
            Self::TooManyLimits => {
                c"too many quotas (limiter: RATECORE_MAX_LIMITER_LIMITS, table: RATECORE_MAX_TABLE_LIMITS)"
            }
            Self::CheckError => c"the check failed",
            Self::CostExceedsLimit => {
                c"cost exceeds the limit (or GCRA burst): the request could never be admitted"
            }
            Self::TableError => c"the table could not be created or attached",
            Self::BadCapacity => {
                c"table capacity must be 1 to RATECORE_MAX_TABLE_CAPACITY and its size must fit memory"
            }
            Self::NotLockFree => c"128-bit atomics are not lock-free on this CPU",
            Self::RegionTooSmall => c"region is smaller than ratecore_table_region_size requires",
            Self::RegionMisaligned => {
                c"region must start on a RATECORE_REGION_ALIGN-byte boundary"
            }
            Self::BadMagic => c"region is not an initialised ratecore table",
            Self::UnsupportedVersion => c"region layout version is not supported by this build",
            Self::NotReady => c"region initialisation has not completed",
            Self::CorruptHeader => c"region header is corrupt",
            Self::HashMismatch => {
                c"region was created by a ratecore build that hashes keys differently"
            }
            Self::PolicyError => c"the policy could not be built",
            Self::InvalidConfig => c"the configuration (a policy, or a directive's parameters) is malformed",
            Self::ConfigUnreadable => c"the policy file could not be read",
            Self::UnknownLimit => c"the policy has no limit of that name in that rule",
            Self::InvalidOverride => c"the override is invalid for its limit",
            Self::RenderError => c"rendering failed",
            Self::UnknownHeaderStyle => c"unknown header style",
            Self::InvalidUtf8 => c"a string argument is not valid UTF-8",
        }
    }
}

impl From<QuotaError> for ratecore_status {
    fn from(error: QuotaError) -> Self {
        match error {
            QuotaError::ZeroLimit => Self::ZeroLimit,
            QuotaError::ZeroPeriod => Self::ZeroPeriod,
            QuotaError::ZeroBurst => Self::ZeroBurst,
            QuotaError::EmissionIntervalTooSmall { .. } => Self::EmissionIntervalTooSmall,
            QuotaError::BurstOverflow => Self::BurstOverflow,
            QuotaError::ZeroSubWindows => Self::ZeroSubWindows,
            QuotaError::TooManySubWindows => Self::TooManySubWindows,
            QuotaError::StorageLength { .. } => Self::StorageLength,
            QuotaError::StateTooWide => Self::StateTooWide,
            QuotaError::EmptyComposite => Self::NoLimits,
            QuotaError::TooManyLimits => Self::TooManyLimits,
            _ => Self::InvalidQuota,
        }
    }
}

impl From<CheckError> for ratecore_status {
    fn from(error: CheckError) -> Self {
        match error {
            CheckError::CostExceedsLimit { .. } => Self::CostExceedsLimit,
            _ => Self::CheckError,
        }
    }
}

impl From<TableError> for ratecore_status {
    fn from(error: TableError) -> Self {
        match error {
            TableError::Quota(quota) => quota.into(),
            TableError::NoLimits => Self::NoLimits,
            TableError::TooManyLimits => Self::TooManyLimits,
            TableError::BadCapacity => Self::BadCapacity,
            TableError::NotLockFree => Self::NotLockFree,
            TableError::RegionTooSmall { .. } => Self::RegionTooSmall,
            TableError::RegionMisaligned => Self::RegionMisaligned,
            TableError::BadMagic => Self::BadMagic,
            TableError::UnsupportedVersion { .. } => Self::UnsupportedVersion,
            TableError::NotReady => Self::NotReady,
            TableError::CorruptHeader => Self::CorruptHeader,
            TableError::HashMismatch => Self::HashMismatch,
            TableError::OutOfMemory => Self::OutOfMemory,
            _ => Self::TableError,
        }
    }
}

/// A static, NUL-terminated English description of `status` (any value: unknown values
/// get "unknown status"). Never NULL; the string lives as long as the program.
///
/// `status` is a plain `uint32_t` so that any value, including ones from a newer library,
/// is safe to pass.
///
/// Thread-safe.
#[no_mangle]
pub extern "C" fn ratecore_status_message(status: u32) -> *const c_char {
    boundary(c"internal error: ratecore panicked".as_ptr(), || {
        ratecore_status::from_code(status)
            .map_or(c"unknown status", ratecore_status::message)
            .as_ptr()
    })
}
