//! Policies: the rules of a published API rate-limit policy, loaded from TOML, checked per
//! request, answered with the exact headers and 429 body.

use std::ffi::{c_char, CStr};
use std::fmt;

use ratecore::policy::{Attribute, ConfigError, Policy, PolicyDecision, Request};

use crate::ffi::{
    create, handle_ref, input_ref, input_slice, output, output_slice, release, Castable, OutSlice,
};
use crate::headers::utf8;
use crate::panic::guard;
use crate::quota::ratecore_decision;
use crate::status::ratecore_status;

/// A policy: named rules (route, conditions on request attributes, keyed limits) with
/// their keyed tables, and how it answers (header style, 429 body, status). Built from
/// TOML by `ratecore_policy_from_toml` or `ratecore_policy_from_file`, and replaceable in
/// place by `ratecore_policy_reload_toml` or `_reload_file`; all memory is allocated
/// then, and checks never allocate.
///
/// Thread safety: a handle may be shared by any number of threads calling
/// `ratecore_policy_check`, `_peek`, `_check_http`, `_peek_http`, `_limit_count`,
/// `_limit_metrics`, `_render_metrics`, `_memory_bytes`, `_overrides`, `_offenders`,
/// `_reload_toml`, `_reload_file`, `_set_override` and `_remove_override` concurrently:
/// a reload or an override change may run while other threads check, and while other
/// threads reload or change overrides (these take turns, each building on the version
/// the one before left in force). Each call works on one version of the policy from
/// start to finish. `ratecore_policy_free` must not race any other call on the same
/// handle.
pub struct ratecore_policy {
    _private: [u8; 0],
}

impl Castable for ratecore_policy {
    type Rust = Policy;
}

/// One request with four fixed identities, which become the attributes `client_ip`,
/// `user`, `app` and `client` (`ratecore_http_request` carries any attributes, `auth`
/// included). Strings are `(pointer, length)` pairs, not NUL-terminated. `method` and
/// `path` are UTF-8 (`(NULL, 0)` is ""). The identities are raw bytes, compared for
/// equality only; a NULL pointer means the request does not carry that attribute, while a
/// non-NULL pointer with length 0 is an empty one.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ratecore_request {
    /// HTTP method, e.g. "POST".
    pub method: *const u8,
    /// Length of `method`.
    pub method_len: usize,
    /// Request path, with or without query string.
    pub path: *const u8,
    /// Length of `path`.
    pub path_len: usize,
    /// Client IP (any stable byte form), or NULL.
    pub client_ip: *const u8,
    /// Length of `client_ip`.
    pub client_ip_len: usize,
    /// Authenticated user or account, or NULL.
    pub user: *const u8,
    /// Length of `user`.
    pub user_len: usize,
    /// OAuth application, or NULL.
    pub app: *const u8,
    /// Length of `app`.
    pub app_len: usize,
    /// OAuth client, or NULL.
    pub client: *const u8,
    /// Length of `client`.
    pub client_len: usize,
}

/// What a policy check produced.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ratecore_policy_result {
    /// The combined decision (the most restrictive applicable limit's).
    pub decision: ratecore_decision,
    /// Whether any limit applied (false: unlimited; no headers were rendered).
    pub limited: bool,
    /// The HTTP status to answer with: 200 when allowed, the policy's denial status
    /// (default 429) when denied.
    pub status: u16,
    /// Length of the rendered headers (`Name: value\r\n` lines). If it exceeds the
    /// buffer's capacity, nothing was written and this is the length needed.
    pub headers_len: usize,
    /// Length of the rendered 429 body (0 when allowed). If it exceeds the buffer's
    /// capacity, nothing was written and this is the length needed.
    pub body_len: usize,
    /// The body's `Content-Type` (a static NUL-terminated string), NULL when allowed.
    pub content_type: *const c_char,
}

/// Writes an error's text, NUL-terminated and truncated to fit.
///
/// # Safety
/// `out` is NULL or valid for `out_len` writes.
pub(crate) unsafe fn write_error(error: &dyn fmt::Display, out: *mut c_char, out_len: usize) {
    // SAFETY: forwarded from this function's contract; a failed check (NULL with a
    // length, a length above `isize::MAX`) just skips the message.
    let Ok(mut buffer) = (unsafe { output_slice(out.cast::<u8>(), out_len) }) else {
        return;
    };
    let bytes = buffer.as_mut_slice();
    let Some(room) = bytes.len().checked_sub(1) else {
        return;
    };
    let text = error.to_string();
    let n = text.len().min(room);
    if let (Some(target), Some(source)) = (bytes.get_mut(..n), text.as_bytes().get(..n)) {
        target.copy_from_slice(source);
    }
}

