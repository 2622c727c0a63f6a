//! nginx's syntax for directive values, read as nginx's own directives read it, so a
//! ratecore directive accepts what an nginx user expects: sizes (`64k`, `10m`, `1g`),
//! times (`500ms`, `10s`, `1h30m`; a bare number is seconds), whole numbers and names.
//!
//! The policy TOML loader's durations (`10min`, `250ms`, `5ns`) are another syntax on
//! purpose: there a unit is always written and nanoseconds exist; in nginx times a bare
//! number is seconds and units combine in descending order.

/// nginx keeps times and sizes in signed machine words: nothing above this is accepted.
const NGX_MAX: u64 = i64::MAX.unsigned_abs();

/// `key=value`: the value when `arg` starts with `key` (which ends in `=`).
pub(crate) fn param<'a>(arg: &'a [u8], key: &str) -> Option<&'a [u8]> {
    arg.strip_prefix(key.as_bytes())
}

/// A decimal whole number without sign, 0 to `u64::MAX`.
pub(crate) fn whole(text: &[u8]) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    text.iter().try_fold(0u64, |value, &c| {
        let digit = c.checked_sub(b'0').filter(|d| *d <= 9)?;
        value.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// An HTTP status for a denial: 400 to 599.
pub(crate) fn status(text: &[u8]) -> Option<u32> {
    whole(text)
        .filter(|s| (400..=599).contains(s))
        .and_then(|s| u32::try_from(s).ok())
}

/// The value `names` gives `text`, compared exactly.
pub(crate) fn name<T: Copy>(names: &[(&str, T)], text: &[u8]) -> Option<T> {
    names
        .iter()
        .find(|(n, _)| n.as_bytes() == text)
        .map(|(_, v)| *v)
}

/// An nginx size above 0: a number of bytes, or of kilobytes, megabytes or gigabytes
/// with a `k`, `m` or `g` suffix (either case).
pub(crate) fn size(text: &[u8]) -> Option<usize> {
    let (digits, scale) = match text.split_last() {
        Some((b'k' | b'K', rest)) => (rest, 1u64 << 10),
        Some((b'm' | b'M', rest)) => (rest, 1 << 20),
        Some((b'g' | b'G', rest)) => (rest, 1 << 30),
        _ => (text, 1),
    };
    let bytes = whole(digits)
        .filter(|n| *n <= NGX_MAX / scale)?
        .checked_mul(scale)?;
    usize::try_from(bytes).ok().filter(|n| *n > 0)
}

/// An nginx time above 0, in nanoseconds: numbers with units in descending order, each
/// unit at most once (`w`, `d`, `h`, `m`, `s`, `ms`; spaces may follow a unit), a last
/// number without unit counting seconds. Years and months are refused, as nginx refuses
/// them for times kept in milliseconds.
pub(crate) fn time_ns(text: &[u8]) -> Option<u64> {
    // Ranks of the units: each must rank above the one before it. A number ended by a
    // space counts seconds and ranks above every unit.
    const SPACE: u8 = 7;
    let mut rank = 0u8;
    let mut total_ms = 0u64;
    let mut value = 0u64;
    let mut any_digit = false;
    let mut i = 0;
    while let Some(&c) = text.get(i) {
        i += 1;
        if let Some(digit) = c.checked_sub(b'0').filter(|d| *d <= 9) {
            value = value
                .checked_mul(10)?
                .checked_add(u64::from(digit))
                .filter(|v| *v <= NGX_MAX)?;
            any_digit = true;
            continue;
        }
        let (unit_rank, unit_ms) = match c {
            b'w' => (1, 7 * 86_400_000),
            b'd' => (2, 86_400_000),
            b'h' => (3, 3_600_000),
            b'm' if text.get(i) == Some(&b's') => {
                i += 1;
                (6, 1)
            }
            b'm' => (4, 60_000),
            b's' => (5, 1000),
            b' ' if rank < 5 => (SPACE, 1000),
            _ => return None,
        };
        if unit_rank <= rank {
            return None;
        }
        rank = unit_rank;
        let ms = value.checked_mul(unit_ms).filter(|v| *v <= NGX_MAX)?;
        total_ms = total_ms.checked_add(ms).filter(|v| *v <= NGX_MAX)?;
        value = 0;
        while text.get(i) == Some(&b' ') {
            i += 1;
        }
    }
    if !any_digit {
        return None;
    }
    let last_ms = value.checked_mul(1000).filter(|v| *v <= NGX_MAX)?;
    let ms = total_ms.checked_add(last_ms).filter(|v| *v <= NGX_MAX)?;
    ms.checked_mul(1_000_000).filter(|ns| *ns > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: u64 = 1_000_000;
    const S: u64 = 1000 * MS;

    #[test]
    fn times_as_nginx_reads_them() {
        for (text, ns) in [
            ("500ms", 500 * MS),
            ("10s", 10 * S),
            ("10", 10 * S),
            ("5m", 300 * S),
            ("1h", 3600 * S),
            ("1d", 86_400 * S),
            ("2w", 14 * 86_400 * S),
            ("1h30m", 5400 * S),
            ("1h 30m", 5400 * S),
            ("1m30", 90 * S),
            ("1s500ms", 1500 * MS),
            ("10 ", 10 * S),
        ] {
            assert_eq!(time_ns(text.as_bytes()), Some(ns), "{text}");
        }
        for text in [
            "",
            "0",
            "0s",
            "5x",
            "s",
            "ms",
            "1y",
            "1M",
            "1m1h",
            "1s1s",
            "1ms1s",
            "-1s",
            "1.5s",
            " 1s",
            "9223372036854775808",
            "9223372036854775807",
        ] {
            assert_eq!(time_ns(text.as_bytes()), None, "{text:?}");
        }
        // the most nginx holds in milliseconds, which also fits u64 nanoseconds
        assert_eq!(time_ns(b"18446744073709ms"), Some(18_446_744_073_709 * MS));
        assert_eq!(time_ns(b"18446744073710ms"), None);
    }

    #[test]
    fn sizes_numbers_statuses_and_names() {
        assert_eq!(size(b"64k"), Some(65536));
        assert_eq!(size(b"10M"), Some(10 << 20));
        assert_eq!(size(b"1g"), Some(1 << 30));
        assert_eq!(size(b"4096"), Some(4096));
        for text in [
            "",
            "k",
            "0",
            "0k",
            "lots",
            "-1",
            "1t",
            "9223372036854775807k",
        ] {
            assert_eq!(size(text.as_bytes()), None, "{text:?}");
        }
        assert_eq!(whole(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(whole(b"18446744073709551616"), None);
        assert_eq!(whole(b""), None);
        assert_eq!(whole(b"+1"), None);
        assert_eq!(status(b"429"), Some(429));
        assert_eq!(status(b"200"), None);
        assert_eq!(status(b"600"), None);
        assert_eq!(name(&[("on", 1), ("off", 0)], b"off"), Some(0));
        assert_eq!(name(&[("on", 1)], b"On"), None);
        assert_eq!(param(b"size=10m", "size="), Some(&b"10m"[..]));
        assert_eq!(param(b"sizes=10m", "size="), None);
    }

    proptest! {
        #[test]
        fn whole_numbers_round_trip(n in any::<u64>()) {
            prop_assert_eq!(whole(n.to_string().as_bytes()), Some(n));
        }

        #[test]
        fn composed_times_add_up(h in 0u64..1000, m in 0u64..60, s in 0u64..60, ms in 0u64..1000) {
            let text = format!("{h}h{m}m{s}s{ms}ms");
            let want = ((h * 3600 + m * 60 + s) * 1000 + ms) * MS;
            prop_assert_eq!(time_ns(text.as_bytes()), (want > 0).then_some(want));
        }

        #[test]
        fn no_input_panics(bytes in proptest::collection::vec(any::<u8>(), 0..24)) {
            let _ = (time_ns(&bytes), size(&bytes), whole(&bytes), status(&bytes));
        }
    }
}
