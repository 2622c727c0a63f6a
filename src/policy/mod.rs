//! Policies: named rules that say which requests are limited, by which keys, how much —
//! and what the client sees. Enough to write down a published API rate-limit policy
//! (the three seeds ship in `examples/policies/`) without writing limiter logic.
//!
//! # Model
//! A [`Policy`] is a list of rules. A rule has an optional [`Route`] (no route: every
//! request), and one or more limits; each limit names a key [`Dimension`] (client IP,
//! user, OAuth app + user, OAuth client, or global), an [`Algorithm`] and a [`Quota`].
//! Limits of one rule on the same dimension share a keyed table (a composite per key,
//! e.g. 5/s AND 20/min per OAuth client).
//!
//! A request is checked against **every** rule that applies: it is admitted only if every
//! applicable limit admits it, and a denial consumes nothing anywhere (the composite
//! protocol of [`crate::composite`] across all of them). A limit whose key the request
//! does not carry (a per-user limit on an anonymous request) does not apply. A rule
//! marked `unlimited` exempts every request it matches from all limits; a request no
//! limit applies to is admitted, costs nothing, and gets no rate-limit headers.
//!
//! # Memory
//! Every table is allocated when the policy is built (`capacity` keys per table); checks
//! never allocate.

#[cfg(feature = "config")]
mod config;
mod route;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::algorithm::Algorithm;
use crate::composite::{run_all, MAX_LIMITS};
use crate::decision::Decision;
use crate::error::CheckError;
use crate::http::{self, BodyStyle, BufferTooSmall, HeaderInput, HeaderStyle, QuotaReport};
use crate::quota::Quota;
use crate::table::KeyedLimit;
use crate::table::{FullPolicy, LimitSpec, OwnedTable, Table, TableConfig, TableError};

#[cfg(feature = "config")]
pub use config::{parse_duration, ConfigError};
pub use route::{Route, RouteError, SplitPath, MAX_SEGMENTS};

/// What a limit keys on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dimension {
    /// One shared counter for every request.
    Global,
    /// The client's IP address.
    ClientIp,
    /// The user or account (e.g. `foo@bar.com`).
    User,
    /// The (OAuth application, user) pair.
    AppUser,
    /// The OAuth client.
    Client,
}

impl Dimension {
    /// The configuration-file name of the dimension.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Global => "global",
            Self::ClientIp => "client_ip",
            Self::User => "user",
            Self::AppUser => "app_user",
            Self::Client => "client",
        }
    }
}

/// One incoming request, as the policy sees it. Identities are raw bytes (an IP in
/// binary or text form, an account id, a token hash): only their equality matters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Request<'a> {
    /// HTTP method (`POST`).
    pub method: &'a str,
    /// Request path, with or without query string.
    pub path: &'a str,
    /// The client IP.
    pub client_ip: Option<&'a [u8]>,
    /// The authenticated user or account.
    pub user: Option<&'a [u8]>,
    /// The OAuth application.
    pub app: Option<&'a [u8]>,
    /// The OAuth client.
    pub client: Option<&'a [u8]>,
}

/// One limit of a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitRule {
    /// Name reported in the IETF `RateLimit` fields.
    pub name: String,
    /// What it keys on.
    pub dimension: Dimension,
    /// The algorithm.
    pub algorithm: Algorithm,
    /// The quota.
    pub quota: Quota,
}

/// One rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Unique name.
    pub name: String,
    /// Which requests it applies to (`None`: all).
    pub route: Option<Route>,
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

