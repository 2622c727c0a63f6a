//! HTTP metadata: rate-limit headers and 429 bodies rendered into caller buffers, without
//! allocating, byte-exact to the published styles.
//!
//! Every renderer writes as much as fits and returns the total length; when the buffer
//! is too small it returns [`BufferTooSmall`] with the exact length needed, so the caller
//! can retry with a bigger buffer. Header blocks are `Name: value\r\n` lines.
//!
//! Time: decisions carry relative durations (monotonic time); absolute resets are
//! computed here from a *wall-clock* `unix_now_nanos` the caller passes — monotonic and
//! wall time never mix. Every seconds value is rounded **up**: a client told to wait 42 s
//! is never early.

mod time;
pub(crate) mod writer;

use core::fmt;

use crate::decision::Decision;
use writer::Writer;

pub use time::ceil_seconds;

/// The buffer was too small; `needed` bytes would have been written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BufferTooSmall {
    /// The exact length the rendering needs.
    pub needed: usize,
}

impl fmt::Display for BufferTooSmall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "buffer too small: {} bytes needed", self.needed)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for BufferTooSmall {}

/// Which header vocabulary to speak.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum HeaderStyle {
    /// ev.energy: `x-ratelimit-limit`, `x-ratelimit-remaining`; `retry-after` on denial.
    EvEnergy,
    /// Uphold: `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (epoch
    /// seconds); `Retry-After` on denial.
    Uphold,
    /// Switch: `X-Rate-Limit-Limit`, `X-Rate-Limit-Remaining`, `X-Rate-Limit-Reset`
    /// (ISO 8601 UTC); `Retry-After` on denial.
    Switch,
    /// IETF draft-ietf-httpapi-ratelimit-headers-10: `RateLimit-Policy` and `RateLimit`
    /// with one list member per quota; `Retry-After` on denial.
    #[default]
    Ietf,
}

impl HeaderStyle {
    /// Whether the style's headers carry an absolute time (Uphold's epoch seconds,
    /// Switch's ISO 8601), rendered from the wall clock the caller passes; the others
    /// never read it.
    #[must_use]
    pub const fn uses_wall_clock(self) -> bool {
        matches!(self, Self::Uphold | Self::Switch)
    }
}

/// One quota's state, for the IETF fields' per-quota list members.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaReport<'a> {
    /// The policy name (`"peruser"`); rendered as a structured-field string.
    pub name: &'a str,
    /// The quota's period, in nanoseconds (`w`, rounded up to seconds).
    pub period: u64,
    /// The quota's state for this request (`q` = limit, `r` = remaining, `t` = reset).
    pub decision: Decision,
}

/// What the header renderers need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderInput<'a> {
    /// The combined decision (the most restrictive quota's).
    pub decision: Decision,
    /// Every applicable quota (IETF style; the other styles report only `decision`).
    pub quotas: &'a [QuotaReport<'a>],
    /// Wall-clock nanoseconds since the Unix epoch, for absolute reset times.
    pub unix_now_nanos: u64,
}

/// Renders the rate-limit header lines of `style` into `out`.
///
/// # Errors
/// [`BufferTooSmall`] with the length needed.
pub fn render_headers(
    style: HeaderStyle,
    input: &HeaderInput<'_>,
    out: &mut [u8],
) -> Result<usize, BufferTooSmall> {
    let mut lines = Lines(Writer::new(out));
    emit(style, input, &mut lines);
    lines.0.finish().map_err(|needed| BufferTooSmall { needed })
}

/// The most headers one style renders (Uphold and Switch: limit, remaining, reset and
/// `Retry-After`).
pub const MAX_HEADER_VALUES: usize = 4;

/// One header [`render_header_values`] rendered: its name, and where its value lies in the
/// output buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeaderValue {
    /// The header's name, as the style spells it.
    pub name: &'static str,
    /// Where the value starts in the buffer.
    pub start: usize,
    /// The value's length in bytes.
    pub len: usize,
}

/// Renders the values of the rate-limit headers of `style` one after another into `out`,
/// without names or line breaks, and describes each header in `values` (in the order
/// [`render_headers`] writes their lines, with the same bytes as their values): for a
/// caller that adds headers one by one, as a web server does. Returns how many headers
/// there are (at most [`MAX_HEADER_VALUES`]).
///
/// # Errors
/// [`BufferTooSmall`] with the length needed (`values` may be partly written then).
pub fn render_header_values(
    style: HeaderStyle,
    input: &HeaderInput<'_>,
    out: &mut [u8],
    values: &mut [HeaderValue; MAX_HEADER_VALUES],
) -> Result<usize, BufferTooSmall> {
    let mut fields = Values {
        w: Writer::new(out),
        values,
        count: 0,
    };
    emit(style, input, &mut fields);
    let count = fields.count;
    fields
        .w
        .finish()
        .map(|_| count)
        .map_err(|needed| BufferTooSmall { needed })
}

