//! Named bounds of the broker. Every buffer, body, name, count and wait the server keeps is
//! bounded by a constant here (or by a config field whose default is here), unit last. A
//! bound that belongs to another crate (a name's bytes in `strand_sql_view`, a record's in
//! `strand_log`, a frame's in `strand_wire`) is used from there, not restated; the `const`
//! assertions at the end state how these bounds must relate, each saying what would break.

mod auth;
mod cluster;
pub use auth::*;
pub use cluster::*;

use strand_log::limits as log_limits;
use strand_log::record::{FRAME_ALIGN_BYTES, FRAME_HEADER_BYTES};
use strand_sql_view::limits as sql_limits;
use strand_wire::limits::{FRAME_BYTES_MAX, PARTITIONS_PER_MESSAGE_MAX};
use strand_wire::quic::HEADER_BYTES;

/// Largest HTTP request body; a larger one gets 413 with the JSON error shape.
pub const REQUEST_BODY_BYTES_MAX: usize = 1024 * 1024;
/// Largest `Authorization` header accepted; a token or Basic pair is far smaller.
pub const AUTHORIZATION_HEADER_BYTES_MAX: usize = 8 * 1024;
/// Most rows a live top-K subscription's window may span (its OFFSET plus its LIMIT): the
/// server keeps them in memory per subscription.
pub const LIVE_WINDOW_ROWS_MAX: u64 = 10_000;
/// Fewest rows a top-K window keeps beyond its visible ones (as many as its LIMIT, within
/// this and [`LIVE_WINDOW_SPARE_ROWS_MAX`]): a row leaving the window is replaced from them;
/// only when they run out is the table read again.
pub const LIVE_WINDOW_SPARE_ROWS_MIN: usize = 16;
/// Most rows a top-K window keeps beyond its visible ones.
pub const LIVE_WINDOW_SPARE_ROWS_MAX: usize = 1_000;
/// How often the clock thread looks for time-relative subscriptions (`now()` in WHERE) whose
/// rows are due to enter or leave: with the commit of the tick, the delay a row leaves late.
pub const LIVE_CLOCK_INTERVAL_MS: u64 = 50;
/// How long the clock thread waits for the records below a tick to be published before it
/// tries again at its next round (a commit round under way takes milliseconds).
pub const LIVE_CLOCK_SETTLE_WAIT_MS: u64 = 200;
/// How long a live join waits for the records below its tick to be published before it leaves
/// them to its next wake-up.
pub const LIVE_JOIN_SETTLE_WAIT_MS: u64 = 2_000;
/// How long a one-shot join waits for the records below its snapshot's tick to be published.
pub const JOIN_SNAPSHOT_WAIT_MS: u64 = 5_000;
/// Most parameters (`$1`, `$2`, ...) one SQL request may carry.
pub const SQL_PARAMS_MAX: usize = 1024;
/// Requests doing blocking work (argon2 verification, SQL execution) at once; more get 503
/// `overloaded` instead of queueing without bound on the blocking thread pool.
pub const BLOCKING_REQUESTS_IN_FLIGHT_MAX: usize = 256;

/// Longest name of a user created now, in bytes (the longest user name, any user's, is
/// `strand_sql_view::limits::USER_NAME_BYTES_MAX`; the longest password is
/// `strand_sql_view::limits::PASSWORD_BYTES_MAX`: argon2 takes any length, that bounds the
/// work per attempt). A user's partition directory is
/// `u/<hex of the name>.<incarnation>`: 2 bytes per name byte, a dot and up to 20 digits must
/// stay within the 255 bytes file systems allow in a name (2 * 100 + 21 = 221).
pub const NEW_USER_NAME_BYTES_MAX: usize = 100;
/// Shortest password `create_user` and `set_password` accept.
pub const PASSWORD_BYTES_MIN: usize = 1;
/// Longest table name (`namespace.table`), in bytes.
pub const TABLE_NAME_BYTES_MAX: usize = 255;
/// Most users a directory holds; each costs one record on every start's replay.
pub const USERS_MAX: usize = 100_000;
/// Most tables one user may hold grants on.
pub const GRANTS_PER_USER_MAX: usize = 10_000;

