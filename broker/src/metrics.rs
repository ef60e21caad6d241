//! Server metrics and their Prometheus text exposition (`GET /metrics`): HTTP requests by
//! route and status, errors by code, a request latency histogram per route, rows written (the
//! SQL engine adds to it) and the log's fsyncs (counted by [`crate::storage::CountingStorage`]).
//!
//! Plain counters and a renderer, no I/O. Label values come from fixed sets (route patterns,
//! status codes, error codes), so the series are bounded.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::error::ErrorCode;
use crate::storage::SyncCounters;

/// Upper bounds of the latency buckets, in seconds.
const LATENCY_BUCKETS_S: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    /// Count per bucket (not cumulative); one more slot for `+Inf`.
    buckets: [u64; LATENCY_BUCKETS_S.len() + 1],
    sum_s: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        self.observe_many(seconds, 1);
    }

    /// `count` observations of the same value (one fan-out round's messages).
    fn observe_many(&mut self, seconds: f64, count: u64) {
        let slot = LATENCY_BUCKETS_S
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(LATENCY_BUCKETS_S.len());
        self.buckets[slot] += count;
        self.sum_s += seconds * count as f64;
        self.count += count;
    }
}

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

/// Every metric of one server.
#[derive(Debug, Default)]
pub struct Metrics {
    http: Mutex<HttpStats>,
    /// Basic-credential checks: [verified by argon2, answered from the cache].
    basic_auth: [AtomicU64; 2],
    rows_written: AtomicU64,
    syncs: Arc<SyncCounters>,
    realtime: RealtimeStats,
}

impl Metrics {
    pub fn new(syncs: Arc<SyncCounters>) -> Metrics {
        Metrics {
            syncs,
            ..Metrics::default()
        }
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
            render_histogram(&mut out, name, route, histogram);
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
        self.render_realtime(&mut out);
        out
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
        render_histogram(out, name, "/v1/ws", &histogram);
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn render_histogram(out: &mut String, name: &str, route: &str, histogram: &Histogram) {
    let mut cumulative = 0;
    for (bound, count) in LATENCY_BUCKETS_S.iter().zip(&histogram.buckets) {
        cumulative += count;
        let _ = writeln!(
            out,
            "{name}_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}"
        );
    }
    let count = histogram.count;
    let _ = writeln!(
        out,
        "{name}_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}"
    );
    let _ = writeln!(out, "{name}_sum{{route=\"{route}\"}} {}", histogram.sum_s);
    let _ = writeln!(out, "{name}_count{{route=\"{route}\"}} {count}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_rows() {
        let metrics = Metrics::new(Arc::new(SyncCounters::default()));
        let fast = Duration::from_micros(200);
        metrics.record_request("/health", 200, None, fast);
        metrics.record_request("/health", 200, None, Duration::from_millis(30));
        metrics.record_request("unmatched", 404, Some(ErrorCode::NotFound), fast);
        metrics.add_rows_written(5);
        let text = metrics.render();
        for line in [
            "strand_http_requests_total{route=\"/health\",status=\"200\"} 2",
            "strand_http_requests_total{route=\"unmatched\",status=\"404\"} 1",
            "strand_http_errors_total{code=\"not_found\"} 1",
            "strand_http_request_duration_seconds_bucket{route=\"/health\",le=\"0.0005\"} 1",
            "strand_http_request_duration_seconds_bucket{route=\"/health\",le=\"0.05\"} 2",
            "strand_http_request_duration_seconds_bucket{route=\"/health\",le=\"+Inf\"} 2",
            "strand_http_request_duration_seconds_count{route=\"/health\"} 2",
            "strand_rows_written_total 5",
            "strand_log_syncs_total{kind=\"file\"} 0",
            "# TYPE strand_http_request_duration_seconds histogram",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}
