//! Policies: named rules that say which requests are limited, by which keys, how much —
//! and what the client sees. Enough to write down a published API rate-limit policy
//! without writing limiter logic; `examples/policies/` has ev.energy's, Uphold's and
//! Switch's public rate-limit documentation written as policies.
//!
//! # Model
//! - A [`Request`] carries a method, a path and any number of named [`Attribute`]s
//!   (`client_ip`, `user`, `app`, `auth`, `api_key`, `tenant`, a header's value…),
//!   borrowed from the caller.
//! - A [`Policy`] is a list of [`Rule`]s. A rule applies to a request when its [`Route`]
//!   (method and path template; none: every request) matches and every one of its
//!   [`Condition`]s holds: an attribute present, absent, equal to a value, in a set, or
//!   not in a set.
//! - A rule has one or more [`LimitRule`]s. A limit keys on an ordered list of attributes
//!   (`["app", "user"]`: one counter per pair; `[]`: one counter for all) and runs an
//!   [`Algorithm`] on a [`Quota`]. What a request lacking
//!   a key attribute gets is the limit's [`OnMissing`]: skip the limit, share one
//!   counter among such requests, or deny.
//! - A request is checked against **every** rule that applies: it is admitted only if
//!   every applicable limit admits it, and a denial consumes nothing anywhere (the
//!   composite protocol of [`crate::composite`] across all of them). A rule marked
//!   `unlimited` exempts every request it matches from all limits. A request no limit
//!   applies to is admitted, costs nothing and gets no rate-limit headers.
//! - A *shadow* limit (per limit, or every limit of a rule) counts as usual but never
//!   denies and adds no headers; the decision says whether it would have denied. The
//!   shadow limits a request meets form their own all-or-nothing set, charged only when
//!   the request is admitted and every one of them would admit; they never change what
//!   the real limits decide.
//!
//! # Which limit decides
//! On a denial, the denying limit with the latest `retry_after` decides; among equals,
//! the first in policy order (rules in order, each rule's limits in order). On an
//! admission, the limit with the fewest `remaining` decides (then the longest
//! `reset_after`; then the first in policy order). Shadow limits never decide; among
//! them, the same rule picks the one reported by [`PolicyDecision::shadow_denied`].
//!
//! # Worked example: ev.energy
//! ev.energy's public rate-limit documentation limits authorization-code clients to
//! 1000 requests per rolling hour per (OAuth app, user), and says client-credentials
//! clients share one limit per app. With an `auth` attribute the caller sets from the
//! token:
//!
//! ```toml
//! [[rule]]
//! name = "authorization-code"
//! when = { auth = "authorization_code" }
//! [[rule.limit]]
//! name = "per-app-user"
//! key = ["app", "user"]
//! on_missing = "deny"
//! algorithm = "sliding_window_strict"
//! limit = 1000
//! period = "1h"
//!
//! [[rule]]
//! name = "client-credentials"
//! when = { auth = "client_credentials" }
//! [[rule.limit]]
//! name = "per-app"
//! key = ["app"]
//! on_missing = "deny"
//! algorithm = "sliding_window_strict"
//! limit = 1000
//! period = "1h"
//! ```
//!
//! # Memory
//! Every table is allocated when the policy is built (`capacity` keys per table; one
//! table per rule and distinct (key, on-missing, shadow) combination, holding up to 4
//! limits); checks never allocate. [`Policy::memory_bytes`] reports the total.

mod check;
#[cfg(feature = "config")]
mod config;
mod decision;
mod metrics;
#[cfg(feature = "redis")]
mod redis;
mod request;
mod route;
mod spec;

#[cfg(feature = "redis")]
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::algorithm::Algorithm;
use crate::composite::MAX_LIMITS;
use crate::quota::Quota;
use crate::table::{LimitSpec, OwnedTable, Table, TableConfig, TableError, MAX_TABLE_LIMITS};