/// Default interval of the background fdatasync under `fsync = "interval"`.
pub const FSYNC_INTERVAL_MS_DEFAULT: u64 = 100;
/// Longest fsync interval a config may ask for.
pub const FSYNC_INTERVAL_MS_MAX: u64 = 60_000;
/// Default size at which a log segment is sealed: the log's own default.
pub const SEGMENT_BYTES_DEFAULT: u64 = log_limits::SEGMENT_BYTES_DEFAULT;
/// Smallest segment size a config may ask for (the log refuses smaller ones).
pub const SEGMENT_BYTES_MIN: u64 = log_limits::SEGMENT_BYTES_MIN;
/// Largest segment size a config may ask for (positions in a segment are `u32`).
pub const SEGMENT_BYTES_MAX: u64 = log_limits::SEGMENT_BYTES_MAX;
/// Default number of partitions holding an open segment file (one descriptor each); idle
/// ones close theirs and reopen it to write: the log's own default.
pub const OPEN_PARTITIONS_MAX_DEFAULT: u64 = log_limits::OPEN_PARTITIONS_DEFAULT as u64;
/// Fewest a config may ask for: below this a busy server reopens files on most writes.
pub const OPEN_PARTITIONS_MAX_MIN: u64 = 16;
/// Most a config may ask for: each costs a descriptor, and the soft descriptor limit is
/// rarely above this.
pub const OPEN_PARTITIONS_MAX_MAX: u64 = 1_000_000;
/// Default period of the retention sweep over STREAM tables.
pub const RETENTION_INTERVAL_MS_DEFAULT: u64 = 60_000;
/// Shortest retention period a config may ask for: each sweep lists every partition on disk.
pub const RETENTION_INTERVAL_MS_MIN: u64 = 10;
/// Longest retention period a config may ask for (one day).
pub const RETENTION_INTERVAL_MS_MAX: u64 = 86_400_000;

/// Default period of the STREAM expiry sweep: a row leaves its subscribers' results at most
/// about this long after its TTL passed.
pub const TTL_SWEEP_INTERVAL_MS_DEFAULT: u64 = 1_000;
/// Shortest expiry sweep period a config may ask for (each sweep walks the due queue).
pub const TTL_SWEEP_INTERVAL_MS_MIN: u64 = 10;
/// Longest expiry sweep period: expired rows linger at most an hour.
pub const TTL_SWEEP_INTERVAL_MS_MAX: u64 = 3_600_000;
/// Default period of the compaction check over USER and SHARED partitions.
pub const COMPACTION_INTERVAL_MS_DEFAULT: u64 = 300_000;
/// Shortest compaction check period a config may ask for.
pub const COMPACTION_INTERVAL_MS_MIN: u64 = 10;
/// Longest compaction check period: a day.
pub const COMPACTION_INTERVAL_MS_MAX: u64 = 86_400_000;
/// Sealed bytes since a partition's last compaction that make it due.
pub const COMPACTION_MIN_BYTES_DEFAULT: u64 = 16 * 1024 * 1024;
/// Age of the oldest uncompacted sealed segment that makes a partition due (a day).
pub const COMPACTION_MAX_AGE_MS_DEFAULT: u64 = 86_400_000;
/// How long compaction keeps tombstones (a week): a client resuming within it learns of
/// every delete; later ones get a keyed catch-up or `resume_too_old`.
pub const TOMBSTONE_RETENTION_MS_DEFAULT: u64 = 7 * 86_400_000;
/// Longest duration any millisecond setting may ask for (about 100 years).
pub const DURATION_MS_MAX: u64 = 100 * 365 * 86_400_000;
/// Most expired STREAM rows deleted in one batch (one append, one commit).
pub const EXPIRY_BATCH_ROWS_MAX: usize = 1_024;
/// Default cap on client connections open at once (HTTP with WebSocket, plus QUIC). Each
/// holds a file descriptor and some memory; the start lowers the cap to half the open-files
/// limit when that is smaller, keeping the other half for partitions and the server's files.
pub const CONNECTIONS_MAX_DEFAULT: u64 = 10_000;
/// Default cap on connections that have not authenticated yet: what idle or half-open
/// sockets can take before new ones are refused (they time out meanwhile).
pub const UNAUTHENTICATED_CONNECTIONS_MAX_DEFAULT: u64 = 1_000;

