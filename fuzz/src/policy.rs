//! `policy_config`: the TOML policy parser and everything a parsed policy does.
//!
//! The input's first byte picks the mode:
//! - `0xff`: a structured generator fills a valid template with arbitrary field values
//!   (valid choices, wrong types, arbitrary text, out-of-range numbers) to reach the deep
//!   validation: durations, quotas per algorithm, routes, burst and sub-window rules,
//!   `when` conditions (equals, in, not_in, present true/false, malformed ones), keys
//!   (earlier versions' names, attribute lists, bad attribute names, too many), `on_missing`
//!   and `shadow` per limit and per rule; its requests carry arbitrary attributes (names
//!   the policy uses or not, repeated, values that match its conditions or not);
//! - anything else: the whole input (lossy UTF-8) is the TOML text, checked with requests
//!   carrying the attributes the seed policies use.
//!
//! `Policy::from_toml_str` must never panic; an error's line and column must lie inside
//! the text (or be 0 when unknown), and name the origin given. A policy that builds is
//! used: checks and peeks of a few requests (never an error other than a cost above a
//! limit, sane decisions, a peek deciding as the check that follows it), and its header
//! and body rendering (exact buffer protocol, well-formed header lines). Decisions must
//! be consistent: an exempted request is unlimited, a request denied for a missing key is
//! denied, real and shadow entries are what their limits say, a shadow denial is a
//! denying shadow entry, and per-limit metrics count what happened. Shadow limits must
//! never change the real answer: the same policy with its shadow limits removed decides
//! every request alike (while no table can be full, so that eviction, whose victims
//! depend on each table's random seed, plays no part). `Route::parse` and
//! `parse_duration` get the raw text too.
//!
//! A policy's tables are allocated when it is built (capacity × (1 + ring) × 16 bytes
//! per limit), so texts whose tables would exceed [`MAX_TABLE_BYTES`] are only parsed by
//! `toml`, not built: that is memory, not a bug.

use std::fmt;

use arbitrary::{Arbitrary, Unstructured};
use ratecore::policy::{
    parse_duration, Attribute, Policy, PolicyDecision, PolicySpec, Request, Route,
};
use ratecore::CheckError;

use crate::algorithms::sane;
use crate::render::{header_lines, protocol};

/// The most table memory a fuzzed policy may ask for.
pub const MAX_TABLE_BYTES: u128 = 16 << 20;

/// A value for a string-typed field.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field<'a> {
    /// Left out.
    Omit,
    /// One of the valid words (index modulo their number).
    Choice(u8),
    /// Any text.
    Text(&'a str),
    /// A number where a string is due.
    Int(i64),
}

/// A value for an integer-typed field.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntField<'a> {
    /// Left out.
    Omit,
    /// A small value.
    Small(u8),
    /// Any integer.
    Int(i64),
    /// A string where a number is due.
    Text(&'a str),
}

/// A value for a duration field.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeriodField<'a> {
    /// Left out.
    Omit,
    /// `<n><unit>` with a valid or invalid unit.
    Valid(u32, u8),
    /// Any text.
    Text(&'a str),
    /// A number where a string is due.
    Int(i64),
}

/// A route.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum RouteField<'a> {
    /// Left out.
    Omit,
    /// `METHOD /seg/:param/*`-like, from pieces.
    Parts {
        /// Method choice.
        method: u8,
        /// Segments: literal, `:name`, `*`, or empty.
        segments: Vec<Segment<'a>>,
    },
    /// Any text.
    Text(&'a str),
}

