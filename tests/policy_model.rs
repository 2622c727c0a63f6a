//! Differential test of policies: a [`Policy`] built from a random [`PolicySpec`] and
//! driven by a random stream of requests, override changes and reloads must answer every
//! step exactly as a deliberately naive reference model of the documented semantics
//! (`src/policy/mod.rs`, "Model" and "Which limit decides"; `src/policy/overrides.rs` for
//! per-client overrides; `Policy::reload` and `src/policy/compile.rs` for what a reload
//! hands over; `src/composite.rs` for each limit's state in a decision).
//!
//! The model keeps one naive algorithm model (from `tests/model/`) per (limit id, key
//! bytes) in a `HashMap`, and re-derives everything else from the rules as written:
//! - a rule applies when its route (matched here by a naive splitter) and every
//!   condition hold; the first applicable `unlimited` rule exempts the request from
//!   every limit, charges and counts nothing;
//! - each applicable limit resolves its ordered key from the request's attributes (the
//!   first occurrence of a name counts); a missing attribute skips the limit, keys as
//!   "absent", or denies it, as its `on_missing` says;
//! - a limit that has a key for the request (all attributes present, or `shared`) runs
//!   on the quota of its first override attribute, in the order the attributes first
//!   appeared among the limit's overrides (an attribute keeps its place while it has an
//!   override, and loses it when its last one is removed), whose request value has an
//!   override — else on its own quota. An override keeps the limit's algorithm and
//!   period; GCRA's burst defaults to the override's limit. The key's state carries over
//!   whatever quota judges it (windows: counts; GCRA: the theoretical arrival time;
//!   strict: the log), so the same state is judged per request by that request's quota.
//!   An unlimited override takes the limit out of the request (counted as `skipped`);
//! - the real limits form one all-or-nothing set: admitted only if every one admits (a
//!   missing-key denial included); a denial consumes nothing, and each limit's state is
//!   then its unchanged state (a cost-0 look for one that alone would have admitted);
//! - the shadow limits form their own all-or-nothing set, charged only when the request
//!   is admitted and every one of them would admit; they never change the real answer;
//! - the deciding limit, the shadow limit reported as denying, the combined decision,
//!   `denied_for_missing_key`, `exempted_by` and the per-limit counters follow;
//! - a cost some applicable real limit with a key can never fit (on the quota it runs
//!   on) is an error (any such limit's `CostExceedsLimit`), with nothing charged or
//!   counted; a limit denying for a missing key is not asked (its key is not there), and
//!   a shadow limit's impossible cost is its denial, never an error;
//! - `set_override` / `remove_override` change one limit's overrides (errors for an
//!   unknown limit, a bad attribute name, a quota invalid for the limit: zero, a burst
//!   on a limit that is not GCRA, a count the key's state word cannot hold);
//! - a reload builds the next version from a policy derived from the one in force (rules
//!   kept, edited, renamed, removed, added, reordered; limits' quota, key, `on_missing`,
//!   algorithm, shadow flag, name or overrides changed; the table capacity or full
//!   policy changed). A rule's limits sharing key, `on_missing` and shadow flag share a
//!   table; that table, with every key's state, is handed over when the previous
//!   version's rule of the same name has a group of exactly the same limits by (rule
//!   name, limit name, key, `on_missing`, algorithm, quota, shadow flag) in the same
//!   order, and the capacity and full policy did not change; every other limit starts
//!   with no state. Counters are handed over per identical limit. The override set
//!   becomes the new spec's. The `ReloadReport` counts the limits that keep their state
//!   (`kept`), the others (`fresh`: new, changed, or sharing a table with a changed
//!   one, or built with another capacity or full policy), the old limits no new one is
//!   identical to (`dropped`), and the overrides in force that the new set lacks; a
//!   policy the engine must refuse (an invalid override) leaves everything as it was.
//!
//! Every field of every decision is compared, the override list after every change, and
//! the counters after every reload and at the end of the stream. Tables are far larger
//! than the keys a case can make (a key is at most two attributes over a 3-letter
//! alphabet), so nothing is ever evicted or reclaimed.
//!
//! Deterministic: proptest's RNG is seeded with a fixed value and failures are not
//! persisted to disk. `RATECORE_POLICY_MODEL_CASES` sets the number of cases (default:
//! 64 in debug builds, 4096 in release builds).

// Not every model helper is used here.
#[allow(unused_imports)]
mod model;

use std::collections::HashMap;

use model::{expected_quota, AnyModel, Model, QuotaParams};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed, TestCaseError};
use ratecore::policy::{
    Attribute, Condition, LimitMetrics, LimitRef, LimitRule, OnMissing, Override, OverrideQuota,
    Policy, PolicyDecision, PolicyError, PolicySpec, ReloadReport, Request, ResponseSpec, Route,
    Rule, Test,
};
use ratecore::{Algorithm, CheckError, Decision, FullPolicy, Quota, NEVER};

// ---------------------------------------------------------------------------------------
// The small worlds requests and policies are drawn from
// ---------------------------------------------------------------------------------------

/// Attribute names: the policy uses the first [`POLICY_ATTRIBUTES`] in conditions and
/// keys; requests may also carry the last, which only overrides read.
const NAMES: [&str; 5] = ["auth", "app", "user", "tier", "other"];
const POLICY_ATTRIBUTES: usize = 4;
/// An attribute name `set_override` must refuse.
const BAD_NAME: &str = "bad name";
/// Attribute values: tiny, so that keys collide; the empty value is a present value.
const VALUES: [&[u8]; 3] = [b"a", b"b", b""];
/// Route templates a rule may have.
const ROUTES: [&str; 5] = ["GET /a", "POST /a/:id", "ALL /b/*", "/a", "GET /"];
const METHODS: [&str; 3] = ["GET", "POST", "get"];
const PATHS: [&str; 8] = ["/a", "/a/", "/a/x", "/a/y?q=1", "/b", "/b/x/y", "/c", "/"];
/// Periods in nanoseconds: time steps are of the same order, so windows roll over.
const PERIODS: [u64; 3] = [64, 200, 1000];
/// Keys per table: far above the at most 16 keys one limit can see.
const CAPACITY: u64 = 4096;
/// The capacity a reload may switch to (and back): still far above the keys.
const OTHER_CAPACITY: u64 = 2048;
/// The most limits one policy may hold.
const MAX_POLICY_LIMITS: usize = 16;
/// The most limits one rule may hold here (so that no table holds more than 4).
const MAX_RULE_LIMITS: usize = 4;

/// What a request no real limit applies to gets: admitted, with no limit's numbers.
const UNLIMITED: Decision = Decision {
    allowed: true,
    limit: u64::MAX,
    remaining: u64::MAX,
    reset_after: 0,
    retry_after: 0,
};

/// `true` models a cruder answer for shadow limits when the cost can never fit one of
/// them (every keyed shadow entry denied with `retry_after = NEVER`, even those the cost
/// fits). The policy gives the composite semantics (`false`): each limit's unchanged
/// state, the never-fitting ones denied with `retry_after = NEVER`.
const SHADOW_COST_PLACEHOLDER: bool = false;

/// Whether an override applies to a request that lacks a key attribute of an
/// `on_missing = "deny"` limit. The docs define overrides per request attribute and the
/// missing-key denial per key, without saying which comes first; the policy looks
/// overrides up only for a request the limit has a key for, so such a request is denied
/// for its missing key even when an unlimited override selects it (`false`). `true`
/// checks the other reading: an unlimited override takes the limit out of the request,
/// and a quota override changes only the denial's reported `limit`.
const OVERRIDES_BEFORE_MISSING_KEY: bool = false;

// ---------------------------------------------------------------------------------------
// Plans: policies, requests, override changes and reloads as plain indices into the
// worlds above
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum TestPlan {
    Present,
    Absent,
    Equals(usize),
    In(Vec<usize>),
    NotIn(Vec<usize>),
}

/// What an override gives, as [`OverrideQuota`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum QuotaPlan {
    Unlimited,
    Limit { limit: u64, burst: Option<u64> },
}

impl QuotaPlan {
    fn spec(self) -> OverrideQuota {
        match self {
            Self::Unlimited => OverrideQuota::Unlimited,
            Self::Limit { limit, burst } => OverrideQuota::Limit { limit, burst },
        }
    }
}

