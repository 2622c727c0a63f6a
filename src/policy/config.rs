//! Policies from TOML (feature `config`), with errors that name the file, line, column
//! and field of every malformed input.
//!
//! ```toml
//! [response]
//! headers = "switch"          # evenergy | uphold | switch | ietf
//! body = "text"               # problem+json | text
//! status = 429
//!
//! [table]
//! capacity = 100000           # keys per table
//! when_full = "evict"         # evict | deny | allow
//!
//! [[rule]]
//! name = "save-readings"
//! route = "POST /api/readings"
//! description = "Save readings API interface"
//! # Conditions on request attributes, all of which must hold:
//! #   attr = "v"                  equals
//! #   attr = ["v", "w"]           one of
//! #   attr = { not_in = ["v"] }   absent, or none of
//! #   attr = { present = true }   present (false: absent)
//! when = { auth = "client_credentials" }
//! shadow = false              # true: every limit of the rule counts but never denies
//!
//! [[rule.limit]]
//! name = "per-second"
//! key = ["app"]               # attributes, in order; [] = one counter for all
//! on_missing = "deny"         # skip | shared | deny (required unless `when` ensures
//!                             # every key attribute is present)
//! algorithm = "fixed_window"  # gcra | fixed_window | sliding_window | sliding_window_strict
//! limit = 5
//! period = "1s"               # <n><ns|us|ms|s|m|min|h|d>
//! shadow = false
//!
//! [[rule.limit.override]]     # another quota for chosen clients (first match applies)
//! attribute = "client"
//! value = "c-42"
//! limit = 50                  # same algorithm and period; or unlimited = true
//! ```
//!
//! Earlier versions' key names still work and mean what they meant: `key = "global"`
//! (`[]`), `"client_ip"`, `"user"`, `"client"` (that one attribute) and `"app_user"`
//! (`["app", "user"]`), each with `on_missing = "skip"`.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use std::collections::BTreeMap;

use super::{
    Body, Condition, LimitRule, OnMissing, Override, OverrideQuota, Policy, PolicySpec,
    ResponseSpec, Route, Rule, Test,
};
use crate::algorithm::Algorithm;
use crate::http::HeaderStyle;
use crate::quota::Quota;
use crate::table::FullPolicy;

/// A malformed configuration: where, which field, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file name (or `<string>`).
    pub origin: String,
    /// 1-based line (0 when unknown).
    pub line: usize,
    /// 1-based column (0 when unknown).
    pub column: usize,
    /// The field's path, e.g. `rule[1].limit[0].period` (empty when not one field).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.origin, self.line, self.column)?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    response: Option<RawResponse>,
    #[serde(default)]
    table: Option<RawTable>,
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResponse {
    headers: Option<Spanned<String>>,
    body: Option<Spanned<String>>,
    problem_type: Option<String>,
    problem_title: Option<String>,
    status: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    capacity: Option<Spanned<i64>>,
    when_full: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Spanned<String>,
    route: Option<Spanned<String>>,
    description: Option<String>,
    #[serde(default)]
    unlimited: bool,
    #[serde(default)]
    shadow: bool,
    #[serde(default)]
    when: BTreeMap<String, Spanned<toml::Value>>,
    #[serde(default)]
    limit: Vec<RawLimit>,
}

/// A key: an attribute list, or one of earlier versions' names.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawKey {
    Legacy(String),
    Attributes(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimit {
    name: Option<Spanned<String>>,
    key: Spanned<RawKey>,
    on_missing: Option<Spanned<String>>,
    #[serde(default)]
    shadow: bool,
    algorithm: Option<Spanned<String>>,
    limit: Spanned<i64>,
    period: Spanned<String>,
    burst: Option<Spanned<i64>>,
    sub_windows: Option<Spanned<i64>>,
    #[serde(default, rename = "override")]
    overrides: Vec<RawOverride>,
}

/// `[[rule.limit.override]]`: `attribute`, `value`, and `limit` (with `burst` for GCRA)
/// or `unlimited = true`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOverride {
    attribute: Spanned<String>,
    value: Spanned<String>,
    limit: Option<Spanned<i64>>,
    burst: Option<Spanned<i64>>,
    #[serde(default)]
    unlimited: bool,
}

