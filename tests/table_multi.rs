//! Differential tests of [`check_tables`], one request against several keyed tables: driven
//! sequentially, it must answer every request exactly as a naive reference does — every
//! quota of every named table peeked alone with its check's cost; admitted (and every
//! quota charged) only if all admit, otherwise nothing changes anywhere — with the same
//! per-quota states, the same combined decision, and the same deciding (check, quota),
//! chosen by the rule `src/table/multi.rs` documents. An impossible cost names its check.
//!
//! Tables are large and see few keys, so no eviction can make a table forget state. The
//! runs are deterministic: proptest's RNG is seeded with a fixed value.

mod model;
mod support;

use std::cmp::Reverse;
use std::collections::HashMap;

use model::{AnyModel, CompositeModel, Model};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use ratecore::table::{check_tables, OwnedTable, TableCheck, TablesError};
use ratecore::{Algorithm, Decision, LimitSpec, Mode, Quota, Table, TableConfig};

/// Tables per case; each request names a non-empty subset of them, in any order.
const TABLES: usize = 3;
/// Distinct keys per table.
const KEYS: u8 = 3;

#[derive(Clone, Debug)]
struct Request {
    /// (table, key, cost) of each check, tables distinct.
    checks: Vec<(usize, u8, u64)>,
    step: u64,
    peek: bool,
}

fn spec() -> impl Strategy<Value = LimitSpec> {
    let algorithm = prop_oneof![
        Just(Algorithm::Gcra),
        Just(Algorithm::FixedWindow),
        Just(Algorithm::SlidingWindowApprox),
        (1..=6u32).prop_map(|sub_windows| Algorithm::SlidingWindowStrict { sub_windows }),
    ];
    (algorithm, 1..=6u64, 1..=4u64).prop_map(|(algorithm, limit, seconds)| LimitSpec {
        algorithm,
        quota: Quota::new(limit, seconds * 1_000_000_000).expect("a valid quota"),
    })
}

fn tables() -> impl Strategy<Value = Vec<Vec<LimitSpec>>> {
    prop::collection::vec(prop::collection::vec(spec(), 1..=2), TABLES)
}

fn requests() -> impl Strategy<Value = Vec<Request>> {
    let check = (
        0..KEYS,
        prop_oneof![6 => 0..=3u64, 2 => 4..=8u64, 1 => Just(u64::MAX)],
    );
    let request = (
        Just((0..TABLES).collect::<Vec<_>>()).prop_shuffle(),
        1..=TABLES,
        prop::collection::vec(check, TABLES),
        prop_oneof![4 => 0..=600_000_000u64, 1 => 0..=5_000_000_000u64],
        prop::bool::weighted(0.2),
    )
        .prop_map(|(order, n, checks, step, peek)| Request {
            checks: order
                .iter()
                .take(n)
                .zip(checks)
                .map(|(&table, (key, cost))| (table, key, cost))
                .collect(),
            step,
            peek,
        });
    prop::collection::vec(request, 1..=60)
}

/// The deciding entry, by the documented rule, over quotas peeked alone.
fn deciding(alone: &[Decision]) -> usize {
    let denied = alone.iter().any(|d| !d.allowed);
    let mut best = None::<usize>;
    for (index, d) in alone.iter().enumerate() {
        if denied && d.allowed {
            continue;
        }
        let better = best.is_none_or(|b| {
            let b = &alone[b];
            if denied {
                (d.retry_after, Reverse(d.remaining)) > (b.retry_after, Reverse(b.remaining))
            } else {
                (Reverse(d.remaining), d.reset_after) > (Reverse(b.remaining), b.reset_after)
            }
        });
        if better {
            best = Some(index);
        }
    }
    best.expect("at least one quota")
}