/// One route segment.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Segment<'a> {
    /// Text.
    Literal(&'a str),
    /// `:name`.
    Param(&'a str),
    /// `*`.
    Rest,
    /// Empty.
    Empty,
}

/// An attribute name.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameField<'a> {
    /// One of [`ATTRIBUTES`] (index modulo their number).
    Choice(u8),
    /// Any text.
    Text(&'a str),
}

/// A condition's or a request attribute's value.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueField<'a> {
    /// One of [`VALUES`] (index modulo their number).
    Choice(u8),
    /// Any text.
    Text(&'a str),
    /// A number where a string is due (in a request: the bytes of an id).
    Int(i64),
}

/// The test of a `when` condition.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum TestField<'a> {
    /// `attr = "v"`.
    Equals(ValueField<'a>),
    /// `attr = { equals = "v" }`.
    EqualsTable(ValueField<'a>),
    /// `attr = ["v", "w"]`.
    In(Vec<ValueField<'a>>),
    /// `attr = { in = ["v", "w"] }`.
    InTable(Vec<ValueField<'a>>),
    /// `attr = { not_in = ["v", "w"] }`.
    NotIn(Vec<ValueField<'a>>),
    /// `attr = { present = true|false }`.
    Present(bool),
    /// `attr = { <op> = "v" }` with any operator.
    Other(&'a str, ValueField<'a>),
    /// `attr = { present = true, not_in = [] }`: two operators.
    Two,
    /// `attr = 7`.
    Int(i64),
}

/// One `when` condition.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct ConditionT<'a> {
    /// The attribute.
    pub name: NameField<'a>,
    /// The test.
    pub test: TestField<'a>,
}

/// A limit's `key`.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum KeyField<'a> {
    /// One of earlier versions' names, or anything in their place.
    Name(Field<'a>),
    /// An attribute list (the first 10; more than 8 is an error).
    Attributes(Vec<NameField<'a>>),
}

/// One `[[rule.limit]]`.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct LimitT<'a> {
    /// `name`.
    pub name: Option<&'a str>,
    /// `key`.
    pub key: KeyField<'a>,
    /// `on_missing`.
    pub on_missing: Field<'a>,
    /// `shadow`.
    pub shadow: Option<bool>,
    /// `algorithm`.
    pub algorithm: Field<'a>,
    /// `limit`.
    pub limit: IntField<'a>,
    /// `period`.
    pub period: PeriodField<'a>,
    /// `burst`.
    pub burst: IntField<'a>,
    /// `sub_windows`.
    pub sub_windows: IntField<'a>,
}

/// One `[[rule]]`.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct RuleT<'a> {
    /// `name`.
    pub name: Field<'a>,
    /// `route`.
    pub route: RouteField<'a>,
    /// `when` (the first 4 conditions; a name used twice is left out, except as text).
    pub when: Vec<ConditionT<'a>>,
    /// `description`.
    pub description: Option<&'a str>,
    /// `unlimited`.
    pub unlimited: Option<bool>,
    /// `shadow`.
    pub shadow: Option<bool>,
    /// The limits (first 5).
    pub limits: Vec<LimitT<'a>>,
}

/// A structured policy.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct Template<'a> {
    /// Render every field as a valid value (the same choices, mapped into range), so
    /// that most such policies build and their checks are exercised; otherwise fields
    /// are spliced in as they are, valid or not, for the parser's error paths.
    pub well_formed: bool,
    /// `response.headers`.
    pub headers: Field<'a>,
    /// `response.body`.
    pub body: Field<'a>,
    /// `response.problem_type`.
    pub problem_type: Option<&'a str>,
    /// `response.status`.
    pub status: IntField<'a>,
    /// `table.capacity`.
    pub capacity: IntField<'a>,
    /// `table.when_full`.
    pub when_full: Field<'a>,
    /// The rules (first 4).
    pub rules: Vec<RuleT<'a>>,
    /// Requests to check if the policy builds.
    pub requests: Vec<RequestT<'a>>,
}

/// A request to check.
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

/// Attribute names the generator picks from: the seed policies' and a few more (the
/// last one invalid).
pub const ATTRIBUTES: &[&str] = &[
    "client_ip",
    "user",
    "app",
    "client",
    "auth",
    "tenant",
    "x-api.key:v1",
    "bad name",
];

/// Values the generator picks from, so that conditions and requests meet.
pub const VALUES: &[&str] = &[
    "",
    "a",
    "b",
    "client_credentials",
    "personal_token",
    "authorization_code",
];

/// A value as TOML.
fn value_toml(value: ValueField<'_>) -> String {
    match value {
        ValueField::Choice(i) => quote(VALUES[usize::from(i) % VALUES.len()]),
        ValueField::Text(t) => quote(t),
        ValueField::Int(n) => n.to_string(),
    }
}

fn values_toml(values: &[ValueField<'_>]) -> String {
    let values: Vec<String> = values.iter().take(4).map(|v| value_toml(*v)).collect();
    format!("[{}]", values.join(", "))
}

impl ConditionT<'_> {
    /// `"name" = test`.
    fn toml(&self) -> String {
        let test = match &self.test {
            TestField::Equals(v) => value_toml(*v),
            TestField::EqualsTable(v) => format!("{{ equals = {} }}", value_toml(*v)),
            TestField::In(vs) => values_toml(vs),
            TestField::InTable(vs) => format!("{{ in = {} }}", values_toml(vs)),
            TestField::NotIn(vs) => format!("{{ not_in = {} }}", values_toml(vs)),
            TestField::Present(b) => format!("{{ present = {b} }}"),
            TestField::Other(op, v) => format!("{{ {} = {} }}", quote(op), value_toml(*v)),
            TestField::Two => String::from("{ present = true, not_in = [] }"),
            TestField::Int(n) => n.to_string(),
        };
        format!("{} = {test}", quote(self.name.name()))
    }
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\u{:04X}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn field(out: &mut String, name: &str, value: Field<'_>, choices: &[&str]) {
    let v = match value {
        Field::Omit => return,
        Field::Choice(i) => quote(choices[usize::from(i) % choices.len()]),
        Field::Text(t) => quote(t),
        Field::Int(n) => n.to_string(),
    };
    out.push_str(&format!("{name} = {v}\n"));
}

fn int_field(out: &mut String, name: &str, value: IntField<'_>) {
    let v = match value {
        IntField::Omit => return,
        IntField::Small(n) => n.to_string(),
        IntField::Int(n) => n.to_string(),
        IntField::Text(t) => quote(t),
    };
    out.push_str(&format!("{name} = {v}\n"));
}

const METHODS: &[&str] = &["GET", "POST", "ALL", "*", "get", "", "PUT"];

impl Template<'_> {
    /// The TOML text.
    #[must_use]
    pub fn text(&self) -> String {
        if self.well_formed {
            return self.well_formed_text();
        }
        let mut t = String::from("[response]\n");
        field(
            &mut t,
            "headers",
            self.headers,
            &["evenergy", "uphold", "switch", "ietf", "IETF"],
        );
        field(&mut t, "body", self.body, &["problem+json", "text", "json"]);
        if let Some(p) = self.problem_type {
            t.push_str(&format!("problem_type = {}\n", quote(p)));
        }
        int_field(&mut t, "status", self.status);
        t.push_str("\n[table]\n");
        int_field(&mut t, "capacity", self.capacity);
        field(
            &mut t,
            "when_full",
            self.when_full,
            &["evict", "deny", "allow", "drop"],
        );
        for rule in self.rules.iter().take(4) {
            t.push_str("\n[[rule]]\n");
            field(&mut t, "name", rule.name, &["a", "b", " ", ""]);
            match &rule.route {
                RouteField::Omit => {}
                RouteField::Text(r) => t.push_str(&format!("route = {}\n", quote(r))),
                RouteField::Parts { method, segments } => {
                    let mut r = METHODS[usize::from(*method) % METHODS.len()].to_string();
                    if !r.is_empty() {
                        r.push(' ');
                    }
                    if segments.is_empty() {
                        r.push('/');
                    }
                    for s in segments.iter().take(6) {
                        r.push('/');
                        match s {
                            Segment::Literal(l) => r.push_str(l),
                            Segment::Param(p) => {
                                r.push(':');
                                r.push_str(p);
                            }
                            Segment::Rest => r.push('*'),
                            Segment::Empty => {}
                        }
                    }
                    t.push_str(&format!("route = {}\n", quote(&r)));
                }
            }
            if let Some(d) = rule.description {
                t.push_str(&format!("description = {}\n", quote(d)));
            }
            if let Some(u) = rule.unlimited {
                t.push_str(&format!("unlimited = {u}\n"));
            }
            if let Some(shadow) = rule.shadow {
                t.push_str(&format!("shadow = {shadow}\n"));
            }
            let mut seen: Vec<&str> = Vec::new();
            let when: Vec<String> = rule
                .when
                .iter()
                .take(4)
                .filter(|c| {
                    let name = c.name.name();
                    let repeat = seen.contains(&name) && matches!(c.name, NameField::Choice(_));
                    seen.push(name);
                    !repeat
                })
                .map(ConditionT::toml)
                .collect();
            if !when.is_empty() {
                t.push_str(&format!("when = {{ {} }}\n", when.join(", ")));
            }
            for limit in rule.limits.iter().take(5) {
                t.push_str("\n[[rule.limit]]\n");
                if let Some(n) = limit.name {
                    t.push_str(&format!("name = {}\n", quote(n)));
                }
                match &limit.key {
                    KeyField::Name(name) => field(
                        &mut t,
                        "key",
                        *name,
                        &["global", "client_ip", "user", "app_user", "client", "ip"],
                    ),
                    KeyField::Attributes(names) => {
                        let names: Vec<String> =
                            names.iter().take(10).map(|n| quote(n.name())).collect();
                        t.push_str(&format!("key = [{}]\n", names.join(", ")));
                    }
                }
                field(
                    &mut t,
                    "on_missing",
                    limit.on_missing,
                    &["skip", "shared", "deny", "allow"],
                );
                if let Some(shadow) = limit.shadow {
                    t.push_str(&format!("shadow = {shadow}\n"));
                }
                field(
                    &mut t,
                    "algorithm",
                    limit.algorithm,
                    &[
                        "gcra",
                        "fixed_window",
                        "sliding_window",
                        "sliding_window_strict",
                        "leaky",
                    ],
                );
                int_field(&mut t, "limit", limit.limit);
                match limit.period {
                    PeriodField::Omit => {}
                    PeriodField::Valid(n, unit) => {
                        let units = ["ns", "us", "ms", "s", "m", "min", "h", "d", "", "y", " s"];
                        let unit = units[usize::from(unit) % units.len()];
                        t.push_str(&format!("period = {}\n", quote(&format!("{n}{unit}"))));
                    }
                    PeriodField::Text(p) => t.push_str(&format!("period = {}\n", quote(p))),
                    PeriodField::Int(n) => t.push_str(&format!("period = {n}\n")),
                }
                int_field(&mut t, "burst", limit.burst);
                int_field(&mut t, "sub_windows", limit.sub_windows);
            }
        }
        t
    }
}

/// A valid word among `choices` (the first `valid` of them are the valid ones), or
/// `default` when the field holds no choice.
fn choice<'c>(value: Field<'_>, choices: &[&'c str], valid: usize, default: &'c str) -> &'c str {
    match value {
        Field::Choice(i) => choices[usize::from(i) % valid],
        _ => default,
    }
}

/// A positive integer of at most `max` (`default` when the field holds none).
fn small(value: IntField<'_>, max: u64, default: u64) -> u64 {
    match value {
        IntField::Small(n) => u64::from(n) % max + 1,
        IntField::Int(n) => n.unsigned_abs() % max + 1,
        _ => default,
    }
}

/// A condition rendered valid: a valid attribute name, string values.
fn well_formed_condition(name: &str, test: &TestField<'_>) -> String {
    let value = |v: &ValueField<'_>| match *v {
        ValueField::Choice(i) => quote(VALUES[usize::from(i) % VALUES.len()]),
        ValueField::Text(t) => quote(t),
        ValueField::Int(n) => quote(VALUES[usize::from(n as u8) % VALUES.len()]),
    };
    let values = |vs: &[ValueField<'_>]| {
        let vs: Vec<String> = vs.iter().take(4).map(value).collect();
        format!("[{}]", vs.join(", "))
    };
    let test = match test {
        TestField::Equals(v) => value(v),
        TestField::EqualsTable(v) => format!("{{ equals = {} }}", value(v)),
        TestField::In(vs) => values(vs),
        TestField::InTable(vs) => format!("{{ in = {} }}", values(vs)),
        TestField::NotIn(vs) => format!("{{ not_in = {} }}", values(vs)),
        TestField::Present(b) => format!("{{ present = {b} }}"),
        TestField::Other(..) | TestField::Two => String::from("{ present = true }"),
        TestField::Int(_) => String::from("{ present = false }"),
    };
    format!("{} = {test}", quote(name))
}

