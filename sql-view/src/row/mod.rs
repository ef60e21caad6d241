//! The stored row format (rkyv, so that filters and projections read fields in place;
//! docs/broker-data.md) and primary-key bytes.
//!
//! A row is the rkyv archive of `StoredRow { format: u8, fields: Box<[Value]> }`: a format
//! version (today [`ROW_FORMAT`]) and one [`Value`] per column in table order. Values carry
//! their own type tag, so a row reads without its schema. `ALTER TABLE ADD COLUMN` appends a
//! column; rows written before it have fewer fields, and the missing ones read as NULL.
//! rkyv lays the archive out with its default settings (little endian, aligned, 32-bit
//! relative pointers), the root at the end of the bytes; readers validate the whole archive
//! with bytecheck before touching a field, so garbage bytes give a [`RowError`], never a panic.
//!
//! This module does not own where payloads live (that is `strand-log`) or what the columns
//! mean (that is the [`crate::TableDef`]).

// The crate's only `unsafe` lives in `sys`, behind a safe API.
#[allow(unsafe_code)]
mod sys;

use rkyv::rancor;
use rkyv::with::InlineAsBox;

use crate::decimal::Decimal;
use crate::error::RowError;
use crate::limits;
use crate::value::{ArchivedValue, Value, ValueRef};

/// The row format version written by [`encode_row`].
pub const ROW_FORMAT: u8 = 1;

#[derive(rkyv::Archive, rkyv::Serialize)]
#[rkyv(archived = ArchivedStoredRow)]
struct StoredRow<'a> {
    format: u8,
    #[rkyv(with = InlineAsBox)]
    fields: &'a [Value],
}

type Archived = ArchivedStoredRow<'static>;

/// Encodes one row: one value per column, in table order. Fails when the row has more than
/// [`limits::COLUMNS_PER_TABLE_MAX`] fields or its bytes would exceed the log's payload limit.
pub fn encode_row(values: &[Value]) -> Result<Vec<u8>, RowError> {
    if values.len() > limits::COLUMNS_PER_TABLE_MAX {
        return Err(RowError::TooManyFields(values.len()));
    }
    let row = StoredRow {
        format: ROW_FORMAT,
        fields: values,
    };
    let bytes = rkyv::api::high::to_bytes_in::<_, rancor::Error>(&row, Vec::new())
        .map_err(|error| RowError::Invalid(error.to_string()))?;
    let max = strand_log::limits::PAYLOAD_BYTES_MAX;
    if bytes.len() > max {
        return Err(RowError::TooLarge {
            bytes: bytes.len(),
            max,
        });
    }
    Ok(bytes)
}

/// A validated, zero-copy view of a stored row. Fields are read in place; nothing is
/// deserialized until asked for.
pub struct RowView<'a> {
    inner: Inner<'a>,
}

enum Inner<'a> {
    /// The caller's bytes were aligned for the archive: read them where they are.
    Borrowed(&'a Archived),
    /// They were not: a validated, aligned copy.
    Copied(sys::ValidatedCopy),
}

impl<'a> RowView<'a> {
    /// Validates `bytes` as a row. Bytes that are not aligned for the archive (the log keeps
    /// payloads 8-byte aligned, but callers may pass any slice) are first copied into an
    /// aligned buffer.
    pub fn new(bytes: &'a [u8]) -> Result<RowView<'a>, RowError> {
        let inner = if sys::is_aligned(bytes) {
            let archived = rkyv::access::<Archived, rancor::Error>(bytes)
                .map_err(|error| RowError::Invalid(error.to_string()))?;
            Inner::Borrowed(archived)
        } else {
            Inner::Copied(sys::ValidatedCopy::new(bytes)?)
        };
        let view = RowView { inner };
        match view.archived().format {
            ROW_FORMAT => Ok(view),
            other => Err(RowError::UnknownFormat(other)),
        }
    }

    fn archived(&self) -> &Archived {
        match &self.inner {
            Inner::Borrowed(archived) => archived,
            Inner::Copied(copy) => copy.archived(),
        }
    }

    /// Number of fields stored (may be fewer than the table's columns).
    pub fn len(&self) -> usize {
        self.archived().fields.len()
    }

    /// Whether the row stores no field.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Field `index`, read in place; NULL past the stored fields.
    pub fn field(&self, index: usize) -> ValueRef<'_> {
        match self.archived().fields.get().get(index) {
            Some(value) => value_ref(value),
            None => ValueRef::Null,
        }
    }

    /// All stored fields as owned values, padded with NULL up to `columns`.
    pub fn to_values(&self, columns: usize) -> Vec<Value> {
        (0..columns.max(self.len()))
            .map(|index| self.field(index).to_value())
            .collect()
    }
}

