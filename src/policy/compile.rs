//! Compiling a [`PolicySpec`] into one checkable version: attribute names interned,
//! conditions sorted for binary search, a rule's limits grouped into tables by key — and,
//! on a reload, the tables and counters of unchanged limits handed over.
//!
//! # Orderings
//! Each compiled policy takes a serial from one process-wide counter: `Relaxed` suffices,
//! as only its uniqueness matters and nothing is published through it.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
// A plain `core` atomic even under loom: a counter for unique numbers, in no protocol.
use core::sync::atomic::{AtomicU64, Ordering};

use super::lone::LoneLimit;
use super::metrics::LimitCounters;
use super::offenders::Offenders;
use super::overrides::{OverrideSet, Target};
use super::request::name_key;
use super::{
    request, Condition, LimitRef, OnMissing, Override, PolicyError, PolicySpec, ResponseSpec,
    Route, Rule, Test, MAX_ATTRIBUTES, MAX_KEY_ATTRIBUTES,
};
use crate::algorithm::Algorithm;
use crate::composite::MAX_LIMITS;
use crate::quota::Quota;
use crate::table::{FullPolicy, LimitSpec, OwnedTable, Table, TableConfig, TableError};

/// A compiled condition: the attribute's index among the policy's names.
#[derive(Debug)]
pub(super) struct CompiledCondition {
    pub(super) attribute: usize,
    /// The condition's test, its `In` and `NotIn` lists sorted for a binary search.
    pub(super) test: Test,
}

impl CompiledCondition {
    pub(super) fn holds(&self, resolved: &request::Resolved<'_>) -> bool {
        let value = resolved.get(self.attribute).copied().flatten();
        match (&self.test, value) {
            (Test::Present, v) => v.is_some(),
            (Test::Absent, v) => v.is_none(),
            (Test::Equals(want), Some(v)) => want.as_slice() == v,
            (Test::In(set), Some(v)) => set.binary_search_by(|e| e.as_slice().cmp(v)).is_ok(),
            (Test::NotIn(set), Some(v)) => set.binary_search_by(|e| e.as_slice().cmp(v)).is_err(),
            (Test::NotIn(_), None) => true,
            (Test::Equals(_) | Test::In(_), None) => false,
        }
    }
}

/// One limit, as decisions and metrics name it.
#[derive(Debug)]
pub(super) struct LimitMeta {
    /// Index of its rule.
    pub(super) rule: usize,
    pub(super) name: String,
    pub(super) key: Vec<String>,
    pub(super) algorithm: Algorithm,
    pub(super) quota: Quota,
    pub(super) shadow: bool,
}

impl LimitMeta {
    /// What decisions report as the limit: the burst for GCRA, the limit otherwise.
    pub(super) fn capacity(&self) -> u64 {
        match self.algorithm {
            Algorithm::Gcra => self.quota.burst(),
            _ => self.quota.limit(),
        }
    }
}

/// A rule's limits sharing one key, missing-attribute handling and shadow flag: one
/// table, a composite per key.
#[derive(Debug)]
pub(super) struct Group {
    /// The key's attributes, as indices among the policy's names.
    pub(super) key: Vec<usize>,
    pub(super) on_missing: OnMissing,
    pub(super) shadow: bool,
    pub(super) table: Arc<OwnedTable>,
    /// The limits' ids (indices into `Policy::limits`), in table order.
    pub(super) ids: Vec<usize>,
    /// The same limits on Redis, when the policy runs there (then the table is unused,
    /// and kept minimal).
    #[cfg(feature = "redis")]
    pub(super) redis: Vec<crate::redis_backend::RedisLimit>,
}

#[derive(Debug)]
pub(super) struct CompiledRule {
    pub(super) route: Option<Route>,
    pub(super) conditions: Vec<CompiledCondition>,
    pub(super) unlimited: bool,
    pub(super) groups: Vec<Group>,
}

