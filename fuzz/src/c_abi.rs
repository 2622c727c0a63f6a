//! `c_abi`: the C ABI (`ratecore-ffi`) called with arbitrary arguments.
//!
//! An input is a sequence of calls to the exported `extern "C"` functions, on an arena
//! of live handles and region buffers: limiters, tables (owned, initialised in a region,
//! attached to one), stats and introspection, status messages, policies (checked with
//! the fixed-identity request and with named attributes, reloaded from text or a file,
//! per-limit metrics with their names copied out, the metrics' text export, memory,
//! overrides set, removed and listed, the repeat-offender report).
//! Every pointer passed is either NULL, misaligned (inside a valid buffer, so a missing
//! check would still not read out of bounds), or valid for exactly the length passed; a
//! length is exact, 0, or above `PTRDIFF_MAX` (rejected before any read). Structs that
//! state their size state it exact, short (rejected) or long (a newer header's).
//!
//! - no panic anywhere (the fuzz harness aborts on any panic, even a caught one), and no
//!   status is `RATECORE_STATUS_PANIC`;
//! - when an argument is bad (NULL, misaligned, too long) the status is one of the
//!   statuses those faults call for, and no output was written;
//! - otherwise the status and outputs are exactly what the Rust API returns for the same
//!   request (a `Limiter`/`Composite`, or a keyed table with at most 8 keys, whose
//!   decisions do not depend on the hash seed; a policy check that would give one of a
//!   policy's limits a ninth key is not made; a reloaded handle is compared with its
//!   mirror reloaded alike), and outputs are written only on success (except what is
//!   documented to be reported on `BUFFER_TOO_SMALL`, and configuration errors' text);
//! - every status has a message.

use std::collections::BTreeSet;
use std::ffi::{c_char, c_void, CStr, CString};
use std::fmt;
use std::ptr;

use arbitrary::Arbitrary;
use ratecore::http::{
    render_body, render_headers, BodyStyle, HeaderInput, HeaderStyle, QuotaReport,
};
use ratecore::policy::{Attribute, ConfigError, OnMissing, Policy, PolicyDecision, Request};
use ratecore::policy::{OverrideQuota, PolicyError};
use ratecore::table::region::region_size;
use ratecore::table::OwnedTable;
use ratecore::{
    Algorithm, Composite, Decision, FullPolicy, LimitSpec, Limiter, Quota, RateLimiter, Table,
    TableConfig, TableStats,
};
use ratecore_ffi::table::ratecore_table_stats;
use ratecore_ffi::{
    ratecore_attribute, ratecore_http_request, ratecore_limit_metrics, ratecore_policy_check_http,
    ratecore_policy_limit_count, ratecore_policy_limit_metrics, ratecore_policy_memory_bytes,
    ratecore_policy_outcome, ratecore_policy_peek_http, ratecore_policy_reload_file,
    ratecore_policy_reload_toml, ratecore_policy_render_metrics, ratecore_reload_report,
    RATECORE_MAX_REQUEST_ATTRIBUTES, RATECORE_NO_LIMIT,
};
use ratecore_ffi::{
    ratecore_decision, ratecore_limiter, ratecore_limiter_check, ratecore_limiter_check_each,
    ratecore_limiter_free, ratecore_limiter_limit_count, ratecore_limiter_new,
    ratecore_limiter_peek, ratecore_limiter_peek_each, ratecore_quota, ratecore_status,
    ratecore_status_message, ratecore_table, ratecore_table_attach_region, ratecore_table_capacity,
    ratecore_table_check, ratecore_table_check_each, ratecore_table_free,
    ratecore_table_full_policy, ratecore_table_get_stats, ratecore_table_init_region,
    ratecore_table_limit_count, ratecore_table_limits, ratecore_table_new, ratecore_table_peek,
    ratecore_table_peek_each, ratecore_table_region_size, ratecore_version,
};
use ratecore_ffi::{
    ratecore_offender_stats, ratecore_override_quota, ratecore_policy_offenders,
    ratecore_policy_overrides, ratecore_policy_remove_override, ratecore_policy_set_override,
};
use ratecore_ffi::{
    ratecore_policy, ratecore_policy_check, ratecore_policy_free, ratecore_policy_from_toml,
    ratecore_policy_peek, ratecore_policy_result, ratecore_quota_report, ratecore_render_headers,
    ratecore_render_problem_json, ratecore_render_text_body, ratecore_request,
};
use ratecore_ffi::{
    ratecore_table_charge, ratecore_table_check_undoable, ratecore_table_undo,
    RATECORE_TABLE_CHARGE_WORDS,
};

use crate::gen::Num;
use crate::region::{expected_attach, AlignedBuf};

/// Tables bigger than this are not created (memory, not bugs).
pub const MAX_TABLE_BYTES: usize = 8 << 20;
/// At most this many calls per input.
pub const MAX_OPS: usize = 200;

type S = ratecore_status;

/// A quota as C passes it.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawQuota {
    /// `limit`.
    pub limit: Num,
    /// `period_ns`.
    pub period: Num,
    /// `burst` (0: the default).
    pub burst: Option<Num>,
    /// `algorithm` (valid codes are 1 to 4).
    pub algorithm: u8,
    /// `sub_windows`.
    pub sub_windows: u16,
}

impl RawQuota {
    fn c(&self) -> ratecore_quota {
        ratecore_quota {
            limit: self.limit.get(),
            period_ns: self.period.get(),
            burst: self.burst.map_or(0, Num::get),
            algorithm: u32::from(self.algorithm % 6),
            sub_windows: u32::from(self.sub_windows),
        }
    }
}

/// The documented reading of a C quota: `Ok(spec)` or the status.
fn spec_of(q: &ratecore_quota) -> Result<LimitSpec, S> {
    let algorithm = Algorithm::from_code(q.algorithm, q.sub_windows).ok_or(S::UnknownAlgorithm)?;
    let mut quota = Quota::new(q.limit, q.period_ns)?;
    if q.burst != 0 {
        quota = quota.with_burst(q.burst)?;
    }
    let gcra = algorithm == Algorithm::Gcra;
    let strict = matches!(algorithm, Algorithm::SlidingWindowStrict { .. });
    if (!gcra && q.burst != 0 && q.burst != q.limit) || (!strict && q.sub_windows != 0) {
        return Err(S::InvalidArgument);
    }
    Ok(LimitSpec { algorithm, quota })
}

/// How a slice argument is passed.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SliceArg {
    /// Valid pointer, exact length.
    Exact,
    /// NULL and length 0 (the empty slice).
    NullEmpty,
    /// NULL with a length.
    NullWithLen,
    /// Valid pointer, length above `PTRDIFF_MAX / size`.
    Huge,
    /// Misaligned pointer (element types aligned above 1 only), exact length.
    Misaligned,
}

/// How an output pointer is passed.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutArg {
    /// Valid.
    Valid,
    /// NULL.
    Null,
    /// Misaligned (inside a valid buffer).
    Misaligned,
}

/// Which handle is passed.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandleArg {
    /// A live handle (index modulo their number; NULL if there are none).
    Live(u8),
    /// NULL.
    Null,
    /// A live handle's address plus one.
    Misaligned(u8),
}

/// One call.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// `ratecore_limiter_new`.
    LimiterNew {
        /// Quotas.
        quotas: Vec<RawQuota>,
        /// How they are passed.
        arg: SliceArg,
        /// The out pointer.
        out: OutArg,
    },
    /// `ratecore_limiter_check` / `_peek` (`each`: `_check_each` / `_peek_each`).
    LimiterDecide {
        /// Handle.
        handle: HandleArg,
        /// `now_ns`.
        now: Num,
        /// `cost`.
        cost: Num,
        /// Check rather than peek.
        commit: bool,
        /// Use the `_each` variant with this many states.
        each: Option<(u8, SliceArg)>,
        /// The out pointer.
        out: OutArg,
    },
    /// `ratecore_limiter_limit_count`.
    LimiterCount {
        /// Handle.
        handle: HandleArg,
        /// The out pointer.
        out: OutArg,
    },
    /// `ratecore_limiter_free`.
    LimiterFree {
        /// Handle.
        handle: HandleArg,
    },
    /// `ratecore_table_region_size`, then (if small) `ratecore_table_new`.
    TableNew {
        /// Quotas.
        quotas: Vec<RawQuota>,
        /// How they are passed.
        arg: SliceArg,
        /// Capacity.
        capacity: Num,
        /// Full policy code.
        policy: u8,
        /// The out pointer.
        out: OutArg,
    },
    /// `ratecore_table_init_region` on a fresh buffer.
    InitRegion {
        /// Quotas.
        quotas: Vec<RawQuota>,
        /// Capacity.
        capacity: u8,
        /// Full policy code.
        policy: u8,
        /// Bytes cut from the size needed.
        cut: u16,
        /// Offset from the aligned start.
        skew: u8,
        /// Pass NULL as the region.
        null: bool,
        /// The out pointer.
        out: OutArg,
    },
    /// `ratecore_table_attach_region` to an earlier buffer.
    AttachRegion {
        /// Which buffer.
        region: u8,
        /// Bytes cut off its end.
        cut: u16,
        /// Offset from the aligned start.
        skew: u8,
        /// Pass NULL as the region.
        null: bool,
        /// The out pointer.
        out: OutArg,
    },
    /// `ratecore_table_check` / `_peek`, or `_check_each`.
    TableDecide {
        /// Handle.
        handle: HandleArg,
        /// Key (modulo 8).
        key: u8,
        /// How the key is passed.
        key_arg: SliceArg,
        /// `now_ns`.
        now: Num,
        /// `cost`.
        cost: Num,
        /// Check rather than peek.
        commit: bool,
        /// Use `_check_each` with this many states.
        each: Option<(u8, SliceArg)>,
        /// The out pointer.
        out: OutArg,
    },
    /// `ratecore_table_check_undoable`, then maybe `ratecore_table_undo` of its charge
    /// (first with one word altered, which must be refused, if `tamper`).
    TableUndoable {
        /// Handle.
        handle: HandleArg,
        /// Key (modulo 8).
        key: u8,
        /// `now_ns`.
        now: Num,
        /// `cost`.
        cost: Num,
        /// Pass a states buffer of the table's quota count.
        with_states: bool,
        /// Undo the charge.
        undo: bool,
        /// Before undoing, try the charge with this word (modulo the length) flipped.
        tamper: Option<u8>,
        /// The out pointers (decision and charge alike).
        out: OutArg,
    },
    /// The introspection functions.
    TableInfo {
        /// Handle.
        handle: HandleArg,
        /// Room for this many quotas in `ratecore_table_limits`.
        limits_len: u8,
        /// How that buffer is passed.
        limits_arg: SliceArg,
        /// The out pointers.
        out: OutArg,
    },
    /// `ratecore_table_free`.
    TableFree {
        /// Handle.
        handle: HandleArg,
    },
    /// `ratecore_status_message` and `ratecore_version`.
    Message(u32),
    /// `ratecore_render_headers`.
    RenderHeaders {
        /// Style code (valid: 1 to 4).
        style: u8,
        /// The decision (`None`: NULL).
        decision: Option<DecisionArg>,
        /// The quota reports (the first 20).
        reports: Vec<ReportArg>,
        /// How the reports are passed.
        reports_arg: SliceArg,
        /// Wall clock.
        unix_now: Num,
        /// The output buffer.
        out: BufArg,
    },
    /// `ratecore_render_problem_json` (or `_text_body` with `title` as the subject).
    RenderBody {
        /// The decision (`None`: NULL).
        decision: Option<DecisionArg>,
        /// problem+json `type` (or nothing for the text body).
        type_uri: Option<StrArg>,
        /// problem+json `title`, or the text body's subject.
        title: StrArg,
        /// The text body's period.
        period: Num,
        /// The output buffer.
        out: BufArg,
    },
    /// `ratecore_policy_from_toml`.
    PolicyNew {
        /// The TOML text.
        text: PolicyText,
        /// How it is passed.
        how: StrHow,
        /// The origin.
        origin: StrArg,
        /// The error buffer's size.
        error_len: u8,
        /// How the error buffer is passed.
        error_arg: SliceArg,
        /// The out pointer.
        out: OutArg,
    },
    /// `ratecore_policy_check` / `_peek`.
    PolicyDecide {
        /// Handle.
        handle: HandleArg,
        /// The request (`None`: NULL).
        request: Option<RequestArg>,
        /// `now_ns`.
        now: Num,
        /// `cost`.
        cost: u8,
        /// Wall clock.
        unix_now: Num,
        /// The headers buffer.
        headers: BufArg,
        /// The body buffer.
        body: BufArg,
        /// Check rather than peek.
        commit: bool,
        /// The result pointer.
        out: OutArg,
    },
    /// `ratecore_policy_check_http` / `_peek_http`.
    PolicyDecideHttp {
        /// Handle.
        handle: HandleArg,
        /// The request (`None`: NULL).
        request: Option<HttpRequestArg>,
        /// `now_ns`.
        now: Num,
        /// `cost`.
        cost: u8,
        /// Wall clock.
        unix_now: Num,
        /// The headers buffer.
        headers: BufArg,
        /// The body buffer.
        body: BufArg,
        /// Check rather than peek.
        commit: bool,
        /// The outcome pointer.
        out: OutArg,
        /// The outcome's `size`.
        out_size: SizeArg,
    },
    /// `ratecore_policy_limit_count`, `_limit_metrics` and `_memory_bytes`.
    PolicyInfo {
        /// Handle.
        handle: HandleArg,
        /// The limit index (modulo the count plus 2, so some are out of range).
        index: u8,
        /// Pass `SIZE_MAX - index` instead.
        huge_index: bool,
        /// The metrics' `size`.
        size: SizeArg,
        /// The names' text buffer's size.
        text_len: u8,
        /// How the text buffer is passed.
        text_arg: SliceArg,
        /// The out pointers.
        out: OutArg,
    },
    /// `ratecore_policy_reload_toml`, or `_reload_file` with `file`.
    PolicyReload {
        /// Handle.
        handle: HandleArg,
        /// The TOML text.
        text: PolicyText,
        /// How it is passed.
        how: StrHow,
        /// The origin.
        origin: StrArg,
        /// Reload from this file instead.
        file: Option<FileArg>,
        /// The error buffer's size.
        error_len: u8,
        /// How the error buffer is passed.
        error_arg: SliceArg,
        /// The report pointer.
        report: OutArg,
        /// The report's `size`.
        size: SizeArg,
    },
    /// `ratecore_policy_render_metrics`.
    PolicyRenderMetrics {
        /// Handle.
        handle: HandleArg,
        /// The output buffer (`written` is `len_out`).
        out: BufArg,
    },
    /// `ratecore_policy_set_override`.
    PolicySetOverride {
        /// Handle.
        handle: HandleArg,
        /// Which override.
        which: OverrideArg,
        /// Its quota.
        quota: QuotaArg,
        /// The error buffer's size.
        error_len: u8,
        /// How the error buffer is passed.
        error_arg: SliceArg,
    },
    /// `ratecore_policy_remove_override`.
    PolicyRemoveOverride {
        /// Handle.
        handle: HandleArg,
        /// Which override.
        which: OverrideArg,
        /// The `removed_out` pointer (misaligned: one byte on, still aligned for a
        /// `bool`).
        out: OutArg,
    },
    /// `ratecore_policy_overrides`.
    PolicyOverrides {
        /// Handle.
        handle: HandleArg,
        /// The output buffer (`written` is `len_out`).
        out: BufArg,
    },
    /// `ratecore_policy_offenders`.
    PolicyOffenders {
        /// Handle.
        handle: HandleArg,
        /// The output buffer (`written` is `len_out`).
        out: BufArg,
        /// The stats pointer.
        stats: OutArg,
        /// The stats' `size`.
        size: SizeArg,
    },
    /// `ratecore_policy_free`.
    PolicyFree {
        /// Handle.
        handle: HandleArg,
    },
}