/// Default cap on one user's WebSocket plus QUIC connections (SPEC section 8).
pub const CONNECTIONS_PER_USER_MAX_DEFAULT: u64 = 1_000;
/// Largest value any connection cap may be set to.
pub const CONNECTIONS_MAX_MAX: u64 = 1_000_000;
/// Default time a WebSocket or QUIC connection has, from its opening (QUIC: including the
/// handshake), to authenticate.
pub const AUTH_TIMEOUT_MS_DEFAULT: u64 = 10_000;
/// Default time an HTTP connection has to send a complete request head, counted from its
/// opening or from the end of the previous answer (so also its keep-alive idle time).
pub const HTTP_HEADER_TIMEOUT_MS_DEFAULT: u64 = 30_000;
/// Default time a request has to deliver its whole body once its head arrived.
pub const HTTP_BODY_TIMEOUT_MS_DEFAULT: u64 = 30_000;
/// Shortest connection timeout a config may ask for.
pub const CONNECTION_TIMEOUT_MS_MIN: u64 = 100;
/// Longest connection timeout a config may ask for: an hour.
pub const CONNECTION_TIMEOUT_MS_MAX: u64 = 3_600_000;
/// Default bytes all QUIC request frames being received or served may hold together; a frame
/// that does not fit is refused (`overloaded`) before its payload is read.
pub const QUIC_FRAME_BUFFER_BYTES_DEFAULT: u64 = 256 << 20;
/// Smallest QUIC frame budget a config may ask for: one frame of the largest size, header
/// included, so a frame the protocol allows can always be received.
pub const QUIC_FRAME_BUFFER_BYTES_MIN: u64 = (FRAME_BYTES_MAX + HEADER_BYTES) as u64;
/// Largest QUIC frame budget a config may ask for.
pub const QUIC_FRAME_BUFFER_BYTES_MAX: u64 = 64 << 30;
/// The open-files limit is shared out so: at most this fraction (1/N) for client connections.
pub const CONNECTIONS_SHARE_OF_OPEN_FILES_DIVISOR: u64 = 2;
/// Consumer groups one user may hold at once by default (`--groups-per-user-max`): the
/// server holds at most [`GROUPS_MAX`], so one user's junk groups cannot fill it.
pub const GROUPS_PER_USER_MAX_DEFAULT: usize = 100;
/// Most a config may set `groups_per_user_max` to: the server's own bound.
pub const GROUPS_PER_USER_MAX_MAX: u64 = GROUPS_MAX as u64;
/// How long a consumer group's committed offsets outlive its last member and last commit by
/// default (`--group-offsets-retention-ms`): a week, like Kafka's `offsets.retention.minutes`.
pub const GROUP_OFFSETS_RETENTION_MS_DEFAULT: u64 = 7 * 86_400_000;
/// After SIGTERM, how long in-flight requests may take before the server stops anyway.
pub const SHUTDOWN_GRACE_MS: u64 = 10_000;
/// After a failed accept (e.g. out of file descriptors), wait this long before the next.
pub const ACCEPT_RETRY_MS: u64 = 10;
/// Longest pause after failed accepts in a row (the pause doubles from [`ACCEPT_RETRY_MS`]).
pub const ACCEPT_RETRY_MS_MAX: u64 = 1_000;
/// Largest config file read.
pub const CONFIG_FILE_BYTES_MAX: u64 = 1024 * 1024;

/// Largest response body the CLI reads from the server.
pub const CLI_RESPONSE_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// Largest script the CLI reads from a non-terminal stdin.
pub const CLI_SCRIPT_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// How long the CLI waits for one HTTP answer.
pub const CLI_REQUEST_TIMEOUT_MS: u64 = 60_000;
/// Lines kept in the REPL history file.
pub const CLI_HISTORY_LINES_MAX: usize = 1000;
/// Rows a one-shot SELECT may return; a larger result needs a LIMIT.
pub const RESULT_ROWS_MAX: usize = 100_000;
/// Table partitions (with their key indexes) kept open; each holds one log partition.
pub const KEYED_PARTITIONS_CACHED_MAX: usize = 256;

/// Largest WebSocket message a client may send (a `subscribe` with its SQL fits easily).
pub const WS_MESSAGE_BYTES_MAX: usize = 1024 * 1024;
/// Initial read buffer of a WebSocket connection (tungstenite's default is 128 KiB, allocated
/// per connection up front; clients send small messages, and the buffer grows for large ones).
pub const WS_READ_BUFFER_BYTES: usize = 4 * 1024;
/// Subscriptions one WebSocket connection may hold at once.
pub const SUBSCRIPTIONS_PER_CONNECTION_MAX: usize = 256;
/// Rows per snapshot batch when the client does not say.
pub const SNAPSHOT_BATCH_ROWS_DEFAULT: usize = 1000;
/// Most rows per snapshot batch a client may ask for.
pub const SNAPSHOT_BATCH_ROWS_MAX: usize = 10_000;
/// Bytes of messages queued for one connection before it counts as a slow consumer. A
/// connection that stops reading costs at most this (plus one message) in memory.
pub const OUTBOX_BYTES_MAX: usize = 2 * 1024 * 1024;
/// Messages a WebSocket connection writes with one flush when they are queued together (a
/// fan-out): bounds the bytes buffered before the socket sees them.
pub const WS_SEND_BATCH_MESSAGES_MAX: usize = 256;
/// A committed change is offered to its feed's subscriptions on the committing thread (no
/// hand-over to the dispatcher thread) only while each new record has at most this many
/// candidate subscriptions: the writer's answer waits for that work.
pub const INLINE_FANOUT_CANDIDATES_MAX: usize = 64;
/// ... and only for this many new records; the rest goes to the dispatcher thread.
pub const INLINE_FANOUT_RECORDS_MAX: usize = 16;
/// Replay (resume, catch-up after a snapshot) reads the log in pieces of about this many
/// bytes of messages, each queued before the next is read.
pub const REPLAY_CHUNK_BYTES: usize = 256 * 1024;

/// Partitions of a topic created without `PARTITIONS = n` (the most a topic may have is
/// `strand_sql_view::limits::TOPIC_PARTITIONS_MAX`: each is a log partition with its own files).
pub const TOPIC_PARTITIONS_DEFAULT: u32 = 1;
/// Most messages in one batch a table's change source produces into its topic.
pub const TOPIC_SOURCE_BATCH_MESSAGES_MAX: usize = 1024;
/// About the most value bytes in one batch a table's change source produces (the message
/// that reaches it still joins the batch).
pub const TOPIC_SOURCE_BATCH_BYTES_MAX: usize = 4 << 20;

