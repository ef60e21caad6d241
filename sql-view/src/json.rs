//! Values to and from JSON, as the HTTP and WebSocket interfaces carry them (docs/http.md, "Values in JSON"):
//! TIMESTAMP as RFC 3339 text, DATE as `YYYY-MM-DD`, UUID as lowercase hyphenated text,
//! DECIMAL as a string with exactly its scale's decimals (`"12.50"`), BYTES as base64, JSON embedded, DOUBLE NaN and infinities as
//! the strings PostgreSQL uses. BIGINT is a JSON number, except in the `_seq` column, and
//! everywhere for a client that asked for [`BigIntJson::String`]: [`seq_json`] and
//! [`column_json`] are the one place those rules are written.

use base64::Engine as _;

use crate::catalog::SEQ_COLUMN;
use crate::date::render_date;
use crate::timestamp::render_rfc3339;
use crate::uuid::render_uuid;
use crate::value::{Value, ValueRef};

/// A `_seq` as JSON: a decimal string. `_seq`s are Snowflake ids, around 2^60, and a
/// JavaScript number holds integers exactly only up to 2^53, so a browser reading it as a
/// number would get a neighbouring `_seq` and resume from the wrong place (docs/http.md,
/// "Values in JSON"). Every interface that writes a `_seq` writes it through this.
pub fn seq_json(seq: u64) -> serde_json::Value {
    serde_json::Value::String(seq.to_string())
}

/// How BIGINT values other than `_seq` travel in JSON, as the client asked (docs/http.md,
/// "Values in JSON"). Numbers are the default, so clients written before the choice existed
/// read what they always read; a JavaScript client asks for strings, because a JSON number
/// past 2^53 reaches it rounded (9007199254740993 reads as ...992).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BigIntJson {
    /// A JSON number.
    #[default]
    Number,
    /// A string of decimal digits (with a leading `-` when negative).
    String,
}

/// A result column's value as JSON: the `_seq` column (a BIGINT in plans) as a decimal string
/// like [`seq_json`], BIGINT values as `bigint` says, every other value as
/// [`Value::to_json`].
pub fn column_json(column: &str, value: &Value, bigint: BigIntJson) -> serde_json::Value {
    match value {
        Value::BigInt(v) if column == SEQ_COLUMN || bigint == BigIntJson::String => {
            serde_json::Value::String(v.to_string())
        }
        other => other.to_json(),
    }
}

impl ValueRef<'_> {
    /// The JSON form of the value.
    pub fn to_json(self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            ValueRef::Null => J::Null,
            ValueRef::Boolean(v) => J::Bool(v),
            ValueRef::Int(v) => J::from(v),
            ValueRef::BigInt(v) => J::from(v),
            ValueRef::Double(v) => match serde_json::Number::from_f64(v) {
                Some(number) => J::Number(number),
                None if v.is_nan() => J::String("NaN".into()),
                None if v > 0.0 => J::String("Infinity".into()),
                None => J::String("-Infinity".into()),
            },
            ValueRef::Text(v) => J::String(v.to_owned()),
            ValueRef::Timestamp(v) => J::String(render_rfc3339(v)),
            // Stored JSON was validated when written; bytes from elsewhere may not be.
            ValueRef::Json(v) => serde_json::from_str(v).unwrap_or_else(|_| J::String(v.into())),
            ValueRef::Bytes(v) => J::String(base64::engine::general_purpose::STANDARD.encode(v)),
            ValueRef::Uuid(v) => J::String(render_uuid(&v)),
            // A string, so that JavaScript keeps every digit; exactly `scale` decimals.
            ValueRef::Decimal(v) => J::String(v.to_string()),
            ValueRef::Date(v) => J::String(render_date(v)),
        }
    }
}

impl Value {
    /// The JSON form of the value.
    pub fn to_json(&self) -> serde_json::Value {
        self.as_ref().to_json()
    }

