//! What a keyed table is built from: its limits, capacity, full-neighbourhood policy and
//! hash seed.

use core::fmt;

use crate::algorithm::sliding_strict::StrictConfig;
use crate::algorithm::Algorithm;
use crate::algorithm::WordLimit;
use crate::error::QuotaError;
use crate::quota::Quota;

/// The most limits one table applies per key (e.g. 5/s AND 20/min per client).
pub const MAX_TABLE_LIMITS: usize = 4;

/// The most slots per limit a table may have (2^32).
pub const MAX_CAPACITY: u64 = 1 << 32;

/// What a new key does when every slot of its neighbourhood holds an active key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum FullPolicy {
    /// Evict the slot whose key is closest to rest (its state soonest carries no
    /// information); counted in `evictions`. The default: a new key is always tracked.
    #[default]
    EvictClosestToRest = 0,
    /// Deny the new key until a slot comes to rest; counted in `full_denied`.
    Deny = 1,
    /// Admit the new key without tracking it; counted in `full_allowed`.
    Allow = 2,
}

impl FullPolicy {
    /// The policy stored as `code`, if any.
    #[must_use]
    pub const fn from_code(code: u32) -> Option<Self> {
        match code {
            0 => Some(Self::EvictClosestToRest),
            1 => Some(Self::Deny),
            2 => Some(Self::Allow),
            _ => None,
        }
    }
}

/// One limit a table applies to every key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LimitSpec {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// The quota.
    pub quota: Quota,
}

/// A limit's parameters as the table runs them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum TableLimit {
    /// A single-word algorithm: the state lives in the key's slot.
    Word(WordLimit),
    /// A strict window: the key's slot holds a generation, its ring lives beside.
    Strict(StrictConfig),
}

impl TableLimit {
    pub(crate) fn new(spec: &LimitSpec) -> Result<Self, QuotaError> {
        Self::build(spec, false)
    }

    /// With `wide`, window counters as wide as the window numbers allow
    /// ([`WordLimit::new_wide`]).
    pub(crate) fn build(spec: &LimitSpec, wide: bool) -> Result<Self, QuotaError> {
        let word = if wide {
            WordLimit::new_wide(spec.algorithm, &spec.quota)?
        } else {
            WordLimit::new(spec.algorithm, &spec.quota)?
        };
        if let Some(word) = word {
            return Ok(Self::Word(word));
        }
        StrictConfig::new(&spec.quota, spec.algorithm.sub_windows()).map(Self::Strict)
    }

    /// Ring cells per key (0 for single-word algorithms).
    pub(crate) const fn ring_len(&self) -> u64 {
        match self {
            Self::Word(_) => 0,
            Self::Strict(c) => c.slot_count() as u64,
        }
    }
}

/// Why a table could not be created or attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TableError {
    /// A limit's quota is invalid for its algorithm.
    Quota(QuotaError),
    /// No limits were given.
    NoLimits,
    /// More than [`MAX_TABLE_LIMITS`] limits.
    TooManyLimits,
    /// Capacity 0, or above [`MAX_CAPACITY`].
    BadCapacity,
    /// The platform's 128-bit atomics are not lock-free (they would not be atomic across
    /// processes, and would lock on the hot path).
    NotLockFree,
    /// The region is smaller than [`region_size`](crate::table::region::region_size) requires.
    RegionTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes given.
        actual: usize,
    },
    /// The region's start is not 64-byte aligned
    /// ([`REGION_ALIGN`](crate::table::region::REGION_ALIGN)), or the pointer is null.
    RegionMisaligned,
    /// The region does not start with ratecore's magic bytes: it was never initialised,
    /// or is something else.
    BadMagic,
    /// The region was laid out by a different (incompatible) ratecore version.
    UnsupportedVersion {
        /// The layout version found.
        found: u32,
    },
    /// The region's initialisation has not finished (or crashed half-way).
    NotReady,
    /// The header fails its checksum, or holds values no ratecore writes.
    CorruptHeader,
    /// The header was written by a build whose key hashing differs from this one:
    /// every process sharing a region must run the same ratecore build.
    HashMismatch,
    /// The system refused the memory the table needs.
    OutOfMemory,
}

