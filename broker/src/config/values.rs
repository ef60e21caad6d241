//! The validated settings the server runs with ([`ServeConfig`]) and the groups of them each
//! part is handed: connection caps, maintenance schedules, password-attempt and consumer-group
//! limits. Plain values with their defaults; nothing here reads a source.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use strand_log::FsyncPolicy;

use super::AllowedOrigins;

use crate::limits::{
    AUTH_FAILURES_PER_ADDRESS_MAX_DEFAULT, AUTH_FAILURES_PER_USER_MAX_DEFAULT,
    AUTH_FAILURE_WINDOW_MS_DEFAULT, AUTH_TIMEOUT_MS_DEFAULT, COMPACTION_INTERVAL_MS_DEFAULT,
    COMPACTION_MAX_AGE_MS_DEFAULT, COMPACTION_MIN_BYTES_DEFAULT, CONNECTIONS_MAX_DEFAULT,
    CONNECTIONS_PER_USER_MAX_DEFAULT, GROUPS_PER_USER_MAX_DEFAULT,
    GROUP_OFFSETS_RETENTION_MS_DEFAULT, HTTP_BODY_TIMEOUT_MS_DEFAULT,
    HTTP_HEADER_TIMEOUT_MS_DEFAULT, QUIC_FRAME_BUFFER_BYTES_DEFAULT,
    TOMBSTONE_RETENTION_MS_DEFAULT, TTL_SWEEP_INTERVAL_MS_DEFAULT,
    UNAUTHENTICATED_CONNECTIONS_MAX_DEFAULT,
};

/// The validated settings the server runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    /// Where the log, the JWT signing key and the TLS certificate live; one server per directory.
    pub data_dir: PathBuf,
    /// Where the HTTP listener (SQL API, login, WebSocket gateway) binds; port 0 picks one.
    pub http_addr: SocketAddr,
    /// Where the QUIC listener (producers, consumers, groups) binds; port 0 picks one.
    pub quic_addr: SocketAddr,
    /// When a write is acknowledged: after `fdatasync`, or once in the page cache (`--fsync`).
    pub fsync: FsyncPolicy,
    /// Size at which the log seals a segment (`PartitionConfig::segment_bytes_max`); also the
    /// granularity of retention, which removes whole sealed segments.
    pub segment_bytes: u64,
    /// Partitions that may hold an open segment file (`StoreConfig::open_partitions_max`).
    pub open_partitions_max: usize,
    /// Period of the retention sweep over STREAM tables (`retention.rs`).
    pub retention_interval: Duration,
    /// STREAM-table expiry and USER/SHARED compaction (`engine/expiry.rs`, `engine/compaction.rs`).
    pub maintenance: MaintenanceConfig,
    /// A `tracing` filter; `None` means "use RUST_LOG, else info".
    pub log_level: Option<String>,
    /// Lifetime of the tokens issued by `POST /v1/api/auth/login`.
    pub token_ttl: Duration,
    /// Connection caps and timeouts (`connections.rs`).
    pub connections: ConnectionConfig,
    /// The brute-force limit on password checks (`auth/attempts.rs`).
    pub auth_attempts: AttemptLimits,
    /// Web origins whose pages may call the API and open the gateway (`http/cors.rs`).
    pub cors_origins: AllowedOrigins,
    /// Serve the HTTP listener over TLS with the server's certificate.
    pub http_tls: bool,
    /// `--node-id` and `--cluster`: this node's place in a cluster; `None`: a single node.
    pub cluster: Option<super::ClusterSettings>,
}

