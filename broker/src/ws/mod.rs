//! The WebSocket JSON gateway, `GET /v1/ws` (docs/websocket.md): the upgrade, the
//! per-connection protocol (`protocol.rs`, without I/O), the connection task that runs it
//! (`connection.rs`) and each subscription's catch-up task (`catch_up.rs`). What a
//! subscription receives is `realtime`'s business; who may subscribe to what is the engine's.

mod catch_up;
mod connection;
mod protocol;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::Response;

use crate::error::ApiError;
use crate::http::handlers::{authenticate, source, Peer};
use crate::http::AppState;
use crate::limits::{WS_MESSAGE_BYTES_MAX, WS_READ_BUFFER_BYTES};

/// Upgrade to a WebSocket. Credentials on the upgrade request (`Authorization: Bearer` or
/// `Basic`) are checked first: bad ones get the HTTP API's 401, good ones start the connection
/// authenticated.
pub async fn upgrade(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let session = match headers.get(header::AUTHORIZATION) {
        Some(_) => Some(authenticate(&state, &headers, source(&peer)).await?),
        None => None,
    };
    Ok(upgrade
        .read_buffer_size(WS_READ_BUFFER_BYTES)
        .max_message_size(WS_MESSAGE_BYTES_MAX)
        .max_frame_size(WS_MESSAGE_BYTES_MAX)
        .on_upgrade(move |socket| connection::serve(state, socket, session, source(&peer))))
}