#[derive(Clone, Debug)]
struct OverridePlan {
    /// Index into [`NAMES`].
    attribute: usize,
    value: usize,
    quota: QuotaPlan,
}

#[derive(Clone, Debug)]
struct LimitPlan {
    /// The limit's name is `limit-{name}`: unique within its rule.
    name: usize,
    /// Attribute indices, distinct, in key order.
    key: Vec<usize>,
    on_missing: OnMissing,
    algorithm: Algorithm,
    limit: u64,
    period: u64,
    /// GCRA only.
    burst: u64,
    shadow: bool,
    /// As written in the spec; always valid for the limit (see [`normalize`]).
    overrides: Vec<OverridePlan>,
}

#[derive(Clone, Debug)]
struct RulePlan {
    /// The rule's name is `rule-{name}`: unique within its policy.
    name: usize,
    route: Option<usize>,
    conditions: Vec<(usize, TestPlan)>,
    described: bool,
    /// Empty: an unlimited rule.
    limits: Vec<LimitPlan>,
}

#[derive(Clone, Debug)]
struct PolicyPlan {
    rules: Vec<RulePlan>,
    capacity: u64,
    when_full: FullPolicy,
}

#[derive(Clone, Debug)]
struct RequestPlan {
    method: usize,
    path: usize,
    /// (name index, value index), in request order; a name may repeat.
    attributes: Vec<(usize, usize)>,
    /// Time since the previous request.
    advance: u64,
    cost: u64,
    peek: bool,
}

/// Which limit an override change names: the `limit`-th limit (modulo) of the `rule`-th
/// limited rule (modulo), or a name the policy does not have.
#[derive(Clone, Copy, Debug)]
struct TargetPlan {
    rule: usize,
    limit: usize,
    unknown: Unknown,
}

#[derive(Clone, Copy, Debug)]
enum Unknown {
    No,
    Limit,
    Rule,
}

/// One change to one limit of a reloaded rule.
#[derive(Clone, Debug)]
enum LimitEdit {
    Keep,
    Remove,
    Quota { limit: u64, period: u64, burst: u64 },
    Key(Vec<usize>),
    OnMissing(OnMissing),
    Algorithm(Algorithm),
    Shadow,
    Rename,
    Overrides(Vec<OverridePlan>),
}

/// One change to one rule of a reloaded policy.
#[derive(Clone, Debug)]
enum RuleEdit {
    Keep,
    Remove,
    /// Another route, conditions and description: the limits stay the same limits.
    Retarget {
        route: Option<usize>,
        conditions: Vec<(usize, TestPlan)>,
        described: bool,
    },
    Rename,
    Unlimited,
    /// Each limit's edit (cycled), and a limit to add if the rule has room.
    Limits {
        edits: Vec<LimitEdit>,
        add: Option<LimitPlan>,
    },
}

#[derive(Clone, Copy, Debug)]
enum TableEdit {
    Same,
    Capacity,
    WhenFull,
}

/// How the next policy derives from the one in force ([`derive`]).
#[derive(Clone, Debug)]
struct ReloadPlan {
    /// Each rule's edit (cycled).
    rules: Vec<RuleEdit>,
    /// New rules, each at a position (modulo) among the edited ones.
    insert: Vec<(usize, RulePlan)>,
    /// Rules rotated left by this (modulo).
    rotate: usize,
    table: TableEdit,
    /// Give the first limit an invalid override: the reload must be refused.
    poison: bool,
}

#[derive(Clone, Debug)]
enum Step {
    Request(RequestPlan),
    SetOverride {
        target: TargetPlan,
        /// Index into [`NAMES`]; past its end: [`BAD_NAME`].
        attribute: usize,
        value: usize,
        quota: QuotaPlan,
    },
    RemoveOverride {
        /// `Some(i)`: the `i`-th (modulo) override in force, if any.
        existing: Option<usize>,
        target: TargetPlan,
        attribute: usize,
        value: usize,
    },
    Reload(ReloadPlan),
}

fn test_plan() -> impl Strategy<Value = TestPlan> {
    let values = || prop::sample::subsequence(vec![0usize, 1, 2], 1..=2);
    prop_oneof![
        Just(TestPlan::Present),
        Just(TestPlan::Absent),
        (0..VALUES.len()).prop_map(TestPlan::Equals),
        values().prop_map(TestPlan::In),
        values().prop_map(TestPlan::NotIn),
    ]
}

fn conditions() -> impl Strategy<Value = Vec<(usize, TestPlan)>> {
    prop::collection::vec((0..POLICY_ATTRIBUTES, test_plan()), 0..=2)
}

fn algorithm() -> impl Strategy<Value = Algorithm> {
    prop_oneof![
        3 => Just(Algorithm::Gcra),
        3 => Just(Algorithm::FixedWindow),
        2 => Just(Algorithm::SlidingWindow),
        3 => (1..=4u32).prop_map(|sub_windows| Algorithm::SlidingWindowStrict { sub_windows }),
    ]
}

fn on_missing() -> impl Strategy<Value = OnMissing> {
    prop_oneof![
        2 => Just(OnMissing::Skip),
        2 => Just(OnMissing::Shared),
        1 => Just(OnMissing::Deny)
    ]
}

fn key_plan() -> impl Strategy<Value = Vec<usize>> {
    prop::sample::subsequence((0..POLICY_ATTRIBUTES).collect::<Vec<_>>(), 0..=2).prop_shuffle()
}

fn limit_count() -> impl Strategy<Value = u64> {
    prop_oneof![1 => 1..=2u64, 3 => 3..=6u64]
}

/// An override as a spec writes it: a small limit (reached within a few requests), a
/// burst sometimes (kept for GCRA only, [`normalize`]), or unlimited.
fn spec_override() -> impl Strategy<Value = OverridePlan> {
    (
        0..NAMES.len(),
        0..VALUES.len(),
        prop_oneof![
            1 => Just(QuotaPlan::Unlimited),
            4 => (1..=7u64, prop::option::weighted(0.3, 1..=8u64))
                .prop_map(|(limit, burst)| QuotaPlan::Limit { limit, burst }),
        ],
    )
        .prop_map(|(attribute, value, quota)| OverridePlan {
            attribute,
            value,
            quota,
        })
}

fn spec_overrides() -> impl Strategy<Value = Vec<OverridePlan>> {
    prop_oneof![
        3 => Just(Vec::new()),
        2 => prop::collection::vec(spec_override(), 1..=3),
    ]
}

fn limit_plan() -> impl Strategy<Value = LimitPlan> {
    (
        key_plan(),
        on_missing(),
        algorithm(),
        limit_count(),
        prop::sample::select(PERIODS.to_vec()),
        1..=8u64,
        prop::bool::weighted(0.25),
        spec_overrides(),
    )
        .prop_map(
            |(key, on_missing, algorithm, limit, period, burst, shadow, overrides)| LimitPlan {
                name: 0,
                key,
                on_missing,
                algorithm,
                limit,
                period,
                burst,
                shadow,
                overrides,
            },
        )
}

/// A rule of 1 to `max_limits` limits (or, sometimes, unlimited).
fn rule_plan(max_limits: usize) -> impl Strategy<Value = RulePlan> {
    (
        prop::option::weighted(0.5, 0..ROUTES.len()),
        conditions(),
        any::<bool>(),
        prop::bool::weighted(0.15),
        prop::collection::vec(limit_plan(), 1..=max_limits),
    )
        .prop_map(|(route, conditions, described, unlimited, mut limits)| {
            for (index, limit) in limits.iter_mut().enumerate() {
                limit.name = index;
            }
            RulePlan {
                name: 0,
                route,
                conditions,
                described,
                limits: if unlimited { Vec::new() } else { limits },
            }
        })
}

/// At most [`MAX_POLICY_LIMITS`] limits in all: a rule whose limits would go beyond
/// keeps those that fit (none: it becomes unlimited). Overrides valid for their limits.
fn normalize(rules: &mut [RulePlan]) {
    let mut room = MAX_POLICY_LIMITS;
    for rule in rules {
        rule.limits.truncate(room.min(MAX_RULE_LIMITS));
        room -= rule.limits.len();
        for limit in &mut rule.limits {
            if limit.algorithm != Algorithm::Gcra {
                for o in &mut limit.overrides {
                    if let QuotaPlan::Limit { burst, .. } = &mut o.quota {
                        *burst = None;
                    }
                }
            }
        }
    }
}