/// One version of a policy: rules with their tables, ready to check requests. A reload
/// builds the next version, handing over the tables and counters of limits that did not
/// change.
#[derive(Debug)]
pub(super) struct Compiled {
    pub(super) rules: Vec<CompiledRule>,
    /// The rules as written.
    pub(super) spec: Vec<Rule>,
    pub(super) limits: Vec<LimitMeta>,
    pub(super) counters: Vec<Arc<LimitCounters>>,
    /// Every attribute name the policy uses; conditions and keys refer to them by index.
    pub(super) attributes: Vec<String>,
    /// [`name_key`] of each of `attributes`, in the same order.
    pub(super) attribute_keys: Vec<u64>,
    pub(super) response: ResponseSpec,
    /// Keys per table and what a full neighbourhood does: a table is handed over only
    /// to a version that builds it the same way.
    capacity: u64,
    when_full: FullPolicy,
    /// Where the state lives when not in this process's tables.
    #[cfg(feature = "redis")]
    pub(super) redis: Option<crate::redis_backend::RedisBackend>,
    /// The keys this version denied repeatedly.
    pub(super) offenders: Offenders,
    /// The policy's only limit, when it is one limit for every request (module `lone`).
    pub(super) lone: Option<LoneLimit>,
}

pub(super) fn valid_attribute_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
}

/// The index of `name` among `names`, added if new.
fn intern(names: &mut Vec<String>, name: &str) -> Result<usize, PolicyError> {
    if let Some(index) = names.iter().position(|n| n == name) {
        return Ok(index);
    }
    if !valid_attribute_name(name) {
        return Err(PolicyError::AttributeName(String::from(name)));
    }
    if names.len() >= MAX_ATTRIBUTES {
        return Err(PolicyError::TooManyAttributes);
    }
    names.push(String::from(name));
    Ok(names.len() - 1)
}

fn compile_condition(
    condition: &Condition,
    names: &mut Vec<String>,
) -> Result<CompiledCondition, PolicyError> {
    let sorted = |values: &[Vec<u8>]| {
        let mut values = values.to_vec();
        values.sort();
        values.dedup();
        values
    };
    Ok(CompiledCondition {
        attribute: intern(names, &condition.attribute)?,
        test: match &condition.test {
            Test::In(values) => Test::In(sorted(values)),
            Test::NotIn(values) => Test::NotIn(sorted(values)),
            other => other.clone(),
        },
    })
}

/// What makes a limit the same limit across versions: its rule, name, key, missing-key
/// handling, algorithm, quota and shadow flag.
fn same_limit(
    a: &LimitMeta,
    a_rule: &str,
    a_missing: OnMissing,
    b: &LimitMeta,
    b_rule: &str,
    b_missing: OnMissing,
) -> bool {
    a_rule == b_rule
        && a.name == b.name
        && a.key == b.key
        && a_missing == b_missing
        && a.algorithm == b.algorithm
        && a.quota == b.quota
        && a.shadow == b.shadow
}

