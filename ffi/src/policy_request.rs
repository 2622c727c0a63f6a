//! Policy checks of requests with named attributes (`auth`, `app`, `user`, `tenant`, a
//! header's value…), answered with the decision, which limit decided and why, and the
//! rendered headers and 429 body.

use std::ffi::c_char;
use std::mem::size_of;

use ratecore::policy::{Attribute, PolicyDecision, Request};

use crate::ffi::{handle_ref, input_slice, sized_input, sized_output};
use crate::headers::utf8;
use crate::panic::guard;
use crate::policy::{decide, ratecore_policy, Buffers, Rendered};
use crate::quota::ratecore_decision;
use crate::status::ratecore_status;

/// The most attributes one `ratecore_http_request` may carry. They are converted on the
/// stack, so a check never allocates.
pub const RATECORE_MAX_REQUEST_ATTRIBUTES: usize = 64;

/// No limit: the value of `ratecore_policy_outcome`'s limit indices when none applies.
pub const RATECORE_NO_LIMIT: u32 = u32::MAX;

/// One named request attribute. A request lacks an attribute by not listing it; when a
/// name is listed twice, the first occurrence counts.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ratecore_attribute {
    /// The attribute's name as the policy spells it, UTF-8, `name_len` bytes (not
    /// NUL-terminated). NULL is `NULL_POINTER`; a name no policy uses (the empty one
    /// included) is ignored.
    pub name: *const u8,
    /// Length of `name` in bytes.
    pub name_len: usize,
    /// The value: raw bytes, compared for equality only. `(NULL, 0)` is the empty value
    /// (the attribute is present, and empty).
    pub value: *const u8,
    /// Length of `value` in bytes.
    pub value_len: usize,
}

/// One request as a policy sees it: method and path for routes, attributes for
/// conditions and keys. Strings are `(pointer, length)` pairs, not NUL-terminated;
/// `method` and `path` are UTF-8 (`(NULL, 0)` is "").
///
/// Set `size` to `sizeof(ratecore_http_request)`: a later library that adds fields reads
/// only the ones that size covers. A `size` below this struct's is `INVALID_ARGUMENT`; a
/// larger one (a caller built against a newer header) is accepted, its unknown fields
/// ignored.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ratecore_http_request {
    /// `sizeof(ratecore_http_request)` as the caller compiled it.
    pub size: usize,
    /// As in `ratecore_request`.
    pub method: *const u8,
    /// Length of `method`.
    pub method_len: usize,
    /// As in `ratecore_request`.
    pub path: *const u8,
    /// Length of `path`.
    pub path_len: usize,
    /// The attributes, `attribute_count` of them (`(NULL, 0)`: none).
    pub attributes: *const ratecore_attribute,
    /// Number of attributes: at most `RATECORE_MAX_REQUEST_ATTRIBUTES`, else
    /// `INVALID_ARGUMENT`.
    pub attribute_count: usize,
}

/// What a policy check produced. Set `size` to `sizeof(ratecore_policy_outcome)` before
/// the call: a later library that adds fields writes only the ones that size covers. A
/// `size` below this struct's is `INVALID_ARGUMENT`. On success, `size` is set to the
/// number of bytes written.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ratecore_policy_outcome {
    /// The struct's size in bytes: set by the caller, then the bytes written.
    pub size: usize,
    /// The combined decision (the deciding limit's).
    pub decision: ratecore_decision,
    /// As in `ratecore_policy_result`.
    pub limited: bool,
    /// As in `ratecore_policy_result`.
    pub status: u16,
    /// As in `ratecore_policy_result`.
    pub headers_len: usize,
    /// As in `ratecore_policy_result`.
    pub body_len: usize,
    /// As in `ratecore_policy_result`.
    pub content_type: *const c_char,
    /// The limit that decided, as its index in policy order (rules in order, each rule's
    /// limits in order; the index `ratecore_policy_limit_metrics` takes) in the version
    /// the check ran on (a reload may renumber limits), or `RATECORE_NO_LIMIT` when no
    /// limit applied.
    pub deciding_limit: u32,
    /// Denied because the request lacks an attribute a limit keys on (that limit's
    /// `on_missing = "deny"`).
    pub missing_key: bool,
    /// The shadow limit that would have denied the request, as an index in policy order,
    /// or `RATECORE_NO_LIMIT`. Shadow limits never change the decision.
    pub shadow_denied_limit: u32,
    /// Whether an unlimited rule exempted the request from every limit.
    pub exempted: bool,
}

/// A limit's index in policy order as the C API reports it.
fn limit_index(id: Option<usize>) -> u32 {
    id.and_then(|id| u32::try_from(id).ok())
        .unwrap_or(RATECORE_NO_LIMIT)
}

