//! # ratecore-ffi
//!
//! The C ABI of [`ratecore`]: `ratecore_*` symbols in a static library
//! (`libratecore_ffi.a`) and a shared library (`libratecore_ffi.so`), declared in
//! `include/ratecore.h`, which cbindgen generates from this crate (`ffi/gen-header.sh`).
//!
//! ## Conventions (every function)
//! - Fallible functions return a [`ratecore_status`]; [`ratecore_status_message`] turns
//!   it into text. Values are explicit and never reused.
//! - Inputs first, outputs last. Outputs are written only when the status is
//!   `RATECORE_STATUS_OK` (the documented exceptions: a buffer-too-small answer reports
//!   the length needed, and for `ratecore_policy_limit_metrics` and
//!   `ratecore_policy_offenders` the counters; a policy configuration error, and a
//!   refused override, writes its message to the caller's error buffer).
//! - A struct that may grow in later versions starts with a `size` field the caller sets
//!   to `sizeof` the struct as it compiled it. The library reads or writes only the fields
//!   that size covers, and rejects a size below the struct's first version with
//!   `RATECORE_STATUS_INVALID_ARGUMENT`.
//! - Every pointer is checked: NULL gives `RATECORE_STATUS_NULL_POINTER`, a pointer not
//!   aligned for its type `RATECORE_STATUS_INVALID_ARGUMENT`. A byte string is a
//!   `(pointer, length)` pair; `(NULL, 0)` is the empty string; a length above
//!   `PTRDIFF_MAX` is rejected.
//! - Every exported body runs inside `catch_unwind`: a Rust panic is reported as
//!   `RATECORE_STATUS_PANIC`, never unwound into C.
//! - Handles come from a `_new` (or `_init_region` / `_attach_region`) function and go back
//!   through their `_free` function, which accepts NULL.
//! - Time is an input: every check takes `now_ns`, nanoseconds from a monotonic clock the
//!   caller chooses (`clock_gettime(CLOCK_MONOTONIC)`; one system-wide clock for processes
//!   sharing a region).
//!
//! ## Modules
//! One per API area: [`status`] (status codes and messages), [`panic`](mod@panic) (the boundary),
//! [`quota`] (quotas, algorithms, decisions), [`limiter`] (single-key limiters and
//! composites), [`table`] (keyed tables), [`multi`] (one request checked against several
//! tables in one call) and [`multi_headers`] (its headers), [`charge`] (undoable table
//! checks, for a request checked against several tables one by one), [`region`] (tables in caller-provided shared
//! memory), [`headers`] (rate-limit headers and 429 bodies), [`policy`] (TOML policies
//! checked per request), [`policy_request`] (requests with named attributes, and which
//! limit decided), [`policy_metrics`] (per-limit counters, their Prometheus export,
//! memory), [`policy_reload`] (replacing a policy while it is in use),
//! [`policy_overrides`] (per-client quotas set, removed and listed at run time),
//! [`policy_offenders`] (the keys that keep sending while denied), [`version`]. `ffi`
//! holds the pointer helpers every function uses, `lines` the text reports' format.
#![deny(
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks,
    missing_docs
)]
// The C names are the API: `ratecore_limiter`, `ratecore_status`, ...
#![allow(non_camel_case_types)]

mod ffi;
mod lines;

pub mod charge;
pub mod clock;
mod directive_limit;
mod directive_values;
mod directive_zone;
pub mod headers;
pub mod limiter;
pub mod multi;
pub mod multi_check_headers;
pub mod multi_headers;
pub mod panic;
pub mod policy;
pub mod policy_metrics;
pub mod policy_offenders;
pub mod policy_overrides;
pub mod policy_reload;
pub mod policy_request;
pub mod quota;
pub mod region;
pub mod status;
pub mod table;
pub mod version;
// Last: the header lists its types after the older ones.
pub mod directive;

#[cfg(feature = "test-hooks")]
pub mod test_hooks;

