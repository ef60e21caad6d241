//! Configuration of `strand serve`: the command-line flags, the `STRAND_<NAME>` environment
//! variables and the TOML file, merged with precedence flags > environment > file > embedded
//! defaults into one validated [`ServeConfig`].
//!
//! This module only reads and checks settings; it opens no sockets and no store. Each layer is
//! a [`ConfigLayer`] of optional values, so the merge is a pure function and errors can name
//! where a bad value came from (`--http-addr`, `STRAND_HTTP_ADDR` or the file's `http_addr`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use strand_log::FsyncPolicy;

use crate::limits::{
    CONFIG_FILE_BYTES_MAX, FSYNC_INTERVAL_MS_DEFAULT, FSYNC_INTERVAL_MS_MAX,
    OPEN_PARTITIONS_MAX_DEFAULT, OPEN_PARTITIONS_MAX_MAX, OPEN_PARTITIONS_MAX_MIN,
    RETENTION_INTERVAL_MS_DEFAULT, RETENTION_INTERVAL_MS_MAX, RETENTION_INTERVAL_MS_MIN,
    SEGMENT_BYTES_DEFAULT, SEGMENT_BYTES_MAX, SEGMENT_BYTES_MIN, TOKEN_TTL_SECONDS_DEFAULT,
    TOKEN_TTL_SECONDS_MAX,
};

mod args;
mod cluster;
mod origins;
mod sections;
mod values;

pub use args::ServeArgs;
pub use cluster::ClusterSettings;
pub use origins::{canonical_origin, AllowedOrigins};
pub use values::{AttemptLimits, ConnectionConfig, GroupLimits, MaintenanceConfig, ServeConfig};

const DATA_DIR_DEFAULT: &str = "./data";
const HTTP_ADDR_DEFAULT: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);
const QUIC_ADDR_DEFAULT: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 7100);

/// Why the configuration could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file named by `--config` (or `STRAND_CONFIG`) could not be read.
    #[error("cannot read config file {path}: {source}")]
    ReadFile {
        /// The file, as given.
        path: PathBuf,
        /// What the operating system answered.
        #[source]
        source: std::io::Error,
    },
    /// The file is over `CONFIG_FILE_BYTES_MAX`; it is refused before it is read.
    #[error("config file {path} is larger than {CONFIG_FILE_BYTES_MAX} bytes")]
    FileTooLarge {
        /// The file, as given.
        path: PathBuf,
    },
    /// The file is not TOML, or has a key that is not a setting, or a value of the wrong type.
    #[error("config file {path} is not valid: {message}")]
    ParseFile {
        /// The file, as given.
        path: PathBuf,
        /// The TOML parser's explanation.
        message: String,
    },
    /// A setting's value is malformed or out of its range.
    #[error("invalid value {value:?} for {source_name}: {reason}")]
    InvalidValue {
        /// Where the value came from: `--flag-name`, `STRAND_NAME` or `config file key name`.
        source_name: String,
        /// The value as given.
        value: String,
        /// What is wrong with it ("out of range", "expected a whole number", ...).
        reason: &'static str,
    },
}

