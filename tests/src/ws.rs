//! A synchronous WebSocket client for end-to-end tests of `GET /v1/ws`: it speaks
//! `strand-wire`'s messages over `tungstenite`, with a timeout on every read so that a test
//! that waits for a message that never comes fails instead of hanging.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use strand_wire::{ClientMessage, ServerMessage};
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, WebSocket};

use crate::StrandServer;

/// How long [`WsClient::recv`] waits by default.
pub const WS_RECV_TIMEOUT: Duration = Duration::from_secs(20);

/// What the server did instead of sending a message.
#[derive(Debug)]
pub enum WsEnd {
    /// A close frame, with its code and reason.
    Closed(Option<(CloseCode, String)>),
    /// Nothing arrived in time.
    TimedOut,
    /// The connection broke, or a frame was not a text frame with a server message.
    Failed(String),
}

pub struct WsClient {
    socket: WebSocket<TcpStream>,
}

impl WsClient {
    /// Connect to `/v1/ws`, with `authorization` as the upgrade request's `Authorization`
    /// header when given. Panics if the upgrade fails; see [`WsClient::try_connect`].
    pub fn connect(server: &StrandServer, authorization: Option<&str>) -> WsClient {
        match WsClient::try_connect(server, authorization) {
            Ok(client) => client,
            Err(error) => panic!("WebSocket upgrade failed: {error}"),
        }
    }

    /// Connect, returning the HTTP status of a refused upgrade as the error.
    pub fn try_connect(
        server: &StrandServer,
        authorization: Option<&str>,
    ) -> Result<WsClient, String> {
        let url = format!("ws://{}/v1/ws", server.http);
        let mut request = url.into_client_request().map_err(|e| e.to_string())?;
        if let Some(value) = authorization {
            let value = value.parse().map_err(|_| "bad header value".to_string())?;
            request.headers_mut().insert("authorization", value);
        }
        let stream = TcpStream::connect(server.http).map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(WS_RECV_TIMEOUT))
            .map_err(|e| e.to_string())?;
        match tungstenite::client(request, stream) {
            Ok((socket, _)) => Ok(WsClient { socket }),
            Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
                let body = response
                    .body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                Err(format!("HTTP {} {body}", response.status().as_u16()))
            }
            Err(error) => Err(error.to_string()),
        }
    }

    /// Connect and authenticate with user name and password; returns the client after
    /// `auth_success`.
    pub fn authenticated(server: &StrandServer, user: &str, password: &str) -> WsClient {
        let mut client = WsClient::connect(server, None);
        client.send(&ClientMessage::Authenticate {
            method: strand_wire::AuthMethod::Basic,
            username: Some(user.to_owned()),
            password: Some(password.to_owned()),
            token: None,
        });
        match client.recv() {
            ServerMessage::AuthSuccess { .. } => client,
            other => panic!("expected auth_success, got {other:?}"),
        }
    }

    pub fn send(&mut self, message: &ClientMessage) {
        self.send_text(&message.encode());
    }

    /// Send any text frame (for malformed input).
    pub fn send_text(&mut self, text: &str) {
        self.socket
            .send(Message::text(text))
            .unwrap_or_else(|e| panic!("sending {text}: {e}"));
    }

    /// Send a binary frame.
    pub fn send_binary(&mut self, bytes: Vec<u8>) {
        self.socket
            .send(Message::binary(bytes))
            .unwrap_or_else(|e| panic!("sending binary: {e}"));
    }

    /// The next server message; panics on a close, an error or a timeout.
    pub fn recv(&mut self) -> ServerMessage {
        match self.next() {
            Ok(message) => message,
            Err(end) => panic!("expected a message, got {end:?}"),
        }
    }

    /// The next server message, or how the connection ended instead. Pings are answered and
    /// skipped.
    // Not an `Iterator`: a message or how the connection ended, with a timeout.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<ServerMessage, WsEnd> {
        self.next_within(WS_RECV_TIMEOUT)
    }

    pub fn next_within(&mut self, timeout: Duration) -> Result<ServerMessage, WsEnd> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(WsEnd::TimedOut);
            }
            let _ = self.socket.get_mut().set_read_timeout(Some(left));
            match self.socket.read() {
                Ok(Message::Text(text)) => {
                    return ServerMessage::decode(text.as_str())
                        .map_err(|e| WsEnd::Failed(format!("undecodable {text}: {e}")));
                }
                Ok(Message::Close(frame)) => {
                    return Err(WsEnd::Closed(
                        frame.map(|f: CloseFrame| (f.code, f.reason.to_string())),
                    ));
                }
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => continue,
                Ok(Message::Binary(_)) => return Err(WsEnd::Failed("binary frame".into())),
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(WsEnd::TimedOut)
                }
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Err(WsEnd::Closed(None))
                }
                Err(error) => return Err(WsEnd::Failed(error.to_string())),
            }
        }
    }

    /// Nothing arrives within `quiet` (e.g. no change after an unsubscribe).
    pub fn expect_silence(&mut self, quiet: Duration) {
        match self.next_within(quiet) {
            Err(WsEnd::TimedOut) => {}
            other => panic!("expected silence, got {other:?}"),
        }
    }

    /// Messages until `stop` returns true for one (included), failing on a close or timeout.
    pub fn recv_until(
        &mut self,
        mut stop: impl FnMut(&ServerMessage) -> bool,
    ) -> Vec<ServerMessage> {
        let mut seen = Vec::new();
        loop {
            let message = self.recv();
            let done = stop(&message);
            seen.push(message);
            if done {
                return seen;
            }
        }
    }

    /// Close politely.
    pub fn close(mut self) {
        let _ = self.socket.close(None);
        let _ = self.socket.flush();
    }

    /// The underlying socket, e.g. to stop reading and let the server's buffers fill.
    pub fn socket_mut(&mut self) -> &mut WebSocket<TcpStream> {
        &mut self.socket
    }
}

