//! `table`: a keyed table under arbitrary operation sequences.
//!
//! An input is a small table (capacity 0 to 255 — 0 is rejected — rounded up to a power
//! of two of at least 8; a full-neighbourhood policy; 0 to 5 limits of any algorithm —
//! 0 and 5 are rejected — strict windows with at most 64 sub-windows; a hash seed) and operations on keys from a small alphabet (time
//! step, cost, and `check`, `peek`, `check_each` or `check_key`).
//!
//! - `TableConfig::new` fails exactly as the limits' models say.
//! - With at most 8 distinct keys no key can ever lose its slot (a neighbourhood has 8
//!   slots), so every decision — and every `check_each` state — must equal the composite
//!   model of that key, exactly, whatever the time does; and the table must never
//!   reclaim, evict or find a neighbourhood full.
//! - With more keys (up to 24) a slot can be reclaimed or evicted, so only invariants
//!   hold: the counters agree with each other and with the policy; decisions are sane;
//!   and, while time has only moved forward, the table never over-admits: every request
//!   it admits (and tracks) must also be admitted by a model fed only the requests the
//!   table admitted (models of other keys are reset when an eviction happens, which only
//!   makes them more lenient).

use std::collections::HashMap;
use std::fmt;

use arbitrary::Arbitrary;
use ratecore::table::TableMemory;
use ratecore::{
    CheckError, Decision, FullPolicy, LimitSpec, Table, TableConfig, TableError, TableStats,
};

use crate::algorithms::sane;
use crate::gen::{moduli_of, Cost, Num, QuotaSpec, ResolvedQuota, Step};
use crate::model::{expected_quota, AnyModel, CompositeModel, Model};

/// At most this many operations run per input.
pub const MAX_OPS: usize = 400;
/// Strict windows in tables have at most this many sub-windows (memory per key).
pub const MAX_SUB_WINDOWS: u32 = 64;
/// Tables with at most this many distinct keys are checked exactly.
pub const EXACT_KEYS: usize = 8;

/// The full-neighbourhood policy.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicySel {
    /// Evict the key closest to rest.
    Evict,
    /// Deny the new key.
    Deny,
    /// Admit the new key untracked.
    Allow,
}

impl PolicySel {
    /// The policy.
    #[must_use]
    pub fn policy(self) -> FullPolicy {
        match self {
            Self::Evict => FullPolicy::EvictClosestToRest,
            Self::Deny => FullPolicy::Deny,
            Self::Allow => FullPolicy::Allow,
        }
    }
}

/// What one operation calls.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableKind {
    /// `check`.
    Check,
    /// `peek`.
    Peek,
    /// `check_each`.
    CheckEach,
    /// `check_key` with the same bytes (must be the same key as `check`).
    CheckKey,
}

/// One operation.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableOp {
    /// Which key (modulo the alphabet).
    pub key: u8,
    /// How time moves first.
    pub step: Step,
    /// The cost.
    pub cost: Cost,
    /// What is called.
    pub kind: TableKind,
}

/// A fuzz input.
#[derive(Arbitrary, Clone, PartialEq, Eq)]
pub struct TableCase {
    /// Requested capacity (0 is rejected).
    pub capacity: u8,
    /// Full-neighbourhood policy.
    pub policy: PolicySel,
    /// The limits (the first 5 are passed, so 0 and 5 exercise the count errors).
    pub limits: Vec<QuotaSpec>,
    /// The hash seed.
    pub seed: [u64; 4],
    /// Distinct keys: `1 + alphabet % 24`.
    pub alphabet: u8,
    /// The first `now`.
    pub start: Num,
    /// The operations.
    pub ops: Vec<TableOp>,
}

/// One resolved call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableCall {
    /// The key's index.
    pub key: u8,
    /// `now`.
    pub now: u64,
    /// `cost`.
    pub cost: u64,
    /// What is called.
    pub kind: TableKind,
}