/// One source of settings; `None` means "this source does not say".
///
/// Each field is a TOML key of the config file; its flag is the key in kebab case after `--`
/// (named on each field) and its variable `STRAND_` and the key in upper case.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigLayer {
    /// `--data-dir`: the directory of everything the server stores (created if missing).
    pub data_dir: Option<PathBuf>,
    /// `--http-addr`: `IP:PORT` of the HTTP listener (SQL API, login, WebSocket gateway).
    pub http_addr: Option<String>,
    /// `--quic-addr`: `IP:PORT` (UDP) of the QUIC listener for producers and consumers.
    pub quic_addr: Option<String>,
    /// `--fsync`: when a write is acknowledged: `always`, `interval` or `never` (any case).
    pub fsync: Option<String>,
    /// `--fsync-interval-ms`: period of the background sync under `fsync = interval`, in ms.
    pub fsync_interval_ms: Option<u64>,
    /// `--segment-bytes`: size at which a partition's segment is sealed, in bytes.
    pub segment_bytes: Option<u64>,
    /// `--open-partitions-max`: partitions that may hold their segment file open at once.
    pub open_partitions_max: Option<u64>,
    /// `--retention-interval-ms`: period of the retention sweep, in ms.
    pub retention_interval_ms: Option<u64>,
    /// `--ttl-sweep-interval-ms`: period of the deletion of expired STREAM rows, in ms.
    pub ttl_sweep_interval_ms: Option<u64>,
    /// `--compaction-interval-ms`: how often partitions due for compaction are looked for, in ms.
    pub compaction_interval_ms: Option<u64>,
    /// `--compaction-min-bytes`: bytes sealed since the last compaction that make a partition due.
    pub compaction_min_bytes: Option<u64>,
    /// `--compaction-max-age-ms`: age of the oldest uncompacted sealed segment that makes a
    /// partition due, in ms.
    pub compaction_max_age_ms: Option<u64>,
    /// `--tombstone-retention-ms`: how long compaction keeps delete tombstones, in ms.
    pub tombstone_retention_ms: Option<u64>,
    /// `--log-level`: a `tracing` filter for what the server logs on stderr.
    pub log_level: Option<String>,
    /// `--token-ttl-seconds`: lifetime of the tokens issued at login, in seconds.
    pub token_ttl_seconds: Option<u64>,
    /// `--groups-per-user-max`: consumer groups one user may hold at once.
    pub groups_per_user_max: Option<u64>,
    /// `--group-offsets-retention-ms`: how long a group's committed offsets outlive its last
    /// member and last commit, in ms.
    pub group_offsets_retention_ms: Option<u64>,
    /// `--connections-max`: client connections (HTTP and QUIC) open at once.
    pub connections_max: Option<u64>,
    /// `--unauthenticated-connections-max`: of those, connections not yet authenticated.
    pub unauthenticated_connections_max: Option<u64>,
    /// `--connections-per-user-max`: WebSocket and QUIC connections one user may hold.
    pub connections_per_user_max: Option<u64>,
    /// `--auth-timeout-ms`: time a WebSocket or QUIC connection has to authenticate, in ms.
    pub auth_timeout_ms: Option<u64>,
    /// `--http-header-timeout-ms`: time an HTTP connection has to send a request head (also
    /// its keep-alive idle time), in ms.
    pub http_header_timeout_ms: Option<u64>,
    /// `--http-body-timeout-ms`: time a request has to deliver its body once its head arrived,
    /// in ms.
    pub http_body_timeout_ms: Option<u64>,
    /// `--quic-frame-buffer-bytes`: bytes all QUIC request frames in flight may hold together.
    pub quic_frame_buffer_bytes: Option<u64>,
    /// `--auth-failures-per-user-max`: failed password checks one user name may have in the
    /// window.
    pub auth_failures_per_user_max: Option<u64>,
    /// `--auth-failures-per-address-max`: failed password checks one client IP address may
    /// have in the window, across names.
    pub auth_failures_per_address_max: Option<u64>,
    /// `--auth-failure-window-ms`: the window of both failure counts, from the first failure,
    /// in ms.
    pub auth_failure_window_ms: Option<u64>,
    /// `--cors-origins`: web origins whose pages may use the HTTP API and the WebSocket
    /// gateway, comma-separated (`https://app.example.com,http://localhost:5173`), or `*`.
    pub cors_origins: Option<String>,
    /// `--http-tls`: serve HTTP and WebSockets over TLS (https, wss) with the server's
    /// certificate (`<data-dir>/tls/cert.pem`, the QUIC listener's).
    pub http_tls: Option<bool>,
    /// `--node-id`: this node's id in its cluster, 1..=1023.
    pub node_id: Option<u64>,
    /// `--cluster`: every member's QUIC address, `ID=IP:PORT,...` or `IP:PORT,...` (ids 1, 2,
    /// ... in order); unset: a single node.
    pub cluster: Option<String>,
    /// `--cluster-secret-file`: a file holding the secret the members prove to each other.
    pub cluster_secret_file: Option<PathBuf>,
    /// The cluster secret itself (`STRAND_CLUSTER_SECRET` or the file's `cluster_secret`; no
    /// flag, so it never shows in a process listing).
    pub cluster_secret: Option<String>,
    /// `--join`: wait to be added to the running cluster `--cluster` names rather than form a
    /// new one (docs/cluster.md).
    pub join: Option<bool>,
}

