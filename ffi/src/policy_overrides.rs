//! Per-client overrides at run time: another quota for the requests of one limit whose
//! attribute has a chosen value (app `acme` → 5000 per hour, client `c-42` → unlimited),
//! set, removed and listed while other threads check.

use std::ffi::c_char;
use std::mem::{align_of, offset_of, size_of};

use ratecore::policy::{OverrideQuota, Policy, PolicyError};

use crate::ffi::{handle_ref, input_slice, output, sized_input, with_handle};
use crate::headers::utf8;
use crate::lines::{push_line, TextOut};
use crate::panic::guard;
use crate::policy::{ratecore_policy, write_error};
use crate::status::ratecore_status;

/// What an override gives the requests it selects. Set `size` to
/// `sizeof(ratecore_override_quota)`: a later library that adds fields reads only the
/// ones that size covers. A `size` below this struct's is `INVALID_ARGUMENT`; a larger
/// one (a caller built against a newer header) is accepted, its unknown fields ignored.
///
/// An override keeps its limit's algorithm and period and changes how many requests a
/// period admits (and a GCRA limit's burst), so a key keeps what it has consumed when
/// its quota changes: a window's count carries over (900 used of 1000, raised to 5000,
/// leaves 4100), and GCRA keeps the time the key owes.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ratecore_override_quota {
    /// `sizeof(ratecore_override_quota)` as the caller compiled it.
    pub size: usize,
    /// The limit does not apply to the selected requests at all (they count as
    /// `skipped` in its metrics). `limit` and `burst` must then be 0, else
    /// `INVALID_ARGUMENT`.
    pub unlimited: bool,
    /// Requests per the limit's own period, at least 1 (when not `unlimited`).
    pub limit: u64,
    /// GCRA's burst; 0: none (the burst is then `limit`). Non-zero only for a limit whose
    /// algorithm is GCRA, else `INVALID_OVERRIDE`.
    pub burst: u64,
}

/// [`ratecore_override_quota`] as the library reads it: `unlimited` as a byte, since a
/// Rust `bool` must be 0 or 1 and the caller's memory may hold any byte there.
#[repr(C)]
#[derive(Clone, Copy)]
struct RawOverrideQuota {
    size: usize,
    unlimited: u8,
    limit: u64,
    burst: u64,
}

const _: () = {
    assert!(size_of::<RawOverrideQuota>() == size_of::<ratecore_override_quota>());
    assert!(align_of::<RawOverrideQuota>() == align_of::<ratecore_override_quota>());
    assert!(
        offset_of!(RawOverrideQuota, unlimited) == offset_of!(ratecore_override_quota, unlimited)
    );
    assert!(offset_of!(RawOverrideQuota, limit) == offset_of!(ratecore_override_quota, limit));
    assert!(offset_of!(RawOverrideQuota, burst) == offset_of!(ratecore_override_quota, burst));
    assert!(size_of::<bool>() == 1);
};

/// Reads and checks the caller's quota.
///
/// # Safety
/// As for `sized_input`.
unsafe fn override_quota(
    quota: *const ratecore_override_quota,
) -> Result<OverrideQuota, ratecore_status> {
    // SAFETY: forwarded from this function's contract; the raw struct has the same size,
    // alignment and field offsets (asserted above), and every bit pattern is one of its
    // values.
    let raw = unsafe { sized_input(quota.cast::<RawOverrideQuota>()) }?;
    match (raw.unlimited, raw.limit, raw.burst) {
        (0, limit, 0) => Ok(OverrideQuota::Limit { limit, burst: None }),
        (0, limit, burst) => Ok(OverrideQuota::Limit {
            limit,
            burst: Some(burst),
        }),
        (1, 0, 0) => Ok(OverrideQuota::Unlimited),
        _ => Err(ratecore_status::InvalidArgument),
    }
}

/// The status of an override change's error.
fn override_status(error: &PolicyError) -> ratecore_status {
    match error {
        PolicyError::UnknownLimit { .. } => ratecore_status::UnknownLimit,
        PolicyError::AttributeName(_) | PolicyError::Override { .. } => {
            ratecore_status::InvalidOverride
        }
        _ => ratecore_status::PolicyError,
    }
}

/// Which override: the limit (its rule's name and its own) and the selecting attribute
/// and value.
struct Selector<'a> {
    rule: &'a str,
    limit: &'a str,
    attribute: &'a str,
    value: &'a [u8],
}

