//! Coercion of a value into a column's type: the rules for SQL literals (strict) and for
//! values that clients send as parameters or JSON (lenient where JSON cannot say the type:
//! integers as decimal text, BYTES as base64, integral doubles into integer columns).
//!
//! It does not own where the error points: callers add the position or the parameter number.

use base64::Engine as _;

use crate::date::{date_to_micros, micros_to_date, parse_date};
use crate::decimal::{Decimal, DecimalError};
use crate::error::{code, Result, SqlError};
use crate::timestamp::parse_rfc3339;
use crate::uuid::parse_uuid;
use crate::value::{DataType, Value};

/// Where a value comes from; parameters are coerced more leniently than literals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Written in the SQL text.
    Literal,
    /// A `$n` parameter or a value a client sent as JSON.
    Parameter,
}

/// Coerces a value a client sent (a parameter or a JSON field) into `target`, with the lenient
/// rules. NULL stays NULL. Errors are `type_mismatch` or `numeric_overflow`, without position.
pub fn coerce_value(value: Value, target: DataType) -> Result<Value> {
    coerce(value, target, Origin::Parameter)
}

pub(crate) fn coerce(value: Value, target: DataType, origin: Origin) -> Result<Value> {
    let lenient = origin == Origin::Parameter;
    match (target, value) {
        (_, Value::Null) => Ok(Value::Null),
        (DataType::Boolean, value @ Value::Boolean(_)) => Ok(value),
        (DataType::Int, value) => integer(value, DataType::Int, lenient).and_then(|v| {
            i32::try_from(v)
                .map(Value::Int)
                .map_err(|_| out_of_range(v, DataType::Int))
        }),
        (DataType::BigInt, value) => integer(value, DataType::BigInt, lenient).map(Value::BigInt),
        (DataType::Double, Value::Int(v)) => Ok(Value::Double(f64::from(v))),
        (DataType::Double, Value::BigInt(v)) => Ok(Value::Double(v as f64)),
        (DataType::Double, value @ Value::Double(_)) => Ok(value),
        (DataType::Double, Value::Decimal(v)) => Ok(Value::Double(v.to_f64())),
        (DataType::Double, Value::Text(text)) if lenient => text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .map(Value::Double)
            .ok_or_else(|| SqlError::type_mismatch(format!("'{text}' is not a number"), None)),
        (DataType::Text, value @ Value::Text(_)) => Ok(value),
        (DataType::Timestamp, value @ Value::Timestamp(_)) => Ok(value),
        (DataType::Timestamp, Value::Date(days)) => date_to_micros(days)
            .map(Value::Timestamp)
            .ok_or_else(|| out_of_range_text(&days.to_string(), DataType::Timestamp)),
        (DataType::Timestamp, Value::Text(text)) => match parse_rfc3339(&text) {
            Some(micros) => Ok(Value::Timestamp(micros)),
            None => Err(SqlError::type_mismatch(
                format!("'{text}' is not an RFC 3339 timestamp (e.g. 2024-05-01T12:00:00Z)"),
                None,
            )),
        },
        (DataType::Json, value) => json(value),
        (DataType::Uuid, value @ Value::Uuid(_)) => Ok(value),
        (DataType::Uuid, Value::Text(text)) => {
            parse_uuid(&text).map(Value::Uuid).ok_or_else(|| {
                SqlError::new(
                    code::INVALID_VALUE,
                    format!("'{text}' is not a UUID (e.g. 550e8400-e29b-41d4-a716-446655440000)"),
                    None,
                )
            })
        }
        (DataType::Date, value @ Value::Date(_)) => Ok(value),
        (DataType::Date, Value::Timestamp(micros)) => Ok(Value::Date(micros_to_date(micros))),
        (DataType::Date, Value::Text(text)) => {
            parse_date(&text).map(Value::Date).ok_or_else(|| {
                SqlError::new(
                    code::INVALID_VALUE,
                    format!("'{text}' is not a DATE (YYYY-MM-DD, e.g. 2024-05-01)"),
                    None,
                )
            })
        }
        (target @ DataType::Decimal { precision, scale }, value) => decimal(value, target)?
            .to_column(precision, scale)
            .map(Value::Decimal)
            .map_err(|error| decimal_error(error, "", target)),
        (DataType::Bytes, value @ Value::Bytes(_)) => Ok(value),
        (DataType::Bytes, Value::Text(text)) if lenient => {
            match base64::engine::general_purpose::STANDARD.decode(text.as_bytes()) {
                Ok(bytes) => Ok(Value::Bytes(bytes)),
                Err(_) => Err(SqlError::type_mismatch(
                    "BYTES must be sent as base64 text",
                    None,
                )),
            }
        }
        (target, value) => Err(mismatch(&value, target)),
    }
}

