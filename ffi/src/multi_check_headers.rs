//! One request checked against several tables and its rate-limit headers rendered, in
//! one call: what a web server does per request (`ratecore_tables_check`, then
//! `ratecore_render_check_headers`), without crossing the C boundary twice or reading
//! back the result it just wrote.

use std::ffi::c_char;
use std::ptr::addr_of_mut;

use ratecore::http::{ceil_seconds, HeaderStyle};

use crate::ffi::{input_slice, output, output_slice, Out};
use crate::headers::{ratecore_header_style, RATECORE_MAX_QUOTA_REPORTS};
use crate::multi::{check_into, ratecore_check_item, ratecore_check_result, Check};
use crate::multi_headers::{
    ietf_names_fit, ratecore_header, ratecore_headers, render_into, RATECORE_MAX_HEADERS,
};
use crate::panic::guard;
use crate::quota::ratecore_decision;
use crate::status::ratecore_status;

/// Checks a request as `ratecore_tables_check(items, item_count, now_ns, mode,
/// result_out)` does, then renders its rate-limit headers as
/// `ratecore_render_check_headers(style, items, item_count, result_out, unix_now_ns,
/// out, out_len, headers_out)` does: the same decision, result, header names and value
/// bytes, in one call.
///
/// Everything is checked before anything is consumed: the arguments of both steps, and
/// for the IETF style every item's name (`INVALID_UTF8`, or `INVALID_ARGUMENT` when the
/// names of several-quota tables pass 4,096 bytes in all). So the status is either
/// the check's (an error consumes nothing, and writes only what `ratecore_tables_check`
/// writes on that error), or, once the check is made and `*result_out` written:
/// - `OK`: `*headers_out` lists the headers, their values in `out`;
/// - `BUFFER_TOO_SMALL`: the values need `headers_out->len` bytes (nothing else of
///   `*headers_out` is written). Render them with `ratecore_render_check_headers` from
///   `*result_out` into a buffer that large: never check the request again. Up to 24
///   bytes per value suffice for the seed styles; the IETF lists grow with the quotas.
///
/// Thread safety: as for `ratecore_tables_check`.
///
/// # Safety
/// As for `ratecore_tables_check` (`items`, `result_out`) and
/// `ratecore_render_check_headers` (each item's `name`, `out`, `headers_out`).
#[no_mangle]
#[allow(clippy::too_many_arguments)] // The C signature: both calls' inputs, then outputs.
pub unsafe extern "C" fn ratecore_tables_check_headers(
    items: *const ratecore_check_item,
    item_count: usize,
    now_ns: u64,
    mode: u32,
    style: u32,
    unix_now_ns: u64,
    out: *mut u8,
    out_len: usize,
    result_out: *mut ratecore_check_result,
    headers_out: *mut ratecore_headers,
) -> ratecore_status {
    guard(|| {
        let style = ratecore_header_style::from_code(style)?;
        // SAFETY: forwarded from this function's contract.
        let headers = unsafe { output(headers_out) }?;
        // SAFETY: forwarded from this function's contract.
        let buffer = unsafe { output_slice(out, out_len) }?;
        // SAFETY: forwarded from this function's contract; `ready` runs once the items
        // are checked, before anything is consumed.
        let decision = unsafe {
            check_into(items, item_count, now_ns, mode, result_out, |checks| {
                if style == HeaderStyle::Ietf {
                    ietf_ready(items, item_count, checks)
                } else {
                    Ok(())
                }
            })
        }?;
        if let (Some(names), true) = (numeric_names(style), buffer.len() >= NUMERIC_ROOM) {
            numeric_values(names, &decision, unix_now_ns, buffer.as_ptr(), &headers);
            return Ok(());
        }
        // SAFETY: `result_out` is valid for reading one result (contract) whose
        // decision and first `report_count` reports the check just wrote.
        let result = unsafe { &*result_out };
        // Only the IETF style reads the items (their names).
        let items = if style == HeaderStyle::Ietf {
            // SAFETY: as above (`items`, checked by `check_into`).
            unsafe { input_slice(items, item_count) }?
        } else {
            &[]
        };
        render_into(style, items, result, unix_now_ns, buffer, &headers)
    })
}

/// Whether the IETF style can name every quota of `checks` (`ietf_names_fit`). Out of
/// line: the seed styles never pay for it.
///
/// # Safety
/// `items` was checked by `check_into` (valid for `item_count` items); each item's name
/// is valid for its length.
#[inline(never)]
unsafe fn ietf_ready(
    items: *const ratecore_check_item,
    item_count: usize,
    checks: &[Check],
) -> Result<(), ratecore_status> {
    let counts = checks.iter().map(|c| c.table.config().limit_count());
    if counts.clone().sum::<usize>() > RATECORE_MAX_QUOTA_REPORTS {
        // The check refuses it (TOO_MANY_LIMITS).
        return Ok(());
    }
    // SAFETY: forwarded from this function's contract.
    unsafe { ietf_names_fit(input_slice(items, item_count)?, counts) }
}