    /// A value from a JSON parameter or field, before it meets a column type (then
    /// [`crate::coerce_value`] gives it that type): null, booleans, integers as BIGINT, other
    /// numbers as DOUBLE, strings as TEXT, arrays and objects as JSON text.
    pub fn from_json(json: &serde_json::Value) -> Value {
        use serde_json::Value as J;
        match json {
            J::Null => Value::Null,
            J::Bool(v) => Value::Boolean(*v),
            J::Number(number) => match number.as_i64() {
                Some(v) => Value::BigInt(v),
                None => Value::Double(number.as_f64().unwrap_or(f64::NAN)),
            },
            J::String(v) => Value::Text(v.clone()),
            J::Array(_) | J::Object(_) => Value::Json(json.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_each_type() {
        assert_eq!(Value::Timestamp(0).to_json(), json!("1970-01-01T00:00:00Z"));
        assert_eq!(Value::Bytes(vec![0, 1]).to_json(), json!("AAE="));
        assert_eq!(
            Value::Json("{\"a\":[1]}".into()).to_json(),
            json!({"a": [1]})
        );
        assert_eq!(Value::Double(f64::NAN).to_json(), json!("NaN"));
        assert_eq!(
            Value::Double(f64::NEG_INFINITY).to_json(),
            json!("-Infinity")
        );
        assert_eq!(Value::BigInt(-3).to_json(), json!(-3));
        assert_eq!(Value::Null.to_json(), json!(null));
        let price = crate::Decimal::new(1250, 2).unwrap();
        assert_eq!(Value::Decimal(price).to_json(), json!("12.50"));
        let tiny = crate::Decimal::new(-5, 3).unwrap();
        assert_eq!(Value::Decimal(tiny).to_json(), json!("-0.005"));
        assert_eq!(Value::Date(19_782).to_json(), json!("2024-02-29"));
        let mut uuid = [0u8; 16];
        uuid[15] = 0xAB;
        assert_eq!(
            Value::Uuid(uuid).to_json(),
            json!("00000000-0000-0000-0000-0000000000ab")
        );
    }

    #[test]
    fn seq_travels_as_a_decimal_string() {
        let seq = (1u64 << 60) + 1;
        assert_eq!(seq_json(seq), json!("1152921504606846977"));
        assert_eq!(seq_json(0), json!("0"));
        assert_eq!(seq_json(u64::MAX), json!("18446744073709551615"));
        // Beyond 2^53 a JSON number read as f64 would lose the last bit; the string keeps it.
        assert_eq!(seq_json(seq).as_str().map(str::parse::<u64>), Some(Ok(seq)));
    }

    #[test]
    fn only_the_seq_column_is_a_string() {
        let seq = Value::BigInt(1 << 60);
        let number = BigIntJson::Number;
        assert_eq!(
            column_json(SEQ_COLUMN, &seq, number),
            json!("1152921504606846976")
        );
        assert_eq!(column_json("id", &seq, number), json!(1u64 << 60));
        // Other types under `_seq` (there are none in plans) keep their own form.
        assert_eq!(column_json(SEQ_COLUMN, &Value::Null, number), json!(null));
        let text = Value::Text("x".into());
        assert_eq!(column_json("title", &text, number), json!("x"));
    }

    #[test]
    fn bigints_as_strings_keep_every_digit_and_nothing_else_changes() {
        let string = BigIntJson::String;
        // 2^53 + 1: the first integer a JavaScript number cannot hold.
        let past = Value::BigInt(9_007_199_254_740_993);
        assert_eq!(column_json("id", &past, string), json!("9007199254740993"));
        let min = Value::BigInt(i64::MIN);
        assert_eq!(
            column_json("id", &min, string),
            json!("-9223372036854775808")
        );
        assert_eq!(column_json("n", &Value::Int(7), string), json!(7));
        assert_eq!(column_json("n", &Value::Null, string), json!(null));
        assert_eq!(column_json("x", &Value::Double(1.5), string), json!(1.5));
        assert_eq!(
            column_json(SEQ_COLUMN, &Value::BigInt(5), string),
            json!("5")
        );
    }

    #[test]
    fn reads_client_json() {
        assert_eq!(Value::from_json(&json!(7)), Value::BigInt(7));
        assert_eq!(Value::from_json(&json!(1.5)), Value::Double(1.5));
        assert_eq!(Value::from_json(&json!("x")), Value::Text("x".into()));
        assert_eq!(
            Value::from_json(&json!([1, 2])),
            Value::Json("[1,2]".into())
        );
        assert_eq!(
            Value::from_json(&json!(u64::MAX)),
            Value::Double(u64::MAX as f64)
        );
    }
}
