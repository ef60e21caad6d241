//! TIMESTAMP text: RFC 3339 parsing into microseconds since the Unix epoch (UTC) and
//! rendering back. Pure functions over proleptic Gregorian dates; no clock, no time zone
//! database (offsets in the text are applied, output is always UTC with `Z`).

pub(crate) const MICROS_PER_SECOND: i64 = 1_000_000;
pub(crate) const SECONDS_PER_DAY: i64 = 86_400;

/// Parses `YYYY-MM-DD[(T|t| )HH:MM:SS[.fraction][Z|z|+HH:MM|-HH:MM]]` (years 0000 to 9999).
/// A date alone is midnight UTC; a time without an offset is UTC. Digits of the fraction past microseconds are dropped.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let year = digits(bytes, 0, 4)?;
    let month = digits_after(bytes, 4, b'-', 2)?;
    let day = digits_after(bytes, 7, b'-', 2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    if bytes.len() == 10 {
        return Some(days * SECONDS_PER_DAY * MICROS_PER_SECOND);
    }
    if !matches!(bytes.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let hour = digits(bytes, 11, 2)?;
    let minute = digits_after(bytes, 13, b':', 2)?;
    let second = digits_after(bytes, 16, b':', 2)?;
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let (micros, rest) = fraction(&bytes[19..])?;
    let offset_seconds = offset(rest)?;
    let seconds = days * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second - offset_seconds;
    Some(seconds * MICROS_PER_SECOND + micros)
}

/// Renders as RFC 3339 in UTC: `2024-05-01T12:00:00Z`, with `.mmm` or `.uuuuuu` when the
/// value has a fraction. Values outside years 0000..9999 get a signed, longer year (ISO 8601
/// expanded form); nothing panics for any `i64`.
pub fn render_rfc3339(micros: i64) -> String {
    let seconds = micros.div_euclid(MICROS_PER_SECOND);
    let fraction = micros.rem_euclid(MICROS_PER_SECOND);
    let fraction_text = match fraction {
        0 => String::new(),
        f if f % 1000 == 0 => format!(".{:03}", f / 1000),
        f => format!(".{f:06}"),
    };
    format!("{}{fraction_text}Z", render_seconds(seconds))
}

/// Renders whole Unix seconds as RFC 3339 in UTC, `2026-11-26T04:22:09Z`: the form of
/// [`render_rfc3339`] for a value without a fraction, for callers that count in seconds
/// (a token's expiry) and may go past the microsecond range. Years outside 0000..9999 get a
/// signed, longer year, as there; nothing panics for any `i64`.
pub fn render_rfc3339_seconds(unix_s: i64) -> String {
    format!("{}Z", render_seconds(unix_s))
}

/// `YYYY-MM-DDTHH:MM:SS` of a second since the epoch, without the zone.
fn render_seconds(seconds: i64) -> String {
    let days = seconds.div_euclid(SECONDS_PER_DAY);
    let second_of_day = seconds.rem_euclid(SECONDS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let year_text = if (0..=9999).contains(&year) {
        format!("{year:04}")
    } else {
        format!("{year:+05}")
    };
    format!(
        "{year_text}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

fn digits(bytes: &[u8], start: usize, count: usize) -> Option<i64> {
    let slice = bytes.get(start..start + count)?;
    slice.iter().try_fold(0i64, |acc, b| {
        b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0'))
    })
}

fn digits_after(bytes: &[u8], separator_at: usize, separator: u8, count: usize) -> Option<i64> {
    (bytes.get(separator_at) == Some(&separator))
        .then(|| digits(bytes, separator_at + 1, count))
        .flatten()
}

/// An optional `.digits` fraction: microseconds and the rest of the text.
fn fraction(bytes: &[u8]) -> Option<(i64, &[u8])> {
    if bytes.first() != Some(&b'.') {
        return Some((0, bytes));
    }
    let count = bytes[1..].iter().take_while(|b| b.is_ascii_digit()).count();
    if count == 0 {
        return None;
    }
    let mut micros = 0i64;
    for position in 0..6 {
        let digit = bytes.get(1 + position).filter(|_| position < count);
        micros = micros * 10 + digit.map_or(0, |b| i64::from(b - b'0'));
    }
    Some((micros, &bytes[1 + count..]))
}

/// `Z`, `z` or `±HH:MM`, and nothing after it: the offset east of UTC in seconds.
fn offset(bytes: &[u8]) -> Option<i64> {
    match bytes {
        // Without an offset (`2024-05-01 12:00:00`, as SQL writes it): UTC.
        [] | [b'Z' | b'z'] => Some(0),
        [sign @ (b'+' | b'-'), ..] if bytes.len() == 6 => {
            let hours = digits(bytes, 1, 2)?;
            let minutes = digits_after(bytes, 3, b':', 2)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let seconds = hours * 3600 + minutes * 60;
            Some(if *sign == b'-' { -seconds } else { seconds })
        }
        _ => None,
    }
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

pub(crate) fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_index = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day number (inverse of [`days_from_civil`]); fine for every day an `i64` of
/// seconds can reach.
pub(crate) fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_instants() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("1970-01-01"), Some(0));
        assert_eq!(
            parse_rfc3339("2000-03-01T00:00:00Z"),
            Some(951_868_800_000_000)
        );
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59.5Z"), Some(-500_000));
        assert_eq!(parse_rfc3339("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_rfc3339("1970-01-01 00:00:00.1234567z"), Some(123_456));
        assert_eq!(render_rfc3339(951_868_800_000_000), "2000-03-01T00:00:00Z");
        assert_eq!(render_rfc3339(-500_000), "1969-12-31T23:59:59.500Z");
        assert_eq!(render_rfc3339(1), "1970-01-01T00:00:00.000001Z");
    }

    #[test]
    fn malformed_text_is_refused() {
        for text in [
            "",
            "2024-02-30",
            "2023-02-29T00:00:00Z",
            "2024-13-01",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00+1:00",
            "2024-01-01T00:00:00Zjunk",
            "२०२४-01-01",
        ] {
            assert_eq!(parse_rfc3339(text), None, "{text}");
        }
        assert!(parse_rfc3339("2024-02-29T00:00:00Z").is_some());
        // SQL's form, without an offset, is UTC.
        let utc = parse_rfc3339("2024-01-01T00:00:01Z");
        assert_eq!(parse_rfc3339("2024-01-01 00:00:01"), utc);
        assert_eq!(parse_rfc3339("2024-01-01T00:00:01"), utc);
        assert_eq!(
            parse_rfc3339("2024-01-01 00:00:01.250"),
            utc.map(|t| t + 250_000)
        );
    }

    #[test]
    fn extreme_values_render_without_panic() {
        assert!(render_rfc3339(i64::MIN).starts_with('-'));
        assert!(render_rfc3339(i64::MAX).starts_with('+'));
        assert!(render_rfc3339_seconds(i64::MIN).starts_with('-'));
        assert!(render_rfc3339_seconds(i64::MAX).starts_with('+'));
    }

    #[test]
    fn whole_seconds_render_like_microseconds() {
        assert_eq!(render_rfc3339_seconds(0), "1970-01-01T00:00:00Z");
        assert_eq!(render_rfc3339_seconds(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(render_rfc3339_seconds(-1), "1969-12-31T23:59:59Z");
        assert_eq!(
            render_rfc3339_seconds(253_402_300_800),
            "+10000-01-01T00:00:00Z"
        );
    }

    proptest! {
        #[test]
        fn render_then_parse_round_trips(
            micros in -62_167_219_200_000_000i64..253_402_300_800_000_000,
        ) {
            prop_assert_eq!(parse_rfc3339(&render_rfc3339(micros)), Some(micros));
        }

        /// Days to a civil date and back, over about 2.7 million years either side of the
        /// epoch (leap centuries included): every day maps to a valid date, and that date
        /// back to the same day.
        #[test]
        fn days_and_civil_dates_round_trip(days in -1_000_000_000i64..1_000_000_000) {
            let (year, month, day) = civil_from_days(days);
            prop_assert!((1..=12).contains(&month), "month {}", month);
            prop_assert!(day >= 1 && day <= days_in_month(year, month), "day {}", day);
            prop_assert_eq!(days_from_civil(year, month, day), days);
            // The next day is the next date.
            let (next_year, next_month, next_day) = civil_from_days(days + 1);
            let expected = if day < days_in_month(year, month) {
                (year, month, day + 1)
            } else if month < 12 {
                (year, month + 1, 1)
            } else {
                (year + 1, 1, 1)
            };
            prop_assert_eq!((next_year, next_month, next_day), expected);
        }

        #[test]
        fn whole_seconds_render_as_their_microseconds(
            seconds in -62_167_219_200i64..253_402_300_800,
        ) {
            prop_assert_eq!(
                render_rfc3339_seconds(seconds),
                render_rfc3339(seconds * MICROS_PER_SECOND)
            );
        }
    }
}
