//! The driver: builds the input's policy, runs its operations on it and checks the
//! properties of `props` after each, keeping the reference bookkeeping of `model` in
//! step (overrides in force, denials per key, counters since the version was built).

use ratecore::policy::{
    parse_duration, Attribute, LimitInfo, LimitMetrics, Policy, PolicyError, PolicySpec, Request,
    Route,
};
use ratecore::CheckError;

use super::model::{self, Denials, Expect, Facts, Overrides};
use super::ops::{self, InForce, Op, Reload, RequestT};
use super::props::{self, summary};
use super::{table_bytes, PolicyCase, MAX_OPS, MAX_RELOADS, MAX_TABLE_BYTES, START};

/// The attributes a policy sees: the first value of each name, by name.
fn effective<'v>(attributes: &[Attribute<'v>]) -> Vec<(&'v str, &'v [u8])> {
    let mut seen: Vec<(&str, &[u8])> = Vec::new();
    for a in attributes {
        if !seen.iter().any(|(name, _)| *name == a.name) {
            seen.push((a.name, a.value));
        }
    }
    seen.sort_unstable();
    seen
}

/// The specification of `text` without its shadow limits (rules left with none
/// dropped), and whether it had any.
fn spec_without_shadow(text: &str) -> (PolicySpec, bool) {
    let mut spec = PolicySpec::from_toml_str(text, "fuzz.toml").expect("it built once");
    let had = spec.rules.iter().flat_map(|r| &r.limits).any(|l| l.shadow);
    for rule in &mut spec.rules {
        rule.limits.retain(|l| !l.shadow);
    }
    spec.rules.retain(|r| r.unlimited || !r.limits.is_empty());
    (spec, had)
}

/// The policy of `text` without its shadow limits, if it has any.
fn without_shadow(text: &str) -> Option<Policy> {
    let (spec, had) = spec_without_shadow(text);
    had.then(|| Policy::new(spec).expect("the policy without its shadow limits builds"))
}

/// Bytes the overrides in force may take besides the tables (their map slots, a few
/// hundred bytes each, and their values).
fn override_allowance(policy: &Policy) -> u128 {
    policy
        .overrides()
        .iter()
        .map(|(_, _, o)| 4096 + o.value.len() as u128)
        .sum()
}

struct Driver<'a> {
    policy: Policy,
    in_force: InForce<'a>,
    /// The same policy without its shadow limits (and the same overrides on its real
    /// limits), fed the same requests: it must decide alike.
    plain: Option<Policy>,
    facts: Vec<Facts>,
    overrides: Overrides,
    denials: Denials,
    /// Distinct attribute sets checked so far (while at most 8, no table can be full).
    seen: Vec<Vec<(String, Vec<u8>)>>,
    /// Since the version in force was built: its counters then, and what the checks'
    /// decisions say each limit did (allowed, denied, shadow-denied), and how many.
    baseline: Vec<LimitMetrics>,
    expected: Vec<[u64; 3]>,
    checks: u64,
    now: u64,
    /// Requests peeked before and after each reload.
    probes: Vec<RequestT<'a>>,
    reloads: usize,
}

/// Runs one input.
pub fn run(case: &PolicyCase<'_>) {
    let text = case.text();
    // Side surfaces that take arbitrary text.
    if let Ok(route) = Route::parse(&text) {
        let _ = route.matches("GET", &text);
        let _ = route.template();
    }
    if let Ok(nanos) = parse_duration(&text) {
        assert!(nanos > 0, "a zero duration parsed from {text:?}");
    }
    let budget = table_bytes(&text);
    if budget > MAX_TABLE_BYTES {
        return;
    }
    let policy = match Policy::from_toml_str(&text, "fuzz.toml") {
        Err(e) => {
            props::config_error(&e, &text, "fuzz.toml");
            return;
        }
        Ok(policy) => policy,
    };
    let ops = case.ops();
    let probes = ops
        .iter()
        .filter_map(|op| match op {
            Op::Request(r) | Op::Repeat { request: r, .. } => Some(r.clone()),
            _ => None,
        })
        .take(4)
        .collect();
    let mut driver = Driver::new(policy, InForce::new(text, case.source().cloned()), probes);
    assert!(
        driver.policy.memory_bytes() as u128 <= budget + override_allowance(&driver.policy),
        "{} bytes of tables, above the estimate {budget}",
        driver.policy.memory_bytes()
    );
    for op in ops.iter().take(MAX_OPS) {
        driver.op(op);
    }
    driver.finish();
}

