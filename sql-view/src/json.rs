//! Values to and from JSON, as the HTTP and WebSocket interfaces carry them (docs/http.md, "Values in JSON"):
//! TIMESTAMP as RFC 3339 text, BYTES as base64, JSON embedded, DOUBLE NaN and infinities as
//! the strings PostgreSQL uses. BIGINT is a JSON number here; the broker writes `_seq` (and
//! other Snowflake values) as strings itself.

use base64::Engine as _;

use crate::timestamp::render_rfc3339;
use crate::value::{Value, ValueRef};

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
