//! The rate-limit headers of a `ratecore_tables_check` result, handed to C one header at
//! a time: a static name, and a value rendered into the caller's buffer. For a web server
//! that adds response headers one by one (no line parsing, no number formatting of its
//! own).

use std::ffi::c_char;

use ratecore::http::{self, HeaderInput, HeaderValue, QuotaReport, MAX_HEADER_VALUES};
use ratecore::Decision;

use crate::ffi::{input_ref, input_slice, output, output_slice, Out, OutSlice};
use crate::headers::{decision_of, ratecore_header_style, utf8, RATECORE_MAX_QUOTA_REPORTS};
use crate::multi::{ratecore_check_item, ratecore_check_result};
use crate::panic::guard;
use crate::status::ratecore_status;

/// The most headers one style renders.
pub const RATECORE_MAX_HEADERS: usize = 4;

const _: () = assert!(RATECORE_MAX_HEADERS == MAX_HEADER_VALUES);

/// One rendered header.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ratecore_header {
    /// The header's name: a static string of `name_len` bytes, not NUL-terminated.
    pub name: *const c_char,
    /// Length of `name`.
    pub name_len: usize,
    /// The value: `value_len` bytes inside the caller's output buffer.
    pub value: *const u8,
    /// Length of `value`.
    pub value_len: usize,
}

/// The headers `ratecore_render_check_headers` rendered (entries from `count` on are
/// not written).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ratecore_headers {
    /// How many entries of `headers` were written (0 to `RATECORE_MAX_HEADERS`).
    pub count: usize,
    /// Bytes of the output buffer the values use; with `BUFFER_TOO_SMALL`, the bytes
    /// needed (and nothing else is written).
    pub len: usize,
    /// The headers, in the order the style writes them.
    pub headers: [ratecore_header; RATECORE_MAX_HEADERS],
}

/// Renders the rate-limit headers of `style` for a `ratecore_tables_check` result: the
/// values go one after another into `out` (no names, separators or line ends), and
/// `*headers_out` lists each header's static name and its value's place in `out`. The
/// same headers and bytes as `ratecore_render_headers` writes as lines: the seed styles
/// report `result->decision` (absolute resets from `unix_now_ns`, the wall clock in
/// nanoseconds since the Unix epoch); the IETF style reports every quota of
/// `result->reports`, named after its item (`items[report.item].name`, with `/1`, `/2`,
/// ... for a table of several quotas). `Retry-After` only on a denial.
///
/// `items` may be `(NULL, 0)` for the seed styles (only the IETF style reads names).
/// Up to 24 bytes per value suffice for the seed styles; the IETF lists grow with the
/// reports and names.
///
/// Errors: `NULL_POINTER`, `INVALID_ARGUMENT` (a bad pointer or length, more reports
/// than `RATECORE_MAX_QUOTA_REPORTS`, a report naming an item beyond `item_count`, or
/// names of several-quota tables longer than 4,096 bytes in all), `UNKNOWN_HEADER_STYLE`,
/// `INVALID_UTF8` (a name), and `BUFFER_TOO_SMALL`: then only `headers_out->len` is
/// written, the length needed. Thread-safe (no shared state).
///
/// # Safety
/// `items` is valid for reading `item_count` items (or NULL with 0), each item's `name`
/// for `name_len` bytes; `result` for reading one `ratecore_check_result` whose first
/// `report_count` reports are initialised; `out` for `out_len` writes (or NULL with 0);
/// `headers_out` NULL or valid for writing one `ratecore_headers`.
#[no_mangle]
#[allow(clippy::too_many_arguments)] // The C signature: inputs, then the two outputs.
pub unsafe extern "C" fn ratecore_render_check_headers(
    style: u32,
    items: *const ratecore_check_item,
    item_count: usize,
    result: *const ratecore_check_result,
    unix_now_ns: u64,
    out: *mut u8,
    out_len: usize,
    headers_out: *mut ratecore_headers,
) -> ratecore_status {
    guard(|| {
        let style = ratecore_header_style::from_code(style)?;
        // SAFETY: forwarded from this function's contract.
        let items = unsafe { input_slice(items, item_count) }?;
        // SAFETY: forwarded from this function's contract.
        let result = unsafe { input_ref(result) }?;
        // SAFETY: forwarded from this function's contract.
        let headers = unsafe { output(headers_out) }?;
        // SAFETY: forwarded from this function's contract.
        let buffer = unsafe { output_slice(out, out_len) }?;
        render_into(style, items, result, unix_now_ns, buffer, &headers)
    })
}

