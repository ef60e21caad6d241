//! The seam where request handlers plug into the QUIC listener: [`QuicService`], one method per
//! request kind, called with the connection's [`Session`], the decoded request and a
//! [`Responder`] that writes response frames on the request's stream. Every method has a
//! default that answers `error` `unsupported` ("not built yet"), so a service implements only
//! what it serves; [`NotBuilt`] serves nothing.
//!
//! Owns: the request-to-method dispatch and the response writer. Does not own: reading or
//! validating frames, authentication (done before any method is called) or what a request
//! does (topics, groups and SQL live in their own modules and implement this trait).

use std::future::Future;
use std::pin::Pin;

use quinn::VarInt;
use strand_wire::quic::{
    codes, EncodeError, ErrorReply, Fetch, Frame, GroupCommit, GroupJoin, GroupMember, Message,
    ProduceTable, ProduceTopic, RequestId, Sql,
};

use crate::session::Session;

/// What a handler returns: done, or the response could not be written (the client went away
/// or reset the stream; nothing more can be said on this stream).
pub type Handled<'a> = Pin<Box<dyn Future<Output = Result<(), ReplyError>> + Send + 'a>>;

/// Why a response frame could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReplyError {
    #[error("response does not fit one frame: {0}")]
    Encode(#[from] EncodeError),
    #[error("writing the response: {0}")]
    Write(#[from] quinn::WriteError),
}

/// Writes the response frames of one request on its stream, each with the request's id.
#[derive(Debug)]
pub struct Responder {
    send: quinn::SendStream,
    request_id: RequestId,
    frames_sent: u64,
    /// Whether an error frame said `limit_exceeded` (the refusal throttle counts it).
    refused_for_limit: bool,
}

impl Responder {
    pub(crate) fn new(send: quinn::SendStream, request_id: RequestId) -> Responder {
        Responder {
            send,
            request_id,
            frames_sent: 0,
            refused_for_limit: false,
        }
    }

    /// The id of the request being answered.
    pub fn request_id(&self) -> RequestId {
        self.request_id
    }

    /// Frames written so far.
    pub fn frames_sent(&self) -> u64 {
        self.frames_sent
    }

    /// Writes one frame. Waits while the client's flow-control window is full: that is the
    /// protocol's backpressure (a slow `tail` reader holds back only its own stream).
    pub async fn send(&mut self, message: Message) -> Result<(), ReplyError> {
        let frame = Frame {
            request_id: self.request_id,
            message,
        };
        self.send_encoded(frame.to_bytes()?).await
    }

    /// Writes one frame already encoded (e.g. by a [`strand_wire::quic::RecordsFrameWriter`]
    /// with this responder's request id). The buffer goes to quinn as it is, not copied.
    pub async fn send_encoded(&mut self, frame: Vec<u8>) -> Result<(), ReplyError> {
        self.send.write_chunk(bytes::Bytes::from(frame)).await?;
        self.frames_sent += 1;
        Ok(())
    }

    /// Whether the request was refused for exceeding a limit: an error frame said
    /// `limit_exceeded`, or the handler said so with [`Responder::refused_for_limit`].
    pub(crate) fn was_refused_for_limit(&self) -> bool {
        self.refused_for_limit
    }

    /// Marks the request as refused for exceeding a limit, for an answer that carries the
    /// refusal inside a frame of its own (an `sql_result`'s JSON error).
    pub(crate) fn refused_for_limit(&mut self) {
        self.refused_for_limit = true;
    }

    /// Writes an `error` frame.
    pub async fn error(
        &mut self,
        code: &str,
        message: impl Into<String>,
    ) -> Result<(), ReplyError> {
        self.refused_for_limit |= code == codes::LIMIT_EXCEEDED;
        let reply = ErrorReply {
            code: code.to_string(),
            message: message.into(),
        };
        self.send(Message::Error(reply)).await
    }

    /// Completes when the client stops reading this stream (e.g. cancels a `tail`) or has
    /// received everything after [`Responder::finish`]; handlers that wait for data select
    /// on it.
    pub async fn stopped(&self) {
        let _ = self.send.stopped().await;
    }

    /// Ends the stream after the frames written.
    pub(crate) fn finish(&mut self) {
        // Fails only when the client already reset or stopped the stream.
        let _ = self.send.finish();
    }

    /// Resets the stream with an application code (frames not yet delivered are dropped): for a
    /// handler that must abandon its stream midway.
    pub fn reset(&mut self, code: u32) {
        let _ = self.send.reset(VarInt::from_u32(code));
    }
}

/// Serves the requests of authenticated connections, one method per request kind. Each call
/// owns its stream: write zero or more frames with `reply` and return; the listener then ends
/// the stream. Return `Err` only when writing failed.
pub trait QuicService: Send + Sync + 'static {
    /// `produce_topic`: answer one `produce_ack` per partition written.
    fn produce_topic<'a>(
        &'a self,
        session: &'a Session,
        request: ProduceTopic,
        reply: &'a mut Responder,
    ) -> Handled<'a> {
        let _ = (session, request);
        not_built(reply, "produce_topic")
    }

    /// `produce_table`: answer one `produce_ack`.
    fn produce_table<'a>(
        &'a self,
        session: &'a Session,
        request: ProduceTable,
        reply: &'a mut Responder,
    ) -> Handled<'a> {
        let _ = (session, request);
        not_built(reply, "produce_table")
    }

    /// `fetch`: answer one `fetch_response` (after up to `wait_ms` when nothing is there).
    fn fetch<'a>(
        &'a self,
        session: &'a Session,
        request: Fetch,
        reply: &'a mut Responder,
    ) -> Handled<'a> {
        let _ = (session, request);
        not_built(reply, "fetch")
    }

    /// `tail`: push `tail_push` frames until [`Responder::stopped`] or an error.
    fn tail<'a>(
        &'a self,
        session: &'a Session,
        request: Fetch,
        reply: &'a mut Responder,
    ) -> Handled<'a> {
        let _ = (session, request);
        not_built(reply, "tail")
    }

    /// `group_join`: answer `group_join_response`.
    fn group_join<'a>(
        &'a self,
        session: &'a Session,
        request: GroupJoin,
        reply: &'a mut Responder,
    ) -> Handled<'a> {
        let _ = (session, request);
        not_built(reply, "group_join")
    }

    /// `group_heartbeat`: answer `group_heartbeat_response`.
    fn group_heartbeat<'a>(
        &'a self,
        session: &'a Session,
        request: GroupMember,
        reply: &'a mut Responder,
    ) -> Handled<'a> {
        let _ = (session, request);
        not_built(reply, "group_heartbeat")
    }

    /// `group_sync`: answer `group_sync_response`.
    fn group_sync<'a>(
        &'a self,
        session: &'a Session,
        request: GroupMember,
        reply: &'a mut Responder,
    ) -> Handled<'a> {
        let _ = (session, request);
        not_built(reply, "group_sync")
    }

    /// `group_commit`: answer `group_commit_response` once the offsets are durable.
    fn group_commit<'a>(
        &'a self,
        session: &'a Session,
        request: GroupCommit,
        reply: &'a mut Responder,
    ) -> Handled<'a> {
        let _ = (session, request);
        not_built(reply, "group_commit")
    }

    /// `group_leave`: answer `group_leave_response`.
    fn group_leave<'a>(
        &'a self,
        session: &'a Session,
        request: GroupMember,
        reply: &'a mut Responder,
    ) -> Handled<'a> {
        let _ = (session, request);
        not_built(reply, "group_leave")
    }

    /// `sql`: answer one `sql_result`.
    fn sql<'a>(
        &'a self,
        session: &'a Session,
        request: Sql,
        reply: &'a mut Responder,
    ) -> Handled<'a> {
        let _ = (session, request);
        not_built(reply, "sql")
    }
}

