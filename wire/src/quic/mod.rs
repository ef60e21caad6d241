//! The QUIC binary protocol (issue 6, `wire/PROTOCOL.md`) as a sans-IO codec: frame header,
//! incremental decoder, typed messages with their payload layouts, limits and error codes.
//!
//! Owns: the bytes on a QUIC stream and their meaning as data. Does not own: sockets, TLS,
//! quinn, clocks, authentication, the consumer-group state machine or any broker state; the
//! server and clients feed bytes in and take frames out, so everything here is tested in
//! memory. Nothing decoded from the peer can panic, or allocate more than a small multiple of
//! what the peer sent.
//!
//! - `frame`: header, [`Frame`], [`decode_frame`], [`FrameDecoder`].
//! - `message`: [`Message`], frame type numbers, directions.
//! - `data`, `group`: payload structs and layouts. `types`: newtypes and shared values.
//! - `records_frame`: [`RecordsFrameWriter`], a records frame written straight from storage.
//! - `error`: typed errors. [`close`]: QUIC application error codes. The bounds are in
//!   [`crate::limits`].
//! - `client` (cargo feature `client`): the async Rust client over quinn, and `consumer`, a
//!   consumer-group member over it, and `members`, a client's list of cluster members; the
//!   only parts that do I/O, kept behind the feature so codec and WebSocket users do not pull
//!   in quinn.

mod buf;
#[cfg(feature = "client")]
pub mod client;
pub mod close;
#[cfg(feature = "client")]
pub mod consumer;
mod data;
mod error;
mod frame;
mod group;
#[cfg(feature = "client")]
pub mod members;
mod message;
mod records_frame;
#[cfg(feature = "client")]
pub mod socket;
mod types;

#[cfg(test)]
mod strategies;
#[cfg(test)]
mod tests;

pub use data::{
    Auth, AuthOk, Credentials, ErrorReply, Fetch, ProduceAck, ProduceRecord, ProduceTable,
    ProduceTopic, Record, Records, Sql, SqlResult,
};
pub(crate) use data::{RECORDS_HEAD_BYTES, RECORD_FIXED_BYTES};
pub use error::{EncodeError, FrameError, PayloadError};
pub use frame::{
    decode_frame, DecodeStep, Frame, FrameDecoder, FLAGS_DEFINED, HEADER_BYTES, PROTOCOL_VERSION,
};
pub use group::{
    CommittedOffset, GroupAssignment, GroupCommit, GroupJoin, GroupMember, GroupReply,
};
// The frame limit is the one bound most users of the codec need; it is defined in `limits`.
pub use crate::limits::FRAME_BYTES_MAX;
pub use message::{frame_types, Direction, Message};
pub use records_frame::{RecordsFrameKind, RecordsFrameWriter};
pub use types::{
    BatchSequence, Generation, GroupStatus, Idempotence, MemberId, PartitionIndex, Partitioning,
    ProducerId, ReadFrom, RequestId, Seq,
};

/// The ALPN id a client offers and the server requires during the TLS handshake.
pub const ALPN: &[u8] = b"strand/1";

/// Codes of the `error` frame. SQL failures keep the HTTP API's codes, so the list is open.
pub mod codes {
    /// The payload does not match its frame type, or reserved flags are set.
    pub const MALFORMED_FRAME: &str = "malformed_frame";
    /// The header declares a payload over `FRAME_BYTES_MAX`.
    pub const OVERSIZE_FRAME: &str = "oversize_frame";
    /// The frame type names no frame of this version.
    pub const UNKNOWN_TYPE: &str = "unknown_type";
    /// The header's version is not one the server speaks.
    pub const UNSUPPORTED_VERSION: &str = "unsupported_version";
    /// A frame of the wrong direction (a response or push sent by a client).
    pub const UNEXPECTED_FRAME: &str = "unexpected_frame";
    /// A request other than `auth` before authentication.
    pub const NOT_AUTHENTICATED: &str = "not_authenticated";
    /// Wrong user name, password or token.
    pub const AUTH_FAILED: &str = "auth_failed";
    /// The user has no grant for the topic or table.
    pub const FORBIDDEN: &str = "forbidden";
    /// No such topic.
    pub const UNKNOWN_TOPIC: &str = "unknown_topic";
    /// No such partition in the topic.
    pub const UNKNOWN_PARTITION: &str = "unknown_partition";
    /// No such table.
    pub const UNKNOWN_TABLE: &str = "unknown_table";
    /// A row of `produce_table` is not a JSON object of the table's columns.
    pub const INVALID_ROW: &str = "invalid_row";
    /// A server limit (batch size, open streams, connections per user) was exceeded.
    pub const LIMIT_EXCEEDED: &str = "limit_exceeded";
    /// The server could not make the write durable; nothing was acknowledged.
    pub const STORAGE_ERROR: &str = "storage_error";
    /// The server's storage is full: nothing of the write was stored, and writes succeed again
    /// once space is freed (no reconnect or restart needed). Retry later.
    pub const STORAGE_FULL: &str = "storage_full";
    /// A request this server does not serve (yet): a valid frame whose handler is not built.
    pub const UNSUPPORTED: &str = "unsupported";
    /// An idempotent producer sent a batch sequence below its last one (its retry of the last
    /// batch is answered with the original ack instead).
    pub const OUT_OF_ORDER: &str = "out_of_order";
    /// A well-formed request the server cannot honour as asked (e.g. a group name already
    /// consuming another topic, a session timeout out of range); the message says what.
    pub const INVALID_REQUEST: &str = "invalid_request";
    /// The server has no room for the request frame now (its buffer for frames in progress is
    /// full): nothing of the request was done; retry shortly.
    pub const OVERLOADED: &str = "overloaded";
    /// A `tail`'s user lost SELECT on the topic (REVOKE, or a role change); the tail ended.
    pub const PERMISSION_REVOKED: &str = "permission_revoked";
    /// A `tail`'s user was dropped; the tail ended.
    pub const USER_DROPPED: &str = "user_dropped";
    /// Too many failed authentications for this user name or from this address; the message
    /// says after how many seconds to retry.
    pub const TOO_MANY_ATTEMPTS: &str = "too_many_attempts";
    /// A cluster member that does not lead the write's group: nothing was written; the message
    /// names the leader's node id and cluster address, if known. Send the write there (or to
    /// any node after a moment, once a leader is elected).
    pub const NOT_LEADER: &str = "not_leader";
    /// A cluster could not confirm the write with a majority of its members (the leader lost
    /// its office, or too few members are reachable): it was not acknowledged and may or may
    /// not have been stored. Retry; an idempotent producer's retry is never stored twice.
    pub const UNAVAILABLE: &str = "unavailable";
}
