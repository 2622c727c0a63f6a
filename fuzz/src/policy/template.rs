//! The policy generator: a TOML template whose fields take arbitrary values (valid
//! words, wrong types, any text, out-of-range numbers), per-client overrides valid and
//! malformed, and edits of a generated policy for reloads.

use arbitrary::Arbitrary;

use crate::gen::Num;

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
    /// `[[rule.limit.override]]` tables (the first 3).
    pub overrides: Vec<OverrideT<'a>>,
}

/// One `[[rule.limit.override]]`.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct OverrideT<'a> {
    /// `attribute` (the invalid choice and any text included).
    pub attribute: NameField<'a>,
    /// `value` (a number: the bytes of an id, as requests carry them; malformed: a TOML
    /// integer).
    pub value: ValueField<'a>,
    /// `limit`, `burst`, `unlimited`.
    pub quota: FileQuota<'a>,
}

/// An override's quota fields, valid and malformed.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileQuota<'a> {
    /// `limit = n`.
    Limit(LimitNum),
    /// `limit = n`, `burst = b` (malformed unless the limit is GCRA).
    LimitBurst(LimitNum, LimitNum),
    /// `unlimited = true`.
    Unlimited,
    /// `limit = n`, `unlimited = false`.
    NotUnlimited(LimitNum),
    /// Neither `limit` nor `unlimited` (malformed).
    Neither,
    /// `limit = n` and `unlimited = true` (malformed).
    Both(LimitNum),
    /// `unlimited = true`, `burst = b` (malformed).
    UnlimitedBurst(LimitNum),
    /// `limit = "text"` (malformed).
    Text(&'a str),
    /// `limit = n` and a field overrides do not have (malformed).
    Unknown(LimitNum),
}

/// A limit or burst in an override: edge values (0, powers of two ± 1 — the state word's
/// room for a count lies at a power of two —, `u64::MAX`, which TOML cannot hold),
/// negatives.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitNum {
    /// A `u64` biased to edges.
    Num(Num),
    /// `-n`.
    Negative(u8),
}

impl LimitNum {
    /// As TOML (a `u64` above `i64::MAX` is written as it is: a TOML error).
    fn toml(self) -> String {
        match self {
            Self::Num(n) => n.get().to_string(),
            Self::Negative(n) => format!("-{n}"),
        }
    }

    /// A valid count: tiny values mapped to 1..=100, other edges kept (clamped to what
    /// TOML holds), so that well-formed policies still meet the state word's room.
    fn well_formed(self) -> u64 {
        match self {
            Self::Num(Num::Tiny(v)) => u64::from(v) % 100 + 1,
            Self::Num(n) => n.get().clamp(1, i64::MAX as u64),
            Self::Negative(n) => u64::from(n) % 100 + 1,
        }
    }
}

impl OverrideT<'_> {
    /// The table as written (malformed fields spliced in as they are).
    fn toml(&self, out: &mut String) {
        out.push_str("\n[[rule.limit.override]]\n");
        out.push_str(&format!("attribute = {}\n", quote(self.attribute.name())));
        out.push_str(&format!("value = {}\n", value_toml(self.value)));
        match self.quota {
            FileQuota::Limit(n) => out.push_str(&format!("limit = {}\n", n.toml())),
            FileQuota::LimitBurst(n, b) => {
                out.push_str(&format!("limit = {}\nburst = {}\n", n.toml(), b.toml()));
            }
            FileQuota::Unlimited => out.push_str("unlimited = true\n"),
            FileQuota::NotUnlimited(n) => {
                out.push_str(&format!("limit = {}\nunlimited = false\n", n.toml()));
            }
            FileQuota::Neither => {}
            FileQuota::Both(n) => {
                out.push_str(&format!("limit = {}\nunlimited = true\n", n.toml()));
            }
            FileQuota::UnlimitedBurst(b) => {
                out.push_str(&format!("unlimited = true\nburst = {}\n", b.toml()));
            }
            FileQuota::Text(t) => out.push_str(&format!("limit = {}\n", quote(t))),
            FileQuota::Unknown(n) => {
                out.push_str(&format!("limit = {}\nperiod = \"1s\"\n", n.toml()));
            }
        }
    }

    /// The table with every field valid for a limit of `algorithm`: a valid attribute,
    /// a string value, and `limit` (with `burst` only for GCRA) or `unlimited = true`.
    /// Huge limits stay huge: the build may refuse them (the state word's room).
    fn well_formed_toml(&self, out: &mut String, gcra: bool) {
        out.push_str("\n[[rule.limit.override]]\n");
        out.push_str(&format!("attribute = {}\n", quote(self.attribute.valid())));
        out.push_str(&format!("value = {}\n", quote(&value_text(self.value))));
        match self.quota {
            FileQuota::Limit(n) | FileQuota::NotUnlimited(n) | FileQuota::Unknown(n) => {
                out.push_str(&format!("limit = {}\n", n.well_formed()));
            }
            FileQuota::LimitBurst(n, b) => {
                out.push_str(&format!("limit = {}\n", n.well_formed()));
                if gcra {
                    out.push_str(&format!("burst = {}\n", b.well_formed()));
                }
            }
            FileQuota::Text(t) => out.push_str(&format!("limit = {}\n", t.len() % 50 + 1)),
            FileQuota::Unlimited
            | FileQuota::Neither
            | FileQuota::Both(_)
            | FileQuota::UnlimitedBurst(_) => out.push_str("unlimited = true\n"),
        }
    }
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
pub struct PolicyT<'a> {
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
pub(crate) fn quote(s: &str) -> String {
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

pub(crate) const METHODS: &[&str] = &["GET", "POST", "ALL", "*", "get", "", "PUT"];

impl PolicyT<'_> {
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
                for o in limit.overrides.iter().take(3) {
                    o.toml(&mut t);
                }
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

impl PolicyT<'_> {
    /// The TOML text with every field valid (see [`PolicyT::well_formed`]). What can
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
                for o in limit.overrides.iter().take(3) {
                    o.well_formed_toml(&mut t, algorithm == "gcra");
                }
            }
        }
        t
    }
}