/// The concrete calls of `ops` (the first [`MAX_OPS`]), from `start`, for limits with
/// these moduli and smallest capacity, on `alphabet` keys.
#[must_use]
pub fn resolve_calls(
    ops: &[TableOp],
    start: u64,
    moduli: &[u64],
    capacity: u64,
    alphabet: u8,
) -> Vec<TableCall> {
    let mut now = start;
    ops.iter()
        .take(MAX_OPS)
        .map(|op| {
            now = op.step.apply(now, moduli);
            TableCall {
                key: op.key % alphabet.max(1),
                now,
                cost: op.cost.get(capacity),
                kind: op.kind,
            }
        })
        .collect()
}

/// The bytes of key `id`.
#[must_use]
pub fn key_bytes(id: u8) -> Vec<u8> {
    if id == 0 {
        Vec::new()
    } else {
        vec![b'k', id]
    }
}

/// The most one request may cost in every limit.
fn capacity_of(q: &ResolvedQuota) -> u64 {
    match q.algorithm {
        ratecore::Algorithm::Gcra => q.burst.unwrap_or(q.limit),
        _ => q.limit,
    }
}

impl TableCase {
    /// The limits as numbers.
    #[must_use]
    pub fn quotas(&self) -> Vec<ResolvedQuota> {
        self.limits
            .iter()
            .take(5)
            .map(|q| q.resolve(MAX_SUB_WINDOWS))
            .collect()
    }

    /// Distinct keys.
    #[must_use]
    pub fn alphabet(&self) -> u8 {
        1 + self.alphabet % 24
    }

    /// The concrete calls.
    #[must_use]
    pub fn calls(&self) -> Vec<TableCall> {
        let quotas = self.quotas();
        let moduli: Vec<u64> = quotas.iter().flat_map(moduli_of).collect();
        let capacity = quotas.iter().map(capacity_of).min().unwrap_or(1);
        resolve_calls(
            &self.ops,
            self.start.get(),
            &moduli,
            capacity,
            self.alphabet(),
        )
    }

    /// What `TableConfig::new` must return, by the models' rules: the config's specs and
    /// each limit's model, or the error.
    pub fn expected_config(&self) -> Result<Vec<(LimitSpec, AnyModel)>, TableError> {
        let quotas = self.quotas();
        if quotas.is_empty() {
            return Err(TableError::NoLimits);
        }
        if quotas.len() > ratecore::table::MAX_TABLE_LIMITS {
            return Err(TableError::TooManyLimits);
        }
        if self.capacity == 0 {
            return Err(TableError::BadCapacity);
        }
        let mut out = Vec::new();
        for q in &quotas {
            // An invalid quota is not a table question: such a case builds nothing.
            let params = expected_quota(q.limit, q.period, q.burst).map_err(TableError::Quota)?;
            let model = AnyModel::new(q.algorithm, params).map_err(TableError::Quota)?;
            let quota = q.quota().map_err(TableError::Quota)?;
            out.push((
                LimitSpec {
                    algorithm: q.algorithm,
                    quota,
                },
                model,
            ));
        }
        Ok(out)
    }

    /// Builds the config (if every quota is valid), checking it against the models.
    /// `None` when the config is rightly rejected.
    #[must_use]
    pub fn config(&self) -> Option<(TableConfig, Vec<AnyModel>)> {
        let quotas = self.quotas();
        // Quotas that do not construct cannot be passed to TableConfig at all.
        let specs: Vec<LimitSpec> = quotas
            .iter()
            .map_while(|q| {
                q.quota().ok().map(|quota| LimitSpec {
                    algorithm: q.algorithm,
                    quota,
                })
            })
            .collect();
        if specs.len() != quotas.len() {
            return None;
        }
        let expected = self.expected_config();
        let actual = TableConfig::new(self.capacity.into(), &specs);
        match (expected, actual) {
            (Ok(models), Ok(config)) => {
                assert_eq!(
                    config.capacity(),
                    u64::from(self.capacity).next_power_of_two().max(8)
                );
                let config = config
                    .with_policy(self.policy.policy())
                    .with_seed(self.seed);
                Some((config, models.into_iter().map(|(_, m)| m).collect()))
            }
            (Err(e), Err(a)) => {
                assert_eq!(e, a, "TableConfig::new error differs");
                None
            }
            (e, a) => panic!(
                "TableConfig::new validity differs: model {:?}, ratecore {:?}",
                e.err(),
                a.err()
            ),
        }
    }
}

