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
//!   [`Algorithm`](crate::Algorithm) on a [`Quota`](crate::Quota). What a request lacking
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
//! - A limit's *overrides* give chosen clients another quota: the requests whose
//!   attribute has a given value (app `acme` → 5000 per hour, client `c-42` → unlimited,
//!   tier `gold` → its quota). They load from TOML and change at run time
//!   ([`Policy::set_override`], [`Policy::remove_override`]) without disturbing any other
//!   key; an override keeps its limit's algorithm and period, runs on the limit's own
//!   slots (no table per quota), and a key keeps what it consumed when its quota changes
//!   (windows: the count; GCRA: the time owed). Lookups never lock or allocate.
//! - [`Policy::offenders`] reports the keys that keep sending while denied (Switch's
//!   public documentation warns such integrations may be deactivated), in constant
//!   memory.
//! - A policy is replaced live by [`Policy::reload`] (or `reload_toml_str` /
//!   `reload_toml_file`): limits whose identity did not change keep their tables, state
//!   and counters; a bad new policy is rejected and the old one stays in force.
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
//! # Memory and threads
//! Every table is allocated when the policy is built (`capacity` keys per table; one
//! table per rule and distinct (key, on-missing, shadow) combination, holding up to 4
//! limits); checks never allocate. Overrides cost their map entries, not tables.
//! [`Policy::memory_bytes`] reports the total. The first check a thread makes registers
//! it, once in its life, with the lock-free pointer to the version in force (one small
//! allocation); no check after that allocates.

mod check;
#[cfg(feature = "redis-tokio")]
mod check_async;
mod compile;
#[cfg(feature = "config")]
mod config;
mod decision;
mod lone;
mod metrics;
mod offenders;
mod overrides;
#[cfg(feature = "redis")]
mod redis;
mod request;
mod route;
mod spec;
mod view;

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use std::sync::Mutex;

use arc_swap::ArcSwap;

use crate::composite::MAX_LIMITS;
use crate::table::{TableError, MAX_TABLE_LIMITS};

#[cfg(feature = "config")]
pub use config::{parse_duration, ConfigError};
pub use decision::{LimitRef, PolicyDecision};
pub use view::{LimitInfo, PolicyView};

pub use metrics::LimitMetrics;
pub use offenders::{Offender, OffenderStats, OFFENDERS, OFFENDER_KEY_BYTES};
pub use request::{Attribute, Request, MAX_ATTRIBUTES, MAX_KEY_ATTRIBUTES};
pub use route::{Route, RouteError, SplitPath, MAX_SEGMENTS};
pub use spec::{
    Body, Condition, LimitRule, OnMissing, Override, OverrideQuota, PolicySpec, ResponseSpec, Rule,
    Test,
};

