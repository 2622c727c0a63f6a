//! What a policy's limits did so far, and the memory the policy holds: for metrics
//! exporters and capacity planning.

use std::mem::size_of;

use ratecore::policy::Policy;

use crate::ffi::{handle_ref, output_slice, read_into, sized_output, with_handle};
use crate::headers::render_into;
use crate::panic::guard;
use crate::policy::ratecore_policy;
use crate::status::ratecore_status;

/// One limit's counters at one moment, and the lengths of its names (which
/// `ratecore_policy_limit_metrics` copies into the caller's text buffer). Set `size` to
/// `sizeof(ratecore_limit_metrics)` before the call: a later library that adds fields
/// writes only the ones that size covers. A `size` below this struct's is
/// `INVALID_ARGUMENT`. When written, `size` is set to the number of bytes written.
///
/// Each counter is monotone while its limit lives; the four are read one after another,
/// not at one instant, so a snapshot taken while other threads check may trail by the
/// checks in flight. A reload keeps the counters of every limit whose identity did not
/// change, even one whose state starts afresh because it shares a table with a changed
/// limit (counted in `ratecore_reload_report.fresh`); a new or changed limit starts
/// from 0.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ratecore_limit_metrics {
    /// The struct's size in bytes: set by the caller, then the bytes written.
    pub size: usize,
    /// Length of the limit's rule name: the text's first `rule_len` bytes.
    pub rule_len: usize,
    /// Length of the limit's name: the `name_len` bytes after the rule name.
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
/// `*count_out`: the indices `ratecore_policy_limit_metrics` takes are `0 .. count`, in
/// the version in force during this call (a reload may change the count).
///
/// # Safety
/// `policy` is NULL or a live handle; `count_out` is NULL or valid for one write.
#[no_mangle]
pub unsafe extern "C" fn ratecore_policy_limit_count(
    policy: *const ratecore_policy,
    count_out: *mut usize,
) -> ratecore_status {
    // SAFETY: a live handle or NULL; `count_out` NULL or valid for one write (caller's
    // promise).
    unsafe { read_into(policy, count_out, |p| Ok(p.view().metrics().count())) }
}

/// Reports the limit at `index` in policy order (rules in order, each rule's limits in
/// order; the order `ratecore_policy_outcome` reports limits in): its counters and name
/// lengths to `*metrics_out`, and its names, copied into `text_out` (`text_cap` bytes):
/// the rule name, then the limit name right after it, UTF-8, not NUL-terminated. Names,
/// counters and index all come from one version of the policy, the one in force during
/// this call; a reload between two calls may give an index to another limit, so the
/// names, not the index, identify a limit. The counters count what
/// `ratecore_policy_check` and `ratecore_policy_check_http` decided; peeks count nothing.
///
/// When `text_cap` is below `rule_len + name_len`, the call returns `BUFFER_TOO_SMALL`
/// and still writes `*metrics_out` (lengths and counters: the length needed is
/// `rule_len + name_len`), but nothing to `text_out`. 128 bytes suffice for names of up
/// to 64 bytes each.
///
/// Errors: `NULL_POINTER` (also `text_out` NULL with `text_cap > 0`), `INVALID_ARGUMENT`
/// (an `index` not below `ratecore_policy_limit_count`'s count, a misaligned pointer, a
/// `size` too small, a `text_cap` above `PTRDIFF_MAX`), `BUFFER_TOO_SMALL`.
///
/// # Safety
/// `policy` is NULL or a live handle; `text_out` valid for `text_cap` writes (or NULL with
/// 0); `metrics_out` is NULL or valid for reads and writes of its `size` bytes, its `size`
/// set.
#[no_mangle]
pub unsafe extern "C" fn ratecore_policy_limit_metrics(
    policy: *const ratecore_policy,
    index: usize,
    text_out: *mut u8,
    text_cap: usize,
    metrics_out: *mut ratecore_limit_metrics,
) -> ratecore_status {
    guard(|| {
        // SAFETY: a live handle not freed during this call, or NULL (caller's promise).
        let policy = unsafe { handle_ref::<ratecore_policy>(policy) }?;
        // SAFETY: valid for `text_cap` writes during this call, or NULL with 0 (caller's
        // promise).
        let text = unsafe { output_slice(text_out, text_cap) }?;
        // SAFETY: NULL, or valid for this call with its size set (caller's promise).
        let out = unsafe { sized_output(metrics_out) }?;
        // One version for the names and the counters: the view keeps it alive while the
        // names are copied, whatever a concurrent reload does.
        let view = policy.view();
        let (limit, metrics) = view
            .metrics()
            .nth(index)
            .ok_or(ratecore_status::InvalidArgument)?;
        out.write(ratecore_limit_metrics {
            size: size_of::<ratecore_limit_metrics>(),
            rule_len: limit.rule.len(),
            name_len: limit.name.len(),
            shadow: limit.shadow,
            allowed: metrics.allowed,
            denied: metrics.denied,
            shadow_denied: metrics.shadow_denied,
            skipped: metrics.skipped,
        });
        if limit.rule.len().saturating_add(limit.name.len()) > text.len() {
            return Err(ratecore_status::BufferTooSmall);
        }
        text.write_all(limit.rule.bytes().chain(limit.name.bytes()));
        Ok(())
    })
}