/// The spellings of the options a policy file chooses among, in the order its errors
/// list them.
const HEADER_STYLES: &[(&str, HeaderStyle)] = &[
    ("evenergy", HeaderStyle::EvEnergy),
    ("uphold", HeaderStyle::Uphold),
    ("switch", HeaderStyle::Switch),
    ("ietf", HeaderStyle::Ietf),
];
/// `response.body`: `true` for plain text.
const BODY_STYLES: &[(&str, bool)] = &[("problem+json", false), ("text", true)];
const WHEN_FULL: &[(&str, FullPolicy)] = &[
    ("evict", FullPolicy::EvictClosestToRest),
    ("deny", FullPolicy::Deny),
    ("allow", FullPolicy::Allow),
];
const ON_MISSING: &[(&str, OnMissing)] = &[
    ("skip", OnMissing::Skip),
    ("shared", OnMissing::Shared),
    ("deny", OnMissing::Deny),
];

/// Turns spans into line/column and builds errors.
struct Source<'a> {
    origin: &'a str,
    text: &'a str,
}

impl Source<'_> {
    fn error(
        &self,
        span: Option<Range<usize>>,
        field: &str,
        message: impl Into<String>,
    ) -> ConfigError {
        let (line, column) = span.map_or((0, 0), |s| self.position(s.start));
        ConfigError {
            origin: self.origin.to_string(),
            line,
            column,
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// The option `value` names among `options`, or an error at `field` that lists them
    /// ("unknown {what} \"x\" (use a, b or c)").
    fn choice<T: Copy>(
        &self,
        value: &Spanned<String>,
        field: &str,
        what: &str,
        options: &[(&str, T)],
    ) -> Result<T, ConfigError> {
        let text = value.get_ref().as_str();
        if let Some(&(_, option)) = options.iter().find(|(name, _)| *name == text) {
            return Ok(option);
        }
        let mut names = options.iter().map(|(name, _)| *name).collect::<Vec<_>>();
        let last = names.pop().unwrap_or_default();
        let list = if names.is_empty() {
            String::from(last)
        } else {
            format!("{} or {last}", names.join(", "))
        };
        Err(self.error(
            Some(value.span()),
            field,
            format!("unknown {what} {text:?} (use {list})"),
        ))
    }

    fn position(&self, offset: usize) -> (usize, usize) {
        let before = self.text.get(..offset).unwrap_or(self.text);
        let line = before.matches('\n').count() + 1;
        let column = before
            .rfind('\n')
            .map_or(before.len(), |nl| before.len() - nl - 1)
            + 1;
        (line, column)
    }
}

/// Parses a duration such as `1s`, `5m`, `10min`, `1h`, `250ms`.
///
/// # Errors
/// A message saying what is wrong.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let value: u64 = digits.parse().map_err(|_| {
        format!("bad duration {text:?}: expected a number then a unit, like \"5m\"")
    })?;
    let scale: u64 = match unit.trim() {
        "ns" => 1,
        "us" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" | "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "d" => 86_400_000_000_000,
        other => {
            return Err(format!(
                "bad duration {text:?}: unknown unit {other:?} (use ns, us, ms, s, m, h or d)"
            ))
        }
    };
    if value == 0 {
        return Err(format!("bad duration {text:?}: must be longer than 0"));
    }
    value
        .checked_mul(scale)
        .ok_or_else(|| format!("bad duration {text:?}: longer than 584 years"))
}

fn positive(
    value: &Spanned<i64>,
    src: &Source<'_>,
    field: &str,
    what: &str,
) -> Result<u64, ConfigError> {
    u64::try_from(*value.get_ref())
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| {
            src.error(
                Some(value.span()),
                field,
                format!("{what} must be at least 1"),
            )
        })
}

impl PolicySpec {
    /// Parses a policy specification from TOML text without building it (e.g. to build it
    /// on another backend); `origin` names it in errors.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the line, column and field of the first problem.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let src = Source { origin, text };
        let raw: RawPolicy = toml::from_str(text)
            .map_err(|e| src.error(e.span(), "", e.message().trim_end().to_string()))?;
        spec_from_raw(raw, &src)
    }
}

