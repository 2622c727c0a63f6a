//! The small worlds a policy-model case draws from, the plans (policies, requests,
//! override changes and reloads as indices into those worlds), their strategies, and
//! the `PolicySpec` a plan builds.

use proptest::prelude::*;

use ratecore::policy::{
    Condition, LimitRule, OnMissing, Override, OverrideQuota, PolicySpec, ResponseSpec, Route,
    Rule, Test,
};
use ratecore::{Algorithm, Decision, FullPolicy, Quota};

// ---------------------------------------------------------------------------------------
// The small worlds requests and policies are drawn from
// ---------------------------------------------------------------------------------------

/// Attribute names: the policy uses the first [`POLICY_ATTRIBUTES`] in conditions and
/// keys; requests may also carry the last, which only overrides read.
pub const NAMES: [&str; 5] = ["auth", "app", "user", "tier", "other"];
pub const POLICY_ATTRIBUTES: usize = 4;
/// An attribute name `set_override` must refuse.
pub const BAD_NAME: &str = "bad name";
/// Attribute values: tiny, so that keys collide; the empty value is a present value.
pub const VALUES: [&[u8]; 3] = [b"a", b"b", b""];
/// Route templates a rule may have.
pub const ROUTES: [&str; 5] = ["GET /a", "POST /a/:id", "ALL /b/*", "/a", "GET /"];
pub const METHODS: [&str; 3] = ["GET", "POST", "get"];
pub const PATHS: [&str; 8] = ["/a", "/a/", "/a/x", "/a/y?q=1", "/b", "/b/x/y", "/c", "/"];
/// Periods in nanoseconds: time steps are of the same order, so windows roll over.
pub const PERIODS: [u64; 3] = [64, 200, 1000];
/// Keys per table: far above the at most 16 keys one limit can see.
pub const CAPACITY: u64 = 4096;
/// The capacity a reload may switch to (and back): still far above the keys.
pub const OTHER_CAPACITY: u64 = 2048;
/// The most limits one policy may hold.
pub const MAX_POLICY_LIMITS: usize = 16;
/// The most limits one rule may hold here (so that no table holds more than 4).
pub const MAX_RULE_LIMITS: usize = 4;

/// What a request no real limit applies to gets: admitted, with no limit's numbers.
pub const UNLIMITED: Decision = Decision {
    allowed: true,
    limit: u64::MAX,
    remaining: u64::MAX,
    reset_after: 0,
    retry_after: 0,
};

/// Whether an override applies to a request that lacks a key attribute of an
/// `on_missing = "deny"` limit. The docs define overrides per request attribute and the
/// missing-key denial per key, without saying which comes first; the policy looks
/// overrides up only for a request the limit has a key for, so such a request is denied
/// for its missing key even when an unlimited override selects it (`false`). `true`
/// checks the other reading: an unlimited override takes the limit out of the request,
/// and a quota override changes only the denial's reported `limit`.
pub const OVERRIDES_BEFORE_MISSING_KEY: bool = false;

// ---------------------------------------------------------------------------------------
// Plans: policies, requests, override changes and reloads as plain indices into the
// worlds above
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub enum TestPlan {
    Present,
    Absent,
    Equals(usize),
    In(Vec<usize>),
    NotIn(Vec<usize>),
}

/// What an override gives, as [`OverrideQuota`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuotaPlan {
    Unlimited,
    Limit { limit: u64, burst: Option<u64> },
}

impl QuotaPlan {
    pub fn spec(self) -> OverrideQuota {
        match self {
            Self::Unlimited => OverrideQuota::Unlimited,
            Self::Limit { limit, burst } => OverrideQuota::Limit { limit, burst },
        }
    }
}

#[derive(Clone, Debug)]
pub struct OverridePlan {
    /// Index into [`NAMES`].
    pub attribute: usize,
    pub value: usize,
    pub quota: QuotaPlan,
}

#[derive(Clone, Debug)]
pub struct LimitPlan {
    /// The limit's name is `limit-{name}`: unique within its rule.
    pub name: usize,
    /// Attribute indices, distinct, in key order.
    pub key: Vec<usize>,
    pub on_missing: OnMissing,
    pub algorithm: Algorithm,
    pub limit: u64,
    pub period: u64,
    /// GCRA only.
    pub burst: u64,
    pub shadow: bool,
    /// As written in the spec; always valid for the limit (see [`normalize`]).
    pub overrides: Vec<OverridePlan>,
}

#[derive(Clone, Debug)]
pub struct RulePlan {
    /// The rule's name is `rule-{name}`: unique within its policy.
    pub name: usize,
    pub route: Option<usize>,
    pub conditions: Vec<(usize, TestPlan)>,
    pub described: bool,
    /// Empty: an unlimited rule.
    pub limits: Vec<LimitPlan>,
}

#[derive(Clone, Debug)]
pub struct PolicyPlan {
    pub rules: Vec<RulePlan>,
    pub capacity: u64,
    pub when_full: FullPolicy,
}

#[derive(Clone, Debug)]
pub struct RequestPlan {
    pub method: usize,
    pub path: usize,
    /// (name index, value index), in request order; a name may repeat.
    pub attributes: Vec<(usize, usize)>,
    /// Time since the previous request.
    pub advance: u64,
    pub cost: u64,
    pub peek: bool,
}

/// Which limit an override change names: the `limit`-th limit (modulo) of the `rule`-th
/// limited rule (modulo), or a name the policy does not have.
#[derive(Clone, Copy, Debug)]
pub struct TargetPlan {
    pub rule: usize,
    pub limit: usize,
    pub unknown: Unknown,
}

#[derive(Clone, Copy, Debug)]
pub enum Unknown {
    No,
    Limit,
    Rule,
}

