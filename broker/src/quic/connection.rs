//! One QUIC connection, from handshake to close: check ALPN, authenticate (the first request
//! must be `auth`; argon2 runs on a blocking thread), then serve each bidirectional stream as
//! one request in its own task. Bad input fails its stream only; a connection that keeps
//! sending it is closed with [`close::connection::PROTOCOL_VIOLATION`].
//!
//! The handshake and the auth phase together have `--auth-timeout-ms`; the connection counts
//! as unauthenticated until then ([`ConnectionSlot`]) and afterwards against its user's
//! connection cap ([`UserClaim`]); until then it may also be evicted for a newer one. Its frames may hold only what [`ConnectionFrames`] admits.
//!
//! Owns: the per-connection state (session, bad-frame budget, stream tasks). Does not own: the
//! TLS setup, frame decoding (`stream.rs`) or what requests do ([`QuicHandlers`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use quinn::VarInt;
use strand_wire::quic::close;
use strand_wire::quic::{codes, AuthOk, Credentials, Message, RequestId, ALPN};
use tokio::task::JoinSet;
use tracing::Instrument;

use super::frame_budget::{ConnectionFrames, FrameBudget};
use super::handlers::QuicHandlers;
use super::receive_budget::{ReceiveBudget, ReceiveShare};
use super::responder::Responder;
use super::stream::{fail_stream, read_request, Inbound};
use crate::auth::{self, Authenticator};
use crate::cluster::rpc::CLUSTER_ALPN;
use crate::cluster::serve::PeerService;
use crate::connections::{ConnectionLimits, ConnectionSlot, UserClaim};
use crate::limits::{
    BAD_FRAMES_PER_CONNECTION_MAX, QUIC_CLOSE_FLUSH_TIMEOUT_MS, QUIC_REQUEST_READ_TIMEOUT_MS,
};
use crate::session::Session;
use crate::throttle::Admission;

/// What every connection shares.
pub(crate) struct Shared {
    pub(crate) auth: Arc<Authenticator>,
    pub(crate) handlers: Arc<QuicHandlers>,
    pub(crate) receive: Arc<ReceiveBudget>,
    pub(crate) connections: Arc<ConnectionLimits>,
    pub(crate) frames: Arc<FrameBudget>,
    /// A cluster member's answers to the other nodes (ALPN `strand-cluster/1`).
    pub(crate) cluster: Option<Arc<PeerService>>,
}

/// What a connection turned out to be after its handshake.
enum Opened {
    /// A client, authenticated: its session and its count against the user's cap.
    Client(quinn::Connection, Session, UserClaim),
    /// Another member of this node's cluster (not yet proved: [`PeerService::serve`] does).
    Peer(quinn::Connection, Arc<PeerService>),
}

/// Serves one incoming connection until it closes. Never panics on anything the peer sends.
pub(crate) async fn serve(incoming: quinn::Incoming, shared: Arc<Shared>, slot: ConnectionSlot) {
    let remote = incoming.remote_address();
    let span = tracing::info_span!("quic", %remote, user = tracing::field::Empty);
    async move {
        // Counted as open until this task ends, however it ends.
        let _open = shared.handlers.metrics().quic_connection_opened();
        // Until it authenticates, the connection may be evicted for a newer one
        // (`connections.rs`); dropping the phase's future then abandons or closes it.
        let opened = tokio::select! {
            opened = handshake_and_authenticate(incoming, &shared, remote) => opened,
            () = slot.evicted() => {
                tracing::info!("unauthenticated QUIC connection evicted for a newer one");
                None
            }
        };
        let (connection, session, _claim) = match opened {
            Some(Opened::Client(connection, session, claim)) => (connection, session, claim),
            Some(Opened::Peer(connection, peers)) => {
                // Counted as unauthenticated until it proves the secret; members are few and
                // named by --cluster, so then they count against no client cap.
                let admitted = peers.admit(&connection).await;
                drop(slot);
                if let Some(peer) = admitted {
                    peers.serve(connection, peer).await;
                }
                return;
            }
            None => return,
        };
        slot.authenticated();
        tracing::Span::current().record("user", session.user().to_string());
        let share = shared.receive.join();
        serve_requests(&connection, &shared, Arc::new(session), share).await;
        drop(slot);
    }
    .instrument(span)
    .await;
}