/// The header names of the styles whose values are all decimal numbers (limit, remaining,
/// reset, retry; "" where the style has none), as `ratecore::http` spells them: ev.energy
/// and Uphold. Switch (a date) and the IETF lists take `ratecore::http`'s renderer.
fn numeric_names(style: HeaderStyle) -> Option<&'static [&'static str; RATECORE_MAX_HEADERS]> {
    match style {
        HeaderStyle::EvEnergy => Some(&[
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "",
            "retry-after",
        ]),
        HeaderStyle::Uphold => Some(&[
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
            "Retry-After",
        ]),
        _ => None,
    }
}

/// Room for any values `numeric_values` writes: a `u64` has at most 20 digits.
const NUMERIC_ROOM: usize = RATECORE_MAX_HEADERS * 20;

/// The numeric styles' values, each written once, straight into `out` (at least
/// `NUMERIC_ROOM` bytes, so no length is checked): the bytes and order of
/// `ratecore::http::render_header_values`, without its general writer (per request, in
/// a web server). `Retry-After` only on a denial; resets rounded up to whole seconds.
fn numeric_values(
    names: &[&'static str; RATECORE_MAX_HEADERS],
    d: &ratecore_decision,
    unix_now_ns: u64,
    out: *mut u8,
    headers: &Out<ratecore_headers>,
) {
    let [limit, remaining, reset, retry] = *names;
    let headers = headers.as_ptr();
    let mut at = 0;
    let mut count = 0;
    let mut put = |name: &'static str, value: u64| {
        // SAFETY: at most four values of at most 20 bytes each: `at + len` <=
        // NUMERIC_ROOM <= the buffer's length (checked by the caller), which is valid
        // for writes during the exported call (`output_slice`); `count` < 4, so the
        // header pointer stays inside `headers`, valid for one write (`output`).
        unsafe {
            let dst = out.add(at);
            let len = write_decimal(value, dst);
            addr_of_mut!((*headers).headers)
                .cast::<ratecore_header>()
                .add(count)
                .write(ratecore_header {
                    name: name.as_ptr().cast::<c_char>(),
                    name_len: name.len(),
                    value: dst.cast_const(),
                    value_len: len,
                });
            at += len;
        }
        count += 1;
    };
    put(limit, d.limit);
    put(remaining, d.remaining);
    if !reset.is_empty() {
        put(
            reset,
            ceil_seconds(unix_now_ns.saturating_add(d.reset_after_ns)),
        );
    }
    if !d.allowed {
        put(retry, ceil_seconds(d.retry_after_ns));
    }
    // SAFETY: as above; the field pointers stay inside `*headers`.
    unsafe {
        addr_of_mut!((*headers).count).write(count);
        addr_of_mut!((*headers).len).write(at);
    }
}

/// Writes `value`'s decimal digits to `dst` and returns how many. One out-of-line copy
/// for the four values, which needs no saved registers.
///
/// # Safety
/// `dst` is valid for 20 writes.
#[inline(never)]
unsafe fn write_decimal(value: u64, dst: *mut u8) -> usize {
    match u32::try_from(value) {
        // SAFETY: forwarded from this function's contract.
        Ok(small) => unsafe { write_u32(small, dst) },
        // SAFETY: forwarded from this function's contract.
        Err(_) => unsafe { write_u64(value, dst) },
    }
}

/// `write_decimal` past `u32::MAX`, through `itoa`.
///
/// # Safety
/// `dst` is valid for 20 writes.
#[cold]
#[inline(never)]
unsafe fn write_u64(value: u64, dst: *mut u8) -> usize {
    let mut digits = itoa::Buffer::new();
    let text = digits.format(value).as_bytes();
    // SAFETY: a `u64` has at most 20 digits; `text` is not `dst`'s.
    unsafe { copy_short(text, dst) };
    text.len()
}

