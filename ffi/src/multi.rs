//! One request checked against several tables in one call (per client IP *and* per
//! account; a web server location with several zones): all or nothing, with each quota's
//! state and the quota that decided. `multi_headers` renders the result's headers.

use std::mem::MaybeUninit;
use std::ptr::addr_of_mut;

use ratecore::table::region::RegionMemory;
use ratecore::table::{check_tables, TableCheck, TablesDecision, TablesError};
use ratecore::{Decision, Mode};

use crate::ffi::{check_len, handle_ref, input_slice, output};
use crate::headers::RATECORE_MAX_QUOTA_REPORTS;
use crate::panic::guard;
use crate::quota::ratecore_decision;
use crate::status::ratecore_status;
use crate::table::{ratecore_table, TableInner};

/// The most items one `ratecore_tables_check` takes (and the most quotas of all its
/// tables together).
pub const RATECORE_MAX_CHECK_ITEMS: usize = RATECORE_MAX_QUOTA_REPORTS;

/// What `ratecore_tables_check` does with an admission (passed as `uint32_t`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ratecore_check_mode {
    /// Consume every item's cost when all admit (a check).
    Charge = 1,
    /// Consume nothing, and give no key a slot: what a check would answer now.
    Peek = 2,
}

/// One table's part of a request: the table, the request's key in it, its cost there,
/// and the name its quotas are reported under in the IETF headers
/// (`ratecore_render_check_headers`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ratecore_check_item {
    /// The table (a live handle).
    pub table: *const ratecore_table,
    /// The key, `key_len` bytes (`(NULL, 0)` is the empty key).
    pub key: *const u8,
    /// Length of `key`.
    pub key_len: usize,
    /// What the request costs in this table (0 only reports).
    pub cost: u64,
    /// UTF-8 report name, `name_len` bytes (`(NULL, 0)` is ""): a table of one quota is
    /// reported as `name`, one of several as `name/1`, `name/2`, ... Read only by
    /// `ratecore_render_check_headers`.
    pub name: *const u8,
    /// Length of `name`.
    pub name_len: usize,
}

/// One quota's state after `ratecore_tables_check`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ratecore_check_report {
    /// The item (index into the items) whose table holds the quota.
    pub item: usize,
    /// The quota's index in that table (0 to its limit count − 1).
    pub quota: usize,
    /// The quota's period in nanoseconds.
    pub period_ns: u64,
    /// The quota's state: after an admission, as the request left it; after a denial,
    /// unchanged (nothing was consumed), `allowed` saying whether it alone would have
    /// admitted the request.
    pub decision: ratecore_decision,
}

/// What `ratecore_tables_check` decided.
///
/// The deciding quota, over every quota of every item in order, as the library's
/// composites choose it: when admitted, the quota with the fewest `remaining` (ties: the
/// longest `reset_after`); when denied, the denying quota with the largest `retry_after`
/// (ties: the fewest `remaining`), which is the first moment every quota admits.
/// Remaining ties go to the earlier quota.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ratecore_check_result {
    /// The combined decision: the deciding quota's.
    pub decision: ratecore_decision,
    /// The deciding item (index into the items).
    pub item: usize,
    /// The deciding quota's index in that item's table.
    pub quota: usize,
    /// The deciding quota's period in nanoseconds (e.g. for a text 429 body).
    pub period_ns: u64,
    /// How many entries of `reports` were written: every quota of every item, in order.
    pub report_count: usize,
    /// Each quota's state (entries from `report_count` on are not written).
    pub reports: [ratecore_check_report; RATECORE_MAX_QUOTA_REPORTS],
}

/// Checks one request against several tables at once (`items`, `item_count` of them, 1
/// to `RATECORE_MAX_CHECK_ITEMS`, their tables holding at most
/// `RATECORE_MAX_QUOTA_REPORTS` quotas together), all or nothing: admitted only if every
/// quota of every item's table admits that item's cost, and a denial consumes nothing
/// from any table. With `RATECORE_CHECK_MODE_PEEK` nothing is consumed either way. Writes
/// the combined decision, the deciding item and quota, and every quota's state to
/// `*result_out`. One item of a one-quota table takes the table's own fast path.
///
/// Under concurrency the protocol is the composites': every quota is peeked, then each
/// is charged in order, and a charge that a racing request made fail gives back the ones
/// already taken: never an over-admission, at worst a spurious denial. Items may name
/// the same table (even with the same key): each is checked as its own member.
///
/// A denial is a decision, not an error. Errors (nothing consumed): `NULL_POINTER`,
/// `INVALID_ARGUMENT` (a bad pointer or length, an unknown mode), `NO_LIMITS` (no items),
/// `TOO_MANY_LIMITS` (more items, or more quotas in all, than allowed), and
/// `COST_EXCEEDS_LIMIT` when an item's cost can never fit one of its table's quotas: then,
/// as the one exception to "outputs only on success", `result_out->item` names the first
/// such item (nothing else is written).
///
/// Thread safety: as for `ratecore_table_check`, on each table.
///
/// # Safety
/// `items` is valid for reading `item_count` items (or NULL with 0); each item's `table`
/// is NULL or a live handle and its `key` valid for `key_len` bytes (or NULL with 0);
/// `result_out` is NULL or valid for writing one `ratecore_check_result` (only the
/// fields and reports named above are written).
#[no_mangle]
pub unsafe extern "C" fn ratecore_tables_check(
    items: *const ratecore_check_item,
    item_count: usize,
    now_ns: u64,
    mode: u32,
    result_out: *mut ratecore_check_result,
) -> ratecore_status {
    // SAFETY: forwarded from this function's contract.
    guard(|| unsafe {
        check_into(items, item_count, now_ns, mode, result_out, |_| Ok(())).map(|_| ())
    })
}

