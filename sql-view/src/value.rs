//! Value types (docs/sql.md, "Types"): [`DataType`], the owned [`Value`] and the borrowed
//! [`ValueRef`] read in place from a stored row, plus the SQL comparison rules shared by
//! filters and ORDER BY.
//!
//! Values added after the first row format (UUID, DECIMAL, DATE) keep the archived size and
//! alignment of [`Value`] (16 bytes, 8-aligned): the wide ones are archived behind a box, so
//! rows written before them read exactly as before (`row/tests.rs`, the golden row).
//!
//! It does not own coercion of literals and parameters (`coerce.rs`), the stored row layout
//! (`row.rs`) or JSON rendering (`json.rs`).

use std::cmp::Ordering;

use rkyv::with::AsBox;

pub use crate::data_type::DataType;
use crate::date::date_to_micros;
use crate::decimal::Decimal;

/// An owned SQL value. This is also the element of the stored row (rkyv archive).
#[derive(Debug, Clone, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// BOOLEAN.
    Boolean(bool),
    /// INT.
    Int(i32),
    /// BIGINT.
    BigInt(i64),
    /// DOUBLE.
    Double(f64),
    /// TEXT.
    Text(String),
    /// TIMESTAMP, microseconds since the Unix epoch (UTC).
    Timestamp(i64),
    /// JSON, as validated JSON text.
    Json(String),
    /// BYTES.
    Bytes(Vec<u8>),
    /// UUID. Archived behind a box: 16 inline bytes would widen every archived value.
    Uuid(#[rkyv(with = AsBox)] [u8; 16]),
    /// DECIMAL, with its own scale. Archived behind a box, as UUID.
    Decimal(#[rkyv(with = AsBox)] Decimal),
    /// DATE, days since 1970-01-01.
    Date(i32),
}

/// A value borrowed from a stored row or a plan's constants; no allocation to read it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    /// SQL NULL (also a field missing from a row written before `ADD COLUMN`).
    Null,
    /// BOOLEAN.
    Boolean(bool),
    /// INT.
    Int(i32),
    /// BIGINT.
    BigInt(i64),
    /// DOUBLE.
    Double(f64),
    /// TEXT.
    Text(&'a str),
    /// TIMESTAMP, microseconds since the Unix epoch (UTC).
    Timestamp(i64),
    /// JSON text.
    Json(&'a str),
    /// BYTES.
    Bytes(&'a [u8]),
    /// UUID.
    Uuid([u8; 16]),
    /// DECIMAL.
    Decimal(Decimal),
    /// DATE, days since 1970-01-01.
    Date(i32),
}

impl Value {
    /// The borrowed form.
    pub fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Value::Null => ValueRef::Null,
            Value::Boolean(v) => ValueRef::Boolean(*v),
            Value::Int(v) => ValueRef::Int(*v),
            Value::BigInt(v) => ValueRef::BigInt(*v),
            Value::Double(v) => ValueRef::Double(*v),
            Value::Text(v) => ValueRef::Text(v),
            Value::Timestamp(v) => ValueRef::Timestamp(*v),
            Value::Json(v) => ValueRef::Json(v),
            Value::Bytes(v) => ValueRef::Bytes(v),
            Value::Uuid(v) => ValueRef::Uuid(*v),
            Value::Decimal(v) => ValueRef::Decimal(*v),
            Value::Date(v) => ValueRef::Date(*v),
        }
    }

    /// The type of the value; `None` for NULL.
    pub fn data_type(&self) -> Option<DataType> {
        self.as_ref().data_type()
    }

    /// Whether this is NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

impl<'a> ValueRef<'a> {
    /// An owned copy.
    pub fn to_value(self) -> Value {
        match self {
            ValueRef::Null => Value::Null,
            ValueRef::Boolean(v) => Value::Boolean(v),
            ValueRef::Int(v) => Value::Int(v),
            ValueRef::BigInt(v) => Value::BigInt(v),
            ValueRef::Double(v) => Value::Double(v),
            ValueRef::Text(v) => Value::Text(v.to_owned()),
            ValueRef::Timestamp(v) => Value::Timestamp(v),
            ValueRef::Json(v) => Value::Json(v.to_owned()),
            ValueRef::Bytes(v) => Value::Bytes(v.to_vec()),
            ValueRef::Uuid(v) => Value::Uuid(v),
            ValueRef::Decimal(v) => Value::Decimal(v),
            ValueRef::Date(v) => Value::Date(v),
        }
    }

    /// The type of the value; `None` for NULL.
    pub fn data_type(self) -> Option<DataType> {
        Some(match self {
            ValueRef::Null => return None,
            ValueRef::Boolean(_) => DataType::Boolean,
            ValueRef::Int(_) => DataType::Int,
            ValueRef::BigInt(_) => DataType::BigInt,
            ValueRef::Double(_) => DataType::Double,
            ValueRef::Text(_) => DataType::Text,
            ValueRef::Timestamp(_) => DataType::Timestamp,
            ValueRef::Json(_) => DataType::Json,
            ValueRef::Bytes(_) => DataType::Bytes,
            ValueRef::Uuid(_) => DataType::Uuid,
            ValueRef::Decimal(v) => DataType::decimal_with_scale(v.scale()),
            ValueRef::Date(_) => DataType::Date,
        })
    }

    /// Whether this is NULL.
    pub fn is_null(self) -> bool {
        matches!(self, ValueRef::Null)
    }
}

/// SQL comparison of two values: `None` when either is NULL or the types are not comparable
/// (JSON, or two different non-numeric types). Numbers compare across INT, BIGINT and DOUBLE
/// exactly; NaN equals NaN and is above every other number (as in PostgreSQL). DECIMAL
/// compares exactly with integers and DECIMALs, and as a DOUBLE with DOUBLEs (as PostgreSQL
/// does). A DATE compared with a TIMESTAMP is midnight UTC of its day.
pub fn compare(a: ValueRef<'_>, b: ValueRef<'_>) -> Option<Ordering> {
    use ValueRef as V;
    Some(match (a, b) {
        (V::Boolean(x), V::Boolean(y)) => x.cmp(&y),
        (V::Text(x), V::Text(y)) => x.cmp(y),
        (V::Bytes(x), V::Bytes(y)) => x.cmp(y),
        (V::Timestamp(x), V::Timestamp(y)) => x.cmp(&y),
        (V::Uuid(x), V::Uuid(y)) => x.cmp(&y),
        (V::Date(x), V::Date(y)) => x.cmp(&y),
        (V::Date(x), V::Timestamp(y)) => compare_date_time(x, y),
        (V::Timestamp(x), V::Date(y)) => compare_date_time(y, x).reverse(),
        (V::Decimal(x), V::Decimal(y)) => x.compare(y),
        (V::Decimal(x), V::Double(y)) => compare_f64(x.to_f64(), y),
        (V::Double(x), V::Decimal(y)) => compare_f64(x, y.to_f64()),
        (V::Decimal(x), other) => x.compare(Decimal::from_i64(integer(other)?)),
        (other, V::Decimal(y)) => Decimal::from_i64(integer(other)?).compare(y),
        (V::Double(x), V::Double(y)) => compare_f64(x, y),
        (V::Double(x), other) => compare_i64_f64(integer(other)?, x).reverse(),
        (other, V::Double(y)) => compare_i64_f64(integer(other)?, y),
        (x, y) => integer(x)?.cmp(&integer(y)?),
    })
}

/// A total order for sorting: NULL after every value (callers flip it for NULLS FIRST), then
/// [`compare`], and values of incomparable types by a fixed rank of their type.
pub fn sort_order(a: ValueRef<'_>, b: ValueRef<'_>) -> Ordering {
    match (a.is_null(), b.is_null()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        (false, false) => {}
    }
    if let Some(order) = compare(a, b) {
        return order;
    }
    match (a, b) {
        (ValueRef::Json(x), ValueRef::Json(y)) => x.cmp(y),
        _ => type_rank(a).cmp(&type_rank(b)),
    }
}

fn type_rank(value: ValueRef<'_>) -> u8 {
    match value {
        ValueRef::Null => 0,
        ValueRef::Boolean(_) => 1,
        ValueRef::Int(_) | ValueRef::BigInt(_) | ValueRef::Double(_) | ValueRef::Decimal(_) => 2,
        ValueRef::Text(_) => 3,
        ValueRef::Timestamp(_) | ValueRef::Date(_) => 4,
        ValueRef::Json(_) => 5,
        ValueRef::Bytes(_) => 6,
        ValueRef::Uuid(_) => 7,
    }
}

/// A day against a time: midnight UTC of the day (a day past TIMESTAMP's range is beyond
/// every time).
fn compare_date_time(days: i32, micros: i64) -> Ordering {
    match date_to_micros(days) {
        Some(midnight) => midnight.cmp(&micros),
        None if days < 0 => Ordering::Less,
        None => Ordering::Greater,
    }
}

fn integer(value: ValueRef<'_>) -> Option<i64> {
    match value {
        ValueRef::Int(v) => Some(i64::from(v)),
        ValueRef::BigInt(v) => Some(v),
        _ => None,
    }
}

/// Doubles in PostgreSQL order: -0 equals 0, NaN equals NaN and is the largest.
pub(crate) fn compare_f64(x: f64, y: f64) -> Ordering {
    match x.partial_cmp(&y) {
        Some(order) => order,
        None => x.is_nan().cmp(&y.is_nan()),
    }
}

/// An integer against a double, exactly (no rounding of large integers).
fn compare_i64_f64(x: i64, y: f64) -> Ordering {
    // 2^63 as f64; every finite double at or beyond it lies outside the i64 range.
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    if y.is_nan() || y >= TWO_POW_63 {
        return Ordering::Less;
    }
    if y < -TWO_POW_63 {
        return Ordering::Greater;
    }
    let whole = y.trunc();
    // In range: -2^63 <= whole < 2^63, so the conversion is exact.
    match x.cmp(&(whole as i64)) {
        Ordering::Equal => compare_f64(0.0, y - whole),
        order => order,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_compare_across_types_exactly() {
        let big = ValueRef::BigInt(i64::MAX);
        assert_eq!(
            compare(big, ValueRef::Double(9.223372036854776e18)),
            Some(Ordering::Less)
        );
        assert_eq!(
            compare(ValueRef::Int(2), ValueRef::Double(2.5)),
            Some(Ordering::Less)
        );
        assert_eq!(
            compare(ValueRef::Double(-2.5), ValueRef::Int(-2)),
            Some(Ordering::Less)
        );
        assert_eq!(
            compare(ValueRef::Double(3.0), ValueRef::BigInt(3)),
            Some(Ordering::Equal)
        );
        assert_eq!(
            compare(ValueRef::Int(3), ValueRef::BigInt(4)),
            Some(Ordering::Less)
        );
        assert_eq!(
            compare(ValueRef::Double(f64::NAN), ValueRef::Int(1)),
            Some(Ordering::Greater)
        );
        assert_eq!(
            compare(ValueRef::Double(-0.0), ValueRef::Double(0.0)),
            Some(Ordering::Equal)
        );
    }

    #[test]
    fn null_and_mismatched_types_do_not_compare() {
        assert_eq!(compare(ValueRef::Null, ValueRef::Int(1)), None);
        assert_eq!(compare(ValueRef::Text("1"), ValueRef::Int(1)), None);
        assert_eq!(compare(ValueRef::Json("1"), ValueRef::Json("1")), None);
        assert_eq!(
            sort_order(ValueRef::Null, ValueRef::Int(1)),
            Ordering::Greater
        );
        assert_eq!(
            sort_order(ValueRef::Boolean(true), ValueRef::Text("a")),
            Ordering::Less
        );
    }

    #[test]
    fn owned_and_borrowed_round_trip() {
        let values = [
            Value::Null,
            Value::Boolean(true),
            Value::Int(-1),
            Value::BigInt(1 << 40),
            Value::Double(0.5),
            Value::Text("x".into()),
            Value::Timestamp(7),
            Value::Json("[1]".into()),
            Value::Bytes(vec![0, 255]),
        ];
        for value in values {
            assert_eq!(value.as_ref().to_value(), value);
            assert_eq!(value.data_type(), value.as_ref().data_type());
        }
        assert!(DataType::Int.comparable_with(DataType::Double));
        assert!(!DataType::Json.comparable_with(DataType::Json));
        assert_eq!(
            DataType::Int.wider_numeric(DataType::BigInt),
            DataType::BigInt
        );
    }
}