/// Checks (or peeks), renders and reports.
///
/// # Safety
/// As for `ratecore_policy_check_http`.
#[allow(clippy::too_many_arguments)]
unsafe fn check_http(
    policy: *const ratecore_policy,
    request: *const ratecore_http_request,
    now_ns: u64,
    cost: u64,
    unix_now_ns: u64,
    headers_out: *mut u8,
    headers_cap: usize,
    body_out: *mut u8,
    body_cap: usize,
    outcome_out: *mut ratecore_policy_outcome,
    commit: bool,
) -> ratecore_status {
    guard(|| {
        // SAFETY: forwarded from the caller's contract.
        let policy = unsafe { handle_ref::<ratecore_policy>(policy) }?;
        // SAFETY: forwarded from the caller's contract.
        let request = unsafe { sized_input(request) }?;
        // SAFETY: forwarded from the caller's contract.
        let out = unsafe { sized_output(outcome_out) }?;
        // SAFETY: forwarded from the caller's contract.
        let buffers = unsafe { Buffers::new(headers_out, headers_cap, body_out, body_cap) }?;
        if request.attribute_count > RATECORE_MAX_REQUEST_ATTRIBUTES {
            return Err(ratecore_status::InvalidArgument);
        }
        // SAFETY: `attribute_count` readable attributes, or (NULL, 0) (contract).
        let raw = unsafe { input_slice(request.attributes, request.attribute_count) }?;
        let mut attributes = [Attribute::new("", &[]); RATECORE_MAX_REQUEST_ATTRIBUTES];
        for (slot, attribute) in attributes.iter_mut().zip(raw) {
            if attribute.name.is_null() {
                return Err(ratecore_status::NullPointer);
            }
            // SAFETY: each attribute's (pointer, length) pairs are valid (contract).
            *slot = unsafe {
                Attribute::new(
                    utf8(attribute.name, attribute.name_len)?,
                    input_slice(attribute.value, attribute.value_len)?,
                )
            };
        }
        // SAFETY: the request's (pointer, length) pairs are valid (contract).
        let request = unsafe {
            Request::new(
                utf8(request.method, request.method_len)?,
                utf8(request.path, request.path_len)?,
                attributes.get(..raw.len()).unwrap_or(&[]),
            )
        };
        let decision: PolicyDecision<'_> = decide(policy, &request, now_ns, cost, commit)?;
        let Rendered {
            status,
            headers_len,
            body_len,
            content_type,
        } = buffers.render(&decision, unix_now_ns);
        out.write(ratecore_policy_outcome {
            size: size_of::<ratecore_policy_outcome>(),
            decision: (*decision.decision()).into(),
            limited: decision.limited(),
            status,
            headers_len,
            body_len,
            content_type,
            deciding_limit: limit_index(decision.deciding().map(|l| l.id)),
            missing_key: decision.denied_for_missing_key(),
            shadow_denied_limit: limit_index(decision.shadow_denied().map(|(l, _)| l.id)),
            exempted: decision.exempted_by().is_some(),
        });
        Ok(())
    })
}

/// Decides and renders as `ratecore_policy_check` does, for a request with named
/// attributes, and reports which limit decided and why in `*outcome_out` (compare
/// `outcome.headers_len` / `body_len` with the capacities; 1 KiB each always suffices for
/// policies with short rule and limit names). Counts the outcome in the limits' metrics
/// (`ratecore_policy_limit_metrics`).
///
/// Errors (nothing is consumed or counted, and no output written): `NULL_POINTER`,
/// `INVALID_ARGUMENT` (a misaligned pointer, a length above `PTRDIFF_MAX`, a `size` too
/// small, more than `RATECORE_MAX_REQUEST_ATTRIBUTES` attributes), `INVALID_UTF8` (method,
/// path or an attribute name), `COST_EXCEEDS_LIMIT`.
///
/// # Safety
/// `policy` a live handle; `request` valid for reads of its `size` bytes, and its strings
/// and attributes (and theirs) for their lengths; the buffers valid for their capacities
/// (or NULL with 0); `outcome_out` valid for reads and writes of its `size` bytes, its
/// `size` set.
#[no_mangle]
pub unsafe extern "C" fn ratecore_policy_check_http(
    policy: *const ratecore_policy,
    request: *const ratecore_http_request,
    now_ns: u64,
    cost: u64,
    unix_now_ns: u64,
    headers_out: *mut u8,
    headers_cap: usize,
    body_out: *mut u8,
    body_cap: usize,
    outcome_out: *mut ratecore_policy_outcome,
) -> ratecore_status {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        check_http(
            policy,
            request,
            now_ns,
            cost,
            unix_now_ns,
            headers_out,
            headers_cap,
            body_out,
            body_cap,
            outcome_out,
            true,
        )
    }
}

/// What `ratecore_policy_check_http` would answer, consuming and counting nothing.
///
/// # Safety
/// As for `ratecore_policy_check_http`.
#[no_mangle]
pub unsafe extern "C" fn ratecore_policy_peek_http(
    policy: *const ratecore_policy,
    request: *const ratecore_http_request,
    now_ns: u64,
    cost: u64,
    unix_now_ns: u64,
    headers_out: *mut u8,
    headers_cap: usize,
    body_out: *mut u8,
    body_cap: usize,
    outcome_out: *mut ratecore_policy_outcome,
) -> ratecore_status {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        check_http(
            policy,
            request,
            now_ns,
            cost,
            unix_now_ns,
            headers_out,
            headers_cap,
            body_out,
            body_cap,
            outcome_out,
            false,
        )
    }
}