impl<'a> Driver<'a> {
    fn new(policy: Policy, in_force: InForce<'a>, probes: Vec<RequestT<'a>>) -> Self {
        let _ = policy.rules().count();
        let _ = policy.attribute_names().count();
        let limits = policy.metrics().count();
        assert_eq!(policy.memory_bytes() > 0, limits > 0);
        let plain = without_shadow(&in_force.text);
        let driver = Self {
            facts: model::facts(&policy),
            overrides: Overrides::of(&policy),
            baseline: policy.metrics().map(|(_, m)| m).collect(),
            expected: vec![[0; 3]; limits],
            policy,
            in_force,
            plain,
            denials: Denials::default(),
            seen: Vec::new(),
            checks: 0,
            now: START,
            probes,
            reloads: 0,
        };
        driver.same_overrides();
        driver
    }

    fn op(&mut self, op: &Op<'a>) {
        match op {
            Op::Request(r) => self.request(r, true, &[], false),
            Op::Repeat { request, times } => {
                for i in 0..RequestT::repeats(*times) {
                    self.request(request, i == 0, &[], false);
                }
            }
            Op::Overridden {
                request,
                picks,
                first,
            } => {
                let extra = ops::picked(&self.overrides.list(), picks);
                self.request(request, true, &extra, *first);
            }
            Op::SetOverride {
                target,
                attribute,
                value,
                quota,
            } => {
                let (rule, limit) = self.in_force.target(target);
                self.set_override(&rule, &limit, attribute.name(), value.bytes(), quota.get());
            }
            Op::RemoveOverride {
                target,
                attribute,
                value,
            } => {
                let (rule, limit) = self.in_force.target(target);
                self.remove_override(&rule, &limit, attribute.name(), value.bytes());
            }
            Op::Reload(reload) => self.reload(reload),
            Op::Offenders => props::offenders(&self.policy, &self.facts, &self.denials),
            Op::Metrics(len) => {
                self.counters();
                props::metrics(&self.policy, usize::from(*len));
            }
        }
    }

    fn finish(&self) {
        self.counters();
        props::offenders(&self.policy, &self.facts, &self.denials);
        self.same_overrides();
    }

    /// A peek, then a check (after the request's time step if `step`), of `r` carrying
    /// `extra` attributes too (before its own if `first`).
    fn request(&mut self, r: &RequestT<'a>, step: bool, extra: &[(String, Vec<u8>)], first: bool) {
        if step {
            self.now = self.now.saturating_add(r.step.into());
        }
        let now = self.now;
        let attributes = ops::with_extra(r.attributes(), extra, first);
        let request = Request::new(r.method(), r.path, &attributes);
        let present = effective(&attributes);
        let owned: Vec<(String, Vec<u8>)> = present
            .iter()
            .map(|(n, v)| (String::from(*n), v.to_vec()))
            .collect();
        if !self.seen.contains(&owned) {
            self.seen.push(owned);
        }
        // While at most 8 distinct attribute sets have been seen no table can be full,
        // so nothing depends on a table's random seed: peeks and the policy without
        // shadow limits must decide exactly as the checks do.
        let exact = self.seen.len() <= 8;
        let cost = r.cost();
        self.checks += 1;
        let peeked = self.policy.peek(&request, now, cost);
        let checked = self.policy.check(&request, now, cost);
        let (peeked, checked) = match (peeked, checked) {
            (Err(e), Err(f)) => {
                assert_eq!(e, f);
                let CheckError::CostExceedsLimit { cost: c, limit } = e else {
                    panic!("unexpected error {e:?}");
                };
                assert!(c == cost && cost > limit);
                if let Some(plain) = &self.plain {
                    // A cost no shadow limit fits is no error: only real limits err.
                    assert_eq!(plain.peek(&request, now, cost).err(), Some(e));
                }
                return;
            }
            (Ok(p), Ok(c)) => (p, c),
            (p, c) => panic!("peek {:?} but check {:?}", p.err(), c.err()),
        };
        props::consistent(&peeked, &present, now);
        props::consistent(&checked, &present, now);
        props::quotas(&peeked, &attributes, &self.facts, &self.overrides);
        props::quotas(&checked, &attributes, &self.facts, &self.overrides);
        for (limit, state) in checked.entries().chain(checked.shadow_entries()) {
            let column = match (state.allowed, limit.shadow) {
                (true, _) => 0,
                (false, false) => 1,
                (false, true) => 2,
            };
            self.expected[limit.id][column] += 1;
        }
        // The deciding limit's key, unless it denied for a missing attribute, is what
        // the offender report counts.
        if !checked.allowed() && !checked.denied_for_missing_key() {
            if let Some(deciding) = checked.deciding() {
                let parts = model::key_parts(&self.facts[deciding.id], &attributes);
                self.denials.record(deciding.id, parts);
            }
        }
        if exact {
            assert_eq!(
                summary(&peeked, true),
                summary(&checked, true),
                "a peek and the check after it disagree"
            );
        }
        if let (true, Some(plain)) = (exact, &self.plain) {
            let alone = plain
                .check(&request, now, cost)
                .expect("the real limits fit the cost");
            assert_eq!(
                summary(&alone, false),
                summary(&checked, false),
                "shadow limits changed the real answer"
            );
        }
    }

