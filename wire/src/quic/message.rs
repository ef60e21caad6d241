//! The closed set of QUIC messages: [`Message`], one variant per frame type, with the frame
//! type numbers, names and directions, and the dispatch from a type number to its payload
//! decoder. The payload layouts live beside their structs (`data.rs`, `group.rs`).

use bytes::Bytes;

use super::buf::Reader;
use super::data::{Auth, AuthOk, ErrorReply, Fetch, ProduceAck, ProduceTable, ProduceTopic};
use super::data::{Records, Sql, SqlResult};
use super::error::{FrameError, PayloadError};
use super::group::{GroupAssignment, GroupCommit, GroupJoin, GroupMember, GroupReply};

/// A frame payload: its layout, written and read.
pub(crate) trait Payload: Sized {
    /// Appends the payload's bytes.
    fn encode(&self, out: &mut Vec<u8>);
    /// Reads the payload's fields; the caller checks that nothing trails.
    fn decode(r: &mut Reader<'_>) -> Result<Self, PayloadError>;
}

/// Who sends a frame type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Client to server: a request.
    Request,
    /// Server to client: a response to a request, carrying its request id.
    Response,
    /// Server to client, unrequested after a `tail`: carries the tail's request id.
    Push,
}

macro_rules! messages {
    ($( $(#[$doc:meta])* $variant:ident($ty:ty) = $constant:ident $number:literal, $name:literal, $dir:ident; )*) => {
        /// Every message of protocol version 1, by frame type.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub enum Message {
            $( $(#[$doc])* $variant($ty), )*
        }

        /// Frame type numbers (the header's u16), as in `PROTOCOL.md`.
        pub mod frame_types {
            $( #[doc = $name] pub const $constant: u16 = $number; )*
        }

        impl Message {
            /// Whether `frame_type` names a frame of this version.
            pub fn is_known_type(frame_type: u16) -> bool {
                matches!(frame_type, $( $number )|*)
            }

            /// The frame type number.
            pub fn frame_type(&self) -> u16 {
                match self { $( Message::$variant(_) => $number, )* }
            }

            /// The frame's name, as in `PROTOCOL.md`.
            pub fn name(&self) -> &'static str {
                match self { $( Message::$variant(_) => $name, )* }
            }

            /// Who sends it.
            pub fn direction(&self) -> Direction {
                match self { $( Message::$variant(_) => Direction::$dir, )* }
            }

            pub(crate) fn encode_payload(&self, out: &mut Vec<u8>) {
                match self { $( Message::$variant(m) => m.encode(out), )* }
            }

            fn decode_from(frame_type: u16, r: Reader<'_>) -> Result<Message, FrameError> {
                match frame_type {
                    $( $number => decode_exact::<$ty>(r)
                        .map(Message::$variant)
                        .map_err(|reason| FrameError::Malformed { frame: $name, reason }), )*
                    other => Err(FrameError::UnknownType(other)),
                }
            }
        }
    };
}

impl Message {
    /// Decodes the payload of a frame of type `frame_type`; every byte must be used. Keys,
    /// values and other byte strings are copied out of `payload`.
    pub fn decode_payload(frame_type: u16, payload: &[u8]) -> Result<Message, FrameError> {
        Message::decode_from(frame_type, Reader::new(payload))
    }

    /// [`Message::decode_payload`] where record keys and values become views of `payload`
    /// instead of copies.
    pub fn decode_payload_shared(frame_type: u16, payload: &Bytes) -> Result<Message, FrameError> {
        Message::decode_from(frame_type, Reader::shared(payload))
    }
}

fn decode_exact<T: Payload>(mut r: Reader<'_>) -> Result<T, PayloadError> {
    let value = T::decode(&mut r)?;
    r.finish()?;
    Ok(value)
}

messages! {
    /// Authenticate the connection (the first request).
    Auth(Auth) = AUTH 0x0001, "auth", Request;
    /// Authentication succeeded.
    AuthOk(AuthOk) = AUTH_OK 0x0002, "auth_ok", Response;
    /// A request failed.
    Error(ErrorReply) = ERROR 0x0003, "error", Response;
    /// Produce a batch to a topic.
    ProduceTopic(ProduceTopic) = PRODUCE_TOPIC 0x0101, "produce_topic", Request;
    /// Produce rows to a table.
    ProduceTable(ProduceTable) = PRODUCE_TABLE 0x0102, "produce_table", Request;
    /// A produced batch (or its part in one partition) is durable.
    ProduceAck(ProduceAck) = PRODUCE_ACK 0x0103, "produce_ack", Response;
    /// Read records of a partition once (optionally long-polling).
    Fetch(Fetch) = FETCH 0x0201, "fetch", Request;
    /// The records a fetch read.
    FetchResponse(Records) = FETCH_RESPONSE 0x0202, "fetch_response", Response;
    /// Read records of a partition and keep pushing new ones.
    Tail(Fetch) = TAIL 0x0203, "tail", Request;
    /// New records for a tail.
    TailPush(Records) = TAIL_PUSH 0x0204, "tail_push", Push;
    /// Join a consumer group.
    GroupJoin(GroupJoin) = GROUP_JOIN 0x0301, "group_join", Request;
    /// The member's id, generation and assignment after a join.
    GroupJoinResponse(GroupAssignment) = GROUP_JOIN_RESPONSE 0x0302, "group_join_response", Response;
    /// Keep the member alive.
    GroupHeartbeat(GroupMember) = GROUP_HEARTBEAT 0x0303, "group_heartbeat", Request;
    /// Heartbeat outcome.
    GroupHeartbeatResponse(GroupReply) = GROUP_HEARTBEAT_RESPONSE 0x0304, "group_heartbeat_response", Response;
    /// Ask for the current generation's assignment.
    GroupSync(GroupMember) = GROUP_SYNC 0x0305, "group_sync", Request;
    /// The member's assignment in the current generation.
    GroupSyncResponse(GroupAssignment) = GROUP_SYNC_RESPONSE 0x0306, "group_sync_response", Response;
    /// Commit offsets.
    GroupCommit(GroupCommit) = GROUP_COMMIT 0x0307, "group_commit", Request;
    /// Commit outcome (durable when `Ok`).
    GroupCommitResponse(GroupReply) = GROUP_COMMIT_RESPONSE 0x0308, "group_commit_response", Response;
    /// Leave the group (its partitions move at once).
    GroupLeave(GroupMember) = GROUP_LEAVE 0x0309, "group_leave", Request;
    /// Leave outcome.
    GroupLeaveResponse(GroupReply) = GROUP_LEAVE_RESPONSE 0x030A, "group_leave_response", Response;
    /// Run SQL statements.
    Sql(Sql) = SQL 0x0401, "sql", Request;
    /// The SQL engine's JSON answer.
    SqlResult(SqlResult) = SQL_RESULT 0x0402, "sql_result", Response;
}