/// The valid attribute names of [`ATTRIBUTES`].
const VALID_ATTRIBUTES: usize = 7;

impl NameField<'_> {
    /// A valid name: the choice among the valid ones, or one picked by the text's length.
    fn valid(&self) -> &'static str {
        match *self {
            Self::Choice(i) => ATTRIBUTES[usize::from(i) % VALID_ATTRIBUTES],
            Self::Text(t) => ATTRIBUTES[t.len() % VALID_ATTRIBUTES],
        }
    }
}

impl Template<'_> {
    /// The TOML text with every field valid (see [`Template::well_formed`]). What can
    /// still fail: too many limits, a GCRA burst or strict-window ring the quota rejects.
    fn well_formed_text(&self) -> String {
        let mut t = String::from("[response]\n");
        let headers = ["evenergy", "uphold", "switch", "ietf"];
        t.push_str(&format!(
            "headers = {}\n",
            quote(choice(self.headers, &headers, 4, "ietf"))
        ));
        let body = choice(self.body, &["problem+json", "text"], 2, "problem+json");
        t.push_str(&format!("body = {}\n", quote(body)));
        if let Some(p) = self.problem_type {
            t.push_str(&format!("problem_type = {}\n", quote(p)));
        }
        t.push_str(&format!("status = {}\n", 399 + small(self.status, 200, 30)));
        t.push_str("\n[table]\n");
        t.push_str(&format!("capacity = {}\n", small(self.capacity, 256, 16)));
        let when_full = choice(self.when_full, &["evict", "deny", "allow"], 3, "evict");
        t.push_str(&format!("when_full = {}\n", quote(when_full)));
        for (r, rule) in self.rules.iter().take(4).enumerate() {
            t.push_str(&format!("\n[[rule]]\nname = \"rule-{r}\"\n"));
            if let RouteField::Parts { method, segments } = &rule.route {
                let methods = ["GET", "POST", "ALL", "*", "PUT"];
                let mut route = format!("{} ", methods[usize::from(*method) % methods.len()]);
                let mut path = String::new();
                for (i, segment) in segments.iter().take(6).enumerate() {
                    match segment {
                        Segment::Literal(l) => {
                            let l: String = l.chars().filter(char::is_ascii_alphanumeric).collect();
                            path.push('/');
                            path.push_str(if l.is_empty() { "x" } else { &l });
                        }
                        Segment::Param(_) => path.push_str(&format!("/:p{i}")),
                        Segment::Rest => {
                            path.push_str("/*");
                            break;
                        }
                        Segment::Empty => {}
                    }
                }
                route.push_str(if path.is_empty() { "/" } else { &path });
                t.push_str(&format!("route = {}\n", quote(&route)));
            }
            if let Some(d) = rule.description {
                t.push_str(&format!("description = {}\n", quote(d)));
            }
            let limits: Vec<&LimitT<'_>> = rule.limits.iter().take(4).collect();
            if limits.is_empty() {
                t.push_str("unlimited = true\n");
            }
            if let Some(shadow) = rule.shadow {
                t.push_str(&format!("shadow = {shadow}\n"));
            }
            let mut names: Vec<&str> = Vec::new();
            let mut when = Vec::new();
            for condition in rule.when.iter().take(4) {
                let name = condition.name.valid();
                if !names.contains(&name) {
                    names.push(name);
                    when.push(well_formed_condition(name, &condition.test));
                }
            }
            if !when.is_empty() {
                t.push_str(&format!("when = {{ {} }}\n", when.join(", ")));
            }
            for (l, limit) in limits.into_iter().enumerate() {
                t.push_str(&format!("\n[[rule.limit]]\nname = \"limit-{l}\"\n"));
                match &limit.key {
                    KeyField::Name(name) => {
                        let legacy = ["global", "client_ip", "user", "app_user", "client"];
                        let key = choice(*name, &legacy, legacy.len(), "global");
                        t.push_str(&format!("key = {}\n", quote(key)));
                    }
                    KeyField::Attributes(names) => {
                        let mut key: Vec<&str> = Vec::new();
                        for name in names.iter().take(3) {
                            if !key.contains(&name.valid()) {
                                key.push(name.valid());
                            }
                        }
                        let key: Vec<String> = key.iter().map(|n| quote(n)).collect();
                        t.push_str(&format!("key = [{}]\n", key.join(", ")));
                    }
                }
                let on_missing = choice(limit.on_missing, &["skip", "shared", "deny"], 3, "deny");
                t.push_str(&format!("on_missing = {}\n", quote(on_missing)));
                if let Some(shadow) = limit.shadow {
                    t.push_str(&format!("shadow = {shadow}\n"));
                }
                let algorithms = [
                    "gcra",
                    "fixed_window",
                    "sliding_window",
                    "sliding_window_strict",
                ];
                let algorithm = choice(limit.algorithm, &algorithms, 4, "gcra");
                t.push_str(&format!("algorithm = {}\n", quote(algorithm)));
                t.push_str(&format!("limit = {}\n", small(limit.limit, 50, 3)));
                let period = match limit.period {
                    PeriodField::Valid(n, unit) => {
                        let units = ["ms", "s", "m", "min", "h"];
                        format!("{}{}", n % 100 + 1, units[usize::from(unit) % units.len()])
                    }
                    _ => String::from("1s"),
                };
                t.push_str(&format!("period = {}\n", quote(&period)));
                match algorithm {
                    "gcra" if limit.burst != IntField::Omit => {
                        t.push_str(&format!("burst = {}\n", small(limit.burst, 50, 1)));
                    }
                    "sliding_window_strict" if limit.sub_windows != IntField::Omit => {
                        let n = small(limit.sub_windows, 16, 4);
                        t.push_str(&format!("sub_windows = {n}\n"));
                    }
                    _ => {}
                }
            }
        }
        t
    }
}

