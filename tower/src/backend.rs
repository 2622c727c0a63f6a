//! Where a check runs. The layer hands a backend the request's attributes and the time,
//! and gets back a future of everything it needs to answer: the decision snapshot, the
//! rendered headers and, on denial, the response. [`InProcess`] runs the policy's own
//! tables and is ready at once; a remote backend (Redis) returns a future that completes
//! when its answer arrives, and must copy what it needs from the borrowed request before
//! returning it.

use std::future::{ready, Future, Ready};
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, RETRY_AFTER};
use http::StatusCode;
use ratecore::policy::{Policy, PolicyDecision, Request};
use ratecore::CheckError;

use crate::clock::Now;
use crate::decision::RateLimitDecision;
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
    /// The decision, as handlers see it.
    pub decision: RateLimitDecision,
    /// The policy's rate-limit headers (none when no limit applied).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The response to send instead of calling the inner service, on denial.
    pub denial: Option<Denial>,
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

/// Runs checks for the layer.
pub trait Backend: Send + Sync + 'static {
    /// The answer to one check.
    type Future: Future<Output = Result<Checked, Refused>> + Send + 'static;

    /// Checks `request` at `now` for `cost`.
    fn check(&self, request: &Request<'_>, now: Now, cost: u64) -> Self::Future;
}

/// The policy's own in-process tables: one allocation-free check per request.
#[derive(Clone, Debug)]
pub struct InProcess {
    policy: Arc<Policy>,
    names: Arc<NameCache>,
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

    fn check(&self, request: &Request<'_>, now: Now, cost: u64) -> Self::Future {
        ready(match self.policy.check(request, now.monotonic, cost) {
            Ok(decision) => Ok(respond(&decision, now.unix, &self.names)),
            Err(error) => Err(refused(&self.policy, error)),
        })
    }
}

/// The refusal of a cost no limit of `policy` can ever admit.
pub(crate) fn refused(policy: &Policy, error: CheckError) -> Refused {
    Refused {
        status: status(policy.response().status),
        error,
    }
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::TOO_MANY_REQUESTS)
}

/// What the layer answers for `decision`, with absolute resets rendered at `unix_nanos`.
pub fn answer(decision: &PolicyDecision<'_>, unix_nanos: u64) -> Checked {
    respond(decision, unix_nanos, &NameCache::default())
}

pub(crate) fn respond(
    decision: &PolicyDecision<'_>,
    unix_nanos: u64,
    names: &NameCache,
) -> Checked {
    let snapshot = RateLimitDecision::with_names(decision, names);
    // A request let through because the backend could not decide (fail open) carries no
    // rate-limit headers: there are no real figures to report.
    let headers = if snapshot.fault.is_some() && snapshot.allowed {
        Vec::new()
    } else {
        headers(decision, unix_nanos)
    };
    let denial = (!decision.allowed()).then(|| {
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
        Denial {
            status: status(decision.denial_status()),
            content_type: HeaderValue::from_static(decision.content_type()),
            body,
        }
    });
    Checked {
        decision: snapshot,
        headers,
        denial,
    }
}

/// The policy's rate-limit headers for `decision`.
fn headers(decision: &PolicyDecision<'_>, unix_nanos: u64) -> Vec<(HeaderName, HeaderValue)> {
    let mut values = [ratecore::http::HeaderValue::default(); ratecore::http::MAX_HEADER_VALUES];
    let mut stack = [0u8; 512];
    match decision.render_header_values(unix_nanos, &mut stack, &mut values) {
        Ok(count) => pairs(&stack, values.get(..count).unwrap_or(&[])),
        Err(too_small) => {
            // Many IETF quota members: render again into a buffer of the exact size.
            let mut heap = vec![0u8; too_small.needed];
            let count = decision
                .render_header_values(unix_nanos, &mut heap, &mut values)
                .unwrap_or(0);
            pairs(&heap, values.get(..count).unwrap_or(&[]))
        }
    }
}

/// The header pairs `values` describes in `rendered`. All values share one copy of the
/// rendered bytes; a value that is not a valid header value (never produced by the
/// renderer) is skipped.
fn pairs(
    rendered: &[u8],
    values: &[ratecore::http::HeaderValue],
) -> Vec<(HeaderName, HeaderValue)> {
    let used = values.iter().map(|v| v.start + v.len).max().unwrap_or(0);
    let shared = Bytes::copy_from_slice(rendered.get(..used).unwrap_or(&[]));
    let mut headers = Vec::with_capacity(values.len());
    for v in values {
        let (Some(name), Some(value)) = (
            header_name(v.name.as_bytes()),
            shared
                .get(v.start..v.start + v.len)
                .map(|_| shared.slice(v.start..v.start + v.len)),
        ) else {
            continue;
        };
        if let Ok(value) = HeaderValue::from_maybe_shared(value) {
            headers.push((name, value));
        }
    }
    headers
}

