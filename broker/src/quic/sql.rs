//! `sql` and `produce_table` over QUIC, run by the SQL engine with the same checks as the HTTP
//! API: `sql` answers the exact JSON body `POST /v1/api/sql` would (success or error), and
//! `produce_table` inserts its rows as one durable batch and acks their `_seq` range.
//!
//! On a cluster member that does not lead, a `sql` that fails with `not_leader` is forwarded
//! to the leader, whose answer is the client's; so is a `produce_table` refused with
//! `not_leader` (`frame_forward.rs`).
//!
//! Idempotent produce is served for topics only: a `produce_table` that carries a producer id
//! is refused (`unsupported`), since tables already refuse a second row with the same primary
//! key, which is what a retried insert of keyed rows meets.

use std::sync::Arc;

use serde_json::{Map, Value as Json};
use strand_wire::quic::{
    codes, Message, PartitionIndex, ProduceAck, ProduceTable, Seq, Sql, SqlResult,
};

use super::frame_forward::forwarded_frame;
use super::responder::{ReplyError, Responder};
use super::topics::ProduceAnswer;
use crate::api::SqlSuccess;
use crate::cluster::forward::{ForwardedSql, SqlForwarder};
use crate::engine::Engine;
use crate::error::{ApiError, ErrorCode};
use crate::forwarding::{forward_sql, forwarded_request};
use crate::limits::{PRODUCE_TABLE_ROWS_MAX, SQL_PARAMS_MAX};
use crate::session::Session;
use crate::sql::{SqlEngine, StatementResult};

pub(crate) struct SqlOverQuic {
    engine: Arc<Engine>,
    /// On a cluster member: sends a `sql` that failed with `not_leader` to the leader.
    forwarder: Option<Arc<SqlForwarder>>,
}

impl SqlOverQuic {
    pub(crate) fn new(engine: Arc<Engine>) -> SqlOverQuic {
        SqlOverQuic {
            engine,
            forwarder: None,
        }
    }

    /// The engine `sql` and `produce_table` run on.
    pub(crate) fn engine(&self) -> Arc<Engine> {
        self.engine.clone()
    }

    /// Forward `sql` requests that fail with `not_leader` through `forwarder`.
    pub(crate) fn with_forwarder(mut self, forwarder: Option<Arc<SqlForwarder>>) -> Self {
        self.forwarder = forwarder;
        self
    }

    pub(crate) async fn sql(
        &self,
        session: &Session,
        request: Sql,
        reply: &mut Responder,
    ) -> Result<(), ReplyError> {
        let started = std::time::Instant::now();
        let request = Arc::new(request);
        let answered = match self.run_here(session, request.clone()).await {
            // As over HTTP (http/handlers.rs, cluster/forward.rs): nothing of the request
            // was written here, so the leader runs all of it and answers the client.
            Err(error) if error.code == ErrorCode::NotLeader => match &self.forwarder {
                Some(forwarder) => {
                    let forwarded = forwarded(session, &request);
                    forward_sql(forwarder, forwarded, error).await
                }
                None => Err(error),
            },
            other => other,
        };
        let body = match answered {
            Ok(results) => {
                let took_ms = (started.elapsed().as_secs_f64() * 1e6).round() / 1e3;
                let success = SqlSuccess {
                    status: "success".to_string(),
                    results,
                    took_ms,
                };
                serde_json::to_string(&success)
            }
            Err(error) => {
                if error.code.is_limit_exceeded() {
                    reply.refused_for_limit();
                }
                serde_json::to_string(&error.body())
            }
        };
        match body {
            Ok(body_json) => {
                reply
                    .send(Message::SqlResult(SqlResult { body_json }))
                    .await
            }
            Err(error) => reply.error(codes::STORAGE_ERROR, error.to_string()).await,
        }
    }

    /// Runs `request` on this node, on the blocking pool.
    async fn run_here(
        &self,
        session: &Session,
        request: Arc<Sql>,
    ) -> Result<Vec<StatementResult>, ApiError> {
        let engine = self.engine.clone();
        let session = session.clone();
        tokio::task::spawn_blocking(move || {
            let params = parse_params(&request.params_json)?;
            if request.sql.trim().is_empty() {
                return Err(ApiError::new(ErrorCode::InvalidRequest, "sql is empty"));
            }
            engine.execute(&session, &request.sql, &params)
        })
        .await
        .unwrap_or_else(|join_error| Err(ApiError::internal(&join_error)))
    }

