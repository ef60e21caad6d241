//! The WebSocket JSON gateway, `GET /v1/ws` (docs/websocket.md): the upgrade, the
//! per-connection protocol (`protocol.rs`, without I/O), the connection task that runs it
//! (`connection.rs`) and each subscription's catch-up task (`catch_up.rs`). What a
//! subscription receives is `realtime`'s business; who may subscribe to what is the engine's.

mod admission;
mod catch_up;
mod connection;
mod protocol;

use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};

use crate::connections::ConnectionSlot;
use crate::engine::Engine;
use crate::error::{ApiError, ErrorCode};
use crate::http::handlers::{authenticate, source, Peer};
use crate::http::{AppState, ROUTE_WS};
use crate::limits::{WS_MESSAGE_BYTES_MAX, WS_READ_BUFFER_BYTES};
use admission::WsAdmission;

/// What the gateway serves from: what it shares with the HTTP API (authentication, metrics,
/// the blocking pool, the connection caps) and the engine that compiles subscriptions.
#[derive(Clone)]
pub struct WsGateway {
    http: AppState,
    engine: Arc<Engine>,
}

impl WsGateway {
    pub fn new(http: AppState, engine: Arc<Engine>) -> WsGateway {
        WsGateway { http, engine }
    }
}

/// The gateway's route, `GET /v1/ws`, for the HTTP router to serve beside its own.
pub fn routes<S>(gateway: WsGateway) -> Router<S> {
    Router::new()
        .route(ROUTE_WS, get(upgrade))
        .with_state(gateway)
}

/// Upgrade to a WebSocket. Credentials on the upgrade request (`Authorization: Bearer` or
/// `Basic`) are checked first: bad ones get the HTTP API's 401, good ones start the connection
/// authenticated (or get 503 `too_many_connections` when the user holds its maximum).
async fn upgrade(
    State(state): State<WsGateway>,
    connection: Option<Extension<Arc<ConnectionSlot>>>,
    peer: Peer,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let source = source(&peer);
    let slot = connection.map(|Extension(slot)| slot);
    let mut admission = WsAdmission::new(state.http.connections.clone(), slot);
    let session = match headers.get(header::AUTHORIZATION) {
        Some(_) => Some(authenticate(&state.http, &headers, source).await?),
        None => None,
    };
    if let Some(session) = &session {
        admission
            .admit(session)
            .map_err(|refusal| ApiError::new(ErrorCode::TooManyConnections, refusal.to_string()))?;
    }
    Ok(upgrade
        .read_buffer_size(WS_READ_BUFFER_BYTES)
        .max_message_size(WS_MESSAGE_BYTES_MAX)
        .max_frame_size(WS_MESSAGE_BYTES_MAX)
        .on_upgrade(move |socket| connection::serve(state, socket, session, admission, source)))
}
