//! Differential tests of keyed tables: a [`Table`] driven sequentially must answer every
//! request exactly (field by field, to the nanosecond, or with the same
//! [`CheckError`]) as a `HashMap<key, reference model>` built from the naive models in
//! `tests/model/`, for arbitrary key / time / cost sequences: forward and backward time
//! steps, repeated times, jumps near `u64::MAX`, costs of 0, up to and beyond the limit.
//!
//! Every algorithm is covered (GCRA with bursts, fixed window, approximate and strict
//! sliding windows), alone and as 2-limit composite tables, through every entry point:
//! `check`, `peek`, `check_each` (each limit's state, as documented in
//! `src/composite.rs`), `check_key`, and `check_undoable` with and without an immediate
//! `undo` (after which the table must answer exactly as if the request never happened,
//! but for the strict window's documented exception: `StrictModel::undone`).
//!
//! No eviction or reclaim may happen, or the table would legitimately forget state: at
//! most [`KEYS`] (6) distinct keys ever reach a table, and a neighbourhood has
//! [`ratecore::table::NEIGHBOURHOOD`] (8) slots, so a new key always finds an empty slot
//! (the claim protocol takes an empty slot before any other). The tables are large
//! anyway (512 slots, 64 × the number of keys), and every case ends by asserting that
//! the stats show no reclaim, eviction or full neighbourhood.
//!
//! The runs are deterministic: proptest's RNG is seeded with a fixed value and failures
//! are not persisted to disk.

mod model;
mod support;

use std::collections::HashMap;

use model::{expected_quota, AnyModel, CompositeModel, Model};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use ratecore::table::{OwnedTable, NEIGHBOURHOOD};
use ratecore::{Algorithm, Decision, LimitSpec, Quota, Table, TableConfig, TableError};
use support::gen::{advance, config, cost_spec, start_time, step, CostSpec, Step, StepMix};

/// Distinct keys per case: byte keys `0..BYTE_KEYS` (through `check`, `peek`,
/// `check_each`), then `u64` keys (through `check_key`).
const KEYS: usize = 6;
/// How many of the [`KEYS`] are byte keys.
const BYTE_KEYS: usize = 4;
/// Slots per limit: 64 × the number of keys.
const CAPACITY: u64 = 512;

const _: () = assert!(KEYS <= NEIGHBOURHOOD);

/// Fewer cases in debug builds (the whole file must stay fast there).
const fn cases(release: u32) -> u32 {
    if cfg!(debug_assertions) {
        release / 2
    } else {
        release
    }
}

// ---------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------

/// One limit as generated: algorithm, limit, period, and a GCRA burst factor.
#[derive(Clone, Copy, Debug)]
struct LimitGen {
    algorithm: Algorithm,
    limit: u64,
    period: u64,
    /// GCRA only: `None` = default burst (= limit), `Some(k)` = `limit × k`, or 1 if 0.
    burst: Option<u8>,
}

fn algorithm() -> impl Strategy<Value = Algorithm> {
    prop_oneof![
        Just(Algorithm::Gcra),
        Just(Algorithm::FixedWindow),
        Just(Algorithm::SlidingWindowApprox),
        prop_oneof![
            8 => 1..=8u32,
            2 => 9..=64u32,
            1 => Just(0u32),
        ]
        .prop_map(|sub_windows| Algorithm::SlidingWindowStrict { sub_windows }),
    ]
}

fn limit_gen() -> impl Strategy<Value = LimitGen> {
    let quota = prop_oneof![
        // Tiny periods: every nanosecond matters.
        4 => (1..=8u64).prop_flat_map(|l| (Just(l), l..=l * 64)),
        // Small limits, periods long enough for every window layout.
        6 => (1..=12u64, 256..=100_000u64),
        // Realistic: up to 1000 per 10 s.
        3 => (1..=1000u64, 1_000..=10_000_000_000u64),
        // Huge periods: moments beyond u64::MAX are common.
        2 => (1..=100u64, (u64::MAX / 4)..=u64::MAX),
        // Anything (often rejected: the table must reject it the same way).
        1 => (any::<u64>(), any::<u64>()),
    ];
    let burst = prop_oneof![3 => Just(None), 2 => (0..=4u8).prop_map(Some)];
    (algorithm(), quota, burst).prop_map(|(algorithm, (limit, period), burst)| LimitGen {
        algorithm,
        limit,
        period,
        burst,
    })
}