    /// Answers `request`: here, or on a cluster member that does not lead, by the leader
    /// (`frame_forward.rs`).
    pub(crate) async fn produce_table(
        &self,
        session: &Session,
        request: ProduceTable,
        reply: &mut Responder,
    ) -> Result<(), ReplyError> {
        let request = Arc::new(request);
        let answer = table_produce_answer(&self.engine, session, request.clone()).await;
        let messages = match (&self.forwarder, answer.forwardable) {
            (Some(forwarder), true) => {
                let message = Message::ProduceTable(ProduceTable::clone(&request));
                forwarded_frame(forwarder, session, message, answer.messages).await
            }
            _ => answer.messages,
        };
        for message in messages {
            reply.send(message).await?;
        }
        Ok(())
    }
}

/// What this node answers a `produce_table`: a `produce_ack`, or one `error`; forwardable
/// when refused with `not_leader` (the rows go in as one statement, so nothing was written).
pub(super) async fn table_produce_answer(
    engine: &Arc<Engine>,
    session: &Session,
    request: Arc<ProduceTable>,
) -> ProduceAnswer {
    if request.idempotence.is_some() {
        let text = "idempotent produce is served for topics; a table refuses a second row \
                    with the same primary key, so send produce_table without a producer id";
        return ProduceAnswer::refused((codes::UNSUPPORTED, text.to_string()));
    }
    if request.rows_json.is_empty() || request.rows_json.len() > PRODUCE_TABLE_ROWS_MAX {
        let text = format!(
            "a produce_table batch has 1 to {PRODUCE_TABLE_ROWS_MAX} rows, not {}",
            request.rows_json.len()
        );
        return ProduceAnswer::refused((codes::LIMIT_EXCEEDED, text));
    }
    let mut rows = Vec::with_capacity(request.rows_json.len());
    for (index, text) in request.rows_json.iter().enumerate() {
        match serde_json::from_str::<Map<String, Json>>(text) {
            Ok(row) => rows.push(row),
            Err(error) => {
                let text = format!("row {index} is not a JSON object: {error}");
                return ProduceAnswer::refused((codes::INVALID_ROW, text));
            }
        }
    }
    let engine = engine.clone();
    let owned = session.clone();
    let table = request.table.clone();
    let written =
        tokio::task::spawn_blocking(move || engine.insert_json_rows(&owned, &table, &rows)).await;
    match written {
        Ok(Ok(seqs)) => {
            let (Some(first), Some(last)) = (seqs.first(), seqs.last()) else {
                let text = "no row was written".to_string();
                return ProduceAnswer::refused((codes::INVALID_ROW, text));
            };
            tracing::debug!(user = %session.user(), table = %request.table,
                first = first.0, last = last.0, rows = seqs.len(), "produced rows");
            let ack = ProduceAck {
                partition: PartitionIndex(0),
                first: Seq(first.0),
                last: Seq(last.0),
                count: u32::try_from(seqs.len()).unwrap_or(u32::MAX),
                duplicate: false,
            };
            ProduceAnswer::answered(vec![Message::ProduceAck(ack)])
        }
        Ok(Err(error)) => {
            let code = match error.code {
                ErrorCode::NotFound => codes::UNKNOWN_TABLE,
                ErrorCode::Sql(code) if code == strand_sql_view::code::UNKNOWN_TABLE => {
                    codes::UNKNOWN_TABLE
                }
                ErrorCode::Forbidden => codes::FORBIDDEN,
                ErrorCode::Internal => codes::STORAGE_ERROR,
                ErrorCode::StorageFull => codes::STORAGE_FULL,
                ErrorCode::NotLeader => codes::NOT_LEADER,
                ErrorCode::Unavailable => codes::UNAVAILABLE,
                ErrorCode::Overloaded => codes::OVERLOADED,
                _ => codes::INVALID_ROW,
            };
            ProduceAnswer {
                forwardable: error.code == ErrorCode::NotLeader,
                ..ProduceAnswer::refused((code, error.message))
            }
        }
        Err(error) => ProduceAnswer::refused((codes::STORAGE_ERROR, error.to_string())),
    }
}

/// What a member forwards of a `sql` request (QUIC has no `bigint` choice).
fn forwarded(session: &Session, request: &Sql) -> ForwardedSql {
    let mut forwarded = forwarded_request(session, &request.sql, &[], false);
    if !request.params_json.trim().is_empty() {
        forwarded.params_json = request.params_json.clone();
    }
    forwarded
}

fn parse_params(text: &str) -> Result<Vec<Json>, ApiError> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let params: Vec<Json> = serde_json::from_str(text).map_err(|error| {
        ApiError::new(
            ErrorCode::InvalidJson,
            format!("params_json must be a JSON array: {error}"),
        )
    })?;
    if params.len() > SQL_PARAMS_MAX {
        let message = format!("more than {SQL_PARAMS_MAX} params");
        return Err(ApiError::new(ErrorCode::LimitExceeded, message));
    }
    Ok(params)
}
