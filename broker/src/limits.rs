//! Named bounds of the broker. Every buffer, body, name, count and wait the server keeps is
//! bounded by a constant here (or by a config field whose default is here), unit last.

/// Largest HTTP request body; a larger one gets 413 with the JSON error shape.
pub const REQUEST_BODY_BYTES_MAX: usize = 1024 * 1024;
/// Largest `Authorization` header accepted; a token or Basic pair is far smaller.
pub const AUTHORIZATION_HEADER_BYTES_MAX: usize = 8 * 1024;
/// Most parameters (`$1`, `$2`, ...) one SQL request may carry.
pub const SQL_PARAMS_MAX: usize = 1024;
/// Requests doing blocking work (argon2 verification, SQL execution) at once; more get 503
/// `overloaded` instead of queueing without bound on the blocking thread pool.
pub const BLOCKING_REQUESTS_IN_FLIGHT_MAX: usize = 256;

/// Longest user name, in bytes (as in `strand-sql-view`).
pub const USER_NAME_BYTES_MAX: usize = 128;
/// Longest name of a user created now, in bytes. A user's partition directory is
/// `u/<hex of the name>.<incarnation>`: 2 bytes per name byte, a dot and up to 20 digits must
/// stay within the 255 bytes file systems allow in a name (2 * 100 + 21 = 221).
pub const NEW_USER_NAME_BYTES_MAX: usize = 100;
const _: () = assert!(2 * NEW_USER_NAME_BYTES_MAX + 1 + 20 <= 255);
/// Longest password, in bytes (argon2 takes any length; this bounds the work per attempt).
pub const PASSWORD_BYTES_MAX: usize = 1024;
/// Shortest password `create_user` and `set_password` accept.
pub const PASSWORD_BYTES_MIN: usize = 1;
/// Longest table name (`namespace.table`), in bytes.
pub const TABLE_NAME_BYTES_MAX: usize = 255;
/// Most users a directory holds; each costs one record on every start's replay.
pub const USERS_MAX: usize = 100_000;
/// Most tables one user may hold grants on.
pub const GRANTS_PER_USER_MAX: usize = 10_000;

/// Length of the generated `admin` password (letters and digits: ~143 bits).
pub const GENERATED_PASSWORD_CHARS: usize = 24;
/// Bytes of the JWT signing secret (HS256 wants at least the hash size, 32).
pub const JWT_SECRET_BYTES: usize = 32;
/// Default lifetime of a token issued by `/v1/api/auth/login`.
pub const TOKEN_TTL_SECONDS_DEFAULT: u64 = 24 * 60 * 60;
/// Longest token lifetime a config may ask for (30 days).
pub const TOKEN_TTL_SECONDS_MAX: u64 = 30 * 24 * 60 * 60;
/// How far in the future a token's `iat` may be (clock skew between the issuing moment and
/// now, e.g. after a small NTP step back). A token issued while the clock was further ahead
/// is refused once the clock is right.
pub const TOKEN_IAT_FUTURE_SKEW_S_MAX: u64 = 300;
/// Longest a verified Basic credential is trusted without another argon2 verification.
pub const BASIC_AUTH_CACHE_TTL_MS: u64 = 60_000;
/// Most verified Basic credentials remembered at once (the cache starts over past this).
pub const BASIC_AUTH_CACHE_ENTRIES_MAX: usize = 10_000;

/// Failed password checks one user name may have within the window before further attempts
/// for it are refused (`too_many_attempts`) without an argon2 verification: slows online
/// guessing of one account to this many guesses per window.
pub const AUTH_FAILURES_PER_USER_MAX_DEFAULT: u32 = 10;
/// Failed password checks one source address may have within the window (across names):
/// higher than per user, since many people may share an address (NAT).
pub const AUTH_FAILURES_PER_ADDRESS_MAX_DEFAULT: u32 = 50;
/// Most failures a config may allow per name or address in one window.
pub const AUTH_FAILURES_MAX: u32 = 1_000_000;
/// The window of both failure counts: it starts at a name's (or address's) first failure.
pub const AUTH_FAILURE_WINDOW_MS_DEFAULT: u64 = 60_000;
/// Longest failure window a config may ask for (a day).
pub const AUTH_FAILURE_WINDOW_MS_MAX: u64 = 86_400_000;
/// Most user names (and, separately, addresses) whose failures are remembered at once:
/// bounds the limiter's memory (about 100 bytes each).
pub const AUTH_FAILURE_KEYS_MAX: usize = 100_000;