/// Per-key checking state while a table is driven.
pub struct Driver {
    models: Vec<AnyModel>,
    capacities: Vec<u64>,
    exact: bool,
    policy: FullPolicy,
    slots: u64,
    /// Exact mode: one composite model per key.
    composite: HashMap<u8, CompositeModel>,
    /// Invariant mode: per key, one model per limit, fed only what the table admitted.
    admitted: HashMap<u8, Vec<AnyModel>>,
    /// Whether time has only moved forward (the over-admission check needs it).
    monotone: bool,
    last_now: Option<u64>,
    last_stats: TableStats,
    /// Whether the counters started consistent (false for regions of arbitrary bytes).
    pub counters_known: bool,
}

impl Driver {
    /// A driver for a fresh table of `config`, whose limits' models are `models`.
    #[must_use]
    pub fn new(config: &TableConfig, models: Vec<AnyModel>, distinct_keys: usize) -> Self {
        Self {
            capacities: models.iter().map(Model::capacity).collect(),
            exact: distinct_keys <= EXACT_KEYS,
            policy: config.policy(),
            slots: config.capacity() * models.len() as u64,
            models,
            composite: HashMap::new(),
            admitted: HashMap::new(),
            monotone: true,
            last_now: None,
            last_stats: TableStats::default(),
            counters_known: true,
        }
    }

    /// A driver that checks invariants only (a table whose keys may already hold
    /// unknown state, e.g. one attached to a region).
    #[must_use]
    pub fn invariants_only(config: &TableConfig, models: Vec<AnyModel>, stats: TableStats) -> Self {
        let mut driver = Self::new(config, models, usize::MAX);
        // Unknown prior state: neither exactness nor over-admission can be judged.
        driver.monotone = false;
        driver.last_stats = stats;
        driver
    }

    fn expected_error(&self, cost: u64) -> Vec<CheckError> {
        self.capacities
            .iter()
            .filter(|&&c| cost > c)
            .map(|&limit| CheckError::CostExceedsLimit { cost, limit })
            .collect()
    }