fn config_status(error: &ConfigError) -> ratecore_status {
    if error.message.starts_with("cannot read: ") {
        ratecore_status::ConfigUnreadable
    } else {
        ratecore_status::InvalidConfig
    }
}

/// A configuration step's result as the C API reports it: the value, or the error's
/// status with its text written to `(error_out, error_len)`.
///
/// # Safety
/// `error_out` is NULL or valid for `error_len` writes.
pub(crate) unsafe fn configured<T>(
    result: Result<T, ConfigError>,
    error_out: *mut c_char,
    error_len: usize,
) -> Result<T, ratecore_status> {
    result.map_err(|error| {
        // SAFETY: forwarded from this function's contract.
        unsafe { write_error(&error, error_out, error_len) };
        config_status(&error)
    })
}

/// A TOML text argument and its origin (`(NULL, 0)` or empty: `<string>`).
///
/// # Safety
/// Both strings are valid for their lengths, as for `input_slice`.
pub(crate) unsafe fn toml_source<'a>(
    toml: *const u8,
    toml_len: usize,
    origin: *const u8,
    origin_len: usize,
) -> Result<(&'a str, &'a str), ratecore_status> {
    // SAFETY: forwarded from this function's contract.
    let text = unsafe { utf8(toml, toml_len) }?;
    // SAFETY: forwarded from this function's contract.
    let origin = unsafe { utf8(origin, origin_len) }?;
    Ok((
        text,
        if origin.is_empty() {
            "<string>"
        } else {
            origin
        },
    ))
}

/// A NUL-terminated UTF-8 path argument.
///
/// # Safety
/// `path` is NULL or NUL-terminated, and not written during `'a`.
pub(crate) unsafe fn path_arg<'a>(path: *const c_char) -> Result<&'a str, ratecore_status> {
    if path.is_null() {
        return Err(ratecore_status::NullPointer);
    }
    // SAFETY: non-NULL and NUL-terminated (caller's promise).
    unsafe { CStr::from_ptr(path) }
        .to_str()
        .map_err(|_| ratecore_status::InvalidUtf8)
}

/// Builds a policy from TOML text (`toml_len` bytes, UTF-8). `origin` (UTF-8, e.g. a file
/// name; `(NULL, 0)` gives `<string>`) names it in error messages. On
/// `RATECORE_STATUS_INVALID_CONFIG` the message — "origin:line:column: field: what is
/// wrong" — is written NUL-terminated (and truncated) to `error_out` if `error_len > 0`:
/// the documented exception to "outputs only on success".
///
/// # Safety
/// The strings are valid for their lengths; `error_out` NULL or valid for `error_len`
/// writes; `policy_out` valid for one write.
#[no_mangle]
pub unsafe extern "C" fn ratecore_policy_from_toml(
    toml: *const u8,
    toml_len: usize,
    origin: *const u8,
    origin_len: usize,
    error_out: *mut c_char,
    error_len: usize,
    policy_out: *mut *mut ratecore_policy,
) -> ratecore_status {
    let build = || {
        // SAFETY: forwarded from this function's contract.
        let (text, origin) = unsafe { toml_source(toml, toml_len, origin, origin_len) }?;
        // SAFETY: forwarded from this function's contract.
        unsafe { configured(Policy::from_toml_str(text, origin), error_out, error_len) }
    };
    // SAFETY: `policy_out` valid for one write, or NULL (caller's promise).
    unsafe { create(policy_out, build) }
}

/// Builds a policy from the TOML file at `path` (NUL-terminated, UTF-8). Errors as for
/// `ratecore_policy_from_toml`, plus `CONFIG_UNREADABLE`.
///
/// # Safety
/// `path` NULL or NUL-terminated; `error_out` NULL or valid for `error_len` writes;
/// `policy_out` valid for one write.
#[no_mangle]
pub unsafe extern "C" fn ratecore_policy_from_file(
    path: *const c_char,
    error_out: *mut c_char,
    error_len: usize,
    policy_out: *mut *mut ratecore_policy,
) -> ratecore_status {
    let build = || {
        // SAFETY: forwarded from this function's contract.
        let path = unsafe { path_arg(path) }?;
        // SAFETY: forwarded from this function's contract.
        unsafe { configured(Policy::from_toml_file(path), error_out, error_len) }
    };
    // SAFETY: `policy_out` valid for one write, or NULL (caller's promise).
    unsafe { create(policy_out, build) }
}

