//! Reading the one request frame of a bidirectional stream, and failing a stream whose bytes
//! are not a request: an `error` frame with the codec's code, then the stream ended (our side
//! finished, theirs stopped with [`close::stream::BAD_FRAME`]).
//!
//! Owns: the read loop over [`FrameDecoder`] with its timeout, and asking the connection's
//! [`ConnectionFrames`] for room as soon as a frame's header says its size. Does not own:
//! what the request means (the connection and `handlers.rs`).

use std::time::Duration;

use quinn::VarInt;
use strand_wire::quic::close;
use strand_wire::quic::{
    codes, Direction, Frame, FrameDecoder, FrameError, RequestId, HEADER_BYTES,
};

use super::frame_budget::{ConnectionFrames, FrameRefusal, FrameReservation};
use super::responder::Responder;
use crate::limits::QUIC_READ_CHUNK_BYTES;

/// What arrived on a request stream.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// One request frame (further bytes on the stream are not read), with the room it holds
    /// until its request is served.
    Request(Frame, FrameReservation),
    /// Bytes that are not a request: answer with [`Inbound::code`] and fail the stream.
    Bad {
        /// The request id from the header, when 12 bytes of it arrived (else 0).
        request_id: RequestId,
        code: &'static str,
        message: String,
    },
    /// The client finished the stream without sending anything.
    Empty,
    /// The stream could not be read (reset by the client, connection lost).
    Gone(quinn::ReadError),
    /// No complete frame within the read timeout.
    TimedOut,
    /// No room for the frame now (`overloaded`): refused before its payload was read.
    Busy {
        request_id: RequestId,
        message: String,
    },
}

impl Inbound {
    /// Whether this counts against the connection's bad-frame budget.
    pub(crate) fn is_bad(&self) -> bool {
        matches!(self, Inbound::Bad { .. } | Inbound::TimedOut)
    }

    fn refused(request_id: RequestId, refusal: FrameRefusal) -> Inbound {
        if refusal.bad {
            Inbound::Bad {
                request_id,
                code: refusal.code,
                message: refusal.message,
            }
        } else {
            Inbound::Busy {
                request_id,
                message: refusal.message,
            }
        }
    }
}

/// Reads until one frame is complete, the bytes turn out not to be a request, the stream ends
/// or `timeout` passes. Never buffers more than the frame's declared (limited) length, and
/// reads no payload of a frame `frames` has no room for.
pub(crate) async fn read_request(
    recv: &mut quinn::RecvStream,
    timeout: Duration,
    frames: &ConnectionFrames,
) -> Inbound {
    match tokio::time::timeout(timeout, read_frame(recv, frames)).await {
        Ok(inbound) => inbound,
        Err(_) => Inbound::TimedOut,
    }
}

