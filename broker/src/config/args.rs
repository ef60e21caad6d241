//! The flags of `strand serve` (clap), each also settable as `STRAND_<NAME>` or in the file.

use std::path::PathBuf;

use super::ConfigLayer;

/// The flags of `strand serve`. Each one can also be set as `STRAND_<NAME>` or in the file.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// Directory of the log, users and secrets [default: ./data]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// HTTP listen address; port 0 picks a free port [default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    pub http_addr: Option<String>,
    /// QUIC listen address (topics, producers, consumers, the Rust client) [default: 127.0.0.1:7100]
    #[arg(long, value_name = "ADDR")]
    pub quic_addr: Option<String>,
    /// TOML config file with any of the settings of these flags (snake_case keys)
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// When a write counts as done: always | interval | never [default: always]
    #[arg(long, value_name = "POLICY")]
    pub fsync: Option<String>,
    /// Background fdatasync period under `--fsync interval` [default: 100]
    #[arg(long, value_name = "MS")]
    pub fsync_interval_ms: Option<u64>,
    /// Log segment size; retention removes whole sealed segments [default: 67108864]
    #[arg(long, value_name = "BYTES")]
    pub segment_bytes: Option<u64>,
    /// Partitions that may hold an open segment file (one descriptor each); the least
    /// recently written close theirs beyond it [default: 256]
    #[arg(long, value_name = "N")]
    pub open_partitions_max: Option<u64>,
    /// How often expired STREAM-table segments are removed [default: 60000]
    #[arg(long, value_name = "MS")]
    pub retention_interval_ms: Option<u64>,
    /// How often rows of STREAM tables past their TTL are deleted (subscribers see them
    /// leave) [default: 1000]
    #[arg(long, value_name = "MS")]
    pub ttl_sweep_interval_ms: Option<u64>,
    /// How often USER and SHARED partitions are checked for compaction [default: 300000]
    #[arg(long, value_name = "MS")]
    pub compaction_interval_ms: Option<u64>,
    /// Compact a partition once this many bytes were sealed since its last compaction
    /// [default: 16777216]
    #[arg(long, value_name = "BYTES")]
    pub compaction_min_bytes: Option<u64>,
    /// Compact a partition whose oldest uncompacted sealed segment is this old, whatever its
    /// size [default: 86400000]
    #[arg(long, value_name = "MS")]
    pub compaction_max_age_ms: Option<u64>,
    /// How long compaction keeps a delete's tombstone, so resuming clients still learn of the
    /// delete [default: 604800000 = 7 days]
    #[arg(long, value_name = "MS")]
    pub tombstone_retention_ms: Option<u64>,
    /// Log filter, e.g. `info` or `strand_broker=debug` [default: RUST_LOG, else info]
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Lifetime of tokens issued by /v1/api/auth/login [default: 86400]
    #[arg(long, value_name = "SECONDS")]
    pub token_ttl_seconds: Option<u64>,
    /// Consumer groups one user may hold at once; groups without members are removed after
    /// their session timeout [default: 100]
    #[arg(long, value_name = "N")]
    pub groups_per_user_max: Option<u64>,
    /// How long a consumer group's committed offsets are kept after its last member left
    /// and its last commit [default: 604800000 = 7 days]
    #[arg(long, value_name = "MS")]
    pub group_offsets_retention_ms: Option<u64>,
    /// Client connections open at once (HTTP with WebSocket, plus QUIC); more are refused
    /// [default: 10000, at most half the open-files limit]
    #[arg(long, value_name = "N")]
    pub connections_max: Option<u64>,
    /// Connections open at once that have not authenticated yet [default: 1000]
    #[arg(long, value_name = "N")]
    pub unauthenticated_connections_max: Option<u64>,
    /// WebSocket plus QUIC connections one user may hold [default: 1000]
    #[arg(long, value_name = "N")]
    pub connections_per_user_max: Option<u64>,
    /// Time a WebSocket or QUIC connection has to authenticate [default: 10000]
    #[arg(long, value_name = "MS")]
    pub auth_timeout_ms: Option<u64>,
    /// Time an HTTP connection has to send a request head, also when idle between requests
    /// [default: 30000]
    #[arg(long, value_name = "MS")]
    pub http_header_timeout_ms: Option<u64>,
    /// Time a request has to deliver its body [default: 30000]
    #[arg(long, value_name = "MS")]
    pub http_body_timeout_ms: Option<u64>,
    /// Bytes all QUIC request frames being received or served may hold together
    /// [default: 268435456]
    #[arg(long, value_name = "BYTES")]
    pub quic_frame_buffer_bytes: Option<u64>,
    /// Failed password checks one user name may have per window before further attempts are
    /// refused with 429 `too_many_attempts` [default: 10]
    #[arg(long, value_name = "N")]
    pub auth_failures_per_user_max: Option<u64>,
    /// Failed password checks one client address may have per window, across names
    /// [default: 50]
    #[arg(long, value_name = "N")]
    pub auth_failures_per_address_max: Option<u64>,
    /// The window of the failed-password counts, from a name's or address's first failure
    /// [default: 60000]
    #[arg(long, value_name = "MS")]
    pub auth_failure_window_ms: Option<u64>,
    /// Web origins whose pages may call the HTTP API and open WebSockets, comma-separated
    /// (e.g. `https://app.example.com,http://localhost:5173`), or `*` for any; the server's
    /// own origin is always allowed [default: none]
    #[arg(long, value_name = "ORIGINS")]
    pub cors_origins: Option<String>,
    /// Serve HTTP and WebSockets over TLS (https, wss) with the server's certificate
    /// (`<data-dir>/tls/cert.pem`, the one QUIC uses) [default: off]
    #[arg(long)]
    pub http_tls: bool,
    /// This node's id in its cluster, 1..=1023 (with --cluster)
    #[arg(long, value_name = "N")]
    pub node_id: Option<u64>,
    /// The cluster's members, each one's QUIC address: `ID=IP:PORT,...` or `IP:PORT,...`
    /// (ids 1, 2, ... in order); the secret comes from STRAND_CLUSTER_SECRET or
    /// --cluster-secret-file [default: none, a single node]
    #[arg(long, value_name = "ADDRS")]
    pub cluster: Option<String>,
    /// A file holding the secret cluster members prove to each other (at least 16 bytes)
    #[arg(long, value_name = "FILE")]
    pub cluster_secret_file: Option<PathBuf>,
    /// Join the running cluster that --cluster names (its members plus this node) instead of
    /// forming a new one; an administrator then adds this node (`strand cluster add`)
    #[arg(long)]
    pub join: bool,
}

