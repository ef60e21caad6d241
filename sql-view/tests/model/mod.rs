//! The model of `plan_matches_reference`: random tables, rows and WHERE trees (`Pred`), their
//! SQL rendering (`render.rs`) and the reference interpreter (`reference.rs`).

pub mod reference;
pub mod render;

use proptest::prelude::*;
use strand_sql_view::{
    ColumnDef, DataType, Name, SystemColumns, TableDef, TableKind, TableName, Value,
};

const TYPES: [DataType; 8] = [
    DataType::Boolean,
    DataType::Int,
    DataType::BigInt,
    DataType::Double,
    DataType::Text,
    DataType::Timestamp,
    DataType::Json,
    DataType::Bytes,
];

/// Raw material for one value of any type.
#[derive(Debug, Clone)]
pub struct Seed {
    pub int: i64,
    pub double: f64,
    pub text: String,
    pub bytes: Vec<u8>,
    pub flag: bool,
    pub kind: u8,
}

fn seed() -> impl Strategy<Value = Seed> {
    let int = prop_oneof![3 => -3i64..4, 1 => any::<i64>(), 1 => any::<i32>().prop_map(i64::from)];
    let double = prop_oneof![
        (-6i32..6).prop_map(|v| f64::from(v) / 2.0),
        -1e300f64..1e300
    ];
    (
        int,
        double,
        "[ab%_é']{0,5}",
        prop::collection::vec(0u8..3, 0..3),
        any::<bool>(),
        0u8..8,
    )
        .prop_map(|(int, double, text, bytes, flag, kind)| Seed {
            int,
            double,
            text,
            bytes,
            flag,
            kind,
        })
}

const TIMESTAMP_MAX: i64 = 253_402_300_799_999_999;

/// A value of column type `data_type` from the seed (never NULL).
fn stored(data_type: DataType, seed: &Seed) -> Value {
    match data_type {
        DataType::Boolean => Value::Boolean(seed.flag),
        DataType::Int => Value::Int(seed.int as i32),
        DataType::BigInt => Value::BigInt(seed.int),
        DataType::Double => Value::Double(seed.double),
        DataType::Text => Value::Text(seed.text.clone()),
        DataType::Timestamp => Value::Timestamp(seed.int.rem_euclid(TIMESTAMP_MAX)),
        DataType::Json => Value::Json(format!("[{}]", seed.int)),
        DataType::Bytes => Value::Bytes(seed.bytes.clone()),
        // Not in TYPES (the reference evaluator models the first eight types only).
        DataType::Uuid => Value::Uuid(i128::from(seed.int).to_le_bytes()),
        DataType::Decimal { .. } => Value::Decimal(strand_sql_view::Decimal::from_i64(seed.int)),
        DataType::Date => Value::Date(seed.int.rem_euclid(2_932_897) as i32),
    }
}

/// A constant to compare with a column of `data_type`: numbers of any numeric type, else the
/// same type; sometimes NULL.
fn constant(data_type: DataType, seed: &Seed) -> Value {
    if seed.kind == 7 {
        return Value::Null;
    }
    match (data_type, seed.kind % 3) {
        (DataType::Int | DataType::BigInt | DataType::Double, 0) => Value::Int(seed.int as i32),
        (DataType::Int | DataType::BigInt | DataType::Double, 1) => Value::BigInt(seed.int),
        (DataType::Int | DataType::BigInt | DataType::Double, _) => Value::Double(seed.double),
        (other, _) => stored(other, seed),
    }
}

#[derive(Debug, Clone)]
pub enum Operand {
    Column(usize),
    Seq,
    /// A literal (rendered in the SQL text) or a parameter.
    Constant {
        value: Value,
        parameter: bool,
    },
    Arith {
        op: char,
        column: usize,
        value: Value,
    },
}