/// Frees a policy (NULL is ignored).
///
/// # Safety
/// `policy` is NULL or a live handle no other call uses during or after this one.
#[no_mangle]
pub unsafe extern "C" fn ratecore_policy_free(policy: *mut ratecore_policy) {
    // SAFETY: a live handle nobody else uses any more, or NULL (caller's promise).
    unsafe { release(policy) }
}

/// An identity argument: NULL is absent.
///
/// # Safety
/// As for `input_slice` when non-NULL.
unsafe fn identity<'a>(ptr: *const u8, len: usize) -> Result<Option<&'a [u8]>, ratecore_status> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded from the caller's contract.
    unsafe { input_slice(ptr, len) }.map(Some)
}

/// Checks `request` at `now_ns` with `cost`, or peeks without `commit`.
pub(crate) fn decide<'p>(
    policy: &'p Policy,
    request: &Request<'_>,
    now_ns: u64,
    cost: u64,
    commit: bool,
) -> Result<PolicyDecision<'p>, ratecore_status> {
    Ok(if commit {
        policy.check(request, now_ns, cost)?
    } else {
        policy.peek(request, now_ns, cost)?
    })
}

/// The caller's header and body buffers, checked.
pub(crate) struct Buffers {
    headers: OutSlice<u8>,
    body: OutSlice<u8>,
}

/// The answer to send beside the decision, as every policy check reports it.
pub(crate) struct Rendered {
    /// 200 when allowed, the policy's denial status when denied.
    pub(crate) status: u16,
    /// The headers' length (the length needed when above the buffer's capacity).
    pub(crate) headers_len: usize,
    /// The body's length (0 when allowed; the length needed when above the capacity).
    pub(crate) body_len: usize,
    /// The body's static `Content-Type`, NULL when allowed.
    pub(crate) content_type: *const c_char,
}

impl Buffers {
    /// Checks both buffers.
    ///
    /// # Errors
    /// As for `output_slice`.
    ///
    /// # Safety
    /// As for `output_slice`, for each buffer.
    pub(crate) unsafe fn new(
        headers_out: *mut u8,
        headers_cap: usize,
        body_out: *mut u8,
        body_cap: usize,
    ) -> Result<Self, ratecore_status> {
        Ok(Self {
            // SAFETY: forwarded from this function's contract.
            headers: unsafe { output_slice(headers_out, headers_cap) }?,
            // SAFETY: forwarded from this function's contract.
            body: unsafe { output_slice(body_out, body_cap) }?,
        })
    }

    /// Renders `decision`'s headers and, on denial, its body. Never fails: for a buffer
    /// too small for its text, the length needed is reported.
    pub(crate) fn render(mut self, decision: &PolicyDecision<'_>, unix_now_ns: u64) -> Rendered {
        let headers_len = decision
            .render_headers(unix_now_ns, self.headers.as_mut_slice())
            .unwrap_or_else(|e| e.needed);
        if decision.allowed() {
            return Rendered {
                status: 200,
                headers_len,
                body_len: 0,
                content_type: std::ptr::null(),
            };
        }
        let body_len = decision
            .render_body(self.body.as_mut_slice())
            .unwrap_or_else(|e| e.needed);
        let content_type = match decision.content_type() {
            "application/problem+json" => c"application/problem+json".as_ptr(),
            _ => c"text/plain; charset=utf-8".as_ptr(),
        };
        Rendered {
            status: decision.denial_status(),
            headers_len,
            body_len,
            content_type,
        }
    }
}

