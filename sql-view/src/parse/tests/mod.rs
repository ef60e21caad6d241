//! Parser tests: every statement form, and errors with their positions.

use super::*;

mod ddl;
mod literal_insert;
mod prescan;
mod queries;
mod types_and_defaults;
use crate::ast::*;
use crate::catalog::{TableKind, TableName};
use crate::users::{Privilege, Role};
use crate::value::DataType;

pub(super) fn one(sql: &str) -> Statement {
    match parse_statement(sql) {
        Ok(statement) => statement,
        Err(error) => panic!("{sql}: {error}"),
    }
}

pub(super) fn error(sql: &str) -> SqlError {
    match parse_statements(sql) {
        Ok(statements) => panic!("{sql}: parsed as {statements:?}"),
        Err(error) => error,
    }
}

pub(super) fn at(line: u64, column: u64) -> Option<Position> {
    Position::known(line, column)
}

pub(super) fn table(namespace: &str, table: &str) -> TableName {
    TableName {
        namespace: crate::catalog::Name::new(namespace).unwrap(),
        table: crate::catalog::Name::new(table).unwrap(),
    }
}