/// A decision passed by pointer.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecisionArg {
    /// `allowed`.
    pub allowed: bool,
    /// `limit`.
    pub limit: Num,
    /// `remaining`.
    pub remaining: Num,
    /// `reset_after_ns`.
    pub reset_after: Num,
    /// `retry_after_ns`.
    pub retry_after: Num,
    /// Pass it misaligned.
    pub misaligned: bool,
}

impl DecisionArg {
    fn decision(&self) -> Decision {
        Decision {
            allowed: self.allowed,
            limit: self.limit.get(),
            remaining: self.remaining.get(),
            reset_after: self.reset_after.get(),
            retry_after: self.retry_after.get(),
        }
    }
}

/// How a string is passed.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrHow {
    /// Valid pointer and length.
    Valid,
    /// `(NULL, 0)`: the empty string.
    NullEmpty,
    /// NULL with a length.
    NullWithLen,
    /// A length above `PTRDIFF_MAX`.
    Huge,
    /// The text followed by a byte that is not UTF-8.
    InvalidUtf8,
}

/// A string argument.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct StrArg {
    /// The text.
    pub text: String,
    /// How it is passed.
    pub how: StrHow,
}

/// A string as passed: storage, pointer, length, the fault it calls for, the text seen.
struct CStrArg {
    storage: Vec<u8>,
    null: bool,
    len: usize,
    fault: Option<S>,
    text: String,
}

impl CStrArg {
    fn new(text: &str, how: StrHow) -> Self {
        let mut storage = text.as_bytes().to_vec();
        let (null, len, fault, seen) = match how {
            StrHow::Valid => (false, storage.len(), None, text.to_string()),
            StrHow::NullEmpty => (true, 0, None, String::new()),
            StrHow::NullWithLen => (
                true,
                storage.len().max(1),
                Some(S::NullPointer),
                String::new(),
            ),
            StrHow::Huge => (
                false,
                isize::MAX as usize + 1,
                Some(S::InvalidArgument),
                String::new(),
            ),
            StrHow::InvalidUtf8 => {
                storage.push(0xff);
                (false, storage.len(), Some(S::InvalidUtf8), String::new())
            }
        };
        storage.push(0);
        Self {
            storage,
            null,
            len,
            fault,
            text: seen,
        }
    }

    fn ptr(&self) -> *const u8 {
        if self.null {
            ptr::null()
        } else {
            self.storage.as_ptr()
        }
    }
}

/// One quota report.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct ReportArg {
    /// Its name.
    pub name: StrArg,
    /// Its period.
    pub period: Num,
    /// Its state.
    pub decision: DecisionArg,
}

/// An output byte buffer.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufArg {
    /// Its size.
    pub len: u16,
    /// How it is passed.
    pub arg: SliceArg,
    /// How the `written_out` pointer is passed.
    pub written: OutArg,
}

/// A policy's TOML text.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum PolicyText {
    /// One of a few valid policies.
    Builtin(u8),
    /// Anything.
    Raw(String),
}

/// Three policies keyed on the fixed identities (`key = "client_ip"`, ...), then two on
/// named attributes: conditions, unlimited rules, `on_missing` deny / shared / skip,
/// shadow limits.
const POLICIES: [&str; 5] = [
    "[response]\nheaders = \"ietf\"\n[table]\ncapacity = 16\nwhen_full = \"deny\"\n\n[[rule]]\nname = \"writes\"\nroute = \"POST /api/*\"\n\n[[rule.limit]]\nname = \"per-ip\"\nkey = \"client_ip\"\nalgorithm = \"sliding_window_strict\"\nlimit = 3\nperiod = \"1s\"\nsub_windows = 4\n\n[[rule.limit]]\nkey = \"user\"\nalgorithm = \"gcra\"\nlimit = 2\nperiod = \"1s\"\nburst = 3\n\n[[rule]]\nname = \"health\"\nroute = \"GET /health\"\nunlimited = true\n\n[[rule]]\nname = \"all\"\n\n[[rule.limit]]\nkey = \"global\"\nalgorithm = \"fixed_window\"\nlimit = 50\nperiod = \"1m\"\n",
    "[response]\nheaders = \"switch\"\nbody = \"text\"\nstatus = 503\n[table]\ncapacity = 8\n\n[[rule]]\nname = \"save\"\nroute = \"POST /api/readings\"\ndescription = \"Save readings\"\n\n[[rule.limit]]\nkey = \"client\"\nalgorithm = \"fixed_window\"\nlimit = 5\nperiod = \"1s\"\n\n[[rule.limit]]\nkey = \"client\"\nalgorithm = \"sliding_window\"\nlimit = 20\nperiod = \"1m\"\n",
    "[response]\nheaders = \"uphold\"\nproblem_type = \"https://example.com/429\"\nproblem_title = \"Slow down\"\n[table]\ncapacity = 8\nwhen_full = \"evict\"\n\n[[rule]]\nname = \"app\"\n\n[[rule.limit]]\nkey = \"app_user\"\nlimit = 4\nperiod = \"10s\"\n\n[[rule]]\nname = \"ev\"\nroute = \"ALL /cards/:card/*\"\n\n[[rule.limit]]\nkey = \"client_ip\"\nalgorithm = \"sliding_window\"\nlimit = 2\nperiod = \"2s\"\n",
    "[response]\nheaders = \"evenergy\"\nbody = \"problem+json\"\nproblem_type = \"https://example.com/429\"\nproblem_title = \"Slow down\"\n[table]\ncapacity = 8\nwhen_full = \"deny\"\n\n[[rule]]\nname = \"internal\"\nwhen = { tier = \"internal\" }\nunlimited = true\n\n[[rule]]\nname = \"authorization-code\"\nwhen = { auth = \"authorization_code\" }\n\n[[rule.limit]]\nname = \"per-app-user\"\nkey = [\"app\", \"user\"]\non_missing = \"deny\"\nalgorithm = \"sliding_window_strict\"\nlimit = 3\nperiod = \"1s\"\nsub_windows = 4\n\n[[rule]]\nname = \"client-credentials\"\nwhen = { auth = \"client_credentials\" }\n\n[[rule.limit]]\nname = \"per-app\"\nkey = [\"app\"]\non_missing = \"shared\"\nalgorithm = \"gcra\"\nlimit = 2\nperiod = \"1s\"\nburst = 3\n\n[[rule.limit]]\nname = \"per-app-audit\"\nkey = [\"app\"]\non_missing = \"shared\"\nalgorithm = \"fixed_window\"\nlimit = 1\nperiod = \"1s\"\nshadow = true\n",
    "[response]\nheaders = \"ietf\"\nstatus = 503\n[table]\ncapacity = 8\nwhen_full = \"evict\"\n\n[[rule]]\nname = \"writes\"\nroute = \"POST /v1/*\"\nwhen = { tier = { not_in = [\"internal\"] } }\nshadow = false\n\n[[rule.limit]]\nname = \"per-tenant\"\nkey = [\"tenant\"]\non_missing = \"skip\"\nalgorithm = \"fixed_window\"\nlimit = 4\nperiod = \"2s\"\n\n[[rule.limit]]\nname = \"per-tenant-audit\"\nkey = [\"tenant\"]\non_missing = \"skip\"\nalgorithm = \"sliding_window\"\nlimit = 2\nperiod = \"1s\"\nshadow = true\n\n[[rule]]\nname = \"clients\"\nwhen = { client = { present = true }, auth = [\"client_credentials\", \"personal_token\"] }\n\n[[rule.limit]]\nname = \"per-client\"\nkey = [\"client\"]\nalgorithm = \"gcra\"\nlimit = 5\nperiod = \"1s\"\n\n[[rule.limit]]\nname = \"all\"\nkey = []\nalgorithm = \"fixed_window\"\nlimit = 50\nperiod = \"1m\"\n",
];

/// The file a reload reads.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileArg {
    /// One of [`RELOAD_FILES`] (modulo their number).
    Path(u8),
    /// A NULL path.
    Null,
    /// A path that is not UTF-8.
    InvalidUtf8,
}

/// Which limit an override call names.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum LimitName {
    /// One of the policy's limits (modulo their number), by its rule's name and its own.
    Known(u8),
    /// Any rule and limit names.
    Raw(StrArg, StrArg),
}

/// Which override a call names, and how its strings are passed.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct OverrideArg {
    /// The limit.
    pub limit: LimitName,
    /// The attribute (modulo [`OVERRIDE_ATTRIBUTES`]).
    pub attribute: u8,
    /// How the attribute is passed.
    pub attribute_how: StrHow,
    /// The value (modulo [`ATTR_VALUES`]).
    pub value: u8,
    /// How the value is passed.
    pub value_arg: SliceArg,
}

/// Attributes an override may select by: the builtin policies' key attributes, two
/// more, and two names the API refuses.
const OVERRIDE_ATTRIBUTES: [&str; 8] = [
    "app",
    "tenant",
    "client",
    "user",
    "client_ip",
    "tier",
    "a b",
    "",
];

/// An override quota as C passes it.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaArg {
    /// The `unlimited` byte: mostly 0 or 1, now and then another byte (refused).
    pub unlimited: u8,
    /// `limit`.
    pub limit: Num,
    /// `burst` (`None`: 0).
    pub burst: Option<Num>,
    /// The `size`.
    pub size: SizeArg,
    /// The pointer (an "output" only in how it is passed: valid, NULL, misaligned).
    pub ptr: OutArg,
}

impl QuotaArg {
    fn unlimited_byte(self) -> u8 {
        match self.unlimited % 5 {
            0 | 1 => 0,
            2 | 3 => 1,
            _ => 2 + self.unlimited / 5,
        }
    }

    /// The quota the library reads, or `None` when its fields are refused.
    fn quota(self) -> Option<OverrideQuota> {
        let (limit, burst) = (self.limit.get(), self.burst.map_or(0, Num::get));
        match (self.unlimited_byte(), limit, burst) {
            (0, limit, 0) => Some(OverrideQuota::Limit { limit, burst: None }),
            (0, limit, burst) => Some(OverrideQuota::Limit {
                limit,
                burst: Some(burst),
            }),
            (1, 0, 0) => Some(OverrideQuota::Unlimited),
            _ => None,
        }
    }
}

/// Files a reload may read, relative to the repository: the example policies, a TOML
/// file that is not a policy, and one that does not exist.
const RELOAD_FILES: [&str; 5] = [
    "examples/policies/evenergy.toml",
    "examples/policies/switch.toml",
    "examples/policies/uphold.toml",
    "ffi/cbindgen.toml",
    "examples/policies/missing.toml",
];

impl PolicyText {
    fn text(&self) -> String {
        match self {
            Self::Builtin(i) => POLICIES[usize::from(*i) % POLICIES.len()].to_string(),
            Self::Raw(t) => t.clone(),
        }
    }
}

/// An identity in a request.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdArg {
    /// `(NULL, 0)`: absent.
    Absent,
    /// NULL with a length: absent too (identities are optional).
    AbsentWithLen,
    /// One of 8 identities.
    Id(u8),
    /// A length above `PTRDIFF_MAX`.
    Huge,
}

/// A request.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct RequestArg {
    /// Method choice.
    pub method: u8,
    /// How the method is passed.
    pub method_how: StrHow,
    /// The path.
    pub path: StrArg,
    /// Client IP.
    pub client_ip: IdArg,
    /// User.
    pub user: IdArg,
    /// Whether the OAuth app is present (one app only, so app × user has at most 8 keys).
    pub app: IdArg,
    /// OAuth client.
    pub client: IdArg,
}

const IDS: [&[u8]; 9] = [
    b"",
    b"1",
    b"22",
    b"10.0.0.1",
    b"u@x",
    b"\0",
    b"\xff\xfe",
    b"k7",
    b"app",
];
const METHODS: [&str; 5] = ["GET", "POST", "post", "DELETE", ""];

/// How a struct that may grow gives its `size`.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizeArg {
    /// `sizeof` the struct.
    Exact,
    /// Smaller by 1 plus this (modulo the size): rejected.
    Short(u8),
    /// Larger by this (modulo 33), as from a newer header: accepted.
    Longer(u8),
}

impl SizeArg {
    /// The size passed for a `T`, and whether it is rejected.
    fn of<T>(self) -> (usize, bool) {
        let size = std::mem::size_of::<T>();
        match self {
            Self::Exact => (size, false),
            Self::Short(n) => (size - 1 - usize::from(n) % size, true),
            Self::Longer(n) => (size + usize::from(n) % 33, false),
        }
    }
}

/// One attribute of a request.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttrArg {
    /// The name (modulo [`ATTR_NAMES`]).
    pub name: u8,
    /// The value (modulo [`ATTR_VALUES`]).
    pub value: u8,
}

/// One way a request with named attributes is passed other than plainly (one at a time,
/// so that plain requests, which reach the policy, stay common).
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpVariation {
    /// This attribute's (modulo their number) value is `(NULL, 0)`: the empty value.
    NullEmptyValue(u8),
    /// The request's `size` is larger by this (modulo 33), as from a newer header.
    LongerSize(u8),
    /// The method is passed so.
    Method(StrHow),
    /// The path is passed so.
    Path(StrHow),
    /// This attribute's name is NULL (with its length).
    NullName(u8),
    /// This attribute's name is followed by a byte that is not UTF-8.
    InvalidUtf8Name(u8),
    /// This attribute's name length is above `PTRDIFF_MAX`.
    HugeName(u8),
    /// This attribute's value is NULL with a length.
    NullValueWithLen(u8),
    /// This attribute's value length is above `PTRDIFF_MAX`.
    HugeValue(u8),
    /// The attribute array is passed so.
    Attributes(SliceArg),
    /// The request's `size` is smaller by 1 plus this (modulo the size).
    ShortSize(u8),
    /// The request pointer is misaligned.
    Misaligned,
}

/// A request with named attributes.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct HttpRequestArg {
    /// Method choice.
    pub method: u8,
    /// The path.
    pub path: String,
    /// The attributes (the first 16).
    pub attributes: Vec<AttrArg>,
    /// This many more (modulo 72) named `x-fill`, which no policy uses: past
    /// `RATECORE_MAX_REQUEST_ATTRIBUTES` in all, the request is rejected.
    pub filler: u8,
    /// How it is passed, if not plainly.
    pub variation: Option<HttpVariation>,
}

/// Attribute names: the builtin policies' (the fixed-identity request's among them), one
/// no policy uses, and the empty name.
const ATTR_NAMES: [&str; 9] = [
    "auth",
    "app",
    "user",
    "tier",
    "tenant",
    "client",
    "client_ip",
    "x-other",
    "",
];

/// Attribute values (any name takes any): the builtin policies' condition values and a
/// few keys.
const ATTR_VALUES: [&[u8]; 8] = [
    b"authorization_code",
    b"client_credentials",
    b"personal_token",
    b"internal",
    b"a",
    b"",
    b"\xff\0",
    b"b",
];

/// A fuzz input.
#[derive(Arbitrary, Clone, PartialEq, Eq)]
pub struct FfiCase {
    /// The calls (the first [`MAX_OPS`]).
    pub calls: Vec<Call>,
}

impl fmt::Debug for FfiCase {
    /// A reproducer: the calls in order.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "// fuzz/c_abi reproducer: the calls, in order")?;
        for call in self.calls.iter().take(MAX_OPS) {
            writeln!(f, "{call:?}")?;
        }
        Ok(())
    }
}

/// The Rust side a handle must agree with.
enum LimiterMirror {
    Single(Limiter),
    Composite(Composite),
}

impl LimiterMirror {
    fn count(&self) -> usize {
        match self {
            Self::Single(_) => 1,
            Self::Composite(c) => c.limits().len(),
        }
    }
}

struct LimiterHandle {
    ptr: *mut ratecore_limiter,
    mirror: LimiterMirror,
}

struct TableHandle {
    ptr: *mut ratecore_table,
    /// Index into `Arena::mirrors`: tables on one region share one mirror.
    mirror: usize,
}

struct Region {
    buf: AlignedBuf,
    /// The mirror of the table initialised in it, if any.
    mirror: Option<usize>,
}