/// Checks (or peeks) and renders.
///
/// # Safety
/// As for `ratecore_policy_check`.
#[allow(clippy::too_many_arguments)]
unsafe fn check_request(
    policy: *const ratecore_policy,
    request: *const ratecore_request,
    now_ns: u64,
    cost: u64,
    unix_now_ns: u64,
    headers_out: *mut u8,
    headers_cap: usize,
    body_out: *mut u8,
    body_cap: usize,
    result_out: *mut ratecore_policy_result,
    commit: bool,
) -> ratecore_status {
    guard(|| {
        // SAFETY: forwarded from the caller's contract.
        let policy = unsafe { handle_ref::<ratecore_policy>(policy) }?;
        // SAFETY: forwarded from the caller's contract.
        let request = *unsafe { input_ref(request) }?;
        // SAFETY: forwarded from the caller's contract.
        let out = unsafe { output(result_out) }?;
        // SAFETY: forwarded from the caller's contract.
        let buffers = unsafe { Buffers::new(headers_out, headers_cap, body_out, body_cap) }?;
        // The identities become the attributes of the same names (NULL: absent).
        let mut attributes = [Attribute::new("", &[]); 4];
        let mut count = 0;
        for (name, ptr, len) in [
            ("client_ip", request.client_ip, request.client_ip_len),
            ("user", request.user, request.user_len),
            ("app", request.app, request.app_len),
            ("client", request.client, request.client_len),
        ] {
            // SAFETY: each (pointer, length) pair of the request is valid (contract).
            if let Some(value) = unsafe { identity(ptr, len) }? {
                if let Some(slot) = attributes.get_mut(count) {
                    *slot = Attribute::new(name, value);
                    count += 1;
                }
            }
        }
        // SAFETY: each (pointer, length) pair of the request is valid (contract).
        let request = unsafe {
            Request::new(
                utf8(request.method, request.method_len)?,
                utf8(request.path, request.path_len)?,
                attributes.get(..count).unwrap_or(&[]),
            )
        };
        let decision = decide(policy, &request, now_ns, cost, commit)?;
        let Rendered {
            status,
            headers_len,
            body_len,
            content_type,
        } = buffers.render(&decision, unix_now_ns);
        out.write(ratecore_policy_result {
            decision: (*decision.decision()).into(),
            limited: decision.limited(),
            status,
            headers_len,
            body_len,
            content_type,
        });
        Ok(())
    })
}

/// Decides `request` at `now_ns` (monotonic nanoseconds) with weight `cost` against every
/// rule that applies — admitted only if every applicable limit admits; a denial consumes
/// nothing — and renders the policy's headers (into `headers_out`, `headers_cap` bytes)
/// and, on denial, its 429 body (into `body_out`, `body_cap` bytes). `unix_now_ns` is the
/// wall-clock time for absolute resets. The decision is made whatever the buffer sizes:
/// compare `result.headers_len` / `body_len` with the capacities (1 KiB each always
/// suffices for policies with short rule names).
///
/// Errors: `NULL_POINTER`, `INVALID_ARGUMENT`, `INVALID_UTF8`, `COST_EXCEEDS_LIMIT`.
///
/// # Safety
/// `policy` a live handle; `request` valid for one read and its strings for their
/// lengths; the buffers valid for their capacities (or NULL with 0); `result_out` valid
/// for one write.
#[no_mangle]
pub unsafe extern "C" fn ratecore_policy_check(
    policy: *const ratecore_policy,
    request: *const ratecore_request,
    now_ns: u64,
    cost: u64,
    unix_now_ns: u64,
    headers_out: *mut u8,
    headers_cap: usize,
    body_out: *mut u8,
    body_cap: usize,
    result_out: *mut ratecore_policy_result,
) -> ratecore_status {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        check_request(
            policy,
            request,
            now_ns,
            cost,
            unix_now_ns,
            headers_out,
            headers_cap,
            body_out,
            body_cap,
            result_out,
            true,
        )
    }
}

/// What `ratecore_policy_check` would answer, consuming nothing.
///
/// # Safety
/// As for `ratecore_policy_check`.
#[no_mangle]
pub unsafe extern "C" fn ratecore_policy_peek(
    policy: *const ratecore_policy,
    request: *const ratecore_request,
    now_ns: u64,
    cost: u64,
    unix_now_ns: u64,
    headers_out: *mut u8,
    headers_cap: usize,
    body_out: *mut u8,
    body_cap: usize,
    result_out: *mut ratecore_policy_result,
) -> ratecore_status {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        check_request(
            policy,
            request,
            now_ns,
            cost,
            unix_now_ns,
            headers_out,
            headers_cap,
            body_out,
            body_cap,
            result_out,
            false,
        )
    }
}
