//! [`Responder`]: writes the response frames of one QUIC request on its stream, each with the
//! request's id, and remembers whether the answer refused the request for a limit (the refusal
//! throttle counts those). A collecting responder keeps the messages instead, for a cluster
//! member that looks at its own answer before it sends it or forwards the request
//! (`frame_forward.rs`), and for the leader answering a forwarded request.

use strand_wire::quic::{
    codes, decode_frame, DecodeStep, EncodeError, ErrorReply, Frame, Message, RequestId,
};

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
    sink: Sink,
    request_id: RequestId,
    /// Whether an error frame said `limit_exceeded` (the refusal throttle counts it).
    refused_for_limit: bool,
}

/// Where a responder's frames go.
#[derive(Debug)]
enum Sink {
    Stream(quinn::SendStream),
    Collected(Vec<Message>),
}

impl Responder {
    pub(crate) fn new(send: quinn::SendStream, request_id: RequestId) -> Responder {
        Responder {
            sink: Sink::Stream(send),
            request_id,
            refused_for_limit: false,
        }
    }

    /// A responder that keeps the messages of its answer ([`Responder::into_messages`]).
    pub(crate) fn collecting(request_id: RequestId) -> Responder {
        Responder {
            sink: Sink::Collected(Vec::new()),
            request_id,
            refused_for_limit: false,
        }
    }

    /// The messages a collecting responder kept (none for one that wrote to a stream).
    pub(crate) fn into_messages(self) -> Vec<Message> {
        match self.sink {
            Sink::Collected(messages) => messages,
            Sink::Stream(_) => Vec::new(),
        }
    }

    /// The id of the request being answered.
    pub fn request_id(&self) -> RequestId {
        self.request_id
    }

    /// Writes one frame. Waits while the client's flow-control window is full: that is the
    /// protocol's backpressure (a slow `tail` reader holds back only its own stream).
    pub async fn send(&mut self, message: Message) -> Result<(), ReplyError> {
        if let Sink::Collected(messages) = &mut self.sink {
            messages.push(message);
            return Ok(());
        }
        let frame = Frame {
            request_id: self.request_id,
            message,
        };
        self.send_encoded(frame.to_bytes()?).await
    }

    /// Writes one frame already encoded (e.g. by a [`strand_wire::quic::RecordsFrameWriter`]
    /// with this responder's request id). The buffer goes to quinn as it is, not copied.
    pub async fn send_encoded(&mut self, frame: Vec<u8>) -> Result<(), ReplyError> {
        match &mut self.sink {
            Sink::Stream(send) => send.write_chunk(bytes::Bytes::from(frame)).await?,
            Sink::Collected(messages) => match decode_frame(&frame) {
                Ok(DecodeStep::Frame { frame, .. }) => messages.push(frame.message),
                // This server encoded it: it decodes, unless over the decoder's bound.
                _ => messages.push(Message::Error(ErrorReply {
                    code: codes::UNAVAILABLE.to_string(),
                    message: "an answer frame did not decode".to_string(),
                })),
            },
        }
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
        match &self.sink {
            Sink::Stream(send) => {
                let _ = send.stopped().await;
            }
            // Nobody reads a collecting responder's stream: it never stops.
            Sink::Collected(_) => std::future::pending().await,
        }
    }

    /// Ends the stream after the frames written.
    pub(crate) fn finish(&mut self) {
        if let Sink::Stream(send) = &mut self.sink {
            // Fails only when the client already reset or stopped the stream.
            let _ = send.finish();
        }
    }
}
