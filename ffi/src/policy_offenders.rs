//! Who keeps sending while denied: the keys a policy's limits denied more than once, as
//! text lines, for an operator to see (and, say, to contact or block) — in constant
//! memory inside the policy.

use std::mem::size_of;

use ratecore::policy::{Offender, OffenderStats, Policy, OFFENDERS, OFFENDER_KEY_BYTES};

use crate::ffi::{handle_ref, sized_output};
use crate::lines::{push_line, TextOut};
use crate::panic::guard;
use crate::policy::ratecore_policy;
use crate::status::ratecore_status;

/// The most keys `ratecore_policy_offenders` reports: when more keep sending while denied,
/// the one with the fewest denials makes room (`ratecore_offender_stats.evicted`).
pub const RATECORE_OFFENDERS: usize = 64;

/// The most key bytes an offender's line shows (before escaping); a longer key is cut
/// there, and its line says so.
pub const RATECORE_OFFENDER_KEY_BYTES: usize = 64;

const _: () = assert!(RATECORE_OFFENDERS == OFFENDERS);
const _: () = assert!(RATECORE_OFFENDER_KEY_BYTES == OFFENDER_KEY_BYTES);

/// The offender recorder's own counters. Set `size` to `sizeof(ratecore_offender_stats)`
/// before the call: a later library that adds fields writes only the ones that size
/// covers. A `size` below this struct's is `INVALID_ARGUMENT`. When written, `size` is set
/// to the number of bytes written.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ratecore_offender_stats {
    /// The struct's size in bytes: set by the caller, then the bytes written.
    pub size: usize,
    /// Offenders dropped to make room for new ones since the policy was built (reloads
    /// keep counting).
    pub evicted: u64,
    /// Denials not recorded because another thread was recording at that moment (the
    /// counts are exact while this is 0).
    pub unrecorded: u64,
}

/// The report's lines.
fn report_text(offenders: &[Offender]) -> Vec<u8> {
    let mut text = Vec::new();
    for offender in offenders {
        let denials = offender.denials.to_string();
        push_line(
            &mut text,
            &[
                offender.rule.as_bytes(),
                offender.limit.as_bytes(),
                &offender.key,
                denials.as_bytes(),
                if offender.truncated { b"1" } else { b"0" },
            ],
        );
    }
    text
}

/// Writes the keys the policy's limits kept denying — each denied at least twice by the
/// same limit; a reload keeps the counts of the limits it leaves unchanged and drops the
/// others' — into `out` (`cap` bytes), one line each, most denials first (then by key):
///
/// ```text
/// rule<TAB>limit<TAB>key<TAB>denials<TAB>cut<LF>
/// ```
///
/// `rule` and `limit` name the limit that denied; `key` is the key it denied: the values
/// of the limit's key attributes joined by `/` (an absent one, under
/// `on_missing = "shared"`, as empty), its first `RATECORE_OFFENDER_KEY_BYTES` bytes;
/// `denials` is the count in decimal (exact while `stats_out->unrecorded` is 0); `cut` is
/// `1` when the key was longer than that and is shown cut, else `0`. Every field is
/// escaped: bytes 0x20 to 0x7e but the backslash stand for themselves, the backslash is
/// written `\\`, and every other byte (tab, newline, any control or non-ASCII byte, UTF-8
/// included) `\xNN`, two lowercase hex digits; so a key cannot break a line or a field,
/// and the text is printable ASCII, exactly 5 fields to a line. At most
/// `RATECORE_OFFENDERS` lines; none is the empty text. A key is counted when a limit
/// decides its denial; keys only ever denied once are not shown.
///
/// On success writes the text's length to `*len_out` and the recorder's counters to
/// `*stats_out`. If `cap` is too small, returns `BUFFER_TOO_SMALL`, writes the length
/// needed to `*len_out` and still the counters to `*stats_out`, but nothing to `out`;
/// the report may grow before the next call, so call again with at least that much
/// (`RATECORE_OFFENDERS × (4 × RATECORE_OFFENDER_KEY_BYTES + 4 × the longest rule and
/// limit names + 32)` bytes always suffice). Errors: `NULL_POINTER`, `INVALID_ARGUMENT`
/// (a misaligned pointer, a length above `PTRDIFF_MAX`, a `size` too small),
/// `BUFFER_TOO_SMALL`. Allocates; briefly excludes the recording of denials, which other
/// threads' checks then skip (counted as `unrecorded`) rather than wait.
///
/// # Safety
/// `policy` is NULL or a live handle; `out` valid for `cap` writes (or NULL with 0);
/// `len_out` NULL or valid for one write; `stats_out` NULL or valid for reads and writes
/// of its `size` bytes, its `size` set.
#[no_mangle]
pub unsafe extern "C" fn ratecore_policy_offenders(
    policy: *const ratecore_policy,
    out: *mut u8,
    cap: usize,
    len_out: *mut usize,
    stats_out: *mut ratecore_offender_stats,
) -> ratecore_status {
    guard(|| {
        // SAFETY: a live handle not freed during this call, or NULL (caller's promise).
        let policy: &Policy = unsafe { handle_ref::<ratecore_policy>(policy) }?;
        // SAFETY: forwarded from this function's contract.
        let sink = unsafe { TextOut::new(out, cap, len_out) }?;
        // SAFETY: NULL, or valid for this call with its size set (caller's promise).
        let stats = unsafe { sized_output(stats_out) }?;
        let (
            offenders,
            OffenderStats {
                evicted,
                unrecorded,
            },
        ) = policy.offenders();
        stats.write(ratecore_offender_stats {
            size: size_of::<ratecore_offender_stats>(),
            evicted,
            unrecorded,
        });
        sink.deliver(&report_text(&offenders))
    })
}