use compile::{Compiled, Version};

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
    /// An override is invalid for its limit (its quota, or a burst on a limit that is not
    /// GCRA).
    Override {
        /// The rule.
        rule: String,
        /// The limit.
        limit: String,
        /// Why.
        message: String,
    },
    /// No limit of that name in that rule.
    UnknownLimit {
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
            Self::Override {
                rule,
                limit,
                message,
            } => write!(f, "rule {rule:?}, limit {limit:?}: override: {message}"),
            Self::UnknownLimit { rule, limit } => {
                write!(f, "no limit {limit:?} in rule {rule:?}")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for PolicyError {}

/// A policy, ready to check requests from any number of threads, and replaceable while
/// they do ([`reload`](Self::reload)).
#[derive(Debug)]
pub struct Policy {
    /// The version in force. Checks load it lock-free; a reload swaps in the next.
    current: ArcSwap<Version>,
    /// Serialises writers (reloads), so each builds on the version it replaces.
    writers: Mutex<()>,
}

/// What a reload kept, started afresh and dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// Limits whose table, and so every key's state, was handed over: unchanged limits
    /// whose table-mates are unchanged too, built with the same `capacity` and
    /// `when_full`. (On Redis an unchanged limit's state stays under its keys in any
    /// case.)
    pub kept: usize,
    /// The other limits of the new version: new, changed, or unchanged but sharing a
    /// table with a changed one (or the table settings changed). They start with no
    /// state; an unchanged one keeps its counters.
    pub fresh: usize,
    /// Limits of the old version the new one has no identical limit for (removed, or
    /// changed: a changed limit is dropped and its new form is fresh).
    pub dropped: usize,
    /// Overrides in force before the reload that the new version does not have: added
    /// through the API (a reload replaces the override set with the file's), or removed
    /// from the file.
    pub overrides_dropped: usize,
}

fn unknown(rule: &str, limit: &str) -> PolicyError {
    PolicyError::UnknownLimit {
        rule: String::from(rule),
        limit: String::from(limit),
    }
}

impl Policy {
    /// Builds every rule's tables.
    ///
    /// # Errors
    /// A [`PolicyError`] naming the rule at fault.
    pub fn new(spec: PolicySpec) -> Result<Self, PolicyError> {
        Ok(Self::from_compiled(Compiled::build(
            spec,
            #[cfg(feature = "redis")]
            None,
            None,
        )?))
    }

    /// Builds the policy with every limit's state on Redis (feature `redis`): the same
    /// rules, decisions, headers and bodies, shared by every host using that Redis. Each
    /// limit is named `rule/limit` on Redis. Checks then allocate and do one round trip
    /// per set of limits met (real, shadow), plus one to report the others' states when
    /// a request lacks a key attribute of an `on_missing = "deny"` limit; when Redis
    /// cannot decide, the backend's failure mode answers and [`PolicyDecision::fault`]
    /// says why. The policy itself (rules, attributes, counters) stays in this process;
    /// a reload keeps using the same backend, and the limits' state stays on Redis.
    ///
    /// # Errors
    /// As for [`Policy::new`], and [`PolicyError::Redis`].
    #[cfg(feature = "redis")]
    pub fn with_redis(
        spec: PolicySpec,
        backend: crate::redis_backend::RedisBackend,
    ) -> Result<Self, PolicyError> {
        Ok(Self::from_compiled(Compiled::build(
            spec,
            Some(backend),
            None,
        )?))
    }

    fn from_compiled(version: Version) -> Self {
        Self {
            current: ArcSwap::from_pointee(version),
            writers: Mutex::new(()),
        }
    }

    /// Replaces the policy with `spec`, atomically, while other threads keep checking.
    /// Limits whose identity (rule, name, key, `on_missing`, algorithm, quota, shadow
    /// flag) did not change keep their tables — their exact state — and counters, when
    /// the table settings (`capacity`, `when_full`) did not change either; limits
    /// sharing a table with a changed or new one (a rule's limits on one key) start
    /// afresh with it (keeping their counters); removed ones are dropped. The override
    /// set becomes `spec`'s. A check runs wholly on the old
    /// version or wholly on the new one, and a decision taken before the reload stays
    /// valid: old tables are freed after the last check and decision using them.
    ///
    /// # Errors
    /// A [`PolicyError`]; the old version stays in force.
    pub fn reload(&self, spec: PolicySpec) -> Result<ReloadReport, PolicyError> {
        // A poisoned lock only means another reload panicked mid-build, before it
        // swapped anything in: the version in force is whole.
        let _writer = self.writers.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.current.load_full();
        let next = Compiled::build(
            spec,
            #[cfg(feature = "redis")]
            old.redis.clone(),
            Some(&old),
        )?;
        // Kept: the limits whose table (their state) was handed over.
        let old_tables: Vec<&Arc<crate::table::OwnedTable>> = old
            .rules
            .iter()
            .flat_map(|r| &r.groups)
            .map(|g| &g.table)
            .collect();
        let kept = next
            .rules
            .iter()
            .flat_map(|r| &r.groups)
            .filter(|g| old_tables.iter().any(|t| Arc::ptr_eq(t, &g.table)))
            .map(|g| g.ids.len())
            .sum::<usize>();
        let now_in_force = next.named_overrides();
        let overrides_dropped = old
            .named_overrides()
            .iter()
            .filter(|o| !now_in_force.contains(o))
            .count();
        // Dropped: the old limits no limit of the new version is identical to (their
        // counters were not handed over).
        let carried = next
            .counters
            .iter()
            .filter(|c| old.counters.iter().any(|o| Arc::ptr_eq(o, c)))
            .count();
        let report = ReloadReport {
            kept,
            fresh: next.limits.len() - kept,
            dropped: old.limits.len() - carried,
            overrides_dropped,
        };
        self.current.store(Arc::new(next));
        Ok(report)
    }

    /// Gives the requests of limit `limit` (of rule `rule`) whose `attribute` is `value`
    /// another quota, or replaces the one they had, at once and without disturbing any
    /// other key: the change is published atomically while other threads check. A key
    /// keeps what it has consumed (see [`OverrideQuota`] and the module's overrides
    /// docs). The cost is a copy of that limit's override map, once per call; checks
    /// never lock or allocate for it. A reload replaces every override with the file's.
    ///
    /// # Errors
    /// [`PolicyError::UnknownLimit`], [`PolicyError::AttributeName`], or
    /// [`PolicyError::Override`] when the quota is invalid for the limit.
    pub fn set_override(
        &self,
        rule: &str,
        limit: &str,
        attribute: &str,
        value: &[u8],
        quota: OverrideQuota,
    ) -> Result<(), PolicyError> {
        self.edit_overrides(rule, limit, |compiled, set, id| {
            let target = compiled.target(id).ok_or_else(|| unknown(rule, limit))?;
            set.set(id, &target, attribute, value, quota)?;
            Ok(true)
        })
        .map(|_| ())
    }

    /// Sets (adds or replaces) many overrides at once, as `(rule, limit, override)`: all
    /// of them or, on the first invalid one, none. Published together, so a check sees
    /// either none or all of them, and the cost is one copy of each changed override
    /// shard instead of one per override (loading 100,000 overrides from a database this
    /// way is linear in their number). Returns how many were set.
    ///
    /// # Errors
    /// As [`set_override`](Self::set_override), for the first invalid one.
    pub fn set_overrides<'a>(
        &self,
        overrides: impl IntoIterator<Item = (&'a str, &'a str, &'a Override)>,
    ) -> Result<usize, PolicyError> {
        // Writers take turns (a poisoned lock: see `reload`), so no edit is lost.
        let _writer = self.writers.lock().unwrap_or_else(|e| e.into_inner());
        let compiled = self.current.load_full();
        let mut set = overrides::OverrideSet::clone(&compiled.overrides);
        let mut count = 0;
        for (rule, limit, o) in overrides {
            let id = compiled
                .limit_id(rule, limit)
                .ok_or_else(|| unknown(rule, limit))?;
            let target = compiled.target(id).ok_or_else(|| unknown(rule, limit))?;
            set.set(id, &target, &o.attribute, &o.value, o.quota)?;
            count += 1;
        }
        if count > 0 {
            self.publish_overrides(&compiled, set);
        }
        Ok(count)
    }

    /// Removes an override; `Ok(false)` when there was none.
    ///
    /// # Errors
    /// [`PolicyError::UnknownLimit`].
    pub fn remove_override(
        &self,
        rule: &str,
        limit: &str,
        attribute: &str,
        value: &[u8],
    ) -> Result<bool, PolicyError> {
        self.edit_overrides(rule, limit, |_, set, id| {
            Ok(set.remove(id, attribute, value))
        })
    }

    /// Every override in force, as `(rule, limit, override)`.
    #[must_use]
    pub fn overrides(&self) -> Vec<(String, String, Override)> {
        self.current.load().named_overrides()
    }

    /// Copies the override set of the version in force, lets `edit` change it, and
    /// publishes the copy when `edit` reports a change.
    fn edit_overrides(
        &self,
        rule: &str,
        limit: &str,
        edit: impl FnOnce(&Compiled, &mut overrides::OverrideSet, usize) -> Result<bool, PolicyError>,
    ) -> Result<bool, PolicyError> {
        // Writers take turns (a poisoned lock: see `reload`), so no edit is lost.
        let _writer = self.writers.lock().unwrap_or_else(|e| e.into_inner());
        let compiled = self.current.load_full();
        let id = compiled
            .limit_id(rule, limit)
            .ok_or_else(|| unknown(rule, limit))?;
        let mut set = overrides::OverrideSet::clone(&compiled.overrides);
        let changed = edit(&compiled, &mut set, id)?;
        if changed {
            self.publish_overrides(&compiled, set);
        }
        Ok(changed)
    }

    /// Puts `set` in force for `version`'s compiled policy (called with the writers'
    /// lock held, `version` being the one in force).
    fn publish_overrides(&self, version: &Version, set: overrides::OverrideSet) {
        self.current.store(Arc::new(Version::new(
            Arc::clone(&version.compiled),
            Arc::new(set),
            version.serial,
        )));
    }

    /// The keys that kept sending while denied (denied at least twice by the same limit),
    /// most denials first, with the recorder's own counters. A reload keeps the counts of
    /// the limits it leaves unchanged and drops those of the others.
    /// Constant memory: at most [`OFFENDERS`] keys (module `offenders`).
    #[must_use]
    pub fn offenders(&self) -> (Vec<Offender>, OffenderStats) {
        let compiled = self.current.load();
        let (list, stats) = compiled.offenders.report();
        let named = list
            .into_iter()
            .map(|(id, mut offender)| {
                if let Some(limit) = compiled.limit_ref(id) {
                    offender.rule = String::from(limit.rule);
                    offender.limit = String::from(limit.name);
                }
                offender
            })
            .collect();
        (named, stats)
    }

    /// A consistent view of the version in force: its rules, names and counters,
    /// readable without allocating. It keeps that version alive while it exists.
    pub fn view(&self) -> PolicyView {
        PolicyView::new(self.current.load_full())
    }

    /// How this policy answers (a copy: a reload may change it).
    #[must_use]
    pub fn response(&self) -> ResponseSpec {
        self.current.load().response.clone()
    }

    /// The rules, in order (a copy; [`view`](Self::view) reads them in place).
    pub fn rules(&self) -> alloc::vec::IntoIter<Rule> {
        self.current.load().spec.clone().into_iter()
    }

    /// Every attribute name the policy reads (conditions and keys), in first-use order.
    pub fn attribute_names(&self) -> alloc::vec::IntoIter<String> {
        self.current.load().attributes.clone().into_iter()
    }

    /// Every limit with its counters, in policy order (owned copies;
    /// [`view`](Self::view) reads them without allocating).
    pub fn metrics(&self) -> alloc::vec::IntoIter<(LimitInfo, LimitMetrics)> {
        let view = self.view();
        view.metrics()
            .map(|(limit, metrics)| (LimitInfo::from(limit), metrics))
            .collect::<Vec<_>>()
            .into_iter()
    }

    /// Bytes of table memory the policy holds (its keyed tables; rules, names and
    /// conditions are small beside them). During a reload, the tables of both versions
    /// are alive until the old one's last check ends.
    #[must_use]
    pub fn memory_bytes(&self) -> usize {
        self.current.load().memory_bytes()
    }

    /// [`PolicyView::render_metrics`] on the version in force.
    ///
    /// # Errors
    /// [`BufferTooSmall`](crate::http::BufferTooSmall) with the exact length needed.
    pub fn render_metrics(&self, out: &mut [u8]) -> Result<usize, crate::http::BufferTooSmall> {
        self.view().render_metrics(out)
    }
}