/// Writes every limit's counters in the Prometheus text exposition format (version
/// 0.0.4) into `out` (`cap` bytes), for a server to publish on its own metrics endpoint:
/// one counter family, `ratecore_policy_requests_total`, with a `# HELP` and a `# TYPE`
/// line, then one line per limit and outcome, labelled by rule, limit, whether the limit
/// is a shadow one, and outcome (`allowed`, `denied`, `shadow_denied`, `skipped`), e.g.
///
/// ```text
/// ratecore_policy_requests_total{rule="api",limit="per-user",shadow="false",outcome="allowed"} 3
/// ```
///
/// Label values are escaped as the format requires. Every line comes from one version
/// of the policy. Allocation-free.
///
/// On success writes the length to `*len_out`. If `cap` is too small, returns
/// `BUFFER_TOO_SMALL` and writes the length needed to `*len_out` (the buffer's contents
/// are then unspecified). Errors: `NULL_POINTER`, `INVALID_ARGUMENT`, `BUFFER_TOO_SMALL`.
///
/// # Safety
/// `policy` is NULL or a live handle; `out` valid for `cap` writes (or NULL with 0);
/// `len_out` NULL or valid for one write.
#[no_mangle]
pub unsafe extern "C" fn ratecore_policy_render_metrics(
    policy: *const ratecore_policy,
    out: *mut u8,
    cap: usize,
    len_out: *mut usize,
) -> ratecore_status {
    let render = |policy: &Policy| {
        // SAFETY: forwarded from this function's contract.
        unsafe { render_into(out, cap, len_out, |buf| policy.render_metrics(buf)) }
    };
    // SAFETY: a live handle not freed during this call, or NULL (caller's promise).
    unsafe { with_handle(policy, render) }
}

/// Writes the bytes of table memory the policy holds (allocated when it was built; checks
/// never allocate) to `*bytes_out`: the version in force. After a reload, the replaced
/// version's tables that the new one did not keep stay allocated until the last check
/// using them ends.
///
/// # Safety
/// `policy` is NULL or a live handle; `bytes_out` is NULL or valid for one write.
#[no_mangle]
pub unsafe extern "C" fn ratecore_policy_memory_bytes(
    policy: *const ratecore_policy,
    bytes_out: *mut usize,
) -> ratecore_status {
    // SAFETY: a live handle or NULL; `bytes_out` NULL or valid for one write (caller's
    // promise).
    unsafe { read_into(policy, bytes_out, |policy| Ok(policy.memory_bytes())) }
}