pub use charge::{
    ratecore_table_charge, ratecore_table_check_undoable, ratecore_table_undo,
    RATECORE_TABLE_CHARGE_WORDS,
};
pub use directive::{
    ratecore_limit_directive, ratecore_limit_directive_check_zone, ratecore_limit_directive_parse,
    ratecore_shm_layout, ratecore_text, ratecore_zone_directive, ratecore_zone_directive_parse,
    RATECORE_LIMIT_BODY_NONE, RATECORE_LIMIT_BODY_PROBLEM_JSON, RATECORE_LIMIT_BODY_SERVER,
    RATECORE_LIMIT_BODY_TEXT, RATECORE_LIMIT_STYLE_NONE,
};
pub use headers::{
    ratecore_header_style, ratecore_quota_report, ratecore_render_headers,
    ratecore_render_problem_json, ratecore_render_text_body, RATECORE_MAX_QUOTA_REPORTS,
};
pub use limiter::{
    ratecore_limiter, ratecore_limiter_check, ratecore_limiter_check_each, ratecore_limiter_free,
    ratecore_limiter_limit_count, ratecore_limiter_new, ratecore_limiter_peek,
    ratecore_limiter_peek_each, RATECORE_MAX_LIMITER_LIMITS,
};
pub use multi::{
    ratecore_check_item, ratecore_check_mode, ratecore_check_report, ratecore_check_result,
    ratecore_tables_check, RATECORE_MAX_CHECK_ITEMS,
};
pub use multi_check_headers::ratecore_tables_check_headers;
pub use multi_headers::{
    ratecore_header, ratecore_headers, ratecore_render_check_headers, RATECORE_MAX_HEADERS,
};
pub use policy::{
    ratecore_policy, ratecore_policy_check, ratecore_policy_free, ratecore_policy_from_file,
    ratecore_policy_from_toml, ratecore_policy_peek, ratecore_policy_result, ratecore_request,
};
pub use policy_metrics::{
    ratecore_limit_metrics, ratecore_policy_limit_count, ratecore_policy_limit_metrics,
    ratecore_policy_memory_bytes, ratecore_policy_render_metrics,
};
pub use policy_offenders::{
    ratecore_offender_stats, ratecore_policy_offenders, RATECORE_OFFENDERS,
    RATECORE_OFFENDER_KEY_BYTES,
};
pub use policy_overrides::{
    ratecore_override_quota, ratecore_policy_overrides, ratecore_policy_remove_override,
    ratecore_policy_set_override,
};
pub use policy_reload::{
    ratecore_policy_reload_file, ratecore_policy_reload_toml, ratecore_reload_report,
};
pub use policy_request::{
    ratecore_attribute, ratecore_http_request, ratecore_policy_check_http, ratecore_policy_outcome,
    ratecore_policy_peek_http, RATECORE_MAX_REQUEST_ATTRIBUTES, RATECORE_NO_LIMIT,
};
pub use quota::{
    ratecore_algorithm, ratecore_decision, ratecore_quota, RATECORE_MAX_SUB_WINDOWS, RATECORE_NEVER,
};
pub use region::{
    ratecore_table_attach_region, ratecore_table_init_region, ratecore_table_region_size,
    RATECORE_REGION_ALIGN, RATECORE_REGION_LAYOUT_VERSION,
};
pub use status::{ratecore_status, ratecore_status_message};
pub use table::{
    ratecore_full_policy, ratecore_table, ratecore_table_capacity, ratecore_table_check,
    ratecore_table_check_each, ratecore_table_free, ratecore_table_full_policy,
    ratecore_table_get_stats, ratecore_table_limit_count, ratecore_table_limits,
    ratecore_table_new, ratecore_table_peek, ratecore_table_peek_each, ratecore_table_stats,
    RATECORE_MAX_TABLE_CAPACITY, RATECORE_MAX_TABLE_LIMITS,
};
#[cfg(feature = "test-hooks")]
pub use test_hooks::ratecore_test_panic;
pub use version::ratecore_version;