/// A build error as a configuration error of `origin` (no line: it concerns the whole).
fn build_error(origin: &str, error: &super::PolicyError) -> ConfigError {
    ConfigError {
        origin: origin.to_string(),
        line: 0,
        column: 0,
        field: String::new(),
        message: error.to_string(),
    }
}

/// Reads a TOML file's text; `origin` is its path as errors name it.
fn read(path: &std::path::Path) -> Result<(String, String), ConfigError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        origin: origin.clone(),
        line: 0,
        column: 0,
        field: String::new(),
        message: format!("cannot read: {e}"),
    })?;
    Ok((text, origin))
}

impl Policy {
    /// Parses and builds a policy from TOML text; `origin` names it in errors.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the line, column and field of the first problem.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let spec = PolicySpec::from_toml_str(text, origin)?;
        Policy::new(spec).map_err(|e| build_error(origin, &e))
    }

    /// Reads, parses and builds a policy from a TOML file.
    ///
    /// # Errors
    /// A [`ConfigError`] (an unreadable file included).
    pub fn from_toml_file(path: impl AsRef<std::path::Path>) -> Result<Self, ConfigError> {
        let (text, origin) = read(path.as_ref())?;
        Self::from_toml_str(&text, &origin)
    }

    /// [`reload`](Self::reload) from TOML text; `origin` names it in errors. A malformed
    /// or invalid text is rejected and the version in force stays.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the line, column and field of the first problem.
    pub fn reload_toml_str(
        &self,
        text: &str,
        origin: &str,
    ) -> Result<super::ReloadReport, ConfigError> {
        let spec = PolicySpec::from_toml_str(text, origin)?;
        self.reload(spec).map_err(|e| build_error(origin, &e))
    }

    /// [`reload`](Self::reload) from a TOML file.
    ///
    /// # Errors
    /// A [`ConfigError`] (an unreadable file included); the version in force stays.
    pub fn reload_toml_file(
        &self,
        path: impl AsRef<std::path::Path>,
    ) -> Result<super::ReloadReport, ConfigError> {
        let (text, origin) = read(path.as_ref())?;
        self.reload_toml_str(&text, &origin)
    }
}