impl From<QuotaError> for TableError {
    fn from(error: QuotaError) -> Self {
        Self::Quota(error)
    }
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Quota(e) => write!(f, "invalid limit: {e}"),
            Self::NoLimits => f.write_str("a table needs at least one limit"),
            Self::TooManyLimits => write!(f, "a table applies at most {MAX_TABLE_LIMITS} limits"),
            Self::BadCapacity => write!(f, "table capacity must be 1 to {MAX_CAPACITY} slots"),
            Self::NotLockFree => f.write_str("128-bit atomics are not lock-free on this CPU"),
            Self::RegionTooSmall { needed, actual } => {
                write!(f, "region holds {actual} bytes, the table needs {needed}")
            }
            Self::RegionMisaligned => f.write_str("region must be non-null and 64-byte aligned"),
            Self::BadMagic => f.write_str("region is not an initialised ratecore table"),
            Self::UnsupportedVersion { found } => {
                write!(
                    f,
                    "region layout version {found} is not supported by this build"
                )
            }
            Self::NotReady => f.write_str("region initialisation has not completed"),
            Self::CorruptHeader => f.write_str("region header is corrupt"),
            Self::OutOfMemory => f.write_str("the system refused the memory the table needs"),
            Self::HashMismatch => {
                f.write_str("region was created by a ratecore build that hashes keys differently")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for TableError {}

/// Everything a table is built from. Construct with [`TableConfig::new`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TableConfig {
    pub(crate) specs: [Option<LimitSpec>; MAX_TABLE_LIMITS],
    pub(crate) limits: [Option<TableLimit>; MAX_TABLE_LIMITS],
    pub(crate) count: usize,
    pub(crate) capacity: u64,
    pub(crate) policy: FullPolicy,
    pub(crate) seed: [u64; 4],
    /// Window counters as wide as the window numbers allow (owned tables only: a
    /// region's header does not record it).
    pub(crate) wide: bool,
}

impl TableConfig {
    /// A table of at least `capacity` keys per limit (rounded up to a power of two, at
    /// least 8) applying every limit in `limits` to each key.
    ///
    /// With feature `std` the hash seed is random; without it, it is fixed until you call
    /// [`with_seed`](Self::with_seed) — do, or attackers can aim keys at one neighbourhood.
    ///
    /// # Errors
    /// [`TableError::NoLimits`], [`TableError::TooManyLimits`],
    /// [`TableError::BadCapacity`], or [`TableError::Quota`].
    pub fn new(capacity: u64, limits: &[LimitSpec]) -> Result<Self, TableError> {
        if limits.is_empty() {
            return Err(TableError::NoLimits);
        }
        if limits.len() > MAX_TABLE_LIMITS {
            return Err(TableError::TooManyLimits);
        }
        if capacity == 0 || capacity > MAX_CAPACITY {
            return Err(TableError::BadCapacity);
        }
        let mut specs = [None; MAX_TABLE_LIMITS];
        let mut words = [None; MAX_TABLE_LIMITS];
        for (index, spec) in limits.iter().enumerate() {
            words[index] = Some(TableLimit::new(spec)?);
            specs[index] = Some(*spec);
        }
        let config = Self {
            specs,
            limits: words,
            count: limits.len(),
            capacity: capacity.next_power_of_two().max(8),
            policy: FullPolicy::default(),
            seed: default_seed(),
            wide: false,
        };
        if config.total_slots().is_none() {
            return Err(TableError::BadCapacity);
        }
        Ok(config)
    }

    /// The same limits with window counters as wide as the window numbers allow, so a
    /// key's state reads the same under another limit of the same algorithm and period
    /// (a policy's per-client overrides, [`super::Table::limit_with_quota`]).
    ///
    /// # Errors
    /// What the algorithms reject (never, for quotas `new` accepted).
    #[cfg(feature = "std")]
    pub(crate) fn with_wide_counters(mut self) -> Result<Self, TableError> {
        for (limit, spec) in self.limits.iter_mut().zip(self.specs) {
            if let Some(spec) = spec {
                *limit = Some(TableLimit::build(&spec, true)?);
            }
        }
        self.wide = true;
        Ok(self)
    }

    /// The same table with another full-neighbourhood policy.
    #[must_use]
    pub const fn with_policy(mut self, policy: FullPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The same table with a chosen hash seed (tests, or `no_std` callers bringing their
    /// own randomness).
    #[must_use]
    pub const fn with_seed(mut self, seed: [u64; 4]) -> Self {
        self.seed = seed;
        self
    }

    /// Slots per limit (a power of two).
    #[must_use]
    pub const fn capacity(&self) -> u64 {
        self.capacity
    }

    /// The full-neighbourhood policy.
    #[must_use]
    pub const fn policy(&self) -> FullPolicy {
        self.policy
    }

    /// How many limits the table applies to every key.
    #[must_use]
    pub const fn limit_count(&self) -> usize {
        self.count
    }

    /// The limits, in order.
    pub fn limits(&self) -> impl Iterator<Item = &LimitSpec> {
        self.specs.iter().flatten()
    }

    /// Slots (16 bytes each) one limit needs: a slot per key, plus its ring for a strict
    /// window.
    pub(crate) fn slots_for(&self, limit: &TableLimit) -> Option<u64> {
        self.capacity.checked_mul(1 + limit.ring_len())
    }

    /// Total 16-byte slots over all limits; `None` if it overflows.
    pub(crate) fn total_slots(&self) -> Option<u64> {
        self.limits
            .iter()
            .flatten()
            .try_fold(0u64, |sum, limit| sum.checked_add(self.slots_for(limit)?))
    }
}

#[cfg(feature = "std")]
fn default_seed() -> [u64; 4] {
    use std::hash::{BuildHasher, RandomState};
    // std's RandomState is seeded from the OS once per process and varied per instance:
    // four hashes of it give four independent random words without a new dependency.
    let state = RandomState::new();
    core::array::from_fn(|i| state.hash_one(i))
}

#[cfg(not(feature = "std"))]
const fn default_seed() -> [u64; 4] {
    [
        0x243f_6a88_85a3_08d3,
        0x1319_8a2e_0370_7344,
        0xa409_3822_299f_31d0,
        0x082e_fa98_ec4e_6c89,
    ]
}