/// Session timeout of a group whose config does not name one.
pub const SESSION_TIMEOUT_MS_DEFAULT: u64 = 10_000;
/// Shortest session timeout: members must be able to heartbeat several times within it.
pub const SESSION_TIMEOUT_MS_MIN: u64 = 100;
/// Longest session timeout: a dead member's partitions wait this long for a new owner.
pub const SESSION_TIMEOUT_MS_MAX: u64 = 300_000;
/// Most members one group holds; every rebalance walks all of them.
pub const MEMBERS_PER_GROUP_MAX: usize = 1024;
/// Most groups one server holds; a join that would create another is refused. Each costs a
/// coordinator (members, owners per partition) and a sweep visit.
pub const GROUPS_MAX: usize = 10_000;
/// Period of the sweep that removes groups without members and expires idle offsets: an
/// empty group is gone at most this long after its last member's session timeout.
pub const GROUP_SWEEP_INTERVAL_MS: u64 = 1_000;
/// Most committed offsets (group and partition pairs) kept in memory. Past it, the offsets of
/// the groups without members that were idle longest are removed before their retention: a
/// user who creates, commits and abandons groups in a loop cannot grow this map for a whole
/// retention (about 100 bytes each: ~26 MB). Groups with members are never removed.
pub const GROUP_OFFSETS_KEPT_MAX: usize = 262_144;
/// Most (group, topic) pairs whose lag one `/metrics` render shows (the first by group name,
/// then topic; the offsets of the rest are counted in `strand_group_lag_offsets_left_out`):
/// bounds the series and the render's work.
pub const GROUP_LAG_SERIES_MAX: usize = 100;
/// Most messages one `/metrics` render reads from the log to count groups' lag, shared
/// equally among the partitions shown; a partition's lag past its share is extrapolated
/// (`metrics/lag.rs`). At ~100 ns a message, a render spends at most ~15 ms on it.
pub const GROUP_LAG_RECORDS_READ_MAX: usize = 131_072;

/// How long a request stream may take to deliver its request frame once opened.
pub const QUIC_REQUEST_READ_TIMEOUT_MS: u64 = 30_000;
/// Bad frames (garbage, oversize, unknown types, requests before auth, read timeouts) after
/// which a connection is closed with `close::connection::PROTOCOL_VIOLATION`.
pub const BAD_FRAMES_PER_CONNECTION_MAX: u32 = 8;
/// Concurrent request streams per QUIC connection (QUIC flow control refuses more).
pub const QUIC_STREAMS_PER_CONNECTION_MAX: u32 = 256;
/// How long a final `error` frame may take to be acknowledged before its connection closes.
pub const QUIC_CLOSE_FLUSH_TIMEOUT_MS: u64 = 2_000;
/// Idle time after which a QUIC connection without traffic is dropped.
pub const QUIC_IDLE_TIMEOUT_MS: u64 = 60_000;
/// Bytes read from a QUIC request stream at a time.
pub const QUIC_READ_CHUNK_BYTES: usize = 64 * 1024;
/// Bytes all QUIC connections may have in flight together: about what the UDP receive buffer
/// (`strand_wire::quic::socket::UDP_BUFFER_BYTES`, granted twice over by Linux) absorbs.
pub const RECEIVE_BUDGET_BYTES: u64 = 4 << 20;
/// The smallest receive window a QUIC connection gets, however many there are (also the
/// window of a connection that has not authenticated yet).
pub const CONNECTION_WINDOW_BYTES_MIN: u64 = 64 << 10;
/// The largest receive window a QUIC connection gets, however few there are.
pub const CONNECTION_WINDOW_BYTES_MAX: u64 = 2 << 20;
/// Largest frame (header included) a connection may send before it authenticated: an `auth`
/// frame holds a user name (128 bytes) and a password (1 KiB) or a token (a few hundred bytes).
pub const UNAUTHENTICATED_FRAME_BYTES_MAX: usize = 16 * 1024;
/// Bytes of frames one authenticated connection may hold at once: four frames of the largest
/// size, so a producer keeps several batches in flight while a few connections cannot take
/// the whole budget.
pub const CONNECTION_FRAME_BYTES_MAX: usize = 4 * (FRAME_BYTES_MAX + HEADER_BYTES);
/// Most rows one `produce_table` may carry.
pub const PRODUCE_TABLE_ROWS_MAX: usize = 100_000;
/// The longest long poll a fetch may ask for.
pub const FETCH_WAIT_MS_MAX: u32 = 60_000;
/// How long one wait for new records lasts before a tail re-checks its stream; bounds how
/// long a tail of a dropped topic lingers.
pub const TAIL_WAKE_INTERVAL_MS: u64 = 5_000;
/// The longest linger a tail may ask for (`wait_ms`: gather records before a push not full).
pub const TAIL_LINGER_MS_MAX: u32 = 1_000;

