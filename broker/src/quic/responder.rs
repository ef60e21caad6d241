//! [`Responder`]: writes the response frames of one QUIC request on its stream, each with the
//! request's id, and remembers whether the answer refused the request for a limit (the refusal
//! throttle counts those).

use strand_wire::quic::{codes, EncodeError, ErrorReply, Frame, Message, RequestId};

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
    /// Whether an error frame said `limit_exceeded` (the refusal throttle counts it).
    refused_for_limit: bool,
}

impl Responder {
    pub(crate) fn new(send: quinn::SendStream, request_id: RequestId) -> Responder {
        Responder {
            send,
            request_id,
            refused_for_limit: false,
        }
    }

    /// The id of the request being answered.
    pub fn request_id(&self) -> RequestId {
        self.request_id
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
}