impl Compiled {
    /// Builds every rule's tables; with `previous`, takes over the table of every group
    /// whose limits are all unchanged (same identities, in the same order, built with the
    /// same capacity and full-neighbourhood policy) and the counters of every unchanged
    /// limit.
    pub(super) fn build(
        spec: PolicySpec,
        #[cfg(feature = "redis")] redis: Option<crate::redis_backend::RedisBackend>,
        previous: Option<&Self>,
    ) -> Result<Version, PolicyError> {
        #[cfg(feature = "redis")]
        let minimal_tables = redis.is_some();
        #[cfg(not(feature = "redis"))]
        let minimal_tables = false;
        let mut rules: Vec<CompiledRule> = Vec::new();
        let mut limits: Vec<LimitMeta> = Vec::new();
        let mut missing: Vec<OnMissing> = Vec::new();
        let mut attributes: Vec<String> = Vec::new();
        for (rule_index, rule) in spec.rules.iter().enumerate() {
            if spec.rules[..rule_index].iter().any(|r| r.name == rule.name) {
                return Err(PolicyError::DuplicateRule(rule.name.clone()));
            }
            if rule.unlimited != rule.limits.is_empty() {
                return Err(PolicyError::RuleLimits(rule.name.clone()));
            }
            let conditions = rule
                .conditions
                .iter()
                .map(|c| compile_condition(c, &mut attributes))
                .collect::<Result<Vec<_>, _>>()?;
            // A rule's limits sharing key, missing-attribute handling and shadow flag
            // share one table: (key, on_missing, shadow, limit ids).
            let mut pending: Vec<(Vec<usize>, OnMissing, bool, Vec<usize>)> = Vec::new();
            for (limit_index, limit) in rule.limits.iter().enumerate() {
                if rule.limits[..limit_index]
                    .iter()
                    .any(|l| l.name == limit.name)
                {
                    return Err(PolicyError::DuplicateLimit {
                        rule: rule.name.clone(),
                        limit: limit.name.clone(),
                    });
                }
                let key_error = || PolicyError::Key {
                    rule: rule.name.clone(),
                    limit: limit.name.clone(),
                };
                if limit.key.len() > MAX_KEY_ATTRIBUTES {
                    return Err(key_error());
                }
                let key = limit
                    .key
                    .iter()
                    .map(|name| intern(&mut attributes, name))
                    .collect::<Result<Vec<usize>, _>>()?;
                if key.iter().enumerate().any(|(i, a)| key[..i].contains(a)) {
                    return Err(key_error());
                }
                let id = limits.len();
                limits.push(LimitMeta {
                    rule: rule_index,
                    name: limit.name.clone(),
                    key: limit.key.clone(),
                    algorithm: limit.algorithm,
                    quota: limit.quota,
                    shadow: limit.shadow,
                });
                missing.push(limit.on_missing);
                match pending.iter_mut().find(|(k, on_missing, shadow, _)| {
                    *k == key && *on_missing == limit.on_missing && *shadow == limit.shadow
                }) {
                    Some((.., ids)) => ids.push(id),
                    None => pending.push((key, limit.on_missing, limit.shadow, alloc::vec![id])),
                }
            }
            let mut groups: Vec<Group> = Vec::new();
            for (key, on_missing, shadow, ids) in pending {
                let capacity = if key.is_empty() || minimal_tables {
                    8
                } else {
                    spec.capacity
                };
                let metas: Vec<&LimitMeta> = ids.iter().filter_map(|&id| limits.get(id)).collect();
                let kept = previous
                    .filter(|p| p.capacity == spec.capacity && p.when_full == spec.when_full)
                    .and_then(|p| p.group_like(&rule.name, on_missing, &metas));
                let table = match kept {
                    Some(table) => table,
                    None => {
                        let specs: Vec<LimitSpec> = metas
                            .iter()
                            .map(|meta| LimitSpec {
                                algorithm: meta.algorithm,
                                quota: meta.quota,
                            })
                            .collect();
                        let table_error = |error| PolicyError::Table {
                            rule: rule.name.clone(),
                            error,
                        };
                        let config = TableConfig::new(capacity, &specs)
                            .map_err(|e| match e {
                                TableError::TooManyLimits => PolicyError::TooManyLimits,
                                e => table_error(e),
                            })?
                            .with_policy(spec.when_full)
                            // Room for any override's count in the same state word.
                            .with_wide_counters()
                            .map_err(table_error)?;
                        Arc::new(Table::new(config).map_err(table_error)?)
                    }
                };
                #[cfg(feature = "redis")]
                let redis_limits = match &redis {
                    Some(backend) => redis_limits(backend, &rule.name, &metas)?,
                    None => Vec::new(),
                };
                groups.push(Group {
                    key,
                    on_missing,
                    shadow,
                    table,
                    ids,
                    #[cfg(feature = "redis")]
                    redis: redis_limits,
                });
            }
            rules.push(CompiledRule {
                route: rule.route.clone(),
                conditions,
                unlimited: rule.unlimited,
                groups,
            });
        }
        if meets_too_many(&spec.rules) {
            return Err(PolicyError::TooManyLimits);
        }
        // What makes a limit the same across versions (`same_limit`), as one word: the
        // offender report follows a limit across reloads by it.
        let identities = limits
            .iter()
            .zip(&missing)
            .map(|(meta, &on_missing)| {
                let rule = spec.rules.get(meta.rule).map_or("", |r| r.name.as_str());
                Offenders::identity(&(
                    rule,
                    &meta.name,
                    &meta.key,
                    on_missing,
                    meta.algorithm,
                    meta.quota,
                    meta.shadow,
                ))
            })
            .collect();
        let counters: Vec<Arc<LimitCounters>> = limits
            .iter()
            .zip(&missing)
            .map(|(meta, &on_missing)| {
                let rule = spec.rules.get(meta.rule).map_or("", |r| r.name.as_str());
                previous
                    .and_then(|p| p.counters_like(meta, rule, on_missing))
                    .unwrap_or_default()
            })
            .collect();
        let lone = LoneLimit::of(&rules, &attributes, &counters);
        let compiled = Self {
            lone,
            rules,
            spec: spec.rules,
            limits,
            counters,
            attribute_keys: attributes.iter().map(|a| name_key(a.as_bytes())).collect(),
            attributes,
            response: spec.response,
            capacity: spec.capacity,
            when_full: spec.when_full,
            #[cfg(feature = "redis")]
            redis,
            offenders: Offenders::new(identities),
        };
        if let Some(previous) = previous {
            compiled.offenders.carry_from(&previous.offenders);
        }
        let mut overrides = OverrideSet::new(compiled.limits.len());
        let written = compiled.spec.iter().flat_map(|r| &r.limits).enumerate();
        for (id, limit) in written {
            for o in &limit.overrides {
                let target = compiled.target(id).ok_or(PolicyError::TooManyLimits)?;
                overrides.set(id, &target, &o.attribute, &o.value, o.quota)?;
            }
        }
        Ok(Version::new(
            Arc::new(compiled),
            Arc::new(overrides),
            next_serial(),
        ))
    }

