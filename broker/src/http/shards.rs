//! [`HttpShards`]: the threads that serve HTTP connections. Each shard is one thread with its
//! own single-threaded tokio runtime; the acceptor hands every new connection to one shard,
//! round-robin, and the connection stays there until it closes.
//!
//! Why not one multi-threaded runtime: on it, a request bounced between worker threads (a
//! wake-up of an idle CPU per request, measured at 30-40 µs on the benchmark VM, as much as the
//! whole request costs PostgreSQL). A shard answers a brief request on the thread that read
//! it. Work that may take long still goes to the (per-shard) blocking pool.
//!
//! Each connection is served by hyper's HTTP/1 server directly (not `axum::serve`, which has
//! no timeouts): a request head must arrive within the header timeout, counted from the
//! connection's opening or the end of the previous answer, so an idle keep-alive connection
//! is closed after it too. The connection's [`ConnectionSlot`] rides in every request's
//! extensions (handlers mark it authenticated; a WebSocket keeps it for its life), and so does
//! the client's address (`ConnectInfo<SocketAddr>`). A connection still unauthenticated is
//! closed when its slot is evicted for a newer one (`connections.rs`).
//!
//! Under `--http-tls` each connection's TLS handshake runs on its shard, within the header
//! timeout (a client that opens a socket and never finishes the handshake is closed like one
//! that never sends a request head); then hyper serves the decrypted stream as it would the
//! plain one.
//!
//! It owns the threads, the hand-over and the per-connection HTTP settings; not the routes
//! (`http`) nor the listener (`server`).

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::connections::ConnectionSlot;
use crate::limits::{HTTP_SHARDS_FALLBACK, HTTP_SHARDS_MAX};

/// A connection accepted by the acceptor, on its way to a shard.
struct Handover {
    stream: std::net::TcpStream,
    peer: SocketAddr,
    slot: ConnectionSlot,
}

/// Threads serving HTTP connections, one single-threaded runtime each.
pub struct HttpShards {
    inboxes: Vec<mpsc::UnboundedSender<Handover>>,
    finished: Vec<oneshot::Receiver<()>>,
    stop: watch::Sender<bool>,
    next: usize,
}

impl HttpShards {
    /// One shard per CPU, each serving `router`, with `header_timeout` for each request head
    /// (and each TLS handshake, when `tls` is given).
    pub fn start(
        router: axum::Router,
        local_addr: SocketAddr,
        header_timeout: Duration,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> io::Result<HttpShards> {
        let count = std::thread::available_parallelism()
            .map_or(HTTP_SHARDS_FALLBACK, usize::from)
            .clamp(1, HTTP_SHARDS_MAX);
        let (stop, stopped) = watch::channel(false);
        let mut shards = HttpShards {
            inboxes: Vec::with_capacity(count),
            finished: Vec::with_capacity(count),
            stop,
            next: 0,
        };
        for index in 0..count {
            let (inbox, arrivals) = mpsc::unbounded_channel();
            let (done, finished) = oneshot::channel();
            let shard = Shard {
                arrivals,
                router: router.clone(),
                header_timeout,
                tls: tls.clone().map(TlsAcceptor::from),
                stopped: stopped.clone(),
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .thread_name(format!("strand-http-{index}"))
                .build()?;
            std::thread::Builder::new()
                .name(format!("strand-http-{index}"))
                .spawn(move || {
                    runtime.block_on(shard.run(local_addr));
                    let _ = done.send(());
                })?;
            shards.inboxes.push(inbox);
            shards.finished.push(finished);
        }
        Ok(shards)
    }

    /// Give a newly accepted connection (counted by `slot`) to the next shard.
    pub fn dispatch(
        &mut self,
        stream: tokio::net::TcpStream,
        peer: SocketAddr,
        slot: ConnectionSlot,
    ) {
        // Requests are small and answered whole: sending at once beats Nagle's batching.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%peer, %error, "TCP_NODELAY not set");
        }
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(%peer, %error, "dropping a connection that could not be handed over");
                return;
            }
        };
        let shard = self.next % self.inboxes.len().max(1);
        self.next = self.next.wrapping_add(1);
        if let Some(inbox) = self.inboxes.get(shard) {
            if inbox.send(Handover { stream, peer, slot }).is_err() {
                tracing::warn!(shard, %peer, "HTTP shard is gone; connection dropped");
            }
        }
    }

    /// Stop taking connections; let every shard finish its requests in flight, waiting at
    /// most `grace`. Returns whether all shards finished in time.
    pub async fn finish(self, grace: Duration) -> bool {
        let _ = self.stop.send(true);
        drop(self.inboxes);
        let all = async {
            for finished in self.finished {
                let _ = finished.await;
            }
        };
        tokio::time::timeout(grace, all).await.is_ok()
    }
}

