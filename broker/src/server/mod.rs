//! `strand serve` as a library: raise the open-files limit, open the data directory (lock, log
//! store, user directory, JWT secret, TLS certificate), bind the listeners, start the
//! retention sweeper, serve HTTP and QUIC until told to stop, then finish requests in flight,
//! close QUIC connections, stop the sweeper and flush the store. The binary adds signals,
//! logging and the ready line.
//!
//! The HTTP accept loop counts every connection ([`ConnectionLimits`]) and answers one over a
//! cap with a 503 `too_many_connections` at once (`http::refuse`); a failed accept (out of
//! descriptors) backs off and carries on, it never ends the loop.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use strand_log::{LogError, Store, StoreConfig};
use tokio::net::TcpListener;

use crate::auth::{Authenticator, JwtSecret, SecretError};
use crate::cluster::node::{ClusterError, ClusterNode};
use crate::cluster::state_machine::Listener;
use crate::cluster::writer::BlockingWriter;
use crate::config::{ConnectionConfig, ServeConfig};
use crate::connections::ConnectionLimits;
use crate::engine::EngineError;
use crate::forwarding::SqlRunnerOnLeader;
use crate::http::{refuse, router, AppState, HttpShards};
use crate::limits::{
    ACCEPT_RETRY_MS, ACCEPT_RETRY_MS_MAX, CONNECTIONS_SHARE_OF_OPEN_FILES_DIVISOR,
    SHUTDOWN_GRACE_MS,
};
use crate::metrics::Metrics;
use crate::quic::{QuicError, QuicListener, TlsError, TlsIdentity};
use crate::retention::{RetentionSweeper, RetentionTarget};
use crate::sql::SqlEngine;
use crate::storage::{CountingStorage, SyncCounters};
use crate::sys::{DataDirLock, LockError};
use crate::users::{AdminBootstrap, PasswordHashing, UserDirectory, UserError};
use crate::ws::WsGateway;

mod applied;
mod broker;

pub use broker::Broker;

