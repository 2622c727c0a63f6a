//! Single-key limiters: one quota (any algorithm) or several that must all admit.

use ratecore::composite::MAX_LIMITS;
use ratecore::{Composite, Decision, Limiter, RateLimiter};

use crate::ffi::{create, handle_ref, output, output_slice, read_into, release, Castable};
use crate::panic::guard;
use crate::quota::{quotas_arg, ratecore_decision, ratecore_quota};
use crate::status::ratecore_status;

/// The most quotas one limiter combines.
pub const RATECORE_MAX_LIMITER_LIMITS: usize = 16;

const _: () = assert!(RATECORE_MAX_LIMITER_LIMITS == MAX_LIMITS);

/// A rate limiter for one key (one client, one route, the whole server): one quota, or
/// several that must all admit (e.g. 5 per second AND 100 per minute; a denied request
/// consumes nothing from any of them).
///
/// Lock-free and allocation-free after creation.
///
/// Thread safety: a handle may be shared by any number of threads, which may call
/// `ratecore_limiter_check`, `_peek`, `_check_each`, `_peek_each` and `_limit_count` on it
/// concurrently. Under contention a single quota stays exact; several quotas never
/// over-admit, but a race may cost a spurious denial. `ratecore_limiter_free` must not
/// race any other call on the same handle. A limiter lives in process memory: it is
/// not shared across `fork()` (use a table in a shared region for that).
pub struct ratecore_limiter {
    _private: [u8; 0],
}

/// What a limiter handle points to.
pub(crate) enum LimiterInner {
    /// One quota.
    Single(Limiter),
    /// Two or more quotas.
    Composite(Composite),
}

/// Handles are shared across threads by C callers.
const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<LimiterInner>();
};

impl Castable for ratecore_limiter {
    type Rust = LimiterInner;
}

impl LimiterInner {
    fn new(quotas: &[ratecore_quota]) -> Result<Self, ratecore_status> {
        let mut limiters = Vec::with_capacity(quotas.len());
        for quota in quotas {
            let spec = quota.to_spec()?;
            limiters.push(Limiter::new(spec.algorithm, spec.quota)?);
        }
        if limiters.len() == 1 {
            if let Some(single) = limiters.pop() {
                return Ok(Self::Single(single));
            }
        }
        Ok(Self::Composite(Composite::new(limiters)?))
    }

    fn count(&self) -> usize {
        match self {
            Self::Single(_) => 1,
            Self::Composite(c) => c.limits().len(),
        }
    }

    // Always inlined: out of line, its `Result<Decision, _>` came back through the stack
    // and the exported function's copy of it stalled on store forwarding (perf).
    #[inline(always)]
    fn decide(&self, now: u64, cost: u64, commit: bool) -> Result<Decision, ratecore_status> {
        let decision = match (self, commit) {
            (Self::Single(l), true) => l.check(now, cost),
            (Self::Single(l), false) => l.peek(now, cost),
            (Self::Composite(c), true) => c.check(now, cost),
            (Self::Composite(c), false) => c.peek(now, cost),
        };
        Ok(decision?)
    }
}

/// Creates a limiter from `quotas_len` quotas (1 to `RATECORE_MAX_LIMITER_LIMITS`) and
/// stores its handle in `*limiter_out`. With several quotas a request is admitted only if
/// every quota admits, and a denied request consumes nothing. Free the handle with
/// `ratecore_limiter_free`.
///
/// Errors: `NULL_POINTER`, `NO_LIMITS` (0 quotas), `TOO_MANY_LIMITS`, `UNKNOWN_ALGORITHM`,
/// `INVALID_ARGUMENT`, and the quota errors (100–199).
///
/// # Safety
/// `quotas` points to `quotas_len` readable `ratecore_quota` (or is NULL with length 0);
/// `limiter_out` is NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn ratecore_limiter_new(
    quotas: *const ratecore_quota,
    quotas_len: usize,
    limiter_out: *mut *mut ratecore_limiter,
) -> ratecore_status {
    let build = || {
        // SAFETY: `quotas_len` readable quotas at `quotas`, or (NULL, 0) (caller's promise).
        let quotas = unsafe { quotas_arg(quotas, quotas_len, RATECORE_MAX_LIMITER_LIMITS)? };
        if quotas.is_empty() {
            return Err(ratecore_status::NoLimits);
        }
        LimiterInner::new(quotas)
    };
    // SAFETY: `limiter_out` is NULL or valid for one write (caller's promise).
    unsafe { create(limiter_out, build) }
}

/// Frees a limiter. NULL is ignored.
///
/// # Safety
/// `limiter` is NULL or a live handle from `ratecore_limiter_new`; no other call may use
/// it during or after this one.
#[no_mangle]
pub unsafe extern "C" fn ratecore_limiter_free(limiter: *mut ratecore_limiter) {
    // SAFETY: a live handle nobody else uses any more, or NULL (caller's promise).
    unsafe { release(limiter) }
}

