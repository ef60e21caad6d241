//! The WebSocket JSON gateway's messages (docs/websocket.md). Every message is one JSON object in
//! one text frame, tagged by `"type"`. `_seq` values travel as decimal strings ([`SeqText`]).
//!
//! Clients decode [`ServerMessage`] and encode [`ClientMessage`]; the server does the reverse
//! with [`ClientMessage::decode`], whose typed errors tell bad JSON, a missing or unknown type
//! and bad fields apart. The server encodes `change` messages with [`encode_change`] from row
//! JSON it encoded once per projection, not once per subscriber; the result is exactly what
//! serializing [`ServerMessage::Change`] gives.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::limits::{SUBSCRIPTION_ID_BYTES_MAX, UNKNOWN_TYPE_ECHO_CHARS_MAX};

/// A row of a result: column name to value.
pub type Row = Map<String, Value>;

/// Error codes of `{"type":"error"}` and their meaning. SQL errors keep the codes of the HTTP
/// API (`syntax_error`, `unknown_column`, ...), so this list is not closed.
pub mod codes {
    /// The frame is not JSON, or not a JSON object.
    pub const INVALID_JSON: &str = "invalid_json";
    /// The object has no string `type`, or fields of the wrong shape.
    pub const INVALID_MESSAGE: &str = "invalid_message";
    /// `type` names no message this server knows.
    pub const UNKNOWN_TYPE: &str = "unknown_type";
    /// A message other than `authenticate` arrived first.
    pub const NOT_AUTHENTICATED: &str = "not_authenticated";
    /// `authenticate` on an authenticated connection.
    pub const ALREADY_AUTHENTICATED: &str = "already_authenticated";
    /// A subscription with this id is active on the connection.
    pub const DUPLICATE_SUBSCRIPTION: &str = "duplicate_subscription";
    /// No subscription with this id on the connection.
    pub const UNKNOWN_SUBSCRIPTION: &str = "unknown_subscription";
    /// `next_batch` when no further snapshot batch is pending.
    pub const NO_PENDING_BATCH: &str = "no_pending_batch";
    /// The history after `from_seq_id` is gone; `lowest_seq` says where it starts.
    pub const RESUME_TOO_OLD: &str = "resume_too_old";
    /// The client did not read fast enough; the connection is closed (1008).
    pub const SLOW_CONSUMER: &str = "slow_consumer";
    /// A limit (subscriptions per connection, message size, batch size) was exceeded.
    pub const LIMIT_EXCEEDED: &str = "limit_exceeded";
    /// The statement is valid SQL but cannot be a subscription (e.g. ORDER BY, LIMIT).
    pub const UNSUPPORTED: &str = "unsupported";
    /// The server could not read a change this subscription needs (a damaged record, say);
    /// the subscription has ended. Resume from the last `_seq` received, or subscribe again.
    pub const SUBSCRIPTION_INTERRUPTED: &str = "subscription_interrupted";
    /// The subscription's table was dropped; the subscription has ended.
    pub const TABLE_DROPPED: &str = "table_dropped";
    /// The table's columns changed under a `SELECT *` subscription, which has ended; subscribe
    /// again to receive the new columns.
    pub const SCHEMA_CHANGED: &str = "schema_changed";
    /// The subscriber's user lost the privilege the subscription needs (REVOKE, or a role
    /// change); the subscription has ended.
    pub const PERMISSION_REVOKED: &str = "permission_revoked";
    /// The subscriber's user was dropped; every subscription has ended and the connection
    /// closes.
    pub const USER_DROPPED: &str = "user_dropped";
    /// Too many failed authentications for this user name or from this address; retry after
    /// the number of seconds the message names.
    pub const TOO_MANY_ATTEMPTS: &str = "too_many_attempts";
}

/// A `_seq` (or any Snowflake id) in JSON: written as a string of decimal digits, read from
/// such a string or from a JSON number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeqText(pub u64);

