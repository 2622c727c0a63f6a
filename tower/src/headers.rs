//! The policy's rate-limit headers as `http` header pairs. A decision reported alone
//! (every style but the IETF fields) is carried as its few figures and rendered when the
//! headers are added to the response, after the inner service answered: the check's
//! frame renders nothing and the response future carries a few words. Rendered values
//! live in one buffer that becomes one shared allocation (every value is a slice of it)
//! sized to them, the names are constants, and where each value lies is listed inline
//! until the response takes them: one allocation per limited response.

use bytes::{Buf, Bytes};
use http::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use ratecore::http::{BufferTooSmall, HeaderInput, HeaderStyle, MAX_HEADER_VALUES};
use ratecore::policy::PolicyDecision;
use ratecore::Decision;

/// The rate-limit headers of one decision, in the order the policy renders them (none
/// when no limit applied). Small, so moving it from the check into the response is
/// cheap; each value becomes a `HeaderValue` (a slice of the shared bytes) as it is
/// added.
#[derive(Clone, Debug, Default)]
pub struct RateLimitHeaders {
    repr: Repr,
}

#[derive(Clone, Debug, Default)]
enum Repr {
    /// No limit applied.
    #[default]
    None,
    /// The decision a style other than the IETF fields reports alone, its absolute reset
    /// rendered at `unix_nanos`: rendered when added.
    Figures {
        style: HeaderStyle,
        decision: Decision,
        unix_nanos: u64,
    },
    /// The values, rendered (the IETF fields, which list every applicable quota).
    /// Boxed: inline, the list of where each value lies would make every style's
    /// headers, moved from the check into the response future, half as large again.
    Rendered(Box<Rendered>),
}

/// Rendered header values: their bytes, one after another, and where each header's value
/// lies.
#[derive(Clone, Debug, Default)]
struct Rendered {
    values: Bytes,
    /// `count` of them, from the front.
    fields: [Field; MAX_HEADER_VALUES],
    count: usize,
}

/// One header: its name (an index into [`NAMES`]) and where its value lies in `values`.
#[derive(Clone, Copy, Debug, Default)]
struct Field {
    name: u8,
    start: u32,
    len: u32,
}

/// Values up to this many bytes (every style but a long IETF report) are kept in one
/// allocation together with their reference count.
const INLINE: usize = 96;

/// Values up to this many bytes (a limit and a remaining count of up to 12 digits each)
/// are kept in an allocation of a quarter the size.
const SMALL: usize = 24;

/// Rendered values, owned by their shared `Bytes`.
struct Inline<const N: usize> {
    bytes: [u8; N],
    len: u8,
}

impl<const N: usize> Inline<N> {
    /// The values `render` renders, rendered in place, and their descriptions in
    /// `values`; `Err` with the length needed when they do not fit.
    fn render(
        render: &impl Fn(&mut [u8], &mut Values) -> Result<usize, BufferTooSmall>,
        values: &mut Values,
    ) -> Result<(Bytes, usize), BufferTooSmall> {
        let mut bytes = [0; N];
        let count = render(&mut bytes, values)?;
        let rendered = values.get(..count).unwrap_or(&[]);
        // At most N bytes were rendered (the rendering fit), and N is at most INLINE.
        let len = u8::try_from(used(rendered)).unwrap_or(u8::MAX);
        Ok((Bytes::from_owner(Self { bytes, len }), count))
    }
}

/// Where each rendered value lies.
type Values = [ratecore::http::HeaderValue; MAX_HEADER_VALUES];

impl<const N: usize> AsRef<[u8]> for Inline<N> {
    fn as_ref(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }
}

impl RateLimitHeaders {
    /// The policy's rate-limit headers for `decision`, absolute resets rendered at
    /// `unix_nanos`.
    pub(crate) fn render(decision: &PolicyDecision<'_>, unix_nanos: u64) -> Self {
        let repr = match decision.header_style() {
            _ if !decision.limited() => Repr::None,
            HeaderStyle::Ietf => Repr::Rendered(Rendered::ietf(decision, unix_nanos)),
            style => Repr::Figures {
                style,
                decision: *decision.decision(),
                unix_nanos,
            },
        };
        Self { repr }
    }

