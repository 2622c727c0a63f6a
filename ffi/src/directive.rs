//! Server directives parsed by the library: a web server module hands over a directive's
//! arguments as they are written (`name=value` tokens) and gets back the configuration,
//! or the message to print, so every server reads the same syntax and reports the same
//! errors. The nginx module's `ratecore_zone` and `ratecore_limit` are the users; the
//! values follow nginx's syntax (sizes `10m`, times `1h30m`).

use std::ffi::c_char;

use crate::directive_limit::{self, Limit};
use crate::directive_zone::{self, Zone};
use crate::ffi::{input_ref, input_slice, output, output_slice};
use crate::panic::guard;
use crate::quota::ratecore_quota;
use crate::status::ratecore_status;
use crate::table::RATECORE_MAX_TABLE_LIMITS;

/// A byte string: `len` bytes at `data` (NULL when `len` is 0). Laid out as nginx's
/// `ngx_str_t`, so an nginx module passes its directive arguments (`cf->args->elts`)
/// as they are.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ratecore_text {
    /// Length in bytes.
    pub len: usize,
    /// The bytes (need not be NUL-terminated).
    pub data: *const u8,
}

impl ratecore_text {
    const EMPTY: Self = Self {
        len: 0,
        data: std::ptr::null(),
    };

    fn of(bytes: &[u8]) -> Self {
        Self {
            len: bytes.len(),
            data: bytes.as_ptr(),
        }
    }
}

/// How a server lays out a zone of shared memory around a table's region, for sizing the
/// table to the zone: the header and region take whole pages, each page costs
/// `page_size + per_page` bytes, one more page and `fixed` bytes come on top, and a zone
/// is at least `min_pages` pages. (nginx: its slab allocator's pool, slots and page
/// descriptors.)
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ratecore_shm_layout {
    /// Bytes the server keeps just before the region, in the same pages.
    pub header: usize,
    /// The page size; above 0.
    pub page_size: usize,
    /// Bytes the zone takes besides its pages.
    pub fixed: usize,
    /// Bytes each page takes besides itself.
    pub per_page: usize,
    /// The fewest pages a zone has.
    pub min_pages: usize,
}

/// A parsed `ratecore_zone`: one keyed table of 1 to `RATECORE_MAX_TABLE_LIMITS` quotas,
/// sized to the zone (`capacity=auto` takes the largest power of two that fits).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ratecore_zone_directive {
    /// `name=`: points into the argument it came from.
    pub name: ratecore_text,
    /// `size=` in bytes.
    pub size: usize,
    /// The quotas, for `ratecore_table_init_region`.
    pub quotas: [ratecore_quota; RATECORE_MAX_TABLE_LIMITS],
    /// How many of `quotas` are used.
    pub quota_count: usize,
    /// Keys per quota.
    pub capacity: u64,
    /// A `RATECORE_FULL_POLICY_*` value (`when_full=`).
    pub full_policy: u32,
    /// `ratecore_table_region_size` of the table: the region to give it.
    pub region_size: usize,
}

/// `style=none` in a `ratecore_limit_directive`: no rate-limit headers at all (other
/// styles are `RATECORE_HEADER_STYLE_*` values).
pub const RATECORE_LIMIT_STYLE_NONE: u32 = 255;
const _: () = assert!(RATECORE_LIMIT_STYLE_NONE == directive_limit::STYLE_NONE);
/// `body=problem+json`: an RFC 9457 problem+json body (`ratecore_render_problem_json`).
pub const RATECORE_LIMIT_BODY_PROBLEM_JSON: u32 = 1;
const _: () = assert!(RATECORE_LIMIT_BODY_PROBLEM_JSON == directive_limit::BODY_PROBLEM_JSON);
/// `body=text`: the plain-text sentence (`ratecore_render_text_body`).
pub const RATECORE_LIMIT_BODY_TEXT: u32 = 2;
const _: () = assert!(RATECORE_LIMIT_BODY_TEXT == directive_limit::BODY_TEXT);
/// `body=none`: an empty body.
pub const RATECORE_LIMIT_BODY_NONE: u32 = 3;
const _: () = assert!(RATECORE_LIMIT_BODY_NONE == directive_limit::BODY_NONE);
/// `body=nginx`: the server's own error page for the status.
pub const RATECORE_LIMIT_BODY_SERVER: u32 = 4;
const _: () = assert!(RATECORE_LIMIT_BODY_SERVER == directive_limit::BODY_SERVER);