/// Default interval of the background fdatasync under `fsync = "interval"`.
pub const FSYNC_INTERVAL_MS_DEFAULT: u64 = 100;
/// Longest fsync interval a config may ask for.
pub const FSYNC_INTERVAL_MS_MAX: u64 = 60_000;
/// Default size at which a log segment is sealed: the log's own default.
pub const SEGMENT_BYTES_DEFAULT: u64 = strand_log::limits::SEGMENT_BYTES_DEFAULT;
/// Smallest segment size a config may ask for (the log refuses smaller ones).
pub const SEGMENT_BYTES_MIN: u64 = strand_log::limits::SEGMENT_BYTES_MIN;
/// Largest segment size a config may ask for (positions in a segment are `u32`).
pub const SEGMENT_BYTES_MAX: u64 = strand_log::limits::SEGMENT_BYTES_MAX;
/// Default number of partitions holding an open segment file (one descriptor each); idle
/// ones close theirs and reopen it to write: the log's own default.
pub const OPEN_PARTITIONS_MAX_DEFAULT: u64 = strand_log::limits::OPEN_PARTITIONS_DEFAULT as u64;
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
pub const TTL_SWEEP_INTERVAL_MS_MIN: u64 = 10;
pub const TTL_SWEEP_INTERVAL_MS_MAX: u64 = 3_600_000;
/// Default period of the compaction check over USER and SHARED partitions.
pub const COMPACTION_INTERVAL_MS_DEFAULT: u64 = 300_000;
pub const COMPACTION_INTERVAL_MS_MIN: u64 = 10;
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
/// Shortest and longest connection timeouts a config may ask for.
pub const CONNECTION_TIMEOUT_MS_MIN: u64 = 100;
pub const CONNECTION_TIMEOUT_MS_MAX: u64 = 3_600_000;
/// Default bytes all QUIC request frames being received or served may hold together; a frame
/// that does not fit is refused (`overloaded`) before its payload is read.
pub const QUIC_FRAME_BUFFER_BYTES_DEFAULT: u64 = 256 << 20;
/// Largest QUIC frame budget a config may ask for.
pub const QUIC_FRAME_BUFFER_BYTES_MAX: u64 = 64 << 30;
/// The open-files limit is shared out so: at most this fraction (1/N) for client connections.
pub const CONNECTIONS_SHARE_OF_OPEN_FILES_DIVISOR: u64 = 2;
/// Consumer groups one user may hold at once by default (`--groups-per-user-max`): the
/// server holds at most `quic::GROUPS_MAX`, so one user's junk groups cannot fill it.
pub const GROUPS_PER_USER_MAX_DEFAULT: usize = 100;
/// Most a config may set `groups_per_user_max` to: the server's own bound.
pub const GROUPS_PER_USER_MAX_MAX: u64 = 10_000;
/// How long a consumer group's committed offsets outlive its last member and last commit by
/// default (`--group-offsets-retention-ms`): a week, like Kafka's `offsets.retention.minutes`.
pub const GROUP_OFFSETS_RETENTION_MS_DEFAULT: u64 = 7 * 86_400_000;
/// After SIGTERM, how long in-flight requests may take before the server stops anyway.
pub const SHUTDOWN_GRACE_MS: u64 = 10_000;
/// After a failed accept (e.g. out of file descriptors), wait this long before the next.
pub const ACCEPT_RETRY_MS: u64 = 10;
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
/// Longest subscription id.
pub const SUBSCRIPTION_ID_BYTES_MAX: usize = 256;
/// Rows per snapshot batch when the client does not say.
pub const SNAPSHOT_BATCH_ROWS_DEFAULT: usize = 1000;
/// Most rows per snapshot batch a client may ask for.
pub const SNAPSHOT_BATCH_ROWS_MAX: usize = 10_000;
/// Bytes of messages queued for one connection before it counts as a slow consumer. A
/// connection that stops reading costs at most this (plus one message) in memory.
pub const OUTBOX_BYTES_MAX: usize = 2 * 1024 * 1024;
/// Replay (resume, catch-up after a snapshot) reads the log in pieces of about this many
/// bytes of messages, each queued before the next is read.
pub const REPLAY_CHUNK_BYTES: usize = 256 * 1024;