fn run_case(specs: &[Vec<LimitSpec>], requests: &[Request]) -> Result<(), TestCaseError> {
    let tables: Vec<OwnedTable> = specs
        .iter()
        .map(|s| Table::new(TableConfig::new(1024, s).expect("a valid config")).unwrap())
        .collect();
    let mut models: HashMap<(usize, u8), Vec<AnyModel>> = HashMap::new();
    let mut now = 1_000_000_000u64;
    for (step, request) in requests.iter().enumerate() {
        now += request.step;
        let checks: Vec<TableCheck<'_, _>> = request
            .checks
            .iter()
            .map(|(table, key, cost)| TableCheck {
                table: &tables[*table],
                key: std::slice::from_ref(key),
                cost: *cost,
            })
            .collect();
        let mode = if request.peek {
            Mode::Peek
        } else {
            Mode::Charge
        };
        let mut states = [Decision::EMPTY; 8];
        let got = check_tables(&checks, now, mode, &mut states);

        // The reference: each quota alone, with its owner (check, quota).
        let mut owners = Vec::new();
        let mut impossible = None;
        for (index, &(table, key, cost)) in request.checks.iter().enumerate() {
            let limits = models
                .entry((table, key))
                .or_insert_with(|| CompositeModel::of_specs(&specs[table]).limits);
            for (quota, limit) in limits.iter().enumerate() {
                if cost > limit.capacity() && impossible.is_none() {
                    impossible = Some(index);
                }
                owners.push((index, quota));
            }
        }
        if let Some(check) = impossible {
            match got {
                Err(TablesError::CostExceedsLimit { check: c, .. }) => {
                    prop_assert_eq!(c, check, "step {}: the impossible check", step)
                }
                other => prop_assert!(
                    false,
                    "step {step}: expected check {check} impossible, got {other:?}"
                ),
            }
            continue;
        }
        let mut alone = Vec::new();
        for &(table, key, cost) in &request.checks {
            for limit in &models[&(table, key)] {
                alone.push(limit.peek(now, cost).unwrap());
            }
        }
        let admitted = alone.iter().all(|d| d.allowed);
        let expected_states: Vec<Decision> = if admitted {
            alone.clone()
        } else {
            let mut at = 0;
            let mut unchanged = Vec::new();
            for &(table, key, _) in &request.checks {
                for limit in &models[&(table, key)] {
                    let d = alone[at];
                    unchanged.push(if d.allowed {
                        limit.peek(now, 0).unwrap()
                    } else {
                        d
                    });
                    at += 1;
                }
            }
            unchanged
        };
        if admitted && !request.peek {
            for &(table, key, cost) in &request.checks {
                for limit in models.get_mut(&(table, key)).unwrap() {
                    let _ = limit.check(now, cost).unwrap();
                }
            }
        }
        let index = deciding(&alone);
        let got = got.map_err(|e| TestCaseError::fail(format!("step {step}: {e:?}")))?;
        prop_assert_eq!(got.decision, alone[index], "step {}: decision", step);
        prop_assert_eq!(
            (got.check, got.quota),
            owners[index],
            "step {}: deciding",
            step
        );
        prop_assert_eq!(got.quotas, alone.len(), "step {}: quotas", step);
        prop_assert_eq!(
            &states[..alone.len()],
            &expected_states[..],
            "step {}: states",
            step
        );
        prop_assert!(
            states[alone.len()..].iter().all(|s| *s == Decision::EMPTY),
            "step {step}: states past the quotas written"
        );
    }
    Ok(())
}

#[test]
fn several_tables_all_or_nothing_with_the_deciding_quota() {
    let config = Config {
        cases: if cfg!(debug_assertions) { 64 } else { 256 },
        failure_persistence: None,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]);
    let mut runner = TestRunner::new_with_rng(config, rng);
    runner
        .run(&(tables(), requests()), |(specs, requests)| {
            run_case(&specs, &requests)
        })
        .unwrap();
}

#[test]
fn no_checks_and_too_many_quotas_are_errors() {
    let spec = support::limits::spec(Algorithm::FixedWindow, 10, 1_000_000_000);
    let table = Table::new(TableConfig::new(64, &[spec; 4]).unwrap()).unwrap();
    let none: [TableCheck<'_, _>; 0] = [];
    assert_eq!(
        check_tables::<ratecore::table::OwnedMemory>(&none, 0, Mode::Charge, &mut []),
        Err(TablesError::NoChecks)
    );
    let check = TableCheck {
        table: &table,
        key: b"k",
        cost: 1,
    };
    // 5 tables of 4 quotas: 20 > 16.
    assert_eq!(
        check_tables(&[check; 5], 0, Mode::Charge, &mut []),
        Err(TablesError::TooManyLimits)
    );
    // 4 of them fit, and the same key checked four times consumes four times.
    let decided = check_tables(&[check; 4], 0, Mode::Charge, &mut []).unwrap();
    assert!(decided.decision.allowed);
    assert_eq!((decided.quotas, decided.decision.remaining), (16, 6));
    assert_eq!(table.peek(b"k", 0, 0).unwrap().remaining, 6);
}