impl ServeArgs {
    /// The flags as a layer (everything but `--config`, which names the file layer).
    pub fn layer(&self) -> ConfigLayer {
        ConfigLayer {
            data_dir: self.data_dir.clone(),
            http_addr: self.http_addr.clone(),
            quic_addr: self.quic_addr.clone(),
            fsync: self.fsync.clone(),
            fsync_interval_ms: self.fsync_interval_ms,
            segment_bytes: self.segment_bytes,
            open_partitions_max: self.open_partitions_max,
            retention_interval_ms: self.retention_interval_ms,
            ttl_sweep_interval_ms: self.ttl_sweep_interval_ms,
            compaction_interval_ms: self.compaction_interval_ms,
            compaction_min_bytes: self.compaction_min_bytes,
            compaction_max_age_ms: self.compaction_max_age_ms,
            tombstone_retention_ms: self.tombstone_retention_ms,
            log_level: self.log_level.clone(),
            token_ttl_seconds: self.token_ttl_seconds,
            groups_per_user_max: self.groups_per_user_max,
            group_offsets_retention_ms: self.group_offsets_retention_ms,
            connections_max: self.connections_max,
            unauthenticated_connections_max: self.unauthenticated_connections_max,
            connections_per_user_max: self.connections_per_user_max,
            auth_timeout_ms: self.auth_timeout_ms,
            http_header_timeout_ms: self.http_header_timeout_ms,
            http_body_timeout_ms: self.http_body_timeout_ms,
            quic_frame_buffer_bytes: self.quic_frame_buffer_bytes,
            auth_failures_per_user_max: self.auth_failures_per_user_max,
            auth_failures_per_address_max: self.auth_failures_per_address_max,
            auth_failure_window_ms: self.auth_failure_window_ms,
            cors_origins: self.cors_origins.clone(),
            http_tls: self.http_tls.then_some(true),
            node_id: self.node_id,
            cluster: self.cluster.clone(),
            cluster_secret_file: self.cluster_secret_file.clone(),
            cluster_secret: None,
            join: self.join.then_some(true),
        }
    }
}
