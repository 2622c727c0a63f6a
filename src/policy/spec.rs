//! What an API team writes: rules, conditions, keys, limits and the response, as plain
//! data (built by hand or parsed from TOML), before a [`Policy`](super::Policy) compiles
//! it.

use alloc::string::String;
use alloc::vec::Vec;

use super::Route;
use crate::algorithm::Algorithm;
use crate::http::HeaderStyle;
use crate::quota::Quota;
use crate::table::FullPolicy;

/// What a limit does with a request that lacks one of its key's attributes. There is no
/// default in the TOML format unless the rule's conditions guarantee every key attribute
/// is present: a policy says what happens, so a request never goes unlimited by accident.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OnMissing {
    /// The limit does not apply to the request (counted as `skipped` in the limit's
    /// metrics).
    Skip,
    /// The missing attributes key as "absent": every request lacking them shares one
    /// counter with the others that have the same present attributes (a client-credentials
    /// request keyed on `["app", "user"]` without a user shares its app's counter).
    Shared,
    /// The limit denies the request, consuming nothing anywhere (fail closed). The denial
    /// reports `remaining = 0` and `retry_after = reset_after =` the limit's period.
    Deny,
}

impl OnMissing {
    /// The configuration-file spelling.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Skip => "skip",
            Self::Shared => "shared",
            Self::Deny => "deny",
        }
    }
}

/// A test on one request attribute.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Test {
    /// The request carries the attribute (any value, the empty one included).
    Present,
    /// The request does not carry the attribute.
    Absent,
    /// The attribute is present with exactly this value.
    Equals(Vec<u8>),
    /// The attribute is present with one of these values.
    In(Vec<Vec<u8>>),
    /// The attribute is absent, or present with none of these values.
    NotIn(Vec<Vec<u8>>),
}

impl Test {
    /// Whether a request passing this test is sure to carry the attribute.
    #[must_use]
    pub fn implies_present(&self) -> bool {
        matches!(self, Self::Present | Self::Equals(_) | Self::In(_))
    }
}

/// One condition of a rule: a test on a named attribute. All of a rule's conditions must
/// hold for it to apply.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Condition {
    /// The attribute's name (`auth`, `client_ip`, `tenant`, …).
    pub attribute: String,
    /// The test.
    pub test: Test,
}

/// One limit of a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitRule {
    /// The limit's name: reported in the IETF `RateLimit` fields, in decisions and in
    /// metrics.
    pub name: String,
    /// The attributes the limit keys on, in order (`["app", "user"]`); empty: one
    /// counter shared by every request the rule applies to.
    pub key: Vec<String>,
    /// What a request lacking a key attribute gets.
    pub on_missing: OnMissing,
    /// The algorithm.
    pub algorithm: Algorithm,
    /// The quota.
    pub quota: Quota,
    /// Counts and reports, never denies, adds no headers (as nginx's
    /// `limit_req_dry_run`).
    pub shadow: bool,
    /// Other quotas for chosen clients, the first matching one applying.
    pub overrides: Vec<Override>,
}

/// What an override gives the clients it selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OverrideQuota {
    /// `limit` requests per the limit's own period (and for GCRA a burst, by default
    /// the limit): the algorithm and period stay the limit's, so a client keeps what it
    /// has consumed when its quota changes.
    Limit {
        /// Requests per period.
        limit: u64,
        /// GCRA's burst (`None`: the limit).
        burst: Option<u64>,
    },
    /// The limit does not apply to them (counted as `skipped`).
    Unlimited,
}

/// A different quota for the requests whose `attribute` has exactly `value` (app `acme`
/// → 5000 per hour; client `c-42` → unlimited; tier `gold` → 10,000). A limit's overrides
/// are tried by attribute, in the order their attributes first appear among them; the
/// first match applies.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Override {
    /// The attribute that selects the clients.
    pub attribute: String,
    /// Its value.
    pub value: Vec<u8>,
    /// What they get.
    pub quota: OverrideQuota,
}

/// One rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Unique name.
    pub name: String,
    /// Which requests it applies to by method and path (`None`: all).
    pub route: Option<Route>,
    /// Which requests it applies to by attribute: all must hold.
    pub conditions: Vec<Condition>,
    /// What the limited thing is called in plain-text 429 bodies ("Save readings API
    /// interface"); defaults to the rule name.
    pub description: Option<String>,
    /// Exempt matching requests from every limit.
    pub unlimited: bool,
    /// The limits (none for an unlimited rule).
    pub limits: Vec<LimitRule>,
}

/// The 429 body a policy answers with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// RFC 9457 problem+json.
    ProblemJson {
        /// Problem type URI.
        type_uri: String,
        /// Problem title.
        title: String,
    },
    /// The plain-text sentence (subject = the deciding rule's description).
    PlainText,
}

/// How a policy answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseSpec {
    /// Header vocabulary.
    pub headers: HeaderStyle,
    /// 429 body.
    pub body: Body,
    /// Status code on denial (default 429).
    pub status: u16,
}

impl Default for ResponseSpec {
    fn default() -> Self {
        Self {
            headers: HeaderStyle::Ietf,
            body: Body::ProblemJson {
                type_uri: String::from("about:blank"),
                title: String::from("Too Many Requests"),
            },
            status: 429,
        }
    }
}

/// Everything a policy is built from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicySpec {
    /// The rules, in order.
    pub rules: Vec<Rule>,
    /// Keys per table.
    pub capacity: u64,
    /// What a new key does when its table neighbourhood is full.
    pub when_full: FullPolicy,
    /// How the policy answers.
    pub response: ResponseSpec,
}