/// A fuzz input.
#[derive(Clone, PartialEq, Eq)]
pub enum PolicyCase<'a> {
    /// TOML text.
    Text(String),
    /// A structured policy.
    Template(Box<Template<'a>>),
}

impl<'a> PolicyCase<'a> {
    /// Decodes the input (first byte `0xff`: structured; otherwise text).
    #[must_use]
    pub fn from_bytes(data: &'a [u8]) -> Option<Self> {
        match data.split_first() {
            Some((0xff, rest)) => Template::arbitrary_take_rest(Unstructured::new(rest))
                .ok()
                .map(|t| Self::Template(Box::new(t))),
            _ => Some(Self::Text(String::from_utf8_lossy(data).into_owned())),
        }
    }

    /// The TOML text.
    #[must_use]
    pub fn text(&self) -> String {
        match self {
            Self::Text(t) => t.clone(),
            Self::Template(t) => t.text(),
        }
    }
}

/// An upper bound of the table memory `text` would make `Policy` allocate (0 if it does
/// not even parse as TOML, since then nothing is allocated).
#[must_use]
pub fn table_bytes(text: &str) -> u128 {
    let Ok(doc) = toml::from_str::<toml::Table>(text) else {
        return 0;
    };
    let capacity = doc
        .get("table")
        .and_then(|t| t.get("capacity"))
        .and_then(toml::Value::as_integer)
        .unwrap_or(65_536);
    let capacity = u128::try_from(capacity)
        .unwrap_or(0)
        .next_power_of_two()
        .max(8);
    let mut total = 0u128;
    for rule in doc
        .get("rule")
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
    {
        for limit in rule
            .get("limit")
            .and_then(toml::Value::as_array)
            .into_iter()
            .flatten()
        {
            let strict = limit.get("algorithm").and_then(toml::Value::as_str)
                == Some("sliding_window_strict");
            let ring = if strict {
                limit
                    .get("sub_windows")
                    .and_then(toml::Value::as_integer)
                    .map_or(61, |n| u128::try_from(n).unwrap_or(0) + 1)
            } else {
                0
            };
            total = total.saturating_add(capacity.saturating_mul(1 + ring).saturating_mul(16));
        }
    }
    total
}

