//! Rate-limit headers and 429 bodies rendered into caller buffers, without allocating:
//! the seed styles (ev.energy, Uphold, Switch) and the IETF draft's fields.

use ratecore::http::{self, BodyStyle, HeaderInput, HeaderStyle, QuotaReport};
use ratecore::Decision;

use crate::ffi::{input_ref, input_slice, output, output_slice};
use crate::panic::guard;
use crate::quota::ratecore_decision;
use crate::status::ratecore_status;

/// The most quota reports one header rendering takes (a policy never applies more).
pub const RATECORE_MAX_QUOTA_REPORTS: usize = 16;

/// Which rate-limit header vocabulary to render (passed as `uint32_t`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ratecore_header_style {
    /// ev.energy: `x-ratelimit-limit`, `x-ratelimit-remaining`; `retry-after` on denial.
    Evenergy = 1,
    /// Uphold: `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (UTC
    /// epoch seconds); `Retry-After` on denial.
    Uphold = 2,
    /// Switch: `X-Rate-Limit-Limit`, `X-Rate-Limit-Remaining`, `X-Rate-Limit-Reset`
    /// (ISO 8601 UTC); `Retry-After` on denial.
    Switch = 3,
    /// IETF draft-ietf-httpapi-ratelimit-headers-10: `RateLimit-Policy` and `RateLimit`,
    /// one list member per quota report; `Retry-After` on denial.
    Ietf = 4,
}

impl ratecore_header_style {
    pub(crate) fn from_code(code: u32) -> Result<HeaderStyle, ratecore_status> {
        match code {
            1 => Ok(HeaderStyle::EvEnergy),
            2 => Ok(HeaderStyle::Uphold),
            3 => Ok(HeaderStyle::Switch),
            4 => Ok(HeaderStyle::Ietf),
            _ => Err(ratecore_status::UnknownHeaderStyle),
        }
    }
}

/// One quota's state for the IETF fields (`"name";q=limit;w=period` and
/// `"name";r=remaining;t=reset`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ratecore_quota_report {
    /// The policy name, UTF-8, `name_len` bytes (not NUL-terminated; `(NULL, 0)` is "").
    pub name: *const u8,
    /// Length of `name` in bytes.
    pub name_len: usize,
    /// The quota's period in nanoseconds (rendered as `w`, rounded up to seconds).
    pub period_ns: u64,
    /// The quota's state for this request.
    pub decision: ratecore_decision,
}

pub(crate) fn decision_of(d: &ratecore_decision) -> Decision {
    Decision {
        allowed: d.allowed,
        limit: d.limit,
        remaining: d.remaining,
        reset_after: d.reset_after_ns,
        retry_after: d.retry_after_ns,
    }
}

/// A UTF-8 string argument `(ptr, len)`.
///
/// # Safety
/// As for `input_slice`.
pub(crate) unsafe fn utf8<'a>(ptr: *const u8, len: usize) -> Result<&'a str, ratecore_status> {
    // SAFETY: forwarded from the caller's contract.
    let bytes = unsafe { input_slice(ptr, len) }?;
    std::str::from_utf8(bytes).map_err(|_| ratecore_status::InvalidUtf8)
}

/// Runs a renderer into `(out, out_len)` and reports the length through `written_out`:
/// the bytes written on success, the bytes needed with `BUFFER_TOO_SMALL` (the one case
/// an output is written on failure).
///
/// # Safety
/// `out` valid for `out_len` writes (or NULL with 0); `written_out` NULL or valid for one
/// write.
pub(crate) unsafe fn render_into(
    out: *mut u8,
    out_len: usize,
    written_out: *mut usize,
    render: impl FnOnce(&mut [u8]) -> Result<usize, http::BufferTooSmall>,
) -> Result<(), ratecore_status> {
    // SAFETY: forwarded from the caller's contract.
    let written = unsafe { output(written_out) }?;
    // SAFETY: forwarded from the caller's contract.
    let mut buffer = unsafe { output_slice(out, out_len) }?;
    let bytes = buffer.as_mut_slice();
    match render(bytes) {
        Ok(n) => {
            written.write(n);
            Ok(())
        }
        Err(too_small) => {
            written.write(too_small.needed);
            Err(ratecore_status::BufferTooSmall)
        }
    }
}

/// The body of the 429-body renderers: checks `decision`, builds the style, and renders
/// the body (`period_ns`: the deciding quota's period) as [`render_into`] does.
///
/// # Safety
/// `decision` NULL or valid for one read; the rest as for [`render_into`].
unsafe fn render_body_into<'a>(
    decision: *const ratecore_decision,
    style: impl FnOnce() -> Result<BodyStyle<'a>, ratecore_status>,
    period_ns: u64,
    out: *mut u8,
    out_len: usize,
    written_out: *mut usize,
) -> ratecore_status {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        let decision = decision_of(unsafe { input_ref(decision) }?);
        let style = style()?;
        // SAFETY: forwarded from this function's contract.
        unsafe {
            render_into(out, out_len, written_out, |buf| {
                http::render_body(&style, &decision, period_ns, buf)
            })
        }
    })
}

