//! DATE values (docs/sql.md, "Types"): days since 1970-01-01 in the proleptic Gregorian
//! calendar, as an `i32` (which covers every date a TIMESTAMP can reach). This module owns the
//! text form `YYYY-MM-DD` and the conversions to and from TIMESTAMP, where a date is midnight
//! UTC of its day. The calendar arithmetic itself is shared with `timestamp.rs`.
//!
//! It does not own coercion rules (`coerce.rs`) or comparison (`value.rs`).

use crate::timestamp::{
    civil_from_days, days_from_civil, days_in_month, MICROS_PER_SECOND, SECONDS_PER_DAY,
};

const MICROS_PER_DAY: i64 = MICROS_PER_SECOND * SECONDS_PER_DAY;

/// Parses `YYYY-MM-DD` (years 0000 to 9999, a real day of the month) into days since
/// 1970-01-01; `None` for anything else (a time of day included: CAST a TIMESTAMP for that).
pub fn parse_date(text: &str) -> Option<i32> {
    let bytes = text.trim().as_bytes();
    let [y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1] = *bytes else {
        return None;
    };
    let number = |digits: &[u8]| {
        digits.iter().try_fold(0i64, |acc, b| {
            b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0'))
        })
    };
    let (year, month, day) = (
        number(&[y0, y1, y2, y3])?,
        number(&[m0, m1])?,
        number(&[d0, d1])?,
    );
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    i32::try_from(days_from_civil(year, month, day)).ok()
}

/// `YYYY-MM-DD`; years outside 0000..9999 (only from damaged data) get a sign, as TIMESTAMP's.
pub fn render_date(days: i32) -> String {
    let (year, month, day) = civil_from_days(i64::from(days));
    if (0..=9999).contains(&year) {
        format!("{year:04}-{month:02}-{day:02}")
    } else {
        format!("{year:+05}-{month:02}-{day:02}")
    }
}

/// Midnight UTC of the day, in microseconds since the epoch; `None` past TIMESTAMP's range.
pub fn date_to_micros(days: i32) -> Option<i64> {
    i64::from(days).checked_mul(MICROS_PER_DAY)
}

/// The day a timestamp falls on (UTC): times before midnight belong to the previous day.
pub fn micros_to_date(micros: i64) -> i32 {
    // |i64::MAX / MICROS_PER_DAY| is about 1.07e8, well inside i32.
    micros.div_euclid(MICROS_PER_DAY) as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_dates() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2024-02-29"), Some(19_782));
        assert_eq!(parse_date("1969-12-31"), Some(-1));
        assert_eq!(render_date(19_782), "2024-02-29");
        assert_eq!(render_date(-719_528), "0000-01-01");
        assert_eq!(date_to_micros(1), Some(86_400_000_000));
        assert_eq!(micros_to_date(-1), -1);
        assert_eq!(micros_to_date(86_400_000_000), 1);
        assert!(render_date(i32::MIN).starts_with('-'));
    }

    #[test]
    fn malformed_dates_are_refused() {
        for text in [
            "2023-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-1-01",
            "24-01-01",
            "2024-01-01T00:00:00Z",
            "2024/01/01",
            "",
            "yesterday",
        ] {
            assert_eq!(parse_date(text), None, "{text}");
        }
    }

    proptest! {
        #[test]
        fn render_then_parse_round_trips(days in -719_528i32..2_932_897) {
            prop_assert_eq!(parse_date(&render_date(days)), Some(days));
            let micros = date_to_micros(days).unwrap();
            prop_assert_eq!(micros_to_date(micros), days);
            prop_assert_eq!(micros_to_date(micros + 86_399_999_999), days);
        }
    }
}