#[cfg(feature = "config")]
pub use config::{parse_duration, ConfigError};
pub use decision::{LimitRef, PolicyDecision};
pub use metrics::LimitMetrics;
pub use request::{Attribute, Request, MAX_ATTRIBUTES, MAX_KEY_ATTRIBUTES};
pub use route::{Route, RouteError, SplitPath, MAX_SEGMENTS};
pub use spec::{Body, Condition, LimitRule, OnMissing, PolicySpec, ResponseSpec, Rule, Test};

use metrics::LimitCounters;

/// Why a policy could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyError {
    /// Two rules share a name.
    DuplicateRule(String),
    /// Two limits of one rule share a name.
    DuplicateLimit {
        /// The rule.
        rule: String,
        /// The limit's name.
        limit: String,
    },
    /// A limited rule without limits, or an unlimited one with some.
    RuleLimits(String),
    /// A limit's quota is invalid for its algorithm, or a table cannot be made.
    Table {
        /// The rule.
        rule: String,
        /// Why.
        error: TableError,
    },
    /// One request could hit more than [`MAX_LIMITS`] limits (shadow limits included),
    /// or one rule puts more than 4 limits on one key.
    TooManyLimits,
    /// An attribute name is empty or uses a character other than ASCII letters, digits,
    /// `_`, `-`, `.` and `:`.
    AttributeName(String),
    /// The policy uses more than [`MAX_ATTRIBUTES`] distinct attribute names.
    TooManyAttributes,
    /// A limit keys on more than [`MAX_KEY_ATTRIBUTES`] attributes, or names one twice.
    Key {
        /// The rule.
        rule: String,
        /// The limit.
        limit: String,
    },
    /// A limit could not be set up on Redis.
    Redis {
        /// The rule.
        rule: String,
        /// The limit.
        limit: String,
        /// Why.
        message: String,
    },
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DuplicateRule(name) => write!(f, "rule name {name:?} is used twice"),
            Self::DuplicateLimit { rule, limit } => {
                write!(f, "rule {rule:?}: limit name {limit:?} is used twice")
            }
            Self::RuleLimits(name) => write!(
                f,
                "rule {name:?} must have limits, or be unlimited with none"
            ),
            Self::Table { rule, error } => write!(f, "rule {rule:?}: {error}"),
            Self::TooManyLimits => write!(
                f,
                "too many limits: at most {MAX_LIMITS} across all rules (shadow limits included), and {MAX_TABLE_LIMITS} per key in one rule"
            ),
            Self::AttributeName(name) => write!(
                f,
                "bad attribute name {name:?}: use ASCII letters, digits, '_', '-', '.' or ':'"
            ),
            Self::TooManyAttributes => write!(
                f,
                "a policy may use at most {MAX_ATTRIBUTES} distinct attribute names"
            ),
            Self::Key { rule, limit } => write!(
                f,
                "rule {rule:?}, limit {limit:?}: a key is at most {MAX_KEY_ATTRIBUTES} distinct attributes"
            ),
            Self::Redis {
                rule,
                limit,
                message,
            } => write!(f, "rule {rule:?}, limit {limit:?} on Redis: {message}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for PolicyError {}

/// A compiled condition: the attribute's index among the policy's names.
#[derive(Debug)]
struct CompiledCondition {
    attribute: usize,
    test: CompiledTest,
}

#[derive(Debug)]
enum CompiledTest {
    Present,
    Absent,
    Equals(Vec<u8>),
    /// Sorted, for a binary search.
    In(Vec<Vec<u8>>),
    /// Sorted.
    NotIn(Vec<Vec<u8>>),
}

impl CompiledCondition {
    fn holds(&self, resolved: &request::Resolved<'_>) -> bool {
        let value = resolved.get(self.attribute).copied().flatten();
        match (&self.test, value) {
            (CompiledTest::Present, v) => v.is_some(),
            (CompiledTest::Absent, v) => v.is_none(),
            (CompiledTest::Equals(want), Some(v)) => want.as_slice() == v,
            (CompiledTest::In(set), Some(v)) => {
                set.binary_search_by(|e| e.as_slice().cmp(v)).is_ok()
            }
            (CompiledTest::NotIn(set), Some(v)) => {
                set.binary_search_by(|e| e.as_slice().cmp(v)).is_err()
            }
            (CompiledTest::NotIn(_), None) => true,
            (CompiledTest::Equals(_) | CompiledTest::In(_), None) => false,
        }
    }
}

/// One limit, as decisions and metrics name it.
#[derive(Debug)]
struct LimitMeta {
    /// Index of its rule.
    rule: usize,
    name: String,
    key: Vec<String>,
    algorithm: Algorithm,
    quota: Quota,
    shadow: bool,
}

impl LimitMeta {
    /// What decisions report as the limit: the burst for GCRA, the limit otherwise.
    fn capacity(&self) -> u64 {
        match self.algorithm {
            Algorithm::Gcra => self.quota.burst(),
            _ => self.quota.limit(),
        }
    }
}

/// A rule's limits sharing one key, missing-attribute handling and shadow flag: one
/// table, a composite per key.
#[derive(Debug)]
struct Group {
    /// The key's attributes, as indices among the policy's names.
    key: Vec<usize>,
    on_missing: OnMissing,
    shadow: bool,
    table: OwnedTable,
    /// The limits' ids (indices into `Policy::limits`), in table order.
    ids: Vec<usize>,
    /// The same limits on Redis, when the policy runs there (then the table is unused,
    /// and kept minimal).
    #[cfg(feature = "redis")]
    redis: Vec<crate::redis_backend::RedisLimit>,
}

#[derive(Debug)]
struct CompiledRule {
    route: Option<Route>,
    conditions: Vec<CompiledCondition>,
    unlimited: bool,
    groups: Vec<Group>,
}

/// A built policy: rules with their tables, ready to check requests.
#[derive(Debug)]
pub struct Policy {
    rules: Vec<CompiledRule>,
    /// The rules as written.
    spec: Vec<Rule>,
    limits: Vec<LimitMeta>,
    counters: Vec<LimitCounters>,
    /// Every attribute name the policy uses; conditions and keys refer to them by index.
    attributes: Vec<String>,
    response: ResponseSpec,
    /// Where the state lives when not in this process's tables.
    #[cfg(feature = "redis")]
    redis: Option<crate::redis_backend::RedisBackend>,
}

fn valid_attribute_name(name: &str) -> bool {
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
            Test::Present => CompiledTest::Present,
            Test::Absent => CompiledTest::Absent,
            Test::Equals(value) => CompiledTest::Equals(value.clone()),
            Test::In(values) => CompiledTest::In(sorted(values)),
            Test::NotIn(values) => CompiledTest::NotIn(sorted(values)),
        },
    })
}

