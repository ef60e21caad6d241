//! `strand-sql-view`: SQL text to plans. It owns parsing (sqlparser), the catalog types
//! (namespaces, tables, columns, users, grants), value types, the stored row format and the
//! compiled plans (projection + filter programs) evaluated over stored rows.
//!
//! It does not own storage (that is `strand-log`), the network, authentication or where the
//! catalog is persisted (that is `strand-broker`).
//!
//! # Entry points
//!
//! - Text to statements: [`parse_statements`] (several, separated by `;`) or
//!   [`parse_statement`] (exactly one) give [`Statement`]s. DDL and user statements come out
//!   validated ([`Statement::CreateTable`] holds a [`TableDef`] that keeps every rule); the
//!   broker runs them against its catalog.
//! - Statements to plans: [`Plan::compile`] (or [`SelectPlan::compile`],
//!   [`InsertPlan::compile`], [`UpdatePlan::compile`], [`DeletePlan::compile`]) with a
//!   [`CatalogView`] and the request's parameters (`$1` is `params[0]`; build them from JSON
//!   with [`Value::from_json`]). Compile once per query or subscription.
//! - Rows: [`encode_row`] for writes (one [`Value`] per column in table order; the log's
//!   payload), [`RowView::new`] for reads (validated, zero-copy), [`encode_key`] for the log key
//!   of a primary key value.
//! - Per row: [`SelectPlan::matches`] and [`SelectPlan::project`] with the version's
//!   [`SystemColumns`] (`_seq`, `_deleted`); [`SelectPlan::collector`] runs a one-shot query
//!   (ORDER BY, OFFSET, LIMIT); [`UpdatePlan::apply`] builds the new version of a row;
//!   [`Filter::key_values`] tells when a WHERE pins the primary key (point lookups).
//! - Results: [`SelectPlan::columns`] is the schema; [`column_json`] renders a column's value
//!   the way the HTTP and WebSocket interfaces carry it ([`Value::to_json`], but `_seq` as a
//!   decimal string: [`seq_json`], and BIGINT as one too when the client asks:
//!   [`BigIntJson`]).
//! - Errors: [`SqlError`] with a stable [`code`], a message and a 1-based [`Position`].
//!
//! ```
//! use strand_sql_view::{
//!     encode_row, parse_statements, Plan, RowView, Statement, SystemColumns, Value,
//! };
//!
//! let sql = "CREATE TABLE app.tickets (id BIGINT PRIMARY KEY, title TEXT NOT NULL, \
//!            status TEXT) WITH (TYPE = 'USER');
//!            SELECT id, title, _seq FROM app.tickets WHERE status = $1";
//! let statements = parse_statements(sql)?;
//! let Statement::CreateTable { table, .. } = &statements[0] else { unreachable!() };
//! let params = [Value::Text("open".into())];
//! let Some(Plan::Select(plan)) = Plan::compile(&statements[1], table, &params)? else {
//!     unreachable!()
//! };
//! let values = [Value::BigInt(1), Value::Text("hi".into()), Value::Text("open".into())];
//! let bytes = encode_row(&values)?;
//! let row = RowView::new(&bytes)?;
//! let system = SystemColumns { seq: 42, deleted: false, now: 0 };
//! assert!(plan.matches(&row, system)?);
//! let projected = plan.project(&row, system)?;
//! assert_eq!(projected, [Value::BigInt(1), Value::Text("hi".into()), Value::BigInt(42)]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **Invariant:** `sql-view` knows nothing about partitions, the network, who is asking or
//! where the catalog lives: the broker feeds it text, tables, parameters and rows.
//!
//! **Invariant:** decoding outside input never panics: SQL text gives a [`SqlError`], row
//! bytes a [`RowError`]; sizes, counts and nesting are bounded by the constants of [`limits`].
//!
//! **Invariant:** a compiled filter reads fields in place and allocates nothing per row
//! (only `||` builds a string); NULL follows SQL three-valued logic (only TRUE matches).
//!
//! **Invariant:** stored rows only grow at the end (`ALTER TABLE ADD COLUMN` appends); a field
//! past the end of a row reads as NULL.

pub mod ast;
mod catalog;
mod coerce;
mod data_type;
mod date;
pub mod decimal;
pub mod error;
mod json;
pub mod limits;
mod parse;
mod plan;
mod row;
mod timestamp;
mod users;
mod uuid;
mod value;
mod wide;

pub use ast::Statement;
pub use catalog::{
    CatalogView, ColumnDef, Name, TableDef, TableKind, TableName, TopicName, DELETED_COLUMN,
    SEQ_COLUMN,
};
pub use coerce::coerce_value;
pub use date::{parse_date, render_date};
pub use decimal::Decimal;
pub use error::{code, Position, Result, RowError, SqlError};
pub use json::{column_json, seq_json, BigIntJson};
pub use parse::{parse_statement, parse_statements};
pub use plan::{
    live_join_row_key, resolve_table, ClockTerms, DeletePlan, Filter, GroupChange, InsertPlan,
    JoinBuild, JoinChange, JoinPlan, JoinSource, JoinedRow, LiveGroups, LiveJoin, OutputColumn,
    Plan, ResultCollector, RowFields, SelectPlan, SystemColumns, UpdatePlan,
};
pub use row::{decode_key, encode_key, encode_row, RowView, ROW_FORMAT};
pub use timestamp::{parse_rfc3339, render_rfc3339, render_rfc3339_seconds};
pub use users::{Password, Privilege, Role, UserName};
pub use uuid::{parse_uuid, render_uuid};
pub use value::{compare, sort_order, DataType, Value, ValueRef};