struct PolicyHandle {
    ptr: *mut ratecore_policy,
    mirror: Policy,
    budget: KeyBudget,
}

/// The keys each limit of a policy was checked with, so that no table holds more than 8
/// keys (its decisions then do not depend on its seed, and the mirror's equal the
/// handle's). Counts every checked request's key, whether or not its rule applied.
struct KeyBudget {
    /// Each limit's rule and name.
    names: Vec<(String, String)>,
    /// Each limit's key attributes, and whether a request lacking one still gets a key.
    limits: Vec<(Vec<String>, bool)>,
    /// The keys seen per limit.
    seen: Vec<BTreeSet<Vec<Option<Vec<u8>>>>>,
}

impl KeyBudget {
    fn new(policy: &Policy) -> Self {
        let rules: Vec<_> = policy.rules().collect();
        let names = rules
            .iter()
            .flat_map(|rule| {
                rule.limits
                    .iter()
                    .map(|l| (rule.name.clone(), l.name.clone()))
            })
            .collect();
        let limits: Vec<(Vec<String>, bool)> = rules
            .iter()
            .flat_map(|rule| &rule.limits)
            .map(|limit| (limit.key.clone(), limit.on_missing == OnMissing::Shared))
            .collect();
        let seen = vec![BTreeSet::new(); limits.len()];
        Self {
            names,
            limits,
            seen,
        }
    }

    /// The budget of `policy`, just reloaded from the version this one counts: a limit
    /// of the same rule and name keeps its keys (a reload keeps only the tables of such
    /// limits; counting a fresh table's keys too only makes the budget stricter).
    fn reloaded(&self, policy: &Policy) -> Self {
        let mut next = Self::new(policy);
        for (name, seen) in next.names.iter().zip(&mut next.seen) {
            if let Some(old) = self.names.iter().position(|n| n == name) {
                seen.clone_from(&self.seen[old]);
            }
        }
        next
    }

    /// Records the keys a check of a request with `attributes` gives the limits; false
    /// (recording nothing) if some limit would get a ninth key.
    fn admit(&mut self, attributes: &[Attribute<'_>]) -> bool {
        let keys: Vec<Option<Vec<Option<Vec<u8>>>>> = self
            .limits
            .iter()
            .map(|(names, shared)| {
                let key: Vec<Option<Vec<u8>>> = names
                    .iter()
                    .map(|name| {
                        attributes
                            .iter()
                            .find(|a| a.name == name.as_str())
                            .map(|a| a.value.to_vec())
                    })
                    .collect();
                (*shared || key.iter().all(Option::is_some)).then_some(key)
            })
            .collect();
        let fits = keys.iter().zip(&self.seen).all(|(key, seen)| {
            key.as_ref()
                .is_none_or(|key| seen.len() < 8 || seen.contains(key))
        });
        if fits {
            for (key, seen) in keys.into_iter().zip(&mut self.seen) {
                seen.extend(key);
            }
        }
        fits
    }
}

#[derive(Default)]
struct Arena {
    policies: Vec<PolicyHandle>,
    limiters: Vec<LimiterHandle>,
    tables: Vec<TableHandle>,
    mirrors: Vec<OwnedTable>,
    regions: Vec<Region>,
}

impl Drop for Arena {
    fn drop(&mut self) {
        for p in self.policies.drain(..) {
            // SAFETY: a live handle from `ratecore_policy_from_toml`, freed once.
            unsafe { ratecore_policy_free(p.ptr) };
        }
        for l in self.limiters.drain(..) {
            // SAFETY: a live handle from `ratecore_limiter_new`, freed once.
            unsafe { ratecore_limiter_free(l.ptr) };
        }
        for t in self.tables.drain(..) {
            // SAFETY: a live handle, freed once, before the regions it may live in.
            unsafe { ratecore_table_free(t.ptr) };
        }
    }
}

/// The statuses argument faults call for (empty: the arguments are fine).
#[derive(Default)]
struct Faults(Vec<S>);

impl Faults {
    fn out(&mut self, out: OutArg) {
        match out {
            OutArg::Valid => {}
            OutArg::Null => self.0.push(S::NullPointer),
            OutArg::Misaligned => self.0.push(S::InvalidArgument),
        }
    }

    /// A slice passed as `arg` with `len` elements (a length of 0 is the empty slice,
    /// whatever the pointer).
    fn slice(&mut self, arg: SliceArg, len: usize, elem_align: usize) {
        if len == 0 {
            return;
        }
        match arg {
            SliceArg::Exact | SliceArg::NullEmpty => {}
            SliceArg::NullWithLen => self.0.push(S::NullPointer),
            SliceArg::Huge => self.0.push(S::InvalidArgument),
            SliceArg::Misaligned if elem_align > 1 => self.0.push(S::InvalidArgument),
            SliceArg::Misaligned => {}
        }
    }

    fn handle(&mut self, arg: HandleArg, live: usize) {
        match arg {
            HandleArg::Live(_) if live > 0 => {}
            HandleArg::Misaligned(_) if live > 0 => self.0.push(S::InvalidArgument),
            _ => self.0.push(S::NullPointer),
        }
    }