/// The handshake, ALPN check and auth phase, together within `--auth-timeout-ms`: the
/// connection, its session and its count against the user's cap, or `None` once it is closed.
async fn handshake_and_authenticate(
    incoming: quinn::Incoming,
    shared: &Shared,
    remote: SocketAddr,
) -> Option<Opened> {
    let auth_timeout = shared.connections.config().auth_timeout;
    let deadline = tokio::time::Instant::now() + auth_timeout;
    let connection = match tokio::time::timeout_at(deadline, incoming).await {
        Ok(Ok(connection)) => connection,
        Ok(Err(error)) => {
            tracing::info!(%error, "QUIC handshake failed");
            return None;
        }
        Err(_) => {
            // Dropping the handshake abandons the connection.
            tracing::info!("no QUIC handshake within the auth timeout");
            return None;
        }
    };
    let alpn = negotiated_alpn(&connection);
    if let (Some(peers), Some(CLUSTER_ALPN)) = (&shared.cluster, alpn.as_deref()) {
        return Some(Opened::Peer(connection, peers.clone()));
    }
    if alpn.as_deref() != Some(ALPN) {
        tracing::info!("closing a connection without ALPN strand/1");
        let code = VarInt::from_u32(close::connection::WRONG_ALPN);
        connection.close(code, b"ALPN strand/1 required");
        return None;
    }
    let (session, claim) = authenticate(&connection, shared, remote, deadline).await?;
    Some(Opened::Client(connection, session, claim))
}

fn negotiated_alpn(connection: &quinn::Connection) -> Option<Vec<u8>> {
    let data = connection.handshake_data()?;
    let data = data
        .downcast::<quinn::crypto::rustls::HandshakeData>()
        .ok()?;
    data.protocol
}

/// Closes the connection with `code`, after giving `reply`'s frames a moment to arrive.
async fn close_after(connection: &quinn::Connection, reply: &Responder, code: u32, reason: &str) {
    let flush = Duration::from_millis(QUIC_CLOSE_FLUSH_TIMEOUT_MS);
    let _ = tokio::time::timeout(flush, reply.stopped()).await;
    connection.close(VarInt::from_u32(code), reason.as_bytes());
}

/// The authentication phase: streams are served one at a time until an `auth` succeeds
/// (returns the session and its count against the user's cap), fails (closes the
/// connection), or the budget of time (until `deadline`) or bad requests runs out (closes the
/// connection).
async fn authenticate(
    connection: &quinn::Connection,
    shared: &Shared,
    remote: SocketAddr,
    deadline: tokio::time::Instant,
) -> Option<(Session, UserClaim)> {
    let frames = ConnectionFrames::unauthenticated();
    let mut bad = 0u32;
    loop {
        let accepted = tokio::time::timeout_at(deadline, connection.accept_bi()).await;
        let (send, mut recv) = match accepted {
            Ok(Ok(streams)) => {
                shared.handlers.metrics().quic_stream_accepted();
                streams
            }
            Ok(Err(error)) => {
                tracing::debug!(%error, "connection ended before auth");
                return None;
            }
            Err(_) => {
                tracing::info!("no auth within the timeout; closing");
                let code = VarInt::from_u32(close::connection::AUTH_TIMEOUT);
                connection.close(code, b"no auth request within the timeout");
                return None;
            }
        };
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let inbound = read_request(&mut recv, left, &frames).await;
        let reply = match inbound {
            Inbound::Request(frame, _room) => {
                let _ = recv.stop(VarInt::from_u32(close::stream::DONE));
                let mut reply = Responder::new(send, frame.request_id);
                match frame.message {
                    Message::Auth(request) => {
                        return finish_auth(connection, shared, reply, request.credentials).await
                    }
                    other => {
                        bad += 1;
                        tracing::info!(request = other.name(), "request before auth");
                        let message = format!("send `auth` before `{}`", other.name());
                        let _ = reply.error(codes::NOT_AUTHENTICATED, message).await;
                        reply.finish();
                        reply
                    }
                }
            }
            Inbound::Empty | Inbound::Gone(_) => continue,
            inbound => {
                bad += 1;
                tracing::info!(?inbound, "bad frame before auth");
                fail_stream(send, &mut recv, &inbound).await
            }
        };
        if bad >= BAD_FRAMES_PER_CONNECTION_MAX {
            tracing::warn!(%remote, bad, "too many bad requests before auth; closing");
            let code = close::connection::PROTOCOL_VIOLATION;
            close_after(connection, &reply, code, "too many bad requests").await;
            return None;
        }
    }
}

