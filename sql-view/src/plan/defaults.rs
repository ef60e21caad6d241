//! Column DEFAULTs meeting plans: the constant of a `DEFAULT <expr>` typed once at CREATE
//! TABLE ([`constant_default`]), and the values an INSERT writes into the columns it omits
//! ([`RowDefaults`]): constants, the statement's time for `now()`, and slots for
//! `SNOWFLAKE_ID()` that the broker fills with ids from its generator.
//!
//! It does not own which defaults a column may have (`catalog/default.rs`).

use std::cell::Cell;

use super::compile::Scope;
use super::constants::coerce_constant;
use super::node::Node;
use crate::ast::Expr;
use crate::catalog::{ColumnDefault, TableDef};
use crate::error::{Result, SqlError};
use crate::value::{DataType, Value};

/// The constant of `DEFAULT expr` in a column of `data_type`, coerced as an INSERT of the
/// literal would be; `None` for `DEFAULT NULL`. Errors point into the expression.
pub(crate) fn constant_default(expr: &Expr, data_type: DataType) -> Result<Option<Value>> {
    let scope = Scope {
        table: None,
        alias: None,
        params: &[],
        reads_clock: Cell::new(false),
        sources: &[],
        live_clock: false,
    };
    let typed = coerce_constant(scope.compile(expr)?, data_type)?;
    if scope.reads_clock.get() {
        // Folded here it would be the CREATE TABLE's time, not each INSERT's.
        let what = "a DEFAULT computed from now() (only now() itself is a default)";
        return Err(SqlError::unsupported(what, expr.position));
    }
    match typed.node {
        Node::Const(Value::Null) => Ok(None),
        Node::Const(value) => Ok(Some(value)),
        _ => Err(SqlError::unsupported(
            "a DEFAULT that is not a constant, now() or SNOWFLAKE_ID()",
            expr.position,
        )),
    }
}

/// The defaults of one INSERT statement: one `now()` for all its rows.
pub(crate) struct RowDefaults {
    now_micros: i64,
}

impl RowDefaults {
    pub(crate) fn new() -> RowDefaults {
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        let now_micros = since.map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        RowDefaults { now_micros }
    }

    /// Writes the defaults of the columns not in `written` into `row`; returns the indexes
    /// of `SNOWFLAKE_ID()` columns, left NULL for the broker to fill.
    pub(crate) fn apply(
        &self,
        table: &TableDef,
        written: &[usize],
        row: &mut [Value],
    ) -> Vec<usize> {
        let mut ids = Vec::new();
        for (index, column) in table.columns().iter().enumerate() {
            if written.contains(&index) {
                continue;
            }
            match &column.default {
                None => {}
                Some(ColumnDefault::Value(value)) => row[index] = value.clone(),
                Some(ColumnDefault::Now) => row[index] = Value::Timestamp(self.now_micros),
                Some(ColumnDefault::SnowflakeId) => ids.push(index),
            }
        }
        ids
    }
}
