//! Server metrics and their Prometheus text exposition (`GET /metrics`): HTTP requests by
//! route and status, errors by code, a request latency histogram per route, rows written (the
//! SQL engine adds to it), the log's fsyncs and their durations (counted by
//! [`crate::storage::CountingStorage`]), QUIC connections and request streams, and topics and
//! consumer groups (`topics.rs`: traffic per topic, lag per group, `lag.rs`).
//!
//! Plain counters and a renderer, no I/O of its own (a group's lag is read from the log's
//! memory maps, within a bound). Label values come from fixed sets (route patterns, status
//! codes, error codes) or bounded ones (the catalog's topics, the first groups by name), so
//! the series are bounded.

use parking_lot::{Mutex, RwLock};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::error::ErrorCode;
use crate::storage::{SyncCounters, SYNC_BUCKETS_S};

mod histogram;
mod lag;
mod text;
mod topics;

use topics::TopicTraffic;
pub use topics::{GroupOffsetsSample, GroupTopicOffsets, TopicCounters, TopicSample, TopicSeries};

use histogram::Histogram;
use text::{header, HistogramLines};

/// The WebSocket gateway and realtime fan-out.
#[derive(Debug, Default)]
struct RealtimeStats {
    connections: AtomicU64,
    subscriptions: AtomicU64,
    changes_delivered: AtomicU64,
    slow_consumer_disconnects: AtomicU64,
    /// Log records read to build subscription snapshots.
    snapshot_rows_scanned: AtomicU64,
    /// From the commit's notification to the change queued for the client's socket.
    write_to_send: Mutex<Histogram>,
}

#[derive(Debug, Default)]
struct HttpStats {
    requests: BTreeMap<(&'static str, u16), u64>,
    errors: BTreeMap<&'static str, u64>,
    latency: BTreeMap<&'static str, Histogram>,
}

/// How a request's Basic credentials were checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BasicAuth {
    /// An argon2 verification (the first time, or after a user change or expiry).
    Verified,
    /// Found in the cache of recently verified credentials.
    Cached,
}

/// The QUIC listener.
#[derive(Debug, Default)]
struct QuicStats {
    /// Open connections, from accepted to closed (handshake and auth included).
    connections: AtomicU64,
    /// Bidirectional streams accepted: one per request, `auth` included.
    streams: AtomicU64,
}

/// Every metric of one server.
#[derive(Default)]
pub struct Metrics {
    http: Mutex<HttpStats>,
    /// Basic-credential checks: [verified by argon2, answered from the cache].
    basic_auth: [AtomicU64; 2],
    rows_written: AtomicU64,
    syncs: Arc<SyncCounters>,
    realtime: RealtimeStats,
    quic: QuicStats,
    /// Each topic's traffic, counted by the QUIC produce and read handlers.
    topic_traffic: TopicTraffic,
    /// The broker's topics and groups, once it is open.
    topics: RwLock<Option<Arc<dyn TopicSeries>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// An open QUIC connection, counted in `strand_quic_connections` until dropped.
pub struct QuicConnectionOpen<'a>(&'a Metrics);