    /// How many headers.
    #[must_use]
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::None => 0,
            // The style's headers, the retry header (last) only on a denial.
            Repr::Figures {
                style, decision, ..
            } => style_names(*style).len() - usize::from(decision.allowed),
            Repr::Rendered(rendered) => rendered.count,
        }
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The headers, in order. Each value is a slice of one shared buffer (a value that is
    /// not a valid header value, never produced by the renderer, is skipped). Each call
    /// renders the values again and collects them: iterate once.
    pub fn iter(&self) -> impl Iterator<Item = (&'static HeaderName, HeaderValue)> + '_ {
        let mut pairs = Vec::with_capacity(self.len());
        self.clone()
            .into_pairs(|name, value| pairs.push((name, value)));
        pairs.into_iter()
    }

    /// Adds the headers to `map`, keeping any header of the same name `map` already has
    /// (a header the handler set itself is its to keep).
    pub(crate) fn add_missing_to(self, map: &mut HeaderMap) {
        self.into_pairs(|name, value| {
            map.entry(name).or_insert(value);
        });
    }

    /// Appends the headers to `map`.
    pub(crate) fn append_to(self, map: &mut HeaderMap) {
        self.into_pairs(|name, value| {
            map.append(name, value);
        });
    }

    /// Hands each header to `f`, in order.
    fn into_pairs(self, f: impl FnMut(&'static HeaderName, HeaderValue)) {
        match self.repr {
            Repr::None => {}
            Repr::Figures {
                style,
                decision,
                unix_nanos,
            } => {
                let input = HeaderInput {
                    decision,
                    quotas: &[],
                    unix_now_nanos: unix_nanos,
                };
                let render = |out: &mut [u8], values: &mut _| {
                    ratecore::http::render_header_values(style, &input, out, values)
                };
                Rendered::of(render, style).into_pairs(f);
            }
            Repr::Rendered(rendered) => rendered.into_pairs(f),
        }
    }
}

impl Rendered {
    /// The IETF fields of `decision`. Out of line: the rendering's buffers would
    /// otherwise be in the frame of every style's check.
    #[inline(never)]
    fn ietf(decision: &PolicyDecision<'_>, unix_nanos: u64) -> Box<Self> {
        Box::new(Self::of(
            |out, values| decision.render_header_values(unix_nanos, out, values),
            HeaderStyle::Ietf,
        ))
    }

    /// The values `render` renders in `style`, in an allocation of about their size.
    fn of(
        render: impl Fn(&mut [u8], &mut Values) -> Result<usize, BufferTooSmall>,
        style: HeaderStyle,
    ) -> Self {
        let mut values = Values::default();
        // Into the owner's bytes, the small one first: a few bytes of stack to clear and
        // nothing to copy but the owner, where a buffer of the largest size would be
        // cleared, written, then copied.
        let rendered = Inline::<SMALL>::render(&render, &mut values)
            .or_else(|_| Inline::<INLINE>::render(&render, &mut values));
        let (bytes, count) = match rendered {
            Ok(rendered) => rendered,
            Err(too_small) => {
                // A long IETF report: rendered into a buffer of its exact size.
                let mut heap = vec![0u8; too_small.needed];
                let count = render(&mut heap, &mut values).unwrap_or(0);
                heap.truncate(used(values.get(..count).unwrap_or(&[])));
                (Bytes::from(heap), count)
            }
        };
        Self::from_values(bytes, values.get(..count).unwrap_or(&[]), style)
    }

    /// The headers `values` describes in `rendered`, rendered in `style`. A name without
    /// its constant, or a value outside `rendered` (neither is ever produced by the
    /// renderer), is skipped.
    fn from_values(
        rendered: Bytes,
        values: &[ratecore::http::HeaderValue],
        style: HeaderStyle,
    ) -> Self {
        let mut fields = [Field::default(); MAX_HEADER_VALUES];
        let mut count = 0;
        let expected = style_names(style);
        for (index, v) in values.iter().enumerate() {
            let Some(slot) = fields.get_mut(count) else {
                break;
            };
            let fits = v
                .start
                .checked_add(v.len)
                .is_some_and(|end| end <= rendered.len());
            // The style's names in the order it renders them: no string compares.
            let known = expected
                .get(index)
                .filter(|&&(_, len)| usize::from(len) == v.name.len())
                .map(|&(name, _)| name);
            let (Some(name), Ok(start), Ok(len), true) = (
                known.or_else(|| header_name(v.name)),
                u32::try_from(v.start),
                u32::try_from(v.len),
                fits,
            ) else {
                continue;
            };
            *slot = Field { name, start, len };
            count += 1;
        }
        Self {
            values: rendered,
            fields,
            count,
        }
    }

    fn pair(&self, field: Field) -> Option<(&'static HeaderName, HeaderValue)> {
        let name = NAMES.get(usize::from(field.name))?;
        let range = field.range()?;
        self.values.get(range.clone())?;
        let value = HeaderValue::from_maybe_shared(self.values.slice(range)).ok()?;
        Some((name, value))
    }

    /// Hands each header to `f`, in order, without iterator adapters; the last value
    /// takes the shared bytes over instead of counting one more reference to them. A
    /// value that is not a valid header value (never produced by the renderer) is
    /// skipped.
    fn into_pairs(mut self, mut f: impl FnMut(&'static HeaderName, HeaderValue)) {
        let fields = self.fields.get(..self.count).unwrap_or(&[]);
        let Some((last, rest)) = fields.split_last() else {
            return;
        };
        for field in rest {
            if let Some((name, value)) = self.pair(*field) {
                f(name, value);
            }
        }
        let (Some(name), Some(range)) = (NAMES.get(usize::from(last.name)), last.range()) else {
            return;
        };
        let mut bytes = std::mem::take(&mut self.values);
        if range.end <= bytes.len() {
            bytes.truncate(range.end);
            bytes.advance(range.start);
            if let Ok(value) = HeaderValue::from_maybe_shared(bytes) {
                f(name, value);
            }
        }
    }
}

impl Field {
    /// Where the value lies.
    fn range(self) -> Option<std::ops::Range<usize>> {
        let start = usize::try_from(self.start).ok()?;
        Some(start..start.checked_add(usize::try_from(self.len).ok()?)?)
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

/// The header names the renderer writes, as constants ([`header_name`] indexes them):
/// adding one costs no allocation, where `HeaderName::from_bytes` would allocate for
/// each custom name.
static NAMES: [HeaderName; 9] = [
    HeaderName::from_static("x-ratelimit-limit"),
    HeaderName::from_static("x-ratelimit-remaining"),
    HeaderName::from_static("x-ratelimit-reset"),
    HeaderName::from_static("x-rate-limit-limit"),
    HeaderName::from_static("x-rate-limit-remaining"),
    HeaderName::from_static("x-rate-limit-reset"),
    HeaderName::from_static("ratelimit-policy"),
    HeaderName::from_static("ratelimit"),
    RETRY_AFTER,
];

/// The headers `style` renders, in its order (the retry header, last, only on a
/// denial), as indices in [`NAMES`] with the length of the renderer's spelling: a value
/// whose name has another length is named by [`header_name`] instead.
fn style_names(style: HeaderStyle) -> &'static [(u8, u8)] {
    const RETRY: (u8, u8) = (8, 11);
    match style {
        HeaderStyle::EvEnergy => &[(0, 17), (1, 21), RETRY],
        HeaderStyle::Uphold => &[(0, 17), (1, 21), (2, 17), RETRY],
        HeaderStyle::Switch => &[(3, 18), (4, 22), (5, 18), RETRY],
        HeaderStyle::Ietf => &[(6, 16), (7, 9), RETRY],
    }
}

/// The index in [`NAMES`] of header `name`, as the renderer spells it: a match on the
/// spelling (its length, then its bytes). Every name of every style is listed (the tests
/// render each style). Out of line and cold: [`style_names`] names every value the
/// renderer produces, and inlined, this match's constants were loaded on every call.
#[cold]
#[inline(never)]
fn header_name(name: &str) -> Option<u8> {
    Some(match name {
        "x-ratelimit-limit" | "X-RateLimit-Limit" => 0,
        "x-ratelimit-remaining" | "X-RateLimit-Remaining" => 1,
        "X-RateLimit-Reset" => 2,
        "X-Rate-Limit-Limit" => 3,
        "X-Rate-Limit-Remaining" => 4,
        "X-Rate-Limit-Reset" => 5,
        "RateLimit-Policy" => 6,
        "RateLimit" => 7,
        "retry-after" | "Retry-After" => 8,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::{header_name, RateLimitHeaders, NAMES};
    use http::HeaderName;
    use ratecore::policy::{Policy, Request};

    /// What the response future carries across the inner service's call, and the
    /// check's answer moved there, stay a few words: a decision's figures, or a pointer.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn carried_headers_and_answers_are_small() {
        use core::mem::size_of;
        assert!(size_of::<RateLimitHeaders>() <= 56);
        assert_eq!(size_of::<Option<Box<crate::Denial>>>(), 8);
        assert!(size_of::<crate::Checked>() <= 160);
    }

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
            let known = header_name(spelled).and_then(|i| NAMES.get(usize::from(i)));
            assert_eq!(known, parsed.as_ref(), "{spelled}");
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
                let headers = RateLimitHeaders::render(&decision, unix);
                assert_eq!(headers.len(), headers.iter().count(), "{style}");
                let got: Vec<(String, String)> = headers
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
                    .collect();
                assert!(!got.is_empty(), "{style}");
                assert_eq!(got, want, "{style} at {now}");
            }
        }
    }
}