/// Directory of the log store inside the data directory.
pub const LOG_DIR: &str = "log";

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The data directory could not be created or resolved to an absolute path.
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        /// The directory, as configured.
        path: PathBuf,
        /// What the operating system answered.
        #[source]
        source: std::io::Error,
    },
    /// Another server holds the data directory, or its `LOCK` file could not be taken.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The log store could not be opened or flushed.
    #[error("log store: {0}")]
    Store(#[from] LogError),
    /// The user directory could not be opened or its first administrator created.
    #[error("user directory: {0}")]
    Users(#[from] UserError),
    /// The catalog, the group offsets or the engine could not be opened.
    #[error("SQL engine: {0}")]
    Engine(#[from] EngineError),
    /// The JWT signing key could not be read or created.
    #[error("JWT secret: {0}")]
    Secret(#[from] SecretError),
    /// The HTTP listener could not be bound or its connection threads started.
    #[error("cannot bind {what} address {addr}: {source}")]
    Bind {
        /// What failed: `HTTP` (the listener), or `HTTP shards` (their threads did not start).
        what: &'static str,
        /// The address, as configured.
        addr: SocketAddr,
        /// What the operating system answered.
        #[source]
        source: std::io::Error,
    },
    /// The QUIC listener could not start (TLS certificate, bind, transport settings).
    #[error("QUIC listener: {0}")]
    Quic(#[from] QuicError),
    /// `--http-tls`: the certificate could not be configured for the HTTP listener.
    #[error("HTTP TLS: {0}")]
    HttpTls(#[source] TlsError),
    /// The retention sweeper's thread could not be spawned.
    #[error("cannot start the retention thread: {0}")]
    Retention(#[source] std::io::Error),
    /// `--cluster`: this node could not take its place in the cluster.
    #[error("cluster: {0}")]
    Cluster(#[from] ClusterError),
    /// The HTTP server failed while serving.
    #[error("HTTP server failed: {0}")]
    Http(#[source] std::io::Error),
}

/// Where a started server listens; what the ready line reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadyInfo {
    /// The bound HTTP address (the port chosen when port 0 was asked for).
    pub http: SocketAddr,
    /// The bound QUIC (UDP) address, likewise.
    pub quic: SocketAddr,
    /// The data directory as an absolute path.
    pub data_dir: PathBuf,
}

impl ReadyInfo {
    /// `{"event":"ready","http":"127.0.0.1:PORT","quic":"127.0.0.1:PORT","data_dir":"..."}`,
    /// keys in that order.
    pub fn json_line(&self) -> String {
        let text = |value: String| serde_json::Value::String(value).to_string();
        format!(
            r#"{{"event":"ready","http":{},"quic":{},"data_dir":{}}}"#,
            text(self.http.to_string()),
            text(self.quic.to_string()),
            text(self.data_dir.display().to_string()),
        )
    }
}

/// A server whose data directory is open and whose sockets are bound.
pub struct Server {
    ready: ReadyInfo,
    http_listener: TcpListener,
    quic: QuicListener,
    router: axum::Router,
    /// `--http-tls`: the HTTP listener's TLS configuration.
    http_tls: Option<Arc<rustls::ServerConfig>>,
    connections: Arc<ConnectionLimits>,
    store: Arc<Store>,
    retention: RetentionSweeper,
    /// `--cluster`: this node's Raft groups.
    cluster: Option<Arc<ClusterNode>>,
    _lock: DataDirLock,
}

impl Server {
    /// Open everything and bind. Returns what happened to `admin` on this start; with
    /// `admin_password` `None` a first start generates one, which the caller shows once.
    pub async fn start(
        config: &ServeConfig,
        admin_password: Option<&str>,
    ) -> Result<(Server, AdminBootstrap), ServeError> {
        Server::start_serving_sql_with(config, admin_password, |broker| broker.engine.clone()).await
    }

    /// [`Server::start`] with HTTP's SQL run by what `http_sql` picks from the broker (the
    /// engine; a test may put a slow one in its place).
    async fn start_serving_sql_with(
        config: &ServeConfig,
        admin_password: Option<&str>,
        http_sql: impl FnOnce(&Broker) -> Arc<dyn SqlEngine>,
    ) -> Result<(Server, AdminBootstrap), ServeError> {
        // Startup I/O (directory, replay, one argon2 hash) blocks this task briefly; nothing
        // else runs on the runtime yet.
        let connections = ConnectionLimits::new(connection_caps(config.connections));
        let data_dir = prepare_data_dir(&config.data_dir)?;
        let lock = DataDirLock::acquire(&data_dir)?;
        let syncs = Arc::new(SyncCounters::default());
        let store = Arc::new(open_store(&data_dir, config, syncs.clone())?);
        let users = Arc::new(UserDirectory::open(&store, PasswordHashing::default())?);
        let admin = users.bootstrap_admin(admin_password, config.cluster.is_some())?;
        // A cluster's members sign with one key, so a token works on every member.
        let secret = match &config.cluster {
            Some(cluster) => JwtSecret::of_cluster(&cluster.secret),
            None => JwtSecret::load_or_create(&data_dir)?,
        };
        let tls = TlsIdentity::load_or_create(&data_dir).map_err(QuicError::from)?;
        let metrics = Arc::new(Metrics::new(syncs));
        let auth = Authenticator::new(users.clone(), &secret, config.token_ttl)
            .with_attempt_limits(config.auth_attempts);
        let auth = Arc::new(auth);
        let broker = Broker::open(
            store.clone(),
            users,
            metrics,
            config.maintenance,
            config.cluster.is_some(),
        )?;
        let catalog = broker.catalog.clone();
        let retention = RetentionSweeper::start(
            store.clone(),
            move || RetentionTarget::of_catalog(&catalog),
            config.retention_interval,
        )
        .map_err(ServeError::Retention)?;
        let http_listener = bind(config).await?;
        let cluster = match &config.cluster {
            Some(settings) => {
                let listener = Listener::new(Arc::new(applied::AppliedRouter {
                    catalog: broker.catalog.clone(),
                    topics: broker.topics.clone(),
                    offsets: broker.offsets.clone(),
                    engine: broker.engine.clone(),
                    users: broker.users.clone(),
                }));
                let map = applied::group_map();
                let node =
                    ClusterNode::start(settings, &data_dir, store.clone(), listener, map).await?;
                let writer = BlockingWriter::new(node.writers(), tokio::runtime::Handle::current());
                broker.catalog.replicate_through(writer.clone());
                broker.users.replicate_through(writer.clone());
                broker.topics.replicate_through(writer.clone());
                broker.offsets.replicate_through(writer.clone());
                broker.tables.replicate_through(writer);
                Some(Arc::new(node))
            }
            None => None,
        };
        // A member that does not lead sends SQL that fails with `not_leader` to the leader,
        // and runs what other members send it (cluster/forward.rs).
        let forwarder = cluster.as_ref().and_then(|node| node.sql_forwarder());
        if let Some(node) = &cluster {
            let engine: Arc<dyn SqlEngine> = broker.engine.clone();
            let runner = SqlRunnerOnLeader::new(engine, broker.users.clone());
            node.run_forwarded_sql_with(Arc::new(runner));
        }
        let quic_handlers = broker
            .quic_handlers(config.maintenance.groups)
            .with_sql_forwarder(forwarder.clone());
        if let Some(node) = &cluster {
            let runner = quic_handlers.frame_runner(broker.users.clone());
            node.run_forwarded_frames_with(Arc::new(runner));
        }
        let quic = QuicListener::bind(
            config.quic_addr,
            &tls,
            auth.clone(),
            Arc::new(quic_handlers),
            connections.clone(),
            cluster.as_ref().map(|node| node.peer_service()),
        )?;
        if let Some(node) = &cluster {
            node.dial_from(quic.endpoint());
        }
        let bound = |what, addr| move |source| ServeError::Bind { what, addr, source };
        let ready = ReadyInfo {
            http: (http_listener.local_addr()).map_err(bound("HTTP", config.http_addr))?,
            quic: quic.local_addr(),
            data_dir,
        };
        let http = AppState::new(auth, http_sql(&broker), broker.metrics.clone())
            .with_connections(&connections)
            .with_origins(config.cors_origins.clone())
            .with_forwarder(forwarder);
        let gateway = WsGateway::new(http.clone(), broker.engine.clone());
        let mut routes = crate::ws::routes(gateway);
        if let Some(node) = &cluster {
            routes = routes.merge(crate::cluster::status::routes(node.clone()));
            routes = routes.merge(crate::http::cluster_members::routes(node.clone()));
        }
        let server = Server {
            ready,
            http_listener,
            quic,
            router: router(http, routes),
            http_tls: match config.http_tls {
                true => Some(tls.http_server_config().map_err(ServeError::HttpTls)?),
                false => None,
            },
            connections,
            store,
            retention,
            cluster,
            _lock: lock,
        };
        Ok((server, admin))
    }

    /// Where the server listens, for the ready line (known once the sockets are bound).
    pub fn ready(&self) -> &ReadyInfo {
        &self.ready
    }

    /// Serve until `shutdown` completes; then accept nothing new, give requests in flight up
    /// to `shutdown_grace_ms` to finish, and flush the store.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), ServeError> {
        let http = self.ready.http;
        let header_timeout = self.connections.config().http_header_timeout;
        let mut shards =
            HttpShards::start(self.router, http, header_timeout, self.http_tls.clone()).map_err(
                |source| ServeError::Bind {
                    what: "HTTP shards",
                    addr: http,
                    source,
                },
            )?;
        let quic = self.quic.start();
        if let Some(node) = &self.cluster {
            let node = node.clone();
            // Peers may not listen yet: openraft retries until they do.
            tokio::spawn(async move { node.form().await });
        }
        let refusals = refuse::Refusals::new();
        let mut backoff = AcceptBackoff::default();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = self.http_listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        backoff.succeeded();
                        match self.connections.try_open() {
                            Ok(slot) => shards.dispatch(stream, peer, slot),
                            // A TLS client could not read a plain 503: it is just closed.
                            Err(_) if self.http_tls.is_some() => drop(stream),
                            Err(refusal) => refusals.refuse(stream, peer, &refusal),
                        }
                    }
                    Err(error) => {
                        // Out of descriptors or a connection reset before accept: wait a
                        // moment rather than spin, then go on.
                        let pause = backoff.failed(&error);
                        tokio::time::sleep(pause).await;
                    }
                },
                () = &mut shutdown => break,
            }
        }
        tracing::info!("stopping: no new connections, finishing requests in flight");
        drop(self.http_listener);
        let grace = Duration::from_millis(SHUTDOWN_GRACE_MS);
        let (http_done, ()) = tokio::join!(shards.finish(grace), quic.stop(grace));
        if !http_done {
            tracing::warn!("requests still in flight after the grace period");
        }
        if let Some(node) = &self.cluster {
            node.shutdown().await;
        }
        // Before the final flush, so no segment is being removed while the store syncs.
        self.retention.stop();
        self.store.sync()?;
        tracing::info!("stopped; store flushed");
        Ok(())
    }
}

/// The accept loop's pause after failed accepts: [`ACCEPT_RETRY_MS`], doubling while they keep
/// failing (EMFILE does not clear by itself: the pending connection stays queued) up to
/// [`ACCEPT_RETRY_MS_MAX`]; one warning per run of failures, not one per attempt.
#[derive(Default)]
struct AcceptBackoff {
    failures: u32,
}

impl AcceptBackoff {
    fn succeeded(&mut self) {
        if self.failures > 0 {
            tracing::info!(failures = self.failures, "accepting HTTP connections again");
        }
        self.failures = 0;
    }

    fn failed(&mut self, error: &std::io::Error) -> Duration {
        if self.failures == 0 {
            tracing::warn!(%error, "accepting an HTTP connection failed; backing off");
        } else {
            tracing::debug!(%error, failures = self.failures, "accept failed again");
        }
        let pause = ACCEPT_RETRY_MS
            .saturating_mul(1 << self.failures.min(16))
            .min(ACCEPT_RETRY_MS_MAX);
        self.failures = self.failures.saturating_add(1);
        Duration::from_millis(pause)
    }
}

/// Raises the soft open-files limit to the hard one, and holds the connection cap to a share
/// of it (the rest is for partitions, segments and the server's own files).
fn connection_caps(mut config: ConnectionConfig) -> ConnectionConfig {
    let open_files = match crate::sys::raise_open_files_limit() {
        Ok(limit) => {
            tracing::info!(
                before = limit.before,
                now = limit.now,
                hard = limit.hard,
                "open-files limit (RLIMIT_NOFILE)"
            );
            limit.now
        }
        Err(error) => {
            tracing::warn!(%error, "cannot read or raise the open-files limit");
            return config;
        }
    };
    let share = usize::try_from(open_files / CONNECTIONS_SHARE_OF_OPEN_FILES_DIVISOR)
        .unwrap_or(usize::MAX)
        .max(1);
    if config.connections_max > share {
        tracing::warn!(
            configured = config.connections_max,
            open_files,
            allowed = share,
            "connections_max lowered to half the open-files limit"
        );
        config.connections_max = share;
    }
    config.unauthenticated_connections_max = config
        .unauthenticated_connections_max
        .min(config.connections_max);
    config
}

fn prepare_data_dir(path: &Path) -> Result<PathBuf, ServeError> {
    let error = |source| ServeError::DataDir {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(path).map_err(error)?;
    path.canonicalize().map_err(error)
}

fn open_store(
    data_dir: &Path,
    config: &ServeConfig,
    syncs: Arc<SyncCounters>,
) -> Result<Store, LogError> {
    let mut store_config = StoreConfig::default();
    store_config.partition.fsync = config.fsync;
    store_config.partition.segment_bytes_max = config.segment_bytes;
    store_config.open_partitions_max = config.open_partitions_max;
    store_config.partition.storage = Arc::new(CountingStorage::new(syncs));
    if let Some(cluster) = &config.cluster {
        // The node bits of every `_seq` this node issues: unique across the cluster.
        let id = u16::try_from(cluster.node_id).unwrap_or(u16::MAX);
        store_config.partition.node = strand_log::NodeId::new(id)?;
    }
    Store::open(data_dir.join(LOG_DIR), store_config)
}

async fn bind(config: &ServeConfig) -> Result<TcpListener, ServeError> {
    TcpListener::bind(config.http_addr)
        .await
        .map_err(|source| ServeError::Bind {
            what: "HTTP",
            addr: config.http_addr,
            source,
        })
}

#[cfg(test)]
mod tests;
