//! One WebSocket connection, as a task on its HTTP shard: it reads client frames and runs
//! what [`Protocol`] says, and writes the connection's [`Outbox`] to the socket. Snapshot
//! batches and log replays run on the blocking pool; a subscription's catch-up (the changes
//! between its snapshot or resume point and the live feed) is a task of its own, so one slow
//! replay never stops the connection from answering.
//!
//! Messages of one subscription are queued in order by one producer at a time: the
//! connection (ack, batches), then the catch-up task, then, once it joined, the feed.

use std::sync::Arc;
use std::time::Duration;
use strand_sql_view::Privilege;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::SinkExt;
use strand_log::{ReadHold, Seq};
use strand_sql_view::TableKind;
use strand_wire::{codes, BatchControl, BatchStatus, ResumeMode, SeqText, ServerMessage};
use tokio::sync::{mpsc, watch};

use super::admission::WsAdmission;
use super::catch_up::{resume_too_old, CatchUp};
use super::protocol::{Protocol, Step, SubscribeRequest};
use super::WsGateway;
use crate::auth::{Credentials, Source};
use crate::error::{ApiError, ErrorCode};
use crate::limits::{OUTBOX_BYTES_MAX, WS_GOODBYE_TIMEOUT_MS, WS_SEND_BATCH_MESSAGES_MAX};
use crate::metrics::BasicAuth;
use crate::realtime::SubscriptionTarget;
use crate::realtime::{
    HistoryError, KeyedCatchUp, KeyedOpen, LiveSubscription, Outbox, OutboxReceiver, Realtime,
    SnapshotCursor,
};
use crate::session::Session;
use crate::tables::versions::AsOfError;
use crate::users::Standing;

mod subscribe;

/// WebSocket close code for a policy violation (failed authentication, slow consumer).
const CLOSE_POLICY: u16 = 1008;

/// Why the connection ends.
enum End {
    Client,
    AuthFailed,
    /// No `authenticate` within `--auth-timeout-ms` of the upgrade.
    AuthTimeout,
    Slow,
    /// The session's user was dropped: its subscriptions ended with `user_dropped`.
    UserDropped,
    /// Still unauthenticated, it was evicted to admit a newer connection (`connections.rs`).
    Evicted,
}

struct ActiveSubscription {
    live: Arc<LiveSubscription>,
    /// The snapshot still being paged, with its batch size; `None` once it is delivered
    /// (boxed: idle subscriptions should not carry its size).
    snapshot: Option<Box<(SnapshotCursor, usize)>>,
    /// From before the snapshot (or the resume point's floor check) until the catch-up joins
    /// the feed: compaction keeps what the pages and the catch-up still read.
    hold: Option<ReadHold>,
}

struct Connection {
    state: WsGateway,
    session: Option<Session>,
    protocol: Protocol<ActiveSubscription>,
    outbox: Outbox,
    /// The engine's realtime hub, once the first subscription named it.
    realtime: Option<Arc<Realtime>>,
    /// Subscriptions the server ended (a catch-up that failed, a feed that could not read, DDL
    /// on their table) are reported here by key, after their error was queued.
    ended: mpsc::UnboundedSender<u64>,
    /// Its count among the server's connections (and its user's).
    admission: WsAdmission,
    /// The client's address, for the brute-force limit on password checks.
    source: Source,
}

pub(super) async fn serve(
    state: WsGateway,
    mut socket: WebSocket,
    session: Option<Session>,
    admission: WsAdmission,
    source: Source,
) {
    let metrics = state.http.metrics.clone();
    metrics.ws_connection_opened();
    let (outbox, mut outgoing) = Outbox::new(OUTBOX_BYTES_MAX);
    let (ended, mut ended_rx) = mpsc::unbounded_channel();
    let mut access = state.http.auth.directory().access_changes();
    let mut connection = Connection {
        protocol: Protocol::new(session.is_some()),
        state,
        session,
        outbox,
        realtime: None,
        ended,
        admission,
        source,
    };
    if let Some(session) = connection.session.clone() {
        connection.reply(auth_success(&session)).await;
    }
    let end = connection
        .run(&mut socket, &mut outgoing, &mut ended_rx, &mut access)
        .await;
    connection.end_all();
    match end {
        End::Client => {}
        End::AuthFailed | End::AuthTimeout | End::UserDropped | End::Evicted => {
            let reason = match end {
                End::UserDropped => codes::USER_DROPPED,
                End::AuthTimeout => "authentication timeout",
                End::Evicted => crate::connections::TOO_MANY_CONNECTIONS,
                _ => "authentication failed",
            };
            let goodbye = async {
                while let Ok(text) = outgoing.try_recv() {
                    let _ = socket.send(Message::Text(text.into())).await;
                }
                let _ = socket.send(close(CLOSE_POLICY, reason)).await;
            };
            let goodbye_timeout = Duration::from_millis(WS_GOODBYE_TIMEOUT_MS);
            let _ = tokio::time::timeout(goodbye_timeout, goodbye).await;
        }
        End::Slow => {
            metrics.slow_consumer_disconnect();
            let error = ServerMessage::error(
                None,
                codes::SLOW_CONSUMER,
                "the client did not read fast enough; resume from the last _seq received",
            );
            let goodbye = async {
                let _ = socket.send(Message::Text(error.encode().into())).await;
                let _ = socket.send(close(CLOSE_POLICY, codes::SLOW_CONSUMER)).await;
            };
            let goodbye_timeout = Duration::from_millis(WS_GOODBYE_TIMEOUT_MS);
            let _ = tokio::time::timeout(goodbye_timeout, goodbye).await;
        }
    }
    metrics.ws_connection_closed();
}