fn spec_from_raw(raw: RawPolicy, src: &Source<'_>) -> Result<PolicySpec, ConfigError> {
    let mut response = ResponseSpec::default();
    if let Some(r) = raw.response {
        if let Some(headers) = r.headers {
            response.headers =
                src.choice(&headers, "response.headers", "header style", HEADER_STYLES)?;
        }
        let plain = match &r.body {
            None => false,
            Some(body) => src.choice(body, "response.body", "body style", BODY_STYLES)?,
        };
        response.body = if plain {
            Body::PlainText
        } else {
            Body::ProblemJson {
                type_uri: r.problem_type.unwrap_or_else(|| "about:blank".to_string()),
                title: r
                    .problem_title
                    .unwrap_or_else(|| "Too Many Requests".to_string()),
            }
        };
        if let Some(status) = r.status {
            response.status = u16::try_from(*status.get_ref())
                .ok()
                .filter(|s| (400..=599).contains(s))
                .ok_or_else(|| {
                    src.error(
                        Some(status.span()),
                        "response.status",
                        "status must be 400 to 599",
                    )
                })?;
        }
    }
    let mut capacity = 65_536;
    let mut when_full = FullPolicy::EvictClosestToRest;
    if let Some(t) = raw.table {
        if let Some(c) = t.capacity {
            capacity = positive(&c, src, "table.capacity", "capacity")?;
        }
        if let Some(w) = t.when_full {
            when_full = src.choice(&w, "table.when_full", "policy", WHEN_FULL)?;
        }
    }
    let mut rules: Vec<Rule> = Vec::new();
    for (r_index, raw_rule) in raw.rule.into_iter().enumerate() {
        let at = |field: &str| format!("rule[{r_index}].{field}");
        let name = raw_rule.name.get_ref().trim().to_string();
        if name.is_empty() {
            return Err(src.error(
                Some(raw_rule.name.span()),
                &at("name"),
                "rule name is empty",
            ));
        }
        if rules.iter().any(|r| r.name == name) {
            return Err(src.error(
                Some(raw_rule.name.span()),
                &at("name"),
                format!("duplicate rule name {name:?}"),
            ));
        }
        let route = match &raw_rule.route {
            None => None,
            Some(route) => Some(
                Route::parse(route.get_ref())
                    .map_err(|e| src.error(Some(route.span()), &at("route"), e.to_string()))?,
            ),
        };
        if raw_rule.unlimited && !raw_rule.limit.is_empty() {
            return Err(src.error(
                Some(raw_rule.name.span()),
                &at("limit"),
                "an unlimited rule cannot have limits",
            ));
        }
        if !raw_rule.unlimited && raw_rule.limit.is_empty() {
            return Err(src.error(
                Some(raw_rule.name.span()),
                &at("limit"),
                "a rule needs at least one [[rule.limit]], or unlimited = true",
            ));
        }
        let mut conditions = Vec::new();
        for (attribute, value) in &raw_rule.when {
            conditions.push(condition_from_raw(attribute, value, src, &at)?);
        }
        let mut limits: Vec<LimitRule> = Vec::new();
        for (l_index, raw_limit) in raw_rule.limit.into_iter().enumerate() {
            let lat = |field: &str| format!("rule[{r_index}].limit[{l_index}].{field}");
            let name_span = raw_limit.name.as_ref().map(Spanned::span);
            let key_span = raw_limit.key.span();
            let mut limit = limit_from_raw(raw_limit, &name, &conditions, src, &lat)?;
            limit.shadow |= raw_rule.shadow;
            if limits.iter().any(|l| l.name == limit.name) {
                return Err(src.error(
                    name_span.or(Some(key_span)),
                    &lat("name"),
                    format!(
                        "limit name {:?} is used twice in this rule: give each limit its own name",
                        limit.name
                    ),
                ));
            }
            limits.push(limit);
        }
        rules.push(Rule {
            name,
            route,
            conditions,
            description: raw_rule.description,
            unlimited: raw_rule.unlimited,
            limits,
        });
    }
    Ok(PolicySpec {
        rules,
        capacity,
        when_full,
        response,
    })
}

/// Bytes of a condition value (a TOML string).
fn condition_value(value: &toml::Value) -> Option<Vec<u8>> {
    value.as_str().map(|v| v.as_bytes().to_vec())
}

fn condition_values(value: &toml::Value) -> Option<Vec<Vec<u8>>> {
    value.as_array()?.iter().map(condition_value).collect()
}

fn condition_from_raw(
    attribute: &str,
    value: &Spanned<toml::Value>,
    src: &Source<'_>,
    at: &dyn Fn(&str) -> String,
) -> Result<Condition, ConfigError> {
    let field = at(&format!("when.{attribute}"));
    let bad = |message: &str| src.error(Some(value.span()), &field, message);
    const USAGE: &str = "a condition is \"value\", [\"one\", \"of\"], { not_in = [...] } or { present = true|false }";
    let test = match value.get_ref() {
        toml::Value::String(v) => Test::Equals(v.as_bytes().to_vec()),
        array @ toml::Value::Array(_) => {
            Test::In(condition_values(array).ok_or_else(|| bad("the values must be strings"))?)
        }
        toml::Value::Table(table) => {
            let mut entries = table.iter();
            let (Some((op, operand)), None) = (entries.next(), entries.next()) else {
                return Err(bad(USAGE));
            };
            match (op.as_str(), operand) {
                ("present", toml::Value::Boolean(true)) => Test::Present,
                ("present", toml::Value::Boolean(false)) => Test::Absent,
                ("equals", v) => {
                    Test::Equals(condition_value(v).ok_or_else(|| bad("equals takes a string"))?)
                }
                ("in", v) => Test::In(
                    condition_values(v).ok_or_else(|| bad("in takes an array of strings"))?,
                ),
                ("not_in", v) => Test::NotIn(
                    condition_values(v).ok_or_else(|| bad("not_in takes an array of strings"))?,
                ),
                _ => return Err(bad(USAGE)),
            }
        }
        _ => return Err(bad(USAGE)),
    };
    if !super::compile::valid_attribute_name(attribute) {
        return Err(bad(
            "an attribute name uses ASCII letters, digits, '_', '-', '.' or ':'",
        ));
    }
    Ok(Condition {
        attribute: attribute.to_string(),
        test,
    })
}

