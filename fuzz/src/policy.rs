//! `policy_config`: the TOML policy parser and everything a parsed policy does.
//!
//! The input's first byte picks the mode:
//! - `0xff`: a structured generator fills a valid template with arbitrary field values
//!   (valid choices, wrong types, arbitrary text, out-of-range numbers) to reach the deep
//!   validation: durations, quotas per algorithm, routes, burst and sub-window rules;
//! - anything else: the whole input (lossy UTF-8) is the TOML text.
//!
//! `Policy::from_toml_str` must never panic; an error's line and column must lie inside
//! the text (or be 0 when unknown), and name the origin given. A policy that builds is
//! used: checks and peeks of a few requests (never an error other than a cost above a
//! limit, sane decisions), and its header and body rendering (exact buffer protocol,
//! well-formed header lines). `Route::parse` and `parse_duration` get the raw text too.
//!
//! A policy's tables are allocated when it is built (capacity × (1 + ring) × 16 bytes
//! per limit), so texts whose tables would exceed [`MAX_TABLE_BYTES`] are only parsed by
//! `toml`, not built: that is memory, not a bug.

use std::fmt;

use arbitrary::{Arbitrary, Unstructured};
use ratecore::policy::{parse_duration, Policy, Request, Route};
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

/// One `[[rule.limit]]`.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct LimitT<'a> {
    /// `name`.
    pub name: Option<&'a str>,
    /// `key`.
    pub key: Field<'a>,
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
    /// `description`.
    pub description: Option<&'a str>,
    /// `unlimited`.
    pub unlimited: Option<bool>,
    /// The limits (first 5).
    pub limits: Vec<LimitT<'a>>,
}

/// A structured policy.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct Template<'a> {
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
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestT<'a> {
    /// Method choice.
    pub method: u8,
    /// Path.
    pub path: &'a str,
    /// Client IP.
    pub client_ip: Option<u8>,
    /// User.
    pub user: Option<u8>,
    /// OAuth app.
    pub app: Option<u8>,
    /// OAuth client.
    pub client: Option<u8>,
    /// Nanoseconds on from the previous request.
    pub step: u32,
    /// Cost.
    pub cost: u8,
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
            for limit in rule.limits.iter().take(5) {
                t.push_str("\n[[rule.limit]]\n");
                if let Some(n) = limit.name {
                    t.push_str(&format!("name = {}\n", quote(n)));
                }
                field(
                    &mut t,
                    "key",
                    limit.key,
                    &["global", "client_ip", "user", "app_user", "client", "ip"],
                );
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
        PolicyCase::Template(t) => t.requests.iter().take(32).copied().collect(),
        PolicyCase::Text(_) => (0..8u8)
            .map(|i| RequestT {
                method: i,
                path: [
                    "/api/readings",
                    "/",
                    "/cards/1/transactions/2/commit",
                    "/x?y",
                ][usize::from(i % 4)],
                client_ip: Some(i % 3),
                user: (i % 2 == 0).then_some(i),
                app: Some(1),
                client: Some(i % 2),
                step: u32::from(i) * 100_000_000,
                cost: i % 3,
            })
            .collect(),
    }
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
    if table_bytes(&text) > MAX_TABLE_BYTES {
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
    let mut now = 1_000_000_000u64;
    let ids: Vec<Vec<u8>> = (0..=255u8).map(|i| vec![i; usize::from(i % 4)]).collect();
    for r in requests(case) {
        now = now.saturating_add(r.step.into());
        let request = Request {
            method: METHODS[usize::from(r.method) % METHODS.len()],
            path: r.path,
            client_ip: r.client_ip.map(|i| &ids[usize::from(i)][..]),
            user: r.user.map(|i| &ids[usize::from(i)][..]),
            app: r.app.map(|i| &ids[usize::from(i)][..]),
            client: r.client.map(|i| &ids[usize::from(i)][..]),
        };
        let cost = u64::from(r.cost % 4);
        for commit in [false, true] {
            let result = if commit {
                policy.check(&request, now, cost)
            } else {
                policy.peek(&request, now, cost)
            };
            let decision = match result {
                Err(CheckError::CostExceedsLimit { cost: c, limit }) => {
                    assert!(c == cost && cost > limit);
                    continue;
                }
                Err(e) => panic!("unexpected error {e:?}"),
                Ok(d) => d,
            };
            if !decision.limited() {
                assert!(decision.allowed());
                assert_eq!(decision.render_headers(0, &mut []), Ok(0));
                continue;
            }
            sane(decision.decision());
            assert!(decision.deciding().is_some());
            for (_, d) in decision.entries() {
                assert!(d.remaining <= d.limit, "{d:?}");
            }
            let block = protocol(|out| decision.render_headers(now, out), 17);
            header_lines(&block);
            if !decision.allowed() {
                let _ = decision.content_type();
                protocol(|out| decision.render_body(out), 9);
            }
        }
    }
}

impl fmt::Debug for PolicyCase<'_> {
    /// A reproducer: the TOML text, ready to pass to `Policy::from_toml_str`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "// fuzz/policy_config reproducer")?;
        writeln!(f, "let text = {:?};", self.text())?;
        writeln!(f, "let _ = Policy::from_toml_str(text, \"fuzz.toml\");")?;
        if let Self::Template(t) = self {
            writeln!(f, "// requests: {:?}", t.requests)?;
        }
        Ok(())
    }
}
