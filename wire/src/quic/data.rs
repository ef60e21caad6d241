//! Payloads of the data-path messages: auth, produce, fetch/tail, SQL and the generic error.
//! Each struct is one frame's payload; its `Payload` impl is the layout in `PROTOCOL.md`.

use bytes::Bytes;

use super::buf::{put_blob, put_bool, put_len, put_text, put_u32, put_u64, put_u8, Reader};
use super::error::PayloadError;
use super::message::Payload;
use super::types::{Idempotence, PartitionIndex, Partitioning, ReadFrom, Seq};

/// Bytes of a produced record besides its key and value: two length prefixes.
const PRODUCE_RECORD_FIXED_BYTES: usize = 8;
/// Bytes of a `produce_table` row besides its JSON text: a length prefix.
const PRODUCE_ROW_FIXED_BYTES: usize = 4;
/// Payload bytes of a records frame before the first record: partition u32, high_seq u64,
/// count u32.
pub(crate) const RECORDS_HEAD_BYTES: usize = 16;
/// Bytes of one record of a records frame besides its key and value: seq, timestamp, two
/// length prefixes.
pub(crate) const RECORD_FIXED_BYTES: usize = 24;

/// Credentials of an `auth` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// A user name and password (tag 1).
    Password {
        /// The user.
        username: String,
        /// The password.
        password: String,
    },
    /// A JWT issued by the server's login (tag 2).
    Jwt {
        /// The token.
        token: String,
    },
}

/// `auth`: the first request of every connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Auth {
    /// Who the client is.
    pub credentials: Credentials,
}

impl Payload for Auth {
    fn encode(&self, out: &mut Vec<u8>) {
        match &self.credentials {
            Credentials::Password { username, password } => {
                put_u8(out, 1);
                put_text(out, username);
                put_text(out, password);
            }
            Credentials::Jwt { token } => {
                put_u8(out, 2);
                put_text(out, token);
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Auth, PayloadError> {
        let credentials = match r.u8("method")? {
            1 => Credentials::Password {
                username: r.name("username")?,
                password: r.text("password")?,
            },
            2 => Credentials::Jwt {
                token: r.text("token")?,
            },
            tag => {
                return Err(PayloadError::BadTag {
                    field: "method",
                    tag,
                })
            }
        };
        Ok(Auth { credentials })
    }
}

/// `auth_ok`: the connection is authenticated as this user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthOk {
    /// The user name.
    pub username: String,
    /// The user's role (`user`, `service`, `dba`, `system`).
    pub role: String,
}

impl Payload for AuthOk {
    fn encode(&self, out: &mut Vec<u8>) {
        put_text(out, &self.username);
        put_text(out, &self.role);
    }

    fn decode(r: &mut Reader<'_>) -> Result<AuthOk, PayloadError> {
        Ok(AuthOk {
            username: r.name("username")?,
            role: r.name("role")?,
        })
    }
}

/// `error`: the request failed; `code` is one of [`super::codes`] or an SQL error code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorReply {
    /// A stable, machine-readable code.
    pub code: String,
    /// A message for people.
    pub message: String,
}

impl Payload for ErrorReply {
    fn encode(&self, out: &mut Vec<u8>) {
        put_text(out, &self.code);
        put_text(out, &self.message);
    }

    fn decode(r: &mut Reader<'_>) -> Result<ErrorReply, PayloadError> {
        Ok(ErrorReply {
            code: r.name("code")?,
            message: r.text("message")?,
        })
    }
}

/// One message of a topic produce. Decoded from a shared frame buffer, key and value are views
/// of it (no copy), and keep the whole frame alive while they live.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProduceRecord {
    /// The key (may be empty); with `ByKeyHash` it picks the partition.
    pub key: Bytes,
    /// The value.
    pub value: Bytes,
}

/// `produce_topic`: a batch of messages for one topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProduceTopic {
    /// The topic.
    pub topic: String,
    /// How the partition is chosen.
    pub partitioning: Partitioning,
    /// Producer id and batch sequence, for a batch written once however often it is sent.
    pub idempotence: Option<Idempotence>,
    /// The messages, in order.
    pub records: Vec<ProduceRecord>,
}

impl Payload for ProduceTopic {
    fn encode(&self, out: &mut Vec<u8>) {
        put_text(out, &self.topic);
        self.partitioning.encode(out);
        Idempotence::encode_option(&self.idempotence, out);
        put_len(out, self.records.len());
        for record in &self.records {
            put_blob(out, &record.key);
            put_blob(out, &record.value);
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<ProduceTopic, PayloadError> {
        let topic = r.name("topic")?;
        let partitioning = Partitioning::decode(r)?;
        let idempotence = Idempotence::decode_option(r)?;
        let count = r.count("records", PRODUCE_RECORD_FIXED_BYTES, usize::MAX)?;
        let mut records = Vec::with_capacity(count);
        for _ in 0..count {
            let key = r.blob("key")?;
            let value = r.blob("value")?;
            records.push(ProduceRecord { key, value });
        }
        Ok(ProduceTopic {
            topic,
            partitioning,
            idempotence,
            records,
        })
    }
}

/// `produce_table`: rows to insert into one table, each a JSON object as text (keyed by column
/// name, values as in the HTTP API), in order and as one batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProduceTable {
    /// The table, `namespace.name`.
    pub table: String,
    /// Producer id and batch sequence, as for topics.
    pub idempotence: Option<Idempotence>,
    /// The rows as JSON object text; the server parses and type-checks them.
    pub rows_json: Vec<String>,
}

impl Payload for ProduceTable {
    fn encode(&self, out: &mut Vec<u8>) {
        put_text(out, &self.table);
        Idempotence::encode_option(&self.idempotence, out);
        put_len(out, self.rows_json.len());
        for row in &self.rows_json {
            put_text(out, row);
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<ProduceTable, PayloadError> {
        let table = r.name("table")?;
        let idempotence = Idempotence::decode_option(r)?;
        let count = r.count("rows", PRODUCE_ROW_FIXED_BYTES, usize::MAX)?;
        let mut rows_json = Vec::with_capacity(count);
        for _ in 0..count {
            rows_json.push(r.text("row")?);
        }
        Ok(ProduceTable {
            table,
            idempotence,
            rows_json,
        })
    }
}

/// `produce_ack`: the batch is durable and got `_seq`s `first..=last`, rising in the batch's
/// order but not necessarily consecutive (a millisecond's 4,096 ids per node can run out
/// mid-batch; the rest take the next millisecond's). A batch spread over
/// several partitions (key hash) gets one ack per partition, all with the produce's request id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProduceAck {
    /// The partition written.
    pub partition: PartitionIndex,
    /// The first assigned `_seq`.
    pub first: Seq,
    /// The last assigned `_seq`.
    pub last: Seq,
    /// How many records got a `_seq` in this partition.
    pub count: u32,
    /// The batch was a retry of one already written; the range is the original's.
    pub duplicate: bool,
}

impl Payload for ProduceAck {
    fn encode(&self, out: &mut Vec<u8>) {
        put_u32(out, self.partition.0);
        put_u64(out, self.first.0);
        put_u64(out, self.last.0);
        put_u32(out, self.count);
        put_bool(out, self.duplicate);
    }