/// Why a policy could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyError {
    /// Two rules share a name.
    DuplicateRule(String),
    /// A limited rule without limits, or an unlimited one with some.
    RuleLimits(String),
    /// A limit's quota is invalid for its algorithm, or a table cannot be made.
    Table {
        /// The rule.
        rule: String,
        /// Why.
        error: TableError,
    },
    /// One request could hit more than [`MAX_LIMITS`] limits, or one rule puts more than
    /// 4 limits on one dimension.
    TooManyLimits,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DuplicateRule(name) => write!(f, "rule name {name:?} is used twice"),
            Self::RuleLimits(name) => write!(
                f,
                "rule {name:?} must have limits, or be unlimited with none"
            ),
            Self::Table { rule, error } => write!(f, "rule {rule:?}: {error}"),
            Self::TooManyLimits => write!(
                f,
                "too many limits: at most {MAX_LIMITS} across all rules, and 4 per key in one rule"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for PolicyError {}

/// A rule's limits on one dimension: one table, composite per key.
#[derive(Debug)]
struct Group {
    dimension: Dimension,
    table: OwnedTable,
    /// Name and period of each limit, in table order.
    names: Vec<(String, u64)>,
    /// The same limits on Redis, when the policy runs there (then the table is unused,
    /// and kept minimal).
    #[cfg(feature = "redis")]
    redis: Vec<crate::redis_backend::RedisLimit>,
}

#[derive(Debug)]
struct CompiledRule {
    rule: Rule,
    groups: Vec<Group>,
}

impl CompiledRule {
    fn applies(&self, method: &str, path: &SplitPath<'_>) -> bool {
        self.rule
            .route
            .as_ref()
            .is_none_or(|route| route.matches_split(method, path))
    }
}

/// A built policy: rules with their tables, ready to check requests.
#[derive(Debug)]
pub struct Policy {
    rules: Vec<CompiledRule>,
    response: ResponseSpec,
    /// Where the state lives when not in this process's tables.
    #[cfg(feature = "redis")]
    redis: Option<crate::redis_backend::RedisBackend>,
}

/// Which limit an entry of a [`PolicyDecision`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitRef<'p> {
    /// The rule.
    pub rule: &'p str,
    /// The rule's description for plain-text bodies.
    pub description: &'p str,
    /// The limit's name.
    pub name: &'p str,
    /// The dimension.
    pub dimension: Dimension,
    /// The limit's period, in nanoseconds.
    pub period: u64,
}