/// A number or its text as an exact decimal, before it is fitted to `target`'s precision and
/// scale (text is rounded to the scale as it is read, so any number of decimals is fine).
fn decimal(value: Value, target: DataType) -> Result<Decimal> {
    let scale = match target {
        DataType::Decimal { scale, .. } => Some(scale),
        _ => None,
    };
    match value {
        Value::Decimal(v) => Ok(v),
        Value::Int(v) => Ok(Decimal::from_i64(i64::from(v))),
        Value::BigInt(v) => Ok(Decimal::from_i64(v)),
        Value::Double(v) => {
            Decimal::from_f64(v, scale).map_err(|e| decimal_error(e, &v.to_string(), target))
        }
        Value::Text(text) => {
            Decimal::parse(&text, scale).map_err(|e| decimal_error(e, &text, target))
        }
        other => Err(mismatch(&other, target)),
    }
}

/// Reads `text` as a decimal with the decimals it has (`'12.555'` stays 12.555): how a
/// constant meets a DECIMAL it is compared with or computed with, which must not round it.
pub(crate) fn exact_decimal(value: Value) -> Result<Value> {
    match value {
        Value::Text(text) => Decimal::parse(&text, None)
            .map(Value::Decimal)
            .map_err(|e| decimal_error(e, &text, DataType::decimal_with_scale(0))),
        other => Ok(other),
    }
}

fn decimal_error(error: DecimalError, text: &str, target: DataType) -> SqlError {
    match error {
        DecimalError::Invalid => SqlError::new(
            code::INVALID_VALUE,
            format!("'{text}' is not a decimal number"),
            None,
        ),
        DecimalError::Overflow => out_of_range_text(text, target),
    }
}

fn out_of_range_text(text: &str, target: DataType) -> SqlError {
    let what = if text.is_empty() { "the value" } else { text };
    SqlError::new(
        code::NUMERIC_OVERFLOW,
        format!("{what} is out of range for {target}"),
        None,
    )
}

/// An integer from INT, BIGINT, DECIMAL (rounded, halves away from zero), or (lenient)
/// decimal text or an integral double.
fn integer(value: Value, target: DataType, lenient: bool) -> Result<i64> {
    match value {
        Value::Int(v) => Ok(i64::from(v)),
        Value::BigInt(v) => Ok(v),
        Value::Decimal(v) => v
            .to_i64()
            .ok_or_else(|| out_of_range_text(&v.to_string(), target)),
        Value::Text(ref text) if lenient => text
            .trim()
            .parse::<i64>()
            .map_err(|_| SqlError::type_mismatch(format!("'{text}' is not an integer"), None)),
        Value::Double(v) if lenient && v.fract() == 0.0 => {
            // Within (-2^63, 2^63) the conversion is exact.
            if v.abs() < 9_223_372_036_854_775_808.0 {
                Ok(v as i64)
            } else {
                Err(SqlError::new(
                    code::NUMERIC_OVERFLOW,
                    format!("{v} is out of range for BIGINT"),
                    None,
                ))
            }
        }
        other => Err(mismatch(&other, target)),
    }
}

fn json(value: Value) -> Result<Value> {
    let text = match value {
        Value::Json(text) => return Ok(Value::Json(text)),
        Value::Text(text) => text,
        Value::Boolean(v) => v.to_string(),
        Value::Int(v) => v.to_string(),
        Value::BigInt(v) => v.to_string(),
        Value::Double(v) if v.is_finite() => v.to_string(),
        Value::Decimal(v) => v.to_string(),
        other => return Err(mismatch(&other, DataType::Json)),
    };
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(_) => Ok(Value::Json(text)),
        Err(error) => Err(SqlError::type_mismatch(
            format!("invalid JSON: {error}"),
            None,
        )),
    }
}

fn out_of_range(value: i64, target: DataType) -> SqlError {
    SqlError::new(
        code::NUMERIC_OVERFLOW,
        format!("{value} is out of range for {target}"),
        None,
    )
}

