//! The HTTP endpoints: login, SQL, health, metrics, and the JSON 404/405 answers. Each handler
//! turns a request into a call on the authenticator or the engine and the result into JSON;
//! argon2 and all but brief SQL work run on the blocking pool, bounded by
//! [`AppState::blocking`].

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use serde_json::json;
use strand_wire::BigIntAs;

use super::body::parse_json;
use super::{connection_authenticated, AppState};
use crate::api::{LoginRequest, LoginResponse, SqlRequest, SqlSuccess};
use crate::auth::{parse_authorization, Credentials, Source};
use crate::connections::ConnectionSlot;
use crate::error::{ApiError, ErrorCode};
use crate::forwarding::{forward_sql, forwarded_request};
use crate::limits::{ECHOED_PATH_CHARS_MAX, INLINE_PREPARE_SQL_BYTES_MAX, SQL_PARAMS_MAX};
use crate::metrics::BasicAuth;
use crate::session::Session;
use crate::sql::{BriefWrite, RunCost, StatementResult};

/// The connection a request came on, when it came through the HTTP shards.
type Connection = Option<Extension<Arc<ConnectionSlot>>>;

/// The client's address, when the request came through the HTTP shards.
pub(crate) type Peer = Option<Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>;

/// The source address the brute-force limit counts failures of.
pub(crate) fn source(peer: &Peer) -> Source {
    peer.as_ref().map(|Extension(info)| info.0.ip())
}

pub async fn login(
    State(state): State<AppState>,
    connection: Connection,
    peer: Peer,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<LoginResponse>, ApiError> {
    let request: LoginRequest = parse_json(&headers, body)?;
    let auth = state.auth.clone();
    let response = state
        .blocking(move || {
            let source = source(&peer);
            Ok(auth.login_from(&request.username, &request.password, source)?)
        })
        .await?;
    connection_authenticated(connection.as_deref());
    Ok(Json(response))
}

pub async fn sql(
    State(state): State<AppState>,
    connection: Connection,
    peer: Peer,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<SqlSuccess>, ApiError> {
    let started = Instant::now();
    let session = authenticate(&state, &headers, source(&peer)).await?;
    connection_authenticated(connection.as_deref());
    let answer = run_sql(&state, session.clone(), &headers, body, started).await;
    if answer
        .as_ref()
        .is_err_and(|error| error.code.is_limit_exceeded())
    {
        state.connections.refusals().refused(session.user());
    }
    answer
}

async fn run_sql(
    state: &AppState,
    session: Session,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    started: Instant,
) -> Result<Json<SqlSuccess>, ApiError> {
    let request: SqlRequest = parse_json(headers, body)?;
    if request.sql.trim().is_empty() {
        return Err(ApiError::new(ErrorCode::InvalidRequest, "sql is empty"));
    }
    if request.params.len() > SQL_PARAMS_MAX {
        let message = format!("more than {SQL_PARAMS_MAX} params");
        return Err(ApiError::new(ErrorCode::LimitExceeded, message));
    }
    let bigint_as_strings = request.bigint == Some(BigIntAs::String);
    let request = Arc::new(request);
    let results = match run_here(state, &session, request.clone()).await {
        // On a cluster member that does not lead, a `not_leader` failure comes before that
        // statement wrote anything, and the statements before it can only have been reads
        // (a write would have failed first): the whole request may run again on the leader,
        // whose answer is the client's (cluster/forward.rs).
        Err(error) if error.code == ErrorCode::NotLeader => match &state.forwarder {
            Some(forwarder) => {
                let forwarded =
                    forwarded_request(&session, &request.sql, &request.params, bigint_as_strings);
                // The leader wrote BIGINTs as strings already, if asked.
                let results = forward_sql(forwarder, forwarded, error).await?;
                return Ok(success(results, started));
            }
            None => return Err(error),
        },
        other => other?,
    };
    let mut results = results;
    if bigint_as_strings {
        results
            .iter_mut()
            .for_each(StatementResult::write_bigints_as_strings);
    }
    Ok(success(results, started))
}

/// Runs `request` on this node: brief work inline, the rest on the blocking pool.
async fn run_here(
    state: &AppState,
    session: &Session,
    request: Arc<SqlRequest>,
) -> Result<Vec<StatementResult>, ApiError> {
    let in_flight = state.sql_in_flight.enter();
    let engine = state.engine.clone();
    if request.sql.len() > INLINE_PREPARE_SQL_BYTES_MAX {
        let session = session.clone();
        return state
            .blocking(move || engine.execute(&session, &request.sql, &request.params))
            .await;
    }
    let prepared = engine.prepare(session, &request.sql, &request.params)?;
    match prepared.cost {
        RunCost::Brief => engine.run(prepared),
        // Waiting for its commit on this thread (leading the round) is the fastest way
        // when it is the only request; with others in flight they would wait behind
        // that fsync, so the write is queued and its commit awaited instead.
        RunCost::BriefWrite if in_flight.is_alone() => engine.run(prepared),
        RunCost::BriefWrite => match engine.queue_brief_write(prepared)? {
            // Spawned, so the commit is finished (hooks run, subscribers woken) even if
            // the client goes away and this request's future is dropped.
            BriefWrite::Queued(pending) => tokio::spawn(pending.finish())
                .await
                .unwrap_or_else(|join_error| Err(ApiError::internal(&join_error))),
            BriefWrite::Declined(prepared) => state.blocking(move || engine.run(prepared)).await,
        },
        RunCost::Long => state.blocking(move || engine.run(prepared)).await,
    }
}

fn success(results: Vec<StatementResult>, started: Instant) -> Json<SqlSuccess> {
    let took_ms = (started.elapsed().as_secs_f64() * 1e6).round() / 1e3;
    Json(SqlSuccess {
        status: "success".to_string(),
        results,
        took_ms,
    })
}

/// The session of the request's `Authorization` header. Tokens are checked inline (one
/// HMAC), and so are Basic credentials verified recently; others cost an argon2 verification
/// and go to the blocking pool.
pub(crate) async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    source: Source,
) -> Result<Session, ApiError> {
    let value = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
    let credentials = parse_authorization(value)?;
    match credentials {
        Credentials::Bearer(_) => Ok(state.auth.authenticate(&credentials)?),
        Credentials::Basic { .. } => {
            if let Some(session) = state.auth.authenticate_cached(&credentials) {
                state.metrics.basic_auth(BasicAuth::Cached);
                return Ok(session);
            }
            state.metrics.basic_auth(BasicAuth::Verified);
            let auth = state.auth.clone();
            state
                .blocking(move || Ok(auth.authenticate_from(&credentials, source)?))
                .await
        }
    }
}

pub async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let content_type = "text/plain; version=0.0.4; charset=utf-8";
    let mut text = state.metrics.render();
    state.connections.render_metrics(&mut text);
    ([(header::CONTENT_TYPE, content_type)], text).into_response()
}

pub async fn not_found(method: Method, uri: Uri) -> ApiError {
    let message = format!("no route for {method} {}", echoed_path(&uri));
    ApiError::new(ErrorCode::NotFound, message)
}

pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    let message = format!("{method} is not allowed on {}", echoed_path(&uri));
    ApiError::new(ErrorCode::MethodNotAllowed, message)
}

fn echoed_path(uri: &Uri) -> String {
    uri.path().chars().take(ECHOED_PATH_CHARS_MAX).collect()
}