/// The attributes of a key, and the missing-attribute handling earlier versions' names
/// imply (`None` for an attribute list, which must say).
fn key_from_raw(
    key: &Spanned<RawKey>,
    src: &Source<'_>,
    at: &dyn Fn(&str) -> String,
) -> Result<(Vec<String>, Option<OnMissing>, String), ConfigError> {
    let legacy = |attributes: &[&str]| attributes.iter().map(|a| (*a).to_string()).collect();
    match key.get_ref() {
        RawKey::Legacy(name) => {
            let attributes = match name.as_str() {
                "global" => Vec::new(),
                "client_ip" => legacy(&["client_ip"]),
                "user" => legacy(&["user"]),
                "client" => legacy(&["client"]),
                "app_user" => legacy(&["app", "user"]),
                other => {
                    return Err(src.error(
                        Some(key.span()),
                        &at("key"),
                        format!(
                            "unknown key {other:?}: key on attributes with key = [{other:?}] (or one of the names global, client_ip, user, app_user, client)"
                        ),
                    ))
                }
            };
            Ok((attributes, Some(OnMissing::Skip), name.clone()))
        }
        RawKey::Attributes(attributes) => {
            for attribute in attributes {
                if !super::compile::valid_attribute_name(attribute) {
                    return Err(src.error(
                        Some(key.span()),
                        &at("key"),
                        format!("bad attribute name {attribute:?}: use ASCII letters, digits, '_', '-', '.' or ':'"),
                    ));
                }
            }
            let label = if attributes.is_empty() {
                "global".to_string()
            } else {
                attributes.join("-")
            };
            Ok((attributes.clone(), None, label))
        }
    }
}

fn override_from_raw(
    raw: &RawOverride,
    algorithm: Algorithm,
    period: u64,
    src: &Source<'_>,
    at: &dyn Fn(&str) -> String,
) -> Result<Override, ConfigError> {
    let attribute = raw.attribute.get_ref();
    if !super::compile::valid_attribute_name(attribute) {
        return Err(src.error(
            Some(raw.attribute.span()),
            &at("attribute"),
            format!(
                "bad attribute name {attribute:?}: use ASCII letters, digits, '_', '-', '.' or ':'"
            ),
        ));
    }
    let quota = match (&raw.limit, raw.unlimited) {
        (None, true) => {
            if let Some(burst) = &raw.burst {
                return Err(src.error(
                    Some(burst.span()),
                    &at("burst"),
                    "an unlimited override has no burst",
                ));
            }
            OverrideQuota::Unlimited
        }
        (Some(limit), false) => {
            let value = positive(limit, src, &at("limit"), "limit")?;
            let mut quota = Quota::new(value, period)
                .map_err(|e| src.error(Some(limit.span()), &at("limit"), e.to_string()))?;
            let burst = match &raw.burst {
                None => None,
                Some(burst) if algorithm != Algorithm::Gcra => {
                    return Err(src.error(
                        Some(burst.span()),
                        &at("burst"),
                        "burst only applies to algorithm = \"gcra\"",
                    ))
                }
                Some(burst) => {
                    let b = positive(burst, src, &at("burst"), "burst")?;
                    quota = quota
                        .with_burst(b)
                        .map_err(|e| src.error(Some(burst.span()), &at("burst"), e.to_string()))?;
                    Some(b)
                }
            };
            let check = crate::table::LimitSpec { algorithm, quota };
            crate::table::TableConfig::new(8, &[check])
                .map_err(|e| src.error(Some(limit.span()), &at("limit"), e.to_string()))?;
            OverrideQuota::Limit {
                limit: value,
                burst,
            }
        }
        _ => {
            return Err(src.error(
                Some(raw.attribute.span()),
                &at("limit"),
                "an override has a limit, or unlimited = true (one of the two)",
            ))
        }
    };
    Ok(Override {
        attribute: attribute.clone(),
        value: raw.value.get_ref().as_bytes().to_vec(),
        quota,
    })
}

