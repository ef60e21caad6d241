//! Plans, compiled once per statement from the parsed statement, the table definition and the
//! bound parameters, then evaluated per row without re-parsing:
//! [`SelectPlan`] (filter, projection, ORDER BY, LIMIT / OFFSET, output schema),
//! [`InsertPlan`] (rows coerced to the table, NOT NULL checked), [`UpdatePlan`] (filter and
//! assignments) and [`DeletePlan`] (filter). Filters follow SQL three-valued logic and read
//! fields in place from a [`RowView`] (or any [`RowFields`]); [`Filter::key_values`] tells
//! when a filter pins the primary key, so the broker can look rows up instead of scanning.
//!
//! It does not own reading partitions, choosing the latest version of a key or permissions:
//! the broker feeds rows in and decides who may run what.

mod accumulate;
mod aggregate;
mod arith;
mod clock;
mod compile;
mod constants;
mod defaults;
mod functions;
mod join;
mod join_exec;
mod keys;
mod like;
mod live_groups;
mod live_join;
mod node;
mod predicates;
mod select;
mod write;

use std::sync::Arc;

pub use clock::ClockTerms;
pub(crate) use defaults::constant_default;
pub use join::{JoinPlan, JoinSource};
pub use join_exec::{JoinBuild, JoinedRow};
pub use live_groups::{GroupChange, LiveGroups};
pub use live_join::{row_key as live_join_row_key, JoinChange, LiveJoin};
pub use select::{ResultCollector, SelectPlan};
pub use write::{DeletePlan, InsertPlan, UpdatePlan};

use crate::ast::{Statement, TableRef};
use crate::catalog::{CatalogView, TableDef};
use crate::error::{code, Result, SqlError};
use crate::row::RowView;
use crate::value::{DataType, Value, ValueRef};
use node::Node;

/// The system columns of one row version, which live in the log record, not in the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SystemColumns {
    /// `_seq` of the version.
    pub seq: i64,
    /// `_deleted`: whether the version is a delete tombstone.
    pub deleted: bool,
    /// The time `now()` reads in a subscription's filter (microseconds since the Unix epoch);
    /// a one-shot query folds `now()` when compiled and never reads it.
    pub now: i64,
}

/// Anything plans can read fields from: a stored [`RowView`] or decoded values.
pub trait RowFields {
    /// Field `index` (NULL past the end).
    fn field(&self, index: usize) -> ValueRef<'_>;
}

impl RowFields for RowView<'_> {
    fn field(&self, index: usize) -> ValueRef<'_> {
        RowView::field(self, index)
    }
}

impl RowFields for [Value] {
    fn field(&self, index: usize) -> ValueRef<'_> {
        self.get(index).map_or(ValueRef::Null, Value::as_ref)
    }
}

impl RowFields for Vec<Value> {
    fn field(&self, index: usize) -> ValueRef<'_> {
        self.as_slice().field(index)
    }
}

/// One column of a result: its name and type.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OutputColumn {
    /// The column name, alias, or the expression as written.
    pub name: String,
    /// The type of its values.
    #[serde(rename = "type")]
    pub data_type: DataType,
}

/// A compiled WHERE: all rows when there was none.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    node: Option<Node>,
    primary_key: Option<(usize, DataType)>,
}

impl Filter {
    /// Whether the row satisfies the condition (NULL, i.e. unknown, does not).
    pub fn matches<R: RowFields + ?Sized>(&self, row: &R, system: SystemColumns) -> Result<bool> {
        match &self.node {
            None => Ok(true),
            Some(node) => Ok(node.truth(row, system)? == Some(true)),
        }
    }

    /// `Some(keys)` when only rows whose primary key is one of `keys` can match (deduplicated,
    /// in key order; empty when nothing can match), so the broker can look them up; `None`
    /// when the filter can match other keys and rows must be scanned. The filter must still be
    /// applied to the rows found.
    pub fn key_values(&self) -> Option<Vec<Value>> {
        let (index, data_type) = self.primary_key?;
        keys::pinned(self.node.as_ref()?, index, data_type)
    }

    /// Like [`Filter::key_values`] for any INT, BIGINT or TEXT column: `Some(values)` when
    /// only rows whose column `column` holds one of `values` can match. Realtime fan-out
    /// indexes subscriptions by it, so a write evaluates only those that can match it.
    pub fn pinned_values(&self, column: usize, data_type: DataType) -> Option<Vec<Value>> {
        if !matches!(data_type, DataType::Int | DataType::BigInt | DataType::Text) {
            return None;
        }
        keys::pinned(self.node.as_ref()?, column, data_type)
    }
}

/// A compiled DML statement.
#[derive(Debug, Clone)]
pub enum Plan {
    /// A SELECT.
    Select(SelectPlan),
    /// An INSERT.
    Insert(InsertPlan),
    /// An UPDATE.
    Update(UpdatePlan),
    /// A DELETE.
    Delete(DeletePlan),
}

impl Plan {
    /// Compiles a SELECT, INSERT, UPDATE or DELETE (also inside EXECUTE AS); `Ok(None)` for
    /// every other statement, which the broker runs itself.
    pub fn compile(
        statement: &Statement,
        catalog: &dyn CatalogView,
        params: &[Value],
    ) -> Result<Option<Plan>> {
        Ok(Some(match statement {
            Statement::Select(select) => {
                Plan::Select(SelectPlan::compile(select, catalog, params)?)
            }
            Statement::Insert(insert) => {
                Plan::Insert(InsertPlan::compile(insert, catalog, params)?)
            }
            Statement::Update(update) => {
                Plan::Update(UpdatePlan::compile(update, catalog, params)?)
            }
            Statement::Delete(delete) => {
                Plan::Delete(DeletePlan::compile(delete, catalog, params)?)
            }
            Statement::ExecuteAs { statement, .. } => {
                return Plan::compile(statement, catalog, params)
            }
            _ => return Ok(None),
        }))
    }
}

/// The table a statement names, or `unknown_table` at the name.
pub fn resolve_table(table: &TableRef, catalog: &dyn CatalogView) -> Result<Arc<TableDef>> {
    catalog.table(&table.name).ok_or_else(|| {
        SqlError::new(
            code::UNKNOWN_TABLE,
            format!("table {} does not exist", table.name),
            table.position,
        )
    })
}

#[cfg(test)]
mod tests;