/// 1 to `max_rules` rules of 1 to `max_limits` limits, named in order.
fn policy_plan(max_rules: usize, max_limits: usize) -> impl Strategy<Value = PolicyPlan> {
    prop::collection::vec(rule_plan(max_limits), 1..=max_rules).prop_map(|mut rules| {
        for (index, rule) in rules.iter_mut().enumerate() {
            rule.name = index;
        }
        normalize(&mut rules);
        PolicyPlan {
            rules,
            capacity: CAPACITY,
            when_full: FullPolicy::EvictClosestToRest,
        }
    })
}

fn request_plan() -> impl Strategy<Value = RequestPlan> {
    (
        0..METHODS.len(),
        0..PATHS.len(),
        prop::collection::vec((0..NAMES.len(), 0..VALUES.len()), 0..=6),
        prop_oneof![4 => Just(0u64), 6 => 1..=20u64, 3 => 20..=150u64, 1 => 150..=2_000u64],
        prop_oneof![1 => Just(0u64), 6 => Just(1u64), 2 => Just(2u64), 1 => Just(3u64)],
        prop::bool::weighted(0.15),
    )
        .prop_map(
            |(method, path, attributes, advance, cost, peek)| RequestPlan {
                method,
                path,
                attributes,
                advance,
                cost,
                peek,
            },
        )
}

fn target_plan() -> impl Strategy<Value = TargetPlan> {
    (
        0..16usize,
        0..16usize,
        prop_oneof![
            18 => Just(Unknown::No),
            1 => Just(Unknown::Limit),
            1 => Just(Unknown::Rule),
        ],
    )
        .prop_map(|(rule, limit, unknown)| TargetPlan {
            rule,
            limit,
            unknown,
        })
}

/// An override set at run time: mostly valid, sometimes not (a zero limit or burst, a
/// burst on a limit that is not GCRA, a count too wide for the key's state word).
fn api_quota() -> impl Strategy<Value = QuotaPlan> {
    prop_oneof![
        2 => Just(QuotaPlan::Unlimited),
        8 => (
            prop_oneof![12 => 1..=6u64, 3 => 7..=12u64, 1 => Just(0u64)],
            prop::option::weighted(0.15, 0..=8u64),
        )
            .prop_map(|(limit, burst)| QuotaPlan::Limit { limit, burst }),
    ]
}

fn override_attribute() -> impl Strategy<Value = usize> {
    prop_oneof![30 => 0..NAMES.len(), 1 => Just(NAMES.len())]
}

fn limit_edit() -> impl Strategy<Value = LimitEdit> {
    prop_oneof![
        10 => Just(LimitEdit::Keep),
        1 => Just(LimitEdit::Remove),
        2 => (limit_count(), prop::sample::select(PERIODS.to_vec()), 1..=8u64)
            .prop_map(|(limit, period, burst)| LimitEdit::Quota { limit, period, burst }),
        1 => key_plan().prop_map(LimitEdit::Key),
        1 => on_missing().prop_map(LimitEdit::OnMissing),
        1 => algorithm().prop_map(LimitEdit::Algorithm),
        1 => Just(LimitEdit::Shadow),
        1 => Just(LimitEdit::Rename),
        2 => prop::collection::vec(spec_override(), 0..=3).prop_map(LimitEdit::Overrides),
    ]
}

fn rule_edit() -> impl Strategy<Value = RuleEdit> {
    prop_oneof![
        8 => Just(RuleEdit::Keep),
        1 => Just(RuleEdit::Remove),
        1 => (prop::option::weighted(0.5, 0..ROUTES.len()), conditions(), any::<bool>())
            .prop_map(|(route, conditions, described)| RuleEdit::Retarget {
                route,
                conditions,
                described,
            }),
        1 => Just(RuleEdit::Rename),
        1 => Just(RuleEdit::Unlimited),
        6 => (
            prop::collection::vec(limit_edit(), 1..=4),
            prop::option::weighted(0.3, limit_plan()),
        )
            .prop_map(|(edits, add)| RuleEdit::Limits { edits, add }),
    ]
}

fn reload_plan() -> impl Strategy<Value = ReloadPlan> {
    (
        prop::collection::vec(rule_edit(), 1..=5),
        prop_oneof![
            3 => Just(Vec::new()),
            1 => prop::collection::vec((0..8usize, rule_plan(MAX_RULE_LIMITS)), 1..=2),
        ],
        prop_oneof![3 => Just(0usize), 1 => 0..5usize],
        prop_oneof![
            10 => Just(TableEdit::Same),
            1 => Just(TableEdit::Capacity),
            1 => Just(TableEdit::WhenFull),
        ],
        prop::bool::weighted(0.05),
    )
        .prop_map(|(rules, insert, rotate, table, poison)| ReloadPlan {
            rules,
            insert,
            rotate,
            table,
            poison,
        })
}

/// How often each kind of step comes, relatively.
#[derive(Clone, Copy)]
struct Mix {
    requests: u32,
    sets: u32,
    removes: u32,
    reloads: u32,
}

fn step(mix: Mix) -> impl Strategy<Value = Step> {
    prop_oneof![
        mix.requests => request_plan().prop_map(Step::Request),
        mix.sets => (target_plan(), override_attribute(), 0..VALUES.len(), api_quota()).prop_map(
            |(target, attribute, value, quota)| Step::SetOverride {
                target,
                attribute,
                value,
                quota,
            }
        ),
        mix.removes => (
            prop::option::weighted(0.7, 0..64usize),
            target_plan(),
            override_attribute(),
            0..VALUES.len(),
        )
            .prop_map(|(existing, target, attribute, value)| Step::RemoveOverride {
                existing,
                target,
                attribute,
                value,
            }),
        mix.reloads => reload_plan().prop_map(Step::Reload),
    ]
}

/// The policy a reload installs: `current` edited as `reload` says. Names stay unique:
/// renamed and added rules and limits take names never used in `current`.
fn derive(current: &PolicyPlan, reload: &ReloadPlan) -> PolicyPlan {
    let mut next_rule = current.rules.iter().map(|r| r.name + 1).max().unwrap_or(0);
    let mut fresh_rule = || {
        next_rule += 1;
        next_rule - 1
    };
    let mut rules = Vec::new();
    for (index, rule) in current.rules.iter().enumerate() {
        let mut rule = rule.clone();
        match &reload.rules[index % reload.rules.len()] {
            RuleEdit::Keep => {}
            RuleEdit::Remove => continue,
            RuleEdit::Retarget {
                route,
                conditions,
                described,
            } => {
                rule.route = *route;
                rule.conditions = conditions.clone();
                rule.described = *described;
            }
            RuleEdit::Rename => rule.name = fresh_rule(),
            RuleEdit::Unlimited => rule.limits.clear(),
            RuleEdit::Limits { edits, add } => {
                let mut next_limit = rule.limits.iter().map(|l| l.name + 1).max().unwrap_or(0);
                let mut limits = Vec::new();
                for (index, limit) in rule.limits.iter().enumerate() {
                    let mut limit = limit.clone();
                    match &edits[index % edits.len()] {
                        LimitEdit::Keep => {}
                        LimitEdit::Remove => continue,
                        LimitEdit::Quota {
                            limit: count,
                            period,
                            burst,
                        } => {
                            limit.limit = *count;
                            limit.period = *period;
                            limit.burst = *burst;
                        }
                        LimitEdit::Key(key) => limit.key = key.clone(),
                        LimitEdit::OnMissing(on_missing) => limit.on_missing = *on_missing,
                        LimitEdit::Algorithm(algorithm) => limit.algorithm = *algorithm,
                        LimitEdit::Shadow => limit.shadow = !limit.shadow,
                        LimitEdit::Rename => {
                            limit.name = next_limit;
                            next_limit += 1;
                        }
                        LimitEdit::Overrides(overrides) => limit.overrides = overrides.clone(),
                    }
                    limits.push(limit);
                }
                if let Some(add) = add {
                    if limits.len() < MAX_RULE_LIMITS {
                        limits.push(LimitPlan {
                            name: next_limit,
                            ..add.clone()
                        });
                    }
                }
                rule.limits = limits;
            }
        }
        rules.push(rule);
    }
    for (position, rule) in &reload.insert {
        let at = position % (rules.len() + 1);
        let rule = RulePlan {
            name: fresh_rule(),
            ..rule.clone()
        };
        rules.insert(at, rule);
    }
    if !rules.is_empty() {
        let by = reload.rotate % rules.len();
        rules.rotate_left(by);
    }
    normalize(&mut rules);
    let (mut capacity, mut when_full) = (current.capacity, current.when_full);
    match reload.table {
        TableEdit::Same => {}
        TableEdit::Capacity => {
            capacity = if capacity == CAPACITY {
                OTHER_CAPACITY
            } else {
                CAPACITY
            };
        }
        TableEdit::WhenFull => {
            when_full = if when_full == FullPolicy::EvictClosestToRest {
                FullPolicy::Allow
            } else {
                FullPolicy::EvictClosestToRest
            };
        }
    }
    PolicyPlan {
        rules,
        capacity,
        when_full,
    }
}