/// The policy's verdict on one request, with every applicable limit's state.
#[derive(Clone, Copy, Debug)]
pub struct PolicyDecision<'p> {
    policy: &'p Policy,
    decision: Decision,
    entries: [Option<(LimitRef<'p>, Decision)>; MAX_LIMITS],
    len: usize,
    deciding: usize,
    #[cfg(feature = "redis")]
    fault: Option<crate::redis_backend::Fault>,
}

impl Policy {
    /// Builds every rule's tables.
    ///
    /// # Errors
    /// A [`PolicyError`] naming the rule at fault.
    pub fn new(spec: PolicySpec) -> Result<Self, PolicyError> {
        Self::build(spec, false)
    }

    /// Builds the policy with every limit's state on Redis (feature `redis`): the same
    /// rules, decisions, headers and bodies, shared by every host using that Redis. Each
    /// limit is named `rule/limit` on Redis. Checks then allocate and do one round trip;
    /// when Redis cannot decide, the backend's failure mode answers and
    /// [`PolicyDecision::fault`] says why.
    ///
    /// # Errors
    /// As for [`Policy::new`].
    #[cfg(feature = "redis")]
    pub fn with_redis(
        spec: PolicySpec,
        backend: crate::redis_backend::RedisBackend,
    ) -> Result<Self, PolicyError> {
        let mut policy = Self::build(spec, true)?;
        for rule in &mut policy.rules {
            for group in &mut rule.groups {
                let limits = rule
                    .rule
                    .limits
                    .iter()
                    .filter(|l| l.dimension == group.dimension);
                for (limit, (name, _)) in limits.zip(&group.names) {
                    let redis_name = alloc::format!("{}/{}", rule.rule.name, name);
                    let redis_limit = backend
                        .limit(&redis_name, limit.algorithm, limit.quota)
                        .map_err(|_| PolicyError::RuleLimits(rule.rule.name.clone()))?;
                    group.redis.push(redis_limit);
                }
            }
        }
        policy.redis = Some(backend);
        Ok(policy)
    }

    fn build(spec: PolicySpec, minimal_tables: bool) -> Result<Self, PolicyError> {
        let mut rules: Vec<CompiledRule> = Vec::new();
        let mut total = 0usize;
        for rule in spec.rules {
            if rules.iter().any(|r| r.rule.name == rule.name) {
                return Err(PolicyError::DuplicateRule(rule.name));
            }
            if rule.unlimited != rule.limits.is_empty() {
                return Err(PolicyError::RuleLimits(rule.name));
            }
            let mut groups: Vec<Group> = Vec::new();
            for dimension in [
                Dimension::Global,
                Dimension::ClientIp,
                Dimension::User,
                Dimension::AppUser,
                Dimension::Client,
            ] {
                let limits: Vec<&LimitRule> = rule
                    .limits
                    .iter()
                    .filter(|l| l.dimension == dimension)
                    .collect();
                if limits.is_empty() {
                    continue;
                }
                let specs: Vec<LimitSpec> = limits
                    .iter()
                    .map(|l| LimitSpec {
                        algorithm: l.algorithm,
                        quota: l.quota,
                    })
                    .collect();
                let table_error = |error| PolicyError::Table {
                    rule: rule.name.clone(),
                    error,
                };
                let capacity = if dimension == Dimension::Global || minimal_tables {
                    8
                } else {
                    spec.capacity
                };
                let config = TableConfig::new(capacity, &specs)
                    .map_err(|e| match e {
                        TableError::TooManyLimits => PolicyError::TooManyLimits,
                        e => table_error(e),
                    })?
                    .with_policy(spec.when_full);
                let table = Table::new(config).map_err(table_error)?;
                total += limits.len();
                groups.push(Group {
                    dimension,
                    table,
                    names: limits
                        .iter()
                        .map(|l| (l.name.clone(), l.quota.period()))
                        .collect(),
                    #[cfg(feature = "redis")]
                    redis: Vec::new(),
                });
            }
            rules.push(CompiledRule { rule, groups });
        }
        if total > MAX_LIMITS {
            return Err(PolicyError::TooManyLimits);
        }
        Ok(Self {
            rules,
            response: spec.response,
            #[cfg(feature = "redis")]
            redis: None,
        })
    }

    /// How this policy answers.
    #[must_use]
    pub fn response(&self) -> &ResponseSpec {
        &self.response
    }

    /// The rules, in order.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter().map(|r| &r.rule)
    }

    /// Decides `request` at `now` (monotonic nanoseconds) with `cost`. Allocation-free.
    ///
    /// # Errors
    /// [`CheckError::CostExceedsLimit`] if `cost` can never fit some applicable limit.
    pub fn check(
        &self,
        request: &Request<'_>,
        now: u64,
        cost: u64,
    ) -> Result<PolicyDecision<'_>, CheckError> {
        self.run(request, now, cost, true)
    }

    /// The decision [`check`](Self::check) would return, consuming nothing.
    ///
    /// # Errors
    /// As for [`check`](Self::check).
    pub fn peek(
        &self,
        request: &Request<'_>,
        now: u64,
        cost: u64,
    ) -> Result<PolicyDecision<'_>, CheckError> {
        self.run(request, now, cost, false)
    }

    fn run(
        &self,
        request: &Request<'_>,
        now: u64,
        cost: u64,
        commit: bool,
    ) -> Result<PolicyDecision<'_>, CheckError> {
        let mut result = PolicyDecision {
            policy: self,
            decision: Decision {
                allowed: true,
                limit: u64::MAX,
                remaining: u64::MAX,
                reset_after: 0,
                retry_after: 0,
            },
            entries: [None; MAX_LIMITS],
            len: 0,
            deciding: 0,
            #[cfg(feature = "redis")]
            fault: None,
        };
        let Some(first) = self.rules.iter().flat_map(|r| r.groups.first()).next() else {
            return Ok(result);
        };
        // One pass over the rules, the path split once. Collecting limits has no side
        // effects, so an unlimited rule found after some limits were collected still
        // answers "unlimited" before anything is checked.
        let path = SplitPath::new(request.path);
        let mut members: [KeyedLimit<'_>; MAX_LIMITS] = [first.table.placeholder(); MAX_LIMITS];
        let mut len = 0;
        for rule in &self.rules {
            if !rule.applies(request.method, &path) {
                continue;
            }
            if rule.rule.unlimited {
                result.entries = [None; MAX_LIMITS];
                return Ok(result);
            }
            for group in &rule.groups {
                let Some(hash) = key_hash(&group.table, group.dimension, request) else {
                    continue;
                };
                let Some(out) = members.get_mut(len..) else {
                    break;
                };
                let written = group.table.members_into(hash, out);
                for (offset, (name, period)) in group.names.iter().enumerate().take(written) {
                    if let Some(entry) = result.entries.get_mut(len + offset) {
                        *entry = Some((
                            LimitRef {
                                rule: &rule.rule.name,
                                description: rule
                                    .rule
                                    .description
                                    .as_deref()
                                    .unwrap_or(&rule.rule.name),
                                name,
                                dimension: group.dimension,
                                period: *period,
                            },
                            Decision::EMPTY,
                        ));
                    }
                }
                len += written;
            }
        }
        if len == 0 {
            return Ok(result);
        }
        let mut states = [Decision::EMPTY; MAX_LIMITS];
        let members = members.get(..len).unwrap_or(&[]);
        let states_in = states.get_mut(..len).unwrap_or(&mut []);
        #[cfg(feature = "redis")]
        if let Some(backend) = &self.redis {
            let (decision, fault) =
                self.run_on_redis(backend, request, now, cost, commit, states_in)?;
            result.decision = decision;
            result.fault = fault;
            return Ok(finish(result, len, &states));
        }
        result.decision = run_all(members, now, cost, commit, states_in)?;
        Ok(finish(result, len, &states))
    }

    /// The Redis path of `run`: the same limits, keys and protocol, in one script call.
    #[cfg(feature = "redis")]
    fn run_on_redis(
        &self,
        backend: &crate::redis_backend::RedisBackend,
        request: &Request<'_>,
        now: u64,
        cost: u64,
        commit: bool,
        states: &mut [Decision],
    ) -> Result<(Decision, Option<crate::redis_backend::Fault>), CheckError> {
        use crate::redis_backend::{key_from_parts, RedisCheckError, RedisLimit};
        let mut keyed: Vec<(&RedisLimit, Vec<u8>)> = Vec::new();
        let path = SplitPath::new(request.path);
        for rule in self
            .rules
            .iter()
            .filter(|r| r.applies(request.method, &path))
        {
            for group in &rule.groups {
                let key = match group.dimension {
                    Dimension::Global => Some(Vec::new()),
                    Dimension::ClientIp => request.client_ip.map(<[u8]>::to_vec),
                    Dimension::User => request.user.map(<[u8]>::to_vec),
                    Dimension::Client => request.client.map(<[u8]>::to_vec),
                    Dimension::AppUser => request
                        .app
                        .zip(request.user)
                        .map(|(app, user)| key_from_parts(&[app, user])),
                };
                let Some(key) = key else { continue };
                keyed.extend(group.redis.iter().map(|limit| (limit, key.clone())));
            }
        }
        let pairs: Vec<(&RedisLimit, &[u8])> = keyed
            .iter()
            .map(|(limit, key)| (*limit, key.as_slice()))
            .collect();
        let answer = if commit {
            backend.check_limits(&pairs, now, cost, states)
        } else {
            backend.peek_limits(&pairs, now, cost, states)
        };
        match answer {
            Ok(d) => Ok((d.decision, d.fault)),
            Err(RedisCheckError::Cost(e)) => Err(e),
            // The limits were validated when the policy was built, and the non-`try` entry
            // points report Redis failures as decisions; answer as a closed failure would.
            Err(_) => Ok((
                Decision {
                    allowed: false,
                    limit: 0,
                    remaining: 0,
                    reset_after: 0,
                    retry_after: 1,
                },
                Some(crate::redis_backend::Fault::Inconsistent),
            )),
        }
    }
}

