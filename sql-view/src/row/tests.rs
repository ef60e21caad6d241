use proptest::prelude::*;

use super::*;

pub(crate) fn arbitrary_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Boolean),
        any::<i32>().prop_map(Value::Int),
        any::<i64>().prop_map(Value::BigInt),
        any::<f64>().prop_map(Value::Double),
        ".{0,20}".prop_map(Value::Text),
        any::<i64>().prop_map(Value::Timestamp),
        "[0-9]{1,5}".prop_map(Value::Json),
        proptest::collection::vec(any::<u8>(), 0..20).prop_map(Value::Bytes),
        any::<[u8; 16]>().prop_map(Value::Uuid),
        (any::<i64>(), 0u8..=38).prop_map(|(m, s)| Value::Decimal(
            crate::Decimal::new(i128::from(m) * 1_000_000_007, s).unwrap()
        )),
        any::<i32>().prop_map(Value::Date),
    ]
}

/// Equality that treats NaN as equal to itself (the bits are stored unchanged).
fn same(a: ValueRef<'_>, b: ValueRef<'_>) -> bool {
    match (a, b) {
        (ValueRef::Double(x), ValueRef::Double(y)) => x.to_bits() == y.to_bits(),
        _ => a == b,
    }
}

proptest! {
    #[test]
    fn round_trip(
        values in proptest::collection::vec(arbitrary_value(), 0..12),
        shift in 0usize..8,
    ) {
        let bytes = encode_row(&values).unwrap();
        // Also read from a shifted (misaligned) copy, which takes the copying path.
        let mut shifted = vec![0u8; shift];
        shifted.extend_from_slice(&bytes);
        for slice in [&bytes[..], &shifted[shift..]] {
            let row = RowView::new(slice).unwrap();
            prop_assert_eq!(row.len(), values.len());
            for (index, value) in values.iter().enumerate() {
                prop_assert!(same(row.field(index), value.as_ref()));
            }
            prop_assert_eq!(row.field(values.len()), ValueRef::Null);
        }
    }

    #[test]
    fn garbage_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(row) = RowView::new(&bytes) {
            for index in 0..row.len() + 1 {
                let _ = row.field(index).to_value();
            }
        }
    }

    #[test]
    fn damaged_rows_never_panic(
        values in proptest::collection::vec(arbitrary_value(), 0..6),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        cut in any::<usize>(),
    ) {
        let mut bytes = encode_row(&values).unwrap();
        for (at, mask) in flips {
            let len = bytes.len();
            bytes[at % len] ^= mask;
        }
        bytes.truncate(cut % (bytes.len() + 1));
        if let Ok(row) = RowView::new(&bytes) {
            let _ = row.to_values(8);
        }
    }

    #[test]
    fn keys_sort_like_integers(a in any::<i64>(), b in any::<i64>()) {
        let ka = encode_key(ValueRef::BigInt(a)).unwrap();
        let kb = encode_key(ValueRef::BigInt(b)).unwrap();
        prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
    }
}

#[test]
fn rows_written_before_add_column_read_null_for_it() {
    let bytes = encode_row(&[Value::Int(1)]).unwrap();
    let row = RowView::new(&bytes).unwrap();
    assert_eq!(
        row.to_values(3),
        vec![Value::Int(1), Value::Null, Value::Null]
    );
}

#[test]
fn an_unknown_format_version_is_an_error() {
    let row = StoredRow {
        format: 9,
        fields: &[Value::Int(1)],
    };
    let bytes = rkyv::api::high::to_bytes_in::<_, rancor::Error>(&row, Vec::new()).unwrap();
    assert!(matches!(
        RowView::new(&bytes),
        Err(RowError::UnknownFormat(9))
    ));
}

#[test]
fn empty_and_short_inputs_are_errors() {
    assert!(matches!(RowView::new(&[]), Err(RowError::Invalid(_))));
    assert!(matches!(
        RowView::new(&[1, 2, 3]),
        Err(RowError::Invalid(_))
    ));
}

#[test]
fn too_many_fields_are_refused() {
    let values = vec![Value::Null; limits::COLUMNS_PER_TABLE_MAX + 1];
    assert_eq!(
        encode_row(&values),
        Err(RowError::TooManyFields(values.len()))
    );
}