/// Where a style's headers go: whole lines, or values described one by one.
trait Fields {
    /// One header whose value `value` writes.
    fn field(&mut self, name: &'static str, value: impl FnOnce(&mut Writer<'_>));
}

/// `Name: value\r\n` lines.
struct Lines<'a>(Writer<'a>);

impl Fields for Lines<'_> {
    fn field(&mut self, name: &'static str, value: impl FnOnce(&mut Writer<'_>)) {
        self.0.str(name);
        self.0.str(": ");
        value(&mut self.0);
        self.0.str("\r\n");
    }
}

/// Bare values, each described in `values`.
struct Values<'a, 'v> {
    w: Writer<'a>,
    values: &'v mut [HeaderValue; MAX_HEADER_VALUES],
    count: usize,
}

impl Fields for Values<'_, '_> {
    fn field(&mut self, name: &'static str, value: impl FnOnce(&mut Writer<'_>)) {
        let start = self.w.len();
        value(&mut self.w);
        if let Some(slot) = self.values.get_mut(self.count) {
            *slot = HeaderValue {
                name,
                start,
                len: self.w.len().saturating_sub(start),
            };
            self.count += 1;
        }
    }
}

/// The headers of `style` for `input`, in order.
#[inline(always)] // into each renderer: the style's match is the whole function
fn emit(style: HeaderStyle, input: &HeaderInput<'_>, f: &mut impl Fields) {
    let d = &input.decision;
    let names = match style {
        HeaderStyle::EvEnergy => [
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "",
            "retry-after",
        ],
        HeaderStyle::Uphold => [
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
            "Retry-After",
        ],
        HeaderStyle::Switch => [
            "X-Rate-Limit-Limit",
            "X-Rate-Limit-Remaining",
            "X-Rate-Limit-Reset",
            "Retry-After",
        ],
        HeaderStyle::Ietf => ["", "", "", "Retry-After"],
    };
    let [limit, remaining, reset, retry] = names;
    if style == HeaderStyle::Ietf {
        if !input.quotas.is_empty() {
            // Each field lists every quota by name with two parameters: a count, then a
            // duration in seconds rounded up.
            type Params = fn(&QuotaReport<'_>) -> (u64, u64);
            let fields: [(&str, &str, &str, Params); 2] = [
                ("RateLimit-Policy", ";q=", ";w=", |q| {
                    (q.decision.limit, q.period)
                }),
                ("RateLimit", ";r=", ";t=", |q| {
                    (q.decision.remaining, q.decision.reset_after)
                }),
            ];
            for (field, count_key, seconds_key, params) in fields {
                f.field(field, |w| {
                    list(w, input.quotas, |w, q| {
                        let (count, nanos) = params(q);
                        sf_string(w, q.name);
                        w.str(count_key);
                        w.u64(count);
                        w.str(seconds_key);
                        w.u64(ceil_seconds(nanos));
                    });
                });
            }
        }
    } else {
        f.field(limit, |w| w.u64(d.limit));
        f.field(remaining, |w| w.u64(d.remaining));
        if !reset.is_empty() {
            let reset_unix_seconds =
                ceil_seconds(input.unix_now_nanos.saturating_add(d.reset_after));
            f.field(reset, |w| {
                if style == HeaderStyle::Switch {
                    iso8601(w, reset_unix_seconds);
                } else {
                    w.u64(reset_unix_seconds);
                }
            });
        }
    }
    if !d.allowed {
        f.field(retry, |w| w.u64(ceil_seconds(d.retry_after)));
    }
}

/// A comma-separated list of items.
fn list<T>(w: &mut Writer<'_>, items: &[T], mut item: impl FnMut(&mut Writer<'_>, &T)) {
    for (index, value) in items.iter().enumerate() {
        if index > 0 {
            w.str(", ");
        }
        item(w, value);
    }
}