fn requests<'c>(case: &'c PolicyCase<'_>) -> Vec<RequestT<'c>> {
    match case {
        PolicyCase::Template(t) => t.requests.iter().take(32).cloned().collect(),
        // The seed policies' attributes: auth (each token kind, or none), client_ip,
        // user, app and client, some absent.
        PolicyCase::Text(_) => (0..8u8)
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
                RequestT {
                    method: i,
                    path: [
                        "/api/readings",
                        "/",
                        "/cards/1/transactions/2/commit",
                        "/x?y",
                    ][usize::from(i % 4)],
                    attributes,
                    step: u32::from(i) * 100_000_000,
                    cost: i % 3,
                }
            })
            .collect(),
    }
}

impl<'a> NameField<'a> {
    /// The name, for the lifetime of the input.
    fn name(&self) -> &'a str {
        match *self {
            Self::Choice(i) => ATTRIBUTES[usize::from(i) % ATTRIBUTES.len()],
            Self::Text(t) => t,
        }
    }
}

/// The monotonic time before the first request's step.
const START: u64 = 1_000_000_000;

/// The values `ValueField::Int` picks from in requests (by its low byte): short
/// repetitions of one byte, the empty value included.
fn ids() -> Vec<Vec<u8>> {
    (0..=255u8).map(|i| vec![i; usize::from(i % 4)]).collect()
}