impl<'a> NameField<'a> {
    /// The name, for the lifetime of the input.
    pub(crate) fn name(&self) -> &'a str {
        match *self {
            Self::Choice(i) => ATTRIBUTES[usize::from(i) % ATTRIBUTES.len()],
            Self::Text(t) => t,
        }
    }
}

/// The values `ValueField::Int` picks from (by its low byte): short repetitions of one
/// byte, the empty value included.
pub(crate) fn id(n: i64) -> &'static [u8] {
    static IDS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    let ids = IDS.get_or_init(|| (0..=255u8).map(|i| vec![i; usize::from(i % 4)]).collect());
    &ids[usize::from(n as u8)]
}

impl<'a> ValueField<'a> {
    /// The bytes a request attribute (or an override set at run time) carries.
    pub(crate) fn bytes(&self) -> &'a [u8] {
        match *self {
            Self::Choice(i) => VALUES[usize::from(i) % VALUES.len()].as_bytes(),
            Self::Text(t) => t.as_bytes(),
            Self::Int(n) => id(n),
        }
    }
}

/// A value as a TOML string's contents: the bytes a request carries (an id that is not
/// UTF-8 comes out lossy, and then matches no request).
fn value_text(value: ValueField<'_>) -> String {
    String::from_utf8_lossy(value.bytes()).into_owned()
}

/// An edit of the generated policy in force, so that a reload keeps some limits (and
/// their state) and changes others.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum Tweak<'a> {
    /// Drops a rule (index modulo their number).
    DropRule(u8),
    /// Swaps two rules (a reorder changes no limit's identity).
    SwapRules(u8, u8),
    /// Another `limit` for one limit: it starts afresh, and so do its table-mates.
    Limit {
        /// Rule index.
        rule: u8,
        /// Limit index.
        limit: u8,
        /// The new `limit`.
        value: IntField<'a>,
    },
    /// Other overrides for one limit.
    Overrides {
        /// Rule index.
        rule: u8,
        /// Limit index.
        limit: u8,
        /// The new overrides.
        overrides: Vec<OverrideT<'a>>,
    },
    /// Flips one limit's shadow flag.
    Shadow {
        /// Rule index.
        rule: u8,
        /// Limit index.
        limit: u8,
    },
    /// Drops one limit.
    DropLimit {
        /// Rule index.
        rule: u8,
        /// Limit index.
        limit: u8,
    },
    /// Another table capacity: every keyed table starts afresh.
    Capacity(IntField<'a>),
    /// Renders the policy the other way (well-formed or spliced as it is).
    Flip,
}

impl<'a> PolicyT<'a> {
    /// The limit `limit` of rule `rule` (indices modulo their numbers), if any.
    fn limit_mut(&mut self, rule: u8, limit: u8) -> Option<&mut LimitT<'a>> {
        let rules = self.rules.len().min(4);
        let rule = self.rules.get_mut(usize::from(rule) % rules.max(1))?;
        let limits = rule.limits.len().min(5);
        rule.limits.get_mut(usize::from(limit) % limits.max(1))
    }

    /// This policy with `tweaks` applied in order.
    #[must_use]
    pub fn tweaked(&self, tweaks: &[Tweak<'a>]) -> Self {
        let mut p = self.clone();
        for tweak in tweaks.iter().take(4) {
            let rules = p.rules.len().min(4);
            match tweak {
                Tweak::DropRule(i) if rules > 0 => {
                    p.rules.remove(usize::from(*i) % rules);
                }
                Tweak::SwapRules(i, j) if rules > 0 => {
                    p.rules
                        .swap(usize::from(*i) % rules, usize::from(*j) % rules);
                }
                Tweak::Limit { rule, limit, value } => {
                    if let Some(l) = p.limit_mut(*rule, *limit) {
                        l.limit = *value;
                    }
                }
                Tweak::Overrides {
                    rule,
                    limit,
                    overrides,
                } => {
                    if let Some(l) = p.limit_mut(*rule, *limit) {
                        l.overrides.clone_from(overrides);
                    }
                }
                Tweak::Shadow { rule, limit } => {
                    if let Some(l) = p.limit_mut(*rule, *limit) {
                        l.shadow = Some(!l.shadow.unwrap_or(false));
                    }
                }
                Tweak::DropLimit { rule, limit } if rules > 0 => {
                    let r = &mut p.rules[usize::from(*rule) % rules];
                    let limits = r.limits.len().min(5);
                    if limits > 0 {
                        r.limits.remove(usize::from(*limit) % limits);
                    }
                }
                Tweak::Capacity(c) => p.capacity = *c,
                Tweak::Flip => p.well_formed = !p.well_formed,
                _ => {}
            }
        }
        p
    }
}