/// A parsed `ratecore_limit`. The texts point into the arguments they came from.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ratecore_limit_directive {
    /// `zone=`: the zone's name (not looked up).
    pub zone: ratecore_text,
    /// `key=`: the key's text, not empty (variables are the server's to compile).
    pub key: ratecore_text,
    /// `cost=` when it holds a `$` (a per-request value for the server to compile);
    /// otherwise empty and `cost` holds the constant.
    pub cost_text: ratecore_text,
    /// The constant cost (default 1).
    pub cost: u64,
    /// The denial's HTTP status, 400 to 599 (default 429).
    pub status: u32,
    /// A `RATECORE_HEADER_STYLE_*` value or `RATECORE_LIMIT_STYLE_NONE` (default IETF).
    pub style: u32,
    /// A `RATECORE_LIMIT_BODY_*` value (default: text for Switch, the server's page for
    /// none, problem+json otherwise).
    pub body: u32,
    /// 1 for `dry_run=on`: counted and logged, never denying.
    pub dry_run: u32,
    /// `description=` (UTF-8; default `API`), for the text body.
    pub description: ratecore_text,
    /// `problem_type=` (UTF-8; default `about:blank`).
    pub problem_type: ratecore_text,
    /// `problem_title=` (UTF-8; default `Too Many Requests`).
    pub problem_title: ratecore_text,
    /// When `key` is one variable alone (`$binary_remote_addr`; not a capture such as
    /// `$1`), the variable's name (`binary_remote_addr`), which a server can read
    /// without its script engine; otherwise empty.
    pub key_variable: ratecore_text,
}

/// A directive's arguments `(args, arg_count)` as byte slices.
///
/// # Safety
/// `args` points to `arg_count` readable texts (or is NULL with 0), each text's `data`
/// valid for reads of `len` bytes (or `len` is 0) during `'a`.
unsafe fn texts<'a>(
    args: *const ratecore_text,
    arg_count: usize,
) -> Result<Vec<&'a [u8]>, ratecore_status> {
    // SAFETY: forwarded from this function's contract.
    let args: &'a [ratecore_text] = unsafe { input_slice(args, arg_count) }?;
    args.iter()
        // SAFETY: forwarded from this function's contract.
        .map(|t| unsafe { input_slice(t.data, t.len) })
        .collect()
}

/// A parse or check result as the C API reports it: the value, or `INVALID_CONFIG` with
/// the message written to `(error_out, error_len)`.
fn reported<T>(
    result: Result<T, String>,
    error_out: *mut c_char,
    error_len: usize,
) -> Result<T, ratecore_status> {
    result.map_err(|message| {
        write_message(&message, error_out, error_len);
        ratecore_status::InvalidConfig
    })
}

/// Writes `message` NUL-terminated into `(error_out, error_len)`, truncated to fit.
fn write_message(message: &str, error_out: *mut c_char, error_len: usize) {
    // SAFETY: the exported functions' callers promise `(error_out, error_len)` is NULL or
    // writable; a failed check (NULL with a length) just skips the message.
    let Ok(mut buffer) = (unsafe { output_slice(error_out.cast::<u8>(), error_len) }) else {
        return;
    };
    let bytes = buffer.as_mut_slice();
    let Some(room) = bytes.len().checked_sub(1) else {
        return;
    };
    // cut at a character boundary: the message stays UTF-8
    let mut n = message.len().min(room);
    while !message.is_char_boundary(n) {
        n -= 1;
    }
    if let (Some(target), Some(source)) = (bytes.get_mut(..n), message.as_bytes().get(..n)) {
        target.copy_from_slice(source);
    }
    if let Some(nul) = bytes.get_mut(n) {
        *nul = 0;
    }
}

