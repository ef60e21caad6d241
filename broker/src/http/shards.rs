//! [`HttpShards`]: the threads that serve HTTP connections. Each shard is one thread with its
//! own single-threaded tokio runtime; the acceptor hands every new connection to one shard,
//! round-robin, and the connection stays there until it closes.
//!
//! Why not one multi-threaded runtime: on it, a request bounced between worker threads (a
//! wake-up of an idle CPU per request, measured at 30-40 µs on the benchmark VM, as much as the
//! whole request costs PostgreSQL). A shard answers a brief request on the thread that read
//! it. Work that may take long still goes to the (per-shard) blocking pool.
//!
//! It owns the threads and the hand-over; not the routes (`http`) nor the listener (`server`).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

/// Shards when the machine does not say how many CPUs it has.
const SHARDS_FALLBACK: usize = 2;
/// At most this many shards, however many CPUs: the per-shard blocking pools and buffers
/// stop paying off well before this.
const SHARDS_MAX: usize = 64;

/// A connection accepted by the acceptor, on its way to a shard.
type Handover = (std::net::TcpStream, SocketAddr);

/// Threads serving HTTP connections, one single-threaded runtime each.
pub struct HttpShards {
    inboxes: Vec<mpsc::UnboundedSender<Handover>>,
    finished: Vec<oneshot::Receiver<()>>,
    stop: watch::Sender<bool>,
    next: usize,
}

impl HttpShards {
    /// One shard per CPU, each serving `router`. Connections are addressed as `local_addr`.
    pub fn start(router: axum::Router, local_addr: SocketAddr) -> io::Result<HttpShards> {
        let count = std::thread::available_parallelism()
            .map_or(SHARDS_FALLBACK, usize::from)
            .clamp(1, SHARDS_MAX);
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
            let listener = ShardListener {
                arrivals,
                local_addr,
            };
            let router = router.clone();
            let mut stopped = stopped.clone();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .thread_name(format!("strand-http-{index}"))
                .build()?;
            std::thread::Builder::new()
                .name(format!("strand-http-{index}"))
                .spawn(move || {
                    let graceful = async move {
                        let _ = stopped.wait_for(|stop| *stop).await;
                    };
                    let serve = axum::serve(listener, router).with_graceful_shutdown(graceful);
                    if let Err(error) =
                        runtime.block_on(std::future::IntoFuture::into_future(serve))
                    {
                        tracing::error!(shard = index, %error, "HTTP shard failed");
                    }
                    let _ = done.send(());
                })?;
            shards.inboxes.push(inbox);
            shards.finished.push(finished);
        }
        Ok(shards)
    }

    /// Give a newly accepted connection to the next shard.
    pub fn dispatch(&mut self, stream: tokio::net::TcpStream, peer: SocketAddr) {
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
            if inbox.send((stream, peer)).is_err() {
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

/// A shard's end of the hand-over, in the shape `axum::serve` accepts connections from.
struct ShardListener {
    arrivals: mpsc::UnboundedReceiver<Handover>,
    local_addr: SocketAddr,
}

impl axum::serve::Listener for ShardListener {
    type Io = tokio::net::TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Some((stream, peer)) = self.arrivals.recv().await else {
                // The acceptor stopped; the graceful shutdown ends this shard.
                return std::future::pending().await;
            };
            match tokio::net::TcpStream::from_std(stream) {
                Ok(stream) => return (stream, peer),
                Err(error) => tracing::warn!(%peer, %error, "connection not registered"),
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}