impl Connection {
    async fn run(
        &mut self,
        socket: &mut WebSocket,
        outgoing: &mut OutboxReceiver,
        ended: &mut mpsc::UnboundedReceiver<u64>,
        access: &mut watch::Receiver<u64>,
    ) -> End {
        let slow = outgoing.slow_watch();
        let auth_deadline =
            tokio::time::Instant::now() + self.state.http.connections.config().auth_timeout;
        loop {
            tokio::select! {
                biased;
                () = slow.turned_slow() => return End::Slow,
                () = tokio::time::sleep_until(auth_deadline), if self.session.is_none() => {
                    let message = "no authenticate message within the auth timeout".to_string();
                    self.reply(ServerMessage::AuthError { message }).await;
                    return End::AuthTimeout;
                }
                () = self.admission.evicted(), if self.session.is_none() => return End::Evicted,
                Some(key) = ended.recv() => self.forget(key),
                Ok(()) = access.changed() => {
                    if let Some(end) = self.recheck_access() {
                        return end;
                    }
                }
                text = outgoing.recv() => {
                    let Some(text) = text else { return End::Client };
                    tokio::select! {
                        sent = send_queued(socket, text, outgoing) => {
                            if sent.is_err() {
                                return End::Client;
                            }
                        }
                        () = slow.turned_slow() => return End::Slow,
                    }
                }
                frame = socket.recv() => {
                    let step = match frame {
                        Some(Ok(Message::Text(text))) => self.protocol.on_text(text.as_str()),
                        Some(Ok(Message::Binary(_))) => self.protocol.on_binary(),
                        Some(Ok(Message::Close(_)) | Err(_)) | None => return End::Client,
                        Some(Ok(_)) => continue,
                    };
                    if let Some(end) = self.step(step).await {
                        return end;
                    }
                }
            }
        }
    }

    async fn step(&mut self, step: Step) -> Option<End> {
        match step {
            Step::Reply(message) => self.reply(message).await,
            Step::Authenticate(credentials) => return self.authenticate(credentials).await,
            Step::Subscribe(request) => self.subscribe(request).await,
            Step::NextBatch { id: Some(id) } => self.next_batch(&id).await,
            Step::NextBatch { id: None } => self.next_batch_unnamed().await,
            Step::Unsubscribe { id } => self.unsubscribe(&id),
        }
        None
    }

    /// A user or grant changed: end the subscriptions the session's user may no longer read
    /// (`permission_revoked`), or all of them if the user was dropped (`user_dropped`, and
    /// the connection closes). Runs at once after the change commits. A later subscribe uses
    /// the user's current role.
    fn recheck_access(&mut self) -> Option<End> {
        let session = self.session.clone()?;
        let directory = self.state.http.auth.directory();
        let user = directory
            .user(session.user().as_str())
            .filter(|user| user.incarnation == session.incarnation());
        let Some(user) = user else {
            for entry in self.protocol.take_all() {
                let text = format!(
                    "user {} was dropped; the subscription has ended",
                    session.user()
                );
                let id = entry.live.id.clone();
                entry
                    .live
                    .end_with(&ServerMessage::error(Some(&id), codes::USER_DROPPED, text));
                self.end(entry);
            }
            self.session = None;
            return Some(End::UserDropped);
        };
        let session = session.with_role(user.role);
        // The first table of each subscription its user may no longer read (a join's
        // others count too).
        let lost = |entry: &ActiveSubscription| -> Option<String> {
            let select = entry.live.plan.select();
            let joined = select.join().map_or(&[][..], |join| &join.sources()[1..]);
            let tables = std::iter::once(select.table()).chain(joined.iter().map(|s| s.table()));
            let mut tables = tables.into_iter();
            tables
                .find(|table| {
                    let object = match table.kind() {
                        TableKind::Shared => Some(table.name()),
                        _ => None,
                    };
                    let standing = directory.standing(
                        session.user(),
                        session.incarnation(),
                        object,
                        Privilege::Select,
                    );
                    standing != Standing::Allowed
                })
                .map(|table| table.name().to_string())
        };
        let revoked = self.protocol.filter_ids(|entry| lost(entry).is_some());
        for id in revoked {
            let Some(entry) = self.protocol.subscription_ended(&id) else {
                continue;
            };
            let table =
                lost(&entry).unwrap_or_else(|| entry.live.plan.select().table().name().to_string());
            let text = format!(
                "{} no longer holds SELECT on {table}; the subscription has ended",
                session.user()
            );
            let message = ServerMessage::error(Some(&id), codes::PERMISSION_REVOKED, text);
            entry.live.end_with(&message);
            self.end(entry);
        }
        self.session = Some(session);
        None
    }

