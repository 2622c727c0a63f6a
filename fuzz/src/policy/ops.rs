//! What an input does with the policy it built: requests (a peek, then a check),
//! run-time override changes, reloads, the repeat-offender report and the metrics
//! export; and the fixed sequence a plain-text input gets.

use arbitrary::Arbitrary;
use ratecore::policy::{Attribute, OverrideQuota, PolicySpec};
use ratecore::FullPolicy;

use super::template::{NameField, PolicyT, Tweak, ValueField};
use crate::gen::Num;

/// A request to peek and then check.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct RequestT<'a> {
    /// Method choice.
    pub method: u8,
    /// Path.
    pub path: &'a str,
    /// Attributes (the first 12; a name may repeat, the first counts).
    pub attributes: Vec<(NameField<'a>, ValueField<'a>)>,
    /// Nanoseconds on from the previous request.
    pub step: u32,
    /// Cost.
    pub cost: u8,
}

impl<'a> RequestT<'a> {
    /// How many times [`Op::Repeat`] sends it.
    #[must_use]
    pub fn repeats(times: u8) -> usize {
        2 + usize::from(times % 32)
    }

    /// Its attributes.
    #[must_use]
    pub fn attributes(&self) -> Vec<Attribute<'a>> {
        self.attributes
            .iter()
            .take(12)
            .map(|(name, value)| Attribute::new(name.name(), value.bytes()))
            .collect()
    }

    /// Its method.
    #[must_use]
    pub fn method(&self) -> &'static str {
        let methods = super::template::METHODS;
        methods[usize::from(self.method) % methods.len()]
    }

    /// Its cost (0 to 3).
    #[must_use]
    pub fn cost(&self) -> u64 {
        u64::from(self.cost % 4)
    }
}

/// One operation.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum Op<'a> {
    /// A peek, then a check, of a request.
    Request(RequestT<'a>),
    /// The same request `2 + times % 32` times at one moment (its step taken once): to
    /// run into limits and keep sending while denied.
    Repeat {
        /// The request.
        request: RequestT<'a>,
        /// How many more times.
        times: u8,
    },
    /// A request that also carries the attributes (and values) of some overrides in
    /// force, so that overrides select it (several at once: the first attribute wins).
    Overridden {
        /// The request.
        request: RequestT<'a>,
        /// Which overrides (the first 3; indices modulo their number, in sorted order).
        picks: Vec<u8>,
        /// Put them before the request's own attributes (the first of a name counts).
        first: bool,
    },
    /// `Policy::set_override`.
    SetOverride {
        /// Which limit.
        target: Target<'a>,
        /// The selecting attribute (invalid names included).
        attribute: NameField<'a>,
        /// Its value.
        value: ValueField<'a>,
        /// The quota.
        quota: ApiQuota,
    },
    /// `Policy::remove_override`.
    RemoveOverride {
        /// Which limit.
        target: Target<'a>,
        /// The selecting attribute.
        attribute: NameField<'a>,
        /// Its value.
        value: ValueField<'a>,
    },
    /// `Policy::reload_toml_str`.
    Reload(Reload<'a>),
    /// `Policy::offenders`.
    Offenders,
    /// `Policy::render_metrics` into a buffer of this size (and the exact protocol), and
    /// `Policy::view`.
    Metrics(u16),
}

/// The limit an override change names.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target<'a> {
    /// The limit with this index (modulo their number) in the version in force.
    Limit(u8),
    /// A rule of the version in force (index modulo their number) and any limit name.
    OtherLimit(u8, &'a str),
    /// Any rule and limit names.
    Names(&'a str, &'a str),
}

/// An override's quota at run time.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiQuota {
    /// `limit` per the limit's period (0, huge and every edge included).
    Limit(Num),
    /// With a GCRA burst (refused on other algorithms).
    LimitBurst(Num, Num),
    /// Unlimited.
    Unlimited,
}

/// The `(attribute, value)` of the overrides `picks` chooses among `list` (sorted).
#[must_use]
pub fn picked(
    list: &[(String, String, ratecore::policy::Override)],
    picks: &[u8],
) -> Vec<(String, Vec<u8>)> {
    if list.is_empty() {
        return Vec::new();
    }
    picks
        .iter()
        .take(3)
        .map(|&i| {
            let o = &list[usize::from(i) % list.len()].2;
            (o.attribute.clone(), o.value.clone())
        })
        .collect()
}

/// A request's attributes with `extra` ones before (`first`) or after its own.
#[must_use]
pub fn with_extra<'v>(
    own: Vec<Attribute<'v>>,
    extra: &'v [(String, Vec<u8>)],
    first: bool,
) -> Vec<Attribute<'v>> {
    let extra = extra.iter().map(|(n, v)| Attribute::new(n, v));
    if first {
        extra.chain(own).collect()
    } else {
        own.into_iter().chain(extra).collect()
    }
}

impl ApiQuota {
    /// The quota.
    #[must_use]
    pub fn get(self) -> OverrideQuota {
        match self {
            Self::Limit(n) => OverrideQuota::Limit {
                limit: n.get(),
                burst: None,
            },
            Self::LimitBurst(n, b) => OverrideQuota::Limit {
                limit: n.get(),
                burst: Some(b.get()),
            },
            Self::Unlimited => OverrideQuota::Unlimited,
        }
    }
}