    /// `overrides()` lists exactly the overrides the model holds.
    fn same_overrides(&self) {
        let mut listed = self.policy.overrides();
        listed.sort_by_key(model::order);
        assert_eq!(listed, self.overrides.list(), "overrides()");
    }

    /// The limit `(rule, limit)` if it is a real one (the policy without shadow limits
    /// has it too).
    fn real(&self, rule: &str, limit: &str) -> bool {
        model::find(&self.facts, rule, limit).is_some_and(|(_, f)| !f.shadow)
    }

    fn set_override(
        &mut self,
        rule: &str,
        limit: &str,
        attribute: &str,
        value: &[u8],
        quota: ratecore::policy::OverrideQuota,
    ) {
        let expect = model::expect_set(&self.facts, rule, limit, attribute, quota);
        let result = self
            .policy
            .set_override(rule, limit, attribute, value, quota);
        let as_expected = match (&expect, &result) {
            (Expect::Set, Ok(())) => true,
            (Expect::Unknown, Err(PolicyError::UnknownLimit { rule: r, limit: l })) => {
                r == rule && l == limit
            }
            (Expect::Attribute, Err(PolicyError::AttributeName(a))) => a == attribute,
            (
                Expect::Quota,
                Err(PolicyError::Override {
                    rule: r,
                    limit: l,
                    message,
                }),
            ) => r == rule && l == limit && !message.is_empty(),
            _ => false,
        };
        assert!(
            as_expected,
            "set_override({rule:?}, {limit:?}, {attribute:?}, {value:?}, {quota:?}): expected {expect:?}, got {result:?}"
        );
        if let Err(e) = &result {
            let _ = e.to_string();
        } else {
            self.overrides.set(rule, limit, attribute, value, quota);
        }
        if self.real(rule, limit) {
            if let Some(plain) = &self.plain {
                let mirrored = plain.set_override(rule, limit, attribute, value, quota);
                assert_eq!(mirrored, result, "the policy without shadow limits differs");
            }
        }
        self.same_overrides();
    }

    fn remove_override(&mut self, rule: &str, limit: &str, attribute: &str, value: &[u8]) {
        let result = self.policy.remove_override(rule, limit, attribute, value);
        if model::find(&self.facts, rule, limit).is_some() {
            let had = self.overrides.remove(rule, limit, attribute, value);
            assert_eq!(
                result,
                Ok(had),
                "remove_override({rule:?}, {limit:?}, {attribute:?}, {value:?})"
            );
        } else {
            assert!(
                matches!(&result, Err(PolicyError::UnknownLimit { rule: r, limit: l }) if r == rule && l == limit),
                "remove_override of an unknown limit: {result:?}"
            );
        }
        if self.real(rule, limit) {
            if let Some(plain) = &self.plain {
                let mirrored = plain.remove_override(rule, limit, attribute, value);
                assert_eq!(mirrored, result, "the policy without shadow limits differs");
            }
        }
        self.same_overrides();
    }

    /// The counters since the version in force was built are what its checks' decisions
    /// said.
    fn counters(&self) {
        for (limit, m) in self.policy.metrics() {
            let base = self.baseline[limit.id];
            let since = |now: u64, then: u64| {
                now.checked_sub(then).unwrap_or_else(|| {
                    panic!("{limit:?}: a counter went down: {m:?} after {base:?}")
                })
            };
            let delta = [
                since(m.allowed, base.allowed),
                since(m.denied, base.denied),
                since(m.shadow_denied, base.shadow_denied),
            ];
            assert_eq!(delta, self.expected[limit.id], "metrics of {limit:?}");
            assert!(
                since(m.checked(), base.checked()) <= self.checks,
                "{limit:?}: {m:?} after {base:?}, {} checks",
                self.checks
            );
        }
    }