/// An RFC 8941 sf-string: quoted; `"` and `\` escaped; other bytes outside printable
/// ASCII (which sf-strings cannot hold) replaced by `?`.
fn sf_string(w: &mut Writer<'_>, text: &str) {
    w.str("\"");
    for &byte in text.as_bytes() {
        match byte {
            b'"' | b'\\' => w.bytes(&[b'\\', byte]),
            0x20..=0x7e => w.bytes(&[byte]),
            _ => w.bytes(b"?"),
        }
    }
    w.str("\"");
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
fn iso8601(w: &mut Writer<'_>, unix_seconds: u64) {
    let t = time::utc_from_unix_seconds(unix_seconds);
    w.u64(t.year);
    for (separator, field) in [
        ("-", t.month),
        ("-", t.day),
        ("T", t.hour),
        (":", t.minute),
        (":", t.second),
    ] {
        w.str(separator);
        w.two_digits(field);
    }
    w.str("Z");
}

/// The 429 body vocabulary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BodyStyle<'a> {
    /// RFC 9457 `application/problem+json`, laid out as ev.energy shows it:
    /// `type`, `status`, `title`, and `detail` = "Request was rate limited. Try again in N
    /// seconds". (ev.energy's published example ends its object with a trailing comma,
    /// which is not JSON; we emit valid JSON with the same members, order and layout.)
    ProblemJson {
        /// The problem type URI.
        type_uri: &'a str,
        /// The problem title.
        title: &'a str,
        /// The response's status, repeated in the `status` member (RFC 9457 asks that
        /// they agree): 429 unless the policy answers denials with another status.
        status: u16,
    },
    /// Switch's sentence: "{subject} quota exceeded. Maximum allowed is {limit} requests
    /// per {period}. Please try again in {N} second." (verbatim, singular included).
    PlainText {
        /// What was limited, e.g. "Save readings API interface".
        subject: &'a str,
    },
}

impl BodyStyle<'_> {
    /// The `Content-Type` of this body.
    #[must_use]
    pub const fn content_type(&self) -> &'static str {
        match self {
            Self::ProblemJson { .. } => "application/problem+json",
            Self::PlainText { .. } => "text/plain; charset=utf-8",
        }
    }
}

/// Renders the 429 body for `decision` (a denial) of a quota whose period is `period`
/// nanoseconds.
///
/// # Errors
/// [`BufferTooSmall`] with the length needed.
pub fn render_body(
    style: &BodyStyle<'_>,
    decision: &Decision,
    period: u64,
    out: &mut [u8],
) -> Result<usize, BufferTooSmall> {
    let mut w = Writer::new(out);
    let retry = ceil_seconds(decision.retry_after);
    match style {
        BodyStyle::ProblemJson {
            type_uri,
            title,
            status,
        } => {
            w.str("{\n    \"type\": ");
            json_string(&mut w, type_uri);
            w.str(",\n    \"status\": ");
            w.u64(u64::from(*status));
            w.str(",\n    \"title\": ");
            json_string(&mut w, title);
            w.str(",\n    \"detail\": \"Request was rate limited. Try again in ");
            w.u64(retry);
            w.str(" seconds\"\n}\n");
        }
        BodyStyle::PlainText { subject } => {
            w.str(subject);
            w.str(" quota exceeded. Maximum allowed is ");
            w.u64(decision.limit);
            w.str(" requests per ");
            compact_duration(&mut w, period);
            w.str(". Please try again in ");
            w.u64(retry);
            w.str(" second.");
        }
    }
    w.finish().map_err(|needed| BufferTooSmall { needed })
}

/// A JSON string literal with the escapes RFC 8259 requires.
fn json_string(w: &mut Writer<'_>, text: &str) {
    w.str("\"");
    for &byte in text.as_bytes() {
        match byte {
            b'"' => w.str("\\\""),
            b'\\' => w.str("\\\\"),
            b'\n' => w.str("\\n"),
            b'\r' => w.str("\\r"),
            b'\t' => w.str("\\t"),
            0..=0x1f => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                w.bytes(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(byte >> 4)],
                    HEX[usize::from(byte & 0xf)],
                ]);
            }
            _ => w.bytes(&[byte]),
        }
    }
    w.str("\"");
}

/// A period as the largest whole unit: `1m`, `5m`, `1h`, `1s`, `250ms`, `7ns`.
fn compact_duration(w: &mut Writer<'_>, nanos: u64) {
    const UNITS: [(u64, &str); 6] = [
        (86_400_000_000_000, "d"),
        (3_600_000_000_000, "h"),
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
        (1_000, "us"),
    ];
    for (size, suffix) in UNITS {
        if nanos >= size && nanos % size == 0 {
            w.u64(nanos / size);
            w.str(suffix);
            return;
        }
    }
    w.u64(nanos);
    w.str("ns");
}