/// How time moves: mostly forward, often to window and sub-window boundaries, rarely
/// far.
const STEPS: StepMix = StepMix {
    same: 30,
    forward: 100,
    tiny: 30,
    back: 30,
    back_tiny: 15,
    align: 30,
    align_from: 1,
    absolute: 2,
    near_max: 2,
    max_tiny: 1,
};

/// What to call.
#[derive(Clone, Copy, Debug)]
enum Call {
    Check,
    Peek,
    /// `check_each` with a `states` buffer of `limits + extra` entries (the extra ones
    /// must stay untouched).
    CheckEach {
        extra: u8,
    },
    /// `check_undoable` with a full `states` buffer; with `undo`, the charge is given
    /// back at once, after which the table must answer as the models say an undo leaves
    /// them: as if the request never happened, except that a strict window's sub-window
    /// that already held admissions keeps the undone one's time.
    CheckUndoable {
        undo: bool,
    },
}

/// One request.
#[derive(Clone, Copy, Debug)]
struct Op {
    key: usize,
    step: Step,
    cost: CostSpec,
    call: Call,
    /// Composites: which limit's period scales `step` and capacity scales `cost`.
    select: u8,
}

fn ops(max_len: usize) -> impl Strategy<Value = Vec<Op>> {
    let call = prop_oneof![
        4 => Just(Call::Check),
        2 => Just(Call::Peek),
        2 => (0..=1u8).prop_map(|extra| Call::CheckEach { extra }),
        2 => any::<bool>().prop_map(|undo| Call::CheckUndoable { undo }),
    ];
    // Keys are skewed towards a couple of hot ones, so each key sees long streams.
    let key = prop_oneof![3 => 0..2usize, 2 => 0..KEYS];
    prop::collection::vec(
        (key, step(STEPS), cost_spec(10, 4), call, any::<u8>()).prop_map(
            |(key, step, cost, call, select)| Op {
                key,
                step,
                cost,
                call,
                select,
            },
        ),
        1..=max_len,
    )
}

// ---------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------

/// A decision no table ever returns, to see which `states` entries were written.
const SENTINEL: Decision = Decision {
    allowed: true,
    limit: 0xDEAD,
    remaining: 0xBEEF,
    reset_after: 1,
    retry_after: 1,
};

/// Builds the table and one model per limit, or `None` if construction failed the same
/// (typed) way on both sides.
fn build(limits: &[LimitGen]) -> Result<Option<(OwnedTable, Vec<AnyModel>)>, TestCaseError> {
    let mut specs = Vec::new();
    let mut models = Vec::new();
    for gen in limits {
        let burst = match (gen.algorithm, gen.burst) {
            (Algorithm::Gcra, Some(k)) => Some(gen.limit.saturating_mul(u64::from(k)).max(1)),
            _ => None,
        };
        let quota = Quota::new(gen.limit, gen.period).and_then(|q| match burst {
            Some(b) => q.with_burst(b),
            None => Ok(q),
        });
        // Quota validation itself is covered by tests/differential.rs; here both sides
        // must merely agree.
        let (quota, params) = match (quota, expected_quota(gen.limit, gen.period, burst)) {
            (Ok(q), Ok(p)) => (q, p),
            (Err(got), Err(want)) => {
                prop_assert_eq!(got, want);
                return Ok(None);
            }
            (got, want) => {
                return Err(TestCaseError::fail(format!(
                    "{gen:?}: quota {got:?}, spec says {want:?}"
                )))
            }
        };
        specs.push(LimitSpec {
            algorithm: gen.algorithm,
            quota,
        });
        match AnyModel::new(gen.algorithm, params) {
            Ok(model) => models.push(model),
            Err(want) => {
                let got = TableConfig::new(CAPACITY, &specs);
                prop_assert_eq!(got.err(), Some(TableError::Quota(want)), "{:?}", gen);
                return Ok(None);
            }
        }
    }
    let config = TableConfig::new(CAPACITY, &specs)
        .map_err(|e| TestCaseError::fail(format!("{limits:?}: table config rejected: {e:?}")))?
        .with_seed([0x5eed, 1, 2, 3]);
    let table =
        Table::new(config).map_err(|e| TestCaseError::fail(format!("table not built: {e:?}")))?;
    Ok(Some((table, models)))
}

