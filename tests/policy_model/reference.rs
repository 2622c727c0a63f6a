//! The reference model of a policy: deliberately naive, re-deriving every decision from
//! the rules as written (the semantics it follows are listed in `tests/policy_model.rs`).

use std::collections::HashMap;

use proptest::test_runner::TestCaseError;
use proptest::{prop_assert, prop_assert_eq};
use ratecore::policy::{
    LimitMetrics, LimitRef, OnMissing, Override, OverrideQuota, PolicyError, ReloadReport,
};
use ratecore::{Algorithm, CheckError, Decision, Quota, NEVER};

use crate::model::{expected_quota, AnyModel, Model, QuotaParams};
use crate::plans::{
    description, limit_name, quota_of, rule_name, PolicyPlan, QuotaPlan, TargetPlan, TestPlan,
    Unknown, NAMES, OVERRIDES_BEFORE_MISSING_KEY, ROUTES, UNLIMITED, VALUES,
};

/// A route template matched naively: split both sides and walk the segments.
pub fn route_matches(template: &str, method: &str, path: &str) -> bool {
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
pub type Identity = (
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
pub struct LimitModel {
    pub rule: usize,
    pub name: String,
    pub key: Vec<usize>,
    pub on_missing: OnMissing,
    pub algorithm: Algorithm,
    pub quota: Quota,
    pub params: QuotaParams,
    pub shadow: bool,
}

/// The most one request may cost on `params`, and what decisions report as `limit`.
pub fn capacity_of(algorithm: Algorithm, params: &QuotaParams) -> u64 {
    match algorithm {
        Algorithm::Gcra => params.burst,
        _ => params.limit,
    }
}

impl LimitModel {
    /// The documented denial of a request lacking a key attribute under
    /// `on_missing = "deny"`, on quota `params`.
    pub fn missing_denial(&self, params: &QuotaParams) -> Decision {
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
    pub fn override_params(&self, quota: QuotaPlan) -> Result<Option<QuotaParams>, ()> {
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
pub type ValueQuota = (Vec<u8>, QuotaPlan);

/// One limit's overrides: by attribute name, in the order the attributes first appeared
/// (an attribute whose last override is removed leaves the order), each with its
/// values' quotas.
#[derive(Clone, Debug, Default)]
pub struct OverridesModel {
    pub by_attribute: Vec<(String, Vec<ValueQuota>)>,
}

impl OverridesModel {
    pub fn set(&mut self, attribute: &str, value: &[u8], quota: QuotaPlan) {
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

    pub fn remove(&mut self, attribute: &str, value: &[u8]) -> bool {
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
    pub fn select(&self, request: &RequestModel<'_>) -> Option<QuotaPlan> {
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
pub struct RuleModel {
    pub name: String,
    pub description: String,
    pub route: Option<&'static str>,
    pub conditions: Vec<(usize, TestPlan)>,
    pub unlimited: bool,
    pub limits: Vec<usize>,
}

/// A request as the model sees it.
pub struct RequestModel<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub attributes: &'a [(usize, usize)],
}

impl RequestModel<'_> {
    /// The value of attribute `name`: its first occurrence.
    pub fn value(&self, name: usize) -> Option<&'static [u8]> {
        self.attributes
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, v)| VALUES[v])
    }

    pub fn value_named(&self, name: &str) -> Option<&'static [u8]> {
        self.value(NAMES.iter().position(|n| *n == name)?)
    }
}

/// A limit's key: one part per key attribute, `None` for an absent one.
pub type Key = Vec<Option<Vec<u8>>>;

/// How an applicable limit meets a request.
#[derive(Clone, Debug)]
pub enum Meets {
    /// With its key, on the quota the request runs on there.
    Keyed(Key, QuotaParams),
    /// A key attribute is missing and the limit denies such requests (on the quota its
    /// denial reports).
    Missing(QuotaParams),
}

/// One limit's line in an expected decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Line {
    pub id: usize,
    pub state: Decision,
    pub missing: bool,
}

impl Line {
    /// Member `id`'s line, showing `state`.
    fn new(id: usize, meets: &Meets, state: Decision) -> Self {
        let missing = matches!(meets, Meets::Missing(_));
        Self { id, state, missing }
    }
}

/// Everything a decision says, as plain data (the model's expectation, or what the
/// policy answered).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    pub decision: Decision,
    pub limited: bool,
    /// (limit id, state), in policy order.
    pub real: Vec<(usize, Decision)>,
    pub deciding: Option<usize>,
    pub shadow: Vec<(usize, Decision)>,
    pub shadow_denied: Option<(usize, Decision)>,
    pub denied_for_missing_key: bool,
    pub exempted_by: Option<String>,
}

/// An override in force as [`Policy::overrides`] lists it, in a sortable form: (rule,
/// limit, attribute, value, `None` for unlimited or `(limit, burst)`).
pub type Listed = (String, String, String, Vec<u8>, Option<(u64, Option<u64>)>);

pub fn listed(rule: &str, limit: &str, o: &Override) -> Listed {
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

pub struct PolicyModel {
    pub plan: PolicyPlan,
    pub rules: Vec<RuleModel>,
    pub limits: Vec<LimitModel>,
    pub states: HashMap<(usize, Key), AnyModel>,
    pub metrics: Vec<LimitMetrics>,
    /// Per limit id.
    pub overrides: Vec<OverridesModel>,
}

/// The line that decides among `lines` ("Which limit decides"): on a denial, the denying
/// line with the latest `retry_after`; on an admission, the fewest `remaining`, then the
/// longest `reset_after`; either way the first such line in policy order.
pub fn decisive(lines: &[Line]) -> Option<usize> {
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
pub fn override_error(limit: &LimitModel, rule: &RuleModel) -> PolicyError {
    PolicyError::Override {
        rule: rule.name.clone(),
        limit: limit.name.clone(),
        message: String::new(),
    }
}

/// Whether the policy's error is the one expected (an override error's message aside).
pub fn same_error(got: &PolicyError, expected: &PolicyError) -> bool {
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
    pub fn new(plan: &PolicyPlan) -> Self {
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

    pub fn identity(&self, id: usize) -> Identity {
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
    pub fn groups(&self, rule: &RuleModel) -> Vec<Vec<usize>> {
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
    pub fn listed(&self) -> Vec<Listed> {
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
    pub fn target(&self, target: &TargetPlan) -> (String, String) {
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

    pub fn find(&self, rule: &str, limit: &str) -> Result<usize, PolicyError> {
        self.limits
            .iter()
            .position(|l| l.name == limit && self.rules[l.rule].name == rule)
            .ok_or_else(|| PolicyError::UnknownLimit {
                rule: rule.to_string(),
                limit: limit.to_string(),
            })
    }

    pub fn set_override(
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

    pub fn remove_override(
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
    pub fn reload(&mut self, next: &PolicyPlan) -> ReloadReport {
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
        let mut overrides_dropped = 0;
        for listed in old.listed() {
            if !now_in_force.contains(&listed) {
                overrides_dropped += 1;
            }
        }
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

    pub fn applies(rule: &RuleModel, request: &RequestModel<'_>) -> bool {
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
    pub fn state(&mut self, id: usize, key: &Key, params: QuotaParams) -> &mut AnyModel {
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
    pub fn all_or_nothing(
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
                Line::new(*id, meets, state)
            })
            .collect()
    }

    /// The shadow set's lines when a cost some shadow limit can never fit: that limit's
    /// denial forever (never an error), and nothing charged. `None`: every shadow limit
    /// can fit the cost, and the set is [`Self::all_or_nothing`].
    pub fn shadow_never_fits(
        &mut self,
        set: &[(usize, Meets)],
        now: u64,
        cost: u64,
    ) -> Option<Vec<Line>> {
        let too_big = set.iter().any(|(id, meets)| match meets {
            Meets::Keyed(_, params) => cost > capacity_of(self.limits[*id].algorithm, params),
            Meets::Missing(_) => false,
        });
        if !too_big {
            return None;
        }
        let lines = set
            .iter()
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
                Line::new(*id, meets, state)
            })
            .collect();
        Some(lines)
    }

    /// The documented answer to `request` at `now` with `cost`; `commit`: a check, else a
    /// peek. An error: every error the policy may return (one per limit the cost can
    /// never fit).
    pub fn run(
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
        let shadow_lines = match self.shadow_never_fits(&shadow, now, cost) {
            Some(lines) => lines,
            None => self.all_or_nothing(&shadow, now, cost, commit && allowed),
        };
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
    pub fn describes(&self, limit: &LimitRef<'_>) -> Result<(), TestCaseError> {
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
