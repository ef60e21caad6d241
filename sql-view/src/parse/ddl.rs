//! sqlparser DDL to ours: `CREATE TABLE` (columns, NOT NULL, PRIMARY KEY inline or as a table
//! constraint, `WITH (TYPE = 'USER'|'SHARED'|'STREAM', TTL_SECONDS = n)`; TYPE defaults to
//! SHARED), `DROP TABLE`, `ALTER TABLE ... ADD COLUMN`, and column types. The table
//! definition comes out validated ([`TableDef::new`]); errors point at the offending part.

use sqlparser::ast::{
    AlterTable, AlterTableOperation, ColumnDef as SqlColumnDef, ColumnOption, CreateTable,
    CreateTableOptions, DataType as SqlType, Expr as SqlExpr, Ident, ObjectName, ObjectType,
    SqlOption, TableConstraint, Value as SqlValue,
};

use super::column_types::{column_default, decimal_type};
use super::cursor::fold_identifier;
use super::expr::leftmost_position;
use crate::ast::{Statement, TableRef};
use crate::catalog::{ColumnDef, Name, TableDef, TableKind, TableName};
use crate::error::{code, Position, Result, SqlError};
use crate::value::DataType;

fn at(ident: &Ident) -> Option<Position> {
    Position::known(ident.span.start.line, ident.span.start.column)
}

/// A validated identifier from sqlparser's.
pub(crate) fn name(ident: &Ident) -> Result<Name> {
    Name::new(&fold_identifier(&ident.value, ident.quote_style)).map_err(|e| e.or_at(at(ident)))
}

/// `ns.table`, with the position of its first part.
pub(crate) fn table_ref(object: &ObjectName) -> Result<TableRef> {
    let parts: Vec<&Ident> = object.0.iter().filter_map(|part| part.as_ident()).collect();
    let position = parts.first().and_then(|ident| at(ident));
    match parts.as_slice() {
        [namespace, table] if object.0.len() == 2 => {
            let name = TableName {
                namespace: name(namespace)?,
                table: name(table)?,
            };
            Ok(TableRef { name, position })
        }
        _ => Err(SqlError::new(
            code::INVALID_NAME,
            format!("table name '{object}' must be namespace.table"),
            position,
        )),
    }
}

/// One of our column types from sqlparser's (with the usual aliases).
pub(crate) fn data_type(sql: &SqlType, position: Option<Position>) -> Result<DataType> {
    Ok(match sql {
        SqlType::Bool | SqlType::Boolean => DataType::Boolean,
        SqlType::SmallInt(_) | SqlType::Int(_) | SqlType::Int4(_) | SqlType::Integer(_) => {
            DataType::Int
        }
        SqlType::Int32 => DataType::Int,
        SqlType::BigInt(_) | SqlType::Int8(_) | SqlType::Int64 => DataType::BigInt,
        SqlType::Double(_) | SqlType::DoublePrecision | SqlType::Float8 | SqlType::Float64 => {
            DataType::Double
        }
        SqlType::Float(_) | SqlType::Real => DataType::Double,
        SqlType::Text | SqlType::Varchar(_) | SqlType::CharacterVarying(_) => DataType::Text,
        SqlType::String(_) => DataType::Text,
        SqlType::Timestamp(..) | SqlType::TimestampNtz(_) => DataType::Timestamp,
        SqlType::JSON | SqlType::JSONB => DataType::Json,
        SqlType::Bytes(_) | SqlType::Bytea | SqlType::Blob(_) => DataType::Bytes,
        SqlType::Uuid => DataType::Uuid,
        SqlType::Date => DataType::Date,
        SqlType::Decimal(info) | SqlType::Numeric(info) | SqlType::Dec(info) => {
            decimal_type(info, position)?
        }
        SqlType::Custom(custom, modifiers) if modifiers.is_empty() => {
            match custom.to_string().to_ascii_lowercase().as_str() {
                "bytes" => DataType::Bytes,
                "json" => DataType::Json,
                "timestamptz" => DataType::Timestamp,
                "double" => DataType::Double,
                "uuid" => DataType::Uuid,
                _ => return Err(unknown_type(sql, position)),
            }
        }
        other => return Err(unknown_type(other, position)),
    })
}

fn unknown_type(sql: &SqlType, position: Option<Position>) -> SqlError {
    SqlError::unsupported(
        format!(
            "the type {sql} (use BOOLEAN, INT, BIGINT, DOUBLE, DECIMAL(p,s), TEXT, TIMESTAMP, \
             DATE, UUID, JSON or BYTES)"
        ),
        position,
    )
}

