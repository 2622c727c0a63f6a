//! `render`: header and body rendering for arbitrary decisions, styles, wall clocks and
//! quota names.
//!
//! For every renderer: the length returned for an empty buffer is exactly what a second
//! render into a buffer of that size writes; a buffer one byte short (or of an arbitrary
//! smaller size) reports exactly that length and holds a prefix of the output, written
//! without gaps; nothing panics. Header blocks are printable ASCII in `Name: value\r\n`
//! lines, and say what the decision says (limit, remaining, reset in epoch seconds or
//! ISO 8601, Retry-After exactly when denied, all rounded up); problem+json bodies parse
//! as JSON with the given members; plain-text bodies are the documented sentence.

use std::fmt;

use arbitrary::{Arbitrary, Unstructured};
use ratecore::http::{
    render_body, render_headers, BodyStyle, BufferTooSmall, HeaderInput, HeaderStyle, QuotaReport,
};
use ratecore::Decision;

use crate::gen::Num;

/// A decision with arbitrary fields.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecisionSpec {
    /// `allowed`.
    pub allowed: bool,
    /// `limit`.
    pub limit: Num,
    /// `remaining`.
    pub remaining: Num,
    /// `reset_after`.
    pub reset_after: Num,
    /// `retry_after`.
    pub retry_after: Num,
}

impl DecisionSpec {
    /// The decision.
    pub fn get(&self) -> Decision {
        Decision {
            allowed: self.allowed,
            limit: self.limit.get(),
            remaining: self.remaining.get(),
            reset_after: self.reset_after.get(),
            retry_after: self.retry_after.get(),
        }
    }
}

/// One quota of the IETF list.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaSpec<'a> {
    /// Its name (any text: non-printable bytes must be replaced, quotes escaped).
    pub name: &'a str,
    /// Its period.
    pub period: Num,
    /// Its state.
    pub decision: DecisionSpec,
}

/// The header style.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StyleSpec {
    /// ev.energy.
    EvEnergy,
    /// Uphold.
    Uphold,
    /// Switch.
    Switch,
    /// IETF.
    Ietf,
}

impl StyleSpec {
    fn style(self) -> HeaderStyle {
        match self {
            Self::EvEnergy => HeaderStyle::EvEnergy,
            Self::Uphold => HeaderStyle::Uphold,
            Self::Switch => HeaderStyle::Switch,
            Self::Ietf => HeaderStyle::Ietf,
        }
    }
}

/// The body style: any [`BodyStyle`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodySpec<'a>(pub BodyStyle<'a>);

impl<'a> Arbitrary<'a> for BodySpec<'a> {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        // Drawn as `#[derive(Arbitrary)]` draws a two-variant enum (a `u32` scaled to the
        // variant, then its fields in order), so the committed seeds keep their meaning.
        let variant = (u64::from(u32::arbitrary(u)?) * 2) >> 32;
        Ok(Self(if variant == 0 {
            BodyStyle::ProblemJson {
                type_uri: u.arbitrary()?,
                title: u.arbitrary()?,
                status: u.arbitrary()?,
            }
        } else {
            BodyStyle::PlainText {
                subject: u.arbitrary()?,
            }
        }))
    }
}

/// A fuzz input.
#[derive(Arbitrary, Clone, PartialEq, Eq)]
pub struct RenderCase<'a> {
    /// The combined decision.
    pub decision: DecisionSpec,
    /// Header style.
    pub style: StyleSpec,
    /// Wall clock, nanoseconds since the Unix epoch.
    pub unix_now: Num,
    /// IETF quotas (the first 16).
    pub quotas: Vec<QuotaSpec<'a>>,
    /// Body style.
    pub body: BodySpec<'a>,
    /// The body's quota period.
    pub period: Num,
    /// Another buffer size to try.
    pub other_len: u16,
}

/// Checks the buffer protocol of `render` and returns its exact output.
pub fn protocol(
    render: impl Fn(&mut [u8]) -> Result<usize, BufferTooSmall>,
    other_len: usize,
) -> Vec<u8> {
    let needed = match render(&mut []) {
        Ok(n) => {
            assert_eq!(n, 0, "an empty buffer took {n} bytes");
            0
        }
        Err(BufferTooSmall { needed }) => {
            assert!(needed > 0, "BufferTooSmall with needed 0");
            needed
        }
    };
    // UTF-8 never contains 0xff: it marks bytes the renderer did not write.
    let mut exact = vec![0xff; needed];
    assert_eq!(render(&mut exact), Ok(needed), "exact-size render");
    assert!(
        !exact.contains(&0xff),
        "exact-size render left bytes unwritten"
    );
    let mut larger = vec![0xff; needed + 7];
    assert_eq!(render(&mut larger), Ok(needed), "larger render");
    assert_eq!(&larger[..needed], &exact[..]);
    assert!(
        larger[needed..].iter().all(|&b| b == 0xff),
        "wrote past the output"
    );
    for len in [needed.saturating_sub(1), other_len] {
        let mut buf = vec![0xff; len];
        let result = render(&mut buf);
        if len >= needed {
            assert_eq!(result, Ok(needed));
            assert_eq!(&buf[..needed], &exact[..]);
        } else {
            assert_eq!(
                result,
                Err(BufferTooSmall { needed }),
                "short buffer of {len}"
            );
            let written = buf.iter().position(|&b| b == 0xff).unwrap_or(len);
            assert!(
                buf[written..].iter().all(|&b| b == 0xff),
                "gap in a short render"
            );
            assert_eq!(
                &buf[..written],
                &exact[..written],
                "short render is not a prefix"
            );
        }
    }
    exact
}