/// What bounds client connections: how many, how long each phase may take before a
/// connection authenticates or sends a request, and the bytes QUIC frames may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionConfig {
    /// Client connections (HTTP, WebSockets included, and QUIC) open at once.
    pub connections_max: usize,
    /// Of those, connections not authenticated yet; at the cap the oldest is closed to make room.
    pub unauthenticated_connections_max: usize,
    /// WebSocket and QUIC connections one user may hold (plain HTTP carries no user).
    pub connections_per_user_max: usize,
    /// WebSocket and QUIC: from the connection's opening to a successful authentication.
    pub auth_timeout: Duration,
    /// HTTP: to receive a whole request head (from the opening or the previous answer).
    pub http_header_timeout: Duration,
    /// HTTP: to receive a whole request body once the head arrived.
    pub http_body_timeout: Duration,
    /// QUIC: bytes of request frames all connections together may hold.
    pub quic_frame_buffer_bytes: u64,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        let count = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        ConnectionConfig {
            connections_max: count(CONNECTIONS_MAX_DEFAULT),
            unauthenticated_connections_max: count(UNAUTHENTICATED_CONNECTIONS_MAX_DEFAULT),
            connections_per_user_max: count(CONNECTIONS_PER_USER_MAX_DEFAULT),
            auth_timeout: Duration::from_millis(AUTH_TIMEOUT_MS_DEFAULT),
            http_header_timeout: Duration::from_millis(HTTP_HEADER_TIMEOUT_MS_DEFAULT),
            http_body_timeout: Duration::from_millis(HTTP_BODY_TIMEOUT_MS_DEFAULT),
            quic_frame_buffer_bytes: QUIC_FRAME_BUFFER_BYTES_DEFAULT,
        }
    }
}

/// The schedules of the background work that removes data: expiring STREAM rows (as real
/// deletes, so subscribers see them leave) and compacting USER and SHARED partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaintenanceConfig {
    /// Period of the deletion of expired STREAM rows: how late a row may leave live results.
    pub ttl_sweep_interval: Duration,
    /// How often USER and SHARED partitions due for compaction are looked for.
    pub compaction_interval: Duration,
    /// A partition is due when this many bytes were sealed since its last compaction...
    pub compaction_min_bytes: u64,
    /// ...or when its oldest uncompacted sealed segment is this old.
    pub compaction_max_age: Duration,
    /// Tombstones younger than this survive compaction.
    pub tombstone_retention: Duration,
    /// Consumer groups per user and the retention of their offsets (`quic/groups.rs`).
    pub groups: GroupLimits,
}

impl Default for MaintenanceConfig {
    fn default() -> Self {
        MaintenanceConfig {
            ttl_sweep_interval: Duration::from_millis(TTL_SWEEP_INTERVAL_MS_DEFAULT),
            compaction_interval: Duration::from_millis(COMPACTION_INTERVAL_MS_DEFAULT),
            compaction_min_bytes: COMPACTION_MIN_BYTES_DEFAULT,
            compaction_max_age: Duration::from_millis(COMPACTION_MAX_AGE_MS_DEFAULT),
            tombstone_retention: Duration::from_millis(TOMBSTONE_RETENTION_MS_DEFAULT),
            groups: GroupLimits::default(),
        }
    }
}

/// The limits on password checks: at most `per_user` failures per user name and
/// `per_address` per source address within `window` (`auth/attempts.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttemptLimits {
    /// Failed checks one user name may have within `window`.
    pub per_user: u32,
    /// Failed checks one client IP address may have within `window`, across names.
    pub per_address: u32,
    /// Counted from a name's (or an address's) first failure.
    pub window: Duration,
}

impl Default for AttemptLimits {
    fn default() -> AttemptLimits {
        AttemptLimits {
            per_user: AUTH_FAILURES_PER_USER_MAX_DEFAULT,
            per_address: AUTH_FAILURES_PER_ADDRESS_MAX_DEFAULT,
            window: Duration::from_millis(AUTH_FAILURE_WINDOW_MS_DEFAULT),
        }
    }
}

/// The bounds on consumer groups a server is configured with (`--groups-per-user-max`,
/// `--group-offsets-retention-ms`; enforced by `quic/groups.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupLimits {
    /// Groups (with members) one user may have created and still hold.
    pub groups_per_user_max: usize,
    /// How long a group's committed offsets outlive its last member and its last commit.
    pub offsets_retention: Duration,
}

impl Default for GroupLimits {
    fn default() -> Self {
        GroupLimits {
            groups_per_user_max: GROUPS_PER_USER_MAX_DEFAULT,
            offsets_retention: Duration::from_millis(GROUP_OFFSETS_RETENTION_MS_DEFAULT),
        }
    }
}
