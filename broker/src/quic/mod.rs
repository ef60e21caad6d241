//! The QUIC listener (docs/topics.md, `wire/PROTOCOL.md`): quinn over rustls with
//! ALPN `strand/1` on `--quic-addr`, a self-signed certificate under `<data-dir>/tls/`,
//! connections authenticated by their first request, and one request per bidirectional stream
//! handed to [`QuicHandlers`].
//!
//! - `tls`: the certificate files and the rustls configuration.
//! - `connection`: handshake checks, the auth phase, per-stream tasks, the bad-frame budget.
//! - `receive_budget`: the bytes all connections may have in flight, split into their QUIC
//!   receive windows.
//! - `frame_budget`: the bytes request frames may hold in memory while received and served.
//! - `stream`: reading a request frame; answering and ending a stream of bad input.
//! - `handlers`: [`QuicHandlers`], one `match` from a request to its handler:
//!   `topics` (produce, fetch), `tail`, `groups` (consumer groups), `sql` (SQL, table produce);
//!   `access` decides who may use a topic.
//! - `responder`: [`Responder`], the writer of a request's response frames.
//!
//! Owns the endpoint and its connections. Does not own the frame codec (`strand_wire::quic`),
//! credentials and sessions (`crate::auth`) or topics and groups (`crate::topics`).

mod access;
mod connection;
pub mod frame_budget;
mod frame_forward;
mod groups;
mod handlers;
pub mod receive_budget;
mod responder;
mod sql;
mod stream;
mod tail;
pub mod tls;
mod topics;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use quinn::VarInt;
use strand_wire::quic::close;
use tokio::task::{JoinHandle, JoinSet};

pub use handlers::{QuicHandlers, QuicParts};
pub use tls::{TlsError, TlsIdentity};

use crate::auth::Authenticator;
use crate::cluster::serve::PeerService;
use crate::connections::ConnectionLimits;
use crate::limits::{
    CONNECTION_WINDOW_BYTES_MIN, QUIC_IDLE_TIMEOUT_MS, QUIC_STREAMS_PER_CONNECTION_MAX,
};
use connection::Shared;

/// Why the listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum QuicError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot bind QUIC address {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("QUIC transport configuration: {0}")]
    Transport(String),
}

/// A bound QUIC endpoint, not yet serving (handshakes queue until [`QuicListener::start`]).
pub struct QuicListener {
    endpoint: quinn::Endpoint,
    local_addr: SocketAddr,
    shared: Arc<Shared>,
}

impl QuicListener {
    /// Binds `addr` (port 0 picks one). Must run inside a tokio runtime. Connections count
    /// against `connections` and have its auth timeout and frame budget.
    pub fn bind(
        addr: SocketAddr,
        identity: &TlsIdentity,
        auth: Arc<Authenticator>,
        handlers: Arc<QuicHandlers>,
        connections: Arc<ConnectionLimits>,
        cluster: Option<Arc<PeerService>>,
    ) -> Result<QuicListener, QuicError> {
        let crypto = identity.quic_server_config(cluster.is_some())?;
        let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        let mut transport = quinn::TransportConfig::default();
        let idle = quinn::IdleTimeout::try_from(Duration::from_millis(QUIC_IDLE_TIMEOUT_MS))
            .map_err(|e| QuicError::Transport(e.to_string()))?;
        transport
            .max_concurrent_bidi_streams(VarInt::from_u32(QUIC_STREAMS_PER_CONNECTION_MAX))
            .max_concurrent_uni_streams(VarInt::from_u32(0))
            .max_idle_timeout(Some(idle))
            // Until authenticated; then the connection's share of the receive budget.
            .receive_window(VarInt::from_u32(CONNECTION_WINDOW_BYTES_MIN as u32));
        strand_wire::quic::socket::tune_transport(&mut transport);
        config.transport_config(Arc::new(transport));
        let bind = |source| QuicError::Bind { addr, source };
        let socket = strand_wire::quic::socket::bind_udp(addr).map_err(bind)?;
        let runtime = Arc::new(quinn::TokioRuntime);
        // The client's settings too: without them the server advertises quinn's default
        // 1472-byte `max_udp_payload_size`, and every client's MTU discovery stops there.
        let endpoint = quinn::Endpoint::new(
            strand_wire::quic::socket::endpoint_config(),
            Some(config),
            socket,
            runtime,
        )
        .map_err(bind)?;
        let local_addr = endpoint
            .local_addr()
            .map_err(|source| QuicError::Bind { addr, source })?;
        Ok(QuicListener {
            endpoint,
            local_addr,
            shared: Arc::new(Shared {
                auth,
                handlers,
                receive: receive_budget::ReceiveBudget::new(),
                frames: frame_budget::FrameBudget::new(
                    connections.config().quic_frame_buffer_bytes,
                ),
                connections,
                cluster,
            }),
        })
    }

    /// The bound endpoint (a cluster member also dials its peers from it).
    pub fn endpoint(&self) -> quinn::Endpoint {
        self.endpoint.clone()
    }

    /// The bound address (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Starts accepting connections on the current runtime.
    pub fn start(self) -> RunningQuic {
        let endpoint = self.endpoint.clone();
        let task = tokio::spawn(accept_loop(self.endpoint, self.shared));
        tracing::info!(addr = %self.local_addr, "QUIC listener started");
        RunningQuic { endpoint, task }
    }
}

async fn accept_loop(endpoint: quinn::Endpoint, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            incoming = endpoint.accept() => match incoming {
                Some(incoming) => match shared.connections.try_open() {
                    Ok(slot) => {
                        connections.spawn(connection::serve(incoming, shared.clone(), slot));
                    }
                    Err(refusal) => {
                        // Before the handshake: quinn answers CONNECTION_REFUSED statelessly.
                        tracing::debug!(remote = %incoming.remote_address(), %refusal,
                            "QUIC connection refused");
                        incoming.refuse();
                    }
                },
                // The endpoint was closed: stop.
                None => break,
            },
            Some(joined) = connections.join_next(), if !connections.is_empty() => {
                if let Err(error) = joined {
                    if error.is_panic() {
                        tracing::error!(%error, "a QUIC connection task panicked");
                    }
                }
            }
        }
    }
    // Closing the endpoint closed every connection; their tasks end on their own.
    while connections.join_next().await.is_some() {}
}

/// A serving listener; [`RunningQuic::stop`] closes it.
pub struct RunningQuic {
    endpoint: quinn::Endpoint,
    task: JoinHandle<()>,
}

impl RunningQuic {
    /// Closes every connection (clients see [`close::connection::SHUTDOWN`]), stops accepting,
    /// and waits up to `grace` for the close to reach the clients.
    pub async fn stop(self, grace: Duration) {
        let code = VarInt::from_u32(close::connection::SHUTDOWN);
        self.endpoint.close(code, b"server shutting down");
        if tokio::time::timeout(grace, self.task).await.is_err() {
            tracing::warn!("QUIC connection tasks still running after the grace period");
        }
        let _ = tokio::time::timeout(grace, self.endpoint.wait_idle()).await;
        tracing::info!("QUIC listener stopped");
    }
}
