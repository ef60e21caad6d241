//! A synchronous WebSocket client for end-to-end tests of `GET /v1/ws`: it speaks
//! `strand-wire`'s messages over `tungstenite`, with a timeout on every read so that a test
//! that waits for a message that never comes fails instead of hanging.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use strand_wire::{ChangeType, ClientMessage, Row, ServerMessage};
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
        WsClient::try_connect_to(server.http, authorization)
    }

    /// [`WsClient::try_connect`] to the server at `http` (one that may have stopped).
    pub fn try_connect_to(
        http: std::net::SocketAddr,
        authorization: Option<&str>,
    ) -> Result<WsClient, String> {
        let url = format!("ws://{http}/v1/ws");
        let mut request = url.into_client_request().map_err(|e| e.to_string())?;
        if let Some(value) = authorization {
            let value = value.parse().map_err(|_| "bad header value".to_string())?;
            request.headers_mut().insert("authorization", value);
        }
        let stream = TcpStream::connect(http).map_err(|e| e.to_string())?;
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

    /// The next text frame as raw JSON (to see how values are written, e.g. `_seq` as a
    /// string), failing on anything else.
    pub fn recv_json(&mut self) -> serde_json::Value {
        let _ = self
            .socket
            .get_mut()
            .set_read_timeout(Some(WS_RECV_TIMEOUT));
        loop {
            match self.socket.read() {
                Ok(Message::Text(text)) => {
                    return serde_json::from_str(text.as_str())
                        .unwrap_or_else(|e| panic!("{e}: {text}"))
                }
                Ok(Message::Ping(_) | Message::Pong(_)) => continue,
                other => panic!("expected a text frame, got {other:?}"),
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
                bigint: None,
                params: Vec::new(),
                as_of_seq: None,
            },
        },
    }
}

/// A `next_batch` message.
pub fn next_batch_message(id: &str) -> ClientMessage {
    ClientMessage::NextBatch {
        subscription_id: Some(id.to_owned()),
    }
}

/// The `_seq` of a row (sent as a decimal string).
pub fn row_seq(row: &Row) -> u64 {
    match row.get("_seq") {
        Some(serde_json::Value::String(text)) => text
            .parse()
            .unwrap_or_else(|_| panic!("_seq {text:?} is not decimal digits")),
        other => panic!("row without a string _seq: {other:?} in {row:?}"),
    }
}

/// The `subscription_ack` for `id`; returns its `snapshot_end_seq`.
pub fn expect_ack(client: &mut WsClient, id: &str) -> u64 {
    match client.recv() {
        ServerMessage::SubscriptionAck {
            subscription_id,
            snapshot_end_seq,
            ..
        } if subscription_id == id => snapshot_end_seq.0,
        other => panic!("expected subscription_ack for {id}, got {other:?}"),
    }
}

/// The next `initial_data_batch` for `id`.
pub fn expect_batch(client: &mut WsClient, id: &str) -> (Vec<Row>, strand_wire::BatchControl) {
    match client.recv() {
        ServerMessage::InitialDataBatch {
            subscription_id,
            rows,
            batch_control,
        } if subscription_id == id => (rows, batch_control),
        other => panic!("expected initial_data_batch for {id}, got {other:?}"),
    }
}

/// An `error` with `code` about subscription `id`.
pub fn expect_error(client: &mut WsClient, id: &str, code: &str) {
    match client.recv() {
        ServerMessage::Error {
            subscription_id,
            code: got,
            ..
        } if got == code => assert_eq!(subscription_id.as_deref(), Some(id)),
        other => panic!("expected error {code} for {id}, got {other:?}"),
    }
}

/// Subscribe and page through the snapshot (batches of 100): the boundary and rows by `id`.
pub fn snapshot(client: &mut WsClient, id: &str, sql: &str) -> (u64, BTreeMap<i64, Row>) {
    client.send(&subscribe_message(id, sql, Some(100), None));
    let end = expect_ack(client, id);
    let mut state = BTreeMap::new();
    loop {
        let (batch, control) = expect_batch(client, id);
        state.extend(batch.into_iter().map(|row| (row_id(&row), row)));
        if !control.has_more {
            return (end, state);
        }
        client.send(&next_batch_message(id));
    }
}

/// One row's change as a client applies it.
#[derive(Debug)]
pub struct Change {
    pub kind: ChangeType,
    pub row: Row,
    pub old: Option<Row>,
}

/// The next message, which must be a one-row change for `id` (`old_rows` exactly on updates).
pub fn next_change(client: &mut WsClient, id: &str) -> Change {
    match client.recv() {
        ServerMessage::Change {
            subscription_id,
            change_type,
            mut rows,
            old_rows,
            ..
        } if subscription_id == id => {
            assert_eq!(rows.len(), 1, "one change message per row");
            let old = old_rows.map(|mut old| {
                assert_eq!(old.len(), 1, "one old row per change");
                old.remove(0)
            });
            assert_eq!(
                old.is_some(),
                change_type == ChangeType::Update,
                "old_rows exactly on updates"
            );
            Change {
                kind: change_type,
                row: rows.remove(0),
                old,
            }
        }
        other => panic!("expected a change for {id}, got {other:?}"),
    }
}