/// `ratecore_tables_check`'s body, shared with `ratecore_tables_check_headers`: `ready`
/// sees the items' tables once every argument is checked and before anything is
/// consumed, and may still refuse (an error then consumes nothing). Returns the combined
/// decision it wrote to the result.
///
/// # Safety
/// As for `ratecore_tables_check`.
#[inline(always)] // into each exported check: one call, no closure left behind
pub(crate) unsafe fn check_into(
    items: *const ratecore_check_item,
    item_count: usize,
    now_ns: u64,
    mode: u32,
    result_out: *mut ratecore_check_result,
    ready: impl FnOnce(&[Check]) -> Result<(), ratecore_status>,
) -> Result<ratecore_decision, ratecore_status> {
    let mode = match mode {
        1 => Mode::Charge,
        2 => Mode::Peek,
        _ => return Err(ratecore_status::InvalidArgument),
    };
    if item_count > RATECORE_MAX_CHECK_ITEMS {
        // Rejected without reading: the count alone decides.
        if items.is_null() {
            return Err(ratecore_status::NullPointer);
        }
        check_len::<ratecore_check_item>(item_count)?;
        return Err(ratecore_status::TooManyLimits);
    }
    // SAFETY: forwarded from this function's contract.
    let items = unsafe { input_slice(items, item_count) }?;
    // SAFETY: valid for writing one result during this call, or NULL (contract).
    let out = unsafe { output(result_out) }?;
    let result = out.as_ptr();
    let first = items.first().ok_or(ratecore_status::NoLimits)?;
    // SAFETY: forwarded from this function's contract (each item's handle and key).
    let first_check = unsafe { table_check(first) }?;
    if items.len() == 1 {
        let checks = std::slice::from_ref(&first_check);
        ready(checks)?;
        // SAFETY: `result` is valid for one result's writes (checked above).
        return unsafe { decide(checks, now_ns, mode, result) };
    }
    let mut checks = [first_check; RATECORE_MAX_CHECK_ITEMS];
    for (check, item) in checks.iter_mut().zip(items).skip(1) {
        // SAFETY: as for the first item.
        *check = unsafe { table_check(item) }?;
    }
    let checks = checks.get(..items.len()).unwrap_or(&[]);
    ready(checks)?;
    // SAFETY: `result` is valid for one result's writes (checked above).
    unsafe { decide(checks, now_ns, mode, result) }
}

/// One item as the core's check takes it (not part of the C API).
///
/// cbindgen:ignore
pub(crate) type Check = TableCheck<'static, RegionMemory<'static>>;

