//! `parse_statements` over arbitrary text, then compiling and running every statement that
//! parses against a small table: each step ends in `Ok` or `Err`, never a panic, a hang or a
//! stack overflow (the limits of `limits.rs` bound the text, operator chains and nesting).

#![no_main]

use libfuzzer_sys::fuzz_target;
use strand_sql_view::{
    parse_statements, ColumnDef, DataType, Name, Plan, SystemColumns, TableDef, TableKind,
    TableName, Value,
};

fn table() -> Option<TableDef> {
    let column = |name: &str, data_type| {
        Some(ColumnDef {
            name: Name::new(name).ok()?,
            data_type,
            not_null: false,
            default: None,
        })
    };
    let name = TableName {
        namespace: Name::new("app").ok()?,
        table: Name::new("t").ok()?,
    };
    let columns = vec![
        column("a", DataType::BigInt)?,
        column("b", DataType::Text)?,
        column("c", DataType::Double)?,
    ];
    TableDef::new(name, TableKind::Shared, columns, Some(0)).ok()
}

fuzz_target!(|data: &[u8]| {
    let Ok(sql) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(statements) = parse_statements(sql) else {
        return;
    };
    let Some(table) = table() else {
        return;
    };
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
});