    /// The limit with id `id`, as its overrides are built against.
    pub(super) fn target(&self, id: usize) -> Option<Target<'_>> {
        let meta = self.limits.get(id)?;
        let rule = self.spec.get(meta.rule)?;
        let group = self
            .rules
            .get(meta.rule)?
            .groups
            .iter()
            .find(|g| g.ids.contains(&id))?;
        let index = group.ids.iter().position(|&i| i == id)?;
        Some(Target {
            rule: &rule.name,
            limit: &meta.name,
            algorithm: meta.algorithm,
            period: meta.quota.period(),
            table: &group.table,
            index,
            names: &self.attributes,
            #[cfg(feature = "redis")]
            redis: group.redis.get(index),
        })
    }

    /// The limit named `limit` of rule `rule`.
    pub(super) fn limit_id(&self, rule: &str, limit: &str) -> Option<usize> {
        self.limits.iter().position(|meta| {
            meta.name == limit && self.spec.get(meta.rule).is_some_and(|r| r.name == rule)
        })
    }

    /// The limit `id`'s `on_missing`.
    fn on_missing(&self, id: usize) -> Option<OnMissing> {
        self.rules
            .iter()
            .flat_map(|r| &r.groups)
            .find(|g| g.ids.contains(&id))
            .map(|g| g.on_missing)
    }

    /// The table of this version's group made of exactly `metas` (in order) in rule
    /// `rule`, if there is one.
    fn group_like(
        &self,
        rule: &str,
        on_missing: OnMissing,
        metas: &[&LimitMeta],
    ) -> Option<Arc<OwnedTable>> {
        let index = self.spec.iter().position(|r| r.name == rule)?;
        let compiled = self.rules.get(index)?;
        compiled
            .groups
            .iter()
            .find(|g| {
                g.on_missing == on_missing
                    && g.ids.len() == metas.len()
                    && g.ids.iter().zip(metas).all(|(&id, new)| {
                        self.limits.get(id).is_some_and(|old| {
                            same_limit(old, rule, on_missing, new, rule, on_missing)
                        })
                    })
            })
            .map(|g| Arc::clone(&g.table))
    }

    /// The counters of this version's limit identical to `meta`, if there is one.
    fn counters_like(
        &self,
        meta: &LimitMeta,
        rule: &str,
        on_missing: OnMissing,
    ) -> Option<Arc<LimitCounters>> {
        let id = self.limits.iter().enumerate().position(|(id, old)| {
            let old_rule = self.spec.get(old.rule).map_or("", |r| r.name.as_str());
            self.on_missing(id)
                .is_some_and(|m| same_limit(old, old_rule, m, meta, rule, on_missing))
        })?;
        self.counters.get(id).cloned()
    }

    /// The limit with id `id` (its index in policy order).
    pub(super) fn limit_ref(&self, id: usize) -> Option<LimitRef<'_>> {
        let meta = self.limits.get(id)?;
        let rule = self.spec.get(meta.rule)?;
        Some(LimitRef {
            id,
            rule: &rule.name,
            description: rule.description.as_deref().unwrap_or(&rule.name),
            name: &meta.name,
            key: &meta.key,
            period: meta.quota.period(),
            shadow: meta.shadow,
        })
    }

    /// Bytes of table memory this version holds.
    fn table_bytes(&self) -> usize {
        self.rules
            .iter()
            .flat_map(|r| &r.groups)
            .map(|g| g.table.memory_bytes())
            .sum::<usize>()
    }
}