/// Runs the checks and writes the result; returns the combined decision.
///
/// # Safety
/// `result` is valid for writing one `ratecore_check_result`.
#[inline(always)] // twice into `ratecore_tables_check`: one item, several
unsafe fn decide(
    checks: &[Check],
    now_ns: u64,
    mode: Mode,
    result: *mut ratecore_check_result,
) -> Result<ratecore_decision, ratecore_status> {
    // One table of one quota (a web server location with one zone, per request): the
    // table's own check, with its live-key fast path, and the one report written
    // directly.
    if let [only] = checks {
        let config = only.table.config();
        if config.limit_count() == 1 {
            // Converted in each branch: the core's `Result` merged from both went through
            // the stack twice.
            let checked = if mode.charges() {
                only.table
                    .check(only.key, now_ns, only.cost)
                    .map(ratecore_decision::from)
            } else {
                only.table
                    .peek(only.key, now_ns, only.cost)
                    .map(ratecore_decision::from)
            };
            let decision = match checked {
                Ok(decision) => decision,
                Err(error) => {
                    // SAFETY: as below.
                    unsafe { addr_of_mut!((*result).item).write(0) };
                    return Err(error.into());
                }
            };
            let period = config.limits().next().map_or(0, |spec| spec.quota.period());
            // SAFETY: `result` is valid for one result's writes (contract); each field
            // pointer stays inside it, the report's in `reports[0]`.
            unsafe {
                addr_of_mut!((*result).reports)
                    .cast::<ratecore_check_report>()
                    .write(ratecore_check_report {
                        item: 0,
                        quota: 0,
                        period_ns: period,
                        decision,
                    });
                addr_of_mut!((*result).decision).write(decision);
                addr_of_mut!((*result).item).write(0);
                addr_of_mut!((*result).quota).write(0);
                addr_of_mut!((*result).period_ns).write(period);
                addr_of_mut!((*result).report_count).write(1);
            }
            return Ok(decision);
        }
    }
    let quotas: usize = checks.iter().map(|c| c.table.config().limit_count()).sum();
    if quotas > RATECORE_MAX_QUOTA_REPORTS {
        return Err(ratecore_status::TooManyLimits);
    }
    let mut states = [MaybeUninit::<Decision>::uninit(); RATECORE_MAX_QUOTA_REPORTS];
    let states = init_states(&mut states, quotas);
    let decided = match check_tables(checks, now_ns, mode, states) {
        Ok(decided) => decided,
        Err(TablesError::NoChecks) => return Err(ratecore_status::NoLimits),
        Err(TablesError::TooManyLimits) => return Err(ratecore_status::TooManyLimits),
        Err(TablesError::CostExceedsLimit { check, error }) => {
            // SAFETY: `result` is valid for one result's writes (contract); the field
            // pointer stays inside it.
            unsafe { addr_of_mut!((*result).item).write(check) };
            return Err(error.into());
        }
    };
    // SAFETY: forwarded from this function's contract.
    unsafe { write_result(result, checks, &decided, states) };
    Ok(decided.decision.into())
}

/// The first `count` states, initialised (the composite may read any entry it wrote):
/// only as many as there are quotas, since this runs on every request.
fn init_states(
    states: &mut [MaybeUninit<Decision>; RATECORE_MAX_QUOTA_REPORTS],
    count: usize,
) -> &mut [Decision] {
    let states = states.get_mut(..count).unwrap_or(&mut []);
    for state in states.iter_mut() {
        state.write(Decision::EMPTY);
    }
    // SAFETY: every element of `states` was initialised just above, and
    // `MaybeUninit<Decision>` has `Decision`'s layout.
    unsafe { &mut *(std::ptr::from_mut(states) as *mut [Decision]) }
}

/// The table behind an item, with its key and cost.
///
/// # Safety
/// The item's `table` is NULL or a live handle not freed during the exported call, and
/// its `key` valid for `key_len` bytes (or NULL with 0).
#[inline(always)] // twice into `check_into`: the first item and the others
unsafe fn table_check(item: &ratecore_check_item) -> Result<Check, ratecore_status> {
    // SAFETY: forwarded from this function's contract.
    let inner: &TableInner = unsafe { handle_ref(item.table) }?;
    // SAFETY: forwarded from this function's contract.
    let key = unsafe { input_slice(item.key, item.key_len) }?;
    Ok(TableCheck {
        table: inner.table(),
        key,
        cost: item.cost,
    })
}

/// Writes the decision, the deciding quota and the first `decided.quotas` reports, field
/// by field: the rest of the (large) result is left as the caller had it.
///
/// # Safety
/// `result` is valid for writing one `ratecore_check_result`.
unsafe fn write_result(
    result: *mut ratecore_check_result,
    checks: &[Check],
    decided: &TablesDecision,
    states: &[Decision],
) {
    let mut at = 0;
    let mut period = 0;
    for (index, check) in checks.iter().enumerate() {
        for (quota, spec) in check.table.config().limits().enumerate() {
            let Some(state) = states.get(at) else {
                break;
            };
            if (index, quota) == (decided.check, decided.quota) {
                period = spec.quota.period();
            }
            let report = ratecore_check_report {
                item: index,
                quota,
                period_ns: spec.quota.period(),
                decision: (*state).into(),
            };
            // SAFETY: `at` < RATECORE_MAX_QUOTA_REPORTS (an index of `states`, which is
            // no longer); `result` is valid for writes (contract), and the pointer stays
            // inside its `reports`.
            unsafe {
                addr_of_mut!((*result).reports)
                    .cast::<ratecore_check_report>()
                    .add(at)
                    .write(report);
            }
            at += 1;
        }
    }
    // SAFETY: `result` is valid for writes (contract); each field pointer stays inside it.
    unsafe {
        addr_of_mut!((*result).decision).write(decided.decision.into());
        addr_of_mut!((*result).item).write(decided.check);
        addr_of_mut!((*result).quota).write(decided.quota);
        addr_of_mut!((*result).period_ns).write(period);
        addr_of_mut!((*result).report_count).write(at);
    }
}
