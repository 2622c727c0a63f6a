//! Reference bookkeeping the properties compare against: every limit's facts, the
//! overrides in force (kept as the engine documents it: per limit, attributes in
//! first-appearance order, the first that matches applies), what a run-time override
//! change must answer, and the denials the checks made (for the offender report).

use std::collections::BTreeMap;

use ratecore::policy::{Attribute, OnMissing, Override, OverrideQuota, Policy, OFFENDER_KEY_BYTES};
use ratecore::{Algorithm, Quota};

/// One limit of the version in force, in policy order.
#[derive(Clone, Debug)]
pub struct Facts {
    /// Its rule.
    pub rule: String,
    /// Its name.
    pub name: String,
    /// The attributes it keys on.
    pub key: Vec<String>,
    /// What a request lacking one gets.
    pub on_missing: OnMissing,
    /// The algorithm.
    pub algorithm: Algorithm,
    /// The quota.
    pub quota: Quota,
    /// Shadow or real.
    pub shadow: bool,
}

/// Every limit of the version in force, in policy order (ids are indices).
#[must_use]
pub fn facts(policy: &Policy) -> Vec<Facts> {
    policy
        .rules()
        .flat_map(|rule| {
            rule.limits
                .into_iter()
                .map(|l| Facts {
                    rule: rule.name.clone(),
                    name: l.name,
                    key: l.key,
                    on_missing: l.on_missing,
                    algorithm: l.algorithm,
                    quota: l.quota,
                    shadow: l.shadow,
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// What decisions report as the limit of `algorithm` on `quota`: the burst for GCRA.
#[must_use]
pub fn capacity(algorithm: Algorithm, quota: &Quota) -> u64 {
    match algorithm {
        Algorithm::Gcra => quota.burst(),
        _ => quota.limit(),
    }
}

/// The same for an override: its burst (by default its limit) for GCRA.
#[must_use]
pub fn override_capacity(algorithm: Algorithm, limit: u64, burst: Option<u64>) -> u64 {
    match algorithm {
        Algorithm::Gcra => burst.unwrap_or(limit),
        _ => limit,
    }
}

fn bits_for(n: u64) -> u32 {
    u64::BITS - n.leading_zeros()
}

/// Whether an override of `limit` (and `burst`) is valid for a limit of `algorithm`
/// and `period`: a valid quota of that period, a burst only for GCRA, and a count that
/// fits the room a window's state word leaves beside its window numbers (all of it is
/// the limit's: its table is built with counters as wide as the window numbers allow),
/// or a strict window's 32-bit cells.
#[must_use]
pub fn fits(algorithm: Algorithm, period: u64, limit: u64, burst: Option<u64>) -> bool {
    let Ok(quota) = Quota::new(limit, period) else {
        return false;
    };
    if let Some(burst) = burst {
        if algorithm != Algorithm::Gcra || quota.with_burst(burst).is_err() {
            return false;
        }
    }
    let room = |counters: u32| (u64::BITS - bits_for(u64::MAX / period)) / counters;
    match algorithm {
        Algorithm::Gcra => true,
        Algorithm::FixedWindow => bits_for(limit) <= room(1),
        Algorithm::SlidingWindowApprox => bits_for(limit) <= room(2),
        Algorithm::SlidingWindowStrict { .. } => limit <= u64::from(u32::MAX),
    }
}

/// What `set_override` must answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// `UnknownLimit`.
    Unknown,
    /// `AttributeName`.
    Attribute,
    /// `Override` (the quota is invalid for the limit).
    Quota,
    /// `Ok`.
    Set,
}

/// Whether `name` is a valid attribute name (ASCII letters, digits, `_-.:`).
#[must_use]
pub fn valid_attribute(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
}

/// The limit named `limit` of rule `rule`.
#[must_use]
pub fn find<'f>(facts: &'f [Facts], rule: &str, limit: &str) -> Option<(usize, &'f Facts)> {
    facts
        .iter()
        .enumerate()
        .find(|(_, f)| f.rule == rule && f.name == limit)
}

/// What `set_override(rule, limit, attribute, _, quota)` must answer: the limit is
/// looked up first, then the attribute name, then the quota.
#[must_use]
pub fn expect_set(
    facts: &[Facts],
    rule: &str,
    limit: &str,
    attribute: &str,
    quota: OverrideQuota,
) -> Expect {
    let Some((_, f)) = find(facts, rule, limit) else {
        return Expect::Unknown;
    };
    if !valid_attribute(attribute) {
        return Expect::Attribute;
    }
    match quota {
        OverrideQuota::Unlimited => Expect::Set,
        OverrideQuota::Limit { limit, burst } => {
            if fits(f.algorithm, f.quota.period(), limit, burst) {
                Expect::Set
            } else {
                Expect::Quota
            }
        }
    }
}

/// One limit's overrides: per attribute, in first-appearance order, value → quota.
type LimitOverrides = Vec<(String, BTreeMap<Vec<u8>, OverrideQuota>)>;

/// The overrides in force, by `(rule, limit)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    per_limit: BTreeMap<(String, String), LimitOverrides>,
}

impl Overrides {
    /// The file's overrides of the version in force (each set in order, as the build
    /// does: a later one for the same attribute and value replaces the earlier).
    #[must_use]
    pub fn of(policy: &Policy) -> Self {
        let mut model = Self::default();
        for rule in policy.rules() {
            for limit in &rule.limits {
                for o in &limit.overrides {
                    model.set(&rule.name, &limit.name, &o.attribute, &o.value, o.quota);
                }
            }
        }
        model
    }

    /// Adds or replaces an override.
    pub fn set(
        &mut self,
        rule: &str,
        limit: &str,
        attribute: &str,
        value: &[u8],
        quota: OverrideQuota,
    ) {
        let attributes = self
            .per_limit
            .entry((String::from(rule), String::from(limit)))
            .or_default();
        let index = match attributes.iter().position(|(a, _)| a == attribute) {
            Some(index) => index,
            None => {
                attributes.push((String::from(attribute), BTreeMap::new()));
                attributes.len() - 1
            }
        };
        attributes[index].1.insert(value.to_vec(), quota);
    }

    /// Removes an override; whether there was one. An attribute left without values is
    /// forgotten (set again, it comes last).
    pub fn remove(&mut self, rule: &str, limit: &str, attribute: &str, value: &[u8]) -> bool {
        let key = (String::from(rule), String::from(limit));
        let Some(attributes) = self.per_limit.get_mut(&key) else {
            return false;
        };
        let Some(index) = attributes.iter().position(|(a, _)| a == attribute) else {
            return false;
        };
        let removed = attributes[index].1.remove(value).is_some();
        if attributes[index].1.is_empty() {
            attributes.remove(index);
        }
        if attributes.is_empty() {
            self.per_limit.remove(&key);
        }
        removed
    }

    /// The override limit `(rule, limit)` runs with for a request carrying
    /// `attributes`: the first of its attributes, in order, whose value (the request's
    /// first of that name) has one.
    #[must_use]
    pub fn select(
        &self,
        rule: &str,
        limit: &str,
        attributes: &[Attribute<'_>],
    ) -> Option<OverrideQuota> {
        let per = self
            .per_limit
            .get(&(String::from(rule), String::from(limit)))?;
        per.iter().find_map(|(attribute, values)| {
            let value = attributes.iter().find(|a| a.name == attribute)?.value;
            values.get(value).copied()
        })
    }

    /// Every override as `Policy::overrides` lists them, sorted.
    #[must_use]
    pub fn list(&self) -> Vec<(String, String, Override)> {
        let mut list: Vec<_> = self
            .per_limit
            .iter()
            .flat_map(|((rule, limit), attributes)| {
                attributes.iter().flat_map(move |(attribute, values)| {
                    values.iter().map(move |(value, quota)| {
                        (
                            rule.clone(),
                            limit.clone(),
                            Override {
                                attribute: attribute.clone(),
                                value: value.clone(),
                                quota: *quota,
                            },
                        )
                    })
                })
            })
            .collect();
        list.sort_by_key(order);
        list
    }

    /// How many of these overrides `now` (listed) no longer holds.
    #[must_use]
    pub fn dropped_by(&self, now: &[(String, String, Override)]) -> usize {
        self.list().iter().filter(|o| !now.contains(o)).count()
    }
}

/// A sort key for `(rule, limit, override)`.
pub fn order(o: &(String, String, Override)) -> (String, String, String, Vec<u8>, String) {
    (
        o.0.clone(),
        o.1.clone(),
        o.2.attribute.clone(),
        o.2.value.clone(),
        format!("{:?}", o.2.quota),
    )
}

/// A limit's key for one request: each key attribute's value, `None` when absent.
pub type KeyParts = Vec<Option<Vec<u8>>>;

/// The key `facts` gives a request carrying `attributes` (first of each name).
#[must_use]
pub fn key_parts(facts: &Facts, attributes: &[Attribute<'_>]) -> KeyParts {
    facts
        .key
        .iter()
        .map(|k| {
            attributes
                .iter()
                .find(|a| a.name == k)
                .map(|a| a.value.to_vec())
        })
        .collect()
}

/// How the offender report shows a key: its parts joined by `/` (an absent one as
/// empty), cut at [`OFFENDER_KEY_BYTES`]; and whether it was cut.
#[must_use]
pub fn shown(parts: &KeyParts) -> (Vec<u8>, bool) {
    let mut key = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            key.push(b'/');
        }
        key.extend_from_slice(part.as_deref().unwrap_or(&[]));
    }
    let cut = key.len() > OFFENDER_KEY_BYTES;
    key.truncate(OFFENDER_KEY_BYTES);
    (key, cut)
}

/// Denials by `(deciding limit id, key)`: since the policy was built, for the limits every
/// reload since left unchanged.
#[derive(Clone, Debug, Default)]
pub struct Denials {
    /// Each key denied, with how often.
    pub counts: Vec<((usize, KeyParts), u64)>,
}

impl Denials {
    /// Counts one denial.
    pub fn record(&mut self, id: usize, parts: KeyParts) {
        let key = (id, parts);
        match self.counts.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => *n += 1,
            None => self.counts.push((key, 1)),
        }
    }
}

/// Whether two limits are the same limit across versions: rule, name, key, missing-key
/// handling, algorithm, quota and shadow flag.
fn identical(a: &Facts, b: &Facts) -> bool {
    a.rule == b.rule
        && a.name == b.name
        && a.key == b.key
        && a.on_missing == b.on_missing
        && a.algorithm == b.algorithm
        && a.quota == b.quota
        && a.shadow == b.shadow
}

/// A version's tables: per rule, its limits sharing key, `on_missing` and shadow flag,
/// in order.
fn tables(facts: &[Facts]) -> Vec<Vec<&Facts>> {
    let mut tables: Vec<Vec<&Facts>> = Vec::new();
    for f in facts {
        let mate = |t: &&mut Vec<&Facts>| {
            t[0].rule == f.rule
                && t[0].key == f.key
                && t[0].on_missing == f.on_missing
                && t[0].shadow == f.shadow
        };
        match tables.iter_mut().find(|t| mate(t)) {
            Some(t) => t.push(f),
            None => tables.push(vec![f]),
        }
    }
    tables
}

/// The new version's limit that is identical to an old one, if any.
#[must_use]
pub fn carried<'o>(old: &'o [Facts], new: &Facts) -> Option<&'o Facts> {
    old.iter().find(|o| identical(o, new))
}

/// What a reload from `old` to `new` must report as `(kept, fresh, dropped)`: kept, the
/// limits whose table is handed over (every limit of the table identical, in order, to
/// an old table's, and the table settings unchanged); fresh, the others; dropped, the
/// old limits no new one is identical to.
#[must_use]
pub fn report(old: &[Facts], new: &[Facts], same_settings: bool) -> (usize, usize, usize) {
    let old_tables = tables(old);
    let kept = if same_settings {
        tables(new)
            .iter()
            .filter(|t| {
                old_tables.iter().any(|o| {
                    o.len() == t.len() && o.iter().zip(t.iter()).all(|(a, b)| identical(a, b))
                })
            })
            .map(Vec::len)
            .sum()
    } else {
        0
    };
    let identical_count = new.iter().filter(|f| carried(old, f).is_some()).count();
    (kept, new.len() - kept, old.len() - identical_count)
}
