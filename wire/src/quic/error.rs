//! Typed errors of the QUIC codec. Everything here describes bad input from a peer (expected,
//! answered with an error frame and a closed stream), never a bug of ours.

use thiserror::Error;

/// Why bytes from the peer are not a frame. Every variant is final for the stream: the
/// receiver answers with [`FrameError::code`] and stops reading it.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum FrameError {
    /// The header's version byte is not [`super::PROTOCOL_VERSION`].
    #[error("unsupported protocol version {0}")]
    BadVersion(u8),
    /// A flag bit that this version does not define is set.
    #[error("reserved flag bits set: {0:#04x}")]
    ReservedFlags(u8),
    /// The frame type number names no frame of this version.
    #[error("unknown frame type {0:#06x}")]
    UnknownType(u16),
    /// The header declares a payload longer than [`super::FRAME_BYTES_MAX`].
    #[error("frame payload of {length} bytes exceeds the limit of {max} bytes")]
    Oversize {
        /// The declared payload length.
        length: u64,
        /// The limit it exceeds.
        max: usize,
    },
    /// The payload does not match its frame type's layout.
    #[error("malformed {frame} payload: {reason}")]
    Malformed {
        /// The frame's name, e.g. `produce_topic`.
        frame: &'static str,
        /// What was wrong.
        reason: PayloadError,
    },
}

impl FrameError {
    /// The error-frame code that answers this error (see [`super::codes`]).
    pub fn code(&self) -> &'static str {
        match self {
            FrameError::BadVersion(_) => super::codes::UNSUPPORTED_VERSION,
            FrameError::ReservedFlags(_) | FrameError::Malformed { .. } => {
                super::codes::MALFORMED_FRAME
            }
            FrameError::UnknownType(_) => super::codes::UNKNOWN_TYPE,
            FrameError::Oversize { .. } => super::codes::OVERSIZE_FRAME,
        }
    }
}

/// What is wrong inside a payload.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PayloadError {
    /// The payload ends inside a field.
    #[error("truncated at {field}")]
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// Bytes remain after the last field.
    #[error("{0} trailing bytes")]
    Trailing(usize),
    /// A text field is not UTF-8.
    #[error("{field} is not UTF-8")]
    NotUtf8 {
        /// The field being read.
        field: &'static str,
    },
    /// A tag byte names no variant.
    #[error("bad tag {tag} for {field}")]
    BadTag {
        /// The field being read.
        field: &'static str,
        /// The tag found.
        tag: u8,
    },
    /// A length or count is over its limit or longer than the rest of the payload.
    #[error("{field} too long: {length}")]
    TooLong {
        /// The field being read.
        field: &'static str,
        /// The declared length or count.
        length: u64,
    },
}

/// Why a message could not be encoded: it would not fit one frame.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("encoded payload of {length} bytes exceeds the frame limit of {max} bytes")]
pub struct EncodeError {
    /// The payload length the message would need.
    pub length: usize,
    /// The limit.
    pub max: usize,
}