// ---------------------------------------------------------------------------------------
// The policy under test, built directly as a PolicySpec
// ---------------------------------------------------------------------------------------

fn rule_name(name: usize) -> String {
    format!("rule-{name}")
}

fn limit_name(name: usize) -> String {
    format!("limit-{name}")
}

fn description(name: usize) -> String {
    format!("Rule {name} API")
}

fn values_of(indices: &[usize]) -> Vec<Vec<u8>> {
    indices.iter().map(|&v| VALUES[v].to_vec()).collect()
}

fn quota_of(plan: &LimitPlan) -> Quota {
    let quota = Quota::new(plan.limit, plan.period).unwrap();
    match plan.algorithm {
        Algorithm::Gcra => quota.with_burst(plan.burst).unwrap(),
        _ => quota,
    }
}

fn override_of(plan: &OverridePlan) -> Override {
    Override {
        attribute: NAMES[plan.attribute].to_string(),
        value: VALUES[plan.value].to_vec(),
        quota: plan.quota.spec(),
    }
}

fn spec_of(plan: &PolicyPlan) -> PolicySpec {
    PolicySpec {
        rules: plan
            .rules
            .iter()
            .map(|rule| Rule {
                name: rule_name(rule.name),
                route: rule.route.map(|i| Route::parse(ROUTES[i]).unwrap()),
                conditions: rule
                    .conditions
                    .iter()
                    .map(|(attribute, test)| Condition {
                        attribute: NAMES[*attribute].to_string(),
                        test: match test {
                            TestPlan::Present => Test::Present,
                            TestPlan::Absent => Test::Absent,
                            TestPlan::Equals(v) => Test::Equals(VALUES[*v].to_vec()),
                            TestPlan::In(vs) => Test::In(values_of(vs)),
                            TestPlan::NotIn(vs) => Test::NotIn(values_of(vs)),
                        },
                    })
                    .collect(),
                description: rule.described.then(|| description(rule.name)),
                unlimited: rule.limits.is_empty(),
                limits: rule
                    .limits
                    .iter()
                    .map(|limit| LimitRule {
                        name: limit_name(limit.name),
                        key: limit.key.iter().map(|&a| NAMES[a].to_string()).collect(),
                        on_missing: limit.on_missing,
                        algorithm: limit.algorithm,
                        quota: quota_of(limit),
                        shadow: limit.shadow,
                        overrides: limit.overrides.iter().map(override_of).collect(),
                    })
                    .collect(),
            })
            .collect(),
        capacity: plan.capacity,
        when_full: plan.when_full,
        response: ResponseSpec::default(),
    }
}

// ---------------------------------------------------------------------------------------
// The reference model
// ---------------------------------------------------------------------------------------

/// A route template matched naively: split both sides and walk the segments.
fn route_matches(template: &str, method: &str, path: &str) -> bool {
    let (want, template_path) = match template.split_once(' ') {
        Some((want, path)) => (Some(want), path),
        None => (None, template),
    };
    if let Some(want) = want {
        if want != "ALL" && !want.eq_ignore_ascii_case(method) {
            return false;
        }
    }
    let path = path.split(['?', '#']).next().unwrap_or("");
    let Some(path) = path.strip_prefix('/') else {
        return false;
    };
    let path = path.strip_suffix('/').unwrap_or(path);
    let parts: Vec<&str> = if path.is_empty() {
        Vec::new()
    } else {
        path.split('/').collect()
    };
    let template_path = template_path.strip_prefix('/').unwrap_or(template_path);
    let segments: Vec<&str> = if template_path.is_empty() {
        Vec::new()
    } else {
        template_path.split('/').collect()
    };
    for (index, segment) in segments.iter().enumerate() {
        if *segment == "*" {
            return true;
        }
        let Some(part) = parts.get(index) else {
            return false;
        };
        let fits = if segment.starts_with(':') {
            !part.is_empty()
        } else {
            segment == part
        };
        if !fits {
            return false;
        }
    }
    parts.len() == segments.len()
}

/// What makes a limit the same limit across versions: rule name, limit name, key,
/// `on_missing`, algorithm, quota, shadow flag.
type Identity = (
    String,
    String,
    Vec<usize>,
    OnMissing,
    Algorithm,
    Quota,
    bool,
);

/// One limit as the model knows it.
#[derive(Clone, Debug)]
struct LimitModel {
    rule: usize,
    name: String,
    key: Vec<usize>,
    on_missing: OnMissing,
    algorithm: Algorithm,
    quota: Quota,
    params: QuotaParams,
    shadow: bool,
}

/// The most one request may cost on `params`, and what decisions report as `limit`.
fn capacity_of(algorithm: Algorithm, params: &QuotaParams) -> u64 {
    match algorithm {
        Algorithm::Gcra => params.burst,
        _ => params.limit,
    }
}

impl LimitModel {
    /// The documented denial of a request lacking a key attribute under
    /// `on_missing = "deny"`, on quota `params`.
    fn missing_denial(&self, params: &QuotaParams) -> Decision {
        Decision {
            allowed: false,
            limit: capacity_of(self.algorithm, params),
            remaining: 0,
            reset_after: self.params.period,
            retry_after: self.params.period,
        }
    }

    /// The quota an override gives this limit (`None`: unlimited), or `Err` when the
    /// policy must refuse it: a zero limit or burst, a burst on a limit that is not GCRA,
    /// or a quota its algorithm rejects (a count too wide for the state word).
    fn override_params(&self, quota: QuotaPlan) -> Result<Option<QuotaParams>, ()> {
        let QuotaPlan::Limit { limit, burst } = quota else {
            return Ok(None);
        };
        if burst.is_some() && self.algorithm != Algorithm::Gcra {
            return Err(());
        }
        let params = expected_quota(limit, self.params.period, burst).map_err(drop)?;
        AnyModel::new(self.algorithm, params).map_err(drop)?;
        Ok(Some(params))
    }
}

/// An override's value and what it gives.
type ValueQuota = (Vec<u8>, QuotaPlan);

/// One limit's overrides: by attribute name, in the order the attributes first appeared
/// (an attribute whose last override is removed leaves the order), each with its
/// values' quotas.
#[derive(Clone, Debug, Default)]
struct OverridesModel {
    by_attribute: Vec<(String, Vec<ValueQuota>)>,
}

impl OverridesModel {
    fn set(&mut self, attribute: &str, value: &[u8], quota: QuotaPlan) {
        let index = match self.by_attribute.iter().position(|(a, _)| a == attribute) {
            Some(index) => index,
            None => {
                self.by_attribute.push((attribute.to_string(), Vec::new()));
                self.by_attribute.len() - 1
            }
        };
        let values = &mut self.by_attribute[index].1;
        match values.iter_mut().find(|(v, _)| v == value) {
            Some((_, q)) => *q = quota,
            None => values.push((value.to_vec(), quota)),
        }
    }

    fn remove(&mut self, attribute: &str, value: &[u8]) -> bool {
        let Some(index) = self.by_attribute.iter().position(|(a, _)| a == attribute) else {
            return false;
        };
        let values = &mut self.by_attribute[index].1;
        let before = values.len();
        values.retain(|(v, _)| v != value);
        let removed = values.len() != before;
        if values.is_empty() {
            self.by_attribute.remove(index);
        }
        removed
    }

