//! Plans that write: [`InsertPlan`] (rows as full values in table column order, coerced,
//! NOT NULL checked, ready to encode), [`UpdatePlan`] (filter and assignments evaluated against
//! the old row) and [`DeletePlan`] (filter), plus the WHERE compilation they share with SELECT.

use std::sync::Arc;

use super::compile::{Scope, Source};
use super::constants::coerce_constant;
use super::defaults::RowDefaults;
use super::node::Node;
use super::{resolve_table, Filter, RowFields, SystemColumns};
use crate::ast::{Delete, Expr, Insert, Update};
use crate::catalog::{CatalogView, ColumnDef, TableDef, DELETED_COLUMN, SEQ_COLUMN};
use crate::error::{code, Position, Result, SqlError};
use crate::value::{DataType, Value, ValueRef};

/// Compiles an optional WHERE into a [`Filter`] (a BOOLEAN condition).
pub(crate) fn compile_filter(
    scope: &Scope<'_>,
    filter: Option<&Expr>,
    table: &TableDef,
) -> Result<Filter> {
    let node = match filter {
        None => None,
        Some(expr) => match scope.condition(expr, "WHERE")? {
            Node::Const(Value::Boolean(true)) => None,
            node => Some(node),
        },
    };
    let primary_key = table
        .primary_key()
        .map(|index| (index, table.columns()[index].data_type));
    Ok(Filter { node, primary_key })
}

fn system_column_error(name: &str, position: Option<Position>) -> Option<SqlError> {
    (name == SEQ_COLUMN || name == DELETED_COLUMN).then(|| {
        SqlError::new(
            code::INVALID_VALUE,
            format!("system column {name} is set by the server and cannot be written"),
            position,
        )
    })
}

fn not_null_error(column: &ColumnDef, position: Option<Position>) -> SqlError {
    SqlError::new(
        code::NOT_NULL_VIOLATION,
        format!("column {} is NOT NULL and got no value", column.name),
        position,
    )
}

/// A compiled INSERT: every row complete, in table column order, except for the
/// `SNOWFLAKE_ID()` defaults, which the broker fills ([`InsertPlan::fill_ids`]).
#[derive(Debug, Clone)]
pub struct InsertPlan {
    table: Arc<TableDef>,
    rows: Vec<Vec<Value>>,
    /// `(row, column)` of every `SNOWFLAKE_ID()` default to fill, in row order.
    id_slots: Vec<(usize, usize)>,
}

impl InsertPlan {
    /// Compiles an INSERT: values are constants (literals, parameters, constant expressions)
    /// coerced to their column's type; omitted columns get their DEFAULT, else NULL; NOT
    /// NULL is checked (a `SNOWFLAKE_ID()` default counts as a value).
    pub fn compile(
        insert: &Insert,
        catalog: &dyn CatalogView,
        params: &[Value],
    ) -> Result<InsertPlan> {
        let table = resolve_table(&insert.table, catalog)?;
        let targets = insert_targets(insert, &table)?;
        let scope = Scope {
            table: None,
            alias: None,
            params,
            reads_clock: std::cell::Cell::new(false),
            sources: &[],
            live_clock: false,
        };
        let defaults = RowDefaults::new();
        let mut id_slots = Vec::new();
        let mut rows = Vec::with_capacity(insert.rows.len());
        for exprs in &insert.rows {
            if exprs.len() != targets.len() {
                return Err(SqlError::syntax(
                    format!(
                        "INSERT row has {} values for {} columns",
                        exprs.len(),
                        targets.len()
                    ),
                    exprs
                        .first()
                        .and_then(|e| e.position)
                        .or(insert.table.position),
                ));
            }
            let mut row = vec![Value::Null; table.columns().len()];
            for (expr, &index) in exprs.iter().zip(&targets) {
                let column = &table.columns()[index];
                let typed = coerce_constant(scope.compile(expr)?, column.data_type)?;
                let Node::Const(value) = typed.node else {
                    return Err(SqlError::type_mismatch(
                        "expected a constant",
                        expr.position,
                    ));
                };
                if value.is_null() && column.not_null {
                    return Err(not_null_error(column, expr.position));
                }
                row[index] = value;
            }
            let ids = defaults.apply(&table, &targets, &mut row);
            if let Some(missing) = table
                .columns()
                .iter()
                .enumerate()
                .find(|(i, c)| c.not_null && row[*i].is_null() && !ids.contains(i))
            {
                return Err(not_null_error(missing.1, insert.table.position));
            }
            id_slots.extend(ids.into_iter().map(|column| (rows.len(), column)));
            rows.push(row);
        }
        Ok(InsertPlan {
            table,
            rows,
            id_slots,
        })
    }