async fn read_frame(recv: &mut quinn::RecvStream, frames: &ConnectionFrames) -> Inbound {
    let mut decoder = FrameDecoder::new();
    // The header, to echo the request id in an error about the rest and to ask for room.
    let mut head = Vec::with_capacity(HEADER_BYTES);
    let mut reservation = None;
    let bad = |head: &[u8], error: FrameError| Inbound::Bad {
        request_id: request_id_of(head),
        code: error.code(),
        message: error.to_string(),
    };
    loop {
        // quinn hands over its received buffers as they are: no zeroed scratch, no extra copy.
        let chunk = match recv.read_chunk(QUIC_READ_CHUNK_BYTES, true).await {
            Ok(Some(chunk)) => chunk.bytes,
            Ok(None) if decoder.buffered_bytes() == 0 => return Inbound::Empty,
            Ok(None) => {
                return Inbound::Bad {
                    request_id: request_id_of(&head),
                    code: codes::MALFORMED_FRAME,
                    message: format!(
                        "the stream ended inside a frame ({} bytes received)",
                        decoder.buffered_bytes()
                    ),
                }
            }
            Err(error) => return Inbound::Gone(error),
        };
        let bytes = &chunk[..];
        let missing = HEADER_BYTES.saturating_sub(head.len()).min(bytes.len());
        head.extend_from_slice(&bytes[..missing]);
        decoder.handle_bytes(bytes);
        let polled = decoder.poll_frame();
        // Room is asked for once the header is whole and valid (a bad header is reported as
        // such, not as a lack of room); this chunk (at most QUIC_READ_CHUNK_BYTES) is all of the
        // payload read before.
        if reservation.is_none() && polled.is_ok() {
            if let Some(total) = declared_total(&head) {
                match frames.admit(total) {
                    Ok(room) => {
                        decoder.reserve_total(total);
                        reservation = Some(room);
                    }
                    Err(refusal) => return Inbound::refused(request_id_of(&head), refusal),
                }
            }
        }
        match polled {
            Ok(None) => {}
            Ok(Some(frame)) if frame.message.direction() == Direction::Request => {
                return match reservation {
                    Some(room) => Inbound::Request(frame, room),
                    // A frame is never shorter than its header, which asked for room.
                    None => Inbound::Bad {
                        request_id: frame.request_id,
                        code: codes::MALFORMED_FRAME,
                        message: "a frame shorter than its header".to_string(),
                    },
                };
            }
            Ok(Some(frame)) => {
                return Inbound::Bad {
                    request_id: frame.request_id,
                    code: codes::UNEXPECTED_FRAME,
                    message: format!("`{}` is a server-to-client frame", frame.message.name()),
                }
            }
            Err(error) => return bad(&head, error),
        }
    }
}

/// Header plus payload, as the header at the start of `head` declares, once all of it is there.
fn declared_total(head: &[u8]) -> Option<usize> {
    let length: [u8; 4] = head.get(12..HEADER_BYTES)?.try_into().ok()?;
    let payload = usize::try_from(u32::from_le_bytes(length)).ok()?;
    Some(HEADER_BYTES.saturating_add(payload))
}

fn request_id_of(head: &[u8]) -> RequestId {
    let mut id = [0u8; 8];
    match head.get(4..12) {
        Some(bytes) => {
            id.copy_from_slice(bytes);
            RequestId(u64::from_le_bytes(id))
        }
        None => RequestId(0),
    }
}

/// Answers bad input (`error` frame when the stream still takes one), then ends the stream:
/// our side finished, the client's stopped with [`close::stream::BAD_FRAME`] (or
/// [`close::stream::TIMEOUT`]). The returned responder can wait for delivery.
pub(crate) async fn fail_stream(
    send: quinn::SendStream,
    recv: &mut quinn::RecvStream,
    inbound: &Inbound,
) -> Responder {
    let (request_id, code, message, stop) = match inbound {
        Inbound::Bad {
            request_id,
            code,
            message,
        } => (
            *request_id,
            *code,
            message.clone(),
            close::stream::BAD_FRAME,
        ),
        Inbound::TimedOut => (
            RequestId(0),
            codes::MALFORMED_FRAME,
            "no complete request frame within the read timeout".to_string(),
            close::stream::TIMEOUT,
        ),
        // Answered: the rest of the stream is not read (quinn drops it).
        Inbound::Busy {
            request_id,
            message,
        } => (
            *request_id,
            codes::OVERLOADED,
            message.clone(),
            close::stream::DONE,
        ),
        // Nothing to answer: the client sent nothing or is gone.
        Inbound::Request(..) | Inbound::Empty | Inbound::Gone(_) => {
            let mut reply = Responder::new(send, RequestId(0));
            reply.finish();
            return reply;
        }
    };
    let _ = recv.stop(VarInt::from_u32(stop));
    let mut reply = Responder::new(send, request_id);
    if let Err(error) = reply.error(code, message).await {
        tracing::debug!(%error, "could not answer bad input");
    }
    reply.finish();
    reply
}
