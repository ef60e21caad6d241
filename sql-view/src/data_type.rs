//! [`DataType`]: the type of a column, an expression or a value; its SQL name (which catalogs
//! persist, so old names never change) and the rules between types (which are numeric, which
//! compare, what arithmetic widens to).
//!
//! It does not own values (`value.rs`) or conversions between types (`coerce.rs`).

use std::fmt;

use crate::decimal::PRECISION_MAX;

/// The type of a column, an expression or a value.
/// Persisted in catalogs by its SQL name (`"INT"`, `"DECIMAL(10,2)"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    /// `BOOLEAN`.
    Boolean,
    /// `INT`: 32-bit signed.
    Int,
    /// `BIGINT`: 64-bit signed (also `_seq`).
    BigInt,
    /// `DOUBLE`: 64-bit IEEE 754.
    Double,
    /// `TEXT`: UTF-8.
    Text,
    /// `TIMESTAMP`: microseconds since the Unix epoch, UTC; RFC 3339 as text.
    Timestamp,
    /// `JSON`: validated JSON text.
    Json,
    /// `BYTES`: raw bytes (base64 in JSON).
    Bytes,
    /// `UUID`: 16 bytes.
    Uuid,
    /// `DECIMAL(precision, scale)`: exact, at most 38 digits, `scale` of them decimals.
    Decimal {
        /// Digits in all, 1 to 38.
        precision: u8,
        /// Digits after the point, 0 to `precision`.
        scale: u8,
    },
    /// `DATE`: days since 1970-01-01.
    Date,
}

impl DataType {
    /// The SQL name without a DECIMAL's precision and scale (those are in [`fmt::Display`],
    /// which DESCRIBE and result schemas show).
    pub fn name(self) -> &'static str {
        match self {
            DataType::Boolean => "BOOLEAN",
            DataType::Int => "INT",
            DataType::BigInt => "BIGINT",
            DataType::Double => "DOUBLE",
            DataType::Text => "TEXT",
            DataType::Timestamp => "TIMESTAMP",
            DataType::Json => "JSON",
            DataType::Bytes => "BYTES",
            DataType::Uuid => "UUID",
            DataType::Decimal { .. } => "DECIMAL",
            DataType::Date => "DATE",
        }
    }

    /// INT, BIGINT, DOUBLE or DECIMAL.
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            DataType::Int | DataType::BigInt | DataType::Double | DataType::Decimal { .. }
        )
    }

    /// Whether this is a DECIMAL of any precision and scale.
    pub fn is_decimal(self) -> bool {
        matches!(self, DataType::Decimal { .. })
    }

    /// DECIMAL with the most digits and this scale: the type of computed decimals.
    pub fn decimal_with_scale(scale: u8) -> DataType {
        DataType::Decimal {
            precision: PRECISION_MAX,
            scale: scale.min(PRECISION_MAX),
        }
    }

    /// Whether the two types' values compare without conversion: the same type, numbers
    /// across numeric types, DATE with TIMESTAMP (midnight UTC). JSON never compares.
    pub fn comparable_with(self, other: DataType) -> bool {
        if self == DataType::Json || other == DataType::Json {
            return false;
        }
        self == other
            || (self.is_numeric() && other.is_numeric())
            || self.is_time() && other.is_time()
    }

    /// DATE or TIMESTAMP.
    pub fn is_time(self) -> bool {
        matches!(self, DataType::Date | DataType::Timestamp)
    }

    /// The type of `a + b` for two numeric types: the wider of the two (DOUBLE over DECIMAL
    /// over the integers; two DECIMALs give the larger scale).
    pub fn wider_numeric(self, other: DataType) -> DataType {
        let scale = |t: DataType| match t {
            DataType::Decimal { scale, .. } => scale,
            _ => 0,
        };
        match (self, other) {
            (DataType::Double, _) | (_, DataType::Double) => DataType::Double,
            (DataType::Decimal { .. }, _) | (_, DataType::Decimal { .. }) => {
                DataType::decimal_with_scale(scale(self).max(scale(other)))
            }
            (DataType::BigInt, _) | (_, DataType::BigInt) => DataType::BigInt,
            _ => DataType::Int,
        }
    }

    /// A type from its SQL name as [`fmt::Display`] writes it (catalogs store it so).
    pub fn from_name(name: &str) -> Option<DataType> {
        Some(match name {
            "BOOLEAN" => DataType::Boolean,
            "INT" => DataType::Int,
            "BIGINT" => DataType::BigInt,
            "DOUBLE" => DataType::Double,
            "TEXT" => DataType::Text,
            "TIMESTAMP" => DataType::Timestamp,
            "JSON" => DataType::Json,
            "BYTES" => DataType::Bytes,
            "UUID" => DataType::Uuid,
            "DATE" => DataType::Date,
            other => {
                let inner = other.strip_prefix("DECIMAL(")?.strip_suffix(')')?;
                let (precision, scale) = inner.split_once(',')?;
                let (precision, scale) = (precision.parse().ok()?, scale.parse().ok()?);
                if !(1..=PRECISION_MAX).contains(&precision) || scale > precision {
                    return None;
                }
                DataType::Decimal { precision, scale }
            }
        })
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataType::Decimal { precision, scale } => write!(f, "DECIMAL({precision},{scale})"),
            other => f.write_str(other.name()),
        }
    }
}

impl serde::Serialize for DataType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for DataType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        DataType::from_name(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown column type {name}")))
    }
}