    fn decode(r: &mut Reader<'_>) -> Result<ProduceAck, PayloadError> {
        Ok(ProduceAck {
            partition: PartitionIndex(r.u32("partition")?),
            first: Seq(r.u64("first")?),
            last: Seq(r.u64("last")?),
            count: r.u32("count")?,
            duplicate: r.bool("duplicate")?,
        })
    }
}

/// `fetch` and `tail`: read one partition of a topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetch {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: PartitionIndex,
    /// Where to start.
    pub from: ReadFrom,
    /// At most this many records per response or push.
    pub records_max: u32,
    /// At most about this many key and value bytes per response or push (at least one record).
    pub bytes_max: u32,
    /// `fetch`: how long to wait for a first record when none is there (long poll; 0 answers at
    /// once). `tail`: how long to gather records before a push that is not full.
    pub wait_ms: u32,
}

impl Payload for Fetch {
    fn encode(&self, out: &mut Vec<u8>) {
        put_text(out, &self.topic);
        put_u32(out, self.partition.0);
        self.from.encode(out);
        put_u32(out, self.records_max);
        put_u32(out, self.bytes_max);
        put_u32(out, self.wait_ms);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Fetch, PayloadError> {
        Ok(Fetch {
            topic: r.name("topic")?,
            partition: PartitionIndex(r.u32("partition")?),
            from: ReadFrom::decode(r)?,
            records_max: r.u32("records_max")?,
            bytes_max: r.u32("bytes_max")?,
            wait_ms: r.u32("wait_ms")?,
        })
    }
}

/// One stored message of a topic. Decoded from a shared frame buffer, key and value are views
/// of it (no copy), and keep the whole frame alive while they live.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    /// Its `_seq`.
    pub seq: Seq,
    /// When it was appended, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// The key.
    pub key: Bytes,
    /// The value.
    pub value: Bytes,
}

/// `fetch_response` and `tail_push`: records of one partition, in `_seq` order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Records {
    /// The partition.
    pub partition: PartitionIndex,
    /// The partition's last `_seq` when the response was made (0: empty), for lag.
    pub high_seq: Seq,
    /// The records.
    pub records: Vec<Record>,
}

impl Payload for Records {
    fn encode(&self, out: &mut Vec<u8>) {
        put_u32(out, self.partition.0);
        put_u64(out, self.high_seq.0);
        put_len(out, self.records.len());
        for record in &self.records {
            put_u64(out, record.seq.0);
            put_u64(out, record.timestamp_ms);
            put_blob(out, &record.key);
            put_blob(out, &record.value);
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Records, PayloadError> {
        let partition = PartitionIndex(r.u32("partition")?);
        let high_seq = Seq(r.u64("high_seq")?);
        let count = r.count("records", RECORD_FIXED_BYTES, usize::MAX)?;
        let mut records = Vec::with_capacity(count);
        for _ in 0..count {
            records.push(Record {
                seq: Seq(r.u64("seq")?),
                timestamp_ms: r.u64("timestamp_ms")?,
                key: r.blob("key")?,
                value: r.blob("value")?,
            });
        }
        Ok(Records {
            partition,
            high_seq,
            records,
        })
    }
}

/// `sql`: statements for the HTTP SQL engine, with parameters as a JSON array text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sql {
    /// The statements, `;`-separated.
    pub sql: String,
    /// The parameters: a JSON array as text (`[]` for none).
    pub params_json: String,
}

impl Payload for Sql {
    fn encode(&self, out: &mut Vec<u8>) {
        put_text(out, &self.sql);
        put_text(out, &self.params_json);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Sql, PayloadError> {
        Ok(Sql {
            sql: r.text("sql")?,
            params_json: r.text("params_json")?,
        })
    }
}

/// `sql_result`: the exact JSON body `POST /v1/api/sql` answers, success or error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqlResult {
    /// The JSON text.
    pub body_json: String,
}

impl Payload for SqlResult {
    fn encode(&self, out: &mut Vec<u8>) {
        put_text(out, &self.body_json);
    }

    fn decode(r: &mut Reader<'_>) -> Result<SqlResult, PayloadError> {
        Ok(SqlResult {
            body_json: r.text("body_json")?,
        })
    }
}
