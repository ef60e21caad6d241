//! Plan tests over a `tickets` table: filters, projections, ORDER BY, keys and writes.

use super::*;

mod aggregates;
mod clock;
mod joins;
mod live_join;
mod new_types;
mod queries;
mod writes;
use crate::ast::Statement;
use crate::catalog::{ColumnDef, Name, TableKind, TableName};
use crate::error::Position;
use crate::parse::parse_statement;
use crate::row::encode_row;

pub(super) const SYSTEM: SystemColumns = SystemColumns {
    seq: 100,
    deleted: false,
    now: 0,
};

pub(super) fn tickets() -> TableDef {
    let column = |name: &str, data_type, not_null| ColumnDef {
        name: Name::new(name).unwrap(),
        data_type,
        not_null,
        default: None,
    };
    let name = TableName {
        namespace: Name::new("app").unwrap(),
        table: Name::new("tickets").unwrap(),
    };
    let columns = vec![
        column("id", DataType::BigInt, true),
        column("title", DataType::Text, true),
        column("priority", DataType::Int, false),
        column("status", DataType::Text, false),
        column("updated_at", DataType::Timestamp, false),
        column("meta", DataType::Json, false),
    ];
    TableDef::new(name, TableKind::User, columns, Some(0)).unwrap()
}

pub(super) fn row(id: i64, title: &str, priority: Option<i32>, status: Option<&str>) -> Vec<Value> {
    vec![
        Value::BigInt(id),
        Value::Text(title.into()),
        priority.map_or(Value::Null, Value::Int),
        status.map_or(Value::Null, |s| Value::Text(s.into())),
        Value::Timestamp(1_700_000_000_000_000),
        Value::Null,
    ]
}

pub(super) fn compile(sql: &str, params: &[Value]) -> Result<Option<Plan>> {
    Plan::compile(&parse_statement(sql)?, &tickets(), params)
}

pub(super) fn select(sql: &str, params: &[Value]) -> SelectPlan {
    match compile(sql, params) {
        Ok(Some(Plan::Select(plan))) => plan,
        other => panic!("{sql}: {other:?}"),
    }
}

pub(super) fn compile_error(sql: &str, params: &[Value]) -> SqlError {
    match compile(sql, params) {
        Err(error) => error,
        Ok(plan) => panic!("{sql}: compiled to {plan:?}"),
    }
}

pub(super) fn matches(sql: &str, params: &[Value], row: &[Value]) -> bool {
    let bytes = encode_row(row).unwrap();
    let view = RowView::new(&bytes).unwrap();
    let plan = select(sql, params);
    let from_view = plan.matches(&view, SYSTEM).unwrap();
    assert_eq!(
        from_view,
        plan.matches(row, SYSTEM).unwrap(),
        "RowView and values agree"
    );
    from_view
}