fn mismatch(value: &Value, target: DataType) -> SqlError {
    let found = value.data_type().map_or("NULL", DataType::name);
    SqlError::type_mismatch(format!("expected {target}, found {found} value"), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_strict() {
        let text = Value::Text("5".into());
        let error = coerce(text, DataType::Int, Origin::Literal).unwrap_err();
        assert_eq!(error.code, code::TYPE_MISMATCH);
        assert_eq!(error.message, "expected INT, found TEXT value");
        let error = coerce(Value::BigInt(1 << 40), DataType::Int, Origin::Literal).unwrap_err();
        assert_eq!(error.code, code::NUMERIC_OVERFLOW);
        let bytes = coerce(Value::Text("AAE=".into()), DataType::Bytes, Origin::Literal);
        assert_eq!(bytes.unwrap_err().code, code::TYPE_MISMATCH);
    }

    #[test]
    fn parameters_are_lenient() {
        assert_eq!(
            coerce_value(Value::Text("42".into()), DataType::BigInt),
            Ok(Value::BigInt(42))
        );
        assert_eq!(
            coerce_value(Value::Double(3.0), DataType::Int),
            Ok(Value::Int(3))
        );
        assert_eq!(
            coerce_value(Value::Text("AAE=".into()), DataType::Bytes),
            Ok(Value::Bytes(vec![0, 1]))
        );
        assert!(coerce_value(Value::Double(3.5), DataType::Int).is_err());
    }

    #[test]
    fn text_becomes_timestamp_and_json() {
        let ts = coerce(
            Value::Text("1970-01-01T00:00:01Z".into()),
            DataType::Timestamp,
            Origin::Literal,
        );
        assert_eq!(ts, Ok(Value::Timestamp(1_000_000)));
        let bad = coerce(
            Value::Text("yesterday".into()),
            DataType::Timestamp,
            Origin::Literal,
        );
        assert_eq!(bad.unwrap_err().code, code::TYPE_MISMATCH);
        let json = coerce(
            Value::Text("{\"a\":1}".into()),
            DataType::Json,
            Origin::Literal,
        );
        assert_eq!(json, Ok(Value::Json("{\"a\":1}".into())));
        let bad = coerce(Value::Text("{".into()), DataType::Json, Origin::Literal);
        assert_eq!(bad.unwrap_err().code, code::TYPE_MISMATCH);
        assert_eq!(
            coerce_value(Value::Int(3), DataType::Json),
            Ok(Value::Json("3".into()))
        );
    }

    #[test]
    fn new_types_from_text_and_numbers() {
        let uuid = "550E8400-e29b-41d4-a716-446655440000";
        let parsed = coerce(Value::Text(uuid.into()), DataType::Uuid, Origin::Literal).unwrap();
        assert_eq!(parsed.to_json(), "550e8400-e29b-41d4-a716-446655440000");
        let bad = coerce(Value::Text("nope".into()), DataType::Uuid, Origin::Literal);
        assert_eq!(bad.unwrap_err().code, code::INVALID_VALUE);
        let date = coerce(
            Value::Text("2024-05-01".into()),
            DataType::Date,
            Origin::Literal,
        );
        assert_eq!(date, Ok(Value::Date(19_844)));
        let bad = coerce(
            Value::Text("2024-02-30".into()),
            DataType::Date,
            Origin::Literal,
        );
        assert_eq!(bad.unwrap_err().code, code::INVALID_VALUE);
        let noon = coerce(
            Value::Timestamp(19_844 * 86_400_000_000 + 1),
            DataType::Date,
            Origin::Literal,
        );
        assert_eq!(noon, Ok(Value::Date(19_844)));
        let price = DataType::Decimal {
            precision: 10,
            scale: 2,
        };
        let cases = [
            (Value::Text("12.345".into()), Ok("12.35")),
            (Value::Double(0.1), Ok("0.10")),
            (Value::Int(-7), Ok("-7.00")),
            (
                Value::Text("12345678901".into()),
                Err(code::NUMERIC_OVERFLOW),
            ),
            (Value::Double(1e300), Err(code::NUMERIC_OVERFLOW)),
            (Value::Text("1,5".into()), Err(code::INVALID_VALUE)),
            (Value::Boolean(true), Err(code::TYPE_MISMATCH)),
        ];
        for (value, expected) in cases {
            let got = coerce(value.clone(), price, Origin::Literal);
            match expected {
                Ok(text) => assert_eq!(got.map(|v| v.to_json()), Ok(text.into()), "{value:?}"),
                Err(code) => assert_eq!(got.unwrap_err().code, code, "{value:?}"),
            }
        }
        let decimal = coerce(Value::Text("2.5".into()), price, Origin::Literal).unwrap();
        assert_eq!(
            coerce(decimal.clone(), DataType::Int, Origin::Literal),
            Ok(Value::Int(3))
        );
        assert_eq!(
            coerce(decimal, DataType::Double, Origin::Literal),
            Ok(Value::Double(2.5))
        );
    }

    #[test]
    fn null_fits_every_type_and_numbers_widen() {
        assert_eq!(
            coerce(Value::Null, DataType::Bytes, Origin::Literal),
            Ok(Value::Null)
        );
        assert_eq!(
            coerce(Value::Int(2), DataType::Double, Origin::Literal),
            Ok(Value::Double(2.0))
        );
        assert_eq!(
            coerce(Value::Int(2), DataType::BigInt, Origin::Literal),
            Ok(Value::BigInt(2))
        );
    }
}