    /// Checks `status` against the faults; true if the arguments were fine.
    fn judge(&self, status: S, what: &str) -> bool {
        assert_ne!(status, S::Panic, "{what}: PANIC status");
        if self.0.is_empty() {
            return true;
        }
        assert!(
            self.0.contains(&status),
            "{what}: status {status:?}, faults call for {:?}",
            self.0
        );
        false
    }
}

/// A pointer to `len` `T`s passed as `arg`, into `buf` (which has `len + 1` elements).
fn slice_ptr<T>(buf: &mut [T], arg: SliceArg) -> (*mut T, usize) {
    let len = buf.len() - 1;
    match arg {
        SliceArg::Exact => (buf.as_mut_ptr(), len),
        SliceArg::NullEmpty => (ptr::null_mut(), 0),
        SliceArg::NullWithLen => (ptr::null_mut(), len.max(1)),
        SliceArg::Huge => (
            buf.as_mut_ptr(),
            (isize::MAX as usize / std::mem::size_of::<T>().max(1)) + 1,
        ),
        SliceArg::Misaligned if std::mem::align_of::<T>() > 1 => (
            buf.as_mut_ptr().cast::<u8>().wrapping_add(1).cast::<T>(),
            len,
        ),
        SliceArg::Misaligned => (buf.as_mut_ptr(), len),
    }
}

/// An output pointer into `slot` (two `T`s, so a misaligned one stays inside).
fn out_ptr<T>(slot: &mut [T; 2], arg: OutArg) -> *mut T {
    match arg {
        OutArg::Valid => slot.as_mut_ptr(),
        OutArg::Null => ptr::null_mut(),
        OutArg::Misaligned => slot.as_mut_ptr().cast::<u8>().wrapping_add(1).cast::<T>(),
    }
}

fn c_decision(d: Decision) -> ratecore_decision {
    ratecore_decision {
        allowed: d.allowed,
        limit: d.limit,
        remaining: d.remaining,
        reset_after_ns: d.reset_after,
        retry_after_ns: d.retry_after,
    }
}

const SENTINEL: ratecore_decision = ratecore_decision {
    allowed: true,
    limit: 0x5e57,
    remaining: 0x5e58,
    reset_after_ns: 0x5e59,
    retry_after_ns: 0x5e5a,
};

fn c_stats(s: TableStats) -> ratecore_table_stats {
    ratecore_table_stats {
        occupied: s.occupied,
        new_keys: s.new_keys,
        reclaims: s.reclaims,
        evictions: s.evictions,
        full_neighbourhoods: s.full_neighbourhoods,
        full_denied: s.full_denied,
        full_allowed: s.full_allowed,
        contended: s.contended,
        stale_claims: s.stale_claims,
        relocations: s.relocations,
    }
}

fn key_bytes(id: u8) -> Vec<u8> {
    crate::table::key_bytes(id % 8)
}

/// What `table_config` must return for these C arguments (ignoring pointer faults):
/// the config, or every status that may be reported.
fn expected_config(
    quotas: &[ratecore_quota],
    capacity: u64,
    policy: u32,
) -> Result<TableConfig, Vec<S>> {
    let mut errors = Vec::new();
    if quotas.len() > 4 {
        return Err(vec![S::TooManyLimits]);
    }
    let policy = FullPolicy::from_code(policy);
    if policy.is_none() {
        errors.push(S::UnknownFullPolicy);
    }
    let mut specs = Vec::new();
    for q in quotas {
        match spec_of(q) {
            Ok(s) => specs.push(s),
            Err(e) => errors.push(e),
        }
    }
    if capacity == 0 || capacity > 1 << 32 {
        errors.push(S::BadCapacity);
    }
    if specs.len() == quotas.len() {
        match TableConfig::new(capacity, &specs) {
            Ok(config) => {
                if errors.is_empty() {
                    let policy = policy.expect("no policy error");
                    return Ok(config.with_policy(policy).with_seed([1, 2, 3, 4]));
                }
            }
            Err(e) => errors.push(e.into()),
        }
    }
    Err(errors)
}

/// Runs one input.
#[allow(clippy::too_many_lines)]
pub fn run(case: &FfiCase) {
    let mut arena = Arena::default();
    for call in case.calls.iter().take(MAX_OPS) {
        step(&mut arena, call);
    }
}

fn pick<T>(items: &[T], arg: HandleArg) -> Option<(usize, &T)> {
    match arg {
        HandleArg::Live(i) | HandleArg::Misaligned(i) if !items.is_empty() => {
            let index = usize::from(i) % items.len();
            Some((index, &items[index]))
        }
        _ => None,
    }
}

fn handle_ptr<T>(ptr: *mut T, arg: HandleArg) -> *mut T {
    match arg {
        HandleArg::Live(_) => ptr,
        HandleArg::Null => ptr::null_mut(),
        HandleArg::Misaligned(_) => ptr.cast::<u8>().wrapping_add(1).cast::<T>(),
    }
}

#[allow(clippy::too_many_lines)]
fn step(arena: &mut Arena, call: &Call) {
    match call {
        Call::LimiterNew { quotas, arg, out } => {
            let mut buf: Vec<ratecore_quota> = quotas.iter().take(20).map(RawQuota::c).collect();
            let given = buf.clone();
            buf.push(ratecore_quota::default());
            let (qp, qlen) = slice_ptr(&mut buf, *arg);
            let mut slot = [ptr::dangling_mut::<ratecore_limiter>(); 2];
            let op = out_ptr(&mut slot, *out);
            // SAFETY: every pointer is NULL, misaligned inside a live buffer, or valid for
            // the length passed (a huge length is rejected before any read).
            let status = unsafe { ratecore_limiter_new(qp, qlen, op) };
            let mut faults = Faults::default();
            faults.out(*out);
            if given.len() <= 16 || *arg != SliceArg::Exact {
                faults.slice(*arg, qlen, 8);
            }
            if !faults.0.is_empty() && qlen > 16 {
                // Too many quotas may be reported before the pointer is looked at.
                faults.0.push(S::TooManyLimits);
            }
            let fine = faults.judge(status, "limiter_new");
            let written = slot[0] != ptr::dangling_mut() || slot[1] != ptr::dangling_mut();
            if !fine || status != S::Ok {
                assert!(
                    !written,
                    "limiter_new wrote its output with status {status:?}"
                );
            }
            if !fine {
                return;
            }
            let quotas: &[ratecore_quota] = if *arg == SliceArg::NullEmpty {
                &[]
            } else {
                &given
            };
            let expected: Result<LimiterMirror, S> = (|| {
                if quotas.len() > 16 {
                    return Err(S::TooManyLimits);
                }
                if quotas.is_empty() {
                    return Err(S::NoLimits);
                }
                let mut limiters = Vec::new();
                for q in quotas {
                    let spec = spec_of(q)?;
                    limiters.push(Limiter::new(spec.algorithm, spec.quota)?);
                }
                Ok(if limiters.len() == 1 {
                    LimiterMirror::Single(limiters.pop().expect("one"))
                } else {
                    LimiterMirror::Composite(Composite::new(limiters)?)
                })
            })();
            match expected {
                Ok(mirror) => {
                    assert_eq!(status, S::Ok, "limiter_new for {quotas:?}");
                    arena.limiters.push(LimiterHandle {
                        ptr: slot[0],
                        mirror,
                    });
                }
                Err(e) => assert_eq!(status, e, "limiter_new for {quotas:?}"),
            }
        }
        Call::LimiterDecide {
            handle,
            now,
            cost,
            commit,
            each,
            out,
        } => {
            let (now, cost) = (now.get(), cost.get());
            let target = pick(&arena.limiters, *handle);
            let hp = target.map_or(ptr::null_mut(), |(_, h)| handle_ptr(h.ptr, *handle));
            let mut faults = Faults::default();
            faults.handle(*handle, arena.limiters.len());
            faults.out(*out);
            let mut slot = [SENTINEL; 2];
            let op = out_ptr(&mut slot, *out);
            let (status, states) = match each {
                None => {
                    // SAFETY: handle live (or NULL / misaligned), output valid or faulty.
                    let status = unsafe {
                        if *commit {
                            ratecore_limiter_check(hp, now, cost, op)
                        } else {
                            ratecore_limiter_peek(hp, now, cost, op)
                        }
                    };
                    (status, None)
                }
                Some((len, sarg)) => {
                    let mut states = vec![SENTINEL; usize::from(*len) + 1];
                    let (sp, slen) = slice_ptr(&mut states, *sarg);
                    faults.slice(*sarg, slen, 8);
                    // SAFETY: as above; the states buffer is valid for `slen` or faulty.
                    let status = unsafe {
                        if *commit {
                            ratecore_limiter_check_each(hp, now, cost, sp, slen, op)
                        } else {
                            ratecore_limiter_peek_each(hp, now, cost, sp, slen, op)
                        }
                    };
                    let effective = if *sarg == SliceArg::NullEmpty {
                        0
                    } else {
                        usize::from(*len)
                    };
                    (status, Some((states, effective)))
                }
            };
            let fine = faults.judge(status, "limiter_decide");
            if !fine || status != S::Ok {
                assert!(
                    slot.iter().all(|d| *d == SENTINEL),
                    "decision written with {status:?}"
                );
                if let Some((states, _)) = &states {
                    assert!(
                        states.iter().all(|d| *d == SENTINEL),
                        "states written with {status:?}"
                    );
                }
            }
            if !fine {
                return;
            }
            let (_, h) = target.expect("no faults: a live handle");
            let count = h.mirror.count();
            if let Some((_, len)) = &states {
                if *len < count {
                    assert_eq!(status, S::BufferTooSmall);
                    return;
                }
            }
            let mut each_states = vec![Decision::EMPTY; count];
            let expected = match (&h.mirror, *commit) {
                (LimiterMirror::Single(l), true) => {
                    l.check(now, cost).inspect(|d| each_states[0] = *d)
                }
                (LimiterMirror::Single(l), false) => {
                    l.peek(now, cost).inspect(|d| each_states[0] = *d)
                }
                (LimiterMirror::Composite(c), true) => c.check_each(now, cost, &mut each_states),
                (LimiterMirror::Composite(c), false) => c.peek_each(now, cost, &mut each_states),
            };
            match expected {
                Ok(d) => {
                    assert_eq!(status, S::Ok);
                    assert_eq!(slot[0], c_decision(d), "decision differs from the Rust API");
                    if let Some((states, len)) = states {
                        let want: Vec<ratecore_decision> =
                            each_states.iter().map(|d| c_decision(*d)).collect();
                        assert_eq!(
                            &states[..count],
                            &want[..],
                            "states differ from the Rust API"
                        );
                        assert!(states[count..].iter().all(|d| *d == SENTINEL));
                        assert!(len >= count);
                    }
                }
                Err(e) => assert_eq!(status, S::from(e)),
            }
        }
        Call::LimiterCount { handle, out } => {
            let target = pick(&arena.limiters, *handle);
            let hp = target.map_or(ptr::null_mut(), |(_, h)| handle_ptr(h.ptr, *handle));
            let mut slot = [usize::MAX; 2];
            let op = out_ptr(&mut slot, *out);
            // SAFETY: handle live (or NULL / misaligned), output valid or faulty.
            let status = unsafe { ratecore_limiter_limit_count(hp, op) };
            let mut faults = Faults::default();
            faults.handle(*handle, arena.limiters.len());
            faults.out(*out);
            if faults.judge(status, "limiter_limit_count") {
                assert_eq!(status, S::Ok);
                assert_eq!(slot[0], target.expect("live").1.mirror.count());
            } else {
                assert_eq!(slot, [usize::MAX; 2]);
            }
        }
        Call::LimiterFree { handle } => match (pick(&arena.limiters, *handle), handle) {
            (Some((index, _)), HandleArg::Live(_)) => {
                let h = arena.limiters.remove(index);
                // SAFETY: a live handle, freed once.
                unsafe { ratecore_limiter_free(h.ptr) };
            }
            (Some((_, h)), HandleArg::Misaligned(_)) => {
                // SAFETY: a misaligned pointer is documented to be ignored.
                unsafe { ratecore_limiter_free(handle_ptr(h.ptr, *handle)) };
            }
            // SAFETY: NULL is accepted.
            _ => unsafe { ratecore_limiter_free(ptr::null_mut()) },
        },
        Call::TableNew {
            quotas,
            arg,
            capacity,
            policy,
            out,
        } => {
            let capacity = capacity.get();
            let policy = u32::from(*policy % 4);
            let mut buf: Vec<ratecore_quota> = quotas.iter().take(6).map(RawQuota::c).collect();
            let given = buf.clone();
            buf.push(ratecore_quota::default());
            let (qp, qlen) = slice_ptr(&mut buf, *arg);
            let mut faults = Faults::default();
            if given.len() <= 4 || *arg != SliceArg::Exact {
                faults.slice(*arg, qlen, 8);
            }
            if !faults.0.is_empty() && qlen > 4 {
                // Too many quotas may be reported before the pointer is looked at.
                faults.0.push(S::TooManyLimits);
            }
            let quotas: &[ratecore_quota] = if *arg == SliceArg::NullEmpty {
                &[]
            } else {
                &given
            };
            let expected = expected_config(quotas, capacity, policy);
            // Region size first: it never allocates.
            let mut size = [usize::MAX; 2];
            let sp = out_ptr(&mut size, *out);
            // SAFETY: pointers valid for their lengths, NULL, or misaligned.
            let status = unsafe { ratecore_table_region_size(qp, qlen, capacity, policy, sp) };
            let mut size_faults = Faults(faults.0.clone());
            size_faults.out(*out);
            let fine = size_faults.judge(status, "table_region_size");
            let expected_size = expected
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|c| region_size(c).map_err(|e| vec![S::from(e)]));
            if fine {
                match &expected_size {
                    Ok(n) if isize::try_from(*n).is_ok() => {
                        assert_eq!(status, S::Ok);
                        assert_eq!(size[0], *n);
                    }
                    Ok(_) => assert_eq!(status, S::BadCapacity),
                    Err(errors) => assert!(
                        errors.contains(&status),
                        "region_size: {status:?} not in {errors:?}"
                    ),
                }
            }
            if !fine || status != S::Ok {
                assert_eq!(size, [usize::MAX; 2], "region_size wrote with {status:?}");
            }
            if expected_size.as_ref().is_ok_and(|n| *n > MAX_TABLE_BYTES) {
                return;
            }
            let mut slot = [ptr::dangling_mut::<ratecore_table>(); 2];
            let op = out_ptr(&mut slot, *out);
            // SAFETY: as above; the table is small (checked).
            let status = unsafe { ratecore_table_new(qp, qlen, capacity, policy, op) };
            faults.out(*out);
            let fine = faults.judge(status, "table_new");
            if !fine || status != S::Ok {
                assert!(
                    slot.iter().all(|p| *p == ptr::dangling_mut()),
                    "table_new wrote with {status:?}"
                );
            }
            if !fine {
                return;
            }
            match expected {
                Ok(config) => {
                    assert_eq!(status, S::Ok, "table_new");
                    arena.mirrors.push(Table::new(config).expect("mirror"));
                    let mirror = arena.mirrors.len() - 1;
                    arena.tables.push(TableHandle {
                        ptr: slot[0],
                        mirror,
                    });
                }
                Err(errors) => assert!(
                    errors.contains(&status),
                    "table_new: {status:?} not in {errors:?}"
                ),
            }
        }
        Call::InitRegion {
            quotas,
            capacity,
            policy,
            cut,
            skew,
            null,
            out,
        } => {
            let policy = u32::from(*policy % 4);
            let quotas: Vec<ratecore_quota> = quotas.iter().take(5).map(RawQuota::c).collect();
            let expected = expected_config(&quotas, u64::from(*capacity), policy);
            let needed = expected.as_ref().ok().and_then(|c| region_size(c).ok());
            if needed.is_some_and(|n| n > MAX_TABLE_BYTES) {
                return;
            }
            let size = needed.unwrap_or(1024);
            let len = size - usize::from(*cut) % (size + 1);
            let skew = if skew % 4 == 0 {
                0
            } else {
                usize::from(skew % 64)
            };
            let mut region = Region {
                buf: AlignedBuf::new(len + skew),
                mirror: None,
            };
            let rp: *mut c_void = if *null {
                ptr::null_mut()
            } else {
                region.buf.as_mut_ptr().wrapping_add(skew).cast()
            };
            let mut slot = [ptr::dangling_mut::<ratecore_table>(); 2];
            let op = out_ptr(&mut slot, *out);
            let mut buf = quotas.clone();
            buf.push(ratecore_quota::default());
            // SAFETY: the region is valid for `len` bytes (or NULL) and only used through
            // ratecore afterwards; the quotas are valid.
            let status = unsafe {
                ratecore_table_init_region(
                    rp,
                    len,
                    buf.as_ptr(),
                    quotas.len(),
                    (*capacity).into(),
                    policy,
                    op,
                )
            };
            let mut faults = Faults::default();
            if *null {
                faults.0.push(S::NullPointer);
            }
            faults.out(*out);
            let fine = faults.judge(status, "init_region");
            if !fine || status != S::Ok {
                assert!(
                    slot.iter().all(|p| *p == ptr::dangling_mut()),
                    "init_region wrote with {status:?}"
                );
            }
            if fine {
                let expected = expected.and_then(|config| {
                    if skew != 0 {
                        Err(vec![S::RegionMisaligned])
                    } else if len < size {
                        Err(vec![S::RegionTooSmall])
                    } else {
                        Ok(config)
                    }
                });
                match expected {
                    Ok(config) => {
                        assert_eq!(status, S::Ok, "init_region");
                        arena.mirrors.push(Table::new(config).expect("mirror"));
                        let mirror = arena.mirrors.len() - 1;
                        region.mirror = Some(mirror);
                        arena.tables.push(TableHandle {
                            ptr: slot[0],
                            mirror,
                        });
                    }
                    Err(errors) => assert!(
                        errors.contains(&status),
                        "init_region: {status:?} not in {errors:?}"
                    ),
                }
            }
            arena.regions.push(region);
        }
        Call::AttachRegion {
            region,
            cut,
            skew,
            null,
            out,
        } => {
            if arena.regions.is_empty() {
                return;
            }
            let index = usize::from(*region) % arena.regions.len();
            let r = &mut arena.regions[index];
            // Raw pointers only: tables may hold references into the buffer.
            let total = r.buf.len();
            let base = r.buf.as_mut_ptr();
            // Where the table (if any) starts: init used the aligned start.
            let skew = if skew % 4 == 0 {
                0
            } else {
                usize::from(skew % 64).min(total)
            };
            let len = (total - skew) - usize::from(*cut) % (total - skew + 1);
            // A copy of the bytes, read through the raw pointer (tables may live there).
            let mut copy = vec![0u8; len];
            // SAFETY: `base + skew .. + len` lies inside the buffer; nothing else runs.
            unsafe { ptr::copy_nonoverlapping(base.wrapping_add(skew), copy.as_mut_ptr(), len) };
            let rp: *mut c_void = if *null {
                ptr::null_mut()
            } else {
                base.wrapping_add(skew).cast()
            };
            let mut slot = [ptr::dangling_mut::<ratecore_table>(); 2];
            let op = out_ptr(&mut slot, *out);
            // SAFETY: the region is valid for `len` bytes (or NULL) and only accessed
            // through ratecore tables.
            let status = unsafe { ratecore_table_attach_region(rp, len, op) };
            let mut faults = Faults::default();
            if *null {
                faults.0.push(S::NullPointer);
            }
            faults.out(*out);
            let fine = faults.judge(status, "attach_region");
            if !fine || status != S::Ok {
                assert!(
                    slot.iter().all(|p| *p == ptr::dangling_mut()),
                    "attach_region wrote with {status:?}"
                );
            }
            if !fine {
                return;
            }
            match expected_attach(&copy, skew == 0) {
                Ok(_) => {
                    assert_eq!(status, S::Ok, "attach_region");
                    let mirror = r.mirror.expect("a ready region was initialised");
                    arena.tables.push(TableHandle {
                        ptr: slot[0],
                        mirror,
                    });
                }
                Err(e) => assert_eq!(status, S::from(e), "attach_region"),
            }
        }
        Call::TableDecide {
            handle,
            key,
            key_arg,
            now,
            cost,
            commit,
            each,
            out,
        } => {
            let (now, cost) = (now.get(), cost.get());
            let target = pick(&arena.tables, *handle);
            let hp = target.map_or(ptr::null_mut(), |(_, h)| handle_ptr(h.ptr, *handle));
            let id = if *key_arg == SliceArg::NullEmpty {
                0
            } else {
                *key % 8
            };
            let mut kb = key_bytes(id);
            kb.push(0);
            let (kp, klen) = slice_ptr(&mut kb, *key_arg);
            let mut faults = Faults::default();
            faults.handle(*handle, arena.tables.len());
            faults.slice(*key_arg, klen, 1);
            faults.out(*out);
            let mut slot = [SENTINEL; 2];
            let op = out_ptr(&mut slot, *out);
            let (status, states) = match each {
                Some((len, sarg)) => {
                    let mut states = vec![SENTINEL; usize::from(*len) + 1];
                    let (sp, slen) = slice_ptr(&mut states, *sarg);
                    faults.slice(*sarg, slen, 8);
                    // SAFETY: every pointer valid for its length, NULL, or misaligned.
                    let status = unsafe {
                        if *commit {
                            ratecore_table_check_each(hp, kp, klen, now, cost, sp, slen, op)
                        } else {
                            ratecore_table_peek_each(hp, kp, klen, now, cost, sp, slen, op)
                        }
                    };
                    let effective = if *sarg == SliceArg::NullEmpty {
                        0
                    } else {
                        usize::from(*len)
                    };
                    (status, Some((states, effective)))
                }
                _ => {
                    // SAFETY: as above.
                    let status = unsafe {
                        if *commit {
                            ratecore_table_check(hp, kp, klen, now, cost, op)
                        } else {
                            ratecore_table_peek(hp, kp, klen, now, cost, op)
                        }
                    };
                    (status, None)
                }
            };
            let fine = faults.judge(status, "table_decide");
            if !fine || status != S::Ok {
                assert!(
                    slot.iter().all(|d| *d == SENTINEL),
                    "decision written with {status:?}"
                );
                if let Some((states, _)) = &states {
                    assert!(
                        states.iter().all(|d| *d == SENTINEL),
                        "states written with {status:?}"
                    );
                }
            }
            if !fine {
                return;
            }
            let (_, h) = target.expect("live");
            let mirror = &arena.mirrors[h.mirror];
            let count = mirror.config().limits().count();
            let key = key_bytes(id);
            let expected = match &states {
                Some((_, len)) if *len < count => {
                    assert_eq!(status, S::BufferTooSmall);
                    return;
                }
                Some(_) => {
                    let mut each_states = vec![Decision::EMPTY; count];
                    let decided = if *commit {
                        mirror.check_each(&key, now, cost, &mut each_states)
                    } else {
                        mirror.peek_each(&key, now, cost, &mut each_states)
                    };
                    decided.map(|d| (d, Some(each_states)))
                }
                None if *commit => mirror.check(&key, now, cost).map(|d| (d, None)),
                None => mirror.peek(&key, now, cost).map(|d| (d, None)),
            };
            match expected {
                Ok((d, each_states)) => {
                    assert_eq!(status, S::Ok);
                    assert_eq!(
                        slot[0],
                        c_decision(d),
                        "table decision differs from the Rust API"
                    );
                    if let (Some((states, _)), Some(each_states)) = (states, each_states) {
                        let want: Vec<ratecore_decision> =
                            each_states.iter().map(|d| c_decision(*d)).collect();
                        assert_eq!(&states[..count], &want[..]);
                        assert!(states[count..].iter().all(|d| *d == SENTINEL));
                    }
                }
                Err(e) => assert_eq!(status, S::from(e)),
            }
        }
        Call::TableUndoable {
            handle,
            key,
            now,
            cost,
            with_states,
            undo,
            tamper,
            out,
        } => {
            let (now, cost) = (now.get(), cost.get());
            let target = pick(&arena.tables, *handle);
            let hp = target.map_or(ptr::null_mut(), |(_, h)| handle_ptr(h.ptr, *handle));
            let id = *key % 8;
            let kb = key_bytes(id);
            let mut faults = Faults::default();
            faults.handle(*handle, arena.tables.len());
            faults.out(*out);
            let mut slot = [SENTINEL; 2];
            let op = out_ptr(&mut slot, *out);
            let poison = ratecore_table_charge {
                words: [0xab; RATECORE_TABLE_CHARGE_WORDS],
            };
            let mut charge = [poison; 2];
            let cp = out_ptr(&mut charge, *out);
            let count = target.map_or(0, |(_, h)| arena.mirrors[h.mirror].config().limits().count());
            let mut states = vec![SENTINEL; if *with_states { count } else { 0 }];
            let (sp, slen) = if states.is_empty() {
                (ptr::null_mut(), 0)
            } else {
                (states.as_mut_ptr(), states.len())
            };
            // SAFETY: key and states valid for their lengths; handle and outs valid, NULL
            // or misaligned.
            let status = unsafe {
                ratecore_table_check_undoable(hp, kb.as_ptr(), kb.len(), now, cost, sp, slen, op, cp)
            };
            let fine = faults.judge(status, "table_check_undoable");
            if !fine || status != S::Ok {
                assert!(slot.iter().all(|d| *d == SENTINEL), "decision written with {status:?}");
                assert!(charge.iter().all(|c| *c == poison), "charge written with {status:?}");
                assert!(states.iter().all(|d| *d == SENTINEL), "states written with {status:?}");
            }
            if !fine {
                return;
            }
            let (_, h) = target.expect("live");
            let mirror = &arena.mirrors[h.mirror];
            let mut each_states = vec![Decision::EMPTY; states.len()];
            match mirror.check_undoable(&kb, now, cost, &mut each_states) {
                Ok((d, mirror_charge)) => {
                    assert_eq!(status, S::Ok);
                    assert_eq!(slot[0], c_decision(d), "undoable decision differs from the Rust API");
                    let want: Vec<ratecore_decision> = each_states.iter().map(|d| c_decision(*d)).collect();
                    assert_eq!(states, want, "undoable states differ from the Rust API");
                    let zero = charge[0].words == [0; RATECORE_TABLE_CHARGE_WORDS];
                    assert_eq!(zero, mirror_charge.is_none(), "a charge exactly when consumed");
                    if !*undo {
                        return;
                    }
                    if let Some(word) = tamper {
                        let mut altered = charge[0];
                        let at = usize::from(*word) % RATECORE_TABLE_CHARGE_WORDS;
                        altered.words[at] ^= 1 << (word / 32 % 64);
                        // SAFETY: a live handle; one valid charge.
                        let refused = unsafe { ratecore_table_undo(hp, &mut altered) };
                        if !zero {
                            assert_eq!(refused, S::InvalidArgument, "an altered charge is refused");
                        }
                    }
                    // SAFETY: a live handle; one valid charge.
                    let undone = unsafe { ratecore_table_undo(hp, &mut charge[0]) };
                    assert_eq!(undone, S::Ok);
                    assert_eq!(charge[0].words, [0; RATECORE_TABLE_CHARGE_WORDS], "zeroed");
                    if let Some(c) = mirror_charge {
                        mirror.undo(c);
                    }
                }
                Err(e) => assert_eq!(status, S::from(e)),
            }
        }
        Call::TableInfo {
            handle,
            limits_len,
            limits_arg,
            out,
        } => {
            let target = pick(&arena.tables, *handle);
            let hp = target
                .map_or(ptr::null_mut(), |(_, h)| handle_ptr(h.ptr, *handle))
                .cast_const();
            let mut faults = Faults::default();
            faults.handle(*handle, arena.tables.len());
            faults.out(*out);
            let mirror = target.map(|(_, h)| &arena.mirrors[h.mirror]);
            let mut stats = [ratecore_table_stats::default(); 2];
            stats[0].occupied = u64::MAX;
            let before = stats;
            // SAFETY: handle live (or NULL / misaligned), output valid or faulty.
            let status = unsafe { ratecore_table_get_stats(hp, out_ptr(&mut stats, *out)) };
            if faults.judge(status, "get_stats") {
                assert_eq!(status, S::Ok);
                assert_eq!(
                    stats[0],
                    c_stats(mirror.expect("live").stats()),
                    "stats differ"
                );
            } else {
                assert_eq!(stats, before);
            }
            let mut cap = [u64::MAX; 2];
            // SAFETY: as above.
            let status = unsafe { ratecore_table_capacity(hp, out_ptr(&mut cap, *out)) };
            if faults.judge(status, "capacity") {
                assert_eq!(cap[0], mirror.expect("live").config().capacity());
            } else {
                assert_eq!(cap, [u64::MAX; 2]);
            }
            let mut pol = [u32::MAX; 2];
            // SAFETY: as above.
            let status = unsafe { ratecore_table_full_policy(hp, out_ptr(&mut pol, *out)) };
            if faults.judge(status, "full_policy") {
                assert_eq!(pol[0], mirror.expect("live").config().policy() as u32);
            } else {
                assert_eq!(pol, [u32::MAX; 2]);
            }
            let mut count = [usize::MAX; 2];
            // SAFETY: as above.
            let status = unsafe { ratecore_table_limit_count(hp, out_ptr(&mut count, *out)) };
            if faults.judge(status, "limit_count") {
                assert_eq!(count[0], mirror.expect("live").config().limits().count());
            } else {
                assert_eq!(count, [usize::MAX; 2]);
            }
            let mut quotas = vec![
                ratecore_quota {
                    limit: 7,
                    ..ratecore_quota::default()
                };
                usize::from(*limits_len) + 1
            ];
            let untouched = quotas.clone();
            let (qp, qlen) = slice_ptr(&mut quotas, *limits_arg);
            let mut count = [usize::MAX; 2];
            faults.slice(*limits_arg, qlen, 8);
            // SAFETY: as above; the quota buffer is valid for `qlen` or faulty.
            let status = unsafe { ratecore_table_limits(hp, qp, qlen, out_ptr(&mut count, *out)) };
            if faults.judge(status, "table_limits") {
                let mirror = mirror.expect("live");
                let n = mirror.config().limits().count();
                assert_eq!(count[0], n, "limits count (reported even when too small)");
                let room = if *limits_arg == SliceArg::NullEmpty {
                    0
                } else {
                    usize::from(*limits_len)
                };
                if room < n {
                    assert_eq!(status, S::BufferTooSmall);
                    assert_eq!(quotas, untouched);
                } else {
                    assert_eq!(status, S::Ok);
                    for (got, spec) in quotas.iter().zip(mirror.config().limits()) {
                        assert_eq!(
                            (
                                got.limit,
                                got.period_ns,
                                got.burst,
                                got.algorithm,
                                got.sub_windows
                            ),
                            (
                                spec.quota.limit(),
                                spec.quota.period(),
                                spec.quota.burst(),
                                spec.algorithm.code(),
                                spec.algorithm.sub_windows()
                            )
                        );
                    }
                    assert_eq!(quotas[n..], untouched[n..]);
                }
            } else {
                assert_eq!(quotas, untouched);
            }
        }
        Call::TableFree { handle } => match (pick(&arena.tables, *handle), handle) {
            (Some((index, _)), HandleArg::Live(_)) => {
                let h = arena.tables.remove(index);
                // SAFETY: a live handle, freed once.
                unsafe { ratecore_table_free(h.ptr) };
            }
            (Some((_, h)), HandleArg::Misaligned(_)) => {
                // SAFETY: a misaligned pointer is documented to be ignored.
                unsafe { ratecore_table_free(handle_ptr(h.ptr, *handle)) };
            }
            // SAFETY: NULL is accepted.
            _ => unsafe { ratecore_table_free(ptr::null_mut()) },
        },
        Call::RenderHeaders {
            style,
            decision,
            reports,
            reports_arg,
            unix_now,
            out,
        } => {
            let mut faults = Faults::default();
            let style = match style % 6 {
                1 => Some(HeaderStyle::EvEnergy),
                2 => Some(HeaderStyle::Uphold),
                3 => Some(HeaderStyle::Switch),
                4 => Some(HeaderStyle::Ietf),
                _ => None,
            };
            let code = style.map_or(u32::from(style_code_invalid()), style_code);
            if style.is_none() {
                faults.0.push(S::UnknownHeaderStyle);
            }
            let mut dbuf = [c_decision(Decision::EMPTY); 2];
            let dp = decision_ptr(&mut dbuf, decision.as_ref(), &mut faults);
            let names: Vec<CStrArg> = reports
                .iter()
                .take(20)
                .map(|r| CStrArg::new(&r.name.text, r.name.how))
                .collect();
            let mut creports: Vec<ratecore_quota_report> = reports
                .iter()
                .zip(&names)
                .map(|(r, n)| ratecore_quota_report {
                    name: n.ptr(),
                    name_len: n.len,
                    period_ns: r.period.get(),
                    decision: c_decision(r.decision.decision()),
                })
                .collect();
            creports.push(ratecore_quota_report {
                name: ptr::null(),
                name_len: 0,
                period_ns: 1,
                decision: c_decision(Decision::EMPTY),
            });
            let (rp, rlen) = slice_ptr(&mut creports, *reports_arg);
            faults.slice(*reports_arg, rlen, 8);
            if rlen > 16 {
                faults.0.push(S::InvalidArgument);
            }
            for name in names.iter().take(rlen.min(16)) {
                if let Some(fault) = name.fault {
                    faults.0.push(fault);
                }
            }
            let mut o = OutBuf::new(out, &mut faults);
            // SAFETY: every pointer is valid for its length, NULL, or misaligned.
            let status = unsafe {
                ratecore_render_headers(
                    code,
                    dp,
                    rp,
                    rlen,
                    unix_now.get(),
                    o.ptr,
                    o.len,
                    o.written_ptr(),
                )
            };
            if !faults.judge(status, "render_headers") {
                o.assert_untouched(status);
                return;
            }
            let quotas: Vec<QuotaReport<'_>> = reports
                .iter()
                .zip(&names)
                .take(rlen)
                .map(|(r, n)| QuotaReport {
                    name: &n.text,
                    period: r.period.get(),
                    decision: r.decision.decision(),
                })
                .collect();
            let input = HeaderInput {
                decision: decision.expect("no faults").decision(),
                quotas: &quotas,
                unix_now_nanos: unix_now.get(),
            };
            o.compare(status, |buf| {
                render_headers(style.expect("no faults"), &input, buf)
            });
        }
        Call::RenderBody {
            decision,
            type_uri,
            title,
            period,
            out,
        } => {
            let mut faults = Faults::default();
            let mut dbuf = [c_decision(Decision::EMPTY); 2];
            let dp = decision_ptr(&mut dbuf, decision.as_ref(), &mut faults);
            let title = CStrArg::new(&title.text, title.how);
            let type_uri = type_uri.as_ref().map(|t| CStrArg::new(&t.text, t.how));
            faults.0.extend(title.fault);
            if let Some(t) = &type_uri {
                faults.0.extend(t.fault);
            }
            let mut o = OutBuf::new(out, &mut faults);
            let period = period.get();
            // SAFETY: every pointer is valid for its length, NULL, or misaligned.
            let status = unsafe {
                match &type_uri {
                    Some(t) => ratecore_render_problem_json(
                        dp,
                        t.ptr(),
                        t.len,
                        title.ptr(),
                        title.len,
                        o.ptr,
                        o.len,
                        o.written_ptr(),
                    ),
                    None => ratecore_render_text_body(
                        dp,
                        title.ptr(),
                        title.len,
                        period,
                        o.ptr,
                        o.len,
                        o.written_ptr(),
                    ),
                }
            };
            if !faults.judge(status, "render_body") {
                o.assert_untouched(status);
                return;
            }
            let decision = decision.expect("no faults").decision();
            let (style, period) = match &type_uri {
                Some(t) => (
                    BodyStyle::ProblemJson {
                        type_uri: &t.text,
                        title: &title.text,
                    },
                    0,
                ),
                None => (
                    BodyStyle::PlainText {
                        subject: &title.text,
                    },
                    period,
                ),
            };
            o.compare(status, |buf| render_body(&style, &decision, period, buf));
        }
        Call::PolicyNew {
            text,
            how,
            origin,
            error_len,
            error_arg,
            out,
        } => {
            let text = text.text();
            if crate::policy::table_bytes(&text) > crate::policy::MAX_TABLE_BYTES {
                return;
            }
            let mut faults = Faults::default();
            let t = CStrArg::new(&text, *how);
            let o = CStrArg::new(&origin.text, origin.how);
            faults.0.extend(t.fault);
            faults.0.extend(o.fault);
            faults.out(*out);
            let mut ebuf = vec![0xaa_u8; usize::from(*error_len) + 1];
            let untouched = ebuf.clone();
            let (ep, elen) = slice_ptr(&mut ebuf, *error_arg);
            let mut slot = [ptr::dangling_mut::<ratecore_policy>(); 2];
            let op = out_ptr(&mut slot, *out);
            // SAFETY: every pointer is valid for its length, NULL, or misaligned.
            let status = unsafe {
                ratecore_policy_from_toml(t.ptr(), t.len, o.ptr(), o.len, ep.cast(), elen, op)
            };
            let fine = faults.judge(status, "policy_from_toml");
            if !fine || status != S::Ok {
                assert!(
                    slot.iter().all(|p| *p == ptr::dangling_mut()),
                    "policy_from_toml wrote with {status:?}"
                );
            }
            if !fine {
                assert_eq!(ebuf, untouched, "error written with an argument fault");
                return;
            }
            let origin = if o.text.is_empty() {
                "<string>"
            } else {
                &o.text
            };
            match Policy::from_toml_str(&t.text, origin) {
                Ok(mirror) => {
                    assert_eq!(status, S::Ok, "policy_from_toml");
                    assert_eq!(ebuf, untouched, "error written on success");
                    arena.policies.push(PolicyHandle {
                        ptr: slot[0],
                        budget: KeyBudget::new(&mirror),
                        mirror,
                    });
                }
                Err(e) => {
                    assert_eq!(status, S::InvalidConfig, "policy_from_toml: {e}");
                    assert_error_text(&e, &ebuf, &untouched, elen, *error_arg);
                }
            }
        }
        Call::PolicyDecide {
            handle,
            request,
            now,
            cost,
            unix_now,
            headers,
            body,
            commit,
            out,
        } => {
            let (now, cost, unix_now) = (now.get(), u64::from(cost % 4), unix_now.get());
            let target = pick(&arena.policies, *handle).map(|(index, _)| index);
            let hp = target.map_or(ptr::null_mut(), |index| {
                handle_ptr(arena.policies[index].ptr, *handle)
            });
            let mut faults = Faults::default();
            faults.handle(*handle, arena.policies.len());
            let method = request.as_ref().map(|r| {
                CStrArg::new(METHODS[usize::from(r.method) % METHODS.len()], r.method_how)
            });
            let path = request
                .as_ref()
                .map(|r| CStrArg::new(&r.path.text, r.path.how));
            let id = |arg: IdArg,
                      app: bool,
                      faults: &mut Faults|
             -> (*const u8, usize, Option<&'static [u8]>) {
                match arg {
                    IdArg::Absent => (ptr::null(), 0, None),
                    IdArg::AbsentWithLen => (ptr::null(), 3, None),
                    IdArg::Id(i) => {
                        let bytes = if app { IDS[8] } else { IDS[usize::from(i) % 8] };
                        (bytes.as_ptr(), bytes.len(), Some(bytes))
                    }
                    IdArg::Huge => {
                        faults.0.push(S::InvalidArgument);
                        (IDS[3].as_ptr(), isize::MAX as usize + 1, None)
                    }
                }
            };
            let mut creq = [None::<ratecore_request>; 1];
            let mut ids = [None; 4];
            if let (Some(r), Some(m), Some(p)) = (request, &method, &path) {
                faults.0.extend(m.fault);
                faults.0.extend(p.fault);
                let (ip, ip_len, ip_id) = id(r.client_ip, false, &mut faults);
                let (user, user_len, user_id) = id(r.user, false, &mut faults);
                let (app, app_len, app_id) = id(r.app, true, &mut faults);
                let (client, client_len, client_id) = id(r.client, false, &mut faults);
                ids = [ip_id, user_id, app_id, client_id];
                creq[0] = Some(ratecore_request {
                    method: m.ptr(),
                    method_len: m.len,
                    path: p.ptr(),
                    path_len: p.len,
                    client_ip: ip,
                    client_ip_len: ip_len,
                    user,
                    user_len,
                    app,
                    app_len,
                    client,
                    client_len,
                });
            } else {
                faults.0.push(S::NullPointer);
            }
            // The identities are the attributes of the same names (absent: not carried).
            let attributes: Vec<Attribute<'static>> = ["client_ip", "user", "app", "client"]
                .into_iter()
                .zip(ids)
                .filter_map(|(name, value)| Some(Attribute::new(name, value?)))
                .collect();
            let rp: *const ratecore_request =
                creq[0].as_ref().map_or(ptr::null(), |r| r as *const _);
            let hbuf = OutBytes::new(headers, &mut faults);
            let bbuf = OutBytes::new(body, &mut faults);
            faults.out(*out);
            if faults.0.is_empty() && *commit {
                let h = &mut arena.policies[target.expect("live")];
                if !h.budget.admit(&attributes) {
                    return;
                }
            }
            let sentinel = ratecore_policy_result {
                decision: SENTINEL,
                limited: true,
                status: 0xbeef,
                headers_len: usize::MAX,
                body_len: usize::MAX,
                content_type: ptr::null(),
            };
            let mut slot = [sentinel; 2];
            let op = out_ptr(&mut slot, *out);
            let (hbp, hlen, bbp, blen) = (hbuf.ptr, hbuf.len, bbuf.ptr, bbuf.len);
            // SAFETY: every pointer is valid for its length, NULL, or misaligned.
            let status = unsafe {
                if *commit {
                    ratecore_policy_check(hp, rp, now, cost, unix_now, hbp, hlen, bbp, blen, op)
                } else {
                    ratecore_policy_peek(hp, rp, now, cost, unix_now, hbp, hlen, bbp, blen, op)
                }
            };
            let same = |a: &ratecore_policy_result, b: &ratecore_policy_result| {
                (
                    a.decision,
                    a.limited,
                    a.status,
                    a.headers_len,
                    a.body_len,
                    a.content_type,
                ) == (
                    b.decision,
                    b.limited,
                    b.status,
                    b.headers_len,
                    b.body_len,
                    b.content_type,
                )
            };
            let fine = faults.judge(status, "policy_decide");
            if !fine || status != S::Ok {
                assert!(
                    slot.iter().all(|r| same(r, &sentinel)),
                    "result written with {status:?}"
                );
            }
            if !fine {
                hbuf.assert_untouched();
                bbuf.assert_untouched();
                return;
            }
            let h = &arena.policies[target.expect("live")];
            let (m, p) = (method.expect("request"), path.expect("request"));
            let request = Request::new(&m.text, &p.text, &attributes);
            let expected = if *commit {
                h.mirror.check(&request, now, cost)
            } else {
                h.mirror.peek(&request, now, cost)
            };
            let pd = match expected {
                Err(e) => {
                    assert_eq!(status, S::from(e));
                    hbuf.assert_untouched();
                    bbuf.assert_untouched();
                    return;
                }
                Ok(pd) => pd,
            };
            assert_eq!(status, S::Ok);
            let got = slot[0];
            assert_eq!(
                got.decision,
                c_decision(*pd.decision()),
                "policy decision differs"
            );
            assert_eq!(got.limited, pd.limited());
            let rendered = Rendered {
                status: got.status,
                headers_len: got.headers_len,
                body_len: got.body_len,
                content_type: got.content_type,
            };
            rendered.compare(&pd, unix_now, &hbuf, &bbuf);
        }
        Call::PolicyDecideHttp {
            handle,
            request,
            now,
            cost,
            unix_now,
            headers,
            body,
            commit,
            out,
            out_size,
        } => {
            let (now, cost, unix_now) = (now.get(), u64::from(cost % 4), unix_now.get());
            let target = pick(&arena.policies, *handle).map(|(index, _)| index);
            let hp = target.map_or(ptr::null_mut(), |index| {
                handle_ptr(arena.policies[index].ptr, *handle)
            });
            let mut faults = Faults::default();
            faults.handle(*handle, arena.policies.len());
            let built = request.as_ref().map(|r| HttpRequest::new(r, &mut faults));
            let rp = built.as_ref().map_or(ptr::null(), HttpRequest::ptr);
            if built.is_none() {
                faults.0.push(S::NullPointer);
            }
            let hbuf = OutBytes::new(headers, &mut faults);
            let bbuf = OutBytes::new(body, &mut faults);
            faults.out(*out);
            let (size, short) = out_size.of::<ratecore_policy_outcome>();
            if short {
                faults.0.push(S::InvalidArgument);
            }
            if faults.0.is_empty() && *commit {
                let attributes = built.as_ref().expect("request").mirror_attributes();
                let h = &mut arena.policies[target.expect("live")];
                if !h.budget.admit(&attributes) {
                    return;
                }
            }
            let mut slot = [WideOutcome::sentinel(size); 2];
            let untouched = slot;
            let op = out_ptr(&mut slot, *out).cast::<ratecore_policy_outcome>();
            let (hbp, hlen, bbp, blen) = (hbuf.ptr, hbuf.len, bbuf.ptr, bbuf.len);
            // SAFETY: every pointer is valid for its length (a request and an outcome for
            // the size they state), NULL, or misaligned inside a live buffer.
            let status = unsafe {
                if *commit {
                    ratecore_policy_check_http(
                        hp, rp, now, cost, unix_now, hbp, hlen, bbp, blen, op,
                    )
                } else {
                    ratecore_policy_peek_http(hp, rp, now, cost, unix_now, hbp, hlen, bbp, blen, op)
                }
            };
            let fine = faults.judge(status, "policy_decide_http");
            if !fine || status != S::Ok {
                assert!(
                    slot.iter().zip(&untouched).all(|(a, b)| a.same(b)),
                    "outcome written with {status:?}"
                );
            }
            if !fine {
                hbuf.assert_untouched();
                bbuf.assert_untouched();
                return;
            }
            let h = &arena.policies[target.expect("live")];
            let built = built.expect("request");
            let attributes = built.mirror_attributes();
            let request = Request::new(&built.method.text, &built.path.text, &attributes);
            let expected = if *commit {
                h.mirror.check(&request, now, cost)
            } else {
                h.mirror.peek(&request, now, cost)
            };
            let pd = match expected {
                Err(e) => {
                    assert_eq!(status, S::from(e));
                    hbuf.assert_untouched();
                    bbuf.assert_untouched();
                    return;
                }
                Ok(pd) => pd,
            };
            assert_eq!(status, S::Ok);
            let got = slot[0].outcome;
            assert_eq!(got.size, std::mem::size_of::<ratecore_policy_outcome>());
            assert_eq!(slot[0].tail, untouched[0].tail, "wrote past the outcome");
            assert!(slot[1].same(&untouched[1]), "wrote past the outcome");
            assert_eq!(
                got.decision,
                c_decision(*pd.decision()),
                "policy decision differs"
            );
            assert_eq!(got.limited, pd.limited());
            let index = |id: Option<usize>| {
                id.map_or(RATECORE_NO_LIMIT, |id| u32::try_from(id).expect("small"))
            };
            assert_eq!(got.deciding_limit, index(pd.deciding().map(|l| l.id)));
            assert_eq!(
                got.shadow_denied_limit,
                index(pd.shadow_denied().map(|(l, _)| l.id))
            );
            assert_eq!(got.missing_key, pd.denied_for_missing_key());
            assert_eq!(got.exempted, pd.exempted_by().is_some());
            let rendered = Rendered {
                status: got.status,
                headers_len: got.headers_len,
                body_len: got.body_len,
                content_type: got.content_type,
            };
            rendered.compare(&pd, unix_now, &hbuf, &bbuf);
        }
        Call::PolicyInfo {
            handle,
            index,
            huge_index,
            size,
            text_len,
            text_arg,
            out,
        } => {
            let target = pick(&arena.policies, *handle);
            let hp = target.map_or(ptr::null_mut(), |(_, h)| handle_ptr(h.ptr, *handle));
            let mut faults = Faults::default();
            faults.handle(*handle, arena.policies.len());
            faults.out(*out);
            let mirror = target.map(|(_, h)| &h.mirror);

            let mut count = [usize::MAX; 2];
            // SAFETY: a live, NULL or misaligned handle; the out pointer as `out` says.
            let status = unsafe { ratecore_policy_limit_count(hp, out_ptr(&mut count, *out)) };
            let limits = mirror.map_or(0, |m| m.metrics().count());
            if faults.judge(status, "policy_limit_count") {
                assert_eq!(status, S::Ok);
                assert_eq!(count, [limits, usize::MAX]);
            } else {
                assert_eq!(count, [usize::MAX; 2], "count written with {status:?}");
            }

            let mut bytes = [usize::MAX; 2];
            // SAFETY: as above.
            let status = unsafe { ratecore_policy_memory_bytes(hp, out_ptr(&mut bytes, *out)) };
            if faults.judge(status, "policy_memory_bytes") {
                assert_eq!(status, S::Ok);
                let want = mirror.expect("live").memory_bytes();
                assert_eq!(bytes, [want, usize::MAX]);
            } else {
                assert_eq!(bytes, [usize::MAX; 2], "memory written with {status:?}");
            }

            let index = if *huge_index {
                usize::MAX - usize::from(*index)
            } else {
                usize::from(*index) % (limits + 2)
            };
            if index >= limits {
                faults.0.push(S::InvalidArgument);
            }
            let (size, short) = size.of::<ratecore_limit_metrics>();
            if short {
                faults.0.push(S::InvalidArgument);
            }
            let mut text = vec![0xaa_u8; usize::from(*text_len) + 1];
            let text_untouched = text.clone();
            let (tp, tlen) = slice_ptr(&mut text, *text_arg);
            faults.slice(*text_arg, tlen, 1);
            let mut slot = [WideMetrics::sentinel(size); 2];
            let untouched = slot;
            let op = out_ptr(&mut slot, *out).cast::<ratecore_limit_metrics>();
            // SAFETY: as above; the text buffer as `text_arg` says; a valid out pointer
            // holds the size it states.
            let status = unsafe { ratecore_policy_limit_metrics(hp, index, tp, tlen, op) };
            if !faults.judge(status, "policy_limit_metrics") {
                assert!(
                    slot.iter().zip(&untouched).all(|(a, b)| a.same(b)),
                    "metrics written with {status:?}"
                );
                assert_eq!(text, text_untouched, "names written with {status:?}");
                return;
            }
            let (limit, metrics) = mirror
                .expect("live")
                .metrics()
                .nth(index)
                .expect("in range");
            // The rule name, then the limit name, when they fit; else nothing.
            let names = [limit.rule.as_bytes(), limit.name.as_bytes()].concat();
            if names.len() > tlen {
                assert_eq!(status, S::BufferTooSmall, "policy_limit_metrics");
                assert_eq!(text, text_untouched, "names written past the capacity");
            } else {
                assert_eq!(status, S::Ok, "policy_limit_metrics");
                assert_eq!(&text[..names.len()], &names[..], "names differ");
                assert_eq!(
                    text[names.len()..],
                    text_untouched[names.len()..],
                    "wrote past the names"
                );
            }
            let got = slot[0].metrics;
            assert_eq!(got.size, std::mem::size_of::<ratecore_limit_metrics>());
            assert_eq!(slot[0].tail, untouched[0].tail, "wrote past the metrics");
            assert!(slot[1].same(&untouched[1]), "wrote past the metrics");
            assert_eq!(
                (got.rule_len, got.name_len),
                (limit.rule.len(), limit.name.len())
            );
            assert_eq!(got.shadow, limit.shadow);
            assert_eq!(
                (got.allowed, got.denied, got.shadow_denied, got.skipped),
                (
                    metrics.allowed,
                    metrics.denied,
                    metrics.shadow_denied,
                    metrics.skipped
                ),
                "metrics differ"
            );
        }
        Call::PolicyReload {
            handle,
            text,
            how,
            origin,
            file,
            error_len,
            error_arg,
            report,
            size,
        } => {
            let target = pick(&arena.policies, *handle).map(|(index, _)| index);
            let hp = target.map_or(ptr::null_mut(), |index| {
                handle_ptr(arena.policies[index].ptr, *handle)
            });
            let mut faults = Faults::default();
            faults.handle(*handle, arena.policies.len());
            faults.out(*report);
            // A size below the full report's but covering its first version (up to
            // `dropped`) is accepted: that version is written.
            let (size, _) = size.of::<ratecore_reload_report>();
            let first = std::mem::offset_of!(ratecore_reload_report, overrides_dropped);
            if size < first {
                faults.0.push(S::InvalidArgument);
            }
            let mut ebuf = vec![0xaa_u8; usize::from(*error_len) + 1];
            let untouched = ebuf.clone();
            let (ep, elen) = slice_ptr(&mut ebuf, *error_arg);
            let mut slot = [WideReport::sentinel(size); 2];
            let slot_untouched = slot;
            let rp = out_ptr(&mut slot, *report).cast::<ratecore_reload_report>();
            let (status, source) = match file {
                None => {
                    let text = text.text();
                    if crate::policy::table_bytes(&text) > crate::policy::MAX_TABLE_BYTES {
                        return;
                    }
                    let t = CStrArg::new(&text, *how);
                    let o = CStrArg::new(&origin.text, origin.how);
                    faults.0.extend(t.fault);
                    faults.0.extend(o.fault);
                    // SAFETY: every pointer is valid for its length, NULL, or misaligned.
                    let status = unsafe {
                        ratecore_policy_reload_toml(
                            hp,
                            t.ptr(),
                            t.len,
                            o.ptr(),
                            o.len,
                            ep.cast(),
                            elen,
                            rp,
                        )
                    };
                    let origin = if o.text.is_empty() {
                        "<string>".to_string()
                    } else {
                        o.text.clone()
                    };
                    (status, Reload::Text(t.text, origin))
                }
                Some(file) => {
                    let path = match file {
                        FileArg::Path(i) => Some(repo_path(RELOAD_FILES[usize::from(*i) % 5])),
                        FileArg::Null => None,
                        FileArg::InvalidUtf8 => Some(b"examples/\xff.toml".to_vec()),
                    };
                    let text = path.as_deref().and_then(|p| {
                        std::fs::read_to_string(String::from_utf8_lossy(p).as_ref()).ok()
                    });
                    if text.is_some_and(|t| {
                        crate::policy::table_bytes(&t) > crate::policy::MAX_TABLE_BYTES
                    }) {
                        return;
                    }
                    let path = path.map(|p| CString::new(p).expect("no NUL"));
                    let pp = path.as_ref().map_or(ptr::null(), |p| p.as_ptr());
                    match path.as_ref().map(|p| p.to_str()) {
                        None => faults.0.push(S::NullPointer),
                        Some(Err(_)) => faults.0.push(S::InvalidUtf8),
                        Some(Ok(_)) => {}
                    }
                    // SAFETY: every pointer is valid for its length, NULL, or misaligned;
                    // the path is NULL or NUL-terminated.
                    let status =
                        unsafe { ratecore_policy_reload_file(hp, pp, ep.cast(), elen, rp) };
                    let path = path.and_then(|p| p.into_string().ok()).unwrap_or_default();
                    (status, Reload::File(path))
                }
            };
            let fine = faults.judge(status, "policy_reload");
            if !fine || status != S::Ok {
                assert!(
                    slot.iter().zip(&slot_untouched).all(|(a, b)| a.same(b)),
                    "report written with {status:?}"
                );
            }
            if !fine {
                assert_eq!(ebuf, untouched, "error written with an argument fault");
                return;
            }
            let h = &mut arena.policies[target.expect("live")];
            let expected = match &source {
                Reload::Text(text, origin) => h.mirror.reload_toml_str(text, origin),
                Reload::File(path) => h.mirror.reload_toml_file(path),
            };
            match expected {
                Ok(want) => {
                    assert_eq!(status, S::Ok, "policy_reload");
                    assert_eq!(ebuf, untouched, "error written on success");
                    let got = slot[0].report;
                    let full = std::mem::size_of::<ratecore_reload_report>();
                    let written = if size >= full { full } else { first };
                    assert_eq!(
                        (got.size, got.kept, got.fresh, got.dropped),
                        (written, want.kept, want.fresh, want.dropped),
                        "reload report differs"
                    );
                    let overrides_dropped = if written == full {
                        want.overrides_dropped
                    } else {
                        slot_untouched[0].report.overrides_dropped
                    };
                    assert_eq!(
                        got.overrides_dropped, overrides_dropped,
                        "reload report's overrides_dropped"
                    );
                    assert_eq!(
                        slot[0].tail, slot_untouched[0].tail,
                        "wrote past the report"
                    );
                    assert!(slot[1].same(&slot_untouched[1]), "wrote past the report");
                    h.budget = h.budget.reloaded(&h.mirror);
                }
                Err(e) => {
                    let want = if e.message.starts_with("cannot read: ") {
                        S::ConfigUnreadable
                    } else {
                        S::InvalidConfig
                    };
                    assert_eq!(status, want, "policy_reload: {e}");
                    assert_error_text(&e, &ebuf, &untouched, elen, *error_arg);
                }
            }
        }
        Call::PolicyRenderMetrics { handle, out } => {
            let target = pick(&arena.policies, *handle);
            let hp = target.map_or(ptr::null_mut(), |(_, h)| handle_ptr(h.ptr, *handle));
            let mut faults = Faults::default();
            faults.handle(*handle, arena.policies.len());
            let mut o = OutBuf::new(out, &mut faults);
            // SAFETY: a live, NULL or misaligned handle; the buffer and `len_out` as `out`
            // says.
            let status =
                unsafe { ratecore_policy_render_metrics(hp, o.ptr, o.len, o.written_ptr()) };
            if !faults.judge(status, "policy_render_metrics") {
                o.assert_untouched(status);
                return;
            }
            let mirror = &target.expect("live").1.mirror;
            o.compare(status, |buf| mirror.render_metrics(buf));
        }
        Call::PolicySetOverride {
            handle,
            which,
            quota,
            error_len,
            error_arg,
        } => {
            let target = pick(&arena.policies, *handle).map(|(index, _)| index);
            let hp = target.map_or(ptr::null_mut(), |index| {
                handle_ptr(arena.policies[index].ptr, *handle)
            });
            let mut faults = Faults::default();
            faults.handle(*handle, arena.policies.len());
            let names = target.map(|index| arena.policies[index].budget.names.as_slice());
            let selector = Selector::new(which, names, &mut faults);
            let (size, short) = quota.size.of::<ratecore_override_quota>();
            if short {
                faults.0.push(S::InvalidArgument);
            }
            faults.out(quota.ptr);
            let wanted = quota.quota();
            if wanted.is_none() {
                faults.0.push(S::InvalidArgument);
            }
            let mut slot = [WideQuota::new(size, quota); 2];
            let qp = out_ptr(&mut slot, quota.ptr).cast::<ratecore_override_quota>();
            let mut ebuf = vec![0xaa_u8; usize::from(*error_len) + 1];
            let untouched = ebuf.clone();
            let (ep, elen) = slice_ptr(&mut ebuf, *error_arg);
            let [rule, limit, attribute] = selector.strs();
            let (value, value_len) = selector.value();
            // SAFETY: every pointer is valid for its length, NULL, or misaligned; a valid
            // quota pointer holds the size it states.
            let status = unsafe {
                ratecore_policy_set_override(
                    hp,
                    rule.ptr(),
                    rule.len,
                    limit.ptr(),
                    limit.len,
                    attribute.ptr(),
                    attribute.len,
                    value,
                    value_len,
                    qp,
                    ep.cast(),
                    elen,
                )
            };
            if !faults.judge(status, "policy_set_override") {
                assert_eq!(ebuf, untouched, "error written with an argument fault");
                return;
            }
            let mirror = &arena.policies[target.expect("live")].mirror;
            let result = mirror.set_override(
                &rule.text,
                &limit.text,
                &attribute.text,
                &selector.value_seen,
                wanted.expect("a valid quota"),
            );
            match result {
                Ok(()) => {
                    assert_eq!(status, S::Ok, "policy_set_override");
                    assert_eq!(ebuf, untouched, "error written on success");
                }
                Err(e) => {
                    assert_eq!(status, override_status(&e), "policy_set_override: {e}");
                    assert_error_message(&e.to_string(), &ebuf, &untouched, elen, *error_arg);
                }
            }
        }
        Call::PolicyRemoveOverride { handle, which, out } => {
            let target = pick(&arena.policies, *handle).map(|(index, _)| index);
            let hp = target.map_or(ptr::null_mut(), |index| {
                handle_ptr(arena.policies[index].ptr, *handle)
            });
            let mut faults = Faults::default();
            faults.handle(*handle, arena.policies.len());
            let names = target.map(|index| arena.policies[index].budget.names.as_slice());
            let selector = Selector::new(which, names, &mut faults);
            // A `bool` is byte-aligned: "misaligned" is the next byte, a valid pointer.
            let mut slot = [0xaa_u8; 3];
            let (op, at) = match out {
                OutArg::Valid => (slot.as_mut_ptr().cast::<bool>(), Some(0)),
                OutArg::Misaligned => (slot.as_mut_ptr().wrapping_add(1).cast::<bool>(), Some(1)),
                OutArg::Null => {
                    faults.0.push(S::NullPointer);
                    (ptr::null_mut(), None)
                }
            };
            let [rule, limit, attribute] = selector.strs();
            let (value, value_len) = selector.value();
            // SAFETY: every pointer is valid for its length, NULL, or misaligned;
            // `removed_out` is NULL or points into `slot`.
            let status = unsafe {
                ratecore_policy_remove_override(
                    hp,
                    rule.ptr(),
                    rule.len,
                    limit.ptr(),
                    limit.len,
                    attribute.ptr(),
                    attribute.len,
                    value,
                    value_len,
                    op,
                )
            };
            if !faults.judge(status, "policy_remove_override") {
                assert_eq!(slot, [0xaa; 3], "removed_out written with {status:?}");
                return;
            }
            let mirror = &arena.policies[target.expect("live")].mirror;
            match mirror.remove_override(
                &rule.text,
                &limit.text,
                &attribute.text,
                &selector.value_seen,
            ) {
                Ok(removed) => {
                    assert_eq!(status, S::Ok, "policy_remove_override");
                    let mut want = [0xaa_u8; 3];
                    want[at.expect("valid")] = u8::from(removed);
                    assert_eq!(slot, want, "removed_out");
                }
                Err(e) => {
                    assert_eq!(status, override_status(&e), "policy_remove_override: {e}");
                    assert_eq!(slot, [0xaa; 3], "removed_out written with {status:?}");
                }
            }
        }
        Call::PolicyOverrides { handle, out } => {
            let target = pick(&arena.policies, *handle);
            let hp = target.map_or(ptr::null_mut(), |(_, h)| handle_ptr(h.ptr, *handle));
            let mut faults = Faults::default();
            faults.handle(*handle, arena.policies.len());
            let mut o = OutBuf::new(out, &mut faults);
            // SAFETY: a live, NULL or misaligned handle; the buffer and `len_out` as `out`
            // says.
            let status = unsafe { ratecore_policy_overrides(hp, o.ptr, o.len, o.written_ptr()) };
            if !faults.judge(status, "policy_overrides") {
                o.assert_untouched(status);
                return;
            }
            let mirror = &target.expect("live").1.mirror;
            o.compare_text(status, &override_lines(mirror));
        }
        Call::PolicyOffenders {
            handle,
            out,
            stats,
            size,
        } => {
            let target = pick(&arena.policies, *handle);
            let hp = target.map_or(ptr::null_mut(), |(_, h)| handle_ptr(h.ptr, *handle));
            let mut faults = Faults::default();
            faults.handle(*handle, arena.policies.len());
            let mut o = OutBuf::new(out, &mut faults);
            faults.out(*stats);
            let (size, short) = size.of::<ratecore_offender_stats>();
            if short {
                faults.0.push(S::InvalidArgument);
            }
            let mut slot = [WideStats::sentinel(size); 2];
            let untouched = slot;
            let sp = out_ptr(&mut slot, *stats).cast::<ratecore_offender_stats>();
            // SAFETY: a live, NULL or misaligned handle; the buffer and `len_out` as `out`
            // says; a valid stats pointer holds the size it states.
            let status =
                unsafe { ratecore_policy_offenders(hp, o.ptr, o.len, o.written_ptr(), sp) };
            if !faults.judge(status, "policy_offenders") {
                o.assert_untouched(status);
                assert!(
                    slot.iter().zip(&untouched).all(|(a, b)| a.same(b)),
                    "stats written with {status:?}"
                );
                return;
            }
            let mirror = &target.expect("live").1.mirror;
            let (offenders, want) = mirror.offenders();
            o.compare_text(status, &offender_lines(&offenders));
            // Written on success and with BUFFER_TOO_SMALL alike.
            let got = slot[0].stats;
            assert_eq!(
                (got.size, got.evicted, got.unrecorded),
                (
                    std::mem::size_of::<ratecore_offender_stats>(),
                    want.evicted,
                    want.unrecorded
                ),
                "offender stats differ"
            );
            assert_eq!(slot[0].tail, untouched[0].tail, "wrote past the stats");
            assert!(slot[1].same(&untouched[1]), "wrote past the stats");
        }
        Call::PolicyFree { handle } => match (pick(&arena.policies, *handle), handle) {
            (Some((index, _)), HandleArg::Live(_)) => {
                let h = arena.policies.remove(index);
                // SAFETY: a live handle, freed once.
                unsafe { ratecore_policy_free(h.ptr) };
            }
            (Some((_, h)), HandleArg::Misaligned(_)) => {
                // SAFETY: a misaligned pointer is documented to be ignored.
                unsafe { ratecore_policy_free(handle_ptr(h.ptr, *handle)) };
            }
            // SAFETY: NULL is accepted.
            _ => unsafe { ratecore_policy_free(ptr::null_mut()) },
        },
        Call::Message(code) => {
            for code in [*code, code % 400] {
                let message = ratecore_status_message(code);
                assert!(!message.is_null());
                // SAFETY: documented to be a static NUL-terminated string.
                let text = unsafe { CStr::from_ptr(message) }
                    .to_str()
                    .expect("UTF-8 message");
                assert!(!text.is_empty() && text.is_ascii(), "message {text:?}");
            }
            let version = ratecore_version();
            assert!(!version.is_null());
            // SAFETY: documented to be a static NUL-terminated string.
            let version = unsafe { CStr::from_ptr(version) }.to_str().expect("UTF-8");
            assert!(!version.is_empty());
        }
    }
}

