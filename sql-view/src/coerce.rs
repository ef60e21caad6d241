//! Coercion of a value into a column's type: the rules for SQL literals (strict) and for
//! values that clients send as parameters or JSON (lenient where JSON cannot say the type:
//! integers as decimal text, BYTES as base64, integral doubles into integer columns).
//!
//! It does not own where the error points: callers add the position or the parameter number.

use base64::Engine as _;

use crate::error::{code, Result, SqlError};
use crate::timestamp::parse_rfc3339;
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
        (DataType::Double, Value::Text(text)) if lenient => text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .map(Value::Double)
            .ok_or_else(|| SqlError::type_mismatch(format!("'{text}' is not a number"), None)),
        (DataType::Text, value @ Value::Text(_)) => Ok(value),
        (DataType::Timestamp, value @ Value::Timestamp(_)) => Ok(value),
        (DataType::Timestamp, Value::Text(text)) => match parse_rfc3339(&text) {
            Some(micros) => Ok(Value::Timestamp(micros)),
            None => Err(SqlError::type_mismatch(
                format!("'{text}' is not an RFC 3339 timestamp (e.g. 2024-05-01T12:00:00Z)"),
                None,
            )),
        },
        (DataType::Json, value) => json(value),
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

/// An integer from INT, BIGINT, or (lenient) decimal text or an integral double.
fn integer(value: Value, target: DataType, lenient: bool) -> Result<i64> {
    match value {
        Value::Int(v) => Ok(i64::from(v)),
        Value::BigInt(v) => Ok(v),
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
