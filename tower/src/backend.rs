//! Where a check runs. The layer hands a backend the request's attributes and the time,
//! and gets back a future of everything it needs to answer: the decision snapshot, the
//! rate-limit headers and, on denial, the response. [`InProcess`] runs the policy's own
//! tables and is ready at once; a remote backend (Redis) returns a future that completes
//! when its answer arrives, and must copy what it needs from the borrowed request before
//! returning it.

use std::future::{ready, Future, Ready};
use std::sync::Arc;

use bytes::Bytes;
use http::header::HeaderValue;
use http::StatusCode;
use ratecore::policy::{Policy, PolicyDecision, Request};
use ratecore::CheckError;

use crate::clock::{Clock, Now};
use crate::decision::RateLimitDecision;
use crate::headers::RateLimitHeaders;
use crate::names::NameCache;

/// A denial, ready to send.
#[derive(Clone, Debug)]
pub struct Denial {
    /// The policy's denial status (429 unless configured otherwise).
    pub status: StatusCode,
    /// The body's `Content-Type`.
    pub content_type: HeaderValue,
    /// The body (RFC 9457 problem+json or a sentence, as the policy says).
    pub body: Bytes,
}

/// Everything the layer answers with.
#[derive(Clone, Debug)]
pub struct Checked {
    /// The decision, as handlers see it; `None` when the check was asked for none
    /// ([`Ask::decision`]).
    pub decision: Option<RateLimitDecision>,
    /// The policy's rate-limit headers (none when no limit applied).
    pub headers: RateLimitHeaders,
    /// The response to send instead of calling the inner service, on denial. Boxed: an
    /// admission carries a pointer's worth, moved with the rest from the check into
    /// the response future, and a denial allocates its body anyway.
    pub denial: Option<Box<Denial>>,
}

/// A request whose cost no limit can ever admit, and the status to refuse it with (the
/// policy's denial status).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    /// The status to answer with.
    pub status: StatusCode,
    /// Why.
    pub error: CheckError,
}

/// What the layer asks of a check besides the request and the time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ask {
    /// The request's cost.
    pub cost: u64,
    /// Whether to build the decision snapshot ([`Checked::decision`]): off when the layer
    /// gives handlers no decision extension
    /// ([`decision_extension(false)`](crate::RateLimitLayer::decision_extension)).
    pub decision: bool,
}

/// Runs checks for the layer.
pub trait Backend: Send + Sync + 'static {
    /// The answer to one check.
    type Future: Future<Output = Result<Checked, Refused>> + Send + 'static;

    /// Checks `request` at `now` for `ask.cost`.
    fn check(&self, request: &Request<'_>, now: Now, ask: Ask) -> Self::Future;

    /// The answer to one check at once, from a backend that decides without waiting (in
    /// process), reading `clock` only for what it needs: the layer then calls the inner
    /// service while the request arrives, without cloning it. `None` (the default): the
    /// layer reads the clock and calls [`check`](Self::check), and awaits its future.
    fn check_now(&self, request: &Request<'_>, clock: &dyn Clock, ask: Ask) -> AtOnce {
        let _ = (request, clock, ask);
        None
    }
}

/// An answer given at once, if the backend has one.
type AtOnce = Option<Result<Checked, Refused>>;

/// The policy's own in-process tables: one allocation-free check per request.
#[derive(Clone, Debug)]
pub struct InProcess {
    // Crate-visible: the Redis backend holds the same two and only checks differently.
    pub(crate) policy: Arc<Policy>,
    pub(crate) names: Arc<NameCache>,
}

impl InProcess {
    /// Checks against `policy`.
    #[must_use]
    pub fn new(policy: Arc<Policy>) -> Self {
        Self {
            policy,
            names: Arc::default(),
        }
    }

    /// The policy.
    #[must_use]
    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }
}

impl Backend for InProcess {
    type Future = Ready<Result<Checked, Refused>>;

    fn check(&self, request: &Request<'_>, now: Now, ask: Ask) -> Self::Future {
        ready(self.decide(request, now.monotonic, || now.unix, ask))
    }

    fn check_now(&self, request: &Request<'_>, clock: &dyn Clock, ask: Ask) -> AtOnce {
        Some(self.decide(request, clock.monotonic_nanos(), || clock.unix_nanos(), ask))
    }
}

impl InProcess {
    /// Checks `request` at `monotonic` nanoseconds; `unix` gives the wall-clock time,
    /// read only when the decision's header style renders an absolute reset.
    fn decide(
        &self,
        request: &Request<'_>,
        monotonic: u64,
        unix: impl FnOnce() -> u64,
        ask: Ask,
    ) -> Result<Checked, Refused> {
        self.policy
            .check_with(request, monotonic, ask.cost, |decision| {
                let unix = if decision.header_style().uses_wall_clock() {
                    unix()
                } else {
                    0
                };
                respond(decision, unix, ask.decision.then_some(&*self.names))
            })
            .map_err(|error| refused(&self.policy, error))
    }
}

/// The refusal of a cost no limit of `policy` can ever admit.
pub(crate) fn refused(policy: &Policy, error: CheckError) -> Refused {
    Refused {
        status: status(policy.response().status),
        error,
    }
}

/// Whether the backend could not decide `decision` and its failure mode answered.
fn faulted(decision: &PolicyDecision<'_>) -> bool {
    #[cfg(feature = "redis")]
    return decision.fault().is_some();
    #[cfg(not(feature = "redis"))]
    {
        let _ = decision;
        false
    }
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::TOO_MANY_REQUESTS)
}

/// What the layer answers for `decision`, with absolute resets rendered at `unix_nanos`.
pub fn answer(decision: &PolicyDecision<'_>, unix_nanos: u64) -> Checked {
    respond(decision, unix_nanos, Some(&NameCache::default()))
}

/// What the layer answers for `decision`; its snapshot only when `names` are given to
/// name its limits.
pub(crate) fn respond(
    decision: &PolicyDecision<'_>,
    unix_nanos: u64,
    names: Option<&NameCache>,
) -> Checked {
    let snapshot = names.map(|names| RateLimitDecision::with_names(decision, names));
    // A request let through because the backend could not decide (fail open) carries no
    // rate-limit headers: there are no real figures to report.
    let headers = if faulted(decision) && decision.allowed() {
        RateLimitHeaders::default()
    } else {
        RateLimitHeaders::render(decision, unix_nanos)
    };
    let denial = (!decision.allowed()).then(|| denial(decision));
    Checked {
        decision: snapshot,
        headers,
        denial,
    }
}

/// The denial of `decision`. Out of line: its body's buffer (a kilobyte) would otherwise
/// be in the frame of every check's answer, and push the stack of what that calls
/// deeper.
#[inline(never)]
fn denial(decision: &PolicyDecision<'_>) -> Box<Denial> {
    let mut stack = [0u8; 1024];
    let body = match decision.render_body(&mut stack) {
        Ok(len) => Bytes::copy_from_slice(stack.get(..len).unwrap_or(&[])),
        Err(too_small) => {
            let mut heap = vec![0u8; too_small.needed];
            let len = decision.render_body(&mut heap).unwrap_or(0);
            heap.truncate(len);
            Bytes::from(heap)
        }
    };
    Box::new(Denial {
        status: status(decision.denial_status()),
        content_type: HeaderValue::from_static(decision.content_type()),
        body,
    })
}
