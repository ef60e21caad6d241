//! The frame: a fixed 16-byte header (version, flags, type, request id, payload length, all
//! little-endian) and a payload. [`decode_frame`] is the incremental decoder over a byte
//! buffer; [`FrameDecoder`] keeps the buffer for a stream. Neither reads a socket: the caller
//! hands in bytes as they arrive and writes out the bytes [`Frame::encode`] gives.
//!
//! The header is checked field by field as soon as its bytes are present (version at byte 1,
//! type at byte 4, length at byte 16), and the declared length is checked against
//! [`FRAME_BYTES_MAX`] before any payload is buffered or allocated.

use bytes::BytesMut;

use super::error::{EncodeError, FrameError};
use super::message::Message;
use super::types::RequestId;
use crate::limits::{
    DECODER_RESERVE_AHEAD_BYTES_MIN, DECODER_RESERVE_AHEAD_FACTOR, FRAME_BYTES_MAX,
};

/// The protocol version this crate speaks; the first byte of every frame header.
pub const PROTOCOL_VERSION: u8 = 1;

/// Bytes of the fixed frame header: version u8, flags u8, type u16, request id u64, length u32.
pub const HEADER_BYTES: usize = 16;

/// Header flag bits this version defines: none. Set bits are rejected so a later version can
/// give them a meaning.
pub const FLAGS_DEFINED: u8 = 0;

/// One frame: which request it belongs to, and its message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The request it starts, answers or pushes for.
    pub request_id: RequestId,
    /// The message; its variant gives the frame type.
    pub message: Message,
}

/// What [`decode_frame`] found at the start of the buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeStep {
    /// No complete frame yet: at least this many more bytes are needed.
    NeedBytes(usize),
    /// A frame, taking the first `consumed` bytes of the buffer.
    Frame {
        /// The frame.
        frame: Frame,
        /// Bytes it took.
        consumed: usize,
    },
}

impl Frame {
    /// Appends the frame's bytes to `out`. A message too large for one frame is an error and
    /// leaves `out` as it was.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        out.push(PROTOCOL_VERSION);
        out.push(FLAGS_DEFINED);
        out.extend_from_slice(&self.message.frame_type().to_le_bytes());
        out.extend_from_slice(&self.request_id.0.to_le_bytes());
        out.extend_from_slice(&[0u8; 4]);
        self.message.encode_payload(out);
        let length = out.len() - start - HEADER_BYTES;
        if length > FRAME_BYTES_MAX {
            out.truncate(start);
            return Err(EncodeError {
                length,
                max: FRAME_BYTES_MAX,
            });
        }
        // FRAME_BYTES_MAX < u32::MAX, so the cast is exact.
        let length_bytes = (length as u32).to_le_bytes();
        out[start + 12..start + HEADER_BYTES].copy_from_slice(&length_bytes);
        Ok(())
    }

    /// The frame's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        self.encode(&mut out)?;
        Ok(out)
    }
}

/// The header fields past the prefix checks.
struct Header {
    frame_type: u16,
    request_id: RequestId,
    /// Header plus payload.
    total: usize,
}

/// The header at the start of `buffer` when all of it is there, checked (version, flags, type,
/// length within [`FRAME_BYTES_MAX`]); `None` while bytes of it are missing.
fn parse_header(buffer: &[u8]) -> Result<Option<Header>, FrameError> {
    check_header_prefix(buffer)?;
    let Some(header) = buffer.get(..HEADER_BYTES) else {
        return Ok(None);
    };
    let frame_type = u16::from_le_bytes([header[2], header[3]]);
    let mut request_id = [0u8; 8];
    request_id.copy_from_slice(&header[4..12]);
    let mut length = [0u8; 4];
    length.copy_from_slice(&header[12..HEADER_BYTES]);
    let length = u32::from_le_bytes(length);
    let payload_bytes = usize::try_from(length).unwrap_or(usize::MAX);
    if payload_bytes > FRAME_BYTES_MAX {
        return Err(FrameError::Oversize {
            length: u64::from(length),
            max: FRAME_BYTES_MAX,
        });
    }
    Ok(Some(Header {
        frame_type,
        request_id: RequestId(u64::from_le_bytes(request_id)),
        total: HEADER_BYTES + payload_bytes,
    }))
}

