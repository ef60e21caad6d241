//! `INTERVAL '...'` literals: a fixed length of time, in microseconds. Accepted forms:
//! `INTERVAL '1 hour'`, `INTERVAL '1 day 2 hours 30 minutes'`, `INTERVAL '90' SECOND`. Units:
//! microseconds, milliseconds, seconds, minutes, hours, days, weeks (singular, plural or
//! abbreviated). Months and years have no fixed length and are `unsupported`.

use sqlparser::ast::{DateTimeField, Expr as SqlExpr, Interval, Value as SqlValue};

use super::expr::leftmost_position;
use crate::ast::{Expr, ExprKind, Literal};
use crate::error::{code, Position, Result, SqlError};

const MICROS_PER_SECOND: i64 = 1_000_000;

/// The interval as a literal of its length in microseconds.
pub(super) fn interval(sql: &SqlExpr, interval: &Interval) -> Result<Expr> {
    let position = leftmost_position(sql);
    let text = match interval.value.as_ref() {
        SqlExpr::Value(value) => match &value.value {
            SqlValue::SingleQuotedString(text) => text.clone(),
            SqlValue::Number(text, _) => text.clone(),
            _ => return Err(SqlError::unsupported("this INTERVAL value", position)),
        },
        _ => {
            return Err(SqlError::unsupported(
                "an INTERVAL that is not a literal",
                position,
            ))
        }
    };
    if interval.last_field.is_some() || interval.fractional_seconds_precision.is_some() {
        return Err(SqlError::unsupported("INTERVAL ... TO ...", position));
    }
    let micros = match &interval.leading_field {
        Some(field) => {
            let unit = field_unit(field, position)?;
            scaled(text.trim(), unit, position)?
        }
        None => parse_length(&text, position)?,
    };
    Ok(Expr {
        kind: ExprKind::Literal(Literal::Interval { micros, text }),
        position,
    })
}

fn field_unit(field: &DateTimeField, position: Option<Position>) -> Result<i64> {
    Ok(match field {
        DateTimeField::Microsecond | DateTimeField::Microseconds => 1,
        DateTimeField::Millisecond | DateTimeField::Milliseconds => 1_000,
        DateTimeField::Second | DateTimeField::Seconds => MICROS_PER_SECOND,
        DateTimeField::Minute | DateTimeField::Minutes => 60 * MICROS_PER_SECOND,
        DateTimeField::Hour | DateTimeField::Hours => 3_600 * MICROS_PER_SECOND,
        DateTimeField::Day | DateTimeField::Days => 86_400 * MICROS_PER_SECOND,
        DateTimeField::Week(_) | DateTimeField::Weeks => 7 * 86_400 * MICROS_PER_SECOND,
        other => {
            let what = format!("INTERVAL in {other} (months and years have no fixed length)");
            return Err(SqlError::unsupported(what, position));
        }
    })
}

fn unit_of(name: &str) -> Option<i64> {
    Some(match name.to_ascii_lowercase().as_str() {
        "us" | "microsecond" | "microseconds" => 1,
        "ms" | "millisecond" | "milliseconds" => 1_000,
        "s" | "sec" | "secs" | "second" | "seconds" => MICROS_PER_SECOND,
        "m" | "min" | "mins" | "minute" | "minutes" => 60 * MICROS_PER_SECOND,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600 * MICROS_PER_SECOND,
        "d" | "day" | "days" => 86_400 * MICROS_PER_SECOND,
        "w" | "week" | "weeks" => 7 * 86_400 * MICROS_PER_SECOND,
        _ => return None,
    })
}

/// `'1 day 2 hours'`: number-unit pairs, summed.
fn parse_length(text: &str, position: Option<Position>) -> Result<i64> {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() || words.len() % 2 != 0 {
        return Err(invalid(text, position));
    }
    let mut total: i64 = 0;
    for pair in words.chunks(2) {
        let unit = match unit_of(pair[1]) {
            Some(unit) => unit,
            None if matches!(
                pair[1].to_ascii_lowercase().trim_end_matches('s'),
                "month" | "year" | "mon"
            ) =>
            {
                let what = "INTERVAL in months or years (they have no fixed length)";
                return Err(SqlError::unsupported(what, position));
            }
            None => return Err(invalid(text, position)),
        };
        let part = scaled(pair[0], unit, position)?;
        total = total
            .checked_add(part)
            .ok_or_else(|| invalid(text, position))?;
    }
    Ok(total)
}

/// `number * unit` microseconds; the number may have a fraction (`'1.5 hours'`).
fn scaled(number: &str, unit: i64, position: Option<Position>) -> Result<i64> {
    if let Ok(whole) = number.parse::<i64>() {
        return whole
            .checked_mul(unit)
            .ok_or_else(|| invalid(number, position));
    }
    let value: f64 = number.parse().map_err(|_| invalid(number, position))?;
    let micros = (value * unit as f64).round();
    if !micros.is_finite() || micros.abs() >= i64::MAX as f64 {
        return Err(invalid(number, position));
    }
    Ok(micros as i64)
}

fn invalid(text: &str, position: Option<Position>) -> SqlError {
    SqlError::new(
        code::INVALID_VALUE,
        format!(
            "invalid INTERVAL '{text}': write number-unit pairs such as '1 hour' or \
             '1 day 30 minutes' (units: microseconds to weeks)"
        ),
        position,
    )
}