impl Serialize for SeqText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SeqText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<SeqText, D::Error> {
        struct SeqVisitor;
        impl Visitor<'_> for SeqVisitor {
            type Value = SeqText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a _seq as a string of decimal digits or a non-negative integer")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SeqText, E> {
                Ok(SeqText(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SeqText, E> {
                u64::try_from(v)
                    .map(SeqText)
                    .map_err(|_| E::custom("a _seq is never negative"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SeqText, E> {
                if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(E::custom(format!("'{v}' is not a _seq")));
                }
                v.parse()
                    .map(SeqText)
                    .map_err(|_| E::custom("_seq too large"))
            }
        }
        deserializer.deserialize_any(SeqVisitor)
    }
}

impl fmt::Display for SeqText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// How an `authenticate` message proves who the client is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// A user name and password.
    Basic,
    /// A token from `POST /v1/api/auth/login`.
    Jwt,
}

/// What a client sends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// The first message of a connection (unless the upgrade request carried credentials).
    /// The fields the method needs must be present; the others are ignored.
    Authenticate {
        /// Which credentials follow.
        method: AuthMethod,
        /// The user, for [`AuthMethod::Basic`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        username: Option<String>,
        /// The password, for [`AuthMethod::Basic`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<String>,
        /// The token, for [`AuthMethod::Jwt`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
    },
    /// Starts a subscription: a snapshot (or a resume) and then its changes.
    Subscribe {
        /// What to subscribe to, and the client's name for it.
        subscription: Subscription,
    },
    /// Asks for the next snapshot batch, so the client takes a snapshot at its own pace.
    NextBatch {
        /// The subscription; without it, the one subscription with a batch pending.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subscription_id: Option<String>,
    },
    /// Ends a subscription; its id is free again.
    Unsubscribe {
        /// The subscription to end.
        subscription_id: String,
    },
    /// Asks for a `pong`, for clients that cannot send WebSocket ping frames.
    Ping,
}

/// The `subscription` of a `subscribe` message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    /// The client's name for the subscription, 1 to [`SUBSCRIPTION_ID_BYTES_MAX`] bytes,
    /// unique among the connection's active subscriptions; every message about it carries it.
    pub id: String,
    /// One `SELECT` of one table, with an optional `WHERE`.
    pub sql: String,
    /// Batch size and resume point.
    #[serde(default)]
    pub options: SubscribeOptions,
}

/// Unknown options are refused, so a misspelt one (`batchsize`) is not silently ignored.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscribeOptions {
    /// Rows per `initial_data_batch`; the server's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u32>,
    /// Resume: send every change after this `_seq` instead of a snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_seq_id: Option<SeqText>,
    /// How the rows' BIGINT values are written; numbers when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bigint: Option<BigIntAs>,
    /// The values of `$1`, `$2`, ... in `sql`, as in an HTTP SQL request; bound once, when
    /// the subscription is compiled (send the same ones again to resume it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<Value>,
    /// AS OF: take the snapshot as of this past `_seq` (still retained), then every change
    /// after it, then live. Not together with `from_seq_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of_seq: Option<SeqText>,
}

/// How BIGINT values (other than `_seq`, always a string) are written in rows: the
/// `"bigint"` option of a subscription and of an HTTP SQL request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BigIntAs {
    /// JSON numbers, as clients written before the option expect. A JavaScript client
    /// reads values past 2^53 rounded.
    #[default]
    Number,
    /// Strings of decimal digits, exact in every language.
    String,
}

/// Why a text frame is not a client message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The text is not JSON, or not a JSON object; holds the parser's message.
    #[error("not a JSON object: {0}")]
    InvalidJson(String),
    /// The object has no `"type"` string, so its fields cannot be interpreted.
    #[error("the message has no string field \"type\"")]
    MissingType,
    /// The `"type"` names no client message (its first [`UNKNOWN_TYPE_ECHO_CHARS_MAX`]
    /// characters are kept).
    #[error("unknown message type '{0}'")]
    UnknownType(String),
    /// The type is known but its fields are missing or of the wrong kind.
    #[error("bad {kind} message: {message}")]
    BadFields {
        /// The message's `"type"`.
        kind: String,
        /// What is wrong with its fields (serde's message).
        message: String,
        /// The subscription the message names, when it names one (for the error's
        /// `subscription_id`).
        subscription_id: Option<String>,
    },
}