/// The byte form of key `k`.
fn byte_key(k: usize) -> Vec<u8> {
    format!("client-{k}").into_bytes()
}

/// Drives `table` and one `CompositeModel` per key through `ops`, comparing everything.
fn run(
    table: &OwnedTable,
    models: &[AnyModel],
    periods: &[u64],
    start: u64,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let count = models.len();
    let mut per_key: HashMap<usize, CompositeModel> = HashMap::new();
    let mut now = start;
    for (i, op) in ops.iter().enumerate() {
        let select = usize::from(op.select) % count;
        now = advance(now, op.step, periods[select], 1);
        let cost = op.cost.resolve(models[select].capacity());
        let model = per_key
            .entry(op.key)
            .or_insert_with(|| CompositeModel::new(models.to_vec()));
        let byte = op.key < BYTE_KEYS;
        // u64 keys only have `check_key`.
        let call = if byte { op.call } else { Call::Check };
        let commit = !matches!(call, Call::Peek);
        let before = model.clone();
        let want = model.run(now, cost, commit);
        if let (Call::CheckUndoable { undo: true }, Ok(outcome)) = (call, &want) {
            if outcome.decision.allowed {
                // What the undo leaves (exactly the state before, except in a strict
                // window's sub-window that already held admissions: see the model).
                for (limit, earlier) in model.limits.iter_mut().zip(&before.limits) {
                    *limit = AnyModel::undone(earlier, limit, cost);
                }
            }
        }
        let mut states = vec![SENTINEL; count + 2];
        let got = match call {
            Call::Check if byte => table.check(&byte_key(op.key), now, cost),
            Call::Check => table.check_key(&(op.key as u64), now, cost),
            Call::Peek => table.peek(&byte_key(op.key), now, cost),
            Call::CheckEach { extra } => {
                let len = count + usize::from(extra);
                table.check_each(&byte_key(op.key), now, cost, &mut states[..len])
            }
            Call::CheckUndoable { undo } => {
                match table.check_undoable(&byte_key(op.key), now, cost, &mut states[..count]) {
                    Ok((decision, charge)) => {
                        // A charge exactly when something was consumed.
                        prop_assert_eq!(
                            charge.is_some(),
                            decision.allowed && cost > 0,
                            "op {} {:?}: charge {:?} for {:?}",
                            i,
                            op,
                            charge,
                            decision
                        );
                        if let Some(charge) = charge {
                            // Its plain words read back as the same charge.
                            let words = table.charge_to_words(&charge);
                            let read_back = table.charge_from_words(&words);
                            prop_assert_eq!(read_back.as_ref(), Some(&charge));
                            if undo {
                                table.undo(charge);
                            }
                        }
                        Ok(decision)
                    }
                    Err(error) => Err(error),
                }
            }
        };
        let context = || format!("op {i} {op:?}: key {} now={now} cost={cost}", op.key);
        match (got, want) {
            (Ok(decision), Ok(outcome)) => {
                prop_assert_eq!(decision, outcome.decision, "{}", context());
                if let Call::CheckEach { .. } | Call::CheckUndoable { .. } = call {
                    prop_assert_eq!(
                        &states[..count],
                        &outcome.states[..],
                        "states, {}",
                        context()
                    );
                    // Entries beyond the limits (passed or not) are never written.
                    let untouched = &states[count..];
                    prop_assert!(
                        untouched.iter().all(|d| *d == SENTINEL),
                        "states beyond the limits written, {}",
                        context()
                    );
                }
            }
            (Err(error), Err(allowed)) => {
                prop_assert!(
                    allowed.contains(&error),
                    "{}: error {:?}, expected one of {:?}",
                    context(),
                    error,
                    allowed
                );
            }
            (got, want) => {
                return Err(TestCaseError::fail(format!(
                    "{}: table {got:?}, model {want:?}",
                    context()
                )))
            }
        }
    }
    let stats = table.stats();
    prop_assert_eq!(
        (
            stats.reclaims,
            stats.evictions,
            stats.full_neighbourhoods,
            stats.contended
        ),
        (0, 0, 0, 0),
        "{:?}",
        stats
    );
    prop_assert!(stats.occupied <= (KEYS * count) as u64, "{:?}", stats);
    prop_assert_eq!(stats.occupied, stats.new_keys, "{:?}", stats);
    Ok(())
}