    /// The override for `request`: the first attribute, in order, whose value has one.
    fn select(&self, request: &RequestModel<'_>) -> Option<QuotaPlan> {
        self.by_attribute.iter().find_map(|(attribute, values)| {
            let value = request.value_named(attribute)?;
            values
                .iter()
                .find(|(v, _)| v.as_slice() == value)
                .map(|&(_, q)| q)
        })
    }
}

#[derive(Clone, Debug)]
struct RuleModel {
    name: String,
    description: String,
    route: Option<&'static str>,
    conditions: Vec<(usize, TestPlan)>,
    unlimited: bool,
    limits: Vec<usize>,
}

/// A request as the model sees it.
struct RequestModel<'a> {
    method: &'a str,
    path: &'a str,
    attributes: &'a [(usize, usize)],
}

impl RequestModel<'_> {
    /// The value of attribute `name`: its first occurrence.
    fn value(&self, name: usize) -> Option<&'static [u8]> {
        self.attributes
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, v)| VALUES[v])
    }

    fn value_named(&self, name: &str) -> Option<&'static [u8]> {
        self.value(NAMES.iter().position(|n| *n == name)?)
    }
}

/// A limit's key: one part per key attribute, `None` for an absent one.
type Key = Vec<Option<Vec<u8>>>;

/// How an applicable limit meets a request.
#[derive(Clone, Debug)]
enum Meets {
    /// With its key, on the quota the request runs on there.
    Keyed(Key, QuotaParams),
    /// A key attribute is missing and the limit denies such requests (on the quota its
    /// denial reports).
    Missing(QuotaParams),
}

/// One limit's line in an expected decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Line {
    id: usize,
    state: Decision,
    missing: bool,
}

/// Everything a decision says, as plain data (the model's expectation, or what the
/// policy answered).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Verdict {
    allowed: bool,
    decision: Decision,
    limited: bool,
    /// (limit id, state), in policy order.
    real: Vec<(usize, Decision)>,
    deciding: Option<usize>,
    shadow: Vec<(usize, Decision)>,
    shadow_denied: Option<(usize, Decision)>,
    denied_for_missing_key: bool,
    exempted_by: Option<String>,
}

/// An override in force as [`Policy::overrides`] lists it, in a sortable form: (rule,
/// limit, attribute, value, `None` for unlimited or `(limit, burst)`).
type Listed = (String, String, String, Vec<u8>, Option<(u64, Option<u64>)>);

fn listed(rule: &str, limit: &str, o: &Override) -> Listed {
    (
        rule.to_string(),
        limit.to_string(),
        o.attribute.clone(),
        o.value.clone(),
        match o.quota {
            OverrideQuota::Unlimited => None,
            OverrideQuota::Limit { limit, burst } => Some((limit, burst)),
        },
    )
}

struct PolicyModel {
    plan: PolicyPlan,
    rules: Vec<RuleModel>,
    limits: Vec<LimitModel>,
    states: HashMap<(usize, Key), AnyModel>,
    metrics: Vec<LimitMetrics>,
    /// Per limit id.
    overrides: Vec<OverridesModel>,
}

/// The line that decides among `lines` ("Which limit decides"): on a denial, the denying
/// line with the latest `retry_after`; on an admission, the fewest `remaining`, then the
/// longest `reset_after`; either way the first such line in policy order.
fn decisive(lines: &[Line]) -> Option<usize> {
    if lines.iter().any(|l| !l.state.allowed) {
        let latest = lines
            .iter()
            .filter(|l| !l.state.allowed)
            .map(|l| l.state.retry_after)
            .max()?;
        lines
            .iter()
            .position(|l| !l.state.allowed && l.state.retry_after == latest)
    } else {
        let fewest = lines.iter().map(|l| l.state.remaining).min()?;
        let longest = lines
            .iter()
            .filter(|l| l.state.remaining == fewest)
            .map(|l| l.state.reset_after)
            .max()?;
        lines
            .iter()
            .position(|l| l.state.remaining == fewest && l.state.reset_after == longest)
    }
}

/// Why the model expects `set_override` to fail (the policy's message is not compared).
fn override_error(limit: &LimitModel, rule: &RuleModel) -> PolicyError {
    PolicyError::Override {
        rule: rule.name.clone(),
        limit: limit.name.clone(),
        message: String::new(),
    }
}

/// Whether the policy's error is the one expected (an override error's message aside).
fn same_error(got: &PolicyError, expected: &PolicyError) -> bool {
    match (got, expected) {
        (
            PolicyError::Override { rule, limit, .. },
            PolicyError::Override {
                rule: want_rule,
                limit: want_limit,
                ..
            },
        ) => rule == want_rule && limit == want_limit,
        (got, expected) => got == expected,
    }
}

impl PolicyModel {
    /// The model of a freshly built `plan`: no state, zero counters, the spec's overrides.
    fn new(plan: &PolicyPlan) -> Self {
        let mut rules = Vec::new();
        let mut limits = Vec::new();
        for (r, rule_plan) in plan.rules.iter().enumerate() {
            let mut ids = Vec::new();
            for limit in &rule_plan.limits {
                let burst = match limit.algorithm {
                    Algorithm::Gcra => Some(limit.burst),
                    _ => None,
                };
                let params = expected_quota(limit.limit, limit.period, burst).unwrap();
                // The naive model must accept the quota too.
                AnyModel::new(limit.algorithm, params).unwrap();
                ids.push(limits.len());
                limits.push(LimitModel {
                    rule: r,
                    name: limit_name(limit.name),
                    key: limit.key.clone(),
                    on_missing: limit.on_missing,
                    algorithm: limit.algorithm,
                    quota: quota_of(limit),
                    params,
                    shadow: limit.shadow,
                });
            }
            rules.push(RuleModel {
                name: rule_name(rule_plan.name),
                description: if rule_plan.described {
                    description(rule_plan.name)
                } else {
                    rule_name(rule_plan.name)
                },
                route: rule_plan.route.map(|i| ROUTES[i]),
                conditions: rule_plan.conditions.clone(),
                unlimited: rule_plan.limits.is_empty(),
                limits: ids,
            });
        }
        let mut overrides = vec![OverridesModel::default(); limits.len()];
        let written = plan.rules.iter().flat_map(|r| &r.limits);
        for ((limit, model), set) in written.zip(&limits).zip(&mut overrides) {
            for o in &limit.overrides {
                assert!(
                    model.override_params(o.quota).is_ok(),
                    "test bug: invalid spec override {o:?} on {model:?}"
                );
                set.set(NAMES[o.attribute], VALUES[o.value], o.quota);
            }
        }
        let metrics = vec![LimitMetrics::default(); limits.len()];
        Self {
            plan: plan.clone(),
            rules,
            limits,
            states: HashMap::new(),
            metrics,
            overrides,
        }
    }

    fn identity(&self, id: usize) -> Identity {
        let limit = &self.limits[id];
        (
            self.rules[limit.rule].name.clone(),
            limit.name.clone(),
            limit.key.clone(),
            limit.on_missing,
            limit.algorithm,
            limit.quota,
            limit.shadow,
        )
    }

    /// A rule's limits grouped into tables: by (key, `on_missing`, shadow flag), each
    /// group in first-appearance order, its limits in rule order.
    fn groups(&self, rule: &RuleModel) -> Vec<Vec<usize>> {
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for &id in &rule.limits {
            let limit = &self.limits[id];
            let same = |other: &usize| {
                let other = &self.limits[*other];
                other.key == limit.key
                    && other.on_missing == limit.on_missing
                    && other.shadow == limit.shadow
            };
            match groups.iter_mut().find(|g| same(&g[0])) {
                Some(group) => group.push(id),
                None => groups.push(vec![id]),
            }
        }
        groups
    }

    /// Every override in force, sorted.
    fn listed(&self) -> Vec<Listed> {
        let mut all: Vec<Listed> = Vec::new();
        for (id, set) in self.overrides.iter().enumerate() {
            let limit = &self.limits[id];
            let rule = &self.rules[limit.rule].name;
            for (attribute, values) in &set.by_attribute {
                for (value, quota) in values {
                    let o = Override {
                        attribute: attribute.clone(),
                        value: value.clone(),
                        quota: quota.spec(),
                    };
                    all.push(listed(rule, &limit.name, &o));
                }
            }
        }
        all.sort();
        all
    }