/// Parses a `ratecore_zone` directive's arguments (`args`: `arg_count` texts, without
/// the directive's name) into `*zone_out`, sizing its table to `size=` by `*layout`.
///
/// Errors: `INVALID_CONFIG` with the message (what an nginx user reads after
/// `ratecore_zone:`, naming the parameter and what it expects) written NUL-terminated
/// and truncated to fit into `(error_out, error_len)`; `NULL_POINTER`, `INVALID_ARGUMENT`
/// (a `page_size` of 0) for bad pointers and layouts, with no message.
///
/// # Safety
/// `args` points to `arg_count` readable texts (or is NULL with 0), each valid for
/// reads of its `len` bytes; `layout` is readable; `zone_out` is writable; `error_out` is
/// NULL or valid for `error_len` writes. `zone_out->name` points into `args` afterwards.
#[no_mangle]
pub unsafe extern "C" fn ratecore_zone_directive_parse(
    args: *const ratecore_text,
    arg_count: usize,
    layout: *const ratecore_shm_layout,
    zone_out: *mut ratecore_zone_directive,
    error_out: *mut c_char,
    error_len: usize,
) -> ratecore_status {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        let args = unsafe { texts(args, arg_count) }?;
        // SAFETY: forwarded from this function's contract.
        let layout = *unsafe { input_ref(layout) }?;
        // SAFETY: forwarded from this function's contract.
        let out = unsafe { output(zone_out) }?;
        if layout.page_size == 0 {
            return Err(ratecore_status::InvalidArgument);
        }
        let zone: Zone<'_> = reported(directive_zone::parse(&args, &layout), error_out, error_len)?;
        out.write(ratecore_zone_directive {
            name: ratecore_text::of(zone.name),
            size: zone.size,
            quotas: zone.quotas,
            quota_count: zone.quota_count,
            capacity: zone.capacity,
            full_policy: zone.full_policy,
            region_size: zone.region_size,
        });
        Ok(())
    })
}

/// Parses a `ratecore_limit` directive's arguments (`args`: `arg_count` texts, without
/// the directive's name) into `*limit_out`. `level_style` is the style of the limits
/// already configured at the same level (they must agree: one set of headers per
/// response), or 0 for the level's first limit.
///
/// Errors: as for `ratecore_zone_directive_parse` (messages start `ratecore_limit:`).
///
/// # Safety
/// As for `ratecore_zone_directive_parse`; `limit_out`'s texts point into `args`
/// afterwards (the defaults, into static strings).
#[no_mangle]
pub unsafe extern "C" fn ratecore_limit_directive_parse(
    args: *const ratecore_text,
    arg_count: usize,
    level_style: u32,
    limit_out: *mut ratecore_limit_directive,
    error_out: *mut c_char,
    error_len: usize,
) -> ratecore_status {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        let args = unsafe { texts(args, arg_count) }?;
        // SAFETY: forwarded from this function's contract.
        let out = unsafe { output(limit_out) }?;
        let limit: Limit<'_> = reported(
            directive_limit::parse(&args, level_style),
            error_out,
            error_len,
        )?;
        let cost_text = if limit.cost_text.is_empty() {
            ratecore_text::EMPTY
        } else {
            ratecore_text::of(limit.cost_text)
        };
        out.write(ratecore_limit_directive {
            zone: ratecore_text::of(limit.zone),
            key: ratecore_text::of(limit.key),
            cost_text,
            cost: limit.cost,
            status: limit.status,
            style: limit.style,
            body: limit.body,
            dry_run: limit.dry_run,
            description: ratecore_text::of(limit.description),
            problem_type: ratecore_text::of(limit.problem_type),
            problem_title: ratecore_text::of(limit.problem_title),
            key_variable: if limit.key_variable.is_empty() {
                ratecore_text::EMPTY
            } else {
                ratecore_text::of(limit.key_variable)
            },
        });
        Ok(())
    })
}

/// Checks a parsed limit against the zone it names: a constant cost (`cost_text` empty)
/// that some quota of the zone can never admit would deny every request, so it is
/// refused here (a cost from a variable is checked per request).
///
/// Errors: `INVALID_CONFIG` with the message, as for `ratecore_zone_directive_parse`
/// (without the directive's place, which the server adds); `NULL_POINTER`; and
/// `INVALID_ARGUMENT` for a zone whose `quota_count` exceeds `RATECORE_MAX_TABLE_LIMITS`.
///
/// # Safety
/// `limit` and `zone` are readable, and `zone->name` valid for reads of its `len` bytes;
/// `error_out` is NULL or valid for `error_len` writes.
#[no_mangle]
pub unsafe extern "C" fn ratecore_limit_directive_check_zone(
    limit: *const ratecore_limit_directive,
    zone: *const ratecore_zone_directive,
    error_out: *mut c_char,
    error_len: usize,
) -> ratecore_status {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        let limit = *unsafe { input_ref(limit) }?;
        // SAFETY: forwarded from this function's contract.
        let zone = *unsafe { input_ref(zone) }?;
        if limit.cost_text.len != 0 {
            return Ok(());
        }
        let quotas = zone
            .quotas
            .get(..zone.quota_count)
            .ok_or(ratecore_status::InvalidArgument)?;
        // SAFETY: forwarded from this function's contract.
        let name = unsafe { input_slice(zone.name.data, zone.name.len) }?;
        reported(
            directive_limit::check_cost(limit.cost, name, quotas),
            error_out,
            error_len,
        )
    })
}