/// What a check runs on: a compiled policy and the override set in force for it, behind
/// one pointer so that a check protects both with a single lock-free load. An override
/// change publishes a new `Version` sharing the compiled policy; a reload, a new
/// compiled policy with its file's overrides.
#[derive(Debug)]
pub(super) struct Version {
    pub(super) compiled: Arc<Compiled>,
    /// The per-client overrides in force: the file's, then changed through the API.
    pub(super) overrides: Arc<OverrideSet>,
    /// The compiled policy's serial (`PolicyDecision::policy_serial`): kept here, next
    /// to the pointers a check reads anyway, rather than on a line of the compiled
    /// policy's own.
    pub(super) serial: u64,
    /// Whether no limit has an override in force: the one-limit check reads it here
    /// instead of on the override set's own line.
    pub(super) no_overrides: bool,
}

/// A serial no compiled policy of this process had before.
fn next_serial() -> u64 {
    static SERIALS: AtomicU64 = AtomicU64::new(0);
    // Relaxed: module Orderings.
    SERIALS.fetch_add(1, Ordering::Relaxed)
}

impl Version {
    /// `compiled` with `overrides` in force, `compiled` having serial `serial`.
    pub(super) fn new(compiled: Arc<Compiled>, overrides: Arc<OverrideSet>, serial: u64) -> Self {
        Self {
            no_overrides: overrides.is_empty(),
            compiled,
            overrides,
            serial,
        }
    }

    /// Every override in force, as `(rule, limit, override)`.
    pub(super) fn named_overrides(&self) -> Vec<(String, String, Override)> {
        self.overrides
            .list()
            .filter_map(|(id, o)| {
                let limit = self.limit_ref(id)?;
                Some((String::from(limit.rule), String::from(limit.name), o))
            })
            .collect()
    }
}

impl core::ops::Deref for Version {
    type Target = Compiled;

    fn deref(&self) -> &Compiled {
        &self.compiled
    }
}

impl Version {
    /// Bytes of table memory this version holds, and its overrides'.
    pub(super) fn memory_bytes(&self) -> usize {
        self.compiled.table_bytes() + self.overrides.memory_bytes()
    }
}