pub fn expect_change(client: &mut WsClient, id: &str, kind: ChangeType) -> Change {
    let change = next_change(client, id);
    assert_eq!(change.kind, kind, "row {:?}", change.row);
    change
}

/// Apply a change to the client's copy (rows by `id`), checking it against what it holds:
/// inserts are new, updates name the version held, deletes carry the last-seen row stamped
/// with the deleting `_seq`.
pub fn apply_change(state: &mut BTreeMap<i64, Row>, change: &Change) {
    let key = row_id(&change.row);
    match change.kind {
        ChangeType::Insert => {
            let had = state.insert(key, change.row.clone());
            assert!(had.is_none(), "insert of a row the client has: {had:?}");
        }
        ChangeType::Update => {
            let had = state.insert(key, change.row.clone());
            assert!(
                had.is_some(),
                "update of a row the client lacks: {:?}",
                change.row
            );
            assert_eq!(had, change.old, "old_rows is not the client's version");
        }
        ChangeType::Delete => {
            let mut had = state
                .remove(&key)
                .unwrap_or_else(|| panic!("delete of a row the client lacks: {:?}", change.row));
            assert!(
                row_seq(&change.row) > row_seq(&had),
                "a delete carries the deleting _seq"
            );
            had.insert("_seq".into(), change.row["_seq"].clone());
            assert_eq!(had, change.row, "a delete carries the last-seen row");
        }
    }
}

/// The integer `id` column of a row.
pub fn row_id(row: &Row) -> i64 {
    row.get("id")
        .and_then(serde_json::Value::as_i64)
        .unwrap_or_else(|| panic!("row without an integer id: {row:?}"))
}

/// The administrator's connection, authenticated by the upgrade request's header.
pub fn admin_ws(setup: &crate::AdminServer) -> WsClient {
    let mut client = WsClient::connect(&setup.server, Some(&setup.admin));
    match client.recv() {
        ServerMessage::AuthSuccess { .. } => client,
        other => panic!("expected auth_success, got {other:?}"),
    }
}

/// A row of an HTTP result as a change row (a JSON object).
pub fn json_row(value: &serde_json::Value) -> &Row {
    value
        .as_object()
        .unwrap_or_else(|| panic!("row is not an object: {value}"))
}

/// `(id, title, status)` of a row of the tests' `app.tickets` table.
pub fn ticket_fields(row: &Row) -> (i64, &str, &str) {
    let text = |name: &str| {
        row.get(name)
            .and_then(serde_json::Value::as_str)
            .unwrap_or_else(|| panic!("no {name} in {row:?}"))
    };
    (row_id(row), text("title"), text("status"))
}

/// A client's copy, by `id`, of a subscription whose messages may carry several rows (top-K,
/// grouping, time-relative, join subscriptions), with its resume point (the last `"seq"`).
pub struct LiveCopy {
    pub rows: BTreeMap<i64, Row>,
    pub seq: u64,
}

impl LiveCopy {
    /// Subscribes; with `from`, resumes from that `_seq` (no snapshot, an empty copy),
    /// otherwise takes the snapshot (one batch).
    pub fn open(client: &mut WsClient, id: &str, sql: &str, from: Option<u64>) -> LiveCopy {
        client.send(&subscribe_message(id, sql, None, from));
        let seq = expect_ack(client, id);
        let mut copy = LiveCopy {
            rows: BTreeMap::new(),
            seq,
        };
        if from.is_none() {
            let (batch, control) = expect_batch(client, id);
            assert!(!control.has_more);
            copy.rows
                .extend(batch.into_iter().map(|row| (row_id(&row), row)));
        }
        copy
    }

    /// Applies the next message within `within`, which must be a change for `id` with a
    /// `"seq"` above the copy's: `old_rows` and deleted rows must be held. Returns its type
    /// and the ids of its `rows`.
    pub fn apply_next(
        &mut self,
        client: &mut WsClient,
        id: &str,
        within: Duration,
    ) -> (ChangeType, Vec<i64>) {
        match client.next_within(within) {
            Ok(ServerMessage::Change {
                subscription_id,
                change_type,
                rows,
                old_rows,
                seq,
            }) if subscription_id == id => {
                let seq = seq.expect("the change carries its seq").0;
                assert!(seq > self.seq, "changes come in seq order");
                self.seq = seq;
                for row in old_rows.iter().flatten() {
                    assert!(self.rows.remove(&row_id(row)).is_some(), "old row held");
                }
                let ids = rows.iter().map(row_id).collect();
                for row in rows {
                    if change_type == ChangeType::Delete {
                        assert!(
                            self.rows.remove(&row_id(&row)).is_some(),
                            "deleted row held"
                        );
                    } else {
                        self.rows.insert(row_id(&row), row);
                    }
                }
                (change_type, ids)
            }
            other => panic!("expected a change for {id}, got {other:?}"),
        }
    }
}
