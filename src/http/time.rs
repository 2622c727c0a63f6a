//! Seconds rounding and UTC calendar dates, without `std` or a date crate: the hot
//! rendering path must not allocate, and the calendar arithmetic is a few lines (days from
//! the Unix epoch to a proleptic Gregorian date, Howard Hinnant's `civil_from_days`).

const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// Nanoseconds as whole seconds, rounded **up**: never tell a client to come back early.
#[must_use]
pub const fn ceil_seconds(nanos: u64) -> u64 {
    nanos.div_ceil(NANOS_PER_SECOND)
}

/// A UTC calendar date and time of day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct UtcDateTime {
    pub(crate) year: u64,
    pub(crate) month: u64,
    pub(crate) day: u64,
    pub(crate) hour: u64,
    pub(crate) minute: u64,
    pub(crate) second: u64,
}

/// The UTC date of `seconds` since the Unix epoch (1970-01-01T00:00:00Z).
pub(crate) const fn utc_from_unix_seconds(seconds: u64) -> UtcDateTime {
    let days = seconds / 86_400;
    let rest = seconds % 86_400;
    // civil_from_days, shifted so eras start on 0000-03-01; all values are non-negative
    // because the input is at or after 1970.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + if month <= 2 { 1 } else { 0 };
    UtcDateTime {
        year,
        month,
        day,
        hour: rest / 3_600,
        minute: rest % 3_600 / 60,
        second: rest % 60,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        let d = utc_from_unix_seconds(0);
        assert_eq!((d.year, d.month, d.day, d.hour), (1970, 1, 1, 0));
        // The Uphold seed's example: Mon Jan 26 2015 16:30:11 GMT.
        let d = utc_from_unix_seconds(1_422_289_811 - 1_600);
        assert_eq!((d.year, d.month, d.day), (2015, 1, 26));
        let d = utc_from_unix_seconds(951_782_400); // 2000-02-29
        assert_eq!((d.year, d.month, d.day), (2000, 2, 29));
        let d = utc_from_unix_seconds(4_102_444_799); // 2099-12-31T23:59:59
        assert_eq!(
            (d.year, d.month, d.day, d.hour, d.minute, d.second),
            (2099, 12, 31, 23, 59, 59)
        );
    }

    #[test]
    fn rounding_up() {
        let cases = [
            (0, 0),
            (1, 1),
            (1_000_000_000, 1),
            (1_000_000_001, 2),
            (u64::MAX, 18_446_744_074),
        ];
        for (nanos, seconds) in cases {
            assert_eq!(ceil_seconds(nanos), seconds, "ceil_seconds({nanos})");
        }
    }
}