/// How long a goodbye (error and close frame) to a slow WebSocket consumer may take.
pub const WS_GOODBYE_TIMEOUT_MS: u64 = 1_000;
/// Distinct SELECT lists remembered for sharing; past this, new ones are not remembered.
pub const SHARED_PROJECTIONS_MAX: usize = 1024;

/// SQL texts up to this size are parsed on the connection's thread (a few microseconds);
/// longer ones, e.g. INSERTs of thousands of rows, are parsed on the blocking pool.
pub const INLINE_PREPARE_SQL_BYTES_MAX: usize = 2048;
/// INSERTs with at most this many rows count as brief (see `sql_limits::RunCost`).
pub const BRIEF_INSERT_ROWS_MAX: usize = 16;
/// Longest request path echoed back in a 404 or 405 message.
pub const ECHOED_PATH_CHARS_MAX: usize = 200;
/// Longest refused `Origin` echoed back in a 403 message (`http/cors.rs`).
pub const ECHOED_ORIGIN_CHARS_MAX: usize = 200;
/// How long a browser may reuse a preflight's answer (`Access-Control-Max-Age`), in seconds.
pub const CORS_PREFLIGHT_MAX_AGE_SECONDS: u32 = 600;
/// HTTP shards when the machine does not say how many CPUs it has.
pub const HTTP_SHARDS_FALLBACK: usize = 2;
/// At most this many HTTP shards, however many CPUs: the per-shard blocking pools and buffers
/// stop paying off well before this.
pub const HTTP_SHARDS_MAX: usize = 64;
/// Refused connections lingering at once (each holds a descriptor for up to
/// [`REFUSAL_LINGER_MS`]).
pub const LINGERING_REFUSALS_MAX: usize = 64;
/// How long a refused connection may take to take the answer and close.
pub const REFUSAL_LINGER_MS: u64 = 1_000;
/// Input read (and dropped) from a lingering refused connection at most.
pub const REFUSAL_LINGER_READ_BYTES_MAX: usize = 64 * 1024;

/// At most this many evicted connections may still be closing when a newcomer arrives at the
/// unauthenticated cap; past it the newcomer is refused instead. Closing an idle connection
/// takes a task wake-up, so only a burst faster than the shards can close sockets reaches
/// this; it bounds how far the unauthenticated count (and its descriptors) can pass the cap.
pub const EVICTIONS_IN_FLIGHT_MAX: usize = 256;
/// The eviction queue is pruned of authenticated and closed connections whenever it grows
/// past this many entries or twice the unauthenticated cap, whichever is larger, so it stays
/// proportional to the connections that can still be evicted.
pub const EVICTION_QUEUE_PRUNE_MIN: usize = 64;
/// Used for the hard open-files limit when it is "unlimited" (Linux still caps descriptors at
/// `fs.nr_open`, whose default this is).
pub const OPEN_FILES_UNLIMITED_TARGET: u64 = 1 << 20;
/// Refusals a user may have at once before being slowed down.
pub const REFUSALS_BURST: u32 = 20;
/// Refusals per second a user may keep up without being slowed down.
pub const REFUSALS_PER_SECOND: u32 = 10;
/// The longest a penalized user's request waits for its turn; one whose turn is later is
/// answered `overloaded` after this wait, unserved.
pub const REFUSAL_WAIT_MS_MAX: u64 = 30_000;
/// Users whose refusal state is kept; past it, users no longer penalized are forgotten.
pub const THROTTLE_TRACKED_USERS_MAX: usize = 10_000;

/// How long `KeyedPartition::version_as_of` waits for a version the index already names to
/// be committed: a commit round takes milliseconds (one fsync); much longer means the disk
/// is stuck, and the reader gives up with an error rather than hold its thread.
pub const COMMIT_WAIT_MS_MAX: u64 = 10_000;
/// How often it looks again meanwhile: short against one fsync.
pub const COMMIT_POLL_INTERVAL_MS: u64 = 1;

/// Size at which the Raft log (`cluster::raft_log`) starts a new segment file. Purging deletes
/// whole segments only, so up to this many bytes of purged entries stay on disk.
pub const RAFT_LOG_SEGMENT_BYTES_MAX: u64 = 64 << 20;
/// Largest encoded Raft entry (postcard) the Raft log writes or decodes: a log batch of the
/// largest size plus room for the entry's own fields and the partition's name. A larger length
/// read back from a file is damage, never an allocation.
pub const RAFT_ENTRY_BYTES_MAX: usize = log_limits::BATCH_BYTES_MAX + (64 << 10);
/// About the most entry bytes one bounded read of the Raft log returns (openraft's
/// `limited_get_log_entries`, which replication sends as one AppendEntries); a single larger
/// entry is still returned alone.
pub const RAFT_LOG_READ_BYTES_MAX: usize = 8 << 20;
/// Buffer of the Raft log's scan of a segment when it opens; also the bytes it reads at a time
/// when it searches the rest of a damaged segment for a later entry.
pub const RAFT_LOG_SCAN_BUFFER_BYTES: usize = 256 << 10;

