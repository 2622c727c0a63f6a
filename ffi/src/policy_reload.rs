//! Replacing a policy in place, while other threads keep checking with it: limits that
//! did not change keep their counters, and their state unless a changed limit shares
//! their table.

use std::ffi::c_char;
use std::mem::{offset_of, size_of};

use ratecore::policy::{ConfigError, Policy, ReloadReport};

use crate::ffi::{handle_ref, versioned_output};
use crate::panic::guard;
use crate::policy::{configured, path_arg, ratecore_policy, toml_source};
use crate::status::ratecore_status;

/// What a reload kept, started afresh and dropped, counted in limits (shadow limits
/// included), and how many overrides it dropped. Set `size` to
/// `sizeof(ratecore_reload_report)` before the call. A `size` below the struct's first
/// version (up to `dropped`) is `INVALID_ARGUMENT`; otherwise the library writes the
/// largest version that size covers (a caller built against an older header gets the
/// fields it knows, a newer one's extra fields are left alone) and, on success, sets
/// `size` to the number of bytes written.
///
/// A rule's limits on one key (with one `on_missing` and shadow flag) share one table:
/// the state of every key for all of them. A reload hands a table over whole or not at
/// all, so `kept + fresh` is the new version's limit count and `dropped` counts old limits
/// apart from that. For example, a rule with limits `a` (unchanged) and `b` (its quota
/// changed) on one key: `a` and `b` start with a fresh table, so `kept = 0`, `fresh = 2`;
/// the old `b` is gone, so `dropped = 1`; and `a` keeps its counters.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ratecore_reload_report {
    /// The struct's size in bytes: set by the caller, then the bytes written.
    pub size: usize,
    /// Limits whose table — the state of their keys — was handed over: every limit
    /// sharing it is unchanged in identity (rule, name, key, `on_missing`, algorithm,
    /// quota, shadow flag). They keep their state and their counters.
    pub kept: usize,
    /// Limits of the new version that start with no state: new or changed ones (with
    /// zero counters), and unchanged ones sharing a table with one of those (which keep
    /// their counters).
    pub fresh: usize,
    /// Limits of the old version the new one has no identical limit for: removed, or
    /// changed (a changed limit's old form is dropped and its new form is fresh).
    pub dropped: usize,
    /// Overrides in force before the reload that the new version does not have: set
    /// through `ratecore_policy_set_override` (a reload replaces the override set with
    /// the configuration's), or removed from the configuration. Added in the second
    /// version of this struct.
    pub overrides_dropped: usize,
}

/// Runs a reload on the handle and reports it: the common part of the `_reload_*` calls.
///
/// # Safety
/// `policy` is NULL or a live handle; `error_out` NULL or valid for `error_len` writes;
/// `report_out` as for `versioned_output`.
unsafe fn reload(
    policy: *const ratecore_policy,
    error_out: *mut c_char,
    error_len: usize,
    report_out: *mut ratecore_reload_report,
    run: impl FnOnce(&Policy) -> Result<Result<ReloadReport, ConfigError>, ratecore_status>,
) -> ratecore_status {
    guard(|| {
        // SAFETY: a live handle not freed during this call, or NULL (caller's promise).
        let policy = unsafe { handle_ref::<ratecore_policy>(policy) }?;
        // The report's sizes, version by version: the first ended with `dropped`.
        let versions = [
            offset_of!(ratecore_reload_report, overrides_dropped),
            size_of::<ratecore_reload_report>(),
        ];
        // SAFETY: NULL, or valid for this call with its size set (caller's promise).
        let out = unsafe { versioned_output(report_out, &versions) }?;
        // SAFETY: forwarded from this function's contract.
        let report = unsafe { configured(run(policy)?, error_out, error_len) }?;
        let ReloadReport {
            kept,
            fresh,
            dropped,
            overrides_dropped,
        } = report;
        let size = out.bytes();
        out.write(ratecore_reload_report {
            size,
            kept,
            fresh,
            dropped,
            overrides_dropped,
        });
        Ok(())
    })
}

/// Replaces the policy's rules and answers with those of TOML text (`toml_len` bytes,
/// UTF-8; `origin` as for `ratecore_policy_from_toml`), atomically: each check runs
/// wholly on the old version or wholly on the new one. Limits whose identity (rule, name,
/// key, `on_missing`, algorithm, quota, shadow flag) did not change keep their counters,
/// and their state — the requests they admitted still count — unless they share a table
/// with a new or changed limit (a rule's limits on one key), which starts that table
/// afresh; new or changed limits start afresh; removed ones are dropped once the last
/// check using them ends. The overrides become the new configuration's: those set
/// through `ratecore_policy_set_override` are dropped. On success the report (see
/// `ratecore_reload_report` for what it counts) goes to `*report_out`. `(NULL, 0)` as
/// `toml` is the empty policy, which limits nothing.
///
/// Errors as for `ratecore_policy_from_toml` (`INVALID_CONFIG`, the message written to
/// `error_out`), plus `NULL_POINTER` and `INVALID_ARGUMENT` for the handle and
/// `report_out`. On any error the version in force stays, untouched, and answers as
/// before.
///
/// Thread safety: may run while other threads check, peek or read metrics on the same
/// handle, and while other threads reload it (reloads take turns; each builds on the
/// version the one before left). Not while `ratecore_policy_free` runs.
///
/// # Safety
/// `policy` is NULL or a live handle; the strings are valid for their lengths;
/// `error_out` NULL or valid for `error_len` writes; `report_out` NULL or valid for
/// reads and writes of its `size` bytes, its `size` set.
#[no_mangle]
pub unsafe extern "C" fn ratecore_policy_reload_toml(
    policy: *const ratecore_policy,
    toml: *const u8,
    toml_len: usize,
    origin: *const u8,
    origin_len: usize,
    error_out: *mut c_char,
    error_len: usize,
    report_out: *mut ratecore_reload_report,
) -> ratecore_status {
    let run = |policy: &Policy| {
        // SAFETY: forwarded from this function's contract.
        let (text, origin) = unsafe { toml_source(toml, toml_len, origin, origin_len) }?;
        Ok(policy.reload_toml_str(text, origin))
    };
    // SAFETY: forwarded from this function's contract.
    unsafe { reload(policy, error_out, error_len, report_out, run) }
}

/// `ratecore_policy_reload_toml` with the TOML file at `path` (NUL-terminated, UTF-8).
/// Errors as for `ratecore_policy_from_file` (`INVALID_CONFIG`, `CONFIG_UNREADABLE`, the
/// message written to `error_out`); on any error the version in force stays.
///
/// # Safety
/// `policy` is NULL or a live handle; `path` NULL or NUL-terminated; `error_out` NULL or
/// valid for `error_len` writes; `report_out` NULL or valid for reads and writes of its
/// `size` bytes, its `size` set.
#[no_mangle]
pub unsafe extern "C" fn ratecore_policy_reload_file(
    policy: *const ratecore_policy,
    path: *const c_char,
    error_out: *mut c_char,
    error_len: usize,
    report_out: *mut ratecore_reload_report,
) -> ratecore_status {
    let run = |policy: &Policy| {
        // SAFETY: forwarded from this function's contract.
        let path = unsafe { path_arg(path) }?;
        Ok(policy.reload_toml_file(path))
    };
    // SAFETY: forwarded from this function's contract.
    unsafe { reload(policy, error_out, error_len, report_out, run) }
}