impl Drop for QuicConnectionOpen<'_> {
    fn drop(&mut self) {
        self.0.quic.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    pub fn new(syncs: Arc<SyncCounters>) -> Metrics {
        Metrics {
            syncs,
            ..Metrics::default()
        }
    }

    /// Shows `source`'s topics and groups from now on (the broker calls it once it is open).
    pub fn show_topics(&self, source: Arc<dyn TopicSeries>) {
        *self.topics.write() = Some(source);
    }

    /// The traffic counters of the topic created at `incarnation` (its `CatalogTopic`'s):
    /// look them up once per request.
    pub fn topic_counters(&self, incarnation: strand_log::Seq) -> Arc<TopicCounters> {
        self.topic_traffic.of(incarnation)
    }

    /// A QUIC connection was accepted; it counts as open until the guard is dropped.
    pub fn quic_connection_opened(&self) -> QuicConnectionOpen<'_> {
        self.quic.connections.fetch_add(1, Ordering::Relaxed);
        QuicConnectionOpen(self)
    }

    /// A QUIC connection accepted a request stream.
    pub fn quic_stream_accepted(&self) {
        self.quic.streams.fetch_add(1, Ordering::Relaxed);
    }

    /// One finished HTTP request. `route` is the matched route pattern or `"unmatched"`.
    pub fn record_request(
        &self,
        route: &'static str,
        status: u16,
        error: Option<ErrorCode>,
        elapsed: Duration,
    ) {
        let mut http = self.http.lock();
        *http.requests.entry((route, status)).or_default() += 1;
        if let Some(code) = error {
            *http.errors.entry(code.as_str()).or_default() += 1;
        }
        http.latency
            .entry(route)
            .or_default()
            .observe(elapsed.as_secs_f64());
    }

    pub fn basic_auth(&self, how: BasicAuth) {
        let slot = match how {
            BasicAuth::Verified => 0,
            BasicAuth::Cached => 1,
        };
        self.basic_auth[slot].fetch_add(1, Ordering::Relaxed);
    }

    /// For the SQL engine: `rows` more rows were durably written.
    pub fn add_rows_written(&self, rows: u64) {
        self.rows_written.fetch_add(rows, Ordering::Relaxed);
    }

    pub fn rows_written(&self) -> u64 {
        self.rows_written.load(Ordering::Relaxed)
    }

    pub fn ws_connection_opened(&self) {
        self.realtime.connections.fetch_add(1, Ordering::Relaxed);
    }

    pub fn ws_connection_closed(&self) {
        self.realtime.connections.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn subscription_added(&self) {
        self.realtime.subscriptions.fetch_add(1, Ordering::Relaxed);
    }

    pub fn subscription_removed(&self) {
        self.realtime.subscriptions.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn slow_consumer_disconnect(&self) {
        let counter = &self.realtime.slow_consumer_disconnects;
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A subscription's snapshot batch read `records` log records.
    pub fn snapshot_rows_scanned(&self, records: u64) {
        let counter = &self.realtime.snapshot_rows_scanned;
        counter.fetch_add(records, Ordering::Relaxed);
    }

    /// One fan-out round queued `count` changes, `latency` after the commit was announced.
    pub fn changes_delivered(&self, count: u64, latency: Option<Duration>) {
        if count == 0 {
            return;
        }
        let counter = &self.realtime.changes_delivered;
        counter.fetch_add(count, Ordering::Relaxed);
        if let Some(latency) = latency {
            let mut histogram = self.realtime.write_to_send.lock();
            histogram.observe_many(latency.as_secs_f64(), count);
        }
    }

    /// The Prometheus text format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let http = self.http.lock();
        let name = "strand_http_requests_total";
        header(
            &mut out,
            name,
            "counter",
            "HTTP requests by route and status.",
        );
        for ((route, status), count) in &http.requests {
            let _ = writeln!(
                out,
                "{name}{{route=\"{route}\",status=\"{status}\"}} {count}"
            );
        }
        let name = "strand_http_errors_total";
        header(
            &mut out,
            name,
            "counter",
            "HTTP error answers by error code.",
        );
        for (code, count) in &http.errors {
            let _ = writeln!(out, "{name}{{code=\"{code}\"}} {count}");
        }
        let name = "strand_http_request_duration_seconds";
        header(
            &mut out,
            name,
            "histogram",
            "HTTP request latency by route.",
        );
        for (route, histogram) in &http.latency {
            histogram.lines(name, route).write(&mut out);
        }
        drop(http);
        let name = "strand_basic_auth_total";
        header(
            &mut out,
            name,
            "counter",
            "Basic-credential checks: by argon2 (verified) or from the cache (cached).",
        );
        for (outcome, counter) in ["verified", "cached"].iter().zip(&self.basic_auth) {
            let count = counter.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}{{outcome=\"{outcome}\"}} {count}");
        }
        let name = "strand_rows_written_total";
        header(
            &mut out,
            name,
            "counter",
            "Rows durably written by SQL statements.",
        );
        let _ = writeln!(out, "{name} {}", self.rows_written());
        let name = "strand_log_syncs_total";
        header(
            &mut out,
            name,
            "counter",
            "fsync-family calls of the log, by kind.",
        );
        for (kind, count) in self.syncs.by_kind() {
            let _ = writeln!(out, "{name}{{kind=\"{kind}\"}} {count}");
        }
        self.render_sync_durations(&mut out);
        self.render_realtime(&mut out);
        self.render_quic(&mut out);
        let topics = self.topics.read().clone();
        if let Some(topics) = topics {
            topics::render(&mut out, &self.topic_traffic, topics.as_ref());
        }
        out
    }

    fn render_sync_durations(&self, out: &mut String) {
        let name = "strand_log_sync_duration_seconds";
        let help = "Duration of the log's fsync-family calls, by kind as strand_log_syncs_total; \
                    atomic_write: a durable whole-file write (write, file fsync, rename, \
                    directory fsync) timed as one.";
        header(out, name, "histogram", help);
        for (kind, histogram) in self.syncs.durations_by_kind() {
            let lines = HistogramLines {
                name,
                label: ("kind", kind),
                bounds: &SYNC_BUCKETS_S,
                buckets: &histogram.buckets,
                sum_s: histogram.sum_s,
                count: histogram.count,
            };
            lines.write(out);
        }
    }

    fn render_quic(&self, out: &mut String) {
        let quic = &self.quic;
        for (name, kind, help, value) in [
            (
                "strand_quic_connections",
                "gauge",
                "Open QUIC connections (accepted and not yet closed, handshake and auth \
                 included).",
                &quic.connections,
            ),
            (
                "strand_quic_streams_total",
                "counter",
                "QUIC request streams accepted (one per request, auth included).",
                &quic.streams,
            ),
        ] {
            header(out, name, kind, help);
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        }
    }

    fn render_realtime(&self, out: &mut String) {
        let realtime = &self.realtime;
        for (name, kind, help, value) in [
            (
                "strand_ws_connections",
                "gauge",
                "Open WebSocket connections.",
                &realtime.connections,
            ),
            (
                "strand_subscriptions",
                "gauge",
                "Active subscriptions.",
                &realtime.subscriptions,
            ),
            (
                "strand_changes_delivered_total",
                "counter",
                "Change messages queued for subscribers.",
                &realtime.changes_delivered,
            ),
            (
                "strand_slow_consumer_disconnects_total",
                "counter",
                "Connections closed because the client did not read fast enough.",
                &realtime.slow_consumer_disconnects,
            ),
            (
                "strand_snapshot_rows_scanned_total",
                "counter",
                "Row versions read from the log to build subscription snapshots (one per \
                 pinned key when the filter pins the primary key).",
                &realtime.snapshot_rows_scanned,
            ),
        ] {
            header(out, name, kind, help);
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        }
        if let Some(heap) = crate::sys::heap_usage() {
            let name = "strand_heap_in_use_bytes";
            let help = "Anonymous memory of the server in RAM (RssAnon): the heap the allocator \
                        holds, with its free space not yet returned, and thread stacks; not the \
                        log's mapped files.";
            header(out, name, "gauge", help);
            let (allocator, bytes) = (heap.allocator.name(), heap.resident_bytes);
            let _ = writeln!(out, "{name}{{allocator=\"{allocator}\"}} {bytes}");
        }
        let name = "strand_write_to_send_seconds";
        let help = "From a commit's announcement to its change queued for the client.";
        header(out, name, "histogram", help);
        let histogram = realtime.write_to_send.lock();
        histogram.lines(name, "/v1/ws").write(out);
    }
}
#[cfg(test)]
mod tests;