/// Messages per produce request of `strand topics produce`.
pub const CLI_PRODUCE_BATCH_RECORDS_MAX: usize = 1_000;
/// Key+value bytes per produce request of the CLI (about; a single larger line goes alone).
pub const CLI_PRODUCE_BATCH_BYTES_MAX: usize = 1 << 20;
/// How long one consume poll of the CLI waits for a first message.
pub const CLI_CONSUME_POLL_MS: u64 = 500;

/// The cluster state machine's snapshot closes a batch of records before the record that
/// would take it past this many accounted bytes (a record larger than this goes alone), so
/// installing a snapshot appends in steps of about this size.
pub const SNAPSHOT_BATCH_BYTES_TARGET: usize = 1024 * 1024;
/// Bytes a snapshot batch accounts for one record beyond its key and payload: postcard's
/// worst case for its `_seq`, time, previous version, flags and two lengths (40) rounded up.
pub const SNAPSHOT_RECORD_OVERHEAD_BYTES: usize = 48;
/// Largest frame of snapshot data: a batch of the target size or one largest record, its
/// partition's name and the batch's own lengths. A longer frame is refused as malformed.
pub const SNAPSHOT_FRAME_BYTES_MAX: usize = SNAPSHOT_BATCH_BYTES_TARGET
    + log_limits::KEY_BYTES_MAX
    + log_limits::PAYLOAD_BYTES_MAX
    + SNAPSHOT_RECORD_OVERHEAD_BYTES
    + log_limits::PARTITION_NAME_BYTES_MAX
    + 16;
/// Largest file of the state machine's applied state (last applied log id and membership),
/// and largest snapshot header (the same and the snapshot's id): a membership of many nodes
/// fits with room to spare.
pub const APPLIED_STATE_BYTES_MAX: usize = 1024 * 1024;

// How the bounds relate. Each assertion states something the code relies on; the comment
// says what would break if it stopped holding.

/// `default <= max` and `min <= default <= max` for the settings a config may change: the
/// default is taken without the range check a configured value gets.
const fn within(min: u64, default: u64, max: u64) -> bool {
    min <= default && default <= max
}
const _: () = assert!(within(1, FSYNC_INTERVAL_MS_DEFAULT, FSYNC_INTERVAL_MS_MAX));
const _: () = assert!(within(
    SEGMENT_BYTES_MIN,
    SEGMENT_BYTES_DEFAULT,
    SEGMENT_BYTES_MAX
));
const _: () = assert!(within(
    OPEN_PARTITIONS_MAX_MIN,
    OPEN_PARTITIONS_MAX_DEFAULT,
    OPEN_PARTITIONS_MAX_MAX
));
const _: () = assert!(within(
    RETENTION_INTERVAL_MS_MIN,
    RETENTION_INTERVAL_MS_DEFAULT,
    RETENTION_INTERVAL_MS_MAX
));
const _: () = assert!(within(
    TTL_SWEEP_INTERVAL_MS_MIN,
    TTL_SWEEP_INTERVAL_MS_DEFAULT,
    TTL_SWEEP_INTERVAL_MS_MAX
));
const _: () = assert!(within(
    COMPACTION_INTERVAL_MS_MIN,
    COMPACTION_INTERVAL_MS_DEFAULT,
    COMPACTION_INTERVAL_MS_MAX
));
const _: () = assert!(COMPACTION_MAX_AGE_MS_DEFAULT <= DURATION_MS_MAX);
const _: () = assert!(TOMBSTONE_RETENTION_MS_DEFAULT <= DURATION_MS_MAX);
const _: () = assert!(GROUP_OFFSETS_RETENTION_MS_DEFAULT <= DURATION_MS_MAX);
const _: () = assert!(within(1, TOKEN_TTL_SECONDS_DEFAULT, TOKEN_TTL_SECONDS_MAX));
const _: () = assert!(within(
    1,
    AUTH_FAILURES_PER_USER_MAX_DEFAULT as u64,
    AUTH_FAILURES_MAX as u64
));
const _: () = assert!(within(
    1,
    AUTH_FAILURES_PER_ADDRESS_MAX_DEFAULT as u64,
    AUTH_FAILURES_MAX as u64
));
const _: () = assert!(within(
    1,
    AUTH_FAILURE_WINDOW_MS_DEFAULT,
    AUTH_FAILURE_WINDOW_MS_MAX
));
const _: () = assert!(within(1, CONNECTIONS_MAX_DEFAULT, CONNECTIONS_MAX_MAX));
const _: () = assert!(within(
    1,
    UNAUTHENTICATED_CONNECTIONS_MAX_DEFAULT,
    CONNECTIONS_MAX_MAX
));
const _: () = assert!(within(
    1,
    CONNECTIONS_PER_USER_MAX_DEFAULT,
    CONNECTIONS_MAX_MAX
));
const _: () = assert!(within(
    CONNECTION_TIMEOUT_MS_MIN,
    AUTH_TIMEOUT_MS_DEFAULT,
    CONNECTION_TIMEOUT_MS_MAX
));
const _: () = assert!(within(
    CONNECTION_TIMEOUT_MS_MIN,
    HTTP_HEADER_TIMEOUT_MS_DEFAULT,
    CONNECTION_TIMEOUT_MS_MAX
));
const _: () = assert!(within(
    CONNECTION_TIMEOUT_MS_MIN,
    HTTP_BODY_TIMEOUT_MS_DEFAULT,
    CONNECTION_TIMEOUT_MS_MAX
));
const _: () = assert!(within(
    QUIC_FRAME_BUFFER_BYTES_MIN,
    QUIC_FRAME_BUFFER_BYTES_DEFAULT,
    QUIC_FRAME_BUFFER_BYTES_MAX
));
const _: () = assert!(within(
    1,
    GROUPS_PER_USER_MAX_DEFAULT as u64,
    GROUPS_PER_USER_MAX_MAX
));
const _: () = assert!(within(
    SESSION_TIMEOUT_MS_MIN,
    SESSION_TIMEOUT_MS_DEFAULT,
    SESSION_TIMEOUT_MS_MAX
));
const _: () = assert!(within(
    1,
    SNAPSHOT_BATCH_ROWS_DEFAULT as u64,
    SNAPSHOT_BATCH_ROWS_MAX as u64
));
const _: () = assert!(within(
    1,
    TOPIC_PARTITIONS_DEFAULT as u64,
    sql_limits::TOPIC_PARTITIONS_MAX as u64
));
const _: () = assert!(PASSWORD_BYTES_MIN <= sql_limits::PASSWORD_BYTES_MAX);

