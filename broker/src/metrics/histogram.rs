//! [`Histogram`]: request and delivery latencies, counted under their owner's lock (the
//! log's sync durations are atomics of their own, `crate::storage`).

use super::text::HistogramLines;

/// Upper bounds of the latency buckets, in seconds.
const LATENCY_BUCKETS_S: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Debug, Default, Clone)]
pub(super) struct Histogram {
    /// Count per bucket (not cumulative); one more slot for `+Inf`.
    buckets: [u64; LATENCY_BUCKETS_S.len() + 1],
    sum_s: f64,
    count: u64,
}

impl Histogram {
    pub(super) fn observe(&mut self, seconds: f64) {
        self.observe_many(seconds, 1);
    }

    /// `count` observations of the same value (one fan-out round's messages).
    pub(super) fn observe_many(&mut self, seconds: f64, count: u64) {
        let slot = LATENCY_BUCKETS_S
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(LATENCY_BUCKETS_S.len());
        self.buckets[slot] += count;
        self.sum_s += seconds * count as f64;
        self.count += count;
    }

    /// Its text lines as series `name` with label `route`.
    pub(super) fn lines<'a>(&'a self, name: &'a str, route: &'a str) -> HistogramLines<'a> {
        HistogramLines {
            name,
            label: ("route", route),
            bounds: &LATENCY_BUCKETS_S,
            buckets: &self.buckets,
            sum_s: self.sum_s,
            count: self.count,
        }
    }
}