/// Copies the per-limit states into the result and finds the deciding entry.
fn finish<'p>(
    mut result: PolicyDecision<'p>,
    len: usize,
    states: &[Decision; MAX_LIMITS],
) -> PolicyDecision<'p> {
    result.len = len;
    for (entry, state) in result.entries.iter_mut().zip(states.iter()).take(len) {
        if let Some((_, decision)) = entry {
            *decision = *state;
        }
    }
    result.deciding = result
        .entries
        .iter()
        .take(len)
        .position(|e| e.is_some_and(|(_, d)| d == result.decision))
        .unwrap_or(0);
    result
}

/// The hash of the request's key for `dimension` in `table`, if the request has one.
fn key_hash<M: crate::table::TableMemory>(
    table: &Table<M>,
    dimension: Dimension,
    request: &Request<'_>,
) -> Option<u64> {
    Some(match dimension {
        Dimension::Global => table.hash_of(&()),
        Dimension::ClientIp => table.hash_of(request.client_ip?),
        Dimension::User => table.hash_of(request.user?),
        Dimension::AppUser => table.hash_of(&(request.app?, request.user?)),
        Dimension::Client => table.hash_of(request.client?),
    })
}

impl<'p> PolicyDecision<'p> {
    /// Whether the request is admitted.
    #[must_use]
    pub const fn allowed(&self) -> bool {
        self.decision.allowed
    }