/// `ratecore_render_check_headers`' body, shared with `ratecore_tables_check_headers`:
/// renders into the checked `buffer` and writes `headers` (only its `len` with
/// `BUFFER_TOO_SMALL`).
#[inline(always)] // into each exported renderer
pub(crate) fn render_into(
    style: http::HeaderStyle,
    items: &[ratecore_check_item],
    result: &ratecore_check_result,
    unix_now_ns: u64,
    mut buffer: OutSlice<u8>,
    headers: &Out<ratecore_headers>,
) -> Result<(), ratecore_status> {
    let decision = decision_of(&result.decision);
    let base = buffer.as_ptr();
    let bytes = buffer.as_mut_slice();
    let mut values = [HeaderValue::default(); MAX_HEADER_VALUES];
    let rendered = match style {
        http::HeaderStyle::Ietf => render_ietf(items, result, unix_now_ns, bytes, &mut values)?,
        _ => {
            let input = HeaderInput {
                decision,
                quotas: &[],
                unix_now_nanos: unix_now_ns,
            };
            http::render_header_values(style, &input, bytes, &mut values)
        }
    };
    let out = headers.as_ptr();
    let count = match rendered {
        Ok(count) => count,
        Err(too_small) => {
            // SAFETY: `headers` is valid for one write during the exported call (checked
            // by `output`); the field pointer stays inside it.
            unsafe { std::ptr::addr_of_mut!((*out).len).write(too_small.needed) };
            return Err(ratecore_status::BufferTooSmall);
        }
    };
    // Written field by field: only the headers rendered, and no second copy.
    let mut len = 0;
    for (index, value) in values.iter().take(count).enumerate() {
        let header = ratecore_header {
            name: value.name.as_ptr().cast::<c_char>(),
            name_len: value.name.len(),
            // The value lies inside `out` (the renderer succeeded, so it fit):
            // `wrapping_add` computes its address without any claim on it.
            value: base.wrapping_add(value.start).cast_const(),
            value_len: value.len,
        };
        len = value.start + value.len;
        // SAFETY: `headers` is valid for one write (checked by `output`); `index` <
        // `count` <= RATECORE_MAX_HEADERS, so the pointer stays inside `headers`.
        unsafe {
            std::ptr::addr_of_mut!((*out).headers)
                .cast::<ratecore_header>()
                .add(index)
                .write(header);
        }
    }
    // SAFETY: as above; the field pointers stay inside `*out`.
    unsafe {
        std::ptr::addr_of_mut!((*out).count).write(count);
        std::ptr::addr_of_mut!((*out).len).write(len);
    }
    Ok(())
}

/// The IETF style: every report, named. Out of line, so that the seed styles never set
/// up its name arena and report array (zeroing them cost more than the rendering).
#[inline(never)]
fn render_ietf(
    items: &[ratecore_check_item],
    result: &ratecore_check_result,
    unix_now_ns: u64,
    bytes: &mut [u8],
    values: &mut [HeaderValue; MAX_HEADER_VALUES],
) -> Result<Result<usize, http::BufferTooSmall>, ratecore_status> {
    // Room for the report names of tables with several quotas (`name/1`, `name/2`, ...).
    let mut arena = [0u8; NAME_ARENA];
    let mut quotas = [QuotaReport {
        name: "",
        period: 1,
        decision: Decision::EMPTY,
    }; RATECORE_MAX_QUOTA_REPORTS];
    let n = ietf_reports(items, result, &mut arena, &mut quotas)?;
    let input = HeaderInput {
        decision: decision_of(&result.decision),
        quotas: quotas.get(..n).unwrap_or(&[]),
        unix_now_nanos: unix_now_ns,
    };
    Ok(http::render_header_values(
        http::HeaderStyle::Ietf,
        &input,
        bytes,
        values,
    ))
}