// Names. A user created now must have a name every user check accepts.
const _: () = assert!(NEW_USER_NAME_BYTES_MAX <= sql_limits::USER_NAME_BYTES_MAX);
// A user's partition directory is `u/<hex of the name>.<incarnation>`: 2 bytes per name
// byte, a dot and up to 20 digits; longer, creating the user fails on the file system.
const _: () = assert!(2 * NEW_USER_NAME_BYTES_MAX + 1 + 20 <= 255);
// Every name maps to a path the file system takes (at most 255 bytes per component, else
// creating the table fails): `<ns>.<table>.<incarnation>` with names of at most
// `NAME_BYTES_MAX` bytes and an incarnation of at most 20 digits (topics'
// `<ns>.<topic>.<incarnation>` alike); a user's component is bounded by
// `NEW_USER_NAME_BYTES_MAX` above.
const _: () = assert!(2 * sql_limits::NAME_BYTES_MAX + 2 + 20 <= 255);
// Grants name tables as `namespace.table`: every table SQL can create must be grantable.
const _: () = assert!(2 * sql_limits::NAME_BYTES_MAX + ".".len() <= TABLE_NAME_BYTES_MAX);
// A request's `$n` numbers are checked against the SQL layer's own highest number: a request
// within the broker's count must not meet a parameter the parser refuses.
const _: () = assert!(SQL_PARAMS_MAX <= sql_limits::PARAMETERS_MAX);

// The cluster's state machine. A snapshot batch of records of no key and no payload is one
// append: within the log's records per batch, or installing the snapshot fails.
const _: () = assert!(
    SNAPSHOT_BATCH_BYTES_TARGET / SNAPSHOT_RECORD_OVERHEAD_BYTES <= log_limits::BATCH_RECORDS_MAX
);

// QUIC frames.
// An `auth` frame of the longest user name and password (a kind byte and two u32 length
// prefixes) must pass the unauthenticated frame limit, or such a user could never log in.
const _: () = assert!(
    HEADER_BYTES + 1 + 4 + sql_limits::USER_NAME_BYTES_MAX + 4 + sql_limits::PASSWORD_BYTES_MAX
        <= UNAUTHENTICATED_FRAME_BYTES_MAX
);
// One frame of the largest size must fit a connection's share and the smallest global
// budget, or frames the protocol allows would be refused `overloaded` forever.
const _: () = assert!(UNAUTHENTICATED_FRAME_BYTES_MAX <= CONNECTION_FRAME_BYTES_MAX);
const _: () = assert!(FRAME_BYTES_MAX + HEADER_BYTES <= CONNECTION_FRAME_BYTES_MAX);
// A fetch's long poll sends nothing while it waits: longer than the idle timeout, a fetch on
// an otherwise quiet connection would lose the connection instead of getting its empty answer.
const _: () = assert!(FETCH_WAIT_MS_MAX as u64 <= QUIC_IDLE_TIMEOUT_MS);
// `window_for` clamps between the two (`clamp` panics if min > max), and the smallest is
// given to quinn as a `u32`.
const _: () = assert!(CONNECTION_WINDOW_BYTES_MIN <= CONNECTION_WINDOW_BYTES_MAX);
const _: () = assert!(CONNECTION_WINDOW_BYTES_MIN <= u32::MAX as u64);
// A consumer group's assignment names every partition of a topic in one message.
const _: () = assert!(sql_limits::TOPIC_PARTITIONS_MAX as usize <= PARTITIONS_PER_MESSAGE_MAX);
// A `produce_table` of the most rows, each the smallest object `{}` with its u32 length
// prefix, fits one frame: the row cap, not the frame size, is what bounds a batch.
const _: () = assert!(PRODUCE_TABLE_ROWS_MAX * (4 + 2) <= FRAME_BYTES_MAX);
// Its rows are inserted as one log batch, which holds at most `BATCH_RECORDS_MAX` records.
const _: () = assert!(PRODUCE_TABLE_ROWS_MAX <= log_limits::BATCH_RECORDS_MAX);
// The CLI closes a produce batch at this many bytes (a longer line goes alone); at or past a
// frame's size, every full batch would be refused as oversize. Each batch becomes one log
// batch per partition.
const _: () = assert!(CLI_PRODUCE_BATCH_BYTES_MAX < FRAME_BYTES_MAX);
const _: () = assert!(CLI_PRODUCE_BATCH_RECORDS_MAX <= log_limits::BATCH_RECORDS_MAX);

