//! What a policy's limits did so far, and the memory the policy holds: for metrics
//! exporters and capacity planning.

use std::mem::size_of;

use crate::ffi::{handle_ref, output, sized_output};
use crate::panic::guard;
use crate::policy::ratecore_policy;
use crate::status::ratecore_status;

/// One limit's names and counters at one moment. Set `size` to
/// `sizeof(ratecore_limit_metrics)` before the call: a later library that adds fields
/// writes only the ones that size covers. A `size` below this struct's is
/// `INVALID_ARGUMENT`. On success, `size` is set to the number of bytes written.
///
/// The name strings are UTF-8, not NUL-terminated, and stay valid until the policy is
/// freed. Each counter is monotone; the four are read one after another, not at one
/// instant, so a snapshot taken while other threads check may trail by the checks in
/// flight.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ratecore_limit_metrics {
    /// The struct's size in bytes: set by the caller, then the bytes written.
    pub size: usize,
    /// The name of the limit's rule, `rule_len` bytes.
    pub rule: *const u8,
    /// Length of `rule`.
    pub rule_len: usize,
    /// The limit's name, `name_len` bytes.
    pub name: *const u8,
    /// Length of `name`.
    pub name_len: usize,
    /// Whether it is a shadow limit (counts, never denies).
    pub shadow: bool,
    /// Requests this limit admitted (whatever the other limits said).
    pub allowed: u64,
    /// Requests this limit denied (always 0 for a shadow limit).
    pub denied: u64,
    /// Requests a shadow limit would have denied.
    pub shadow_denied: u64,
    /// Requests the limit's rule applied to that lacked a key attribute and were let
    /// through by `on_missing = "skip"`.
    pub skipped: u64,
}

/// Writes the number of limits the policy has (every rule's, shadow limits included) to
/// `*count_out`: the indices `ratecore_policy_limit_metrics` takes are `0 .. count`.
///
/// # Safety
/// `policy` is NULL or a live handle; `count_out` is NULL or valid for one write.
#[no_mangle]
pub unsafe extern "C" fn ratecore_policy_limit_count(
    policy: *const ratecore_policy,
    count_out: *mut usize,
) -> ratecore_status {
    guard(|| {
        // SAFETY: a live handle not freed during this call, or NULL (caller's promise).
        let policy = unsafe { handle_ref::<ratecore_policy>(policy) }?;
        // SAFETY: valid for one write during this call, or NULL (caller's promise).
        let out = unsafe { output(count_out) }?;
        out.write(policy.metrics().count());
        Ok(())
    })
}

/// Writes the names and counters of the limit at `index` in policy order (rules in
/// order, each rule's limits in order; the order `ratecore_policy_outcome` reports limits
/// in) to `*metrics_out`. The counters count what `ratecore_policy_check` and
/// `ratecore_policy_check_http` decided; peeks count nothing.
///
/// Errors: `NULL_POINTER`, `INVALID_ARGUMENT` (an `index` not below
/// `ratecore_policy_limit_count`'s count, a misaligned pointer, a `size` too small).
///
/// # Safety
/// `policy` is NULL or a live handle; `metrics_out` is NULL or valid for reads and writes
/// of its `size` bytes, its `size` set.
#[no_mangle]
pub unsafe extern "C" fn ratecore_policy_limit_metrics(
    policy: *const ratecore_policy,
    index: usize,
    metrics_out: *mut ratecore_limit_metrics,
) -> ratecore_status {
    guard(|| {
        // SAFETY: a live handle not freed during this call, or NULL (caller's promise).
        let policy = unsafe { handle_ref::<ratecore_policy>(policy) }?;
        // SAFETY: NULL, or valid for this call with its size set (caller's promise).
        let out = unsafe { sized_output(metrics_out) }?;
        let (limit, metrics) = policy
            .metrics()
            .nth(index)
            .ok_or(ratecore_status::InvalidArgument)?;
        out.write(ratecore_limit_metrics {
            size: size_of::<ratecore_limit_metrics>(),
            rule: limit.rule.as_ptr(),
            rule_len: limit.rule.len(),
            name: limit.name.as_ptr(),
            name_len: limit.name.len(),
            shadow: limit.shadow,
            allowed: metrics.allowed,
            denied: metrics.denied,
            shadow_denied: metrics.shadow_denied,
            skipped: metrics.skipped,
        });
        Ok(())
    })
}

/// Writes the bytes of table memory the policy holds (allocated when it was built; checks
/// never allocate) to `*bytes_out`.
///
/// # Safety
/// `policy` is NULL or a live handle; `bytes_out` is NULL or valid for one write.
#[no_mangle]
pub unsafe extern "C" fn ratecore_policy_memory_bytes(
    policy: *const ratecore_policy,
    bytes_out: *mut usize,
) -> ratecore_status {
    guard(|| {
        // SAFETY: a live handle not freed during this call, or NULL (caller's promise).
        let policy = unsafe { handle_ref::<ratecore_policy>(policy) }?;
        // SAFETY: valid for one write during this call, or NULL (caller's promise).
        let out = unsafe { output(bytes_out) }?;
        out.write(policy.memory_bytes());
        Ok(())
    })
}