/// A request's attributes (`ids`: the values `ValueField::Int` picks from).
fn attributes<'v>(request: &RequestT<'v>, ids: &'v [Vec<u8>]) -> Vec<Attribute<'v>> {
    request
        .attributes
        .iter()
        .take(12)
        .map(|(name, value)| {
            let value: &'v [u8] = match *value {
                ValueField::Choice(i) => VALUES[usize::from(i) % VALUES.len()].as_bytes(),
                ValueField::Text(t) => t.as_bytes(),
                ValueField::Int(n) => &ids[usize::from(n as u8)],
            };
            Attribute::new(name.name(), value)
        })
        .collect()
}

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

/// What a decision says, to compare two decisions on one request: the real answer
/// (`real`), and with `shadow` what the shadow limits said.
#[derive(Debug, PartialEq, Eq)]
struct Summary {
    allowed: bool,
    limited: bool,
    decision: ratecore::Decision,
    exempted_by: Option<String>,
    missing: bool,
    deciding: Option<(String, String)>,
    entries: Vec<(String, String, ratecore::Decision)>,
    shadow: Option<Vec<(String, String, ratecore::Decision)>>,
}

fn summary(d: &PolicyDecision<'_>, shadow: bool) -> Summary {
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
fn consistent(d: &PolicyDecision<'_>, present: &[(&str, &[u8])], now: u64) {
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

/// The policy of `text` without its shadow limits (rules left with none dropped), if it
/// has any.
fn without_shadow(text: &str) -> Option<Policy> {
    let mut spec = PolicySpec::from_toml_str(text, "fuzz.toml").expect("it built once");
    if !spec.rules.iter().flat_map(|r| &r.limits).any(|l| l.shadow) {
        return None;
    }
    for rule in &mut spec.rules {
        rule.limits.retain(|l| !l.shadow);
    }
    spec.rules.retain(|r| r.unlimited || !r.limits.is_empty());
    Some(Policy::new(spec).expect("the policy without its shadow limits builds"))
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
            assert_eq!(e.origin, "fuzz.toml");
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
            return;
        }
        Ok(policy) => policy,
    };
    let _ = policy.rules().count();
    let _ = policy.attribute_names().count();
    let limits = policy.metrics().count();
    assert!(
        policy.memory_bytes() as u128 <= budget,
        "{} bytes of tables, above the estimate {budget}",
        policy.memory_bytes()
    );
    assert_eq!(policy.memory_bytes() > 0, limits > 0);
    let plain = without_shadow(&text);
    // While at most 8 distinct attribute sets have been seen no table can be full, so
    // nothing depends on a table's random seed: peeks and the policy without shadow
    // limits must decide exactly as the checks do.
    let mut seen: Vec<Vec<(&str, &[u8])>> = Vec::new();
    // What the checks' decisions say each limit did: allowed, denied, shadow-denied.
    let mut expected = vec![[0u64; 3]; limits];
    let mut now = START;
    let ids = ids();
    let cases = requests(case);
    for r in &cases {
        now = now.saturating_add(r.step.into());
        let attributes = attributes(r, &ids);
        let request = Request::new(
            METHODS[usize::from(r.method) % METHODS.len()],
            r.path,
            &attributes,
        );
        let present = effective(&attributes);
        if !seen.contains(&present) {
            seen.push(present.clone());
        }
        let exact = seen.len() <= 8;
        let cost = u64::from(r.cost % 4);
        let peeked = policy.peek(&request, now, cost);
        let checked = policy.check(&request, now, cost);
        let (peeked, checked) = match (peeked, checked) {
            (Err(e), Err(f)) => {
                assert_eq!(e, f);
                let CheckError::CostExceedsLimit { cost: c, limit } = e else {
                    panic!("unexpected error {e:?}");
                };
                assert!(c == cost && cost > limit);
                if let Some(plain) = &plain {
                    // A cost no shadow limit fits is no error: only real limits err.
                    assert_eq!(plain.peek(&request, now, cost).err(), Some(e));
                }
                continue;
            }
            (Ok(p), Ok(c)) => (p, c),
            (p, c) => panic!("peek {:?} but check {:?}", p.err(), c.err()),
        };
        consistent(&peeked, &present, now);
        consistent(&checked, &present, now);
        for (limit, state) in checked.entries().chain(checked.shadow_entries()) {
            let column = match (state.allowed, limit.shadow) {
                (true, _) => 0,
                (false, false) => 1,
                (false, true) => 2,
            };
            expected[limit.id][column] += 1;
        }
        if exact {
            assert_eq!(
                summary(&peeked, true),
                summary(&checked, true),
                "a peek and the check after it disagree"
            );
        }
        if let (true, Some(plain)) = (exact, &plain) {
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
    for (limit, m) in policy.metrics() {
        let [allowed, denied, shadow_denied] = expected[limit.id];
        assert_eq!(
            (m.allowed, m.denied, m.shadow_denied),
            (allowed, denied, shadow_denied),
            "metrics of {limit:?}"
        );
        assert!(m.checked() <= cases.len() as u64, "{limit:?}: {m:?}");
    }
}

impl fmt::Debug for PolicyCase<'_> {
    /// A reproducer: the TOML text, ready to pass to `Policy::from_toml_str`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "// fuzz/policy_config reproducer")?;
        writeln!(f, "let text = {:?};", self.text())?;
        writeln!(
            f,
            "let policy = Policy::from_toml_str(text, \"fuzz.toml\").unwrap();"
        )?;
        // The requests `run` makes (a peek, then a check, of each).
        let ids = ids();
        let mut now = START;
        for r in requests(self) {
            now = now.saturating_add(r.step.into());
            let attributes: Vec<String> = attributes(&r, &ids)
                .iter()
                .map(|a| format!("Attribute::new({:?}, &{:?})", a.name, a.value))
                .collect();
            writeln!(
                f,
                "let _ = policy.check(&Request::new({:?}, {:?}, &[{}]), {now}, {});",
                METHODS[usize::from(r.method) % METHODS.len()],
                r.path,
                attributes.join(", "),
                r.cost % 4
            )?;
        }
        Ok(())
    }
}
