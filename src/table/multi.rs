//! One request checked against several tables at once (per client IP *and* per account;
//! an nginx location with several zones): admitted only if every quota of every table
//! admits, and a denial consumes nothing anywhere. Each table's key may carry its own cost.
//!
//! The quotas of all the tables run as the members of one composite protocol
//! ([`crate::composite`]): every quota is peeked, then each is reserved in order, and a
//! reservation a racing request made fail gives back those already taken. So the
//! guarantees are the composite's: sequentially exact, never an over-admission under
//! races (at worst a spurious denial).
//!
//! # Which quota decides
//! The composite's rule, over every quota of every table in order: when admitted, the
//! quota with the fewest `remaining` (ties: the longest `reset_after`); when denied, the
//! denying quota with the largest `retry_after` (ties: the fewest `remaining`) — the
//! first moment every quota admits. Remaining ties go to the earlier quota.
//!
//! # Orderings
//! No atomics of its own: each quota's slot protocol carries its orderings.

use super::{KeyedLimit, Table, TableMemory};
use crate::composite::{run_all_deciding, Member, MAX_LIMITS};
use crate::decision::{Decision, Mode};
use crate::error::CheckError;

/// One table's part of a multi-table check: the table, the request's key in it, and the
/// cost the request weighs there.
#[derive(Debug)]
pub struct TableCheck<'a, M: TableMemory> {
    /// The table.
    pub table: &'a Table<M>,
    /// The request's key in that table.
    pub key: &'a [u8],
    /// What the request costs in that table (0 only reports).
    pub cost: u64,
}

// Manual impls: a derive would require `M: Clone`/`M: Copy`, though only a reference
// to the table is held.
impl<M: TableMemory> Clone for TableCheck<'_, M> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<M: TableMemory> Copy for TableCheck<'_, M> {}

/// The answer of [`check_tables`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TablesDecision {
    /// The combined decision: the deciding quota's.
    pub decision: Decision,
    /// Which check decided (an index into the checks).
    pub check: usize,
    /// Which quota of that check's table decided (an index into its limits).
    pub quota: usize,
    /// How many quotas were checked: every limit of every table, in order (the entries
    /// of `states` written).
    pub quotas: usize,
}

/// Why [`check_tables`] could not decide. Nothing was consumed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TablesError {
    /// No checks were given.
    NoChecks,
    /// The tables hold more than [`MAX_LIMITS`] quotas together.
    TooManyLimits,
    /// The cost of check `check` can never fit one of its table's quotas.
    CostExceedsLimit {
        /// The check whose cost can never fit.
        check: usize,
        /// The table's error.
        error: CheckError,
    },
}

/// Checks (or with [`Mode::Peek`], peeks) one request against several tables, all or
/// nothing (module docs), writing each quota's state into `states` (every limit of every
/// table in order; as [`crate::Composite::check_each`] reports them: after a denial, each
/// quota's unchanged state). Entries beyond `states.len()` are not reported.
///
/// Several checks may name the same table, even with the same key: each is its own member
/// (the request then consumes twice from that key).
///
/// # Errors
/// [`TablesError`]: no checks, more than [`MAX_LIMITS`] quotas, or a cost that can never
/// fit (the first such check). Nothing is consumed then.
pub fn check_tables<M: TableMemory>(
    checks: &[TableCheck<'_, M>],
    now: u64,
    mode: Mode,
    states: &mut [Decision],
) -> Result<TablesDecision, TablesError> {
    let Some(first) = checks.first() else {
        return Err(TablesError::NoChecks);
    };
    // One table of one quota: the table's own check, with its live-key fast path.
    if checks.len() == 1 && first.table.config.count == 1 {
        let hash = first.table.hasher.hash_one(first.key);
        let decision = first
            .table
            .run(hash, now, first.cost, mode, &mut [])
            .map_err(|error| TablesError::CostExceedsLimit { check: 0, error })?;
        if let Some(entry) = states.first_mut() {
            *entry = decision;
        }
        return Ok(TablesDecision {
            decision,
            check: 0,
            quota: 0,
            quotas: 1,
        });
    }
    let placeholder = first
        .table
        .members(first.table.hasher.hash_one(first.key))
        .next()
        .ok_or(TablesError::NoChecks)?;
    let mut members: [KeyedLimit<'_>; MAX_LIMITS] = [placeholder; MAX_LIMITS];
    let mut costs = [0u64; MAX_LIMITS];
    // (check, quota) of each member
    let mut owners = [(0usize, 0usize); MAX_LIMITS];
    let mut count = 0;
    for (index, check) in checks.iter().enumerate() {
        let hash = check.table.hasher.hash_one(check.key);
        for (quota, member) in check.table.members(hash).enumerate() {
            let (Some(slot), Some(cost), Some(owner)) = (
                members.get_mut(count),
                costs.get_mut(count),
                owners.get_mut(count),
            ) else {
                return Err(TablesError::TooManyLimits);
            };
            *slot = member;
            *cost = check.cost;
            *owner = (index, quota);
            count += 1;
        }
    }
    let members = members.get(..count).unwrap_or(&[]);
    let costs = costs.get(..count).unwrap_or(&[]);
    match run_all_deciding(members, now, costs, mode, states) {
        Ok(decided) => {
            let (check, quota) = owners.get(decided.index).copied().unwrap_or_default();
            Ok(TablesDecision {
                decision: decided.decision,
                check,
                quota,
                quotas: count,
            })
        }
        Err(error) => {
            // Errors depend on the cost alone: the first member refusing it names its check.
            let check = members
                .iter()
                .zip(costs)
                .position(|(member, &cost)| member.peek(now, cost).is_err())
                .and_then(|at| owners.get(at))
                .map_or(0, |&(check, _)| check);
            Err(TablesError::CostExceedsLimit { check, error })
        }
    }
}