fn value_ref(value: &ArchivedValue) -> ValueRef<'_> {
    match value {
        ArchivedValue::Null => ValueRef::Null,
        ArchivedValue::Boolean(v) => ValueRef::Boolean(*v),
        ArchivedValue::Int(v) => ValueRef::Int(v.to_native()),
        ArchivedValue::BigInt(v) => ValueRef::BigInt(v.to_native()),
        ArchivedValue::Double(v) => ValueRef::Double(v.to_native()),
        ArchivedValue::Text(v) => ValueRef::Text(v.as_str()),
        ArchivedValue::Timestamp(v) => ValueRef::Timestamp(v.to_native()),
        ArchivedValue::Json(v) => ValueRef::Json(v.as_str()),
        ArchivedValue::Bytes(v) => ValueRef::Bytes(v.as_slice()),
        ArchivedValue::Uuid(v) => ValueRef::Uuid(**v),
        ArchivedValue::Decimal(v) => ValueRef::Decimal(Decimal::from_archived(v)),
        ArchivedValue::Date(v) => ValueRef::Date(v.to_native()),
    }
}

/// The log key of a primary key value: a type tag byte and an encoding that sorts like the
/// values (integers, timestamps and dates big-endian with the sign bit flipped). INT and BIGINT
/// of the same number give the same key; a DECIMAL (not a key type, but it has a key like
/// every value) is keyed without trailing zeros, so equal numbers agree. `None` for NULL.
pub fn encode_key(value: ValueRef<'_>) -> Option<Vec<u8>> {
    let ordered = |tag: u8, v: i64| {
        let mut key = vec![tag];
        key.extend_from_slice(&((v as u64) ^ (1 << 63)).to_be_bytes());
        key
    };
    let tagged = |tag: u8, bytes: &[u8]| {
        let mut key = Vec::with_capacity(1 + bytes.len());
        key.push(tag);
        key.extend_from_slice(bytes);
        key
    };
    Some(match value {
        ValueRef::Null => return None,
        ValueRef::Boolean(v) => vec![1, u8::from(v)],
        ValueRef::Int(v) => ordered(2, i64::from(v)),
        ValueRef::BigInt(v) => ordered(2, v),
        ValueRef::Double(v) => tagged(3, &v.to_bits().to_be_bytes()),
        ValueRef::Text(v) => tagged(4, v.as_bytes()),
        ValueRef::Timestamp(v) => ordered(5, v),
        ValueRef::Json(v) => tagged(6, v.as_bytes()),
        ValueRef::Bytes(v) => tagged(7, v),
        ValueRef::Uuid(v) => tagged(8, &v),
        ValueRef::Date(v) => ordered(9, i64::from(v)),
        ValueRef::Decimal(v) => {
            let normalized = v.normalized();
            let mut key = tagged(10, &normalized.mantissa().to_be_bytes());
            key.push(normalized.scale());
            key
        }
    })
}

/// The primary key value of a log key made by [`encode_key`], given the key column's type
/// (INT and BIGINT share an encoding). `None` if the bytes are not such a key for `data_type`.
pub fn decode_key(key: &[u8], data_type: crate::value::DataType) -> Option<Value> {
    use crate::value::DataType;
    let (&tag, rest) = key.split_first()?;
    let ordered = || -> Option<i64> {
        let bytes: [u8; 8] = rest.try_into().ok()?;
        Some((u64::from_be_bytes(bytes) ^ (1 << 63)) as i64)
    };
    let text = || String::from_utf8(rest.to_vec()).ok();
    Some(match (tag, data_type) {
        (1, DataType::Boolean) => match rest {
            [0] => Value::Boolean(false),
            [1] => Value::Boolean(true),
            _ => return None,
        },
        (2, DataType::Int) => Value::Int(i32::try_from(ordered()?).ok()?),
        (2, DataType::BigInt) => Value::BigInt(ordered()?),
        (3, DataType::Double) => {
            let bytes: [u8; 8] = rest.try_into().ok()?;
            Value::Double(f64::from_bits(u64::from_be_bytes(bytes)))
        }
        (4, DataType::Text) => Value::Text(text()?),
        (5, DataType::Timestamp) => Value::Timestamp(ordered()?),
        (6, DataType::Json) => Value::Json(text()?),
        (7, DataType::Bytes) => Value::Bytes(rest.to_vec()),
        (8, DataType::Uuid) => Value::Uuid(rest.try_into().ok()?),
        (9, DataType::Date) => Value::Date(i32::try_from(ordered()?).ok()?),
        (10, DataType::Decimal { scale, .. }) => {
            let (mantissa, key_scale) = rest.split_at_checked(16)?;
            let mantissa = i128::from_be_bytes(mantissa.try_into().ok()?);
            let &[key_scale] = key_scale else { return None };
            let value = Decimal::new(mantissa, key_scale)?.rescale(scale).ok()?;
            Value::Decimal(value)
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