    /// The (rule, limit) names an override change aims at.
    fn target(&self, target: &TargetPlan) -> (String, String) {
        let limited: Vec<&RuleModel> = self.rules.iter().filter(|r| !r.unlimited).collect();
        match (target.unknown, limited.is_empty()) {
            (Unknown::Rule, _) | (_, true) => (rule_name(999), limit_name(0)),
            (Unknown::Limit, false) => {
                let rule = limited[target.rule % limited.len()];
                (rule.name.clone(), limit_name(999))
            }
            (Unknown::No, false) => {
                let rule = limited[target.rule % limited.len()];
                let id = rule.limits[target.limit % rule.limits.len()];
                (rule.name.clone(), self.limits[id].name.clone())
            }
        }
    }

    fn find(&self, rule: &str, limit: &str) -> Result<usize, PolicyError> {
        self.limits
            .iter()
            .position(|l| l.name == limit && self.rules[l.rule].name == rule)
            .ok_or_else(|| PolicyError::UnknownLimit {
                rule: rule.to_string(),
                limit: limit.to_string(),
            })
    }

    fn set_override(
        &mut self,
        rule: &str,
        limit: &str,
        attribute: &str,
        value: &[u8],
        quota: QuotaPlan,
    ) -> Result<(), PolicyError> {
        let id = self.find(rule, limit)?;
        if !NAMES.contains(&attribute) {
            return Err(PolicyError::AttributeName(attribute.to_string()));
        }
        let model = &self.limits[id];
        model
            .override_params(quota)
            .map_err(|()| override_error(model, &self.rules[model.rule]))?;
        self.overrides[id].set(attribute, value, quota);
        Ok(())
    }

    fn remove_override(
        &mut self,
        rule: &str,
        limit: &str,
        attribute: &str,
        value: &[u8],
    ) -> Result<bool, PolicyError> {
        let id = self.find(rule, limit)?;
        Ok(self.overrides[id].remove(attribute, value))
    }

    /// Replaces the policy with `next` ([`Policy::reload`]): the model of `next`, given
    /// the state of every table handed over and the counters of every identical limit.
    fn reload(&mut self, next: &PolicyPlan) -> ReloadReport {
        let old = std::mem::replace(self, Self::new(next));
        let mut identical = 0;
        for id in 0..self.limits.len() {
            let identity = self.identity(id);
            if let Some(old_id) = (0..old.limits.len()).find(|&o| old.identity(o) == identity) {
                self.metrics[id] = old.metrics[old_id];
                identical += 1;
            }
        }
        // (old id, new id) of every limit whose table is handed over.
        let mut handed: Vec<(usize, usize)> = Vec::new();
        let same_tables =
            old.plan.capacity == next.capacity && old.plan.when_full == next.when_full;
        for rule in self.rules.iter().filter(|_| same_tables) {
            let Some(old_rule) = old.rules.iter().find(|r| r.name == rule.name) else {
                continue;
            };
            let old_groups = old.groups(old_rule);
            for group in self.groups(rule) {
                let same = old_groups.iter().find(|old_group| {
                    old_group.len() == group.len()
                        && old_group
                            .iter()
                            .zip(&group)
                            .all(|(&o, &n)| old.identity(o) == self.identity(n))
                });
                if let Some(old_group) = same {
                    handed.extend(old_group.iter().copied().zip(group));
                }
            }
        }
        for ((old_id, key), state) in &old.states {
            if let Some(&(_, id)) = handed.iter().find(|(o, _)| o == old_id) {
                self.states.insert((id, key.clone()), state.clone());
            }
        }
        let now_in_force = self.listed();
        let overrides_dropped = old
            .listed()
            .iter()
            .filter(|o| !now_in_force.contains(o))
            .count();
        // Kept: the limits that keep their state; fresh: the others (an identical one
        // among them keeps its counters); dropped: the old limits no new one is
        // identical to.
        ReloadReport {
            kept: handed.len(),
            fresh: self.limits.len() - handed.len(),
            dropped: old.limits.len() - identical,
            overrides_dropped,
        }
    }

    fn applies(rule: &RuleModel, request: &RequestModel<'_>) -> bool {
        if let Some(template) = rule.route {
            if !route_matches(template, request.method, request.path) {
                return false;
            }
        }
        rule.conditions.iter().all(|(attribute, test)| {
            let value = request.value(*attribute);
            match test {
                TestPlan::Present => value.is_some(),
                TestPlan::Absent => value.is_none(),
                TestPlan::Equals(v) => value == Some(VALUES[*v]),
                TestPlan::In(vs) => value.is_some_and(|x| vs.iter().any(|&v| VALUES[v] == x)),
                TestPlan::NotIn(vs) => value.is_none_or(|x| vs.iter().all(|&v| VALUES[v] != x)),
            }
        })
    }

    /// The naive algorithm model of `id` at `key` (fresh if never charged), judging
    /// from now on with `params`.
    fn state(&mut self, id: usize, key: &Key, params: QuotaParams) -> &mut AnyModel {
        let limit = &self.limits[id];
        let (algorithm, base) = (limit.algorithm, limit.params);
        let state = self
            .states
            .entry((id, key.clone()))
            .or_insert_with(|| AnyModel::new(algorithm, base).unwrap());
        state.requota(params).unwrap();
        state
    }

    /// Each member's state in an all-or-nothing set, charging all of them when `charge`
    /// and every one admits. `None`: every member admits (their states are the
    /// decisions of admitting `cost`); after a denial each keyed member shows its
    /// unchanged state (a cost-0 look if it alone would have admitted).
    fn all_or_nothing(
        &mut self,
        set: &[(usize, Meets)],
        now: u64,
        cost: u64,
        charge: bool,
    ) -> Vec<Line> {
        let alone: Vec<Option<Decision>> = set
            .iter()
            .map(|(id, meets)| match meets {
                Meets::Keyed(key, params) => {
                    Some(self.state(*id, key, *params).peek(now, cost).unwrap())
                }
                Meets::Missing(_) => None,
            })
            .collect();
        let all_admit = alone.iter().all(|d| d.is_some_and(|d| d.allowed));
        if all_admit && charge {
            for ((id, meets), expected) in set.iter().zip(&alone) {
                if let Meets::Keyed(key, params) = meets {
                    let got = self.state(*id, key, *params).check(now, cost).unwrap();
                    assert_eq!(Some(got), *expected, "model bug: check differs from peek");
                }
            }
        }
        set.iter()
            .zip(alone)
            .map(|((id, meets), alone)| {
                let state = match (meets, alone) {
                    (Meets::Missing(params), _) => self.limits[*id].missing_denial(params),
                    (Meets::Keyed(..), Some(d)) if all_admit || !d.allowed => d,
                    (Meets::Keyed(key, params), _) => {
                        self.state(*id, key, *params).peek(now, 0).unwrap()
                    }
                };
                Line {
                    id: *id,
                    state,
                    missing: matches!(meets, Meets::Missing(_)),
                }
            })
            .collect()
    }

    /// The shadow set: as [`Self::all_or_nothing`], but a cost some shadow limit can
    /// never fit is that limit's denial forever (never an error) and charges nothing.
    fn shadow_set(
        &mut self,
        set: &[(usize, Meets)],
        now: u64,
        cost: u64,
        charge: bool,
    ) -> Vec<Line> {
        let too_big = set.iter().any(|(id, meets)| match meets {
            Meets::Keyed(_, params) => cost > capacity_of(self.limits[*id].algorithm, params),
            Meets::Missing(_) => false,
        });
        if !too_big {
            return self.all_or_nothing(set, now, cost, charge);
        }
        if SHADOW_COST_PLACEHOLDER {
            return set
                .iter()
                .map(|(id, meets)| Line {
                    id: *id,
                    state: match meets {
                        Meets::Missing(params) => self.limits[*id].missing_denial(params),
                        Meets::Keyed(..) => Decision {
                            retry_after: NEVER,
                            ..Decision::EMPTY
                        },
                    },
                    missing: matches!(meets, Meets::Missing(_)),
                })
                .collect();
        }
        set.iter()
            .map(|(id, meets)| {
                let state = match meets {
                    Meets::Missing(params) => self.limits[*id].missing_denial(params),
                    Meets::Keyed(key, params) => {
                        let capacity = capacity_of(self.limits[*id].algorithm, params);
                        let now_state = self.state(*id, key, *params).peek(now, 0).unwrap();
                        if cost > capacity {
                            Decision {
                                allowed: false,
                                retry_after: NEVER,
                                ..now_state
                            }
                        } else {
                            let d = self.state(*id, key, *params).peek(now, cost).unwrap();
                            if d.allowed {
                                now_state
                            } else {
                                d
                            }
                        }
                    }
                };
                Line {
                    id: *id,
                    state,
                    missing: matches!(meets, Meets::Missing(_)),
                }
            })
            .collect()
    }