/// Checks the credentials and answers `auth_ok`, or `auth_failed` and closes the connection.
async fn finish_auth(
    connection: &quinn::Connection,
    shared: &Shared,
    mut reply: Responder,
    credentials: Credentials,
) -> Option<(Session, UserClaim)> {
    let credentials = match credentials {
        Credentials::Password { username, password } => {
            auth::Credentials::Basic { username, password }
        }
        Credentials::Jwt { token } => auth::Credentials::Bearer(token),
    };
    tracing::debug!(?credentials, "authenticating");
    let authenticator = shared.auth.clone();
    // Password checks cost one argon2 verification: keep them off the async workers.
    // The brute-force limit counts failures per name and per address (`auth/attempts.rs`).
    let source = Some(connection.remote_address().ip());
    let checked =
        tokio::task::spawn_blocking(move || authenticator.authenticate_from(&credentials, source));
    let failure = match checked.await {
        Ok(Ok(session)) => {
            let claim = match shared.connections.claim_user(session.user()) {
                Ok(claim) => claim,
                Err(refusal) => {
                    tracing::info!(user = %session.user(), %refusal, "QUIC connection refused");
                    let _ = reply
                        .error(codes::LIMIT_EXCEEDED, refusal.to_string())
                        .await;
                    reply.finish();
                    let code = close::connection::LIMIT_EXCEEDED;
                    close_after(connection, &reply, code, "too_many_connections").await;
                    return None;
                }
            };
            let ok = AuthOk {
                username: session.user().to_string(),
                role: session.role().to_string(),
            };
            match reply.send(Message::AuthOk(ok)).await {
                Ok(()) => {
                    reply.finish();
                    tracing::info!(user = %session.user(), "QUIC connection authenticated");
                    return Some((session, claim));
                }
                Err(error) => {
                    tracing::debug!(%error, "could not answer auth_ok");
                    return None;
                }
            }
        }
        Ok(Err(error @ auth::AuthError::TooManyAttempts { .. })) => {
            (codes::TOO_MANY_ATTEMPTS, error.to_string())
        }
        Ok(Err(error)) => (codes::AUTH_FAILED, error.to_string()),
        Err(error) => {
            tracing::error!(%error, "the authentication task failed");
            let text = "authentication could not complete".to_string();
            (codes::AUTH_FAILED, text)
        }
    };
    let (code, failure) = failure;
    tracing::info!(reason = %failure, "QUIC authentication failed");
    let _ = reply.error(code, failure).await;
    reply.finish();
    close_after(
        connection,
        &reply,
        close::connection::AUTH_FAILED,
        "auth_failed",
    )
    .await;
    None
}