/// A `subscribe` message.
pub fn subscribe_message(
    id: &str,
    sql: &str,
    batch_size: Option<u32>,
    from_seq: Option<u64>,
) -> ClientMessage {
    ClientMessage::Subscribe {
        subscription: strand_wire::Subscription {
            id: id.to_owned(),
            sql: sql.to_owned(),
            options: strand_wire::SubscribeOptions {
                batch_size,
                from_seq_id: from_seq.map(strand_wire::SeqText),
            },
        },
    }
}

/// A `next_batch` message.
pub fn next_batch_message(id: &str) -> ClientMessage {
    ClientMessage::NextBatch {
        subscription_id: id.to_owned(),
    }
}

/// The `_seq` of a row (sent as a decimal string).
pub fn row_seq(row: &strand_wire::Row) -> u64 {
    match row.get("_seq") {
        Some(serde_json::Value::String(text)) => text
            .parse()
            .unwrap_or_else(|_| panic!("_seq {text:?} is not decimal digits")),
        other => panic!("row without a string _seq: {other:?} in {row:?}"),
    }
}

impl WsClient {
    /// The `subscription_ack` for `id`; returns its `snapshot_end_seq`.
    pub fn expect_ack(&mut self, id: &str) -> u64 {
        match self.recv() {
            ServerMessage::SubscriptionAck {
                subscription_id,
                snapshot_end_seq,
                ..
            } if subscription_id == id => snapshot_end_seq.0,
            other => panic!("expected subscription_ack for {id}, got {other:?}"),
        }
    }

    /// The next `initial_data_batch` for `id`.
    pub fn expect_batch(&mut self, id: &str) -> (Vec<strand_wire::Row>, strand_wire::BatchControl) {
        match self.recv() {
            ServerMessage::InitialDataBatch {
                subscription_id,
                rows,
                batch_control,
            } if subscription_id == id => (rows, batch_control),
            other => panic!("expected initial_data_batch for {id}, got {other:?}"),
        }
    }
}
