//! `policy_config`: the TOML policy parser and everything a parsed policy does.
//!
//! The input's first byte picks the mode:
//! - `0xff`: a structured generator (`template`) fills a valid template with arbitrary
//!   field values (valid choices, wrong types, arbitrary text, out-of-range numbers) to
//!   reach the deep validation: durations, quotas per algorithm, routes, burst and
//!   sub-window rules, `when` conditions (equals, in, not_in, present true/false,
//!   malformed ones), keys (earlier versions' names, attribute lists, bad attribute
//!   names, too many), `on_missing` and `shadow` per limit and per rule, and per-client
//!   overrides (`[[rule.limit.override]]`: valid ones, and a missing limit, both limit
//!   and unlimited, a burst on a limit that is not GCRA or on an unlimited one, zero,
//!   negative and huge limits — past the state word's room for a count, past what TOML
//!   holds —, bad attribute names, wrong types, unknown fields). Then a sequence of
//!   operations (`ops`): requests carrying arbitrary attributes (names the policy uses
//!   or not, repeated, values that match its conditions and overrides or not), override
//!   changes at run time (valid, unknown rules and limits, bad attribute names, zero and
//!   huge limits, bursts), reloads (the same text, another generated policy, the one in
//!   force edited, any text), the offender report and the metrics export;
//! - anything else: the whole input (lossy UTF-8) is the TOML text, and a fixed sequence
//!   of operations runs on it (requests carrying the attributes the seed policies use,
//!   overrides on its first limits, a reload to itself and a rejected one).
//!
//! What must hold (`props`, against the bookkeeping of `model`):
//! - `Policy::from_toml_str` never panics; an error's line and column lie inside the
//!   text (or are 0 when unknown), and it names the origin given.
//! - Checks and peeks never err except for a cost above a limit; decisions are sane and
//!   consistent: an exempted request is unlimited, a request denied for a missing key is
//!   denied, real and shadow entries are what their limits say, a shadow denial is a
//!   denying shadow entry; headers and bodies follow the exact buffer protocol; while no
//!   table can be full (at most 8 distinct attribute sets), a peek decides as the check
//!   that follows it, and the same policy without its shadow limits (given the same
//!   overrides and reloads) decides every request alike.
//! - Every limit in a decision runs with the quota the overrides in force give the
//!   request (the first override attribute, in first-appearance order, whose value
//!   matches): its capacity is the override's, and an unlimited override's client meets
//!   no such limit.
//! - `set_override` answers exactly as predicted: `UnknownLimit`, then `AttributeName`,
//!   then `Override` for a quota the limit's algorithm and period cannot hold (an
//!   invalid quota, a burst on a non-GCRA limit, a count wider than the room the state
//!   word leaves beside its window numbers, a strict window's count above `u32::MAX`);
//!   `remove_override` says whether there was one; `overrides()` lists exactly the
//!   overrides in force.
//! - A reload succeeds exactly when a fresh build of the text does, with the same error
//!   otherwise; a rejected reload leaves the policy answering exactly as before (peeks,
//!   overrides, counters, rules, offenders); an accepted one reports what the documented
//!   rules say (kept: the limits whose table is handed over, every table-mate unchanged
//!   and the table settings too; fresh: the others; dropped: the old limits no new one
//!   is identical to; the overrides in force before and not after), lists the file's
//!   overrides, carries counters over exactly for identical limits, starts an empty
//!   offender report, leaves an earlier view showing the old version, and, reloading
//!   the same text, keeps every limit, its counters and (same overrides) its decisions.
//! - Per-limit counters since each version was built count what its checks' decisions
//!   said; the metrics export follows the exact buffer protocol, starts `# HELP`, and is
//!   exactly the text the counters call for; `view()` shows what the policy does.
//! - The offender report holds at most `OFFENDERS` keys, most denials first, each denied
//!   at least twice, keys at most `OFFENDER_KEY_BYTES` long, none unrecorded, no key
//!   with more denials than the checks made; exact while at most 4 keys were denied.
//! - `Route::parse` and `parse_duration` take the raw text too.
//!
//! A policy's tables are allocated when it is built (capacity × (1 + ring) × 16 bytes
//! per limit), so texts whose tables would exceed [`MAX_TABLE_BYTES`] are only parsed by
//! `toml`, not built (nor reloaded to): that is memory, not a bug.

use std::fmt;

use arbitrary::{Arbitrary, Unstructured};

mod driver;
pub(crate) mod model;
mod ops;
mod props;
mod template;

pub use driver::run;
pub use ops::{ApiQuota, InForce, Op, Reload, RequestT, Target};
pub use template::{
    ConditionT, Field, FileQuota, IntField, KeyField, LimitNum, LimitT, NameField, OverrideT,
    PeriodField, PolicyT, RouteField, RuleT, Segment, TestField, Tweak, ValueField, ATTRIBUTES,
    VALUES,
};

/// The most table memory a fuzzed policy may ask for.
pub const MAX_TABLE_BYTES: u128 = 16 << 20;

/// Operations run per input, at most.
const MAX_OPS: usize = 48;

/// Reloads per input, at most (each builds a policy twice).
const MAX_RELOADS: usize = 4;

/// The monotonic time before the first request's step.
const START: u64 = 1_000_000_000;