/// Renders the rate-limit header lines (`Name: value\r\n` each) of `style` for
/// `decision` (the combined decision) into `out`. `quotas` (`quota_count` reports, at most
/// `RATECORE_MAX_QUOTA_REPORTS`; `(NULL, 0)` for none) feeds the IETF style's per-quota
/// lists; the other styles use `decision` only. `unix_now_ns` is the wall-clock time
/// (nanoseconds since the Unix epoch) absolute resets are computed from. Every seconds
/// value is rounded up.
///
/// On success writes the length to `*written_out`. If `out_len` is too small, returns
/// `BUFFER_TOO_SMALL` and writes the length needed to `*written_out`.
/// Errors: `NULL_POINTER`, `INVALID_ARGUMENT`, `UNKNOWN_HEADER_STYLE`, `INVALID_UTF8`,
/// `BUFFER_TOO_SMALL`. Thread-safe (no shared state).
///
/// # Safety
/// `decision` is valid for one read; `quotas` for `quota_count` reads, each report's
/// `name` for `name_len` bytes; `out` for `out_len` writes (or NULL with 0);
/// `written_out` for one write.
#[no_mangle]
pub unsafe extern "C" fn ratecore_render_headers(
    style: u32,
    decision: *const ratecore_decision,
    quotas: *const ratecore_quota_report,
    quota_count: usize,
    unix_now_ns: u64,
    out: *mut u8,
    out_len: usize,
    written_out: *mut usize,
) -> ratecore_status {
    guard(|| {
        let style = ratecore_header_style::from_code(style)?;
        // SAFETY: forwarded from this function's contract.
        let decision = decision_of(unsafe { input_ref(decision) }?);
        // SAFETY: forwarded from this function's contract.
        let reports = unsafe { input_slice(quotas, quota_count) }?;
        if reports.len() > RATECORE_MAX_QUOTA_REPORTS {
            return Err(ratecore_status::InvalidArgument);
        }
        let mut converted = [QuotaReport {
            name: "",
            period: 1,
            decision: Decision::EMPTY,
        }; RATECORE_MAX_QUOTA_REPORTS];
        for (slot, report) in converted.iter_mut().zip(reports) {
            *slot = QuotaReport {
                // SAFETY: each report's name is valid for name_len bytes (contract).
                name: unsafe { utf8(report.name, report.name_len) }?,
                period: report.period_ns,
                decision: decision_of(&report.decision),
            };
        }
        let input = HeaderInput {
            decision,
            quotas: converted.get(..reports.len()).unwrap_or(&[]),
            unix_now_nanos: unix_now_ns,
        };
        // SAFETY: forwarded from this function's contract.
        unsafe {
            render_into(out, out_len, written_out, |buf| {
                http::render_headers(style, &input, buf)
            })
        }
    })
}

/// Renders an RFC 9457 `application/problem+json` 429 body for `decision` (laid out as
/// ev.energy shows it: `type`, `status` 429, `title`, and `detail` = "Request was rate
/// limited. Try again in N seconds", N rounded up). `type_uri` and `title` are UTF-8
/// (`(NULL, 0)` is ""). Length reporting as for `ratecore_render_headers`.
///
/// # Safety
/// `decision` valid for one read; the strings for their lengths; `out` for `out_len`
/// writes (or NULL with 0); `written_out` for one write.
#[no_mangle]
pub unsafe extern "C" fn ratecore_render_problem_json(
    decision: *const ratecore_decision,
    type_uri: *const u8,
    type_uri_len: usize,
    title: *const u8,
    title_len: usize,
    out: *mut u8,
    out_len: usize,
    written_out: *mut usize,
) -> ratecore_status {
    let style = || {
        // SAFETY: forwarded from this function's contract.
        let type_uri = unsafe { utf8(type_uri, type_uri_len) }?;
        // SAFETY: forwarded from this function's contract.
        let title = unsafe { utf8(title, title_len) }?;
        // These entry points render the 429 body of the published documents.
        Ok(BodyStyle::ProblemJson {
            type_uri,
            title,
            status: 429,
        })
    };
    // SAFETY: forwarded from this function's contract.
    unsafe { render_body_into(decision, style, 0, out, out_len, written_out) }
}

/// Renders Switch's plain-text 429 sentence: "{subject} quota exceeded. Maximum allowed is
/// {limit} requests per {period}. Please try again in {N} second." (`period_ns` is the
/// deciding quota's period, shown as `1s`, `1m`, `5m`, `1h`…). Length reporting as for
/// `ratecore_render_headers`.
///
/// # Safety
/// `decision` valid for one read; `subject` for `subject_len` bytes; `out` for `out_len`
/// writes (or NULL with 0); `written_out` for one write.
#[no_mangle]
pub unsafe extern "C" fn ratecore_render_text_body(
    decision: *const ratecore_decision,
    subject: *const u8,
    subject_len: usize,
    period_ns: u64,
    out: *mut u8,
    out_len: usize,
    written_out: *mut usize,
) -> ratecore_status {
    let style = || {
        // SAFETY: forwarded from this function's contract.
        let subject = unsafe { utf8(subject, subject_len) }?;
        Ok(BodyStyle::PlainText { subject })
    };
    // SAFETY: forwarded from this function's contract.
    unsafe { render_body_into(decision, style, period_ns, out, out_len, written_out) }
}