impl ConfigLayer {
    /// The `STRAND_<NAME>` variables, read through `lookup` (the process environment in the
    /// binary, a map in tests). Empty values count as unset.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<ConfigLayer, ConfigError> {
        let text = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let number = |name: &str| -> Result<Option<u64>, ConfigError> {
            text(name)
                .map(|value| {
                    value.trim().parse().map_err(|_| ConfigError::InvalidValue {
                        source_name: name.to_string(),
                        value,
                        reason: "expected a whole number",
                    })
                })
                .transpose()
        };
        let switch = |name: &str| -> Result<Option<bool>, ConfigError> {
            text(name)
                .map(|value| match value.trim().to_ascii_lowercase().as_str() {
                    "true" | "1" | "yes" | "on" => Ok(true),
                    "false" | "0" | "no" | "off" => Ok(false),
                    _ => Err(ConfigError::InvalidValue {
                        source_name: name.to_string(),
                        value,
                        reason: "expected true or false",
                    }),
                })
                .transpose()
        };
        Ok(ConfigLayer {
            data_dir: text("STRAND_DATA_DIR").map(PathBuf::from),
            http_addr: text("STRAND_HTTP_ADDR"),
            quic_addr: text("STRAND_QUIC_ADDR"),
            fsync: text("STRAND_FSYNC"),
            fsync_interval_ms: number("STRAND_FSYNC_INTERVAL_MS")?,
            segment_bytes: number("STRAND_SEGMENT_BYTES")?,
            open_partitions_max: number("STRAND_OPEN_PARTITIONS_MAX")?,
            retention_interval_ms: number("STRAND_RETENTION_INTERVAL_MS")?,
            ttl_sweep_interval_ms: number("STRAND_TTL_SWEEP_INTERVAL_MS")?,
            compaction_interval_ms: number("STRAND_COMPACTION_INTERVAL_MS")?,
            compaction_min_bytes: number("STRAND_COMPACTION_MIN_BYTES")?,
            compaction_max_age_ms: number("STRAND_COMPACTION_MAX_AGE_MS")?,
            tombstone_retention_ms: number("STRAND_TOMBSTONE_RETENTION_MS")?,
            log_level: text("STRAND_LOG_LEVEL"),
            token_ttl_seconds: number("STRAND_TOKEN_TTL_SECONDS")?,
            groups_per_user_max: number("STRAND_GROUPS_PER_USER_MAX")?,
            group_offsets_retention_ms: number("STRAND_GROUP_OFFSETS_RETENTION_MS")?,
            connections_max: number("STRAND_CONNECTIONS_MAX")?,
            unauthenticated_connections_max: number("STRAND_UNAUTHENTICATED_CONNECTIONS_MAX")?,
            connections_per_user_max: number("STRAND_CONNECTIONS_PER_USER_MAX")?,
            auth_timeout_ms: number("STRAND_AUTH_TIMEOUT_MS")?,
            http_header_timeout_ms: number("STRAND_HTTP_HEADER_TIMEOUT_MS")?,
            http_body_timeout_ms: number("STRAND_HTTP_BODY_TIMEOUT_MS")?,
            quic_frame_buffer_bytes: number("STRAND_QUIC_FRAME_BUFFER_BYTES")?,
            auth_failures_per_user_max: number("STRAND_AUTH_FAILURES_PER_USER_MAX")?,
            auth_failures_per_address_max: number("STRAND_AUTH_FAILURES_PER_ADDRESS_MAX")?,
            auth_failure_window_ms: number("STRAND_AUTH_FAILURE_WINDOW_MS")?,
            cors_origins: text("STRAND_CORS_ORIGINS"),
            http_tls: switch("STRAND_HTTP_TLS")?,
            node_id: number("STRAND_NODE_ID")?,
            cluster: text("STRAND_CLUSTER"),
            cluster_secret_file: text("STRAND_CLUSTER_SECRET_FILE").map(PathBuf::from),
            cluster_secret: text("STRAND_CLUSTER_SECRET"),
            join: switch("STRAND_JOIN")?,
        })
    }

    /// Parse the TOML text of a config file (`path` only names it in errors).
    pub fn from_toml(path: &Path, text: &str) -> Result<ConfigLayer, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::ParseFile {
            path: path.to_path_buf(),
            message: e.message().to_string(),
        })
    }

    /// Read and parse a config file.
    pub fn from_file(path: &Path) -> Result<ConfigLayer, ConfigError> {
        let read_error = |source| ConfigError::ReadFile {
            path: path.to_path_buf(),
            source,
        };
        let length = std::fs::metadata(path).map_err(read_error)?.len();
        if length > CONFIG_FILE_BYTES_MAX {
            return Err(ConfigError::FileTooLarge {
                path: path.to_path_buf(),
            });
        }
        let text = std::fs::read_to_string(path).map_err(read_error)?;
        ConfigLayer::from_toml(path, &text)
    }
}