impl<'a> Selector<'a> {
    /// Reads and checks the four strings.
    ///
    /// # Safety
    /// Each pointer is valid for its length as for `input_slice`, during `'a`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn new(
        rule: *const u8,
        rule_len: usize,
        limit: *const u8,
        limit_len: usize,
        attribute: *const u8,
        attribute_len: usize,
        value: *const u8,
        value_len: usize,
    ) -> Result<Self, ratecore_status> {
        // SAFETY: every (pointer, length) pair is valid (forwarded from this function's
        // contract).
        unsafe {
            Ok(Self {
                rule: utf8(rule, rule_len)?,
                limit: utf8(limit, limit_len)?,
                attribute: utf8(attribute, attribute_len)?,
                value: input_slice(value, value_len)?,
            })
        }
    }
}

/// Gives the requests of limit `limit` of rule `rule` whose attribute `attribute` has
/// the value `value` the quota `*quota`, or replaces the one they had. The change is
/// published atomically while other threads check: a check sees the overrides before
/// it or after it, and no other key is disturbed; a key the override selects keeps what
/// it has consumed (see `ratecore_override_quota`). When a request matches overrides on
/// several attributes of one limit, the attributes are tried in the order they first got
/// one of the limit's overrides, and the first match applies.
/// Overrides last until removed, or until a reload replaces them with the
/// configuration's (`ratecore_reload_report.overrides_dropped` counts those lost).
///
/// `rule`, `limit` and `attribute` are UTF-8 (the attribute's name as requests carry
/// it); `value` is raw bytes, compared for equality (`(NULL, 0)` is the empty value).
/// Not NUL-terminated.
///
/// On `UNKNOWN_LIMIT`, `INVALID_OVERRIDE` and `POLICY_ERROR` a message — e.g. `rule
/// "api", limit "per-app": override: burst only applies to algorithm = "gcra"` — is
/// written NUL-terminated (and truncated) to `error_out` if `error_len > 0`, as
/// `ratecore_policy_from_toml` writes its errors; nothing is written otherwise.
///
/// Errors (nothing changed): `NULL_POINTER`, `INVALID_ARGUMENT` (a misaligned pointer, a
/// length above `PTRDIFF_MAX`, a `size` too small, `unlimited` with a non-zero `limit`
/// or `burst`), `INVALID_UTF8`, `UNKNOWN_LIMIT` (no such limit in the version in
/// force), `INVALID_OVERRIDE` (a bad attribute name, a `limit` of 0, a quota the
/// limit's algorithm cannot hold, a burst on a limit that is not GCRA).
///
/// Thread safety: may run while other threads check, read or reload the policy; changes
/// and reloads take turns, each building on the version the one before left. Costs a
/// copy of part of that limit's override map, and allocates.
///
/// # Safety
/// `policy` is NULL or a live handle; the strings valid for their lengths; `quota` NULL
/// or valid for reads of its `size` bytes, its `size` set; `error_out` NULL or valid for
/// `error_len` writes.
#[no_mangle]
pub unsafe extern "C" fn ratecore_policy_set_override(
    policy: *const ratecore_policy,
    rule: *const u8,
    rule_len: usize,
    limit: *const u8,
    limit_len: usize,
    attribute: *const u8,
    attribute_len: usize,
    value: *const u8,
    value_len: usize,
    quota: *const ratecore_override_quota,
    error_out: *mut c_char,
    error_len: usize,
) -> ratecore_status {
    guard(|| {
        // SAFETY: a live handle not freed during this call, or NULL (caller's promise).
        let policy: &Policy = unsafe { handle_ref::<ratecore_policy>(policy) }?;
        // SAFETY: forwarded from this function's contract.
        let target = unsafe {
            Selector::new(
                rule,
                rule_len,
                limit,
                limit_len,
                attribute,
                attribute_len,
                value,
                value_len,
            )
        }?;
        // SAFETY: forwarded from this function's contract.
        let quota = unsafe { override_quota(quota) }?;
        policy
            .set_override(
                target.rule,
                target.limit,
                target.attribute,
                target.value,
                quota,
            )
            .map_err(|error| {
                // SAFETY: forwarded from this function's contract.
                unsafe { write_error(&error, error_out, error_len) };
                override_status(&error)
            })
    })
}