/// What to reload to.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum Reload<'a> {
    /// The text in force again: every limit kept, the overrides replaced by the file's.
    Same,
    /// Another generated policy (valid or malformed).
    Policy(PolicyT<'a>),
    /// The generated policy in force, edited (the text in force if it was not generated).
    Tweaked(Vec<Tweak<'a>>),
    /// Any text.
    Text(&'a str),
}

/// What the version in force was built from: its text, the generated policy it came
/// from (edited by [`Reload::Tweaked`]) and its limits' `(rule, limit)` names in policy
/// order. The driver and the reproducer printer both follow it.
#[derive(Clone, Debug)]
pub struct InForce<'a> {
    /// The TOML text.
    pub text: String,
    /// The generated policy, if the text is one.
    pub source: Option<PolicyT<'a>>,
    /// `(rule, limit)` of every limit, in policy order.
    pub names: Vec<(String, String)>,
    /// `table.capacity` and `table.when_full`.
    pub settings: Option<(u64, FullPolicy)>,
}

impl<'a> InForce<'a> {
    /// The version built from `text` (generated from `source`).
    #[must_use]
    pub fn new(text: String, source: Option<PolicyT<'a>>) -> Self {
        let spec = PolicySpec::from_toml_str(&text, "fuzz.toml").ok();
        let names = spec
            .iter()
            .flat_map(|spec| &spec.rules)
            .flat_map(|r| r.limits.iter().map(|l| (r.name.clone(), l.name.clone())))
            .collect();
        Self {
            settings: spec.map(|s| (s.capacity, s.when_full)),
            text,
            source,
            names,
        }
    }

    /// The `(rule, limit)` names `target` stands for.
    #[must_use]
    pub fn target(&self, target: &Target<'_>) -> (String, String) {
        let nth = |i: u8| self.names.get(usize::from(i) % self.names.len().max(1));
        match *target {
            Target::Limit(i) => nth(i).cloned().unwrap_or_default(),
            Target::OtherLimit(i, limit) => (
                nth(i).map(|(rule, _)| rule.clone()).unwrap_or_default(),
                String::from(limit),
            ),
            Target::Names(rule, limit) => (String::from(rule), String::from(limit)),
        }
    }

    /// The text `reload` reloads to, and the generated policy it comes from.
    #[must_use]
    pub fn reload(&self, reload: &Reload<'a>) -> (String, Option<PolicyT<'a>>) {
        match reload {
            Reload::Same => (self.text.clone(), self.source.clone()),
            Reload::Policy(p) => (p.text(), Some(p.clone())),
            Reload::Tweaked(tweaks) => match &self.source {
                Some(source) => {
                    let p = source.tweaked(tweaks);
                    (p.text(), Some(p))
                }
                None => (self.text.clone(), None),
            },
            Reload::Text(t) => (String::from(*t), None),
        }
    }
}

/// The requests a plain-text input makes in round `round`: the seed policies'
/// attributes (auth of each token kind or none, client_ip, user, app and client, some
/// absent).
fn seed_requests(round: u8) -> Vec<Op<'static>> {
    (0..8u8)
        .map(|i| {
            let mut attributes = Vec::new();
            if i % 4 != 3 {
                attributes.push((NameField::Choice(4), ValueField::Choice(3 + i % 4)));
            }
            if i % 5 != 4 {
                attributes.push((NameField::Choice(0), ValueField::Int(i64::from(i % 3))));
            }
            if i % 2 == 0 {
                attributes.push((NameField::Choice(1), ValueField::Int(i64::from(i))));
            }
            attributes.push((NameField::Choice(2), ValueField::Int(1)));
            attributes.push((NameField::Choice(3), ValueField::Int(i64::from(i % 2))));
            Op::Request(RequestT {
                method: i,
                path: [
                    "/api/readings",
                    "/",
                    "/cards/1/transactions/2/commit",
                    "/x?y",
                ][usize::from(i % 4)],
                attributes,
                step: if round == 0 {
                    u32::from(i) * 100_000_000
                } else {
                    u32::from(i) * 1000
                },
                cost: i % 3 + round,
            })
        })
        .collect()
}

/// What a plain-text input does with its policy: requests, the report and export,
/// overrides on its first limits (one with an invalid attribute name), more requests,
/// a reload to itself and a rejected one, more requests.
#[must_use]
pub fn text_ops() -> Vec<Op<'static>> {
    let mut ops = seed_requests(0);
    if let Some(Op::Request(first)) = ops.first().cloned() {
        ops.push(Op::Repeat {
            request: first,
            times: 30,
        });
    }
    ops.push(Op::Offenders);
    ops.push(Op::Metrics(200));
    ops.push(Op::SetOverride {
        target: Target::Limit(0),
        attribute: NameField::Choice(2),
        value: ValueField::Int(1),
        quota: ApiQuota::Limit(Num::Tiny(1)),
    });
    ops.push(Op::SetOverride {
        target: Target::Limit(1),
        attribute: NameField::Choice(0),
        value: ValueField::Int(0),
        quota: ApiQuota::Unlimited,
    });
    ops.push(Op::SetOverride {
        target: Target::Limit(2),
        attribute: NameField::Choice(7),
        value: ValueField::Int(1),
        quota: ApiQuota::Limit(Num::Tiny(5)),
    });
    ops.extend(seed_requests(1));
    ops.push(Op::RemoveOverride {
        target: Target::Limit(0),
        attribute: NameField::Choice(2),
        value: ValueField::Int(1),
    });
    ops.push(Op::Reload(Reload::Same));
    ops.push(Op::Offenders);
    ops.push(Op::Reload(Reload::Text("[[rule]]\nname = 1\n")));
    ops.extend(seed_requests(2));
    ops.push(Op::Offenders);
    ops.push(Op::Metrics(0));
    ops
}
