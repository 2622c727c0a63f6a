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
#[path = "policy_model/plans.rs"]
mod plans;
#[path = "policy_model/reference.rs"]
mod reference;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed, TestCaseError};
use ratecore::policy::{
    Attribute, LimitMetrics, LimitRef, Override, OverrideQuota, Policy, PolicyDecision,
    PolicyError, Request, Route,
};
use ratecore::Decision;

use plans::{
    derive, policy_plan, rule_name, spec_of, step, Mix, PolicyPlan, RequestPlan, Step, BAD_NAME,
    MAX_RULE_LIMITS, METHODS, NAMES, PATHS, VALUES,
};
use reference::{listed, route_matches, same_error, Listed, PolicyModel, RequestModel, Verdict};

/// `entries` by limit id, each limit also pushed onto `limits`.
fn ids<'p>(
    entries: impl Iterator<Item = (LimitRef<'p>, Decision)>,
    limits: &mut Vec<LimitRef<'p>>,
) -> Vec<(usize, Decision)> {
    entries
        .map(|(l, s)| {
            limits.push(l);
            (l.id, s)
        })
        .collect()
}

/// What the policy answered, as plain data; every limit reference checked against the
/// model's description of that limit.
fn observe(model: &PolicyModel, d: &PolicyDecision<'_>) -> Result<Verdict, TestCaseError> {
    let mut limits: Vec<LimitRef<'_>> = Vec::new();
    let real = ids(d.entries(), &mut limits);
    let shadow = ids(d.shadow_entries(), &mut limits);
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