    /// The documented answer to `request` at `now` with `cost`; `commit`: a check, else a
    /// peek. An error: every error the policy may return (one per limit the cost can
    /// never fit).
    fn run(
        &mut self,
        request: &RequestModel<'_>,
        now: u64,
        cost: u64,
        commit: bool,
    ) -> Result<Verdict, Vec<CheckError>> {
        let mut applicable = Vec::new();
        for (r, rule) in self.rules.iter().enumerate() {
            if !Self::applies(rule, request) {
                continue;
            }
            if rule.unlimited {
                return Ok(Verdict {
                    allowed: true,
                    decision: UNLIMITED,
                    limited: false,
                    real: Vec::new(),
                    deciding: None,
                    shadow: Vec::new(),
                    shadow_denied: None,
                    denied_for_missing_key: false,
                    exempted_by: Some(rule.name.clone()),
                });
            }
            applicable.push(r);
        }

        let (mut real, mut shadow, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
        for &r in &applicable {
            for &id in &self.rules[r].limits {
                let limit = &self.limits[id];
                let key: Key = limit
                    .key
                    .iter()
                    .map(|&a| request.value(a).map(<[u8]>::to_vec))
                    .collect();
                let keyed =
                    key.iter().all(Option::is_some) || limit.on_missing == OnMissing::Shared;
                if !keyed && limit.on_missing == OnMissing::Skip {
                    skipped.push(id);
                    continue;
                }
                // The quota this request runs on here (`None`: an unlimited override).
                let params = if keyed || OVERRIDES_BEFORE_MISSING_KEY {
                    match self.overrides[id].select(request) {
                        None => Some(limit.params),
                        Some(quota) => limit.override_params(quota).unwrap(),
                    }
                } else {
                    Some(limit.params)
                };
                let Some(params) = params else {
                    skipped.push(id);
                    continue;
                };
                let meets = if keyed {
                    Meets::Keyed(key, params)
                } else {
                    Meets::Missing(params)
                };
                if limit.shadow {
                    shadow.push((id, meets));
                } else {
                    real.push((id, meets));
                }
            }
        }

        let errors: Vec<CheckError> = real
            .iter()
            .filter_map(|(id, meets)| match meets {
                Meets::Keyed(_, params) => Some(capacity_of(self.limits[*id].algorithm, params)),
                Meets::Missing(_) => None,
            })
            .filter(|&capacity| cost > capacity)
            .map(|limit| CheckError::CostExceedsLimit { cost, limit })
            .collect();
        if !errors.is_empty() {
            return Err(errors);
        }

        let real_lines = self.all_or_nothing(&real, now, cost, commit);
        let deciding = decisive(&real_lines);
        let decision = deciding.map_or(UNLIMITED, |i| real_lines[i].state);
        let allowed = decision.allowed;
        let shadow_lines = self.shadow_set(&shadow, now, cost, commit && allowed);
        let shadow_denied = decisive(&shadow_lines)
            .map(|i| shadow_lines[i])
            .filter(|l| !l.state.allowed)
            .map(|l| (l.id, l.state));

        if commit {
            for line in real_lines.iter().chain(&shadow_lines) {
                let counters = &mut self.metrics[line.id];
                match (line.state.allowed, self.limits[line.id].shadow) {
                    (true, _) => counters.allowed += 1,
                    (false, false) => counters.denied += 1,
                    (false, true) => counters.shadow_denied += 1,
                }
            }
            for id in skipped {
                self.metrics[id].skipped += 1;
            }
        }

        Ok(Verdict {
            allowed,
            decision,
            limited: !real_lines.is_empty(),
            real: real_lines.iter().map(|l| (l.id, l.state)).collect(),
            deciding: deciding.map(|i| real_lines[i].id),
            shadow: shadow_lines.iter().map(|l| (l.id, l.state)).collect(),
            shadow_denied,
            denied_for_missing_key: !allowed && deciding.is_some_and(|i| real_lines[i].missing),
            exempted_by: None,
        })
    }

    /// Whether `limit` is what the model calls limit `limit.id`.
    fn describes(&self, limit: &LimitRef<'_>) -> Result<(), TestCaseError> {
        prop_assert!(limit.id < self.limits.len(), "no limit {}", limit.id);
        let model = &self.limits[limit.id];
        let rule = &self.rules[model.rule];
        prop_assert_eq!(limit.rule, rule.name.as_str());
        prop_assert_eq!(limit.description, rule.description.as_str());
        prop_assert_eq!(limit.name, model.name.as_str());
        let key: Vec<&str> = model.key.iter().map(|&a| NAMES[a]).collect();
        prop_assert_eq!(limit.key, key.as_slice());
        prop_assert_eq!(limit.period, model.params.period);
        prop_assert_eq!(limit.shadow, model.shadow);
        Ok(())
    }
}

/// What the policy answered, as plain data; every limit reference checked against the
/// model's description of that limit.
fn observe(model: &PolicyModel, d: &PolicyDecision<'_>) -> Result<Verdict, TestCaseError> {
    let mut limits: Vec<LimitRef<'_>> = Vec::new();
    let real: Vec<(usize, Decision)> = d
        .entries()
        .map(|(l, s)| {
            limits.push(l);
            (l.id, s)
        })
        .collect();
    let shadow: Vec<(usize, Decision)> = d
        .shadow_entries()
        .map(|(l, s)| {
            limits.push(l);
            (l.id, s)
        })
        .collect();
    let deciding = d.deciding();
    let shadow_denied = d.shadow_denied();
    limits.extend(deciding);
    limits.extend(shadow_denied.map(|(l, _)| l));
    for limit in &limits {
        model.describes(limit)?;
    }
    prop_assert!(real.iter().all(|(id, _)| !model.limits[*id].shadow));
    prop_assert!(shadow.iter().all(|(id, _)| model.limits[*id].shadow));
    Ok(Verdict {
        allowed: d.allowed(),
        decision: *d.decision(),
        limited: d.limited(),
        real,
        deciding: deciding.map(|l| l.id),
        shadow,
        shadow_denied: shadow_denied.map(|(l, s)| (l.id, s)),
        denied_for_missing_key: d.denied_for_missing_key(),
        exempted_by: d.exempted_by().map(String::from),
    })
}

/// The policy's counters equal the model's, every limit described as the model does.
fn same_metrics(policy: &Policy, model: &PolicyModel, context: &str) -> Result<(), TestCaseError> {
    let view = policy.view();
    let metrics: Vec<(usize, LimitMetrics)> = view
        .metrics()
        .map(|(limit, metrics)| model.describes(&limit).map(|()| (limit.id, metrics)))
        .collect::<Result<_, _>>()?;
    let expected: Vec<(usize, LimitMetrics)> = model.metrics.iter().copied().enumerate().collect();
    prop_assert_eq!(metrics, expected, "{}", context);
    Ok(())
}

/// The policy's overrides in force equal the model's.
fn same_overrides(
    policy: &Policy,
    model: &PolicyModel,
    context: &str,
) -> Result<(), TestCaseError> {
    let mut got: Vec<Listed> = policy
        .overrides()
        .iter()
        .map(|(rule, limit, o)| listed(rule, limit, o))
        .collect();
    got.sort();
    prop_assert_eq!(got, model.listed(), "{}", context);
    Ok(())
}

/// One request through the policy and the model.
fn request_step(
    policy: &Policy,
    model: &mut PolicyModel,
    step: &RequestPlan,
    now: u64,
    context: &str,
) -> Result<(), TestCaseError> {
    let attributes: Vec<Attribute<'_>> = step
        .attributes
        .iter()
        .map(|&(n, v)| Attribute::new(NAMES[n], VALUES[v]))
        .collect();
    let request = Request::new(METHODS[step.method], PATHS[step.path], &attributes);
    let answer = if step.peek {
        policy.peek(&request, now, step.cost)
    } else {
        policy.check(&request, now, step.cost)
    };
    let expected = model.run(
        &RequestModel {
            method: request.method,
            path: request.path,
            attributes: &step.attributes,
        },
        now,
        step.cost,
        !step.peek,
    );
    match (answer, expected) {
        (Ok(decision), Ok(expected)) => {
            let got = observe(model, &decision)?;
            prop_assert_eq!(got, expected, "{}", context);
        }
        (Err(error), Err(acceptable)) => prop_assert!(
            acceptable.contains(&error),
            "{context}: {error:?}, expected one of {acceptable:?}"
        ),
        (answer, expected) => prop_assert!(
            false,
            "{context}: the policy answered {:?}, the model {:?}",
            answer.map(|d| observe(model, &d)),
            expected
        ),
    }
    Ok(())
}

/// The answers to an override change agree: both succeed with `same` results, or both
/// fail with the same error.
fn same_answer<T: PartialEq + std::fmt::Debug>(
    got: Result<T, PolicyError>,
    expected: Result<T, PolicyError>,
    context: &str,
) -> Result<(), TestCaseError> {
    match (&got, &expected) {
        (Ok(got), Ok(expected)) => prop_assert_eq!(got, expected, "{}", context),
        (Err(got), Err(expected)) => prop_assert!(
            same_error(got, expected),
            "{context}: {got:?}, expected {expected:?}"
        ),
        _ => prop_assert!(
            false,
            "{context}: the policy answered {got:?}, the model {expected:?}"
        ),
    }
    Ok(())
}

/// Builds the policy for `plan`, runs `steps` through it and the model side by side,
/// and compares every answer, the overrides after each change, and the counters after
/// each reload and at the end.
fn differential(plan: &PolicyPlan, start: u64, steps: &[Step]) -> Result<(), TestCaseError> {
    let policy = Policy::new(spec_of(plan)).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    let mut model = PolicyModel::new(plan);
    same_overrides(&policy, &model, "built")?;
    let mut now = start;
    for (index, step) in steps.iter().enumerate() {
        match step {
            Step::Request(request) => {
                now += request.advance;
                let context = format!("step {index} ({request:?}) at {now}");
                request_step(&policy, &mut model, request, now, &context)?;
            }
            Step::SetOverride {
                target,
                attribute,
                value,
                quota,
            } => {
                let (rule, limit) = model.target(target);
                let attribute = NAMES.get(*attribute).copied().unwrap_or(BAD_NAME);
                let context = format!(
                    "step {index}: set {rule}/{limit} {attribute}={:?} {quota:?}",
                    VALUES[*value]
                );
                let got =
                    policy.set_override(&rule, &limit, attribute, VALUES[*value], quota.spec());
                let expected = model.set_override(&rule, &limit, attribute, VALUES[*value], *quota);
                same_answer(got, expected, &context)?;
                same_overrides(&policy, &model, &context)?;
            }
            Step::RemoveOverride {
                existing,
                target,
                attribute,
                value,
            } => {
                let in_force = model.listed();
                let (rule, limit, attribute, value) = match existing {
                    Some(i) if !in_force.is_empty() => {
                        let (rule, limit, attribute, value, _) =
                            in_force[i % in_force.len()].clone();
                        (rule, limit, attribute, value)
                    }
                    _ => {
                        let (rule, limit) = model.target(target);
                        let attribute = NAMES.get(*attribute).copied().unwrap_or(BAD_NAME);
                        (rule, limit, attribute.to_string(), VALUES[*value].to_vec())
                    }
                };
                let context = format!("step {index}: remove {rule}/{limit} {attribute}={value:?}");
                let got = policy.remove_override(&rule, &limit, &attribute, &value);
                let expected = model.remove_override(&rule, &limit, &attribute, &value);
                same_answer(got, expected, &context)?;
                same_overrides(&policy, &model, &context)?;
            }
            Step::Reload(reload) => {
                let next = derive(&model.plan, reload);
                let context = format!("step {index}: reload to {next:?}");
                let mut spec = spec_of(&next);
                let poisoned = reload.poison.then(|| {
                    let (r, rule) = spec
                        .rules
                        .iter_mut()
                        .enumerate()
                        .find(|(_, r)| !r.limits.is_empty())?;
                    let limit = &mut rule.limits[0];
                    limit.overrides.push(Override {
                        attribute: NAMES[0].to_string(),
                        value: VALUES[0].to_vec(),
                        quota: OverrideQuota::Limit {
                            limit: 0,
                            burst: None,
                        },
                    });
                    Some(PolicyError::Override {
                        rule: rule_name(next.rules[r].name),
                        limit: limit.name.clone(),
                        message: String::new(),
                    })
                });
                match (policy.reload(spec), poisoned.flatten()) {
                    (Ok(got), None) => {
                        let expected = model.reload(&next);
                        prop_assert_eq!(got, expected, "{}", context);
                    }
                    (Err(got), Some(expected)) => prop_assert!(
                        same_error(&got, &expected),
                        "{context}: {got:?}, expected {expected:?}"
                    ),
                    (got, expected) => prop_assert!(
                        false,
                        "{context}: the policy answered {got:?}, the model expected {expected:?}"
                    ),
                }
                same_metrics(&policy, &model, &context)?;
                same_overrides(&policy, &model, &context)?;
            }
        }
    }
    same_metrics(&policy, &model, "at the end")
}

// ---------------------------------------------------------------------------------------
// The properties
// ---------------------------------------------------------------------------------------

/// Mostly requests, with override changes and reloads among them.
const MIX: Mix = Mix {
    requests: 20,
    sets: 3,
    removes: 2,
    reloads: 2,
};

/// Override changes nearly as often as requests.
const OVERRIDE_MIX: Mix = Mix {
    requests: 10,
    sets: 6,
    removes: 4,
    reloads: 1,
};

/// `RATECORE_POLICY_MODEL_CASES` cases (default: 64 in debug builds, 4096 in release
/// builds) from a fixed seed, nothing written to disk.
fn config(seed: u64) -> Config {
    let default = if cfg!(debug_assertions) { 64 } else { 4096 };
    let cases = std::env::var("RATECORE_POLICY_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    let mut config = Config::with_cases(cases);
    config.failure_persistence = None;
    config.rng_algorithm = RngAlgorithm::XorShift;
    config.rng_seed = RngSeed::Fixed(seed);
    config
}

proptest! {
    #![proptest_config(config(0x7011_c1e5))]

    /// Random policies with overrides, and streams of requests, override changes and
    /// reloads: every answer, the overrides in force and the counters are exactly the
    /// model's.
    #[test]
    fn policies_answer_as_the_model(
        plan in policy_plan(5, MAX_RULE_LIMITS),
        start in 0..5_000u64,
        steps in prop::collection::vec(step(MIX), 1..=80),
    ) {
        differential(&plan, start, &steps)?;
    }
}

proptest! {
    #![proptest_config(config(0x0e11_1de5))]

    /// The same on small policies (1 or 2 rules of 1 or 2 limits) under many override
    /// changes, so that one limit's overrides come and go on several attributes: which
    /// attribute comes first, what a key keeps across quotas.
    #[test]
    fn overrides_answer_as_the_model(
        plan in policy_plan(2, 2),
        start in 0..5_000u64,
        steps in prop::collection::vec(step(OVERRIDE_MIX), 1..=80),
    ) {
        differential(&plan, start, &steps)?;
    }
}

/// The naive route matcher agrees with the documented examples the model relies on.
#[test]
fn the_naive_route_matcher() {
    for (template, method, path, expected) in [
        ("GET /a", "get", "/a/?x", true),
        ("GET /a", "POST", "/a", false),
        ("POST /a/:id", "POST", "/a/x", true),
        ("POST /a/:id", "POST", "/a", false),
        ("ALL /b/*", "GET", "/b", true),
        ("ALL /b/*", "POST", "/b/x/y", true),
        ("/a", "DELETE", "/a", true),
        ("GET /", "GET", "/", true),
        ("GET /", "GET", "/a", false),
    ] {
        assert_eq!(
            route_matches(template, method, path),
            expected,
            "{template} {method} {path}"
        );
        let route = Route::parse(template).unwrap();
        assert_eq!(
            route.matches(method, path),
            expected,
            "{template} {method} {path}"
        );
    }
}