/// `CREATE TABLE` as a validated definition.
pub(crate) fn create_table(create: &CreateTable, start: Option<Position>) -> Result<Statement> {
    if create.or_replace || create.temporary || create.external {
        return Err(SqlError::unsupported(
            "CREATE OR REPLACE / TEMPORARY / EXTERNAL",
            start,
        ));
    }
    if create.query.is_some() || create.like.is_some() || create.clone.is_some() {
        return Err(SqlError::unsupported(
            "CREATE TABLE ... AS / LIKE / CLONE",
            start,
        ));
    }
    let table = table_ref(&create.name)?;
    let mut columns = Vec::with_capacity(create.columns.len());
    let mut primary_key = None;
    for (index, sql_column) in create.columns.iter().enumerate() {
        let (column, is_key) = column_def(sql_column)?;
        if is_key {
            set_primary_key(&mut primary_key, index, at(&sql_column.name))?;
        }
        columns.push(column);
    }
    for constraint in &create.constraints {
        let index = constraint_key(constraint, &columns, start)?;
        set_primary_key(&mut primary_key, index, start)?;
    }
    let kind = table_kind(&create.table_options, start)?;
    let table =
        TableDef::new(table.name, kind, columns, primary_key).map_err(|e| e.or_at(start))?;
    Ok(Statement::CreateTable {
        table,
        if_not_exists: create.if_not_exists,
    })
}

fn set_primary_key(key: &mut Option<usize>, index: usize, at: Option<Position>) -> Result<()> {
    if key.is_some() {
        let what = "more than one PRIMARY KEY (composite keys)";
        return Err(SqlError::unsupported(what, at));
    }
    *key = Some(index);
    Ok(())
}

/// A column and whether it is declared `PRIMARY KEY` inline.
fn column_def(sql: &SqlColumnDef) -> Result<(ColumnDef, bool)> {
    let position = at(&sql.name);
    let data_type = data_type(&sql.data_type, position)?;
    let (mut not_null, mut primary_key, mut default) = (false, false, None);
    let column_name = name(&sql.name)?;
    for option in &sql.options {
        match &option.option {
            ColumnOption::NotNull => not_null = true,
            ColumnOption::Null => not_null = false,
            ColumnOption::PrimaryKey(_) => primary_key = true,
            ColumnOption::Default(expr) => {
                default = column_default(expr, column_name.as_str(), data_type)?;
            }
            other => {
                return Err(SqlError::unsupported(
                    format!("the column option {other}"),
                    position,
                ))
            }
        }
    }
    Ok((
        ColumnDef {
            name: column_name,
            data_type,
            not_null,
            default,
        },
        primary_key,
    ))
}

/// The column index of a table-level `PRIMARY KEY (column)`.
fn constraint_key(
    constraint: &TableConstraint,
    columns: &[ColumnDef],
    start: Option<Position>,
) -> Result<usize> {
    let TableConstraint::PrimaryKey(key) = constraint else {
        let what = format!("the table constraint {constraint}");
        return Err(SqlError::unsupported(what, start));
    };
    let [column] = key.columns.as_slice() else {
        return Err(SqlError::unsupported("a composite PRIMARY KEY", start));
    };
    let SqlExpr::Identifier(ident) = &column.column.expr else {
        return Err(SqlError::syntax("PRIMARY KEY takes a column name", start));
    };
    let wanted = fold_identifier(&ident.value, ident.quote_style);
    columns
        .iter()
        .position(|c| c.name.as_str() == wanted)
        .ok_or_else(|| {
            SqlError::new(
                code::UNKNOWN_COLUMN,
                format!("PRIMARY KEY names column {wanted}, which the table does not have"),
                at(ident),
            )
        })
}

