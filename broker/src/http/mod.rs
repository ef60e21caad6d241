//! The HTTP API on axum: routes, shared state, the body limit and timeout, and the metrics
//! middleware. Owns the mapping of URLs to handlers and the bound on blocking work in flight;
//! not the meaning of a login or a statement (`auth`, `sql`) nor the listener's lifecycle
//! (`server`).

mod admission;
mod body;
pub mod cluster_members;
mod console;
mod cors;
pub(crate) mod handlers;
pub mod refuse;
mod shards;

pub(crate) use body::parse_json;
pub use shards::HttpShards;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::Semaphore;

use crate::auth::Authenticator;
use crate::cluster::forward::SqlForwarder;
use crate::cluster::status::ROUTE_CLUSTER_STATUS;
use crate::config::{AllowedOrigins, ConnectionConfig};
use crate::connections::{ConnectionLimits, ConnectionSlot};
use crate::error::{ApiError, ErrorCode};
use crate::limits::{BLOCKING_REQUESTS_IN_FLIGHT_MAX, REQUEST_BODY_BYTES_MAX};
use crate::metrics::Metrics;
use crate::sql::SqlEngine;
use cluster_members::{ROUTE_CLUSTER_MEMBER, ROUTE_CLUSTER_MEMBERS};

pub const ROUTE_LOGIN: &str = "/v1/api/auth/login";
pub const ROUTE_SQL: &str = "/v1/api/sql";
pub const ROUTE_HEALTH: &str = "/health";
pub const ROUTE_METRICS: &str = "/metrics";
pub const ROUTE_WS: &str = "/v1/ws";
/// The metrics label of requests that matched no route.
const ROUTE_UNMATCHED: &str = "unmatched";
/// The metrics label of the console's files (`/` and `/console/...`), one for all of them.
const ROUTE_CONSOLE: &str = "console";

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub auth: Arc<Authenticator>,
    pub engine: Arc<dyn SqlEngine>,
    pub metrics: Arc<Metrics>,
    pub sql_in_flight: SqlInFlight,
    blocking_slots: Arc<Semaphore>,
    /// The connection caps and timeouts (defaults until [`AppState::with_connections`]).
    pub connections: Arc<ConnectionLimits>,
    /// Web origins whose pages may call (none until [`AppState::with_origins`]).
    pub origins: Arc<AllowedOrigins>,
    /// On a cluster member: sends a request that failed with `not_leader` to the leader.
    pub forwarder: Option<Arc<SqlForwarder>>,
}

/// How many SQL requests are being handled, across all shards.
#[derive(Clone, Default)]
pub struct SqlInFlight(Arc<AtomicUsize>);

impl SqlInFlight {
    /// Count this request until the guard drops.
    pub fn enter(&self) -> InFlightGuard {
        let before = self.0.fetch_add(1, Ordering::AcqRel);
        InFlightGuard {
            count: self.0.clone(),
            alone: before == 0,
        }
    }
}

pub struct InFlightGuard {
    count: Arc<AtomicUsize>,
    alone: bool,
}

impl InFlightGuard {
    /// No other SQL request was in flight when this one entered.
    pub fn is_alone(&self) -> bool {
        self.alone
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
    }
}

impl AppState {
    pub fn new(
        auth: Arc<Authenticator>,
        engine: Arc<dyn SqlEngine>,
        metrics: Arc<Metrics>,
    ) -> Self {
        AppState {
            auth,
            engine,
            metrics,
            sql_in_flight: SqlInFlight::default(),
            blocking_slots: Arc::new(Semaphore::new(BLOCKING_REQUESTS_IN_FLIGHT_MAX)),
            connections: ConnectionLimits::new(ConnectionConfig::default()),
            origins: Arc::new(AllowedOrigins::default()),
            forwarder: None,
        }
    }

    /// The same state, forwarding SQL that fails with `not_leader` through `forwarder`.
    pub fn with_forwarder(mut self, forwarder: Option<Arc<SqlForwarder>>) -> Self {
        self.forwarder = forwarder;
        self
    }

    /// The same state, allowing pages of `origins` to call (`cors.rs`).
    pub fn with_origins(mut self, origins: AllowedOrigins) -> Self {
        self.origins = Arc::new(origins);
        self
    }

    /// The same state, counting connections (and timing their phases) with `connections`.
    pub fn with_connections(mut self, connections: &Arc<ConnectionLimits>) -> Self {
        self.connections = connections.clone();
        self
    }

    /// Run `work` on the blocking pool if a slot is free; `overloaded` (503) if not, rather
    /// than queueing without bound.
    pub async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let Ok(slot) = self.blocking_slots.clone().try_acquire_owned() else {
            let message = "too many requests in flight; retry shortly";
            return Err(ApiError::new(ErrorCode::Overloaded, message));
        };
        let outcome = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            work()
        })
        .await;
        outcome.unwrap_or_else(|join_error| Err(ApiError::internal(&join_error)))
    }
}

