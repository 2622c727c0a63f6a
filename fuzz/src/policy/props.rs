//! The properties: what every decision, error, override change, reload, offender
//! report and metrics export must satisfy on its own, and against the reference
//! bookkeeping of `model`.

use ratecore::policy::{
    Attribute, ConfigError, OffenderStats, Policy, PolicyDecision, OFFENDERS, OFFENDER_KEY_BYTES,
};
use ratecore::CheckError;

use super::model::{self, Denials, Facts, Overrides};
use crate::algorithms::sane;
use crate::render::{header_lines, protocol};

/// What a decision says, to compare two decisions on one request: the real answer
/// (`real`), and with `shadow` what the shadow limits said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    allowed: bool,
    limited: bool,
    decision: ratecore::Decision,
    exempted_by: Option<String>,
    missing: bool,
    deciding: Option<(String, String)>,
    entries: Vec<(String, String, ratecore::Decision)>,
    shadow: Option<Vec<(String, String, ratecore::Decision)>>,
}

pub fn summary(d: &PolicyDecision<'_>, shadow: bool) -> Summary {
    let named = |(l, state): (ratecore::policy::LimitRef<'_>, ratecore::Decision)| {
        (l.rule.to_string(), l.name.to_string(), state)
    };
    Summary {
        allowed: d.allowed(),
        limited: d.limited(),
        decision: *d.decision(),
        exempted_by: d.exempted_by().map(str::to_string),
        missing: d.denied_for_missing_key(),
        deciding: d
            .deciding()
            .map(|l| (l.rule.to_string(), l.name.to_string())),
        entries: d.entries().map(named).collect(),
        shadow: shadow.then(|| d.shadow_entries().map(named).collect()),
    }
}

/// Everything a decision says must hang together.
pub fn consistent(d: &PolicyDecision<'_>, present: &[(&str, &[u8])], now: u64) {
    if d.exempted_by().is_some() {
        assert!(
            !d.limited() && d.shadow_entries().next().is_none(),
            "exempt but limited"
        );
    }
    for (limit, state) in d.entries() {
        assert!(
            !limit.shadow,
            "a shadow limit among the real entries: {limit:?}"
        );
        sane(&state);
    }
    for (limit, state) in d.shadow_entries() {
        assert!(
            limit.shadow,
            "a real limit among the shadow entries: {limit:?}"
        );
        sane(&state);
    }
    match d.shadow_denied() {
        Some((limit, state)) => {
            assert!(!state.allowed, "shadow_denied reports an admission");
            assert!(d.shadow_entries().any(|(l, s)| l == limit && s == state));
        }
        None => assert!(d.shadow_entries().all(|(_, s)| s.allowed)),
    }
    if !d.limited() {
        assert!(d.allowed());
        assert!(!d.denied_for_missing_key());
        assert!(d.entries().next().is_none() && d.deciding().is_none());
        assert_eq!(d.render_headers(0, &mut []), Ok(0));
        return;
    }
    sane(d.decision());
    let deciding = d
        .deciding()
        .expect("a limited decision has a deciding limit");
    assert!(d
        .entries()
        .any(|(l, s)| l == deciding && &s == d.decision()));
    if d.allowed() {
        for (_, state) in d.entries() {
            assert!(state.allowed && state.remaining >= d.decision().remaining);
        }
    } else {
        for (_, state) in d.entries().filter(|(_, s)| !s.allowed) {
            assert!(state.retry_after <= d.decision().retry_after);
        }
    }
    if d.denied_for_missing_key() {
        assert!(!d.allowed());
        assert!(
            deciding
                .key
                .iter()
                .any(|k| !present.iter().any(|(name, _)| name == k)),
            "denied for a missing key, but the request has all of {:?}",
            deciding.key
        );
    }
    let block = protocol(|out| d.render_headers(now, out), 17);
    header_lines(&block);
    if !d.allowed() {
        let _ = d.content_type();
        protocol(|out| d.render_body(out), 9);
    }
}