/// The answer of a request kind that has no handler yet: `error` `unsupported`.
pub fn not_built<'a>(reply: &'a mut Responder, request: &'static str) -> Handled<'a> {
    Box::pin(async move {
        let message = format!("`{request}` is not built yet on this server");
        reply.error(codes::UNSUPPORTED, message).await
    })
}

/// A service that serves no request yet: every request is answered `unsupported`.
#[derive(Clone, Copy, Debug, Default)]
pub struct NotBuilt;

impl QuicService for NotBuilt {}

/// Calls the method of `message`'s kind. Frames a client may not send (responses, pushes, a
/// second `auth`) are answered `unexpected_frame`.
pub(crate) async fn dispatch(
    service: &dyn QuicService,
    session: &Session,
    message: Message,
    reply: &mut Responder,
) -> Result<(), ReplyError> {
    match message {
        Message::ProduceTopic(request) => service.produce_topic(session, request, reply).await,
        Message::ProduceTable(request) => service.produce_table(session, request, reply).await,
        Message::Fetch(request) => service.fetch(session, request, reply).await,
        Message::Tail(request) => service.tail(session, request, reply).await,
        Message::GroupJoin(request) => service.group_join(session, request, reply).await,
        Message::GroupHeartbeat(request) => service.group_heartbeat(session, request, reply).await,
        Message::GroupSync(request) => service.group_sync(session, request, reply).await,
        Message::GroupCommit(request) => service.group_commit(session, request, reply).await,
        Message::GroupLeave(request) => service.group_leave(session, request, reply).await,
        Message::Sql(request) => service.sql(session, request, reply).await,
        Message::Auth(_) => {
            let message = "the connection is already authenticated; open a new connection to \
                           change user";
            reply.error(codes::UNEXPECTED_FRAME, message).await
        }
        other => {
            let message = format!("`{}` is a server-to-client frame", other.name());
            reply.error(codes::UNEXPECTED_FRAME, message).await
        }
    }
}