impl DecodeError {
    /// The `code` of the error message the server answers with.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::InvalidJson(_) => codes::INVALID_JSON,
            DecodeError::MissingType | DecodeError::BadFields { .. } => codes::INVALID_MESSAGE,
            DecodeError::UnknownType(_) => codes::UNKNOWN_TYPE,
        }
    }

    /// The subscription the bad message named, for the error's `subscription_id`.
    pub fn subscription_id(&self) -> Option<&str> {
        match self {
            DecodeError::BadFields {
                subscription_id, ..
            } => subscription_id.as_deref(),
            _ => None,
        }
    }
}

/// The message types a client may send.
const CLIENT_TYPES: [&str; 5] = [
    "authenticate",
    "subscribe",
    "next_batch",
    "unsubscribe",
    "ping",
];

impl ClientMessage {
    /// Decodes one text frame, telling bad JSON, a missing or unknown `"type"` and bad fields
    /// apart so the server answers each with its own code ([`DecodeError::code`]).
    pub fn decode(text: &str) -> Result<ClientMessage, DecodeError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| DecodeError::InvalidJson(e.to_string()))?;
        let Value::Object(object) = &value else {
            return Err(DecodeError::InvalidJson("expected an object".into()));
        };
        let Some(Value::String(kind)) = object.get("type") else {
            return Err(DecodeError::MissingType);
        };
        if !CLIENT_TYPES.contains(&kind.as_str()) {
            return Err(DecodeError::UnknownType(
                kind.chars().take(UNKNOWN_TYPE_ECHO_CHARS_MAX).collect(),
            ));
        }
        let kind = kind.clone();
        let subscription_id = named_subscription(object);
        serde_json::from_value(value).map_err(|e| DecodeError::BadFields {
            kind,
            message: e.to_string(),
            subscription_id,
        })
    }

    /// The message as the JSON text of one frame.
    pub fn encode(&self) -> String {
        // A derived Serialize of strings, numbers and maps cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A column of a subscription's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnSchema {
    /// The column's name in the rows (the SELECT item's alias or text).
    pub name: String,
    /// Its SQL type as text (`BIGINT`, `TEXT`, ...), so a client can parse the JSON values.
    #[serde(rename = "type")]
    pub data_type: String,
}

/// How a resume is served when it is not exact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResumeMode {
    /// The exact history is gone (compaction): until `snapshot_end_seq`, an `insert` replaces
    /// any row with its primary key and a `delete` names a row by its primary key only.
    Keyed,
}

/// Where a snapshot stands after a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchStatus {
    /// More batches follow, each on `next_batch`.
    Loading,
    /// This was the last batch; changes after the snapshot follow.
    Ready,
}

/// The paging state of an `initial_data_batch`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchControl {
    /// The batch's number, from 0.
    pub batch_num: u64,
    /// Whether the snapshot is complete with this batch.
    pub status: BatchStatus,
    /// More batches follow (`status` is `Loading`).
    pub has_more: bool,
    /// The snapshot's boundary, as in the ack: the rows are the result as of this `_seq`.
    pub snapshot_end_seq: SeqText,
}

/// What a `change` did to the subscription's result (docs/websocket.md, "Changes"), which
/// is not always what the write did: an UPDATE moving a row out of the filter is a `Delete`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeType {
    /// A row entered the result: add it.
    Insert,
    /// A row of the result changed: replace the one `old_rows` names.
    Update,
    /// A row left the result: remove it.
    Delete,
}

impl ChangeType {
    /// Its name on the wire (`insert`, `update`, `delete`).
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Insert => "insert",
            ChangeType::Update => "update",
            ChangeType::Delete => "delete",
        }
    }
}

/// The subscription id a client message names (`subscription.id` or `subscription_id`), if it
/// is a string of sensible length.
fn named_subscription(object: &Map<String, Value>) -> Option<String> {
    let id = match object.get("subscription") {
        Some(Value::Object(subscription)) => subscription.get("id"),
        _ => object.get("subscription_id"),
    };
    match id {
        Some(Value::String(id)) if id.len() <= SUBSCRIPTION_ID_BYTES_MAX => Some(id.clone()),
        _ => None,
    }
}

