//! Column DEFAULTs (docs/sql.md, "Defaults"): what an INSERT that omits a column writes into
//! it. A constant is coerced to the column's type once, at CREATE TABLE; `now()` is the
//! INSERT statement's time; `SNOWFLAKE_ID()` is a fresh id from the broker's `_seq`
//! generator, which the broker draws (`InsertPlan::ids_needed`), since this crate has no
//! generator.
//!
//! Persisted in the catalog as `{"value": <JSON>}`, `{"now": true}` or `{"snowflake_id":
//! true}`. The value's JSON is its HTTP form (JSON documents as their text), read back
//! through the parameter coercion of the column's type, which gives the same value.

use crate::coerce::coerce_value;
use crate::error::{code, Result, SqlError};
use crate::value::{DataType, Value};

/// The DEFAULT of a column.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnDefault {
    /// A constant of the column's type (never NULL: `DEFAULT NULL` is no default).
    Value(Value),
    /// `now()` / `CURRENT_TIMESTAMP`, for TIMESTAMP columns.
    Now,
    /// `SNOWFLAKE_ID()`, for BIGINT columns.
    SnowflakeId,
}

// Constants come from SQL literals, which cannot be NaN (the one value unequal to itself).
impl Eq for ColumnDefault {}

impl ColumnDefault {
    /// The default as DESCRIBE shows it: SQL text.
    pub fn to_sql(&self) -> String {
        match self {
            ColumnDefault::Now => "now()".into(),
            ColumnDefault::SnowflakeId => "SNOWFLAKE_ID()".into(),
            ColumnDefault::Value(value) => match value {
                Value::Boolean(v) => v.to_string().to_uppercase(),
                Value::Int(v) => v.to_string(),
                Value::BigInt(v) => v.to_string(),
                Value::Double(v) => v.to_string(),
                Value::Decimal(v) => v.to_string(),
                Value::Bytes(v) => {
                    let hex: String = v.iter().map(|b| format!("{b:02X}")).collect();
                    format!("X'{hex}'")
                }
                other => match other.to_json() {
                    serde_json::Value::String(text) => format!("'{}'", text.replace('\'', "''")),
                    json => format!("'{}'", json.to_string().replace('\'', "''")),
                },
            },
        }
    }

    /// Checks the default against its column's type (`invalid_definition` otherwise) and
    /// gives a constant that type.
    pub(crate) fn for_column(self, column: &str, data_type: DataType) -> Result<ColumnDefault> {
        let refuse = |what: &str, wanted: DataType| {
            SqlError::new(
                code::INVALID_DEFINITION,
                format!("{what} can only default a {wanted} column; {column} is {data_type}"),
                None,
            )
        };
        match self {
            ColumnDefault::Now if data_type != DataType::Timestamp => {
                Err(refuse("now()", DataType::Timestamp))
            }
            ColumnDefault::SnowflakeId if data_type != DataType::BigInt => {
                Err(refuse("SNOWFLAKE_ID()", DataType::BigInt))
            }
            ColumnDefault::Value(value) => {
                let value = coerce_value(value, data_type).map_err(|error| {
                    SqlError::new(
                        code::INVALID_DEFINITION,
                        format!("DEFAULT of column {column}: {}", error.message),
                        None,
                    )
                })?;
                Ok(ColumnDefault::Value(value))
            }
            other => Ok(other),
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum Stored {
    Value(serde_json::Value),
    Now(bool),
    SnowflakeId(bool),
}

impl serde::Serialize for ColumnDefault {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        let stored = match self {
            ColumnDefault::Value(Value::Json(text)) => Stored::Value(text.clone().into()),
            ColumnDefault::Value(value) => Stored::Value(value.to_json()),
            ColumnDefault::Now => Stored::Now(true),
            ColumnDefault::SnowflakeId => Stored::SnowflakeId(true),
        };
        stored.serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for ColumnDefault {
    /// The value is not yet of its column's type: [`crate::TableDef::new`] coerces it.
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        Ok(match Stored::deserialize(deserializer)? {
            Stored::Value(json) => ColumnDefault::Value(Value::from_json(&json)),
            Stored::Now(_) => ColumnDefault::Now,
            Stored::SnowflakeId(_) => ColumnDefault::SnowflakeId,
        })
    }
}