    async fn reply(&self, message: ServerMessage) {
        // Fails only when the connection is closing; the loop sees that on its own.
        let _ = self.outbox.push_when_room(message.encode()).await;
    }

    async fn authenticate(&mut self, credentials: Credentials) -> Option<End> {
        let auth = self.state.http.auth.clone();
        let outcome = match credentials {
            Credentials::Bearer(_) => auth.authenticate(&credentials).map_err(ApiError::from),
            Credentials::Basic { .. } => match auth.authenticate_cached(&credentials) {
                Some(session) => {
                    self.state.http.metrics.basic_auth(BasicAuth::Cached);
                    Ok(session)
                }
                None => {
                    self.state.http.metrics.basic_auth(BasicAuth::Verified);
                    let source = self.source;
                    let work = move || Ok(auth.authenticate_from(&credentials, source)?);
                    self.state.http.blocking(work).await
                }
            },
        };
        match outcome {
            Ok(session) => {
                if let Err(refusal) = self.admission.admit(&session) {
                    let code = crate::connections::TOO_MANY_CONNECTIONS;
                    let refused = ServerMessage::error(None, code, refusal.to_string());
                    self.reply(refused).await;
                    return Some(End::AuthFailed);
                }
                tracing::debug!(user = %session.user(), "websocket authenticated");
                self.reply(auth_success(&session)).await;
                self.session = Some(session);
                self.protocol.authenticated();
                None
            }
            Err(error) if error.code == ErrorCode::TooManyAttempts => {
                // An error with the code (and the wait in its message), then the close.
                let code = codes::TOO_MANY_ATTEMPTS;
                let refusal = ServerMessage::error(None, code, error.message);
                self.reply(refusal).await;
                Some(End::AuthFailed)
            }
            Err(error) => {
                let message = error.message;
                self.reply(ServerMessage::AuthError { message }).await;
                Some(End::AuthFailed)
            }
        }
    }

    /// End a subscription with an error message.
    async fn fail(&mut self, id: &str, error: &ApiError) {
        self.unsubscribe(id);
        self.refuse(id, error).await;
    }

    fn unsubscribe(&mut self, id: &str) {
        if let Some(entry) = self.protocol.subscription_ended(id) {
            self.end(entry);
        }
    }

    /// The server ended subscription `key` (its error is queued already): free its id.
    fn forget(&mut self, key: u64) {
        if let Some(id) = self.protocol.find(|entry| entry.live.key == key) {
            self.unsubscribe(&id);
        }
    }

    fn end(&self, entry: ActiveSubscription) {
        if let (Some(feed), Some(realtime)) = (entry.live.end(), &self.realtime) {
            realtime.leave(&feed, entry.live.key);
        }
        self.state.http.metrics.subscription_removed();
    }

    fn end_all(&mut self) {
        for entry in self.protocol.take_all() {
            self.end(entry);
        }
    }
}

fn auth_success(session: &Session) -> ServerMessage {
    ServerMessage::AuthSuccess {
        user: session.user().to_string(),
        role: session.role().to_string(),
    }
}

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

/// Send `first` and the messages queued behind it (at most [`WS_SEND_BATCH_MESSAGES_MAX`]),
/// flushed once: a fan-out that queues many changes for one connection costs one socket
/// write, not one per change.
async fn send_queued(
    socket: &mut WebSocket,
    first: String,
    outgoing: &mut OutboxReceiver,
) -> Result<(), axum::Error> {
    socket.feed(Message::Text(first.into())).await?;
    for _ in 1..WS_SEND_BATCH_MESSAGES_MAX {
        let Ok(text) = outgoing.try_recv() else { break };
        socket.feed(Message::Text(text.into())).await?;
    }
    socket.flush().await
}