/// Whether no request can pass both tests on one attribute.
fn exclusive(a: &Test, b: &Test) -> bool {
    let has = |set: &[Vec<u8>], v: &Vec<u8>| set.contains(v);
    match (a, b) {
        (Test::Absent, t) | (t, Test::Absent) => t.implies_present(),
        (Test::Equals(x), Test::Equals(y)) => x != y,
        (Test::Equals(x), Test::In(set)) | (Test::In(set), Test::Equals(x)) => !has(set, x),
        (Test::Equals(x), Test::NotIn(set)) | (Test::NotIn(set), Test::Equals(x)) => has(set, x),
        (Test::In(s), Test::In(t)) => !s.iter().any(|v| has(t, v)),
        (Test::In(s), Test::NotIn(t)) | (Test::NotIn(t), Test::In(s)) => {
            s.iter().all(|v| has(t, v))
        }
        _ => false,
    }
}

/// Whether some request could meet both rules: conservative, `false` only when their
/// routes or their conditions on one attribute tell them apart.
fn may_both_apply(a: &Rule, b: &Rule) -> bool {
    if let (Some(x), Some(y)) = (&a.route, &b.route) {
        if !x.may_overlap(y) {
            return false;
        }
    }
    !a.conditions.iter().any(|c| {
        b.conditions
            .iter()
            .any(|d| c.attribute == d.attribute && exclusive(&c.test, &d.test))
    })
}

/// Whether one request could meet more than [`MAX_LIMITS`] limits (shadow ones
/// included): a search for rules that could all apply together whose limits add up to
/// more. The search stops at the first such set, prunes every branch that cannot get
/// there, and treats a policy too tangled to search within its budget as too big.
fn meets_too_many(rules: &[Rule]) -> bool {
    let weights: Vec<usize> = rules.iter().map(|r| r.limits.len()).collect();
    if weights.iter().sum::<usize>() <= MAX_LIMITS {
        return false;
    }
    let compatible: Vec<Vec<bool>> = rules
        .iter()
        .map(|a| rules.iter().map(|b| may_both_apply(a, b)).collect())
        .collect();
    let mut budget = 1_000_000u32;
    let all: Vec<usize> = (0..rules.len()).filter(|&i| weights[i] > 0).collect();
    search(&all, 0, &weights, &compatible, &mut budget).unwrap_or(true)
}

/// Whether some clique within `candidates`, added to `weight`, exceeds [`MAX_LIMITS`];
/// `None` when the budget ran out.
fn search(
    candidates: &[usize],
    weight: usize,
    weights: &[usize],
    compatible: &[Vec<bool>],
    budget: &mut u32,
) -> Option<bool> {
    if weight > MAX_LIMITS {
        return Some(true);
    }
    *budget = budget.checked_sub(1)?;
    let mut rest: usize = candidates.iter().map(|&v| weights[v]).sum();
    for (index, &v) in candidates.iter().enumerate() {
        if weight + rest <= MAX_LIMITS {
            return Some(false);
        }
        rest -= weights[v];
        let next: Vec<usize> = candidates[index + 1..]
            .iter()
            .copied()
            .filter(|&u| compatible[v][u])
            .collect();
        if search(&next, weight + weights[v], weights, compatible, budget)? {
            return Some(true);
        }
    }
    Some(false)
}

/// A group's limits on Redis, each named `rule/limit`.
#[cfg(feature = "redis")]
fn redis_limits(
    backend: &crate::redis_backend::RedisBackend,
    rule: &str,
    metas: &[&LimitMeta],
) -> Result<Vec<crate::redis_backend::RedisLimit>, PolicyError> {
    metas
        .iter()
        .map(|meta| {
            backend
                .limit(
                    &alloc::format!("{rule}/{}", meta.name),
                    meta.algorithm,
                    meta.quota,
                )
                .map_err(|e| PolicyError::Redis {
                    rule: String::from(rule),
                    limit: meta.name.clone(),
                    message: alloc::string::ToString::to_string(&e),
                })
        })
        .collect()
}