impl Policy {
    /// Builds every rule's tables.
    ///
    /// # Errors
    /// A [`PolicyError`] naming the rule at fault.
    pub fn new(spec: PolicySpec) -> Result<Self, PolicyError> {
        Self::build(spec, false)
    }

    /// Builds the policy with every limit's state on Redis (feature `redis`): the same
    /// rules, decisions, headers and bodies, shared by every host using that Redis. Each
    /// limit is named `rule/limit` on Redis. Checks then allocate and do one round trip
    /// per set of limits met (real, shadow), plus one to report the others' states when
    /// a request lacks a key attribute of an `on_missing = "deny"` limit; when Redis
    /// cannot decide, the backend's failure
    /// mode answers and [`PolicyDecision::fault`] says why. The policy itself (rules,
    /// attributes, counters) stays in this process.
    ///
    /// # Errors
    /// As for [`Policy::new`], and [`PolicyError::Redis`].
    #[cfg(feature = "redis")]
    pub fn with_redis(
        spec: PolicySpec,
        backend: crate::redis_backend::RedisBackend,
    ) -> Result<Self, PolicyError> {
        let mut policy = Self::build(spec, true)?;
        for rule in &mut policy.rules {
            for group in &mut rule.groups {
                for &id in &group.ids {
                    let Some(meta) = policy.limits.get(id) else {
                        continue;
                    };
                    let rule_name = policy.spec.get(meta.rule).map_or("", |r| r.name.as_str());
                    let redis_limit = backend
                        .limit(
                            &format!("{rule_name}/{}", meta.name),
                            meta.algorithm,
                            meta.quota,
                        )
                        .map_err(|e| PolicyError::Redis {
                            rule: String::from(rule_name),
                            limit: meta.name.clone(),
                            message: alloc::string::ToString::to_string(&e),
                        })?;
                    group.redis.push(redis_limit);
                }
            }
        }
        policy.redis = Some(backend);
        Ok(policy)
    }

