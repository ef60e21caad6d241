//! `RowView::new` over arbitrary bytes at any alignment, and over real rows with damage:
//! validation ends in `Ok` or `Err`; a view that validates reads every field without
//! panicking; an undamaged row reads back exactly what was encoded.

#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use strand_sql_view::{encode_row, RowView, Value};

#[derive(Arbitrary, Debug)]
enum Field {
    Null,
    Boolean(bool),
    Int(i32),
    BigInt(i64),
    Double(f64),
    Text(String),
    Timestamp(i64),
    Bytes(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Input {
    raw: Vec<u8>,
    fields: Vec<Field>,
    flips: Vec<(u16, u8)>,
    shift: u8,
}

fn value(field: &Field) -> Value {
    match field {
        Field::Null => Value::Null,
        Field::Boolean(v) => Value::Boolean(*v),
        Field::Int(v) => Value::Int(*v),
        Field::BigInt(v) => Value::BigInt(*v),
        Field::Double(v) => Value::Double(*v),
        Field::Text(v) => Value::Text(v.clone()),
        Field::Timestamp(v) => Value::Timestamp(*v),
        Field::Bytes(v) => Value::Bytes(v.clone()),
    }
}

fn read_all(bytes: &[u8], shift: usize) -> Option<Vec<Value>> {
    let mut shifted = vec![0u8; shift];
    shifted.extend_from_slice(bytes);
    let row = RowView::new(&shifted[shift..]).ok()?;
    Some(row.to_values(row.len() + 1))
}

fuzz_target!(|input: Input| {
    let shift = usize::from(input.shift % 8);
    let _ = read_all(&input.raw, shift);
    let values: Vec<Value> = input.fields.iter().map(value).collect();
    let Ok(mut bytes) = encode_row(&values) else {
        return;
    };
    if input.flips.is_empty() {
        let read = read_all(&bytes, shift).expect("an encoded row reads back");
        assert_eq!(read.len(), values.len() + 1);
        for (got, want) in read.iter().zip(&values) {
            match (got, want) {
                (Value::Double(a), Value::Double(b)) => assert_eq!(a.to_bits(), b.to_bits()),
                _ => assert_eq!(got, want),
            }
        }
        return;
    }
    for (at, mask) in &input.flips {
        let len = bytes.len();
        bytes[usize::from(*at) % len] ^= mask;
    }
    let _ = read_all(&bytes, shift);
});