    /// Runs one call on `table` and checks it.
    pub fn step<M: TableMemory>(&mut self, table: &Table<M>, call: &TableCall) {
        let key = key_bytes(call.key);
        if self.last_now.is_some_and(|last| call.now < last) {
            self.monotone = false;
        }
        self.last_now = Some(call.now);
        let n = self.models.len();
        let sentinel = Decision {
            allowed: false,
            limit: 0xdead,
            remaining: 0xbeef,
            reset_after: 3,
            retry_after: 4,
        };
        let mut states = [sentinel; 5];
        let got = match call.kind {
            TableKind::Check => table.check(&key, call.now, call.cost),
            TableKind::Peek => table.peek(&key, call.now, call.cost),
            TableKind::CheckEach => table.check_each(&key, call.now, call.cost, &mut states[..=n]),
            TableKind::CheckKey => table.check_key(&key[..], call.now, call.cost),
        };
        assert!(
            states[n..].iter().all(|s| *s == sentinel),
            "entries beyond the limits written"
        );
        let commit = call.kind != TableKind::Peek;
        let stats = table.stats();
        if self.counters_known {
            self.check_stats(&stats);
        }
        let acceptable = self.expected_error(call.cost);
        let decision = match got {
            Err(e) => {
                assert!(
                    acceptable.contains(&e),
                    "error {e:?} not among {acceptable:?} at {call:?}"
                );
                assert_eq!(stats, self.last_stats, "an error changed the counters");
                if self.exact {
                    let model = self.composite_of(call.key);
                    assert!(model.run(call.now, call.cost, commit).is_err());
                }
                return;
            }
            Ok(d) => d,
        };
        assert!(
            acceptable.is_empty(),
            "{decision:?} where an error was due at {call:?}"
        );
        sane(&decision);
        assert!(
            self.capacities.contains(&decision.limit),
            "limit of no limit: {decision:?}"
        );
        if self.exact {
            let model = self.composite_of(call.key);
            let want = model
                .run(call.now, call.cost, commit)
                .expect("cost fits every limit");
            assert_eq!(
                decision, want.decision,
                "decision differs from the model at {call:?}"
            );
            if call.kind == TableKind::CheckEach {
                assert_eq!(&states[..n], &want.states[..], "states differ at {call:?}");
            }
            assert_eq!(
                stats.reclaims, 0,
                "a table with few keys reclaimed: {stats:?}"
            );
            assert_eq!(
                stats.full_neighbourhoods, 0,
                "a table with few keys is full: {stats:?}"
            );
        } else {
            self.check_admission(call, commit, &decision, &stats);
        }
        self.last_stats = stats;
    }

    fn composite_of(&mut self, key: u8) -> &mut CompositeModel {
        let models = &self.models;
        self.composite
            .entry(key)
            .or_insert_with(|| CompositeModel::new(models.clone()))
    }

    fn check_admission(
        &mut self,
        call: &TableCall,
        commit: bool,
        d: &Decision,
        stats: &TableStats,
    ) {
        let evicted = stats.evictions > self.last_stats.evictions;
        let untracked = stats.full_allowed > self.last_stats.full_allowed;
        if self.monotone && commit && d.allowed && call.cost > 0 && !untracked {
            let fresh = self.models.clone();
            let models = self.admitted.entry(call.key).or_insert(fresh);
            for (index, model) in models.iter_mut().enumerate() {
                let verdict = model.check(call.now, call.cost).expect("cost fits");
                assert!(
                    verdict.allowed,
                    "over-admission: the table admitted {call:?}, but limit {index}'s model of \
                     the requests it admitted for this key says {verdict:?}"
                );
            }
        }
        if evicted {
            // Some other key lost its state: start its model over (more lenient).
            self.admitted.retain(|&k, _| k == call.key);
        }
    }

    fn check_stats(&self, s: &TableStats) {
        let last = &self.last_stats;
        assert_eq!(s.contended, 0, "contention without threads: {s:?}");
        assert_eq!(s.stale_claims, 0, "stale claims without crashes: {s:?}");
        assert!(s.occupied <= self.slots, "more occupied than slots: {s:?}");
        assert_eq!(
            s.new_keys,
            s.occupied + s.reclaims + s.evictions,
            "every new key took an empty, reclaimed or evicted slot: {s:?}"
        );
        assert_eq!(
            s.full_neighbourhoods,
            s.evictions + s.full_denied + s.full_allowed,
            "every full neighbourhood was handled by the policy: {s:?}"
        );
        match self.policy {
            FullPolicy::EvictClosestToRest => assert_eq!(s.full_denied + s.full_allowed, 0),
            FullPolicy::Deny => assert_eq!(s.evictions + s.full_allowed, 0),
            FullPolicy::Allow => assert_eq!(s.evictions + s.full_denied, 0),
        }
        for (now, before) in [
            (s.new_keys, last.new_keys),
            (s.reclaims, last.reclaims),
            (s.evictions, last.evictions),
            (s.full_neighbourhoods, last.full_neighbourhoods),
            (s.full_denied, last.full_denied),
            (s.full_allowed, last.full_allowed),
        ] {
            assert!(now >= before, "a counter went down: {last:?} -> {s:?}");
        }
    }
}