/// Decides a request of weight `cost` arriving at `now_ns`, consuming `cost` if admitted,
/// and writes the decision to `*decision_out`. A `cost` of 0 only reports the state.
///
/// A denial is a decision (`allowed == false`), not an error. Errors: `NULL_POINTER`,
/// `COST_EXCEEDS_LIMIT` (the request could never be admitted).
///
/// # Safety
/// `limiter` is NULL or a live handle; `decision_out` is NULL or valid for writing one
/// `ratecore_decision`.
#[no_mangle]
pub unsafe extern "C" fn ratecore_limiter_check(
    limiter: *const ratecore_limiter,
    now_ns: u64,
    cost: u64,
    decision_out: *mut ratecore_decision,
) -> ratecore_status {
    // SAFETY: forwarded from this function's contract.
    unsafe { decide(limiter, now_ns, cost, true, decision_out) }
}

/// The decision `ratecore_limiter_check` would return, consuming nothing.
///
/// # Safety
/// As for `ratecore_limiter_check`.
#[no_mangle]
pub unsafe extern "C" fn ratecore_limiter_peek(
    limiter: *const ratecore_limiter,
    now_ns: u64,
    cost: u64,
    decision_out: *mut ratecore_decision,
) -> ratecore_status {
    // SAFETY: forwarded from this function's contract.
    unsafe { decide(limiter, now_ns, cost, false, decision_out) }
}

/// # Safety
/// As for `ratecore_limiter_check`.
#[inline(always)] // into each exported function: one call from C, `commit` a constant
unsafe fn decide(
    limiter: *const ratecore_limiter,
    now: u64,
    cost: u64,
    commit: bool,
    decision_out: *mut ratecore_decision,
) -> ratecore_status {
    guard(|| {
        // SAFETY: a live handle not freed during this call, or NULL (caller's promise).
        let limiter = unsafe { handle_ref(limiter)? };
        // SAFETY: valid for one write during this call, or NULL (caller's promise).
        let out = unsafe { output(decision_out)? };
        out.write_decision(limiter.decide(now, cost, commit)?);
        Ok(())
    })
}

/// Like `ratecore_limiter_check`, and also writes each quota's own state to
/// `states[0 .. count)` (in the order the quotas were given; `count` from
/// `ratecore_limiter_limit_count`). After a denial nothing was consumed, so each entry
/// shows that quota's current state, and its `allowed` says whether that quota alone would
/// have admitted the request.
///
/// Errors: as for `ratecore_limiter_check`, and `BUFFER_TOO_SMALL` when `states_len` is
/// below the quota count (nothing is checked or written then).
///
/// # Safety
/// As for `ratecore_limiter_check`; `states` is valid for writing `states_len` decisions
/// (or is NULL with length 0).
#[no_mangle]
pub unsafe extern "C" fn ratecore_limiter_check_each(
    limiter: *const ratecore_limiter,
    now_ns: u64,
    cost: u64,
    states: *mut ratecore_decision,
    states_len: usize,
    decision_out: *mut ratecore_decision,
) -> ratecore_status {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        decide_each(
            limiter,
            now_ns,
            cost,
            true,
            states,
            states_len,
            decision_out,
        )
    }
}

/// Like `ratecore_limiter_peek`, with each quota's state as in
/// `ratecore_limiter_check_each`.
///
/// # Safety
/// As for `ratecore_limiter_check_each`.
#[no_mangle]
pub unsafe extern "C" fn ratecore_limiter_peek_each(
    limiter: *const ratecore_limiter,
    now_ns: u64,
    cost: u64,
    states: *mut ratecore_decision,
    states_len: usize,
    decision_out: *mut ratecore_decision,
) -> ratecore_status {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        decide_each(
            limiter,
            now_ns,
            cost,
            false,
            states,
            states_len,
            decision_out,
        )
    }
}

/// # Safety
/// As for `ratecore_limiter_check_each`.
unsafe fn decide_each(
    limiter: *const ratecore_limiter,
    now: u64,
    cost: u64,
    commit: bool,
    states: *mut ratecore_decision,
    states_len: usize,
    decision_out: *mut ratecore_decision,
) -> ratecore_status {
    guard(|| {
        // SAFETY: a live handle not freed during this call, or NULL (caller's promise).
        let limiter = unsafe { handle_ref(limiter)? };
        // SAFETY: valid for `states_len` writes during this call, or (NULL, 0).
        let states = unsafe { output_slice(states, states_len)? };
        // SAFETY: valid for one write during this call, or NULL (caller's promise).
        let out = unsafe { output(decision_out)? };
        let decision = states.decide_each::<MAX_LIMITS, _>(limiter.count(), |each| {
            let decision = match limiter {
                LimiterInner::Composite(c) if commit => c.check_each(now, cost, each)?,
                LimiterInner::Composite(c) => c.peek_each(now, cost, each)?,
                // One quota: its state is the decision.
                LimiterInner::Single(_) => {
                    let decision = limiter.decide(now, cost, commit)?;
                    if let Some(first) = each.first_mut() {
                        *first = decision;
                    }
                    decision
                }
            };
            Ok(decision)
        })?;
        out.write_decision(decision);
        Ok(())
    })
}

/// Writes the number of quotas the limiter combines to `*count_out`.
///
/// # Safety
/// `limiter` is NULL or a live handle; `count_out` is NULL or valid for one write.
#[no_mangle]
pub unsafe extern "C" fn ratecore_limiter_limit_count(
    limiter: *const ratecore_limiter,
    count_out: *mut usize,
) -> ratecore_status {
    // SAFETY: a live handle or NULL; `count_out` NULL or valid for one write (caller's
    // promise).
    unsafe { read_into(limiter, count_out, |limiter| Ok(limiter.count())) }
}