/// "00" to "99", two bytes each.
static DIGIT_PAIRS: [u8; 200] = {
    let mut table = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        table[2 * i] = b'0' + (i / 10) as u8;
        table[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    table
};

/// Writes `u`'s decimal digits to `dst`, most significant first, and returns how many:
/// straight into place, where `itoa` writes them backwards into its own buffer to be
/// copied on. The digit count picks the arm; each arm's digits come out of one
/// fixed-point product, two per multiplication (James Edward Anhalt III's method), so
/// no division runs. Every `u32` is checked against `itoa` (`write_u32_matches_itoa`).
///
/// # Safety
/// `dst` is valid for 10 writes.
#[inline(always)]
unsafe fn write_u32(u: u32, dst: *mut u8) -> usize {
    // SAFETY: each arm writes its digit count (at most 10) of bytes from `dst`.
    unsafe {
        // A tree of comparisons: at most four for any `u32`.
        if u < 100 {
            if u < 10 {
                dst.write(b'0' + u as u8);
                1
            } else {
                write_pair(dst, u64::from(u));
                2
            }
        } else if u < 1_000_000 {
            if u < 10_000 {
                write_either::<3, 4>(u, dst)
            } else {
                write_either::<5, 6>(u, dst)
            }
        } else if u < 100_000_000 {
            write_either::<7, 8>(u, dst)
        } else {
            write_either::<9, 10>(u, dst)
        }
    }
}

/// `u`'s `A` digits if it is below `10^A`, else its `B` (= `A + 1`) digits.
///
/// # Safety
/// `10^(A-1)` <= `u` < `10^B`; `dst` is valid for `B` writes.
#[inline(always)]
unsafe fn write_either<const A: usize, const B: usize>(u: u32, dst: *mut u8) -> usize {
    // SAFETY: forwarded from this function's contract, by the digit count of `u`.
    unsafe {
        if u64::from(u) < 10u64.pow(A as u32) {
            write_fixed::<A>(u, dst)
        } else {
            write_fixed::<B>(u, dst)
        }
    }
}

/// The `D` digits of `u` (`10^(D-1)` <= `u` < `10^D`, 3 <= `D` <= 10): `t` holds
/// `u / 10^(D-2)` with a 32-bit fraction scaled up so that truncation never loses a
/// digit; its integer part is the first pair, and each multiplication of the fraction by
/// 100 (by 10 for an odd last digit) brings the next into the integer part.
///
/// # Safety
/// `dst` is valid for `D` writes.
#[inline(always)]
unsafe fn write_fixed<const D: usize>(u: u32, dst: *mut u8) -> usize {
    let n = D as u32 - 2;
    let shift = n / 5 * n * 53 / 16;
    // 2^(32+shift) / 10^n rounded up, with the method's small corrections for n >= 6.
    let magic = (1u64 << (32 + shift)) / 10u64.pow(n) + 1 + u64::from(n / 6) - u64::from(n / 8);
    // Below 2^64: the largest product is 1.24e19 (D = 10, u = u32::MAX).
    let mut t = ((magic * u64::from(u)) >> shift) + u64::from(n / 6 * 4);
    // SAFETY: pairs at 0, 2, … and an odd last digit at D - 1: all below D (contract).
    unsafe {
        write_pair(dst, t >> 32);
        let mut at = 2;
        while at + 1 < D {
            t = 100 * (t & 0xffff_ffff);
            write_pair(dst.add(at), t >> 32);
            at += 2;
        }
        if D % 2 == 1 {
            t = 10 * (t & 0xffff_ffff);
            dst.add(D - 1).write(b'0' + (t >> 32) as u8);
        }
    }
    D
}

/// Writes `pair` (below 100) as two digits.
///
/// # Safety
/// `dst` is valid for 2 writes; `pair` < 100.
#[inline(always)]
unsafe fn write_pair(dst: *mut u8, pair: u64) {
    // SAFETY: `2 * pair + 1` < 200 indexes `DIGIT_PAIRS` (contract); `dst` valid for 2
    // writes (contract), unaligned.
    unsafe {
        let digits = DIGIT_PAIRS
            .as_ptr()
            .add(2 * pair as usize)
            .cast::<[u8; 2]>();
        dst.cast::<[u8; 2]>().write_unaligned(digits.read());
    }
}

/// Copies `text` (at most 20 bytes: a number's digits) to `dst` with a few overlapping
/// unaligned moves: a `memcpy` call costs more than the copy.
///
/// # Safety
/// `dst` is valid for `text.len()` writes and does not overlap `text`.
#[inline(always)]
unsafe fn copy_short(text: &[u8], dst: *mut u8) {
    let len = text.len();
    let src = text.as_ptr();
    // SAFETY: every read lies inside `text` and every write inside `dst[..len]` (the
    // head and tail moves overlap when `len` is below twice their width); unaligned
    // reads and writes of plain integers.
    unsafe {
        if len >= 8 {
            let head = src.cast::<u64>().read_unaligned();
            let tail = src.add(len - 8).cast::<u64>().read_unaligned();
            if len > 16 {
                let middle = src.add(8).cast::<u64>().read_unaligned();
                dst.add(8).cast::<u64>().write_unaligned(middle);
            }
            dst.cast::<u64>().write_unaligned(head);
            dst.add(len - 8).cast::<u64>().write_unaligned(tail);
        } else if len >= 4 {
            let head = src.cast::<u32>().read_unaligned();
            let tail = src.add(len - 4).cast::<u32>().read_unaligned();
            dst.cast::<u32>().write_unaligned(head);
            dst.add(len - 4).cast::<u32>().write_unaligned(tail);
        } else {
            for i in 0..len {
                dst.add(i).write(src.add(i).read());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratecore::http::{render_header_values, HeaderInput, HeaderValue, MAX_HEADER_VALUES};
    use ratecore::Decision;

    #[test]
    fn copy_short_copies_every_length() {
        let source = *b"12345678901234567890";
        for len in 0..=source.len() {
            let mut dst = [b'x'; 24];
            // SAFETY: `dst` holds more than `len` bytes and does not overlap `source`.
            unsafe { copy_short(&source[..len], dst.as_mut_ptr()) };
            assert_eq!(&dst[..len], &source[..len]);
            assert!(dst[len..].iter().all(|&b| b == b'x'), "len {len}");
        }
    }

    /// Every `u32` as `itoa` writes it: minutes even optimised, so run on demand with
    /// `cargo test --release -p ratecore-ffi --lib write_u32 -- --ignored`. The
    /// digit-count boundaries and random values run by default in
    /// `numeric_values_match_the_renderer`.
    #[test]
    #[ignore = "every u32: slow without optimisation"]
    fn write_u32_matches_itoa() {
        let mut digits = itoa::Buffer::new();
        let mut got = [0u8; 10];
        for u in 0..=u32::MAX {
            // SAFETY: `got` holds 10 bytes.
            let len = unsafe { write_u32(u, got.as_mut_ptr()) };
            assert_eq!(&got[..len], digits.format(u).as_bytes(), "{u}");
        }
    }

    /// The numeric styles' values are `ratecore::http`'s, for numbers of every length
    /// and 100,000 pseudo-random ones (of every magnitude).
    #[test]
    fn numeric_values_match_the_renderer() {
        let mut numbers = vec![0, u64::MAX, u32::MAX.into(), u64::from(u32::MAX) + 1];
        let mut power = 1u64;
        for _ in 0..19 {
            numbers.extend([power - 1, power, power + 1]);
            power *= 10;
        }
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..100_000 {
            // splitmix64, shifted right by a random amount
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            numbers.push(z >> (state >> 58));
        }
        for style in [HeaderStyle::EvEnergy, HeaderStyle::Uphold] {
            let names = numeric_names(style).unwrap();
            for (i, &n) in numbers.iter().enumerate() {
                let m = numbers[(i * 7 + 3) % numbers.len()];
                let decision = Decision {
                    allowed: i % 2 == 0,
                    limit: n,
                    remaining: m,
                    reset_after: n,
                    retry_after: if i % 2 == 0 { 0 } else { m },
                };
                let input = HeaderInput {
                    decision,
                    quotas: &[],
                    unix_now_nanos: m,
                };
                let mut expected = [0u8; 128];
                let mut values = [HeaderValue::default(); MAX_HEADER_VALUES];
                let count =
                    render_header_values(style, &input, &mut expected, &mut values).unwrap();
                let mut buffer = [0u8; NUMERIC_ROOM];
                let mut headers = std::mem::MaybeUninit::<ratecore_headers>::zeroed();
                // SAFETY: a valid, aligned pointer to one `ratecore_headers`.
                let out = unsafe { output(headers.as_mut_ptr()) }.unwrap();
                numeric_values(names, &decision.into(), m, buffer.as_mut_ptr(), &out);
                // SAFETY: zeroed (plain integers and pointers), then written by
                // `numeric_values`.
                let got = unsafe { headers.assume_init_ref() };
                assert_eq!(got.count, count);
                for (value, header) in values.iter().zip(&got.headers).take(count) {
                    // SAFETY: the name is a static string of `name_len` bytes, the value
                    // lies inside `buffer`.
                    let (name, bytes) = unsafe {
                        (
                            std::slice::from_raw_parts(header.name.cast::<u8>(), header.name_len),
                            std::slice::from_raw_parts(header.value, header.value_len),
                        )
                    };
                    assert_eq!(name, value.name.as_bytes());
                    assert_eq!(bytes, &expected[value.start..value.start + value.len]);
                }
            }
        }
    }
}
