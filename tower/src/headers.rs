//! The policy's rate-limit headers as `http` header pairs. The values of one decision are
//! rendered into one buffer that becomes one shared allocation (every value is a slice of
//! it), the names are constants, and the pairs are listed inline until the response takes
//! them: one allocation per limited response.

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use ratecore::http::MAX_HEADER_VALUES;
use ratecore::policy::PolicyDecision;

/// The rate-limit headers of one decision, in the order the policy renders them (none
/// when no limit applied).
#[derive(Clone, Debug, Default)]
pub struct RateLimitHeaders {
    /// Filled from the front.
    pairs: [Option<(&'static HeaderName, HeaderValue)>; MAX_HEADER_VALUES],
}

/// Rendered values up to this many bytes (every style but a long IETF report) live in
/// one allocation together with their reference count.
const INLINE: usize = 96;

/// The rendered values of one decision, owned by their shared `Bytes`.
struct Inline {
    bytes: [u8; INLINE],
    len: usize,
}

impl AsRef<[u8]> for Inline {
    fn as_ref(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }
}

impl RateLimitHeaders {
    /// The policy's rate-limit headers for `decision`, absolute resets rendered at
    /// `unix_nanos`.
    pub(crate) fn render(decision: &PolicyDecision<'_>, unix_nanos: u64) -> Self {
        let mut values = [ratecore::http::HeaderValue::default(); MAX_HEADER_VALUES];
        let mut inline = Inline {
            bytes: [0; INLINE],
            len: 0,
        };
        match decision.render_header_values(unix_nanos, &mut inline.bytes, &mut values) {
            Ok(0) => Self::default(),
            Ok(count) => {
                let values = values.get(..count).unwrap_or(&[]);
                inline.len = used(values).min(INLINE);
                Self::from_values(&Bytes::from_owner(inline), values)
            }
            Err(too_small) => {
                // A long IETF report: render again into a buffer of the exact size.
                let mut heap = vec![0u8; too_small.needed];
                let count = decision
                    .render_header_values(unix_nanos, &mut heap, &mut values)
                    .unwrap_or(0);
                let values = values.get(..count).unwrap_or(&[]);
                heap.truncate(used(values));
                Self::from_values(&Bytes::from(heap), values)
            }
        }
    }

    /// The pairs `values` describes in `rendered`. A value that is not a valid header
    /// value, or a name without its constant (neither is ever produced by the renderer),
    /// is skipped.
    fn from_values(rendered: &Bytes, values: &[ratecore::http::HeaderValue]) -> Self {
        let mut headers = Self::default();
        let pairs = values.iter().filter_map(|v| {
            let name = header_name(v.name)?;
            let range = v.start..v.start.checked_add(v.len)?;
            rendered.get(range.clone())?;
            let value = HeaderValue::from_maybe_shared(rendered.slice(range)).ok()?;
            Some((name, value))
        });
        for (slot, pair) in headers.pairs.iter_mut().zip(pairs) {
            *slot = Some(pair);
        }
        headers
    }

    /// How many headers.
    #[must_use]
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// The headers, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> + '_ {
        self.pairs
            .iter()
            .map_while(|pair| pair.as_ref().map(|(name, value)| (*name, value)))
    }

    /// Adds the headers to `map`, keeping any header of the same name `map` already has
    /// (a header the handler set itself is its to keep).
    pub(crate) fn add_missing_to(self, map: &mut HeaderMap) {
        for (name, value) in self.pairs.into_iter().map_while(|pair| pair) {
            map.entry(name).or_insert(value);
        }
    }

    /// Appends the headers to `map`.
    pub(crate) fn append_to(self, map: &mut HeaderMap) {
        for (name, value) in self.pairs.into_iter().map_while(|pair| pair) {
            map.append(name, value);
        }
    }
}

/// The bytes `values` span.
fn used(values: &[ratecore::http::HeaderValue]) -> usize {
    values
        .iter()
        .map(|v| v.start.saturating_add(v.len))
        .max()
        .unwrap_or(0)
}

static X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
static X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
static X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
static X_RATE_LIMIT_LIMIT: HeaderName = HeaderName::from_static("x-rate-limit-limit");
static X_RATE_LIMIT_REMAINING: HeaderName = HeaderName::from_static("x-rate-limit-remaining");
static X_RATE_LIMIT_RESET: HeaderName = HeaderName::from_static("x-rate-limit-reset");
static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
static RETRY: HeaderName = RETRY_AFTER;

/// The constant for header `name`, as the renderer spells it: a match on the spelling
/// (its length, then its bytes) that costs no allocation, where `HeaderName::from_bytes`
/// would allocate for each custom name. Every name of every style is listed (the tests
/// render each style).
fn header_name(name: &str) -> Option<&'static HeaderName> {
    Some(match name {
        "x-ratelimit-limit" | "X-RateLimit-Limit" => &X_RATELIMIT_LIMIT,
        "x-ratelimit-remaining" | "X-RateLimit-Remaining" => &X_RATELIMIT_REMAINING,
        "X-RateLimit-Reset" => &X_RATELIMIT_RESET,
        "X-Rate-Limit-Limit" => &X_RATE_LIMIT_LIMIT,
        "X-Rate-Limit-Remaining" => &X_RATE_LIMIT_REMAINING,
        "X-Rate-Limit-Reset" => &X_RATE_LIMIT_RESET,
        "RateLimit-Policy" => &RATELIMIT_POLICY,
        "RateLimit" => &RATELIMIT,
        "retry-after" | "Retry-After" => &RETRY,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::{header_name, RateLimitHeaders};
    use http::HeaderName;
    use ratecore::policy::{Policy, Request};

    #[test]
    fn spelled_names_are_their_headers() {
        for spelled in [
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "retry-after",
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
            "Retry-After",
            "X-Rate-Limit-Limit",
            "X-Rate-Limit-Remaining",
            "X-Rate-Limit-Reset",
            "RateLimit-Policy",
            "RateLimit",
        ] {
            let parsed = HeaderName::from_bytes(spelled.as_bytes()).ok();
            assert_eq!(header_name(spelled), parsed.as_ref(), "{spelled}");
        }
        assert_eq!(header_name("X-Unknown"), None);
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
                let got: Vec<(String, String)> = RateLimitHeaders::render(&decision, unix)
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
                    .collect();
                assert!(!got.is_empty(), "{style}");
                assert_eq!(got, want, "{style} at {now}");
            }
        }
    }
}
