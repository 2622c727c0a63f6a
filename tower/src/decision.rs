//! The decision as handlers see it: an owned snapshot inserted into the request's
//! extensions before the inner service is called.

use std::sync::Arc;
use std::time::Duration;

use ratecore::policy::PolicyDecision;

use crate::names::NameCache;

/// A limit named by its rule and its own name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitName {
    /// The rule.
    pub rule: String,
    /// The limit, within its rule.
    pub limit: String,
}

/// Why a backend could not decide and its failure mode answered instead (the core's
/// type: in-process checks never fault; the Redis backend, feature `redis`, reports its
/// faults with it).
pub use ratecore::Fault;

/// The policy's verdict on a request, readable by handlers:
/// `request.extensions().get::<RateLimitDecision>()` (axum:
/// `Extension<RateLimitDecision>`). Durations are relative to the moment of the check;
/// a wait that can never end is `Duration::from_nanos(u64::MAX)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimitDecision {
    /// Whether the request is admitted (handlers only ever see admitted requests).
    pub allowed: bool,
    /// Whether any limit applied; `false`: unlimited, and no rate-limit headers.
    pub limited: bool,
    /// The deciding limit's quota (`u64::MAX` when unlimited).
    pub limit: u64,
    /// What the deciding limit has left after this request (`u64::MAX` when unlimited).
    pub remaining: u64,
    /// Until the deciding limit is fully replenished (or its window ends).
    pub reset_after: Duration,
    /// Until the same request would be admitted (zero when admitted).
    pub retry_after: Duration,
    /// The limit that decided, if any limit applied.
    pub deciding: Option<Arc<LimitName>>,
    /// The shadow limit that would have denied the request, if any.
    pub shadow_denied: Option<Arc<LimitName>>,
    /// The unlimited rule that exempted the request, if one did.
    pub exempted_by: Option<String>,
    /// Why the backend could not decide, if so.
    pub fault: Option<Fault>,
}

impl RateLimitDecision {
    /// The snapshot of `decision`.
    #[must_use]
    pub fn of(decision: &PolicyDecision<'_>) -> Self {
        Self::with_names(decision, &NameCache::default())
    }

    /// The snapshot of `decision`, its names from `names`.
    pub(crate) fn with_names(decision: &PolicyDecision<'_>, names: &NameCache) -> Self {
        let d = decision.decision();
        let serial = decision.policy_serial();
        Self {
            allowed: decision.allowed(),
            limited: decision.limited(),
            limit: d.limit,
            remaining: d.remaining,
            reset_after: Duration::from_nanos(d.reset_after),
            retry_after: Duration::from_nanos(d.retry_after),
            deciding: deciding(decision, names),
            shadow_denied: decision.shadow_denied().map(|(l, _)| names.get(serial, &l)),
            exempted_by: decision.exempted_by().map(str::to_owned),
            #[cfg(feature = "redis")]
            fault: decision.fault(),
            #[cfg(not(feature = "redis"))]
            fault: None,
        }
    }
}

/// The shared name of the limit that decided, if any: from the cache by the policy's
/// serial and the limit's id, reading the limit's names only on a miss.
fn deciding(decision: &PolicyDecision<'_>, names: &NameCache) -> Option<Arc<LimitName>> {
    let serial = decision.policy_serial();
    let cached = names.cached(serial, decision.deciding_id()?);
    cached.or_else(|| Some(names.get(serial, &decision.deciding()?)))
}
