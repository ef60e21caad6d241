//! CREATE TABLE with the types UUID, DECIMAL(p,s) and DATE, and column DEFAULTs.

use super::*;
use crate::catalog::{ColumnDefault, TableDef};
use crate::decimal::Decimal;
use crate::value::Value;

fn created(sql: &str) -> TableDef {
    match one(sql) {
        Statement::CreateTable { table, .. } => table,
        other => panic!("{sql}: {other:?}"),
    }
}

#[test]
fn new_types_and_their_aliases() {
    let table = created(
        "CREATE TABLE app.t (id UUID PRIMARY KEY, price DECIMAL(10,2), n NUMERIC(5), \
         d DATE, x DEC(38,38))",
    );
    let types: Vec<DataType> = table.columns().iter().map(|c| c.data_type).collect();
    assert_eq!(
        types,
        [
            DataType::Uuid,
            DataType::Decimal {
                precision: 10,
                scale: 2
            },
            DataType::Decimal {
                precision: 5,
                scale: 0
            },
            DataType::Date,
            DataType::Decimal {
                precision: 38,
                scale: 38
            },
        ]
    );
    assert_eq!(types[1].to_string(), "DECIMAL(10,2)");
}

#[test]
fn bad_decimal_types_are_refused_where_they_are() {
    let bare = error("CREATE TABLE app.t (id INT PRIMARY KEY, p DECIMAL)");
    assert_eq!((bare.code, bare.position), (code::UNSUPPORTED, at(1, 41)));
    for sql in [
        "CREATE TABLE app.t (id INT PRIMARY KEY, p DECIMAL(39,2))",
        "CREATE TABLE app.t (id INT PRIMARY KEY, p DECIMAL(0,0))",
        "CREATE TABLE app.t (id INT PRIMARY KEY, p DECIMAL(5,6))",
    ] {
        let bad = error(sql);
        assert_eq!(
            (bad.code, bad.position),
            (code::INVALID_VALUE, at(1, 41)),
            "{sql}"
        );
    }
    let key = error("CREATE TABLE app.t (p DECIMAL(10,2) PRIMARY KEY)");
    assert_eq!(key.code, code::INVALID_DEFINITION);
}

#[test]
fn defaults_are_typed_when_the_table_is_created() {
    let table = created(
        "CREATE TABLE app.t (id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(), \
         at TIMESTAMP NOT NULL DEFAULT now(), at2 TIMESTAMP DEFAULT CURRENT_TIMESTAMP, \
         status TEXT DEFAULT 'open', price DECIMAL(10,2) DEFAULT 1.005, \
         day DATE DEFAULT '2024-05-01', n INT DEFAULT NULL, big BIGINT DEFAULT -5)",
    );
    let defaults: Vec<Option<ColumnDefault>> =
        table.columns().iter().map(|c| c.default.clone()).collect();
    assert_eq!(
        defaults,
        [
            Some(ColumnDefault::SnowflakeId),
            Some(ColumnDefault::Now),
            Some(ColumnDefault::Now),
            Some(ColumnDefault::Value(Value::Text("open".into()))),
            Some(ColumnDefault::Value(Value::Decimal(
                Decimal::new(101, 2).unwrap()
            ))),
            Some(ColumnDefault::Value(Value::Date(19_844))),
            None,
            Some(ColumnDefault::Value(Value::BigInt(-5))),
        ]
    );
}

#[test]
fn bad_defaults_are_errors_at_create_time_with_their_position() {
    // Each error points at the start of the text after `culprit`'s first occurrence.
    let cases = [
        (
            "CREATE TABLE app.t (id INT PRIMARY KEY, d DATE DEFAULT 'soon')",
            "'soon'",
            code::INVALID_VALUE,
        ),
        (
            "CREATE TABLE app.t (id INT PRIMARY KEY, n INT DEFAULT 'x')",
            "'x'",
            code::TYPE_MISMATCH,
        ),
        (
            "CREATE TABLE app.t (id INT PRIMARY KEY, p DECIMAL(3,1) DEFAULT 100)",
            "100",
            code::NUMERIC_OVERFLOW,
        ),
        (
            "CREATE TABLE app.t (id INT PRIMARY KEY, n INT DEFAULT SNOWFLAKE_ID())",
            "SNOWFLAKE",
            code::INVALID_DEFINITION,
        ),
        (
            "CREATE TABLE app.t (id INT PRIMARY KEY, n TEXT DEFAULT now())",
            "now",
            code::INVALID_DEFINITION,
        ),
        (
            "CREATE TABLE app.t (id INT PRIMARY KEY, n INT DEFAULT id)",
            "id)",
            code::UNKNOWN_COLUMN,
        ),
        (
            "CREATE TABLE app.t (id INT PRIMARY KEY, t TIMESTAMP DEFAULT now() + INTERVAL '1 day')",
            "now",
            code::UNSUPPORTED,
        ),
        (
            "CREATE TABLE app.t (id INT PRIMARY KEY, u UUID DEFAULT 'not-a-uuid')",
            "'not",
            code::INVALID_VALUE,
        ),
    ];
    for (sql, culprit, code) in cases {
        let error = error(sql);
        let column = sql.find(culprit).unwrap() as u64 + 1;
        assert_eq!(
            (error.code, error.position),
            (code, at(1, column)),
            "{sql}: {error}"
        );
    }
}

#[test]
fn add_column_with_a_default_is_refused() {
    let error = error("ALTER TABLE app.t ADD COLUMN s TEXT DEFAULT 'x'");
    assert_eq!((error.code, error.position), (code::UNSUPPORTED, at(1, 30)));
}

#[test]
fn catalogs_without_defaults_or_new_types_still_load_and_new_ones_round_trip() {
    let old = r#"{"name":{"namespace":"app","table":"t"},"kind":"Shared",
        "columns":[{"name":"id","data_type":"BIGINT","not_null":true},
                   {"name":"at","data_type":"TIMESTAMP","not_null":false}],
        "primary_key":0}"#;
    let table: TableDef = serde_json::from_str(old).unwrap();
    assert!(table.columns().iter().all(|c| c.default.is_none()));
    let text = serde_json::to_string(&table).unwrap();
    assert!(!text.contains("default"), "{text}");
    let new = created(
        "CREATE TABLE app.t (id UUID PRIMARY KEY, p DECIMAL(10,2) DEFAULT 12.5, \
         d DATE DEFAULT '2024-05-01', j JSON DEFAULT '\"x\"', b BYTES DEFAULT X'00FF', \
         s BIGINT DEFAULT SNOWFLAKE_ID(), t TIMESTAMP DEFAULT now(), \
         u UUID DEFAULT '550e8400-e29b-41d4-a716-446655440000', \
         at TIMESTAMP DEFAULT '2024-05-01T12:00:00.123456Z', f DOUBLE DEFAULT 2.5)",
    );
    let text = serde_json::to_string(&new).unwrap();
    assert!(
        text.contains(
            r#""data_type":"DECIMAL(10,2)","not_null":false,"default":{"value":"12.50"}"#
        ),
        "{text}"
    );
    let back: TableDef = serde_json::from_str(&text).unwrap();
    assert_eq!(back, new);
}
