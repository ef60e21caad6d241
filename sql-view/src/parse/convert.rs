//! sqlparser statements to ours: SELECT over one table, INSERT ... VALUES, UPDATE, DELETE, and
//! the DDL of `ddl.rs`. Every clause we do not run is refused with an `unsupported` error that
//! names it (joins, GROUP BY, DISTINCT, UNION, subqueries, RETURNING, ...), never ignored.

use sqlparser::ast::{AssignmentTarget, Ident};
use sqlparser::ast::{
    Delete as SqlDelete, FromTable, Insert as SqlInsert, ObjectName, Query, SetExpr,
    Statement as SqlStatement, TableFactor, TableObject, TableWithJoins, Update as SqlUpdate,
};
use sqlparser::tokenizer::TokenWithSpan;

use super::cursor::{fold_identifier, position_of};
use super::expr::expr;
use super::{ddl, select};
use crate::ast::{Assignment, Delete, Insert, Statement, TableRef, Update};
use crate::error::{Position, Result, SqlError};
use crate::limits;

/// Converts a statement sqlparser parsed; `tokens` are its significant tokens (for positions
/// and for naming statements we do not run).
pub(crate) fn statement(sql: SqlStatement, tokens: &[TokenWithSpan]) -> Result<Statement> {
    let start = tokens.first().and_then(position_of);
    match &sql {
        SqlStatement::Query(query) => {
            select::select(query, start).map(|s| Statement::Select(Box::new(s)))
        }
        SqlStatement::Insert(insert_statement) => insert(insert_statement, start),
        SqlStatement::Update(update_statement) => update(update_statement, start),
        SqlStatement::Delete(delete_statement) => delete(delete_statement, start),
        SqlStatement::CreateTable(create) => ddl::create_table(create, start),
        SqlStatement::Drop {
            object_type,
            if_exists,
            names,
            ..
        } => ddl::drop(object_type, *if_exists, names, start),
        SqlStatement::AlterTable(alter) => ddl::alter_table(alter, start),
        _ => {
            let head: Vec<String> = tokens
                .iter()
                .take(2)
                .map(|t| t.token.to_string().to_uppercase())
                .collect();
            Err(SqlError::unsupported(
                format!("the statement {}", head.join(" ")),
                start,
            ))
        }
    }
}

pub(crate) fn unsupported(what: &str, position: Option<Position>) -> SqlError {
    SqlError::unsupported(what, position)
}

pub(crate) fn ident_at(ident: &Ident) -> Option<Position> {
    Position::known(ident.span.start.line, ident.span.start.column)
}

/// The one table of a FROM / UPDATE / DELETE, with its alias.
pub(crate) fn single_table(
    tables: &[TableWithJoins],
    start: Option<Position>,
) -> Result<(TableRef, Option<String>)> {
    let [table] = tables else {
        return Err(if tables.is_empty() {
            unsupported("a statement without a table", start)
        } else {
            unsupported("joins (several tables in FROM)", start)
        });
    };
    if !table.joins.is_empty() {
        return Err(unsupported("joins", start));
    }
    table_factor(&table.relation, start)
}

/// A table named in FROM or JOIN, with its alias.
pub(crate) fn table_factor(
    relation: &TableFactor,
    start: Option<Position>,
) -> Result<(TableRef, Option<String>)> {
    match relation {
        TableFactor::Table {
            name,
            alias,
            args: None,
            with_hints,
            version: None,
            ..
        } if with_hints.is_empty() => {
            let alias = match alias {
                Some(alias) if alias.columns.is_empty() => {
                    Some(fold_identifier(&alias.name.value, alias.name.quote_style))
                }
                Some(alias) => return Err(unsupported("column aliases", ident_at(&alias.name))),
                None => None,
            };
            Ok((ddl::table_ref(name)?, alias))
        }
        TableFactor::Derived { .. } => Err(unsupported("subqueries in FROM", start)),
        _ => Err(unsupported("this kind of FROM item", start)),
    }
}