fn ceil_seconds(nanos: u64) -> u64 {
    nanos.div_ceil(1_000_000_000)
}

/// Splits a header block into `(name, value)` pairs, checking its syntax.
pub fn header_lines(block: &[u8]) -> Vec<(String, String)> {
    let text = std::str::from_utf8(block).expect("headers are ASCII");
    if text.is_empty() {
        return Vec::new();
    }
    assert!(
        text.ends_with("\r\n"),
        "header block does not end with CRLF: {text:?}"
    );
    text[..text.len() - 2]
        .split("\r\n")
        .map(|line| {
            assert!(
                line.bytes().all(|b| (0x20..=0x7e).contains(&b)),
                "non-printable byte or bare CR/LF in header line {line:?}"
            );
            let (name, value) = line.split_once(": ").expect("Name: value");
            assert!(
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
                "bad header name {name:?}"
            );
            (name.to_string(), value.to_string())
        })
        .collect()
}

/// The RFC 8941 sf-string the IETF fields must carry for `name`.
fn sf_string(name: &str) -> String {
    let mut out = String::from("\"");
    for b in name.bytes() {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push('?'),
        }
    }
    out.push('"');
    out
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`, the inverse of what the renderer uses).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Seconds since the epoch of a `YYYY-MM-DDTHH:MM:SSZ` timestamp, validating each field.
fn parse_iso8601(text: &str) -> u64 {
    let (date, time) = text
        .strip_suffix('Z')
        .and_then(|t| t.split_once('T'))
        .expect("ISO 8601 UTC");
    let d: Vec<&str> = date.split('-').collect();
    let t: Vec<&str> = time.split(':').collect();
    assert!(d.len() == 3 && t.len() == 3, "bad timestamp {text:?}");
    assert!(
        d[0].len() >= 4 && [d[1], d[2], t[0], t[1], t[2]].iter().all(|f| f.len() == 2),
        "bad widths {text:?}"
    );
    let n = |s: &str| s.parse::<i64>().expect("digits");
    let (y, mo, da, h, mi, s) = (n(d[0]), n(d[1]), n(d[2]), n(t[0]), n(t[1]), n(t[2]));
    assert!((1..=12).contains(&mo), "month {text:?}");
    // The month's length is the distance to the first of the next month.
    let (next_y, next_mo) = if mo == 12 { (y + 1, 1) } else { (y, mo + 1) };
    let month_days = days_from_civil(next_y, next_mo, 1) - days_from_civil(y, mo, 1);
    assert!(da >= 1 && da <= month_days, "day {text:?}");
    assert!(h < 24 && mi < 60 && s < 60, "time {text:?}");
    let secs = days_from_civil(y, mo, da) * 86_400 + h * 3600 + mi * 60 + s;
    u64::try_from(secs).expect("after 1970")
}

/// Checks a header block against what it must say.
pub fn check_headers(style: HeaderStyle, input: &HeaderInput<'_>, block: &[u8]) {
    let lines = header_lines(block);
    let d = &input.decision;
    let reset = ceil_seconds(input.unix_now_nanos.saturating_add(d.reset_after));
    let mut expected: Vec<(String, String)> = Vec::new();
    let mut push = |name: &str, value: String| expected.push((name.to_string(), value));
    let retry = ceil_seconds(d.retry_after).to_string();
    match style {
        HeaderStyle::EvEnergy => {
            push("x-ratelimit-limit", d.limit.to_string());
            push("x-ratelimit-remaining", d.remaining.to_string());
            if !d.allowed {
                push("retry-after", retry);
            }
        }
        HeaderStyle::Uphold => {
            push("X-RateLimit-Limit", d.limit.to_string());
            push("X-RateLimit-Remaining", d.remaining.to_string());
            push("X-RateLimit-Reset", reset.to_string());
            if !d.allowed {
                push("Retry-After", retry);
            }
        }
        HeaderStyle::Switch => {
            push("X-Rate-Limit-Limit", d.limit.to_string());
            push("X-Rate-Limit-Remaining", d.remaining.to_string());
            let (_, iso) = lines.get(2).cloned().unwrap_or_default();
            assert_eq!(parse_iso8601(&iso), reset, "ISO reset {iso:?}");
            push("X-Rate-Limit-Reset", iso);
            if !d.allowed {
                push("Retry-After", retry);
            }
        }
        HeaderStyle::Ietf => {
            if !input.quotas.is_empty() {
                let policy: Vec<String> = input
                    .quotas
                    .iter()
                    .map(|q| {
                        format!(
                            "{};q={};w={}",
                            sf_string(q.name),
                            q.decision.limit,
                            ceil_seconds(q.period)
                        )
                    })
                    .collect();
                push("RateLimit-Policy", policy.join(", "));
                let state: Vec<String> = input
                    .quotas
                    .iter()
                    .map(|q| {
                        format!(
                            "{};r={};t={}",
                            sf_string(q.name),
                            q.decision.remaining,
                            ceil_seconds(q.decision.reset_after)
                        )
                    })
                    .collect();
                push("RateLimit", state.join(", "));
            }
            if !d.allowed {
                push("Retry-After", retry);
            }
        }
    }
    assert_eq!(lines, expected, "header block says something else");
}

/// A period as the largest whole unit (`1m`, `250ms`, `7ns`).
fn compact(nanos: u64) -> String {
    for (size, suffix) in [
        (86_400_000_000_000, "d"),
        (3_600_000_000_000, "h"),
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
        (1_000, "us"),
    ] {
        if nanos >= size && nanos.is_multiple_of(size) {
            return format!("{}{suffix}", nanos / size);
        }
    }
    format!("{nanos}ns")
}

/// Checks a 429 body against what it must say.
pub fn check_body(style: &BodyStyle<'_>, decision: &Decision, period: u64, body: &[u8]) {
    let text = std::str::from_utf8(body).expect("bodies are UTF-8");
    let retry = ceil_seconds(decision.retry_after);
    match style {
        BodyStyle::ProblemJson {
            type_uri,
            title,
            status,
        } => {
            let json: serde_json::Value = serde_json::from_str(text)
                .unwrap_or_else(|e| panic!("problem+json body is not JSON ({e}): {text:?}"));
            let expected = serde_json::json!({
                "type": type_uri,
                "status": status,
                "title": title,
                "detail": format!("Request was rate limited. Try again in {retry} seconds"),
            });
            assert_eq!(json, expected);
        }
        BodyStyle::PlainText { subject } => {
            let expected = format!(
                "{subject} quota exceeded. Maximum allowed is {} requests per {}. Please try again in {retry} second.",
                decision.limit,
                compact(period)
            );
            assert_eq!(text, expected);
        }
    }
}

/// Runs one input.
pub fn run(case: &RenderCase<'_>) {
    let quotas: Vec<QuotaReport<'_>> = case
        .quotas
        .iter()
        .take(16)
        .map(|q| QuotaReport {
            name: q.name,
            period: q.period.get(),
            decision: q.decision.get(),
        })
        .collect();
    let input = HeaderInput {
        decision: case.decision.get(),
        quotas: &quotas,
        unix_now_nanos: case.unix_now.get(),
    };
    let style = case.style.style();
    let block = protocol(
        |out| render_headers(style, &input, out),
        case.other_len.into(),
    );
    check_headers(style, &input, &block);
    let body = case.body.0;
    let decision = case.decision.get();
    let period = case.period.get();
    let text = protocol(
        |out| render_body(&body, &decision, period, out),
        case.other_len.into(),
    );
    check_body(&body, &decision, period, &text);
}

impl fmt::Debug for RenderCase<'_> {
    /// A reproducer: the two render calls.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let quotas: Vec<String> = self
            .quotas
            .iter()
            .take(16)
            .map(|q| {
                format!(
                    "QuotaReport {{ name: {:?}, period: {}, decision: {:?} }}",
                    q.name,
                    q.period.get(),
                    q.decision.get()
                )
            })
            .collect();
        writeln!(f, "// fuzz/render reproducer")?;
        writeln!(f, "let quotas = [{}];", quotas.join(", "))?;
        writeln!(
            f,
            "let input = HeaderInput {{ decision: {:?}, quotas: &quotas, unix_now_nanos: {} }};",
            self.decision.get(),
            self.unix_now.get()
        )?;
        writeln!(f, "let mut out = vec![0u8; {}];", self.other_len)?;
        writeln!(
            f,
            "let _ = render_headers(HeaderStyle::{:?}, &input, &mut out);",
            self.style
        )?;
        writeln!(
            f,
            "let _ = render_body(&BodyStyle::{:?}, &{:?}, {}, &mut out);",
            self.body.0,
            self.decision.get(),
            self.period.get()
        )
    }
}