    /// How many Snowflake ids the rows' `SNOWFLAKE_ID()` defaults need.
    pub fn ids_needed(&self) -> usize {
        self.id_slots.len()
    }

    /// Fills the `SNOWFLAKE_ID()` defaults with `ids` (as many as [`InsertPlan::ids_needed`],
    /// drawn from the broker's `_seq` generator), in row order.
    pub fn fill_ids(&mut self, ids: &[i64]) {
        assert_eq!(
            ids.len(),
            self.id_slots.len(),
            "one id per SNOWFLAKE_ID() slot"
        );
        for (&(row, column), &id) in self.id_slots.iter().zip(ids) {
            self.rows[row][column] = Value::BigInt(id);
        }
    }

    /// The table written.
    pub fn table(&self) -> &Arc<TableDef> {
        &self.table
    }

    /// The rows, each with one value per table column.
    pub fn rows(&self) -> &[Vec<Value>] {
        &self.rows
    }

    /// The rows, owned.
    pub fn into_rows(self) -> Vec<Vec<Value>> {
        self.rows
    }

    /// The primary key value of one of the rows (never NULL), if the table has a key.
    pub fn primary_key<'r>(&self, row: &'r [Value]) -> Option<&'r Value> {
        row.get(self.table.primary_key()?)
    }
}

/// Column indexes an INSERT writes, in the order of its values.
fn insert_targets(insert: &Insert, table: &TableDef) -> Result<Vec<usize>> {
    let Some(columns) = &insert.columns else {
        return Ok((0..table.columns().len()).collect());
    };
    let mut targets = Vec::with_capacity(columns.len());
    for (name, position) in columns {
        if let Some(error) = system_column_error(name, *position) {
            return Err(error);
        }
        let index = table.column_index(name).ok_or_else(|| {
            SqlError::new(
                code::UNKNOWN_COLUMN,
                format!("column {name} does not exist in table {}", table.name()),
                *position,
            )
        })?;
        if targets.contains(&index) {
            return Err(SqlError::syntax(
                format!("column {name} is listed twice"),
                *position,
            ));
        }
        targets.push(index);
    }
    Ok(targets)
}

/// One compiled `SET column = expr`.
#[derive(Debug, Clone)]
struct SetColumn {
    index: usize,
    node: Node,
    position: Option<Position>,
}

/// A compiled UPDATE.
#[derive(Debug, Clone)]
pub struct UpdatePlan {
    table: Arc<TableDef>,
    filter: Filter,
    assignments: Vec<SetColumn>,
}

impl UpdatePlan {
    /// Compiles an UPDATE. The primary key and system columns cannot be assigned; values must
    /// have the column's type (numbers may widen or narrow, checked per row).
    pub fn compile(
        update: &Update,
        catalog: &dyn CatalogView,
        params: &[Value],
    ) -> Result<UpdatePlan> {
        let table = resolve_table(&update.table, catalog)?;
        let scope = Scope {
            table: Some(&table),
            alias: update.alias.as_deref(),
            params,
            reads_clock: std::cell::Cell::new(false),
            sources: &[],
            live_clock: false,
        };
        let filter = compile_filter(&scope, update.filter.as_ref(), &table)?;
        let mut assignments: Vec<SetColumn> = Vec::with_capacity(update.assignments.len());
        for assignment in &update.assignments {
            let (name, position) = (&assignment.column, assignment.position);
            if let Some(error) = system_column_error(name, position) {
                return Err(error);
            }
            let Some(index) = table.column_index(name) else {
                let message = format!("column {name} does not exist in table {}", table.name());
                return Err(SqlError::new(code::UNKNOWN_COLUMN, message, position));
            };
            if table.primary_key() == Some(index) {
                let what = "changing the primary key (delete the row and insert a new one)";
                return Err(SqlError::unsupported(what, position));
            }
            if assignments.iter().any(|a| a.index == index) {
                return Err(SqlError::syntax(
                    format!("column {name} is assigned twice"),
                    position,
                ));
            }
            let node = assigned_node(&scope, &assignment.value, &table.columns()[index])?;
            assignments.push(SetColumn {
                index,
                node,
                position,
            });
        }
        Ok(UpdatePlan {
            table,
            filter,
            assignments,
        })
    }

    /// The table written.
    pub fn table(&self) -> &Arc<TableDef> {
        &self.table
    }

