//! Quotas in, decisions out: the plain-data structs every limiter and table uses.

use ratecore::sliding_strict::MAX_SUB_WINDOWS;
use ratecore::{Algorithm, Decision, LimitSpec, Quota};

use crate::ffi::{check_len, input_slice};
use crate::status::ratecore_status;

/// A duration that never ends: `reset_after_ns` or `retry_after_ns` when the moment lies
/// beyond `UINT64_MAX` nanoseconds.
pub const RATECORE_NEVER: u64 = u64::MAX;

/// The most sub-windows a strict sliding window may have.
pub const RATECORE_MAX_SUB_WINDOWS: u32 = 4096;

const _: () = assert!(RATECORE_NEVER == ratecore::NEVER);
const _: () = assert!(core::mem::size_of::<ratecore_quota>() == 32);
const _: () = assert!(core::mem::size_of::<ratecore_decision>() == 40);
const _: () = assert!(RATECORE_MAX_SUB_WINDOWS == MAX_SUB_WINDOWS);

/// Which algorithm a quota runs (the values of `ratecore_quota.algorithm`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ratecore_algorithm {
    /// GCRA: a smooth rate of `limit` per `period_ns`, with bursts of up to `burst`.
    Gcra = 1,
    /// Fixed window: `limit` per aligned window of `period_ns`.
    FixedWindow = 2,
    /// Approximate sliding window (two-window weighted estimate); may over-admit when the
    /// previous window's traffic was uneven.
    SlidingWindow = 3,
    /// Strict sliding window over `sub_windows` sub-windows: never over-admits.
    SlidingWindowStrict = 4,
}

const _: () = assert!(ratecore_algorithm::Gcra as u32 == Algorithm::Gcra.code());
const _: () = assert!(ratecore_algorithm::FixedWindow as u32 == Algorithm::FixedWindow.code());
const _: () =
    assert!(ratecore_algorithm::SlidingWindow as u32 == Algorithm::SlidingWindowApprox.code());
const _: () = assert!(
    ratecore_algorithm::SlidingWindowStrict as u32
        == Algorithm::SlidingWindowStrict { sub_windows: 1 }.code()
);

/// One limit: `limit` requests (of cost 1) per `period_ns` nanoseconds, run by
/// `algorithm`.
///
/// Fields an algorithm does not use must be 0: `burst` (GCRA only; it may also equal
/// `limit`) and `sub_windows` (strict window only). Otherwise
/// `RATECORE_STATUS_INVALID_ARGUMENT`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ratecore_quota {
    /// Requests admitted per period; at least 1.
    pub limit: u64,
    /// The period in nanoseconds; at least `limit` (1 ns per request at most).
    pub period_ns: u64,
    /// GCRA only: how many requests may arrive at once. 0 means `limit`.
    pub burst: u64,
    /// A `RATECORE_ALGORITHM_*` value.
    pub algorithm: u32,
    /// Strict sliding window only: sub-windows per period, 1 to
    /// `RATECORE_MAX_SUB_WINDOWS` (and at most `period_ns`).
    pub sub_windows: u32,
}

/// The quotas argument of a constructor, at most `max` of them. More is `TooManyLimits`,
/// decided by the length alone, without reading them.
///
/// # Errors
/// As for `input_slice`, and `TooManyLimits`.
///
/// # Safety
/// `quotas` points to `len` readable quotas, or is NULL with length 0.
pub(crate) unsafe fn quotas_arg<'a>(
    quotas: *const ratecore_quota,
    len: usize,
    max: usize,
) -> Result<&'a [ratecore_quota], ratecore_status> {
    if len > max {
        if quotas.is_null() {
            return Err(ratecore_status::NullPointer);
        }
        check_len::<ratecore_quota>(len)?;
        return Err(ratecore_status::TooManyLimits);
    }
    // SAFETY: forwarded from this function's contract.
    unsafe { input_slice(quotas, len) }
}

impl ratecore_quota {
    /// The limit this quota describes, validated as far as the quota alone allows (the
    /// algorithm's own checks run when the limiter or table is built).
    ///
    /// # Errors
    /// `UnknownAlgorithm`, the quota's own errors, or `InvalidArgument` for a field its
    /// algorithm does not use.
    pub(crate) fn to_spec(self) -> Result<LimitSpec, ratecore_status> {
        let algorithm = Algorithm::from_code(self.algorithm, self.sub_windows)
            .ok_or(ratecore_status::UnknownAlgorithm)?;
        let mut quota = Quota::new(self.limit, self.period_ns)?;
        if self.burst != 0 {
            quota = quota.with_burst(self.burst)?;
        }
        let is_gcra = algorithm == Algorithm::Gcra;
        let is_strict = matches!(algorithm, Algorithm::SlidingWindowStrict { .. });
        if (!is_gcra && self.burst != 0 && self.burst != self.limit)
            || (!is_strict && self.sub_windows != 0)
        {
            return Err(ratecore_status::InvalidArgument);
        }
        Ok(LimitSpec { algorithm, quota })
    }

    /// The C form of a limit.
    pub(crate) fn from_spec(spec: &LimitSpec) -> Self {
        Self {
            limit: spec.quota.limit(),
            period_ns: spec.quota.period(),
            burst: spec.quota.burst(),
            algorithm: spec.algorithm.code(),
            sub_windows: spec.algorithm.sub_windows(),
        }
    }
}

/// The verdict on one request, with what a client needs to pace itself. All durations
/// are relative to the `now_ns` of the check, in nanoseconds.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ratecore_decision {
    /// Whether the request is admitted (and its cost consumed).
    pub allowed: bool,
    /// The capacity the request was measured against: the limit (the burst for GCRA).
    pub limit: u64,
    /// Requests of cost 1 that would still be admitted now, after this decision.
    pub remaining: u64,
    /// Nanoseconds until the state is fully replenished (GCRA, strict window) or the
    /// current window ends (fixed window; approximate window: until no counted request
    /// weighs any more). `RATECORE_NEVER` if not representable.
    pub reset_after_ns: u64,
    /// 0 when allowed; otherwise nanoseconds until the same request would be admitted if
    /// nothing else happens. `RATECORE_NEVER` if not representable.
    pub retry_after_ns: u64,
}

impl From<Decision> for ratecore_decision {
    fn from(decision: Decision) -> Self {
        Self {
            allowed: decision.allowed,
            limit: decision.limit,
            remaining: decision.remaining,
            reset_after_ns: decision.reset_after,
            retry_after_ns: decision.retry_after,
        }
    }
}