#[test]
fn int_and_bigint_keys_agree_and_null_has_none() {
    assert_eq!(
        encode_key(ValueRef::Int(5)),
        encode_key(ValueRef::BigInt(5))
    );
    assert_ne!(
        encode_key(ValueRef::Text("5")),
        encode_key(ValueRef::BigInt(5))
    );
    assert_eq!(encode_key(ValueRef::Null), None);
}

proptest::proptest! {
    /// `decode_key` undoes `encode_key` for every key type (issue 16: a keyed catch-up names a
    /// deleted row by the primary key in its tombstone's key).
    #[test]
    fn decode_key_undoes_encode_key(n in proptest::prelude::any::<i64>(), m in proptest::prelude::any::<i32>(),
        text in ".{0,20}", bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..20),
        flag in proptest::prelude::any::<bool>(), x in proptest::prelude::any::<f64>()) {
        use crate::value::DataType;
        let cases = [
            (Value::BigInt(n), DataType::BigInt),
            (Value::Int(m), DataType::Int),
            (Value::Timestamp(n), DataType::Timestamp),
            (Value::Text(text.clone()), DataType::Text),
            (Value::Json(text), DataType::Json),
            (Value::Bytes(bytes), DataType::Bytes),
            (Value::Boolean(flag), DataType::Boolean),
        ];
        for (value, data_type) in cases {
            let key = encode_key(value.as_ref()).expect("not NULL");
            proptest::prop_assert_eq!(crate::row::decode_key(&key, data_type), Some(value));
        }
        let key = encode_key(Value::Double(x).as_ref()).expect("not NULL");
        let back = crate::row::decode_key(&key, DataType::Double);
        proptest::prop_assert!(matches!(back, Some(Value::Double(y)) if y.to_bits() == x.to_bits()));
        // A key of another type is not a key of this one.
        let key = encode_key(Value::Text("a".into()).as_ref()).expect("not NULL");
        proptest::prop_assert_eq!(crate::row::decode_key(&key, DataType::BigInt), None);
    }
}

/// The values of [`GOLDEN_ROW_HEX`]: every type the first row format knew, with short
/// (inline) and long (out-of-line) text.
fn golden_values() -> Vec<Value> {
    vec![
        Value::Null,
        Value::Boolean(true),
        Value::Int(-123_456),
        Value::BigInt(-9_000_000_000_000_000_001),
        Value::Double(-2.5e-300),
        Value::Text("short".into()),
        Value::Text("a longer text that is stored out of line".into()),
        Value::Timestamp(1_714_566_896_789_000),
        Value::Json("{\"a\":[1,2]}".into()),
        Value::Bytes(vec![0, 255, 16]),
        Value::Boolean(false),
    ]
}

/// A row written by the first row format (before UUID, DECIMAL and DATE existed), frozen.
/// Rows on disk look like this; every later build must read them exactly.
const GOLDEN_ROW_HEX: &str = concat!(
    "61206c6f6e676572207465787420746861742069732073746f726564206f7574206f66206c696e65",
    "7b2261223a5b312c325d7d00ff100000000000000000000000000000000000000101000000000000",
    "000000000000000002000000c01dfeff00000000000000000300000000000000ffff7b1daf931983",
    "04000000000000002f30b7b3a7c9ba810500000073686f7274ffffff0000000005000000a8000000",
    "64ffffff00000000060000000000000008a6d3b663170600070000008b0000006cffffff00000000",
    "0800000067ffffff030000000000000001000000000000000000000000000000010000004cffffff",
    "0b000000",
);

/// Storage compatibility: adding value types must not move the archived layout of the old
/// ones (a wider or more aligned variant would change every stored value's size and make old
/// rows unreadable). The frozen bytes still decode to the same values, and encoding those
/// values today gives the very same bytes.
#[test]
fn rows_of_the_first_format_still_read_exactly() {
    let bytes: Vec<u8> = (0..GOLDEN_ROW_HEX.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&GOLDEN_ROW_HEX[at..at + 2], 16).unwrap())
        .collect();
    let values = golden_values();
    let mut aligned = rkyv::util::AlignedVec::<16>::new();
    aligned.extend_from_slice(&bytes);
    let row = RowView::new(&aligned).unwrap();
    assert_eq!(row.to_values(values.len()), values);
    assert_eq!(encode_row(&values).unwrap(), bytes);
    assert_eq!(std::mem::size_of::<ArchivedValue>(), 16);
    assert_eq!(std::mem::align_of::<ArchivedValue>(), 8);
}