/// Where a reload reads its policy from.
enum Reload {
    /// TOML text and its origin.
    Text(String, String),
    /// A file's path.
    File(String),
}

/// `path` (relative to the repository) for the fuzz binary, wherever it runs.
fn repo_path(path: &str) -> Vec<u8> {
    format!("{}/../{path}", env!("CARGO_MANIFEST_DIR")).into_bytes()
}

/// Checks the error buffer after a configuration error: the message, NUL-terminated and
/// truncated to fit, when the buffer was passed writable; untouched otherwise.
fn assert_error_text(error: &ConfigError, buf: &[u8], untouched: &[u8], len: usize, arg: SliceArg) {
    assert_error_message(&error.to_string(), buf, untouched, len, arg);
}

/// Checks an error buffer after an error with `message`, as [`assert_error_text`].
fn assert_error_message(message: &str, buf: &[u8], untouched: &[u8], len: usize, arg: SliceArg) {
    if len > 0 && matches!(arg, SliceArg::Exact | SliceArg::Misaligned) {
        let n = message.len().min(len - 1);
        let mut want = vec![0u8; len];
        want[..n].copy_from_slice(&message.as_bytes()[..n]);
        assert_eq!(&buf[..len], &want[..], "error text");
        assert_eq!(buf[len..], untouched[len..], "wrote past the error buffer");
    } else {
        assert_eq!(buf, untouched, "error written to an unusable buffer");
    }
}