fn insert(sql: &SqlInsert, start: Option<Position>) -> Result<Statement> {
    if sql.or.is_some() || sql.ignore || sql.overwrite || sql.replace_into || sql.by_name {
        return Err(unsupported(
            "INSERT OR / IGNORE / OVERWRITE / REPLACE",
            start,
        ));
    }
    if sql.on.is_some() {
        return Err(unsupported(
            "ON CONFLICT (an INSERT of an existing key replaces it)",
            start,
        ));
    }
    if sql.returning.is_some() || sql.output.is_some() {
        return Err(unsupported("RETURNING", start));
    }
    if sql.partitioned.is_some() || !sql.after_columns.is_empty() || !sql.assignments.is_empty() {
        return Err(unsupported("this form of INSERT", start));
    }
    if sql.table_alias.is_some() || sql.overriding.is_some() {
        return Err(unsupported("INSERT ... AS alias / OVERRIDING", start));
    }
    let TableObject::TableName(name) = &sql.table else {
        return Err(unsupported("INSERT into a table function", start));
    };
    let table = ddl::table_ref(name)?;
    let columns = if sql.columns.is_empty() {
        None
    } else {
        Some(
            sql.columns
                .iter()
                .map(|c| insert_column(c, start))
                .collect::<Result<Vec<_>>>()?,
        )
    };
    let rows = insert_rows(sql.source.as_deref(), start)?;
    Ok(Statement::Insert(Insert {
        table,
        columns,
        rows,
    }))
}

fn insert_column(name: &ObjectName, start: Option<Position>) -> Result<(String, Option<Position>)> {
    match name.0.as_slice() {
        [part] => match part.as_ident() {
            Some(ident) => Ok((
                fold_identifier(&ident.value, ident.quote_style),
                ident_at(ident),
            )),
            None => Err(SqlError::syntax("expected a column name", start)),
        },
        _ => Err(SqlError::syntax(
            format!("expected a column name, found {name}"),
            start,
        )),
    }
}

fn insert_rows(
    source: Option<&Query>,
    start: Option<Position>,
) -> Result<Vec<Vec<crate::ast::Expr>>> {
    let Some(query) = source else {
        return Err(unsupported("INSERT without VALUES", start));
    };
    let SetExpr::Values(values) = query.body.as_ref() else {
        return Err(unsupported("INSERT ... SELECT", start));
    };
    if query.with.is_some() || query.order_by.is_some() || query.limit_clause.is_some() {
        return Err(unsupported("WITH / ORDER BY / LIMIT around VALUES", start));
    }
    if values.rows.len() > limits::ROWS_PER_INSERT_MAX {
        return Err(SqlError::limit(
            "rows per INSERT",
            limits::ROWS_PER_INSERT_MAX,
            start,
        ));
    }
    values
        .rows
        .iter()
        .map(|row| row.content.iter().map(expr).collect::<Result<Vec<_>>>())
        .collect()
}

fn update(sql: &SqlUpdate, start: Option<Position>) -> Result<Statement> {
    if sql.from.is_some() {
        return Err(unsupported("UPDATE ... FROM (joins)", start));
    }
    if sql.returning.is_some() || sql.output.is_some() || sql.or.is_some() {
        return Err(unsupported("RETURNING / UPDATE OR", start));
    }
    if !sql.order_by.is_empty() || sql.limit.is_some() {
        return Err(unsupported("ORDER BY / LIMIT in UPDATE", start));
    }
    let (table, alias) = single_table(std::slice::from_ref(&sql.table), start)?;
    let mut assignments = Vec::with_capacity(sql.assignments.len());
    for assignment in &sql.assignments {
        let AssignmentTarget::ColumnName(name) = &assignment.target else {
            return Err(unsupported("assigning a tuple of columns", start));
        };
        let Some(ident) = name.0.last().and_then(|part| part.as_ident()) else {
            return Err(SqlError::syntax("expected a column name", start));
        };
        assignments.push(Assignment {
            column: fold_identifier(&ident.value, ident.quote_style),
            position: ident_at(ident),
            value: expr(&assignment.value)?,
        });
    }
    let filter = sql.selection.as_ref().map(expr).transpose()?;
    Ok(Statement::Update(Update {
        table,
        alias,
        assignments,
        filter,
    }))
}

fn delete(sql: &SqlDelete, start: Option<Position>) -> Result<Statement> {
    if !sql.tables.is_empty() || sql.using.is_some() {
        return Err(unsupported("DELETE over several tables (joins)", start));
    }
    if sql.returning.is_some() || sql.output.is_some() {
        return Err(unsupported("RETURNING", start));
    }
    if !sql.order_by.is_empty() || sql.limit.is_some() {
        return Err(unsupported("ORDER BY / LIMIT in DELETE", start));
    }
    let tables = match &sql.from {
        FromTable::WithFromKeyword(tables) | FromTable::WithoutKeyword(tables) => tables,
    };
    let (table, alias) = single_table(tables, start)?;
    let filter = sql.selection.as_ref().map(expr).transpose()?;
    Ok(Statement::Delete(Delete {
        table,
        alias,
        filter,
    }))
}