/// One shard's thread: the connections handed to it, served until the server stops.
struct Shard {
    arrivals: mpsc::UnboundedReceiver<Handover>,
    router: axum::Router,
    header_timeout: Duration,
    tls: Option<TlsAcceptor>,
    stopped: watch::Receiver<bool>,
}

impl Shard {
    /// Serve arrivals until the stop; then let every connection finish its request in flight
    /// (hyper's graceful shutdown) and return once all have closed. Upgraded connections
    /// (WebSockets) are on their own by then and do not hold the stop.
    async fn run(mut self, local_addr: SocketAddr) {
        // Every connection task holds a receiver; `closed()` says when the last one ended.
        let (all_closed, close_watch) = watch::channel(());
        let mut stop = self.stopped.clone();
        loop {
            tokio::select! {
                arrival = self.arrivals.recv() => match arrival {
                    Some(handover) => {
                        let Handover { stream, peer, slot } = handover;
                        let stream = match tokio::net::TcpStream::from_std(stream) {
                            Ok(stream) => stream,
                            Err(error) => {
                                tracing::warn!(%peer, %error, "connection not registered");
                                continue;
                            }
                        };
                        let connection = ShardConnection {
                            router: self.router.clone(),
                            slot: Arc::new(slot),
                            header_timeout: self.header_timeout,
                            stopped: self.stopped.clone(),
                            _open: close_watch.clone(),
                        };
                        match &self.tls {
                            None => tokio::spawn(connection.serve(stream, peer)),
                            Some(tls) => tokio::spawn(connection.serve_tls(tls.clone(), stream, peer)),
                        };
                    }
                    None => break,
                },
                _ = stop.wait_for(|stop| *stop) => break,
            }
        }
        drop(close_watch);
        all_closed.closed().await;
        tracing::debug!(%local_addr, "HTTP shard stopped");
    }
}

/// One HTTP connection on a shard.
struct ShardConnection {
    router: axum::Router,
    slot: Arc<ConnectionSlot>,
    header_timeout: Duration,
    stopped: watch::Receiver<bool>,
    /// Held while the connection is served (see [`Shard::run`]).
    _open: watch::Receiver<()>,
}

impl ShardConnection {
    /// The TLS handshake (bounded by the header timeout), then [`ShardConnection::serve`].
    async fn serve_tls(self, tls: TlsAcceptor, stream: tokio::net::TcpStream, peer: SocketAddr) {
        let handshake = tokio::time::timeout(self.header_timeout, tls.accept(stream));
        tokio::select! {
            shaken = handshake => match shaken {
                Ok(Ok(stream)) => self.serve(stream, peer).await,
                Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            },
            // An unauthenticated connection may be evicted during its handshake too.
            () = self.slot.evicted() => tracing::debug!(%peer, "connection evicted in its TLS handshake"),
        }
    }

    async fn serve<S>(mut self, stream: S, peer: SocketAddr)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let router = self.router.clone();
        let slot = self.slot.clone();
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(slot.clone());
            // What `axum::serve(...into_make_service_with_connect_info)` would insert; the
            // brute-force limit on password checks counts by it (`auth/attempts.rs`).
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            let answer = router.clone().oneshot(request.map(axum::body::Body::new));
            async move { Ok::<_, Infallible>(answer.await.unwrap_or_else(|e| match e {})) }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_timeout)
            .keep_alive(true);
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        tokio::pin!(connection);
        // Completes only while the connection is unauthenticated (see `ConnectionLimits`).
        let evicted = self.slot.evicted();
        tokio::pin!(evicted);
        let mut stopping = false;
        loop {
            tokio::select! {
                served = connection.as_mut() => {
                    if let Err(error) = served {
                        // Timeouts, resets and malformed requests end here; none is ours.
                        tracing::debug!(%peer, %error, "HTTP connection ended with an error");
                    }
                    break;
                }
                _ = self.stopped.wait_for(|stop| *stop), if !stopping => {
                    stopping = true;
                    connection.as_mut().graceful_shutdown();
                }
                () = evicted.as_mut() => {
                    // A newer connection took its place; dropping the future closes it.
                    tracing::debug!(%peer, "unauthenticated HTTP connection evicted");
                    break;
                }
            }
        }
    }
}