fn style_code(style: HeaderStyle) -> u32 {
    match style {
        HeaderStyle::EvEnergy => 1,
        HeaderStyle::Uphold => 2,
        HeaderStyle::Switch => 3,
        HeaderStyle::Ietf => 4,
    }
}

const fn style_code_invalid() -> u8 {
    5
}

/// A decision pointer: NULL, misaligned, or to `buf[0]`.
fn decision_ptr(
    buf: &mut [ratecore_decision; 2],
    decision: Option<&DecisionArg>,
    faults: &mut Faults,
) -> *const ratecore_decision {
    match decision {
        None => {
            faults.0.push(S::NullPointer);
            ptr::null()
        }
        Some(d) => {
            buf[0] = c_decision(d.decision());
            if d.misaligned {
                faults.0.push(S::InvalidArgument);
                buf.as_ptr().cast::<u8>().wrapping_add(1).cast()
            } else {
                buf.as_ptr()
            }
        }
    }
}

/// An output byte buffer and its `written_out`.
struct OutBuf {
    buf: Vec<u8>,
    untouched: Vec<u8>,
    ptr: *mut u8,
    len: usize,
    written: [usize; 2],
    written_arg: OutArg,
}

impl OutBuf {
    fn new(arg: &BufArg, faults: &mut Faults) -> Self {
        let mut buf = vec![0xaa_u8; usize::from(arg.len) + 1];
        let untouched = buf.clone();
        let (ptr, len) = slice_ptr(&mut buf, arg.arg);
        faults.slice(arg.arg, len, 1);
        faults.out(arg.written);
        Self {
            buf,
            untouched,
            ptr,
            len,
            written: [usize::MAX; 2],
            written_arg: arg.written,
        }
    }