    fn reload(&mut self, reload: &Reload<'a>) {
        if self.reloads >= MAX_RELOADS {
            return;
        }
        let (text, source) = self.in_force.reload(reload);
        let budget = table_bytes(&text);
        if budget > MAX_TABLE_BYTES {
            return;
        }
        self.reloads += 1;
        self.counters();
        let attributes: Vec<Vec<Attribute<'a>>> =
            self.probes.iter().map(RequestT::attributes).collect();
        let mut probes: Vec<(Request<'_>, u64)> = self
            .probes
            .iter()
            .zip(&attributes)
            .map(|(p, a)| (Request::new(p.method(), p.path, a), p.cost()))
            .collect();
        probes.push((Request::new("GET", "/", &[]), 1));
        let before = props::snapshot(&self.policy, &probes, self.now);
        let old_view = self.policy.view();
        let old_overrides = self.overrides.clone();
        let old_limits = self.facts.len();
        let fresh = Policy::from_toml_str(&text, "reload.toml");
        let result = self.policy.reload_toml_str(&text, "reload.toml");
        let (report, fresh) = match (result, fresh) {
            (Err(e), Err(f)) => {
                assert_eq!(
                    e, f,
                    "a reload and a fresh build reject the text differently"
                );
                props::config_error(&e, &text, "reload.toml");
                let after = props::snapshot(&self.policy, &probes, self.now);
                assert_eq!(before, after, "a rejected reload changed the policy");
                return;
            }
            (Ok(report), Ok(fresh)) => (report, fresh),
            (result, fresh) => panic!(
                "the reload says {:?}, a fresh build {:?}",
                result.err(),
                fresh.err()
            ),
        };
        let facts = model::facts(&self.policy);
        let next = InForce::new(text, source);
        let same_settings = next.settings == self.in_force.settings;
        assert_eq!(
            (report.kept, report.fresh, report.dropped),
            model::report(&self.facts, &facts, same_settings),
            "{report:?}"
        );
        // The overrides are the file's now; those in force before and not now count
        // as dropped.
        let overrides = Overrides::of(&self.policy);
        let now_in_force = overrides.list();
        let dropped = old_overrides.dropped_by(&now_in_force);
        assert_eq!(report.overrides_dropped, dropped, "{report:?}");
        // The same limits, rules and overrides as a fresh build of the text.
        let infos: Vec<LimitInfo> = self.policy.metrics().map(|(l, _)| l).collect();
        assert!(fresh.metrics().map(|(l, _)| l).eq(infos.iter().cloned()));
        assert!(fresh.rules().eq(self.policy.rules()));
        let mut fresh_overrides = fresh.overrides();
        fresh_overrides.sort_by_key(model::order);
        assert_eq!(fresh_overrides, now_in_force);
        drop(fresh);
        // An identical limit keeps its counters; any other starts at zero.
        for (limit, m) in self.policy.metrics() {
            let f = &facts[limit.id];
            let then = model::carried(&self.facts, f).map_or(LimitMetrics::default(), |old| {
                before
                    .metrics
                    .iter()
                    .find(|(l, _)| l.rule == old.rule && l.name == old.name)
                    .map(|(_, m)| *m)
                    .expect("the old version's limit")
            });
            assert_eq!(m, then, "{limit:?} after the reload");
        }
        // The offender report follows the limits the reload left unchanged (their denials
        // carry over, under their ids in the new version); changed and removed limits'
        // are dropped.
        let carried_denials = Denials {
            counts: self
                .denials
                .counts
                .iter()
                .filter_map(|((id, parts), n)| {
                    let old = self.facts.get(*id)?;
                    let new_id = facts
                        .iter()
                        .position(|f| model::carried(std::slice::from_ref(old), f).is_some())?;
                    Some(((new_id, parts.clone()), *n))
                })
                .collect(),
        };
        props::offenders(&self.policy, &facts, &carried_denials);
        // A view taken before still shows the old version.
        let old: Vec<_> = old_view
            .metrics()
            .map(|(l, m)| (LimitInfo::from(l), m))
            .collect();
        assert_eq!(old, before.metrics, "a view changed with a reload");
        assert!(old_view.rules().eq(before.rules.iter()));
        drop(old_view);
        if next.text == self.in_force.text {
            assert_eq!(
                (report.kept, report.fresh, report.dropped),
                (old_limits, 0, 0),
                "the same text reloaded: {report:?}"
            );
            let metrics: Vec<_> = self.policy.metrics().collect();
            assert_eq!(metrics, before.metrics, "the same text reloaded");
            if overrides == old_overrides {
                let after = props::snapshot(&self.policy, &probes, self.now);
                assert_eq!(
                    after.peeks, before.peeks,
                    "the same text and overrides reloaded decide otherwise"
                );
            }
        }
        assert!(
            self.policy.memory_bytes() as u128 <= budget + override_allowance(&self.policy),
            "{} bytes of tables, above the estimate {budget}",
            self.policy.memory_bytes()
        );
        // The policy without shadow limits follows: its real limits are kept exactly when
        // the reloaded policy's are. Without one before, it starts only where nothing
        // was kept.
        self.plain = match self.plain.take() {
            Some(plain) => {
                plain
                    .reload(spec_without_shadow(&next.text).0)
                    .expect("the policy without its shadow limits reloads");
                Some(plain)
            }
            None if report.kept == 0 => without_shadow(&next.text),
            None => None,
        };
        self.baseline = self.policy.metrics().map(|(_, m)| m).collect();
        self.expected = vec![[0; 3]; facts.len()];
        self.checks = 0;
        self.facts = facts;
        self.overrides = overrides;
        self.denials = carried_denials;
        self.in_force = next;
        self.same_overrides();
    }
}