/// A configuration error names `origin`, says something, and points inside `text` (or
/// nowhere: line and column 0).
pub fn config_error(e: &ConfigError, text: &str, origin: &str) {
    assert_eq!(e.origin, origin);
    assert!(!e.message.is_empty(), "empty message: {e:?}");
    let _ = e.to_string();
    if e.line == 0 {
        assert_eq!(e.column, 0, "a column without a line: {e:?}");
    } else {
        let lines: Vec<&str> = text.split('\n').collect();
        assert!(
            e.line <= lines.len(),
            "line {} of {}: {e:?}",
            e.line,
            lines.len()
        );
        let line = lines[e.line - 1];
        assert!(
            e.column >= 1 && e.column <= line.len() + 1,
            "column {} of a {}-byte line: {e:?}",
            e.column,
            line.len()
        );
    }
}

/// Every limit in a decision runs with the quota its overrides give the request: an
/// unlimited override's client meets no such limit (it is skipped), a limit override
/// reports its own capacity, and otherwise the limit's own. A request lacking a key
/// attribute gets no override (and under `on_missing = "skip"` no entry).
pub fn quotas(
    d: &PolicyDecision<'_>,
    attributes: &[Attribute<'_>],
    facts: &[Facts],
    overrides: &Overrides,
) {
    let entries = d
        .entries()
        .chain(d.shadow_entries().filter(|(_, s)| s.limit != 0));
    for (limit, state) in entries {
        let f = &facts[limit.id];
        assert_eq!((limit.rule, limit.name), (f.rule.as_str(), f.name.as_str()));
        let complete = model::key_parts(f, attributes).iter().all(Option::is_some);
        assert!(
            complete || f.on_missing != ratecore::policy::OnMissing::Skip,
            "{limit:?}: an entry for a request lacking a key attribute under on_missing = \"skip\""
        );
        let keyed = complete || f.on_missing == ratecore::policy::OnMissing::Shared;
        let selected = if keyed {
            overrides.select(&f.rule, &f.name, attributes)
        } else {
            None
        };
        let expected = match selected {
            Some(ratecore::policy::OverrideQuota::Unlimited) => {
                panic!("{limit:?}: an entry for a client with an unlimited override: {state:?}")
            }
            Some(ratecore::policy::OverrideQuota::Limit { limit, burst }) => {
                model::override_capacity(f.algorithm, limit, burst)
            }
            None => model::capacity(f.algorithm, &f.quota),
        };
        assert_eq!(
            state.limit, expected,
            "{limit:?} (override {selected:?}) reports another capacity"
        );
    }
}

/// The repeat-offender report: at most [`OFFENDERS`] keys, most denials first, each
/// denied at least twice, keys at most [`OFFENDER_KEY_BYTES`] long (cut ones exactly
/// that long), each a real limit's, nothing unrecorded (one thread), and no key with
/// more denials than the checks made. With at most 4 distinct keys denied (no candidate
/// can be pushed out then) the report is exact: every key denied at least twice, with
/// its count.
pub fn offenders(policy: &Policy, facts: &[Facts], denials: &Denials) {
    let (list, stats) = policy.offenders();
    assert!(list.len() <= OFFENDERS, "{} offenders", list.len());
    assert_eq!(stats.unrecorded, 0, "a denial unrecorded with one thread");
    assert!(
        list.windows(2).all(|w| w[0].denials >= w[1].denials),
        "offenders not sorted by denials: {list:?}"
    );
    for o in &list {
        assert!(o.denials >= 2, "an offender denied once: {o:?}");
        assert!(o.key.len() <= OFFENDER_KEY_BYTES, "{o:?}");
        if o.truncated {
            assert_eq!(o.key.len(), OFFENDER_KEY_BYTES, "{o:?}");
        }
        let (id, f) = model::find(facts, &o.rule, &o.limit)
            .unwrap_or_else(|| panic!("an offender of no limit: {o:?}"));
        assert!(!f.shadow, "a shadow limit's offender: {o:?}");
        let most = denials
            .counts
            .iter()
            .filter(|((limit, parts), _)| {
                *limit == id && model::shown(parts) == (o.key.clone(), o.truncated)
            })
            .map(|(_, n)| *n)
            .max();
        assert!(
            most.is_some_and(|n| n >= o.denials),
            "{o:?}: the checks denied that key {most:?} times"
        );
    }
    if denials.counts.len() <= 4 {
        assert_eq!(stats.evicted, 0);
        let mut got: Vec<(String, String, Vec<u8>, bool, u64)> = list
            .into_iter()
            .map(|o| (o.rule, o.limit, o.key, o.truncated, o.denials))
            .collect();
        got.sort();
        let mut want: Vec<(String, String, Vec<u8>, bool, u64)> = denials
            .counts
            .iter()
            .filter(|(_, n)| *n >= 2)
            .map(|((id, parts), n)| {
                let (key, cut) = model::shown(parts);
                (
                    facts[*id].rule.clone(),
                    facts[*id].name.clone(),
                    key,
                    cut,
                    *n,
                )
            })
            .collect();
        want.sort();
        assert_eq!(got, want, "the offender report of {:?}", denials.counts);
    }
}

/// A Prometheus label value: `\`, `"` and newline escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The metrics export: the exact buffer protocol (too small: the exact length needed;
/// large enough: all of it, nothing past it), starting `# HELP`, and exactly the text
/// the counters call for, written independently here; `view()` shows the same limits,
/// counters, rules and export as the policy.
pub fn metrics(policy: &Policy, other_len: usize) {
    let text = protocol(|out| policy.render_metrics(out), other_len);
    let text = String::from_utf8(text).expect("the metrics export is UTF-8");
    assert!(text.starts_with("# HELP"), "{text:?}");
    let mut want = String::from("# HELP ratecore_policy_requests_total Requests each policy limit applied to, by what the limit did.\n# TYPE ratecore_policy_requests_total counter\n");
    let all: Vec<_> = policy.metrics().collect();
    for (limit, m) in &all {
        for (outcome, value) in [
            ("allowed", m.allowed),
            ("denied", m.denied),
            ("shadow_denied", m.shadow_denied),
            ("skipped", m.skipped),
        ] {
            want.push_str(&format!(
                "ratecore_policy_requests_total{{rule=\"{}\",limit=\"{}\",shadow=\"{}\",outcome=\"{outcome}\"}} {value}\n",
                label(&limit.rule),
                label(&limit.name),
                limit.shadow
            ));
        }
    }
    assert_eq!(text, want, "the metrics export");
    let view = policy.view();
    let seen: Vec<_> = view
        .metrics()
        .map(|(limit, m)| (ratecore::policy::LimitInfo::from(limit), m))
        .collect();
    assert_eq!(seen, all, "view().metrics() and metrics() differ");
    assert_eq!(view.rules().count(), policy.rules().count());
    assert!(view.attribute_names().eq(policy.attribute_names()));
    assert_eq!(view.response(), &policy.response());
    assert_eq!(view.memory_bytes(), policy.memory_bytes());
    let mut buffer = vec![0u8; text.len()];
    assert_eq!(view.render_metrics(&mut buffer), Ok(text.len()));
    assert_eq!(buffer, text.as_bytes());
}

/// Everything a policy answers with, to compare before and after a reload.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Peeks of the probe requests.
    pub peeks: Vec<Result<Summary, CheckError>>,
    /// `overrides()`, sorted.
    pub overrides: Vec<(String, String, ratecore::policy::Override)>,
    /// `metrics()`.
    pub metrics: Vec<(ratecore::policy::LimitInfo, ratecore::policy::LimitMetrics)>,
    /// `rules()`.
    pub rules: Vec<ratecore::policy::Rule>,
    /// `attribute_names()`.
    pub attributes: Vec<String>,
    /// `response()`.
    pub response: ratecore::policy::ResponseSpec,
    /// `offenders()`.
    pub offenders: (Vec<ratecore::policy::Offender>, OffenderStats),
    /// `memory_bytes()`.
    pub memory: usize,
}

/// What `policy` answers now (`probes`: requests to peek, with their costs).
pub fn snapshot(
    policy: &Policy,
    probes: &[(ratecore::policy::Request<'_>, u64)],
    now: u64,
) -> Snapshot {
    let mut overrides = policy.overrides();
    overrides.sort_by_key(model::order);
    Snapshot {
        peeks: probes
            .iter()
            .map(|(r, cost)| policy.peek(r, now, *cost).map(|d| summary(&d, true)))
            .collect(),
        overrides,
        metrics: policy.metrics().collect(),
        rules: policy.rules().collect(),
        attributes: policy.attribute_names().collect(),
        response: policy.response(),
        offenders: policy.offenders(),
        memory: policy.memory_bytes(),
    }
}