/// Serves the streams of an authenticated connection, each in its own task, until the
/// connection closes (then tasks still running are aborted).
async fn serve_requests(
    connection: &quinn::Connection,
    shared: &Arc<Shared>,
    session: Arc<Session>,
    mut share: ReceiveShare,
) {
    let bad = Arc::new(AtomicU32::new(0));
    let frames = Arc::new(ConnectionFrames::authenticated(&shared.frames));
    let mut tasks = JoinSet::new();
    let set_window = |window: u64| {
        // Windows are at most CONNECTION_WINDOW_BYTES_MAX, far below VarInt's limit.
        let window = VarInt::from_u64(window).unwrap_or(VarInt::MAX);
        connection.set_receive_window(window);
    };
    set_window(share.window());
    loop {
        tokio::select! {
            window = share.changed() => set_window(window),
            accepted = connection.accept_bi() => match accepted {
                Ok((send, recv)) => {
                    shared.handlers.metrics().quic_stream_accepted();
                    let request = serve_stream(
                        connection.clone(),
                        shared.clone(),
                        session.clone(),
                        bad.clone(),
                        frames.clone(),
                        send,
                        recv,
                    );
                    tasks.spawn(request.in_current_span());
                }
                Err(error) => {
                    tracing::info!(%error, "QUIC connection closed");
                    break;
                }
            },
            Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                if let Err(error) = joined {
                    if error.is_panic() {
                        tracing::error!(%error, "a QUIC request handler panicked");
                    }
                }
            }
        }
    }
    tasks.shutdown().await;
}

/// One request stream of an authenticated connection.
async fn serve_stream(
    connection: quinn::Connection,
    shared: Arc<Shared>,
    session: Arc<Session>,
    bad: Arc<AtomicU32>,
    frames: Arc<ConnectionFrames>,
    send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) {
    let stream = recv.id();
    let throttle = shared.connections.refusals();
    match throttle.admit(session.user()) {
        Admission::Now => {}
        Admission::After(wait) => {
            tracing::debug!(%stream, wait_ms = wait.as_millis(), "request held: this user's requests keep being refused");
            tokio::time::sleep(wait).await;
        }
        Admission::RefuseAfter(wait) => {
            tokio::time::sleep(wait).await;
            let mut reply = Responder::new(send, RequestId(0));
            let text = "this user's requests keep being refused for exceeding limits; \
                        they are served more slowly until that stops";
            let _ = reply.error(codes::OVERLOADED, text).await;
            reply.finish();
            return;
        }
    }
    let read_timeout = Duration::from_millis(QUIC_REQUEST_READ_TIMEOUT_MS);
    let inbound = read_request(&mut recv, read_timeout, &frames).await;
    match inbound {
        // The frame's room is held until its request is served (its records are views of it).
        Inbound::Request(frame, _room) => {
            let _ = recv.stop(VarInt::from_u32(close::stream::DONE));
            let request = frame.message.name();
            let request_id = frame.request_id.0;
            tracing::debug!(%stream, request, request_id, "QUIC request");
            let mut reply = Responder::new(send, frame.request_id);
            let served = shared.handlers.serve(&session, frame.message, &mut reply);
            let served = served.await;
            if reply.was_refused_for_limit() {
                throttle.refused(session.user());
            }
            match served {
                Ok(()) => reply.finish(),
                Err(error) => {
                    tracing::debug!(%error, request, request_id, "response not delivered")
                }
            }
        }
        Inbound::Empty => {
            Responder::new(send, RequestId(0)).finish();
        }
        Inbound::Gone(error) => tracing::debug!(%stream, %error, "request stream lost"),
        // Not the client's fault: answered `overloaded`, not counted as a bad frame.
        inbound @ Inbound::Busy { .. } => {
            tracing::debug!(%stream, ?inbound, "no room for a frame");
            fail_stream(send, &mut recv, &inbound).await;
        }
        inbound => {
            debug_assert!(inbound.is_bad());
            let strikes = bad.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::info!(%stream, ?inbound, strikes, "bad frame");
            let reply = fail_stream(send, &mut recv, &inbound).await;
            if strikes == BAD_FRAMES_PER_CONNECTION_MAX {
                tracing::warn!(strikes, "too many bad frames on one connection; closing it");
                let code = close::connection::PROTOCOL_VIOLATION;
                close_after(&connection, &reply, code, "too many bad frames").await;
            }
        }
    }
}