/// Everything `strand serve` is configured with: the flags in `args`, the environment read
/// through `lookup`, and the TOML file named by `--config` (or `STRAND_CONFIG`), if any.
pub fn load(
    args: &ServeArgs,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<ServeConfig, ConfigError> {
    let file_path = args.config.clone().or_else(|| {
        lookup("STRAND_CONFIG")
            .filter(|v| !v.trim().is_empty())
            .map(PathBuf::from)
    });
    let env = ConfigLayer::from_env(&lookup)?;
    let file = match file_path {
        Some(path) => ConfigLayer::from_file(&path)?,
        None => ConfigLayer::default(),
    };
    resolve(&args.layer(), &env, &file)
}

/// Where a setting came from, to name it in errors.
#[derive(Debug, Clone, Copy)]
enum Origin {
    Flag,
    Env,
    File,
}

impl Origin {
    fn name(self, key: &str) -> String {
        match self {
            Origin::Flag => format!("--{}", key.replace('_', "-")),
            Origin::Env => format!("STRAND_{}", key.to_ascii_uppercase()),
            Origin::File => format!("config file key {key}"),
        }
    }
}

/// The first layer (in precedence order) that sets a value, with where it came from.
fn pick<T: Clone>(
    layers: &[(Origin, &ConfigLayer)],
    field: impl Fn(&ConfigLayer) -> &Option<T>,
) -> Option<(T, Origin)> {
    layers
        .iter()
        .find_map(|(origin, layer)| field(layer).clone().map(|value| (value, *origin)))
}

/// Merge the layers (flags > env > file > defaults) and validate every value.
pub fn resolve(
    flags: &ConfigLayer,
    env: &ConfigLayer,
    file: &ConfigLayer,
) -> Result<ServeConfig, ConfigError> {
    let layers = [
        (Origin::Flag, flags),
        (Origin::Env, env),
        (Origin::File, file),
    ];
    let data_dir = pick(&layers, |l| &l.data_dir).map_or(DATA_DIR_DEFAULT.into(), |(v, _)| v);
    let http_addr = address(
        pick(&layers, |l| &l.http_addr),
        "http_addr",
        HTTP_ADDR_DEFAULT,
    )?;
    let quic_addr = address(
        pick(&layers, |l| &l.quic_addr),
        "quic_addr",
        QUIC_ADDR_DEFAULT,
    )?;
    let interval_ms = match pick(&layers, |l| &l.fsync_interval_ms) {
        None => FSYNC_INTERVAL_MS_DEFAULT,
        Some((ms, origin)) => bounded(ms, 1, FSYNC_INTERVAL_MS_MAX, origin, "fsync_interval_ms")?,
    };
    let fsync = fsync_policy(pick(&layers, |l| &l.fsync), interval_ms)?;
    let segment_bytes = match pick(&layers, |l| &l.segment_bytes) {
        None => SEGMENT_BYTES_DEFAULT,
        Some((bytes, origin)) => bounded(
            bytes,
            SEGMENT_BYTES_MIN,
            SEGMENT_BYTES_MAX,
            origin,
            "segment_bytes",
        )?,
    };
    let open_partitions_max = match pick(&layers, |l| &l.open_partitions_max) {
        None => OPEN_PARTITIONS_MAX_DEFAULT,
        Some((n, origin)) => bounded(
            n,
            OPEN_PARTITIONS_MAX_MIN,
            OPEN_PARTITIONS_MAX_MAX,
            origin,
            "open_partitions_max",
        )?,
    };
    let retention_interval_ms = match pick(&layers, |l| &l.retention_interval_ms) {
        None => RETENTION_INTERVAL_MS_DEFAULT,
        Some((ms, origin)) => bounded(
            ms,
            RETENTION_INTERVAL_MS_MIN,
            RETENTION_INTERVAL_MS_MAX,
            origin,
            "retention_interval_ms",
        )?,
    };
    let maintenance = sections::maintenance(&layers)?;
    let token_ttl_seconds = match pick(&layers, |l| &l.token_ttl_seconds) {
        None => TOKEN_TTL_SECONDS_DEFAULT,
        Some((s, origin)) => bounded(s, 1, TOKEN_TTL_SECONDS_MAX, origin, "token_ttl_seconds")?,
    };
    let cors_origins = match pick(&layers, |l| &l.cors_origins) {
        None => AllowedOrigins::default(),
        Some((text, origin)) => AllowedOrigins::parse(&text)
            .map_err(|reason| invalid(origin, "cors_origins", &text, reason))?,
    };
    Ok(ServeConfig {
        data_dir,
        http_addr,
        quic_addr,
        fsync,
        segment_bytes,
        open_partitions_max: usize::try_from(open_partitions_max).unwrap_or(usize::MAX),
        retention_interval: Duration::from_millis(retention_interval_ms),
        maintenance,
        log_level: pick(&layers, |l| &l.log_level).map(|(v, _)| v),
        token_ttl: Duration::from_secs(token_ttl_seconds),
        connections: sections::connections(&layers)?,
        auth_attempts: sections::auth_attempts(&layers)?,
        cors_origins,
        http_tls: pick(&layers, |l| &l.http_tls).is_some_and(|(on, _)| on),
        cluster: cluster::cluster(&layers)?,
    })
}

fn address(
    picked: Option<(String, Origin)>,
    key: &str,
    default: SocketAddr,
) -> Result<SocketAddr, ConfigError> {
    let Some((text, origin)) = picked else {
        return Ok(default);
    };
    text.trim()
        .parse()
        .map_err(|_| invalid(origin, key, &text, "expected IP:PORT, e.g. 127.0.0.1:8080"))
}

fn fsync_policy(
    picked: Option<(String, Origin)>,
    interval_ms: u64,
) -> Result<FsyncPolicy, ConfigError> {
    let Some((text, origin)) = picked else {
        return Ok(FsyncPolicy::Always);
    };
    match text.trim().to_ascii_lowercase().as_str() {
        "always" => Ok(FsyncPolicy::Always),
        "interval" => Ok(FsyncPolicy::Interval(Duration::from_millis(interval_ms))),
        "never" => Ok(FsyncPolicy::Never),
        _ => Err(invalid(
            origin,
            "fsync",
            &text,
            "expected always, interval or never",
        )),
    }
}

fn bounded(value: u64, min: u64, max: u64, origin: Origin, key: &str) -> Result<u64, ConfigError> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(invalid(origin, key, &value.to_string(), "out of range"))
    }
}

fn invalid(origin: Origin, key: &str, value: &str, reason: &'static str) -> ConfigError {
    ConfigError::InvalidValue {
        source_name: origin.name(key),
        value: value.to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests;
