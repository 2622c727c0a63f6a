//! Properties of header rendering: every style parses back to the decision's values, and
//! Retry-After / resets are never earlier than the truth.

use proptest::prelude::*;
use ratecore::http::{
    render_header_values, render_headers, BufferTooSmall, HeaderInput, HeaderStyle, HeaderValue,
    QuotaReport, MAX_HEADER_VALUES,
};
use ratecore::Decision;

const SECOND: u64 = 1_000_000_000;

fn parse(block: &str) -> Vec<(String, String)> {
    assert!(block.is_empty() || block.ends_with("\r\n"), "{block:?}");
    block
        .split_terminator("\r\n")
        .map(|line| {
            let (name, value) = line.split_once(": ").expect("Name: value");
            (name.to_string(), value.to_string())
        })
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Days since 1970-01-01 of a civil date (inverse of the renderer's conversion, written
/// independently: count whole years, then months).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let leap = |y: u64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let mut days = 0;
    for y in 1970..year {
        days += if leap(y) { 366 } else { 365 };
    }
    // Month lengths of a common year; a leap year's February has one day more.
    let lengths: [u64; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    days += lengths[..(month - 1) as usize].iter().sum::<u64>();
    if month > 2 && leap(year) {
        days += 1;
    }
    days + day - 1
}

fn parse_iso8601(text: &str) -> u64 {
    // YYYY-MM-DDTHH:MM:SSZ
    assert_eq!(text.len(), 20, "{text}");
    assert!(text.ends_with('Z'));
    let n = |range: std::ops::Range<usize>| text[range].parse::<u64>().unwrap();
    let days = days_from_civil(n(0..4), n(5..7), n(8..10));
    days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)
}

fn decisions() -> impl Strategy<Value = Decision> {
    (
        any::<bool>(),
        0u64..=1_000_000,
        0u64..=1_000_000,
        prop_oneof![
            0u64..=10 * SECOND,
            0u64..=400 * 86_400 * SECOND,
            Just(u64::MAX)
        ],
        prop_oneof![
            1u64..=10 * SECOND,
            1u64..=400 * 86_400 * SECOND,
            Just(u64::MAX)
        ],
    )
        .prop_map(|(allowed, limit, remaining, reset_after, retry)| Decision {
            allowed,
            limit,
            remaining: remaining.min(limit),
            reset_after,
            retry_after: if allowed { 0 } else { retry },
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn every_style_parses_back(
        decision in decisions(),
        // Wall clock: 1970 to 2100.
        wall in 0u64..=4_102_444_800 * SECOND,
        style in prop_oneof![
            Just(HeaderStyle::EvEnergy),
            Just(HeaderStyle::Uphold),
            Just(HeaderStyle::Switch),
            Just(HeaderStyle::Ietf),
        ],
    ) {
        let quotas = [QuotaReport { name: "q", period: 60 * SECOND, decision }];
        let input = HeaderInput { decision, quotas: &quotas, unix_now_nanos: wall };
        let mut buffer = [0u8; 512];
        let n = render_headers(style, &input, &mut buffer).unwrap();
        let fields = parse(std::str::from_utf8(&buffer[..n]).unwrap());
        let retry_name = match style {
            HeaderStyle::EvEnergy => "retry-after",
            _ => "Retry-After",
        };
        // Retry-After: present exactly on denial, whole seconds, never early, at most
        // one second late.
        match field(&fields, retry_name) {
            Some(value) => {
                prop_assert!(!decision.allowed);
                let seconds: u128 = value.parse().unwrap();
                prop_assert!(seconds * u128::from(SECOND) >= u128::from(decision.retry_after));
                prop_assert!(seconds * u128::from(SECOND) < u128::from(decision.retry_after) + u128::from(SECOND));
            }
            None => prop_assert!(decision.allowed),
        }
        let reset_truth = u128::from(wall) + u128::from(decision.reset_after);
        match style {
            HeaderStyle::EvEnergy => {
                prop_assert_eq!(field(&fields, "x-ratelimit-limit").map(String::from), Some(decision.limit.to_string()));
                prop_assert_eq!(field(&fields, "x-ratelimit-remaining").map(String::from), Some(decision.remaining.to_string()));
            }
            HeaderStyle::Uphold => {
                prop_assert_eq!(field(&fields, "X-RateLimit-Limit").map(String::from), Some(decision.limit.to_string()));
                prop_assert_eq!(field(&fields, "X-RateLimit-Remaining").map(String::from), Some(decision.remaining.to_string()));
                let reset: u128 = field(&fields, "X-RateLimit-Reset").unwrap().parse().unwrap();
                // Saturating wall + reset is what a u64 clock can express.
                let truth = reset_truth.min(u128::from(u64::MAX));
                prop_assert!(reset * u128::from(SECOND) >= truth);
                prop_assert!(reset * u128::from(SECOND) < truth + u128::from(SECOND));
            }
            HeaderStyle::Switch => {
                prop_assert_eq!(field(&fields, "X-Rate-Limit-Limit").map(String::from), Some(decision.limit.to_string()));
                prop_assert_eq!(field(&fields, "X-Rate-Limit-Remaining").map(String::from), Some(decision.remaining.to_string()));
                let text = field(&fields, "X-Rate-Limit-Reset").unwrap();
                let truth = reset_truth.min(u128::from(u64::MAX));
                let reset = u128::from(parse_iso8601(text));
                prop_assert!(reset * u128::from(SECOND) >= truth);
                prop_assert!(reset * u128::from(SECOND) < truth + u128::from(SECOND));
            }
            HeaderStyle::Ietf => {
                prop_assert_eq!(field(&fields, "RateLimit-Policy").map(String::from), Some(format!("\"q\";q={};w=60", decision.limit)));
                let expected_t = decision.reset_after.div_ceil(SECOND);
                let expected = format!("\"q\";r={};t={}", decision.remaining, expected_t);
                prop_assert_eq!(field(&fields, "RateLimit").map(String::from), Some(expected));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    /// The values `render_header_values` describes are the lines `render_headers` writes:
    /// the same names, in the same order, with the same bytes.
    #[test]
    fn header_values_are_the_lines_values(
        decision in decisions(),
        wall in 0u64..=4_102_444_800 * SECOND,
        reports in 0usize..=3,
        style in prop_oneof![
            Just(HeaderStyle::EvEnergy),
            Just(HeaderStyle::Uphold),
            Just(HeaderStyle::Switch),
            Just(HeaderStyle::Ietf),
        ],
    ) {
        let quotas = [
            QuotaReport { name: "a", period: 60 * SECOND, decision },
            QuotaReport { name: "b/\"2\"", period: 3_600 * SECOND, decision },
            QuotaReport { name: "c", period: 1, decision },
        ];
        let input = HeaderInput { decision, quotas: &quotas[..reports], unix_now_nanos: wall };
        let mut lines = [0u8; 512];
        let n = render_headers(style, &input, &mut lines).unwrap();
        let fields = parse(std::str::from_utf8(&lines[..n]).unwrap());
        let mut buffer = [0u8; 512];
        let mut values = [HeaderValue::default(); MAX_HEADER_VALUES];
        let count = render_header_values(style, &input, &mut buffer, &mut values).unwrap();
        let described: Vec<(String, String)> = values[..count]
            .iter()
            .map(|v| {
                let value = &buffer[v.start..v.start + v.len];
                (v.name.to_string(), String::from_utf8(value.to_vec()).unwrap())
            })
            .collect();
        prop_assert_eq!(described, fields);
        // Too small a buffer reports the length the values need.
        let used = values[..count].iter().map(|v| v.len).sum::<usize>();
        if used > 0 {
            let mut short = vec![0u8; used - 1];
            prop_assert_eq!(
                render_header_values(style, &input, &mut short, &mut values),
                Err(BufferTooSmall { needed: used })
            );
        }
    }
}