/// Decodes the frame at the start of `buffer`, or says how many more bytes it needs, or why
/// the bytes are not a frame. Never allocates more than the payload that is present.
pub fn decode_frame(buffer: &[u8]) -> Result<DecodeStep, FrameError> {
    let Some(header) = parse_header(buffer)? else {
        return Ok(DecodeStep::NeedBytes(HEADER_BYTES - buffer.len()));
    };
    if buffer.len() < header.total {
        return Ok(DecodeStep::NeedBytes(header.total - buffer.len()));
    }
    let message = Message::decode_payload(header.frame_type, &buffer[HEADER_BYTES..header.total])?;
    Ok(DecodeStep::Frame {
        frame: Frame {
            request_id: header.request_id,
            message,
        },
        consumed: header.total,
    })
}

/// Checks the header fields whose bytes are present, so garbage fails at its first byte.
fn check_header_prefix(buffer: &[u8]) -> Result<(), FrameError> {
    if let Some(&version) = buffer.first() {
        if version != PROTOCOL_VERSION {
            return Err(FrameError::BadVersion(version));
        }
    }
    if let Some(&flags) = buffer.get(1) {
        if flags & !FLAGS_DEFINED != 0 {
            return Err(FrameError::ReservedFlags(flags));
        }
    }
    if let (Some(&low), Some(&high)) = (buffer.get(2), buffer.get(3)) {
        let frame_type = u16::from_le_bytes([low, high]);
        if !Message::is_known_type(frame_type) {
            return Err(FrameError::UnknownType(frame_type));
        }
    }
    Ok(())
}

/// The decoder of one stream: bytes in ([`FrameDecoder::handle_bytes`]), frames out
/// ([`FrameDecoder::poll_frame`]). After an error it is failed for good and repeats the
/// error: the stream's bytes can no longer be trusted to be aligned on frames.
///
/// Each frame's bytes are gathered into one buffer, grown towards the frame's declared size
/// in steps of about [`DECODER_RESERVE_AHEAD_FACTOR`] times what has arrived (so a peer cannot make
/// it allocate much more than it sent), and the decoded records' keys and values are views of
/// that buffer: about one copy per received byte, none per record.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buffer: BytesMut,
    failed: Option<FrameError>,
}

impl FrameDecoder {
    /// A decoder with nothing buffered.
    pub fn new() -> FrameDecoder {
        FrameDecoder::default()
    }

    /// Adds bytes received from the stream. Poll frames out between calls: the buffer holds
    /// what has not been polled yet.
    pub fn handle_bytes(&mut self, bytes: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete frame, `None` when more bytes are needed, or the stream's error.
    pub fn poll_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        match self.next_frame() {
            Ok(frame) => Ok(frame),
            Err(error) => {
                self.failed = Some(error.clone());
                self.buffer = BytesMut::new();
                Err(error)
            }
        }
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        let Some(header) = parse_header(&self.buffer)? else {
            return Ok(None);
        };
        let received = self.buffer.len();
        if received < header.total {
            // Room for the rest of the frame in few steps rather than a doubling series, but
            // never more than a few times what arrived: a header alone declaring 16 MiB must
            // not cost 16 MiB.
            let ahead = received
                .saturating_mul(DECODER_RESERVE_AHEAD_FACTOR)
                .max(DECODER_RESERVE_AHEAD_BYTES_MIN);
            self.buffer.reserve((header.total - received).min(ahead));
            return Ok(None);
        }
        let payload = self
            .buffer
            .split_to(header.total)
            .freeze()
            .slice(HEADER_BYTES..);
        let message = Message::decode_payload_shared(header.frame_type, &payload)?;
        Ok(Some(Frame {
            request_id: header.request_id,
            message,
        }))
    }

    /// Makes room for `total_bytes` in all (what is buffered included) at once, for a frame
    /// whose size the caller has admitted: one allocation instead of the growth steps, so the
    /// memory held is what arrived (untouched capacity costs no resident pages) and no
    /// half-filled buffers are copied and dropped on the way.
    pub fn reserve_total(&mut self, total_bytes: usize) {
        if self.failed.is_none() {
            self.buffer
                .reserve(total_bytes.saturating_sub(self.buffer.len()));
        }
    }

    /// Bytes received but not yet returned as frames.
    pub fn buffered_bytes(&self) -> usize {
        self.buffer.len()
    }

    /// Bytes allocated for the buffer (tests check the reservation bound).
    #[cfg(test)]
    pub(crate) fn buffer_capacity(&self) -> usize {
        self.buffer.capacity()
    }
}