proptest! {
    #![proptest_config(config(cases(4000), 0x7AB1_0001))]

    /// One limit per key, every algorithm.
    #[test]
    fn single_limit_tables_match_models(
        limit in limit_gen(),
        start in start_time(),
        ops in ops(80),
    ) {
        let Some((table, models)) = build(&[limit])? else {
            return Ok(());
        };
        run(&table, &models, &[limit.period], start, &ops)?;
    }
}

proptest! {
    #![proptest_config(config(cases(3000), 0x7AB1_0002))]

    /// Two limits per key (e.g. 5/s AND 20/min): admitted only if both admit, a denial
    /// consumes nothing, the reported decision and `check_each` states as documented.
    #[test]
    fn composite_tables_match_composite_models(
        first in limit_gen(),
        second in limit_gen(),
        start in start_time(),
        ops in ops(80),
    ) {
        let Some((table, models)) = build(&[first, second])? else {
            return Ok(());
        };
        run(&table, &models, &[first.period, second.period], start, &ops)?;
    }
}

/// A fixed, hand-written stream per algorithm (every kind of time step, including the
/// end of time, every entry point, an over-limit cost): the table and the models agree
/// step by step, whatever proptest's generators happen to produce.
#[test]
fn hand_written_streams_match_models() {
    const SECOND: u64 = 1_000_000_000;
    let algorithms = [
        Algorithm::Gcra,
        Algorithm::FixedWindow,
        Algorithm::SlidingWindowApprox,
        Algorithm::SlidingWindowStrict { sub_windows: 4 },
    ];
    for algorithm in algorithms {
        let limit = LimitGen {
            algorithm,
            limit: 3,
            period: SECOND,
            burst: None,
        };
        let (table, models) = build(&[limit]).unwrap().unwrap();
        let steps = [
            Step::Same,
            Step::Tiny(1),
            Step::Forward(64),
            Step::Back(128),
            Step::Align(4, 0),
            Step::Forward(512),
            Step::NearMax(3),
            Step::MaxTiny(0),
            Step::Back(2),
        ];
        let mut ops = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            for key in 0..KEYS {
                ops.push(Op {
                    key,
                    step: if key == 0 { *step } else { Step::Same },
                    cost: if i % 3 == 2 {
                        CostSpec::Over(0)
                    } else {
                        CostSpec::One
                    },
                    call: [Call::Check, Call::Peek, Call::CheckEach { extra: 1 }][(i + key) % 3],
                    select: 0,
                });
            }
        }
        run(&table, &models, &[SECOND], 5 * SECOND, &ops).unwrap();
    }
}