    fn build(spec: PolicySpec, minimal_tables: bool) -> Result<Self, PolicyError> {
        let mut rules: Vec<CompiledRule> = Vec::new();
        let mut limits: Vec<LimitMeta> = Vec::new();
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
                if limits.len() >= MAX_LIMITS {
                    return Err(PolicyError::TooManyLimits);
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
                match pending.iter_mut().find(|(k, on_missing, shadow, _)| {
                    *k == key && *on_missing == limit.on_missing && *shadow == limit.shadow
                }) {
                    Some((.., ids)) => ids.push(id),
                    None => pending.push((key, limit.on_missing, limit.shadow, alloc::vec![id])),
                }
            }
            let mut groups: Vec<Group> = Vec::new();
            for (key, on_missing, shadow, ids) in pending {
                let specs: Vec<LimitSpec> = ids
                    .iter()
                    .filter_map(|&id| limits.get(id))
                    .map(|meta| LimitSpec {
                        algorithm: meta.algorithm,
                        quota: meta.quota,
                    })
                    .collect();
                let table_error = |error| PolicyError::Table {
                    rule: rule.name.clone(),
                    error,
                };
                let capacity = if key.is_empty() || minimal_tables {
                    8
                } else {
                    spec.capacity
                };
                let config = TableConfig::new(capacity, &specs)
                    .map_err(|e| match e {
                        TableError::TooManyLimits => PolicyError::TooManyLimits,
                        e => table_error(e),
                    })?
                    .with_policy(spec.when_full);
                groups.push(Group {
                    key,
                    on_missing,
                    shadow,
                    table: Table::new(config).map_err(table_error)?,
                    ids,
                    #[cfg(feature = "redis")]
                    redis: Vec::new(),
                });
            }
            rules.push(CompiledRule {
                route: rule.route.clone(),
                conditions,
                unlimited: rule.unlimited,
                groups,
            });
        }
        let counters = limits.iter().map(|_| LimitCounters::default()).collect();
        Ok(Self {
            rules,
            spec: spec.rules,
            limits,
            counters,
            attributes,
            response: spec.response,
            #[cfg(feature = "redis")]
            redis: None,
        })
    }

    /// How this policy answers.
    #[must_use]
    pub fn response(&self) -> &ResponseSpec {
        &self.response
    }

    /// The rules, in order.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.spec.iter()
    }

    /// Every attribute name the policy reads (conditions and keys), in first-use order.
    pub fn attribute_names(&self) -> impl Iterator<Item = &str> {
        self.attributes.iter().map(String::as_str)
    }

    /// Every limit with its counters, in policy order.
    pub fn metrics(&self) -> impl Iterator<Item = (LimitRef<'_>, LimitMetrics)> {
        (0..self.limits.len()).filter_map(|id| {
            Some((
                self.limit_ref(id)?,
                self.counters.get(id).map(LimitCounters::snapshot)?,
            ))
        })
    }

    /// Bytes of table memory the policy holds (its keyed tables; rules, names and
    /// conditions are small beside them).
    #[must_use]
    pub fn memory_bytes(&self) -> usize {
        self.rules
            .iter()
            .flat_map(|r| &r.groups)
            .map(|g| g.table.memory_bytes())
            .sum()
    }

    /// The limit with id `id` (its index in policy order).
    fn limit_ref(&self, id: usize) -> Option<LimitRef<'_>> {
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
}