/// The IETF reports of `result`, named after their items (with `/1`, `/2`, ... written
/// into `arena` for tables of several quotas). Returns how many.
fn ietf_reports<'a>(
    items: &'a [ratecore_check_item],
    result: &ratecore_check_result,
    arena: &'a mut [u8; NAME_ARENA],
    quotas: &mut [QuotaReport<'a>; RATECORE_MAX_QUOTA_REPORTS],
) -> Result<usize, ratecore_status> {
    let reports = result
        .reports
        .get(..result.report_count)
        .ok_or(ratecore_status::InvalidArgument)?;
    let mut free: &'a mut [u8] = arena;
    for (slot, report) in quotas.iter_mut().zip(reports) {
        let item = items
            .get(report.item)
            .ok_or(ratecore_status::InvalidArgument)?;
        // SAFETY: each item's name is valid for name_len bytes (caller's promise).
        let name = unsafe { utf8(item.name, item.name_len) }?;
        let several = reports
            .iter()
            .filter(|r| r.item == report.item)
            .nth(1)
            .is_some();
        let name = if several {
            let mut digits = [0u8; 20];
            let suffix = decimal(report.quota.saturating_add(1), &mut digits);
            let len = name.len() + 1 + suffix.len();
            if len > free.len() {
                return Err(ratecore_status::InvalidArgument);
            }
            let (used, rest) = std::mem::take(&mut free).split_at_mut(len);
            free = rest;
            let (base, tail) = used.split_at_mut(name.len());
            base.copy_from_slice(name.as_bytes());
            let (slash, number) = tail.split_at_mut(1);
            slash.copy_from_slice(b"/");
            number.copy_from_slice(suffix);
            // A UTF-8 name, '/' and ASCII digits: UTF-8.
            std::str::from_utf8(used).map_err(|_| ratecore_status::InvalidUtf8)?
        } else {
            name
        };
        *slot = QuotaReport {
            name,
            period: report.period_ns,
            decision: decision_of(&report.decision),
        };
    }
    Ok(reports.len())
}

/// Bytes for the IETF report names of tables with several quotas (`name/1`, ...).
const NAME_ARENA: usize = 4096;

/// Whether the IETF style can name every quota: each item's name is UTF-8, and the names
/// of its tables with several quotas (`quota_counts`, one per item) fit `NAME_ARENA`.
/// `ratecore_tables_check_headers` asks before it consumes anything, so that its
/// rendering can then only run out of buffer.
///
/// # Safety
/// Each item's `name` is valid for `name_len` bytes.
pub(crate) unsafe fn ietf_names_fit(
    items: &[ratecore_check_item],
    quota_counts: impl Iterator<Item = usize>,
) -> Result<(), ratecore_status> {
    let mut used: usize = 0;
    for (item, count) in items.iter().zip(quota_counts) {
        // SAFETY: forwarded from this function's contract.
        unsafe { utf8(item.name, item.name_len) }?;
        if count > 1 {
            for quota in 1..=count {
                let mut digits = [0u8; 20];
                let suffix = decimal(quota, &mut digits).len();
                used = used.saturating_add(item.name_len.saturating_add(1 + suffix));
            }
        }
    }
    if used > NAME_ARENA {
        return Err(ratecore_status::InvalidArgument);
    }
    Ok(())
}

/// `value` in decimal, in the tail of `digits`.
fn decimal(mut value: usize, digits: &mut [u8; 20]) -> &[u8] {
    let mut start = digits.len();
    for slot in digits.iter_mut().rev() {
        // `value % 10` is a digit: the cast cannot truncate.
        *slot = b'0' + (value % 10) as u8;
        start -= 1;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    digits.get(start..).unwrap_or(&[])
}