/// Runs one input.
pub fn run(case: &TableCase) {
    let Some((config, models)) = case.config() else {
        return;
    };
    let table = Table::new(config).expect("a valid config builds");
    assert_eq!(table.stats(), TableStats::default());
    drive(case, &table, models);
}

/// Runs `case`'s calls on `table` (built from `case`'s config, with its `models`),
/// each checked exactly against the models.
pub fn drive<M: TableMemory>(case: &TableCase, table: &Table<M>, models: Vec<AnyModel>) {
    let calls = case.calls();
    let mut distinct: Vec<u8> = calls.iter().map(|c| c.key).collect();
    distinct.sort_unstable();
    distinct.dedup();
    let mut driver = Driver::new(table.config(), models, distinct.len());
    for call in &calls {
        driver.step(table, call);
    }
}

fn kind_call(kind: TableKind, n: usize) -> (&'static str, String) {
    match kind {
        TableKind::Check => ("check", String::new()),
        TableKind::Peek => ("peek", String::new()),
        TableKind::CheckEach => ("check_each", format!(", &mut states[..{n}]")),
        TableKind::CheckKey => ("check_key", String::new()),
    }
}

impl fmt::Debug for TableCase {
    /// A reproducer: the table built and the calls made (with the model's expectations
    /// when the case has few enough keys to be checked exactly).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "// fuzz/table reproducer")?;
        let quotas = self.quotas();
        let specs: Vec<String> = quotas
            .iter()
            .map(|q| {
                format!(
                    "LimitSpec {{ algorithm: Algorithm::{:?}, quota: {}.unwrap() }}",
                    q.algorithm,
                    q.expr()
                )
            })
            .collect();
        writeln!(
            f,
            "let config = TableConfig::new({}, &[{}]); // model: {:?}",
            self.capacity,
            specs.join(", "),
            self.expected_config().err()
        )?;
        let Ok(expected) = self.expected_config() else {
            return Ok(());
        };
        writeln!(
            f,
            "let table = Table::new(config.unwrap().with_policy(FullPolicy::{:?}).with_seed({:?})).unwrap();",
            self.policy.policy(),
            self.seed
        )?;
        let n = expected.len();
        writeln!(f, "let mut states = [Decision::EMPTY; {n}];")?;
        let calls = self.calls();
        let mut distinct: Vec<u8> = calls.iter().map(|c| c.key).collect();
        distinct.sort_unstable();
        distinct.dedup();
        let exact = distinct.len() <= EXACT_KEYS;
        let mut composites: HashMap<u8, CompositeModel> = HashMap::new();
        for call in &calls {
            let (name, extra) = kind_call(call.kind, n);
            let key = format!("b{:?}", String::from_utf8_lossy(&key_bytes(call.key)));
            let key = if call.kind == TableKind::CheckKey {
                format!("&{key}[..]")
            } else {
                key
            };
            let args = format!("{key}, {}, {}{extra}", call.now, call.cost);
            if !exact {
                writeln!(f, "let _ = table.{name}({args});")?;
                continue;
            }
            let model = composites.entry(call.key).or_insert_with(|| {
                CompositeModel::new(expected.iter().map(|(_, m)| m.clone()).collect())
            });
            match model.run(call.now, call.cost, call.kind != TableKind::Peek) {
                Ok(o) => {
                    writeln!(f, "assert_eq!(table.{name}({args}), Ok({:?}));", o.decision)?;
                    if call.kind == TableKind::CheckEach {
                        writeln!(f, "assert_eq!(states, {:?});", o.states)?;
                    }
                }
                Err(errors) => writeln!(
                    f,
                    "assert!(table.{name}({args}).is_err()); // one of {errors:?}"
                )?,
            }
        }
        Ok(())
    }
}
