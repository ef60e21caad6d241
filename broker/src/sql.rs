//! The boundary between the request layers (HTTP, QUIC `sql`) and SQL execution: the
//! [`SqlEngine`] trait (prepare, then run) and the [`StatementResult`] it answers with (the
//! `results[]` items of docs/http.md, "Run SQL").
//!
//! It owns no parsing and no catalog: the engine (`crate::engine`) parses with
//! `strand-sql-view` and runs plans against the broker's parts.

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::session::Session;

/// Runs SQL text for an authenticated session, in two steps: [`SqlEngine::prepare`] parses and
/// checks the text and says what running it costs ([`RunCost`]); [`SqlEngine::run`] executes
/// it.
///
/// The HTTP layer prepares short texts on its own thread and runs brief requests there too
/// (no thread hand-off: the difference between beating PostgreSQL's single-row latency and
/// not); everything else runs on the blocking pool (`tokio::task::spawn_blocking`), so
/// implementations may do disk I/O and wait for fsync in `run`.
///
/// `sql` may hold several statements separated by `;`; they run in order, and one that fails
/// stops the rest. There is no transaction: statements before the failing one stay applied.
/// The error's `position` points into `sql` (1-based line and column).
pub trait SqlEngine: Send + Sync {
    /// Parse `sql` for `session` without running anything, and say what running it costs.
    fn prepare(
        &self,
        session: &Session,
        sql: &str,
        params: &[Value],
    ) -> Result<PreparedSql, ApiError>;

    /// Run the statements in order, stopping at the first failure.
    fn run(&self, prepared: PreparedSql) -> Result<Vec<StatementResult>, ApiError>;

    /// For a [`RunCost::BriefWrite`] request on an async runtime: do the work now, without
    /// waiting for the commit or for another statement's lock, and hand back the wait
    /// ([`BriefWrite::Queued`]); or give the request back ([`BriefWrite::Declined`]) when it
    /// cannot be split that way, to be run with [`SqlEngine::run`].
    fn queue_brief_write(&self, prepared: PreparedSql) -> Result<BriefWrite, ApiError> {
        Ok(BriefWrite::Declined(prepared))
    }

    /// Prepare and run, on the caller's thread.
    fn execute(
        &self,
        session: &Session,
        sql: &str,
        params: &[Value],
    ) -> Result<Vec<StatementResult>, ApiError> {
        let prepared = self.prepare(session, sql, params)?;
        self.run(prepared)
    }
}

/// A parsed request, ready to run.
#[derive(Debug)]
pub struct PreparedSql {
    /// Whom the statements run for.
    pub session: Session,
    /// The statements of the text, in order.
    pub statements: Vec<strand_sql_view::Statement>,
    /// The values of `$1`, `$2`, ... as SQL values.
    pub params: Vec<strand_sql_view::Value>,
    /// The costliest of the statements: decides which thread runs them.
    pub cost: RunCost,
}

/// What [`SqlEngine::queue_brief_write`] did with a request.
pub enum BriefWrite {
    /// Done but for its commit: await [`PendingCommit::finish`].
    Queued(PendingCommit),
    /// Not split; run it as usual.
    Declined(PreparedSql),
}

/// A write whose rows are queued and visible to later statements' key checks, waiting for
/// its commit round: resolves to the request's results once the commit is known (the commit
/// hooks run, or the indexing is undone). Awaiting it blocks no thread: the log's commit
/// thread (or another appender) leads the round and wakes it.
pub struct PendingCommit(
    Pin<Box<dyn Future<Output = Result<Vec<StatementResult>, ApiError>> + Send>>,
);

impl PendingCommit {
    /// The write's remaining work, from awaiting its commit to its results.
    pub fn new(
        finish: impl Future<Output = Result<Vec<StatementResult>, ApiError>> + Send + 'static,
    ) -> Self {
        PendingCommit(Box::pin(finish))
    }

    /// Wait for the commit, then finish.
    pub async fn finish(self) -> Result<Vec<StatementResult>, ApiError> {
        self.0.await
    }
}

/// What running a prepared request is expected to cost; decides which thread runs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunCost {
    /// Microseconds, no waiting: point reads of an open partition.
    Brief,
    /// Microseconds of work, then waiting for its own commit (an fsync under `always`), with
    /// no commit round under way to queue behind: small writes to an open partition.
    BriefWrite,
    /// Anything else: scans, large writes, DDL, user administration (argon2).
    Long,
}

/// A column of a result: its name and SQL type (`BIGINT`, `TEXT`, ...).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    /// The column's name, or its alias.
    pub name: String,
    /// The SQL type, sent as `type`.
    #[serde(rename = "type")]
    pub data_type: String,
}

/// The outcome of one statement: rows for a query, a count and message for the rest.
/// Rows are JSON objects keyed by column name; `_seq` values are decimal strings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StatementResult {
    /// The result's columns in SELECT-list order; empty for a statement without rows.
    #[serde(default)]
    pub columns: Vec<Column>,
    /// The rows returned, each keyed by column name.
    #[serde(default)]
    pub rows: Vec<Map<String, Value>>,
    /// Rows returned (queries) or affected (DML).
    #[serde(default)]
    pub row_count: u64,
    /// A human summary, e.g. `User alice created`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl StatementResult {
    /// Rewrite the BIGINT columns' values as strings of decimal digits, for a client that
    /// asked for them (`"bigint": "string"`): after the rows were built, so the statements
    /// themselves never see the choice, and it costs nothing to the clients that did not ask.
    pub fn write_bigints_as_strings(&mut self) {
        let bigint_columns: Vec<&str> = self
            .columns
            .iter()
            .filter(|c| c.data_type == "BIGINT")
            .map(|c| c.name.as_str())
            .collect();
        if bigint_columns.is_empty() {
            return;
        }
        for row in &mut self.rows {
            for name in &bigint_columns {
                if let Some(value) = row.get_mut(*name) {
                    if let Value::Number(number) = value {
                        if number.is_i64() || number.is_u64() {
                            *value = Value::String(number.to_string());
                        }
                    }
                }
            }
        }
    }

    /// A result without rows, e.g. for DDL.
    pub fn message(text: impl Into<String>) -> StatementResult {
        StatementResult {
            message: Some(text.into()),
            ..StatementResult::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_result_serializes_as_the_spec_says() {
        let mut row = Map::new();
        row.insert("id".into(), Value::from(1));
        row.insert("_seq".into(), Value::from("4194304001"));
        let result = StatementResult {
            columns: vec![Column {
                name: "id".into(),
                data_type: "BIGINT".into(),
            }],
            rows: vec![row],
            row_count: 1,
            message: None,
        };
        let json = serde_json::to_value(&result).expect("serializes");
        let expected = serde_json::json!({
            "columns": [{"name": "id", "type": "BIGINT"}],
            "rows": [{"id": 1, "_seq": "4194304001"}],
            "row_count": 1
        });
        assert_eq!(json, expected);
        let back: StatementResult = serde_json::from_value(json).expect("parses back");
        assert_eq!(back, result);
    }
}