    /// The WHERE condition.
    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// Whether the row is to be updated.
    pub fn matches<R: RowFields + ?Sized>(&self, row: &R, system: SystemColumns) -> Result<bool> {
        self.filter.matches(row, system)
    }

    /// The new version of a row: every column of the table (fields missing from an old row are
    /// NULL), with the assignments evaluated against the old row.
    pub fn apply<R: RowFields + ?Sized>(
        &self,
        row: &R,
        system: SystemColumns,
    ) -> Result<Vec<Value>> {
        let columns = self.table.columns();
        let mut new_row: Vec<Value> = (0..columns.len())
            .map(|i| row.field(i).to_value())
            .collect();
        for set in &self.assignments {
            let column = &columns[set.index];
            let datum = set
                .node
                .eval(row, system)
                .map_err(|e| e.or_at(set.position))?;
            let value =
                convert(datum.as_ref(), column.data_type).map_err(|e| e.or_at(set.position))?;
            if value.is_null() && column.not_null {
                return Err(not_null_error(column, set.position));
            }
            new_row[set.index] = value;
        }
        Ok(new_row)
    }
}

/// The node of `SET column = expr`, type-checked against the column.
fn assigned_node(scope: &Scope<'_>, expr: &Expr, column: &ColumnDef) -> Result<Node> {
    let typed = scope.compile(expr)?;
    if typed.source != Source::Row {
        let typed = coerce_constant(typed, column.data_type)?;
        if matches!(typed.node, Node::Const(Value::Null)) && column.not_null {
            return Err(not_null_error(column, expr.position));
        }
        return Ok(typed.node);
    }
    let fits = match typed.data_type {
        None => true,
        Some(found) if found == column.data_type => true,
        Some(found) => {
            found != DataType::Double && found.is_numeric() && column.data_type.is_numeric()
        }
    };
    if !fits {
        return Err(SqlError::type_mismatch(
            format!(
                "column {} is {}, the value is {}",
                column.name,
                column.data_type,
                typed.data_type.map_or("NULL", DataType::name)
            ),
            typed.position,
        ));
    }
    Ok(typed.node)
}

/// A computed value in the column's type: numbers widen, and narrow with a range check.
fn convert(value: ValueRef<'_>, target: DataType) -> Result<Value> {
    let overflow = || {
        SqlError::new(
            code::NUMERIC_OVERFLOW,
            format!("value out of range for {target}"),
            None,
        )
    };
    Ok(match (target, value) {
        (DataType::Int, ValueRef::BigInt(v)) => {
            Value::Int(i32::try_from(v).map_err(|_| overflow())?)
        }
        (DataType::BigInt, ValueRef::Int(v)) => Value::BigInt(i64::from(v)),
        (DataType::Double, ValueRef::Int(v)) => Value::Double(f64::from(v)),
        (DataType::Double, ValueRef::BigInt(v)) => Value::Double(v as f64),
        // Into a DECIMAL column: rounded to its scale, refused past its precision; a DECIMAL
        // into an integer or DOUBLE column: rounded or converted.
        (target, value)
            if target.is_numeric()
                && value
                    .data_type()
                    .is_some_and(|t| t.is_numeric() && (t != target || target.is_decimal())) =>
        {
            crate::coerce::coerce(value.to_value(), target, crate::coerce::Origin::Literal)?
        }
        (_, value) => value.to_value(),
    })
}

/// A compiled DELETE.
#[derive(Debug, Clone)]
pub struct DeletePlan {
    table: Arc<TableDef>,
    filter: Filter,
}

impl DeletePlan {
    /// Compiles a DELETE.
    pub fn compile(
        delete: &Delete,
        catalog: &dyn CatalogView,
        params: &[Value],
    ) -> Result<DeletePlan> {
        let table = resolve_table(&delete.table, catalog)?;
        let scope = Scope {
            table: Some(&table),
            alias: delete.alias.as_deref(),
            params,
            reads_clock: std::cell::Cell::new(false),
            sources: &[],
            live_clock: false,
        };
        let filter = compile_filter(&scope, delete.filter.as_ref(), &table)?;
        Ok(DeletePlan { table, filter })
    }

    /// The table written.
    pub fn table(&self) -> &Arc<TableDef> {
        &self.table
    }

    /// The WHERE condition.
    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// Whether the row is to be deleted.
    pub fn matches<R: RowFields + ?Sized>(&self, row: &R, system: SystemColumns) -> Result<bool> {
        self.filter.matches(row, system)
    }
}
