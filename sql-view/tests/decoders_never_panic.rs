//! The decoders of outside input never panic (mirrors the cargo-fuzz targets in
//! `sql-view/fuzz`, so plain `cargo test` covers them): `parse_statements` over arbitrary
//! text and over soups of SQL tokens, compiling whatever parses against a table, and
//! `RowView` over arbitrary and damaged row bytes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use strand_sql_view::{
    encode_row, parse_statements, ColumnDef, DataType, Name, Plan, RowView, SystemColumns,
    TableDef, TableKind, TableName, Value,
};

const WORDS: &[&str] = &[
    "SELECT",
    "*",
    "FROM",
    "app.t",
    "WHERE",
    "a",
    "b",
    "_seq",
    "_deleted",
    "=",
    "<>",
    "<",
    ">=",
    "AND",
    "OR",
    "NOT",
    "IN",
    "(",
    ")",
    ",",
    "BETWEEN",
    "LIKE",
    "IS",
    "NULL",
    "$1",
    "$2",
    "1",
    "-2.5e3",
    "'x%'",
    "X'0f'",
    "ORDER",
    "BY",
    "DESC",
    "LIMIT",
    "OFFSET",
    "INSERT",
    "INTO",
    "VALUES",
    "UPDATE",
    "SET",
    "DELETE",
    "CREATE",
    "TABLE",
    "NAMESPACE",
    "USER",
    "WITH",
    "TYPE",
    "'USER'",
    "PRIMARY",
    "KEY",
    "INT",
    "TEXT",
    "EXECUTE",
    "AS",
    "GRANT",
    "ON",
    "TO",
    "SHOW",
    "DESCRIBE",
    "CAST",
    "::",
    "||",
    "+",
    "/",
    "%",
    ";",
    "'",
    "\"",
    "--",
    "/*",
    "\n",
    "é",
];

const TEMPLATES: &[&str] = &[
    "SELECT a , b AS x , c + 1 FROM app.t WHERE a = $1 AND b LIKE 'x%' ORDER BY a DESC LIMIT 3",
    "SELECT * FROM app.t WHERE a IN ( 1 , 2 ) OR c BETWEEN -1 AND 2.5 OR b IS NOT NULL",
    "INSERT INTO app.t ( a , b ) VALUES ( 1 , 'x' ) , ( $1 , NULL )",
    "UPDATE app.t SET b = b || 'y' , c = c * 2 WHERE NOT ( c IS NULL ) AND _seq > 5",
    "DELETE FROM app.t WHERE a <> 3 AND _deleted = FALSE",
    "CREATE TABLE app.u ( id BIGINT PRIMARY KEY , t TEXT NOT NULL ) WITH ( TYPE = 'USER' )",
    "EXECUTE AS USER 'al' ( SELECT * FROM app.t WHERE a = CAST ( '5' AS BIGINT ) )",
    "GRANT SELECT , INSERT ON app.t TO 'al' ; CREATE USER 'al' WITH PASSWORD 'p' ROLE dba",
];

fn table() -> TableDef {
    let column = |name: &str, data_type| ColumnDef {
        name: Name::new(name).unwrap(),
        data_type,
        not_null: false,
        default: None,
    };
    let name = TableName {
        namespace: Name::new("app").unwrap(),
        table: Name::new("t").unwrap(),
    };
    let columns = vec![
        column("a", DataType::BigInt),
        column("b", DataType::Text),
        column("c", DataType::Double),
    ];
    TableDef::new(name, TableKind::Shared, columns, Some(0)).unwrap()
}

/// Parses, and compiles and runs what parses: only `Ok` or `Err`, never a panic.
fn exercise(sql: &str) {
    let Ok(statements) = parse_statements(sql) else {
        return;
    };
    let table = table();
    let params = [Value::BigInt(1), Value::Text("x".into())];
    let row = vec![
        Value::BigInt(1),
        Value::Text("x".into()),
        Value::Double(0.5),
    ];
    let system = SystemColumns {
        seq: 1,
        deleted: false,
        now: 0,
    };
    for statement in &statements {
        match Plan::compile(statement, &table, &params) {
            Ok(Some(Plan::Select(plan))) => {
                let _ = plan.matches(&row, system);
                let _ = plan.project(&row, system);
                let _ = plan.filter().key_values();
            }
            Ok(Some(Plan::Update(plan))) => {
                let _ = plan.apply(&row, system);
            }
            _ => {}
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(sql in "\\PC{0,80}") {
        exercise(&sql);
    }

    #[test]
    fn token_soup_never_panics(words in prop::collection::vec(prop::sample::select(WORDS), 0..40)) {
        exercise(&words.join(" "));
    }

    #[test]
    fn edited_statements_never_panic(
        template in prop::sample::select(TEMPLATES),
        edits in prop::collection::vec((any::<usize>(), 0u8..4, prop::sample::select(WORDS)), 0..4),
    ) {
        let mut tokens: Vec<&str> = template.split(' ').collect();
        for (at, edit, word) in edits {
            let at = at % (tokens.len() + 1);
            match edit {
                0 if at < tokens.len() => { tokens.remove(at); }
                1 => tokens.insert(at, word),
                2 if at < tokens.len() => tokens[at] = word,
                _ => tokens.insert(at, tokens.get(at).copied().unwrap_or(word)),
            }
        }
        exercise(&tokens.join(" "));
    }

    #[test]
    fn garbage_row_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..256),
        shift in 0usize..8,
    ) {
        let mut shifted = vec![0u8; shift];
        shifted.extend_from_slice(&bytes);
        if let Ok(row) = RowView::new(&shifted[shift..]) {
            let _ = row.to_values(4);
        }
    }

    #[test]
    fn damaged_rows_never_panic(
        texts in prop::collection::vec(".{0,8}", 0..5),
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
    ) {
        let values: Vec<Value> = texts.into_iter().map(Value::Text).collect();
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
}