#[derive(Debug, Clone)]
pub enum Pred {
    Compare(&'static str, Operand, Operand),
    InList(Operand, Vec<Value>, bool),
    Between(Operand, Value, Value, bool),
    Like(usize, String, bool),
    IsNull(Operand, bool),
    BoolColumn(usize),
    Deleted,
    Const(Option<bool>),
    Not(Box<Pred>),
    And(Vec<Pred>),
    Or(Vec<Pred>),
}

const OPS: [&str; 6] = ["=", "<>", "<", "<=", ">", ">="];

fn atom(types: Vec<DataType>) -> impl Strategy<Value = Pred> {
    let n = types.len();
    (
        0..n,
        0..n,
        0u8..12,
        seed(),
        seed(),
        "[ab%_]{0,4}",
        any::<bool>(),
    )
        .prop_map(move |(i, j, shape, a, b, pattern, flag)| {
            build_atom(&types, i, j, shape, &a, &b, pattern, flag)
        })
}

#[allow(clippy::too_many_arguments)]
fn build_atom(
    types: &[DataType],
    i: usize,
    j: usize,
    shape: u8,
    a: &Seed,
    b: &Seed,
    pattern: String,
    flag: bool,
) -> Pred {
    let (ti, tj) = (types[i], types[j]);
    let op = OPS[usize::from(a.kind) % OPS.len()];
    let constant_of = |t, s: &Seed| Operand::Constant {
        value: constant(t, s),
        parameter: s.flag,
    };
    if ti == DataType::Json {
        return Pred::IsNull(Operand::Column(i), flag);
    }
    match shape {
        0 | 1 => Pred::Compare(op, Operand::Column(i), constant_of(ti, a)),
        2 => Pred::Compare(op, constant_of(ti, a), Operand::Column(i)),
        3 if ti == tj || (ti.is_numeric() && tj.is_numeric()) => {
            Pred::Compare(op, Operand::Column(i), Operand::Column(j))
        }
        3..=5 if ti.is_numeric() => {
            let arith_op = ['+', '-', '*', '/', '%'][usize::from(b.kind) % 5];
            let value = constant(ti, b);
            Pred::Compare(
                op,
                Operand::Arith {
                    op: arith_op,
                    column: i,
                    value,
                },
                constant_of(ti, a),
            )
        }
        6 => {
            let list = [a, b].iter().map(|s| constant(ti, s)).collect();
            Pred::InList(Operand::Column(i), list, flag)
        }
        7 => Pred::Between(Operand::Column(i), constant(ti, a), constant(ti, b), flag),
        8 if ti == DataType::Text => Pred::Like(i, pattern, flag),
        8 | 9 => Pred::IsNull(Operand::Column(i), flag),
        10 if ti == DataType::Boolean => Pred::BoolColumn(i),
        10 => Pred::Compare(op, Operand::Seq, constant_of(DataType::BigInt, a)),
        11 if flag => Pred::Deleted,
        11 => Pred::Const([Some(true), Some(false), None][usize::from(a.kind) % 3]),
        _ => Pred::Compare(op, Operand::Column(i), constant_of(ti, a)),
    }
}

fn pred(types: Vec<DataType>) -> impl Strategy<Value = Pred> {
    atom(types).prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|p| Pred::Not(Box::new(p))),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Pred::And),
            prop::collection::vec(inner, 2..4).prop_map(Pred::Or),
        ]
    })
}

#[derive(Debug, Clone)]
pub struct Case {
    pub table: TableDef,
    pub rows: Vec<(Vec<Value>, SystemColumns)>,
    pub pred: Pred,
}

pub fn case() -> impl Strategy<Value = Case> {
    let types = prop::collection::vec(prop::sample::select(TYPES.to_vec()), 1..6);
    (types, any::<bool>()).prop_flat_map(|(types, keyed)| {
        let keyed = keyed && matches!(types[0], DataType::Int | DataType::BigInt | DataType::Text);
        let table = table(&types, keyed);
        let n = types.len();
        let row = (
            prop::collection::vec((seed(), 0u8..4), n),
            1..=n,
            any::<i64>(),
            any::<bool>(),
        );
        let rows = prop::collection::vec(row, 1..8);
        let row_types = types.clone();
        (Just(table), rows, pred(types)).prop_map(move |(table, raw, pred)| {
            let rows = raw
                .into_iter()
                .map(|(fields, stored_len, seq, deleted)| {
                    let values = fields
                        .iter()
                        .zip(&row_types)
                        .enumerate()
                        .map(|(i, ((s, null), t))| {
                            if *null == 0 && !(keyed && i == 0) {
                                Value::Null
                            } else {
                                stored(*t, s)
                            }
                        })
                        .take(stored_len)
                        .collect();
                    (
                        values,
                        SystemColumns {
                            seq: seq.abs(),
                            deleted,
                            now: 0,
                        },
                    )
                })
                .collect();
            Case {
                table: table.clone(),
                rows,
                pred,
            }
        })
    })
}

fn table(types: &[DataType], keyed: bool) -> TableDef {
    let name = TableName {
        namespace: Name::new("app").unwrap(),
        table: Name::new("t").unwrap(),
    };
    let columns = types
        .iter()
        .enumerate()
        .map(|(i, t)| ColumnDef {
            name: Name::new(&format!("c{i}")).unwrap(),
            data_type: *t,
            not_null: false,
            default: None,
        })
        .collect();
    let (kind, key) = if keyed {
        (TableKind::Shared, Some(0))
    } else {
        (TableKind::Stream { ttl_seconds: 60 }, None)
    };
    TableDef::new(name, kind, columns, key).unwrap()
}