/// The header names the renderer writes, spelled as it writes them, with their constants:
/// an exact match is one length check and a short comparison, and costs no allocation,
/// where `HeaderName::from_bytes` would allocate for each custom name.
static SPELLED: [(&str, HeaderName); 12] = [
    (
        "x-ratelimit-limit",
        HeaderName::from_static("x-ratelimit-limit"),
    ),
    (
        "x-ratelimit-remaining",
        HeaderName::from_static("x-ratelimit-remaining"),
    ),
    ("retry-after", RETRY_AFTER),
    (
        "X-RateLimit-Limit",
        HeaderName::from_static("x-ratelimit-limit"),
    ),
    (
        "X-RateLimit-Remaining",
        HeaderName::from_static("x-ratelimit-remaining"),
    ),
    (
        "X-RateLimit-Reset",
        HeaderName::from_static("x-ratelimit-reset"),
    ),
    ("Retry-After", RETRY_AFTER),
    (
        "X-Rate-Limit-Limit",
        HeaderName::from_static("x-rate-limit-limit"),
    ),
    (
        "X-Rate-Limit-Remaining",
        HeaderName::from_static("x-rate-limit-remaining"),
    ),
    (
        "X-Rate-Limit-Reset",
        HeaderName::from_static("x-rate-limit-reset"),
    ),
    (
        "RateLimit-Policy",
        HeaderName::from_static("ratelimit-policy"),
    ),
    ("RateLimit", HeaderName::from_static("ratelimit")),
];

/// The header `name`: a constant when the renderer spelled it, else parsed (any case).
/// Spellings are told apart by length first: one comparison, usually, where a scan of
/// the whole list cost several (this runs for every header of every limited response).
fn header_name(name: &[u8]) -> Option<HeaderName> {
    let known = SPELLED
        .iter()
        .filter(|(spelled, _)| spelled.len() == name.len())
        .find(|(spelled, _)| spelled.as_bytes() == name);
    match known {
        Some((_, known)) => Some(known.clone()),
        None => HeaderName::from_bytes(name).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::{header_name, headers, SPELLED};
    use http::HeaderName;
    use ratecore::policy::{Policy, Request};

    #[test]
    fn spelled_names_are_their_headers() {
        for (spelled, known) in &SPELLED {
            let parsed = HeaderName::from_bytes(spelled.as_bytes()).ok();
            assert_eq!(parsed.as_ref(), Some(known));
            assert_eq!(header_name(spelled.as_bytes()).as_ref(), Some(known));
        }
    }

    /// The pairs equal the policy's rendered lines for every style, and a long IETF
    /// report (rendered into a buffer of its exact size) loses nothing.
    #[test]
    fn pairs_are_the_rendered_lines() {
        let long = "q".repeat(120);
        for style in ["evenergy", "uphold", "switch", "ietf"] {
            let mut toml = format!("[response]\nheaders = \"{style}\"\n[table]\ncapacity = 64\n");
            toml += "[[rule]]\nname = \"all\"\n";
            for (i, limit) in [1, 2, 3, 4].iter().enumerate() {
                toml += &format!(
                    "[[rule.limit]]\nname = \"{long}{i}\"\nkey = []\nalgorithm = \"gcra\"\nlimit = {limit}\nperiod = \"{limit}m\"\n"
                );
            }
            let policy = Policy::from_toml_str(&toml, "test.toml").unwrap();
            let request = Request::new("GET", "/", &[]);
            for now in [0, 1, 2] {
                let decision = policy.check(&request, now, 1).unwrap();
                let unix = 1_795_518_000_000_000_000 + now;
                let mut lines = vec![0u8; 4096];
                let len = decision.render_headers(unix, &mut lines).unwrap();
                let want: Vec<(String, String)> = std::str::from_utf8(&lines[..len])
                    .unwrap()
                    .split_terminator("\r\n")
                    .map(|line| {
                        let (name, value) = line.split_once(": ").unwrap();
                        (name.to_ascii_lowercase(), value.to_owned())
                    })
                    .collect();
                let got: Vec<(String, String)> = headers(&decision, unix)
                    .into_iter()
                    .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
                    .collect();
                assert!(!got.is_empty(), "{style}");
                assert_eq!(got, want, "{style} at {now}");
            }
        }
    }
}