/// One change to one limit of a reloaded rule.
#[derive(Clone, Debug)]
pub enum LimitEdit {
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
pub enum RuleEdit {
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
pub enum TableEdit {
    Same,
    Capacity,
    WhenFull,
}

/// How the next policy derives from the one in force ([`derive`]).
#[derive(Clone, Debug)]
pub struct ReloadPlan {
    /// Each rule's edit (cycled).
    pub rules: Vec<RuleEdit>,
    /// New rules, each at a position (modulo) among the edited ones.
    pub insert: Vec<(usize, RulePlan)>,
    /// Rules rotated left by this (modulo).
    pub rotate: usize,
    pub table: TableEdit,
    /// Give the first limit an invalid override: the reload must be refused.
    pub poison: bool,
}

#[derive(Clone, Debug)]
pub enum Step {
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

pub fn test_plan() -> impl Strategy<Value = TestPlan> {
    let values = || prop::sample::subsequence(vec![0usize, 1, 2], 1..=2);
    prop_oneof![
        Just(TestPlan::Present),
        Just(TestPlan::Absent),
        (0..VALUES.len()).prop_map(TestPlan::Equals),
        values().prop_map(TestPlan::In),
        values().prop_map(TestPlan::NotIn),
    ]
}

pub fn conditions() -> impl Strategy<Value = Vec<(usize, TestPlan)>> {
    prop::collection::vec((0..POLICY_ATTRIBUTES, test_plan()), 0..=2)
}

pub fn algorithm() -> impl Strategy<Value = Algorithm> {
    prop_oneof![
        3 => Just(Algorithm::Gcra),
        3 => Just(Algorithm::FixedWindow),
        2 => Just(Algorithm::SlidingWindowApprox),
        3 => (1..=4u32).prop_map(|sub_windows| Algorithm::SlidingWindowStrict { sub_windows }),
    ]
}

pub fn on_missing() -> impl Strategy<Value = OnMissing> {
    prop_oneof![
        2 => Just(OnMissing::Skip),
        2 => Just(OnMissing::Shared),
        1 => Just(OnMissing::Deny)
    ]
}

pub fn key_plan() -> impl Strategy<Value = Vec<usize>> {
    prop::sample::subsequence((0..POLICY_ATTRIBUTES).collect::<Vec<_>>(), 0..=2).prop_shuffle()
}

pub fn limit_count() -> impl Strategy<Value = u64> {
    prop_oneof![1 => 1..=2u64, 3 => 3..=6u64]
}

/// An override as a spec writes it: a small limit (reached within a few requests), a
/// burst sometimes (kept for GCRA only, [`normalize`]), or unlimited.
pub fn spec_override() -> impl Strategy<Value = OverridePlan> {
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

pub fn spec_overrides() -> impl Strategy<Value = Vec<OverridePlan>> {
    prop_oneof![
        3 => Just(Vec::new()),
        2 => prop::collection::vec(spec_override(), 1..=3),
    ]
}

pub fn limit_plan() -> impl Strategy<Value = LimitPlan> {
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
pub fn rule_plan(max_limits: usize) -> impl Strategy<Value = RulePlan> {
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
pub fn normalize(rules: &mut [RulePlan]) {
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
pub fn policy_plan(max_rules: usize, max_limits: usize) -> impl Strategy<Value = PolicyPlan> {
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

pub fn request_plan() -> impl Strategy<Value = RequestPlan> {
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

pub fn target_plan() -> impl Strategy<Value = TargetPlan> {
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
pub fn api_quota() -> impl Strategy<Value = QuotaPlan> {
    prop_oneof![
        2 => Just(QuotaPlan::Unlimited),
        8 => (
            prop_oneof![12 => 1..=6u64, 3 => 7..=12u64, 1 => Just(0u64)],
            prop::option::weighted(0.15, 0..=8u64),
        )
            .prop_map(|(limit, burst)| QuotaPlan::Limit { limit, burst }),
    ]
}

pub fn override_attribute() -> impl Strategy<Value = usize> {
    prop_oneof![30 => 0..NAMES.len(), 1 => Just(NAMES.len())]
}

pub fn limit_edit() -> impl Strategy<Value = LimitEdit> {
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

pub fn rule_edit() -> impl Strategy<Value = RuleEdit> {
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

pub fn reload_plan() -> impl Strategy<Value = ReloadPlan> {
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
pub struct Mix {
    pub requests: u32,
    pub sets: u32,
    pub removes: u32,
    pub reloads: u32,
}

pub fn step(mix: Mix) -> impl Strategy<Value = Step> {
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
pub fn derive(current: &PolicyPlan, reload: &ReloadPlan) -> PolicyPlan {
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

pub fn rule_name(name: usize) -> String {
    format!("rule-{name}")
}

pub fn limit_name(name: usize) -> String {
    format!("limit-{name}")
}

pub fn description(name: usize) -> String {
    format!("Rule {name} API")
}

pub fn values_of(indices: &[usize]) -> Vec<Vec<u8>> {
    indices.iter().map(|&v| VALUES[v].to_vec()).collect()
}

pub fn quota_of(plan: &LimitPlan) -> Quota {
    let quota = Quota::new(plan.limit, plan.period).unwrap();
    match plan.algorithm {
        Algorithm::Gcra => quota.with_burst(plan.burst).unwrap(),
        _ => quota,
    }
}

pub fn override_of(plan: &OverridePlan) -> Override {
    Override {
        attribute: NAMES[plan.attribute].to_string(),
        value: VALUES[plan.value].to_vec(),
        quota: plan.quota.spec(),
    }
}

pub fn spec_of(plan: &PolicyPlan) -> PolicySpec {
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