/// A structured input: a generated policy and what to do with it.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct Template<'a> {
    /// The policy.
    pub policy: PolicyT<'a>,
    /// The operations (the first [`MAX_OPS`]).
    pub ops: Vec<Op<'a>>,
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
            Self::Template(t) => t.policy.text(),
        }
    }

    /// The generated policy, if the input is one.
    #[must_use]
    pub fn source(&self) -> Option<&PolicyT<'a>> {
        match self {
            Self::Text(_) => None,
            Self::Template(t) => Some(&t.policy),
        }
    }

    /// The operations to run on the policy.
    #[must_use]
    pub fn ops(&self) -> Vec<Op<'a>> {
        match self {
            Self::Text(_) => ops::text_ops(),
            Self::Template(t) => t.ops.iter().take(MAX_OPS).cloned().collect(),
        }
    }
}

/// The whole input, as [`PolicyCase::from_bytes`] reads it (so that the target's input
/// `Debug`-prints as its reproducer).
impl<'a> Arbitrary<'a> for PolicyCase<'a> {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let rest = u.bytes(u.len())?;
        Self::from_bytes(rest).ok_or(arbitrary::Error::IncorrectFormat)
    }

    fn arbitrary_take_rest(u: Unstructured<'a>) -> arbitrary::Result<Self> {
        Self::from_bytes(u.take_rest()).ok_or(arbitrary::Error::IncorrectFormat)
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

/// `bytes` as a Rust byte-string literal.
fn bytes(bytes: &[u8]) -> String {
    let mut out = String::from("b\"");
    for &b in bytes {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    out
}

impl fmt::Debug for PolicyCase<'_> {
    /// A reproducer: the TOML text and the calls `run` makes on the policy (each request
    /// is peeked, then checked; override changes, reloads, the offender report and the
    /// metrics export in order). To print the attributes of the overrides in force and
    /// which reloads are accepted, the calls that change the policy are made here too.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "// fuzz/policy_config reproducer")?;
        let text = self.text();
        writeln!(f, "let text = {text:?};")?;
        writeln!(
            f,
            "let policy = Policy::from_toml_str(text, \"fuzz.toml\").unwrap();"
        )?;
        let policy = match ratecore::policy::Policy::from_toml_str(&text, "fuzz.toml") {
            Ok(policy) if table_bytes(&text) <= MAX_TABLE_BYTES => policy,
            Ok(_) => return writeln!(f, "// (not built: tables too large)"),
            Err(e) => return writeln!(f, "// {e}"),
        };
        let mut in_force = InForce::new(text, self.source().cloned());
        let mut now = START;
        let mut reloads = 0;
        for op in self.ops().iter().take(MAX_OPS) {
            match op {
                Op::Request(r)
                | Op::Repeat { request: r, .. }
                | Op::Overridden { request: r, .. } => {
                    now = now.saturating_add(r.step.into());
                    let extra = match op {
                        Op::Overridden { picks, .. } => {
                            let mut list = policy.overrides();
                            list.sort_by_key(model::order);
                            ops::picked(&list, picks)
                        }
                        _ => Vec::new(),
                    };
                    let first = matches!(op, Op::Overridden { first: true, .. });
                    let attributes: Vec<String> = ops::with_extra(r.attributes(), &extra, first)
                        .iter()
                        .map(|a| format!("Attribute::new({:?}, {})", a.name, bytes(a.value)))
                        .collect();
                    if let Op::Repeat { times, .. } = op {
                        write!(f, "for _ in 0..{} {{ ", RequestT::repeats(*times))?;
                    }
                    write!(
                        f,
                        "let _ = policy.check(&Request::new({:?}, {:?}, &[{}]), {now}, {});",
                        r.method(),
                        r.path,
                        attributes.join(", "),
                        r.cost()
                    )?;
                    writeln!(
                        f,
                        "{}",
                        if matches!(op, Op::Repeat { .. }) {
                            " }"
                        } else {
                            ""
                        }
                    )?;
                }
                Op::SetOverride {
                    target,
                    attribute,
                    value,
                    quota,
                } => {
                    let (rule, limit) = in_force.target(target);
                    let result = policy.set_override(
                        &rule,
                        &limit,
                        attribute.name(),
                        value.bytes(),
                        quota.get(),
                    );
                    writeln!(
                        f,
                        "let _ = policy.set_override({rule:?}, {limit:?}, {:?}, {}, OverrideQuota::{:?}); // {}",
                        attribute.name(),
                        bytes(value.bytes()),
                        quota.get(),
                        if result.is_ok() { "set" } else { "refused" }
                    )?;
                }
                Op::RemoveOverride {
                    target,
                    attribute,
                    value,
                } => {
                    let (rule, limit) = in_force.target(target);
                    let result =
                        policy.remove_override(&rule, &limit, attribute.name(), value.bytes());
                    writeln!(
                        f,
                        "let _ = policy.remove_override({rule:?}, {limit:?}, {:?}, {}); // {result:?}",
                        attribute.name(),
                        bytes(value.bytes())
                    )?;
                }
                Op::Reload(reload) => {
                    let (text, source) = in_force.reload(reload);
                    if reloads >= MAX_RELOADS || table_bytes(&text) > MAX_TABLE_BYTES {
                        writeln!(f, "// (a reload skipped: too many, or tables too large)")?;
                        continue;
                    }
                    reloads += 1;
                    let result = policy.reload_toml_str(&text, "reload.toml");
                    writeln!(
                        f,
                        "let _ = policy.reload_toml_str({text:?}, \"reload.toml\"); // {result:?}"
                    )?;
                    if result.is_ok() {
                        in_force = InForce::new(text, source);
                    }
                }
                Op::Offenders => writeln!(f, "let _ = policy.offenders();")?,
                Op::Metrics(len) => {
                    writeln!(f, "let _ = policy.render_metrics(&mut [0u8; {len}]);")?;
                }
            }
        }
        Ok(())
    }
}