// Log batches. Expired rows are deleted in one append.
const _: () = assert!(EXPIRY_BATCH_ROWS_MAX <= log_limits::BATCH_RECORDS_MAX);
// A change source's batch is one append: its messages, the bytes below the bound plus the one
// message that reaches it (a key and a payload of the log's largest), and per record the
// log's frame header and alignment and a topic envelope (at most 22 bytes,
// `topics::envelope`; 32 here). Larger, its appends fail.
const _: () = assert!(TOPIC_SOURCE_BATCH_MESSAGES_MAX <= log_limits::BATCH_RECORDS_MAX);
const _: () = assert!(
    TOPIC_SOURCE_BATCH_BYTES_MAX
        + log_limits::KEY_BYTES_MAX
        + log_limits::PAYLOAD_BYTES_MAX
        + (FRAME_HEADER_BYTES + FRAME_ALIGN_BYTES + 32) * TOPIC_SOURCE_BATCH_MESSAGES_MAX
        <= log_limits::BATCH_BYTES_MAX
);

// Waits and counts the code divides or clamps by.
// The accept pause doubles from `ACCEPT_RETRY_MS` and is capped by `min(ACCEPT_RETRY_MS_MAX)`.
const _: () = assert!(0 < ACCEPT_RETRY_MS && ACCEPT_RETRY_MS <= ACCEPT_RETRY_MS_MAX);
// `clamp(1, HTTP_SHARDS_MAX)` panics if the maximum is below 1.
const _: () = assert!(1 <= HTTP_SHARDS_FALLBACK && HTTP_SHARDS_FALLBACK <= HTTP_SHARDS_MAX);
// The open-files limit is divided by it at start.
const _: () = assert!(CONNECTIONS_SHARE_OF_OPEN_FILES_DIVISOR >= 1);
// The refusal spacing is one second divided by it.
const _: () = assert!(REFUSALS_PER_SECOND >= 1);
// A version's commit is polled for: a poll interval as long as the wait would never poll.
const _: () = assert!(0 < COMMIT_POLL_INTERVAL_MS && COMMIT_POLL_INTERVAL_MS < COMMIT_WAIT_MS_MAX);

// `/metrics` shares its lag read budget among the partitions shown and reads at least one
// message per partition: the pairs shown, each over a topic of the most partitions, must get
// a share of at least one, or the budget would not bound the render.
const _: () = assert!(
    GROUP_LAG_SERIES_MAX * sql_limits::TOPIC_PARTITIONS_MAX as usize <= GROUP_LAG_RECORDS_READ_MAX
);

// A consumer that keeps the wire client's default session timeout must be accepted by the
// group coordinator (`group_join` refuses timeouts outside MIN..=MAX).
const _: () = assert!(
    strand_wire::limits::CONSUMER_SESSION_TIMEOUT_MS_DEFAULT as u64 >= SESSION_TIMEOUT_MS_MIN
        && strand_wire::limits::CONSUMER_SESSION_TIMEOUT_MS_DEFAULT as u64
            <= SESSION_TIMEOUT_MS_MAX
);

// The Raft log. An entry's length is stored as a `u32`.
const _: () = assert!(RAFT_ENTRY_BYTES_MAX <= u32::MAX as usize);
// A replicated batch is at most `BATCH_BYTES_MAX` of log frames. postcard spends at most 40
// bytes on a record's fields besides its key and payload (varints: `_seq` 10, time 10, key
// length 3, payload length 4, flags 3, previous version 10), no more than the log's frame
// header; if that stopped holding, a batch the log accepts could encode into an entry larger
// than `RAFT_ENTRY_BYTES_MAX`, which the Raft log refuses. The length varints stay within 3
// and 4 bytes while keys are below 2^21 bytes and payloads below 2^28.
const _: () = assert!(10 + 10 + 3 + 4 + 3 + 10 <= FRAME_HEADER_BYTES);
const _: () =
    assert!(log_limits::KEY_BYTES_MAX < 1 << 21 && log_limits::PAYLOAD_BYTES_MAX < 1 << 28);