    /// Why the Redis backend could not decide (the failure mode answered instead), if
    /// so.
    #[cfg(feature = "redis")]
    #[must_use]
    pub const fn fault(&self) -> Option<crate::redis_backend::Fault> {
        self.fault
    }

    /// Whether any limit applied (false: unlimited, no headers).
    #[must_use]
    pub const fn limited(&self) -> bool {
        self.len > 0
    }

    /// The combined decision (the most restrictive limit's).
    #[must_use]
    pub const fn decision(&self) -> &Decision {
        &self.decision
    }

    /// The HTTP status to answer with: 200-class is the caller's; on denial the policy's
    /// configured status (default 429).
    #[must_use]
    pub const fn denial_status(&self) -> u16 {
        self.policy.response.status
    }

    /// Every applicable limit and its state, in rule order.
    pub fn entries(&self) -> impl Iterator<Item = (LimitRef<'p>, Decision)> + '_ {
        self.entries.iter().take(self.len).flatten().copied()
    }

    /// The limit that decided (the most restrictive), if any applied.
    #[must_use]
    pub fn deciding(&self) -> Option<LimitRef<'p>> {
        self.entries
            .get(self.deciding)
            .copied()
            .flatten()
            .filter(|_| self.limited())
            .map(|(limit, _)| limit)
    }

    /// Renders the policy's rate-limit headers (nothing when no limit applied).
    ///
    /// # Errors
    /// [`BufferTooSmall`] with the length needed.
    pub fn render_headers(
        &self,
        unix_now_nanos: u64,
        out: &mut [u8],
    ) -> Result<usize, BufferTooSmall> {
        if !self.limited() {
            return Ok(0);
        }
        let mut reports = [QuotaReport {
            name: "",
            period: 1,
            decision: Decision::EMPTY,
        }; MAX_LIMITS];
        for (report, (limit, decision)) in reports.iter_mut().zip(self.entries()) {
            *report = QuotaReport {
                name: limit.name,
                period: limit.period,
                decision,
            };
        }
        let input = HeaderInput {
            decision: self.decision,
            quotas: reports.get(..self.len).unwrap_or(&[]),
            unix_now_nanos,
        };
        http::render_headers(self.policy.response.headers, &input, out)
    }

    /// The `Content-Type` of the 429 body.
    #[must_use]
    pub fn content_type(&self) -> &'static str {
        self.body_style().content_type()
    }

    /// Renders the 429 body (call on denial).
    ///
    /// # Errors
    /// [`BufferTooSmall`] with the length needed.
    pub fn render_body(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let period = self.deciding().map_or(0, |l| l.period);
        http::render_body(&self.body_style(), &self.decision, period, out)
    }

    fn body_style(&self) -> BodyStyle<'p> {
        match &self.policy.response.body {
            Body::ProblemJson { type_uri, title } => BodyStyle::ProblemJson { type_uri, title },
            Body::PlainText => BodyStyle::PlainText {
                subject: self.deciding().map_or("API", |l| l.description),
            },
        }
    }
}
