//! Header and body rendering, byte for byte against the seed documents' examples.

use ratecore::http::{
    render_body, render_headers, BodyStyle, BufferTooSmall, HeaderInput, HeaderStyle, QuotaReport,
};
use ratecore::Decision;

const SECOND: u64 = 1_000_000_000;

fn decision(allowed: bool, limit: u64, remaining: u64, reset: u64, retry: u64) -> Decision {
    Decision {
        allowed,
        limit,
        remaining,
        reset_after: reset,
        retry_after: retry,
    }
}

/// What to render for `decision` at `now`, with no quota list.
fn without_quotas(decision: Decision, now: u64) -> HeaderInput<'static> {
    HeaderInput {
        decision,
        quotas: &[],
        unix_now_nanos: now,
    }
}

fn headers(style: HeaderStyle, input: &HeaderInput<'_>) -> String {
    let mut buffer = [0u8; 512];
    let n = render_headers(style, input, &mut buffer).unwrap();
    String::from_utf8(buffer[..n].to_vec()).unwrap()
}

/// The 429 body `style` renders for `denied` with the limit's `period`.
fn body(style: &BodyStyle<'_>, denied: &Decision, period: u64) -> String {
    let mut buffer = [0u8; 512];
    let n = render_body(style, denied, period, &mut buffer).unwrap();
    String::from_utf8(buffer[..n].to_vec()).unwrap()
}

#[test]
fn evenergy_headers_match_the_seed() {
    let ok = without_quotas(decision(true, 1000, 420, 3600 * SECOND, 0), 0);
    assert_eq!(
        headers(HeaderStyle::EvEnergy, &ok),
        "x-ratelimit-limit: 1000\r\nx-ratelimit-remaining: 420\r\n"
    );
    // 41.2 s rounds up to 42: never tell a client to come back early.
    let denied = without_quotas(
        decision(false, 1000, 0, 41 * SECOND + 200, 41 * SECOND + 200),
        0,
    );
    assert_eq!(
        headers(HeaderStyle::EvEnergy, &denied),
        "x-ratelimit-limit: 1000\r\nx-ratelimit-remaining: 0\r\nretry-after: 42\r\n"
    );
}

#[test]
fn uphold_headers_match_the_seed() {
    // The window ends at 1422288284 (epoch seconds); 85 s from "now".
    let now = (1_422_288_284 - 85) * SECOND;
    let ok = without_quotas(decision(true, 300, 299, 85 * SECOND, 0), now);
    assert_eq!(
        headers(HeaderStyle::Uphold, &ok),
        "X-RateLimit-Limit: 300\r\nX-RateLimit-Remaining: 299\r\nX-RateLimit-Reset: 1422288284\r\n"
    );
    let denied = without_quotas(decision(false, 300, 0, 85 * SECOND, 85 * SECOND), now);
    assert_eq!(
        headers(HeaderStyle::Uphold, &denied),
        "X-RateLimit-Limit: 300\r\nX-RateLimit-Remaining: 0\r\nX-RateLimit-Reset: 1422288284\r\nRetry-After: 85\r\n"
    );
}

#[test]
fn switch_headers_and_body_match_the_seed() {
    // 2026-11-24T12:00:19Z; the minute window resets at 12:01:00.
    let now = 1_795_521_619 * SECOND;
    let denied = without_quotas(decision(false, 20, 0, 41 * SECOND, 41 * SECOND), now);
    assert_eq!(
        headers(HeaderStyle::Switch, &denied),
        "X-Rate-Limit-Limit: 20\r\nX-Rate-Limit-Remaining: 0\r\nX-Rate-Limit-Reset: 2026-11-24T12:01:00Z\r\nRetry-After: 41\r\n"
    );
    let style = BodyStyle::PlainText {
        subject: "Save readings API interface",
    };
    assert_eq!(
        body(&style, &denied.decision, 60 * SECOND),
        "Save readings API interface quota exceeded. Maximum allowed is 20 requests per 1m. Please try again in 41 second."
    );
    assert_eq!(style.content_type(), "text/plain; charset=utf-8");
}

#[test]
fn evenergy_problem_json_body() {
    let denied = decision(false, 1000, 0, 42 * SECOND, 42 * SECOND);
    let style = BodyStyle::ProblemJson {
        type_uri: "https://api.ev.energy/v2/problems/rate-limit-exceeded/",
        title: "Too many requests",
        status: 429,
    };
    assert_eq!(
        body(&style, &denied, 3600 * SECOND),
        "{\n    \"type\": \"https://api.ev.energy/v2/problems/rate-limit-exceeded/\",\n    \"status\": 429,\n    \"title\": \"Too many requests\",\n    \"detail\": \"Request was rate limited. Try again in 42 seconds\"\n}\n"
    );
    assert_eq!(style.content_type(), "application/problem+json");
}

#[test]
fn ietf_lists_every_quota() {
    let per_second = decision(false, 5, 0, SECOND, 500_000_000);
    let per_minute = decision(true, 20, 14, 60 * SECOND, 0);
    let quotas = [
        QuotaReport {
            name: "burst",
            period: SECOND,
            decision: per_second,
        },
        QuotaReport {
            name: "per\"minute",
            period: 60 * SECOND,
            decision: per_minute,
        },
    ];
    let input = HeaderInput {
        decision: per_second,
        quotas: &quotas,
        unix_now_nanos: 0,
    };
    assert_eq!(
        headers(HeaderStyle::Ietf, &input),
        "RateLimit-Policy: \"burst\";q=5;w=1, \"per\\\"minute\";q=20;w=60\r\nRateLimit: \"burst\";r=0;t=1, \"per\\\"minute\";r=14;t=60\r\nRetry-After: 1\r\n"
    );
}

#[test]
fn too_small_buffers_report_the_exact_length() {
    let input = without_quotas(
        decision(false, 300, 0, 85 * SECOND, 85 * SECOND),
        1_422_288_199 * SECOND,
    );
    let full = headers(HeaderStyle::Uphold, &input);
    for size in [0, 1, full.len() - 1] {
        let mut small = vec![0u8; size];
        assert_eq!(
            render_headers(HeaderStyle::Uphold, &input, &mut small),
            Err(BufferTooSmall { needed: full.len() })
        );
    }
    let mut exact = vec![0u8; full.len()];
    assert_eq!(
        render_headers(HeaderStyle::Uphold, &input, &mut exact),
        Ok(full.len())
    );
}