/// The table type from `WITH (TYPE = ..., TTL_SECONDS = n)`.
fn table_kind(options: &CreateTableOptions, start: Option<Position>) -> Result<TableKind> {
    let options: &[SqlOption] = match options {
        CreateTableOptions::None => &[],
        CreateTableOptions::With(options) => options,
        _ => {
            return Err(SqlError::unsupported(
                "table options other than WITH (...)",
                start,
            ))
        }
    };
    let (mut kind, mut ttl) = (None, None);
    for option in options {
        let SqlOption::KeyValue { key, value } = option else {
            return Err(SqlError::unsupported(
                format!("the table option {option}"),
                start,
            ));
        };
        let position = leftmost_position(value);
        match key.to_string().to_ascii_uppercase().as_str() {
            "TYPE" => kind = Some((option_text(value, position)?, position)),
            "TTL_SECONDS" => ttl = Some(option_number(value, position)?),
            other => {
                return Err(SqlError::unsupported(
                    format!("the table option {other}"),
                    position,
                ))
            }
        }
    }
    let (kind_text, kind_position) = kind.unwrap_or_else(|| ("SHARED".to_owned(), start));
    match (kind_text.to_ascii_uppercase().as_str(), ttl) {
        ("USER", None) => Ok(TableKind::User),
        ("SHARED", None) => Ok(TableKind::Shared),
        ("STREAM", Some(ttl_seconds)) => Ok(TableKind::Stream { ttl_seconds }),
        ("STREAM", None) => Err(invalid(
            "a STREAM table needs TTL_SECONDS = n",
            kind_position,
        )),
        ("USER" | "SHARED", Some(_)) => Err(invalid(
            "TTL_SECONDS applies only to STREAM tables",
            kind_position,
        )),
        (other, _) => Err(invalid(
            &format!("unknown table TYPE '{other}': use USER, SHARED or STREAM"),
            kind_position,
        )),
    }
}

fn invalid(message: &str, position: Option<Position>) -> SqlError {
    SqlError::new(code::INVALID_DEFINITION, message, position)
}

fn option_text(value: &SqlExpr, position: Option<Position>) -> Result<String> {
    match value {
        SqlExpr::Value(v) => match &v.value {
            SqlValue::SingleQuotedString(text) => Ok(text.clone()),
            _ => Err(SqlError::syntax("expected a quoted table type", position)),
        },
        SqlExpr::Identifier(ident) => Ok(ident.value.clone()),
        _ => Err(SqlError::syntax("expected a quoted table type", position)),
    }
}

fn option_number(value: &SqlExpr, position: Option<Position>) -> Result<u64> {
    match value {
        SqlExpr::Value(v) => match &v.value {
            SqlValue::Number(text, _) => text.parse::<u64>().map_err(|_| {
                SqlError::new(
                    code::INVALID_VALUE,
                    format!("'{text}' is not a whole number"),
                    position,
                )
            }),
            _ => Err(SqlError::syntax("expected a number", position)),
        },
        _ => Err(SqlError::syntax("expected a number", position)),
    }
}

/// `DROP TABLE [IF EXISTS] ns.t` (other DROPs are not ours).
pub(crate) fn drop(
    object_type: &ObjectType,
    if_exists: bool,
    names: &[ObjectName],
    start: Option<Position>,
) -> Result<Statement> {
    if *object_type != ObjectType::Table {
        return Err(SqlError::unsupported(format!("DROP {object_type}"), start));
    }
    match names {
        [object] => Ok(Statement::DropTable {
            table: table_ref(object)?,
            if_exists,
        }),
        _ => Err(SqlError::unsupported(
            "dropping several tables in one statement",
            start,
        )),
    }
}

/// `ALTER TABLE ns.t ADD [COLUMN] [IF NOT EXISTS] c TYPE`, the one ALTER TABLE we run.
pub(crate) fn alter_table(alter: &AlterTable, start: Option<Position>) -> Result<Statement> {
    let table = table_ref(&alter.name)?;
    let [AlterTableOperation::AddColumn {
        if_not_exists,
        column_def: sql,
        column_position,
        ..
    }] = alter.operations.as_slice()
    else {
        let what = "ALTER TABLE other than one ADD COLUMN";
        return Err(SqlError::unsupported(what, start));
    };
    if column_position.is_some() {
        return Err(SqlError::unsupported(
            "FIRST / AFTER (columns are appended)",
            start,
        ));
    }
    let (column, primary_key) = column_def(sql)?;
    if primary_key {
        return Err(SqlError::unsupported(
            "adding a PRIMARY KEY column",
            at(&sql.name),
        ));
    }
    if column.not_null {
        return Err(invalid(
            "an added column cannot be NOT NULL: existing rows read it as NULL",
            at(&sql.name),
        ));
    }
    if column.default.is_some() {
        let what = "ADD COLUMN with a DEFAULT (rows written before it would read NULL, not \
                    the default): add the column without one";
        return Err(SqlError::unsupported(what, at(&sql.name)));
    }
    Ok(Statement::AddColumn {
        table,
        column,
        if_not_exists: *if_not_exists,
    })
}
