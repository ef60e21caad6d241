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
use strand_log::Seq;
use strand_sql_view::TableKind;
use strand_wire::{codes, BatchControl, BatchStatus, ResumeMode, SeqText, ServerMessage};
use tokio::sync::{mpsc, watch};

use super::admission::WsAdmission;
use super::catch_up::{resume_too_old, CatchUp};
use super::protocol::{Protocol, Step, SubscribeRequest};
use super::WsGateway;
use crate::auth::{Credentials, Source};
use crate::error::{ApiError, ErrorCode};
use crate::limits::{OUTBOX_BYTES_MAX, WS_GOODBYE_TIMEOUT_MS};
use crate::metrics::BasicAuth;
use crate::realtime::SubscriptionTarget;
use crate::realtime::{
    HistoryError, KeyedCatchUp, KeyedOpen, LiveSubscription, Outbox, OutboxReceiver, Realtime,
    SnapshotCursor,
};
use crate::session::Session;
use crate::tables::versions::AsOfError;
use crate::users::Standing;

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
                        sent = socket.send(Message::Text(text.into())) => {
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
        let revoked = self.protocol.filter_ids(|entry| {
            let table = entry.live.plan.select().table();
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
        });
        for id in revoked {
            let Some(entry) = self.protocol.subscription_ended(&id) else {
                continue;
            };
            let table = entry.live.plan.select().table().name().to_string();
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

    async fn subscribe(&mut self, request: SubscribeRequest) {
        let SubscribeRequest {
            id,
            sql,
            batch_size,
            from_seq,
        } = request;
        let Some(session) = self.session.clone() else {
            return;
        };
        // Compiling is brief (a parse, a plan, a cached partition); on the connection's
        // thread it costs no hand-off and no blocking-pool thread per concurrent subscribe.
        let compiled = self.state.engine.subscription(&session, &sql);
        let target = match compiled {
            Ok(target) => target,
            Err(error) => return self.refuse(&id, &error).await,
        };
        let live = Arc::new(LiveSubscription::new(
            target.realtime.next_key(),
            id.clone(),
            target.plan.clone(),
            target.partition.clone(),
            self.outbox.clone(),
            self.ended.clone(),
        ));
        target.realtime.register(&target.table_prefix, &live);
        self.realtime.get_or_insert_with(|| target.realtime.clone());
        let schema = target.plan.schema();
        let mut entry = ActiveSubscription {
            live,
            snapshot: None,
        };
        let mut keyed = None;
        if let Some(refusal) = from_seq.and_then(|from| resume_across_ddl(&id, from, &target)) {
            self.protocol.subscription_ended(&id);
            return self.reply(refusal).await;
        }
        let boundary = match from_seq {
            Some(from) if from >= target.partition.partition().lowest_resumable_seq() => from,
            Some(from) => {
                // The exact history is gone: the newest state of each changed key, if that
                // is still there.
                let (partition, plan) = (target.partition.clone(), target.plan.clone());
                let opened = tokio::task::spawn_blocking(move || {
                    KeyedCatchUp::open(&partition, &plan, from)
                })
                .await;
                match opened {
                    Ok(Ok(KeyedOpen::Ready(catch_up))) => {
                        let boundary = catch_up.boundary();
                        keyed = Some(catch_up);
                        boundary
                    }
                    Ok(Ok(KeyedOpen::TooOld { lowest })) => {
                        self.protocol.subscription_ended(&id);
                        return self.reply(resume_too_old(&id, lowest)).await;
                    }
                    Ok(Err(error)) => return self.refuse(&id, &ApiError::internal(&error)).await,
                    Err(error) => return self.refuse(&id, &ApiError::internal(&error)).await,
                }
            }
            None => {
                // Opening reads no rows (the batches do); it waits only while a writer holds
                // the partition, and then not on the connection's thread.
                let (partition, plan) = (target.partition.clone(), target.plan.clone());
                let opened = match SnapshotCursor::open_now(&partition, &plan) {
                    Some(cursor) => Ok(cursor),
                    None => {
                        tokio::task::spawn_blocking(move || SnapshotCursor::open(&partition, &plan))
                            .await
                    }
                };
                match opened {
                    Ok(mut cursor) => {
                        cursor.raise_boundary(target.columns_changed.unwrap_or(Seq::ZERO));
                        let boundary = cursor.boundary();
                        entry.snapshot = Some(Box::new((cursor, batch_size)));
                        boundary
                    }
                    Err(error) => return self.refuse(&id, &ApiError::internal(&error)).await,
                }
            }
        };
        self.state.http.metrics.subscription_added();
        let ack = ServerMessage::SubscriptionAck {
            subscription_id: id.to_string(),
            schema,
            snapshot_end_seq: SeqText(boundary.0),
            resume: keyed.as_ref().map(|_| ResumeMode::Keyed),
        };
        // Refused only if DDL ended it meanwhile (its error is queued) or the connection is
        // closing.
        let _ = entry.live.push_when_room(ack.encode()).await;
        let resuming = entry.snapshot.is_none();
        self.protocol.attach(&id, entry);
        if resuming {
            self.start_catch_up(&id, boundary, keyed);
        } else {
            self.next_batch(&id).await;
        }
    }

    async fn refuse(&mut self, id: &str, error: &ApiError) {
        self.protocol.subscription_ended(id);
        let message = match &error.position {
            Some(p) => format!("{} (line {}, column {})", error.message, p.line, p.column),
            None => error.message.clone(),
        };
        let refusal = ServerMessage::error(Some(id), error.code.as_str(), message);
        self.reply(refusal).await;
    }

    /// Send the next snapshot batch; after the last, start the catch-up.
    async fn next_batch(&mut self, id: &str) {
        let Some(entry) = self.protocol.subscription_mut(id) else {
            return;
        };
        let Some((mut cursor, batch_size)) = entry.snapshot.take().map(|b| *b) else {
            let text = format!("subscription '{id}' has no snapshot batch pending");
            let error = ServerMessage::error(Some(id), codes::NO_PENDING_BATCH, text);
            return self.reply(error).await;
        };
        let plan = entry.live.plan.clone();
        let read = tokio::task::spawn_blocking(move || {
            let batch = cursor.next_batch(&plan, batch_size);
            (cursor, batch)
        })
        .await;
        let (cursor, rows, batch_num, has_more) = match read {
            Ok((cursor, Ok(batch))) => {
                self.state.http.metrics.snapshot_rows_scanned(batch.scanned);
                (cursor, batch.rows, batch.number, batch.has_more)
            }
            Ok((cursor, Err(HistoryError::AsOf(AsOfError::Removed(_))))) => {
                // History after the boundary was compacted away while the snapshot was
                // paged: its catch-up could not be exact either.
                self.unsubscribe(id);
                let lowest = cursor.partition().partition().lowest_resumable_seq();
                return self.reply(resume_too_old(id, lowest)).await;
            }
            Ok((_, Err(HistoryError::Damaged(error)))) => return self.fail(id, &error).await,
            // `data_corrupt` when the records it needs are damaged.
            Ok((_, Err(HistoryError::Log(error)))) => {
                return self.fail(id, &ApiError::from_log(&error)).await
            }
            Ok((_, Err(error))) => return self.fail(id, &ApiError::internal(&error)).await,
            Err(error) => return self.fail(id, &ApiError::internal(&error)).await,
        };
        let boundary = cursor.boundary();
        let Some(entry) = self.protocol.subscription_mut(id) else {
            return;
        };
        if has_more {
            entry.snapshot = Some(Box::new((cursor, batch_size)));
        }
        let live = entry.live.clone();
        let status = if has_more {
            BatchStatus::Loading
        } else {
            BatchStatus::Ready
        };
        let batch = ServerMessage::InitialDataBatch {
            subscription_id: id.to_owned(),
            rows,
            batch_control: BatchControl {
                batch_num,
                status,
                has_more,
                snapshot_end_seq: SeqText(boundary.0),
            },
        };
        if live.push_when_room(batch.encode()).await.is_err() {
            return;
        }
        if !has_more {
            self.start_catch_up(id, boundary, None);
        }
    }

    /// `next_batch` without an id: the one subscription with a batch pending is meant.
    async fn next_batch_unnamed(&mut self) {
        let pending = self.protocol.filter_ids(|entry| entry.snapshot.is_some());
        match pending.as_slice() {
            [id] => self.next_batch(&id.clone()).await,
            [] => {
                let text = "no subscription on this connection has a snapshot batch pending";
                let error = ServerMessage::error(None, codes::NO_PENDING_BATCH, text);
                self.reply(error).await;
            }
            several => {
                let mut ids: Vec<&str> = several.iter().map(|id| &**id).collect();
                ids.sort_unstable();
                let text = format!(
                    "several subscriptions have a snapshot batch pending ({}); name one with \
                     subscription_id",
                    ids.join(", ")
                );
                let error = ServerMessage::error(None, codes::INVALID_MESSAGE, text);
                self.reply(error).await;
            }
        }
    }

    /// Bring subscription `id` from `after` to the live feed (first sending `keyed`, a keyed
    /// resume's changes, if any).
    fn start_catch_up(&mut self, id: &str, after: Seq, keyed: Option<KeyedCatchUp>) {
        let Some(realtime) = self.realtime.clone() else {
            return;
        };
        let Some(entry) = self.protocol.subscription_mut(id) else {
            return;
        };
        // Usually nothing was written since the boundary: join the feed now, without a task
        // (an idle subscription then leaves no task's memory behind).
        if keyed.is_none() && realtime.join(&entry.live, after).is_ok() {
            return;
        }
        let task = CatchUp {
            live: entry.live.clone(),
            realtime,
            keyed,
        };
        tokio::spawn(task.run(after));
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

/// The refusal of a resume from `from` when DDL since makes changes unable to bring the
/// client's copy up to date: `from` is from a table of the same name that was dropped (between
/// the name's first creation and this table's: `table_dropped`), or from this table before
/// columns were added to a `SELECT *` subscription (`schema_changed`: the copy lacks them).
/// `lowest_seq` says from where a resume would be served; the client takes a fresh snapshot.
/// A `from` older than any table of the name (e.g. `1`, "everything") replays the whole
/// history, which needs no earlier copy.
fn resume_across_ddl(id: &str, from: Seq, target: &SubscriptionTarget) -> Option<ServerMessage> {
    let table = target.plan.select().table().name();
    let (code, floor, what) = if from < target.name_first_created {
        return None;
    } else if from < target.created {
        let what = "was dropped and created again";
        (codes::TABLE_DROPPED, target.created, what)
    } else {
        let changed = target.columns_changed.filter(|changed| from < *changed)?;
        (codes::SCHEMA_CHANGED, changed, "has new columns")
    };
    Some(ServerMessage::Error {
        subscription_id: Some(id.to_owned()),
        code: code.to_owned(),
        message: format!(
            "table {table} {what} since this _seq; subscribe without from_seq_id for a fresh \
             snapshot"
        ),
        lowest_seq: Some(SeqText(floor.0)),
    })
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