    fn written_ptr(&mut self) -> *mut usize {
        out_ptr(&mut self.written, self.written_arg)
    }

    fn assert_untouched(&self, status: S) {
        assert_eq!(
            self.written,
            [usize::MAX; 2],
            "written_out set with {status:?}"
        );
        assert_eq!(self.buf, self.untouched, "buffer written with {status:?}");
    }

    /// Compares with a text report's documented contents: copied whole when it fits,
    /// nothing written past it; else `BUFFER_TOO_SMALL` and the buffer untouched; the
    /// length (needed) reported either way.
    fn compare_text(&self, status: S, text: &[u8]) {
        assert_eq!(self.written, [text.len(), usize::MAX], "len_out");
        if text.len() <= self.len {
            assert_eq!(status, S::Ok, "text report status");
            assert_eq!(&self.buf[..text.len()], text, "text report differs");
            assert_eq!(
                self.buf[text.len()..],
                self.untouched[text.len()..],
                "wrote past the text"
            );
        } else {
            assert_eq!(status, S::BufferTooSmall, "text report status");
            assert_eq!(
                self.buf, self.untouched,
                "text written with BUFFER_TOO_SMALL"
            );
        }
    }

    /// Compares with the Rust renderer on a zeroed buffer of the same size.
    fn compare(
        &self,
        status: S,
        render: impl FnOnce(&mut [u8]) -> Result<usize, ratecore::http::BufferTooSmall>,
    ) {
        let mut want = vec![0u8; self.len];
        let (expected_status, n) = match render(&mut want) {
            Ok(n) => (S::Ok, n),
            Err(e) => (S::BufferTooSmall, e.needed),
        };
        assert_eq!(status, expected_status, "render status");
        assert_eq!(self.written[0], n, "written_out");
        assert_eq!(
            &self.buf[..self.len],
            &want[..],
            "rendered bytes differ from the Rust API"
        );
        assert_eq!(
            self.buf[self.len..],
            self.untouched[self.len..],
            "wrote past the buffer"
        );
    }
}

/// An output byte buffer whose length the call reports elsewhere (a policy check's
/// result).
struct OutBytes {
    buf: Vec<u8>,
    untouched: Vec<u8>,
    ptr: *mut u8,
    len: usize,
}

impl OutBytes {
    fn new(arg: &BufArg, faults: &mut Faults) -> Self {
        let mut buf = vec![0xaa_u8; usize::from(arg.len) + 1];
        let untouched = buf.clone();
        let (ptr, len) = slice_ptr(&mut buf, arg.arg);
        faults.slice(arg.arg, len, 1);
        Self {
            buf,
            untouched,
            ptr,
            len,
        }
    }

    fn assert_untouched(&self) {
        assert_eq!(self.buf, self.untouched, "buffer written on failure");
    }
}

/// What a policy check reports beside the decision.
struct Rendered {
    status: u16,
    headers_len: usize,
    body_len: usize,
    content_type: *const c_char,
}

impl Rendered {
    /// Compares with the Rust API's rendering of `pd` into zeroed buffers of the same
    /// sizes.
    fn compare(&self, pd: &PolicyDecision<'_>, unix_now: u64, headers: &OutBytes, body: &OutBytes) {
        let mut want = vec![0u8; headers.len];
        let n = pd
            .render_headers(unix_now, &mut want)
            .unwrap_or_else(|e| e.needed);
        assert_eq!(self.headers_len, n);
        assert_eq!(&headers.buf[..headers.len], &want[..], "headers differ");
        assert_eq!(headers.buf[headers.len..], headers.untouched[headers.len..]);
        if pd.allowed() {
            assert_eq!((self.status, self.body_len), (200, 0));
            assert!(self.content_type.is_null());
            body.assert_untouched();
        } else {
            assert_eq!(self.status, pd.denial_status());
            let mut want = vec![0u8; body.len];
            let n = pd.render_body(&mut want).unwrap_or_else(|e| e.needed);
            assert_eq!(self.body_len, n);
            assert_eq!(&body.buf[..body.len], &want[..], "body differs");
            assert_eq!(body.buf[body.len..], body.untouched[body.len..]);
            assert!(!self.content_type.is_null());
            // SAFETY: documented to be a static NUL-terminated string.
            let ct = unsafe { CStr::from_ptr(self.content_type) };
            assert_eq!(ct.to_str().ok(), Some(pd.content_type()));
        }
    }
}