/// The whole API: its own routes and `gateway`'s (the WebSocket upgrade), under the same
/// middleware.
pub fn router(state: AppState, gateway: Router<AppState>) -> Router {
    let metrics = state.metrics.clone();
    let body_timeout = state.connections.config().http_body_timeout;
    let throttled = state.clone();
    // Only the origins: this layer runs for every request, and cloning all of AppState costs.
    let cross_origin = state.origins.clone();
    Router::new()
        .route(ROUTE_LOGIN, post(handlers::login))
        .route(ROUTE_SQL, post(handlers::sql))
        .route(ROUTE_HEALTH, get(handlers::health))
        .route(ROUTE_METRICS, get(handlers::metrics))
        .merge(gateway)
        .merge(console::routes())
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(DefaultBodyLimit::max(REQUEST_BODY_BYTES_MAX))
        .layer(middleware::from_fn_with_state(
            body_timeout,
            read_body_within,
        ))
        .layer(middleware::from_fn_with_state(
            throttled,
            admission::admit_refused_users,
        ))
        .layer(middleware::from_fn(refuse_declared_oversize))
        // Outside the routes and checks above: a preflight is answered before any of them.
        .layer(middleware::from_fn_with_state(
            cross_origin,
            cors::apply_cors,
        ))
        .layer(middleware::from_fn_with_state(metrics, record_request))
        .with_state(state)
}

/// Count every answer by route, status and error code, and time it.
async fn record_request(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let route = route_label(request.extensions().get::<MatchedPath>());
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status();
    let error = response.extensions().get::<ErrorCode>().copied();
    metrics.record_request(route, status.as_u16(), error, elapsed);
    let elapsed_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    tracing::debug!(%method, route, status = status.as_u16(), elapsed_us, "request");
    response
}

/// 413 at once for a `Content-Length` over the limit, without waiting for a body that will
/// be refused anyway. Bodies without a length are cut off by `DefaultBodyLimit` while read.
async fn refuse_declared_oversize(request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(length) if length > REQUEST_BODY_BYTES_MAX as u64 => {
            let message = format!("request body is larger than {REQUEST_BODY_BYTES_MAX} bytes");
            ApiError::new(ErrorCode::PayloadTooLarge, message).into_response()
        }
        _ => next.run(request).await,
    }
}

/// Read the whole body (at most `REQUEST_BODY_BYTES_MAX`) within the body timeout before the
/// handler runs: a client that trickles its body, or declares more than it sends, gets 408
/// `request_timeout` and no longer holds its connection. Requests without a body pass as they
/// are (WebSocket upgrades among them).
async fn read_body_within(
    State(timeout): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    let has_body = request.headers().contains_key(header::TRANSFER_ENCODING)
        || request
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|length| length.as_bytes() != b"0");
    if !has_body {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let limited = http_body_util::Limited::new(body, REQUEST_BODY_BYTES_MAX);
    let read = tokio::time::timeout(timeout, http_body_util::BodyExt::collect(limited)).await;
    let bytes = match read {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => {
            let message = format!("request body is larger than {REQUEST_BODY_BYTES_MAX} bytes");
            return ApiError::new(ErrorCode::PayloadTooLarge, message).into_response();
        }
        Ok(Err(error)) => {
            let message = format!("the request body could not be read: {error}");
            return ApiError::new(ErrorCode::InvalidRequest, message).into_response();
        }
        Err(_) => {
            let message = format!(
                "the request body did not arrive within {} ms",
                timeout.as_millis()
            );
            let mut answer = ApiError::new(ErrorCode::RequestTimeout, message).into_response();
            // The rest of the body may still come: the connection cannot be reused.
            answer.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
            return answer;
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Marks the request's connection as authenticated (it no longer counts against
/// `unauthenticated_connections_max`), when it came through the HTTP shards.
pub(crate) fn connection_authenticated(slot: Option<&Arc<ConnectionSlot>>) {
    if let Some(slot) = slot {
        slot.authenticated();
    }
}

/// A fixed label per route, so that client-chosen paths never become metric series.
fn route_label(matched: Option<&MatchedPath>) -> &'static str {
    match matched.map(MatchedPath::as_str) {
        Some(ROUTE_LOGIN) => ROUTE_LOGIN,
        Some(ROUTE_SQL) => ROUTE_SQL,
        Some(ROUTE_HEALTH) => ROUTE_HEALTH,
        Some(ROUTE_METRICS) => ROUTE_METRICS,
        Some(ROUTE_WS) => ROUTE_WS,
        Some(ROUTE_CLUSTER_STATUS) => ROUTE_CLUSTER_STATUS,
        Some(ROUTE_CLUSTER_MEMBERS) => ROUTE_CLUSTER_MEMBERS,
        Some(ROUTE_CLUSTER_MEMBER) => ROUTE_CLUSTER_MEMBER,
        Some(path) if console::serves(path) => ROUTE_CONSOLE,
        _ => ROUTE_UNMATCHED,
    }
}

#[cfg(test)]
mod tests;
