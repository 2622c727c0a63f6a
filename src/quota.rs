//! Quotas: `limit` requests per `period`, plus a burst for GCRA.

use crate::error::QuotaError;

const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// `limit` requests per `period` nanoseconds, plus a `burst` that only GCRA uses.
///
/// Construction validates everything once, so checks never meet a zero divisor or an
/// overflowing product:
/// - `limit`, `period` and `burst` are at least 1;
/// - the emission interval `T = ceil(period / limit)` is at least 1 ns (`period >= limit`);
///   rounding *up* means GCRA never runs faster than the quota;
/// - `burst × T` fits in a `u64` of nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Quota {
    limit: u64,
    period: u64,
    burst: u64,
    emission_interval: u64,
}

impl Quota {
    /// `limit` requests per `period_nanos` nanoseconds, burst = limit.
    ///
    /// # Errors
    /// [`QuotaError::ZeroLimit`], [`QuotaError::ZeroPeriod`],
    /// [`QuotaError::EmissionIntervalTooSmall`] or [`QuotaError::BurstOverflow`].
    pub const fn new(limit: u64, period_nanos: u64) -> Result<Self, QuotaError> {
        if limit == 0 {
            return Err(QuotaError::ZeroLimit);
        }
        if period_nanos == 0 {
            return Err(QuotaError::ZeroPeriod);
        }
        if period_nanos < limit {
            return Err(QuotaError::EmissionIntervalTooSmall {
                limit,
                period: period_nanos,
            });
        }
        let emission_interval = period_nanos.div_ceil(limit);
        let quota = Self {
            limit,
            period: period_nanos,
            burst: limit,
            emission_interval,
        };
        quota.with_burst(limit)
    }

    /// `limit` requests per second.
    ///
    /// # Errors
    /// As for [`Quota::new`].
    pub const fn per_second(limit: u64) -> Result<Self, QuotaError> {
        Self::new(limit, NANOS_PER_SECOND)
    }

    /// `limit` requests per minute.
    ///
    /// # Errors
    /// As for [`Quota::new`].
    pub const fn per_minute(limit: u64) -> Result<Self, QuotaError> {
        Self::new(limit, 60 * NANOS_PER_SECOND)
    }

    /// `limit` requests per hour.
    ///
    /// # Errors
    /// As for [`Quota::new`].
    pub const fn per_hour(limit: u64) -> Result<Self, QuotaError> {
        Self::new(limit, 3600 * NANOS_PER_SECOND)
    }

    /// `limit` requests per [`core::time::Duration`]. Durations beyond `u64::MAX`
    /// nanoseconds (584 years) are rejected as [`QuotaError::BurstOverflow`].
    ///
    /// # Errors
    /// As for [`Quota::new`].
    pub fn per_duration(limit: u64, period: core::time::Duration) -> Result<Self, QuotaError> {
        let nanos = u64::try_from(period.as_nanos()).map_err(|_| QuotaError::BurstOverflow)?;
        Self::new(limit, nanos)
    }

    /// The same rate with a different GCRA burst (how many requests may arrive at once).
    ///
    /// # Errors
    /// [`QuotaError::ZeroBurst`], or [`QuotaError::BurstOverflow`] when
    /// `burst × emission interval` overflows.
    pub const fn with_burst(self, burst: u64) -> Result<Self, QuotaError> {
        if burst == 0 {
            return Err(QuotaError::ZeroBurst);
        }
        if burst.checked_mul(self.emission_interval).is_none() {
            return Err(QuotaError::BurstOverflow);
        }
        Ok(Self { burst, ..self })
    }

    /// Requests admitted per period.
    #[must_use]
    pub const fn limit(&self) -> u64 {
        self.limit
    }

    /// The period, in nanoseconds.
    #[must_use]
    pub const fn period(&self) -> u64 {
        self.period
    }

    /// The GCRA burst (defaults to the limit).
    #[must_use]
    pub const fn burst(&self) -> u64 {
        self.burst
    }

    /// GCRA's emission interval `ceil(period / limit)`, in nanoseconds (at least 1).
    #[must_use]
    pub const fn emission_interval(&self) -> u64 {
        self.emission_interval
    }
}