fn limit_from_raw(
    raw: RawLimit,
    rule: &str,
    conditions: &[Condition],
    src: &Source<'_>,
    at: &dyn Fn(&str) -> String,
) -> Result<LimitRule, ConfigError> {
    let (key, implied, label) = key_from_raw(&raw.key, src, at)?;
    let on_missing = match &raw.on_missing {
        Some(value) => src.choice(value, &at("on_missing"), "value", ON_MISSING)?,
        None => {
            // Required unless the rule's conditions guarantee every key attribute.
            let unsure = key.iter().find(|attribute| {
                !conditions
                    .iter()
                    .any(|c| &c.attribute == *attribute && c.test.implies_present())
            });
            match (implied, unsure) {
                (Some(implied), _) => implied,
                (None, None) => OnMissing::Deny,
                (None, Some(attribute)) => {
                    return Err(src.error(
                        Some(raw.key.span()),
                        &at("on_missing"),
                        format!(
                            "a request may lack key attribute {attribute:?}: say what it gets with on_missing = \"skip\", \"shared\" or \"deny\" (or require it with when = {{ {attribute} = {{ present = true }} }})"
                        ),
                    ))
                }
            }
        }
    };
    let limit = positive(&raw.limit, src, &at("limit"), "limit")?;
    let period = parse_duration(raw.period.get_ref())
        .map_err(|m| src.error(Some(raw.period.span()), &at("period"), m))?;
    let sub_windows = match &raw.sub_windows {
        Some(n) => {
            u32::try_from(positive(n, src, &at("sub_windows"), "sub_windows")?).map_err(|_| {
                src.error(
                    Some(n.span()),
                    &at("sub_windows"),
                    "sub_windows is too large",
                )
            })?
        }
        None => 60,
    };
    let (algorithm, algorithm_span) = match &raw.algorithm {
        None => (Algorithm::Gcra, None),
        Some(a) => {
            let algorithm = src.choice(
                a,
                &at("algorithm"),
                "algorithm",
                &[
                    ("gcra", Algorithm::Gcra),
                    ("fixed_window", Algorithm::FixedWindow),
                    ("sliding_window", Algorithm::SlidingWindowApprox),
                    (
                        "sliding_window_strict",
                        Algorithm::SlidingWindowStrict { sub_windows },
                    ),
                ],
            )?;
            (algorithm, Some(a.span()))
        }
    };
    if raw.sub_windows.is_some() && !matches!(algorithm, Algorithm::SlidingWindowStrict { .. }) {
        return Err(src.error(
            raw.sub_windows.as_ref().map(Spanned::span),
            &at("sub_windows"),
            "sub_windows only applies to algorithm = \"sliding_window_strict\"",
        ));
    }
    let mut quota = Quota::new(limit, period)
        .map_err(|e| src.error(Some(raw.limit.span()), &at("limit"), e.to_string()))?;
    if let Some(burst) = &raw.burst {
        if algorithm != Algorithm::Gcra {
            return Err(src.error(
                Some(burst.span()),
                &at("burst"),
                "burst only applies to algorithm = \"gcra\"",
            ));
        }
        let value = positive(burst, src, &at("burst"), "burst")?;
        quota = quota
            .with_burst(value)
            .map_err(|e| src.error(Some(burst.span()), &at("burst"), e.to_string()))?;
    }
    // Let the algorithm itself judge the quota now, so the error points here.
    let check = crate::table::LimitSpec { algorithm, quota };
    crate::table::TableConfig::new(8, &[check]).map_err(|e| {
        src.error(
            algorithm_span.or(Some(raw.limit.span())),
            &at("algorithm"),
            e.to_string(),
        )
    })?;
    let mut overrides = Vec::new();
    for (o_index, raw_override) in raw.overrides.iter().enumerate() {
        let oat = |field: &str| at(&format!("override[{o_index}].{field}"));
        overrides.push(override_from_raw(
            raw_override,
            algorithm,
            period,
            src,
            &oat,
        )?);
    }
    Ok(LimitRule {
        overrides,
        name: raw
            .name
            .map_or_else(|| format!("{rule}-{label}"), Spanned::into_inner),
        key,
        on_missing,
        algorithm,
        quota,
        shadow: raw.shadow,
    })
}
