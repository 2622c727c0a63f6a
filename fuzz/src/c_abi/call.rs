//! One call to the C ABI: its function and how each argument is passed.

use arbitrary::Arbitrary;

use crate::gen::Num;

use super::args::{
    BufArg, DecisionArg, FileArg, HandleArg, HttpRequestArg, OutArg, OverrideArg, PolicyText,
    QuotaArg, RawQuota, ReportArg, RequestArg, SizeArg, SliceArg, StrArg, StrHow,
};

/// The arguments of `ratecore_policy_check` / `_peek` and of their `_http` forms, but the
/// request and the output's kind.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct PolicyCheck {
    /// Handle.
    pub handle: HandleArg,
    /// `now_ns`.
    pub now: Num,
    /// `cost`.
    pub cost: u8,
    /// Wall clock.
    pub unix_now: Num,
    /// The headers buffer.
    pub headers: BufArg,
    /// The body buffer.
    pub body: BufArg,
    /// Check rather than peek.
    pub commit: bool,
    /// The result (or outcome) pointer.
    pub out: OutArg,
}

/// The arguments of `ratecore_limiter_check` / `_peek` / `_check_each` / `_peek_each` and
/// of their table forms, but the key.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct Decide {
    /// Handle.
    pub handle: HandleArg,
    /// `now_ns`.
    pub now: Num,
    /// `cost`.
    pub cost: Num,
    /// Check rather than peek.
    pub commit: bool,
    /// Use the `_each` variant with this many states.
    pub each: Option<(u8, SliceArg)>,
    /// The out pointer.
    pub out: OutArg,
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
        /// The arguments both decide calls take.
        decide: Decide,
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
        /// The arguments both decide calls take.
        decide: Decide,
        /// Key (modulo 8).
        key: u8,
        /// How the key is passed.
        key_arg: SliceArg,
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
    /// `ratecore_zone_directive_parse` (else `ratecore_limit_directive_parse`, then
    /// `ratecore_limit_directive_check_zone` against the last zone parsed).
    Directive {
        /// A zone rather than a limit.
        zone: bool,
        /// The arguments: a known key (by index, past the end: none) and a value.
        args: Vec<(u8, DirectiveValue)>,
        /// `level_style` for a limit.
        level_style: u8,
        /// The error buffer's length.
        err_len: u8,
    },
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
        /// The arguments both policy checks take.
        check: PolicyCheck,
        /// The request (`None`: NULL).
        request: Option<RequestArg>,
    },
    /// `ratecore_policy_check_http` / `_peek_http`.
    PolicyDecideHttp {
        /// The arguments both policy checks take (`out`: the outcome pointer).
        check: PolicyCheck,
        /// The request (`None`: NULL).
        request: Option<HttpRequestArg>,
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

/// A directive parameter's value: from a vocabulary of near-valid values, or any bytes.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum DirectiveValue {
    /// One of the vocabulary's values.
    Known(u8),
    /// Arbitrary bytes.
    Bytes(Vec<u8>),
}