/// Removes the override of limit `limit` of rule `rule` for the requests whose attribute
/// `attribute` has the value `value` (strings as for `ratecore_policy_set_override`):
/// they get the limit's own quota again, keeping what they consumed. On success writes
/// to `*removed_out` whether there was such an override (false: nothing changed).
///
/// Errors (nothing changed, nothing written): `NULL_POINTER`, `INVALID_ARGUMENT`,
/// `INVALID_UTF8`, `UNKNOWN_LIMIT`. Thread safety as for `ratecore_policy_set_override`.
///
/// # Safety
/// `policy` is NULL or a live handle; the strings valid for their lengths; `removed_out`
/// NULL or valid for one write.
#[no_mangle]
pub unsafe extern "C" fn ratecore_policy_remove_override(
    policy: *const ratecore_policy,
    rule: *const u8,
    rule_len: usize,
    limit: *const u8,
    limit_len: usize,
    attribute: *const u8,
    attribute_len: usize,
    value: *const u8,
    value_len: usize,
    removed_out: *mut bool,
) -> ratecore_status {
    guard(|| {
        // SAFETY: a live handle not freed during this call, or NULL (caller's promise).
        let policy: &Policy = unsafe { handle_ref::<ratecore_policy>(policy) }?;
        // SAFETY: valid for one write during this call, or NULL (caller's promise).
        let out = unsafe { output(removed_out) }?;
        // SAFETY: forwarded from this function's contract.
        let target = unsafe {
            Selector::new(
                rule,
                rule_len,
                limit,
                limit_len,
                attribute,
                attribute_len,
                value,
                value_len,
            )
        }?;
        let removed = policy
            .remove_override(target.rule, target.limit, target.attribute, target.value)
            .map_err(|error| override_status(&error))?;
        out.write(removed);
        Ok(())
    })
}

/// Writes every override in force into `out` (`cap` bytes), one line each:
///
/// ```text
/// rule<TAB>limit<TAB>attribute<TAB>value<TAB>quota<TAB>burst<LF>
/// ```
///
/// `quota` is the limit in decimal, or `unlimited`; `burst` is GCRA's burst in decimal,
/// `0` for none (as in `ratecore_override_quota`). Every field is escaped: bytes 0x20 to
/// 0x7e but the backslash stand for themselves, the backslash is written `\\`, and every
/// other byte (tab, newline, any control or non-ASCII byte, UTF-8 included) `\xNN`, two
/// lowercase hex digits; so the text is printable ASCII, one override per line, exactly
/// 6 fields to a line. Lines are sorted by rule, limit, attribute and value (their bytes
/// before escaping); an empty set is the empty text.
///
/// One call is one snapshot: the overrides of one moment, whatever other threads
/// change meanwhile. (An index-based pair of calls could not promise that: the order
/// of the overrides changes with every change, and each call would copy the whole set.)
///
/// On success writes the text's length to `*len_out`. If `cap` is too small, returns
/// `BUFFER_TOO_SMALL`, writes the length needed to `*len_out` and nothing to `out`; as
/// the set may grow before the next call, call again with at least that much, until it
/// fits. Errors: `NULL_POINTER`, `INVALID_ARGUMENT`, `BUFFER_TOO_SMALL`. Allocates.
///
/// # Safety
/// `policy` is NULL or a live handle; `out` valid for `cap` writes (or NULL with 0);
/// `len_out` NULL or valid for one write.
#[no_mangle]
pub unsafe extern "C" fn ratecore_policy_overrides(
    policy: *const ratecore_policy,
    out: *mut u8,
    cap: usize,
    len_out: *mut usize,
) -> ratecore_status {
    let list = |policy: &Policy| {
        // SAFETY: forwarded from this function's contract.
        let sink = unsafe { TextOut::new(out, cap, len_out) }?;
        sink.deliver(&override_lines(policy))
    };
    // SAFETY: a live handle not freed during this call, or NULL (caller's promise).
    unsafe { with_handle(policy, list) }
}

/// `ratecore_policy_overrides`' text for `policy`.
fn override_lines(policy: &Policy) -> Vec<u8> {
    let mut overrides = policy.overrides();
    overrides.sort_by(|a, b| {
        (&a.0, &a.1, &a.2.attribute, &a.2.value).cmp(&(&b.0, &b.1, &b.2.attribute, &b.2.value))
    });
    let mut text = Vec::new();
    for (rule, limit, o) in &overrides {
        let (quota, burst) = match o.quota {
            OverrideQuota::Limit { limit, burst } => {
                (limit.to_string(), burst.unwrap_or(0).to_string())
            }
            OverrideQuota::Unlimited => (String::from("unlimited"), String::from("0")),
        };
        push_line(
            &mut text,
            &[
                rule.as_bytes(),
                limit.as_bytes(),
                o.attribute.as_bytes(),
                &o.value,
                quota.as_bytes(),
                burst.as_bytes(),
            ],
        );
    }
    text
}