/// A request as a caller built against a newer header may pass it: room after the
/// struct for the size it states.
#[repr(C)]
#[derive(Clone, Copy)]
struct WideRequest {
    request: ratecore_http_request,
    tail: [u8; 32],
}

/// A `ratecore_http_request` as passed, with everything it points to.
struct HttpRequest {
    method: CStrArg,
    path: CStrArg,
    /// The names' bytes (pointed to by `_attributes`).
    _names: Vec<Vec<u8>>,
    /// The attributes, plus one (a misaligned pointer stays inside).
    _attributes: Vec<ratecore_attribute>,
    /// The attributes the library reads, as the Rust API takes them (meaningful when
    /// nothing is at fault).
    seen: Vec<(&'static str, &'static [u8])>,
    wide: Box<WideRequest>,
    misaligned: bool,
}

impl HttpRequest {
    fn new(arg: &HttpRequestArg, faults: &mut Faults) -> Self {
        let variation = arg.variation;
        let method = CStrArg::new(
            METHODS[usize::from(arg.method) % METHODS.len()],
            match variation {
                Some(HttpVariation::Method(how)) => how,
                _ => StrHow::Valid,
            },
        );
        let path = CStrArg::new(
            &arg.path,
            match variation {
                Some(HttpVariation::Path(how)) => how,
                _ => StrHow::Valid,
            },
        );
        faults.0.extend(method.fault);
        faults.0.extend(path.fault);
        let given = arg.attributes.iter().take(16).map(|a| {
            (
                ATTR_NAMES[usize::from(a.name) % ATTR_NAMES.len()],
                ATTR_VALUES[usize::from(a.value) % ATTR_VALUES.len()],
            )
        });
        let filler = std::iter::repeat_n(("x-fill", &b"v"[..]), usize::from(arg.filler % 72));
        let all: Vec<(&'static str, &'static [u8])> = given.chain(filler).collect();
        // The attribute the variation concerns, if any.
        let varied = |which: u8| usize::from(which) % all.len().max(1);
        let target = match variation {
            Some(
                HttpVariation::NullEmptyValue(i)
                | HttpVariation::NullName(i)
                | HttpVariation::InvalidUtf8Name(i)
                | HttpVariation::HugeName(i)
                | HttpVariation::NullValueWithLen(i)
                | HttpVariation::HugeValue(i),
            ) if !all.is_empty() => Some(varied(i)),
            _ => None,
        };
        let names: Vec<Vec<u8>> = all
            .iter()
            .enumerate()
            .map(|(index, (name, _))| {
                let mut bytes = name.as_bytes().to_vec();
                if target == Some(index)
                    && matches!(variation, Some(HttpVariation::InvalidUtf8Name(_)))
                {
                    bytes.push(0xff);
                }
                bytes
            })
            .collect();
        let huge = isize::MAX as usize + 1;
        let mut attributes: Vec<ratecore_attribute> = all
            .iter()
            .zip(&names)
            .enumerate()
            .map(|(index, (&(_, value), name))| {
                let here = if target == Some(index) {
                    variation
                } else {
                    None
                };
                let (name_ptr, name_len) = match here {
                    Some(HttpVariation::NullName(_)) => (ptr::null(), name.len()),
                    Some(HttpVariation::HugeName(_)) => (name.as_ptr(), huge),
                    _ => (name.as_ptr(), name.len()),
                };
                let (value_ptr, value_len) = match here {
                    Some(HttpVariation::NullEmptyValue(_)) => (ptr::null(), 0),
                    Some(HttpVariation::NullValueWithLen(_)) => (ptr::null(), value.len().max(1)),
                    Some(HttpVariation::HugeValue(_)) => (value.as_ptr(), huge),
                    _ => (value.as_ptr(), value.len()),
                };
                ratecore_attribute {
                    name: name_ptr,
                    name_len,
                    value: value_ptr,
                    value_len,
                }
            })
            .collect();
        attributes.push(ratecore_attribute {
            name: ptr::null(),
            name_len: 0,
            value: ptr::null(),
            value_len: 0,
        });
        let attributes_arg = match variation {
            Some(HttpVariation::Attributes(arg)) => arg,
            _ => SliceArg::Exact,
        };
        let (attributes_ptr, count) = slice_ptr(&mut attributes, attributes_arg);
        if count > RATECORE_MAX_REQUEST_ATTRIBUTES {
            faults.0.push(S::InvalidArgument);
        }
        faults.slice(attributes_arg, count, 8);
        // The library reads the attributes only when they are passed with their count.
        let read = matches!(attributes_arg, SliceArg::Exact | SliceArg::Misaligned);
        let mut seen = Vec::new();
        if read {
            for (index, &(name, value)) in all.iter().enumerate() {
                match (target == Some(index)).then_some(variation).flatten() {
                    Some(HttpVariation::NullEmptyValue(_)) => seen.push((name, &b""[..])),
                    Some(HttpVariation::NullName(_) | HttpVariation::NullValueWithLen(_)) => {
                        faults.0.push(S::NullPointer);
                    }
                    Some(HttpVariation::HugeName(_) | HttpVariation::HugeValue(_)) => {
                        faults.0.push(S::InvalidArgument);
                    }
                    Some(HttpVariation::InvalidUtf8Name(_)) => faults.0.push(S::InvalidUtf8),
                    _ => seen.push((name, value)),
                }
            }
        }
        let size = match variation {
            Some(HttpVariation::ShortSize(n)) => SizeArg::Short(n),
            Some(HttpVariation::LongerSize(n)) => SizeArg::Longer(n),
            _ => SizeArg::Exact,
        };
        let (size, short) = size.of::<ratecore_http_request>();
        let misaligned = variation == Some(HttpVariation::Misaligned);
        if short || misaligned {
            faults.0.push(S::InvalidArgument);
        }
        let wide = Box::new(WideRequest {
            request: ratecore_http_request {
                size,
                method: method.ptr(),
                method_len: method.len,
                path: path.ptr(),
                path_len: path.len,
                attributes: attributes_ptr.cast_const(),
                attribute_count: count,
            },
            tail: [0xaa; 32],
        });
        Self {
            method,
            path,
            _names: names,
            _attributes: attributes,
            seen,
            wide,
            misaligned,
        }
    }

    fn ptr(&self) -> *const ratecore_http_request {
        let request = &self.wide.request as *const ratecore_http_request;
        if self.misaligned {
            request.cast::<u8>().wrapping_add(1).cast()
        } else {
            request
        }
    }

    fn mirror_attributes(&self) -> Vec<Attribute<'static>> {
        self.seen
            .iter()
            .map(|&(name, value)| Attribute::new(name, value))
            .collect()
    }
}

/// An outcome slot with room for the size it states, filled with a pattern.
#[repr(C)]
#[derive(Clone, Copy)]
struct WideOutcome {
    outcome: ratecore_policy_outcome,
    tail: [u8; 32],
}

impl WideOutcome {
    fn sentinel(size: usize) -> Self {
        Self {
            outcome: ratecore_policy_outcome {
                size,
                decision: SENTINEL,
                limited: true,
                status: 0xbeef,
                headers_len: usize::MAX,
                body_len: usize::MAX,
                content_type: ptr::null(),
                deciding_limit: 0x5e5e,
                missing_key: true,
                shadow_denied_limit: 0x5e5f,
                exempted: true,
            },
            tail: [0xaa; 32],
        }
    }

    fn same(&self, other: &Self) -> bool {
        let fields = |o: &ratecore_policy_outcome| {
            (
                o.size,
                o.decision,
                o.limited,
                o.status,
                o.headers_len,
                o.body_len,
                o.content_type,
                o.deciding_limit,
                o.missing_key,
                o.shadow_denied_limit,
                o.exempted,
            )
        };
        fields(&self.outcome) == fields(&other.outcome) && self.tail == other.tail
    }
}

/// A metrics slot with room for the size it states, filled with a pattern.
#[repr(C)]
#[derive(Clone, Copy)]
struct WideMetrics {
    metrics: ratecore_limit_metrics,
    tail: [u8; 32],
}

impl WideMetrics {
    fn sentinel(size: usize) -> Self {
        Self {
            metrics: ratecore_limit_metrics {
                size,
                rule_len: usize::MAX,
                name_len: usize::MAX,
                shadow: true,
                allowed: 0x5e5e,
                denied: 0x5e5f,
                shadow_denied: 0x5e60,
                skipped: 0x5e61,
            },
            tail: [0xaa; 32],
        }
    }

    fn same(&self, other: &Self) -> bool {
        let fields = |m: &ratecore_limit_metrics| {
            (
                m.size,
                m.rule_len,
                m.name_len,
                m.shadow,
                m.allowed,
                m.denied,
                m.shadow_denied,
                m.skipped,
            )
        };
        fields(&self.metrics) == fields(&other.metrics) && self.tail == other.tail
    }
}

/// A reload report slot with room for the size it states, filled with a pattern.
#[repr(C)]
#[derive(Clone, Copy)]
struct WideReport {
    report: ratecore_reload_report,
    tail: [u8; 32],
}

impl WideReport {
    fn sentinel(size: usize) -> Self {
        Self {
            report: ratecore_reload_report {
                size,
                kept: 0x5e5e,
                fresh: 0x5e5f,
                dropped: 0x5e60,
                overrides_dropped: 0x5e61,
            },
            tail: [0xaa; 32],
        }
    }

    fn same(&self, other: &Self) -> bool {
        let fields =
            |r: &ratecore_reload_report| (r.size, r.kept, r.fresh, r.dropped, r.overrides_dropped);
        fields(&self.report) == fields(&other.report) && self.tail == other.tail
    }
}

/// An override's strings and value as passed, and what the library reads of them.
struct Selector {
    rule: CStrArg,
    limit: CStrArg,
    attribute: CStrArg,
    /// The value's bytes (pointed to by `value_ptr`).
    _value: Vec<u8>,
    value_ptr: *const u8,
    value_len: usize,
    /// The value the library reads (meaningful when nothing is at fault).
    value_seen: Vec<u8>,
}

impl Selector {
    /// `names`: the picked policy's limits, by rule and name.
    fn new(arg: &OverrideArg, names: Option<&[(String, String)]>, faults: &mut Faults) -> Self {
        let (rule, limit) = match (&arg.limit, names) {
            (LimitName::Known(i), Some(names)) if !names.is_empty() => {
                let (rule, limit) = &names[usize::from(*i) % names.len()];
                (
                    CStrArg::new(rule, StrHow::Valid),
                    CStrArg::new(limit, StrHow::Valid),
                )
            }
            (LimitName::Known(_), _) => (
                CStrArg::new("api", StrHow::Valid),
                CStrArg::new("per-app", StrHow::Valid),
            ),
            (LimitName::Raw(rule, limit), _) => (
                CStrArg::new(&rule.text, rule.how),
                CStrArg::new(&limit.text, limit.how),
            ),
        };
        let attribute = CStrArg::new(
            OVERRIDE_ATTRIBUTES[usize::from(arg.attribute) % OVERRIDE_ATTRIBUTES.len()],
            arg.attribute_how,
        );
        faults.0.extend(rule.fault);
        faults.0.extend(limit.fault);
        faults.0.extend(attribute.fault);
        let bytes = ATTR_VALUES[usize::from(arg.value) % ATTR_VALUES.len()];
        let mut value = bytes.to_vec();
        value.push(0);
        let (value_ptr, value_len) = slice_ptr(&mut value, arg.value_arg);
        faults.slice(arg.value_arg, value_len, 1);
        let value_seen = match arg.value_arg {
            SliceArg::NullEmpty => Vec::new(),
            _ => bytes.to_vec(),
        };
        Self {
            rule,
            limit,
            attribute,
            _value: value,
            value_ptr,
            value_len,
            value_seen,
        }
    }

    fn strs(&self) -> [&CStrArg; 3] {
        [&self.rule, &self.limit, &self.attribute]
    }

    fn value(&self) -> (*const u8, usize) {
        (self.value_ptr, self.value_len)
    }
}

/// The status an override change's error calls for.
fn override_status(error: &PolicyError) -> S {
    match error {
        PolicyError::UnknownLimit { .. } => S::UnknownLimit,
        PolicyError::AttributeName(_) | PolicyError::Override { .. } => S::InvalidOverride,
        _ => S::PolicyError,
    }
}

/// A quota as C lays it out, with room for the size it states, and any byte where the
/// `bool` is (so a bad one can be passed without making a Rust `bool` of it).
#[repr(C)]
#[derive(Clone, Copy)]
struct WideQuota {
    size: usize,
    unlimited: u8,
    limit: u64,
    burst: u64,
    tail: [u8; 32],
}

const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(offset_of!(WideQuota, unlimited) == offset_of!(ratecore_override_quota, unlimited));
    assert!(offset_of!(WideQuota, limit) == offset_of!(ratecore_override_quota, limit));
    assert!(offset_of!(WideQuota, burst) == offset_of!(ratecore_override_quota, burst));
    assert!(offset_of!(WideQuota, tail) == size_of::<ratecore_override_quota>());
};

impl WideQuota {
    fn new(size: usize, quota: &QuotaArg) -> Self {
        Self {
            size,
            unlimited: quota.unlimited_byte(),
            limit: quota.limit.get(),
            burst: quota.burst.map_or(0, Num::get),
            tail: [0xaa; 32],
        }
    }
}

/// An offender stats slot with room for the size it states, filled with a pattern.
#[repr(C)]
#[derive(Clone, Copy)]
struct WideStats {
    stats: ratecore_offender_stats,
    tail: [u8; 32],
}

impl WideStats {
    fn sentinel(size: usize) -> Self {
        Self {
            stats: ratecore_offender_stats {
                size,
                evicted: 0x5e5e,
                unrecorded: 0x5e5f,
            },
            tail: [0xaa; 32],
        }
    }

    fn same(&self, other: &Self) -> bool {
        let fields = |s: &ratecore_offender_stats| (s.size, s.evicted, s.unrecorded);
        fields(&self.stats) == fields(&other.stats) && self.tail == other.tail
    }
}

/// A text report's field as documented: bytes 0x20 to 0x7e but the backslash as they
/// are, the backslash doubled, any other byte `\xNN`.
fn escaped_field(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for &b in bytes {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x20..=0x7e => out.push(b),
            _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
    out
}

/// A text report's line: the fields escaped, tab-separated, then a newline.
fn text_line(fields: &[&[u8]]) -> Vec<u8> {
    let mut line = fields
        .iter()
        .map(|f| escaped_field(f))
        .collect::<Vec<_>>()
        .join(&b'\t');
    line.push(b'\n');
    line
}

/// `ratecore_policy_overrides`' documented text for the mirror's overrides.
fn override_lines(mirror: &Policy) -> Vec<u8> {
    let mut overrides = mirror.overrides();
    overrides.sort_by(|a, b| {
        (&a.0, &a.1, &a.2.attribute, &a.2.value).cmp(&(&b.0, &b.1, &b.2.attribute, &b.2.value))
    });
    overrides
        .iter()
        .flat_map(|(rule, limit, o)| {
            let (quota, burst) = match o.quota {
                OverrideQuota::Limit { limit, burst } => {
                    (limit.to_string(), burst.unwrap_or(0).to_string())
                }
                OverrideQuota::Unlimited => ("unlimited".to_string(), "0".to_string()),
            };
            text_line(&[
                rule.as_bytes(),
                limit.as_bytes(),
                o.attribute.as_bytes(),
                &o.value,
                quota.as_bytes(),
                burst.as_bytes(),
            ])
        })
        .collect()
}

/// `ratecore_policy_offenders`' documented text for the mirror's report.
fn offender_lines(offenders: &[ratecore::policy::Offender]) -> Vec<u8> {
    offenders
        .iter()
        .flat_map(|o| {
            text_line(&[
                o.rule.as_bytes(),
                o.limit.as_bytes(),
                &o.key,
                o.denials.to_string().as_bytes(),
                if o.truncated { b"1" } else { b"0" },
            ])
        })
        .collect()
}