/// What the server sends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The connection is authenticated.
    AuthSuccess {
        /// As whom.
        user: String,
        /// The user's role (`user`, `service`, `dba`, `system`).
        role: String,
    },
    /// Authentication failed or was incomplete; the message says which.
    AuthError {
        /// For people.
        message: String,
    },
    /// A subscription exists; its snapshot batches (or, for a resume, its changes) follow.
    SubscriptionAck {
        /// The client's id of the subscription.
        subscription_id: String,
        /// The result's columns in SELECT-list order; `_seq` last when it was not selected.
        schema: Vec<ColumnSchema>,
        /// The snapshot's boundary; for a resume, the `from_seq_id` it resumes after; for a
        /// keyed resume, the `_seq` the keyed changes bring the client to.
        snapshot_end_seq: SeqText,
        /// Present for a keyed resume (docs/websocket.md, "Keyed resume"): the changes up to
        /// `snapshot_end_seq` are the newest state of each key changed since `from_seq_id`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<ResumeMode>,
    },
    /// One page of a subscription's snapshot.
    InitialDataBatch {
        /// The client's id of the subscription.
        subscription_id: String,
        /// Up to `batch_size` rows of the result, in no particular order.
        rows: Vec<Row>,
        /// Which page this is and whether more follow.
        batch_control: BatchControl,
    },
    /// One change of a subscription's result, in `_seq` order.
    Change {
        /// The client's id of the subscription.
        subscription_id: String,
        /// What happened to the result.
        change_type: ChangeType,
        /// The row after the change (for a delete, the row as last seen, with the deleting
        /// change's `_seq`).
        rows: Vec<Row>,
        /// For an update, the row it replaces.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        old_rows: Option<Vec<Row>>,
        /// For a top-K (`ORDER BY ... LIMIT`) subscription: the `_seq` of the write this
        /// change is for, the point to resume from. Its rows keep their own versions' `_seq`s
        /// (a row that enters the window because another left is an older version).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<SeqText>,
    },
    /// A request failed, or a subscription ended.
    Error {
        /// The subscription concerned; absent for an error about the connection.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subscription_id: Option<String>,
        /// One of [`codes`] or an SQL error code.
        code: String,
        /// For people.
        message: String,
        /// For `resume_too_old` and refused resumes: the lowest `_seq` a resume may use.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lowest_seq: Option<SeqText>,
    },
    /// The answer to `ping`.
    Pong,
}

impl ServerMessage {
    /// The message as the JSON text of one frame.
    pub fn encode(&self) -> String {
        // A derived Serialize of strings, numbers and maps cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A message the server sent, for clients.
    pub fn decode(text: &str) -> Result<ServerMessage, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// An error about one subscription (or the connection, without an id).
    pub fn error(
        subscription_id: Option<&str>,
        code: &str,
        message: impl Into<String>,
    ) -> ServerMessage {
        ServerMessage::Error {
            subscription_id: subscription_id.map(str::to_owned),
            code: code.to_owned(),
            message: message.into(),
            lowest_seq: None,
        }
    }
}

/// A `change` message from row arrays already encoded as JSON (`rows_json` is `[...]`): the
/// same text [`ServerMessage::Change`] serializes to, without re-encoding the rows.
pub fn encode_change(
    subscription_id: &str,
    change_type: ChangeType,
    rows_json: &str,
    old_rows_json: Option<&str>,
) -> String {
    let id = Value::from(subscription_id).to_string();
    let mut out =
        String::with_capacity(64 + id.len() + rows_json.len() + old_rows_json.map_or(0, str::len));
    out.push_str(r#"{"type":"change","subscription_id":"#);
    out.push_str(&id);
    out.push_str(r#","change_type":""#);
    out.push_str(change_type.as_str());
    out.push_str(r#"","rows":"#);
    out.push_str(rows_json);
    if let Some(old) = old_rows_json {
        out.push_str(r#","old_rows":"#);
        out.push_str(old);
    }
    out.push('}');
    out
}

/// [`encode_change`] with the change's own `_seq` (`"seq"`), as top-K subscriptions send it.
pub fn encode_change_at(
    subscription_id: &str,
    change_type: ChangeType,
    rows_json: &str,
    old_rows_json: Option<&str>,
    seq: u64,
) -> String {
    let mut out = encode_change(subscription_id, change_type, rows_json, old_rows_json);
    out.pop();
    out.push_str(r#","seq":""#);
    out.push_str(&seq.to_string());
    out.push_str("\"}");
    out
}

#[cfg(test)]
mod tests;
