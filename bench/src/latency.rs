//! Latency recording with HdrHistogram, and the open-loop schedule that keeps coordinated
//! omission out of the figures.
//!
//! An open-loop client sends request `i` at `start + i / rate` whatever happened to earlier
//! requests, and measures each latency from that due time, not from when it got around to
//! sending. A server stall of 100 ms then shows as 100 ms of latency for every request due
//! meanwhile, as a user at that rate would see it, instead of as one slow sample.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Slowest latency recorded exactly; slower samples are clamped to it (and counted).
const LATENCY_NS_MAX: u64 = 600_000_000_000;
/// Three significant figures: 0.1 % resolution at every magnitude.
const SIGNIFICANT_FIGURES: u8 = 3;
/// The percentiles of a curve (the HTML chart's x axis), as fractions.
const CURVE_QUANTILES: [f64; 12] = [
    0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999, 1.0,
];

/// A histogram of latencies in nanoseconds.
#[derive(Clone)]
pub struct LatencyHistogram {
    histogram: Histogram<u64>,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram::new()
    }
}

impl LatencyHistogram {
    pub fn new() -> LatencyHistogram {
        let histogram = Histogram::new_with_bounds(1, LATENCY_NS_MAX, SIGNIFICANT_FIGURES)
            .expect("static histogram bounds are valid");
        LatencyHistogram { histogram }
    }

    pub fn record(&mut self, latency: Duration) {
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.histogram
            .saturating_record(ns.clamp(1, LATENCY_NS_MAX));
    }

    /// Records a latency of a closed-loop client that sends every `expected_interval`: a
    /// sample longer than the interval also stands for the requests it kept from being sent
    /// (HdrHistogram's correction). Open-loop clients use [`LatencyHistogram::record`] with
    /// latencies measured from the due time instead.
    pub fn record_corrected(&mut self, latency: Duration, expected_interval: Duration) {
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        let interval = u64::try_from(expected_interval.as_nanos()).unwrap_or(u64::MAX);
        let _ = self
            .histogram
            .record_correct(ns.clamp(1, LATENCY_NS_MAX), interval.max(1));
    }

    pub fn merge(&mut self, other: &LatencyHistogram) {
        let _ = self.histogram.add(&other.histogram);
    }

    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// The summary of the report, `None` when nothing was recorded.
    pub fn summary(&self) -> Option<LatencySummary> {
        if self.histogram.is_empty() {
            return None;
        }
        let ms = |q: f64| self.histogram.value_at_quantile(q) as f64 / 1e6;
        Some(LatencySummary {
            count: self.histogram.len(),
            mean_ms: self.histogram.mean() / 1e6,
            p50_ms: ms(0.5),
            p90_ms: ms(0.9),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            max_ms: self.histogram.max() as f64 / 1e6,
            curve: CURVE_QUANTILES
                .iter()
                .map(|&q| CurvePoint {
                    percentile: q * 100.0,
                    ms: ms(q),
                })
                .collect(),
        })
    }
}

/// Percentiles of one measurement, in milliseconds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// The percentile curve (for charts).
    pub curve: Vec<CurvePoint>,
}

/// One point of a percentile curve.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CurvePoint {
    pub percentile: f64,
    pub ms: f64,
}

/// The due times of an open-loop client sending at a fixed rate.
pub struct OpenLoop {
    start: Instant,
    interval: Duration,
    next: u64,
}

impl OpenLoop {
    /// Request `i` is due at `start + i * interval`, with `interval = 1 / rate`.
    pub fn new(start: Instant, per_second: f64) -> OpenLoop {
        OpenLoop {
            start,
            interval: Duration::from_secs_f64(1.0 / per_second.max(1e-9)),
            next: 0,
        }
    }

    /// Waits until the next request is due (at once when the client is behind) and returns
    /// its due time: latencies are measured from it. A plain thread's sleep (the OS timer,
    /// tens of microseconds late), never tokio's timer, whose wheel rounds up to the next
    /// millisecond and would add up to 1 ms to every latency measured from the due time.
    pub fn next_due_blocking(&mut self) -> Instant {
        let due = self.start + self.interval.mul_f64(self.next as f64);
        self.next += 1;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_set() {
        let mut histogram = LatencyHistogram::new();
        for ms in 1..=100 {
            histogram.record(Duration::from_millis(ms));
        }
        let summary = histogram.summary().unwrap();
        assert_eq!(summary.count, 100);
        assert!((summary.p50_ms - 50.0).abs() < 0.1, "{summary:?}");
        assert!((summary.p99_ms - 99.0).abs() < 0.1, "{summary:?}");
        assert!((summary.max_ms - 100.0).abs() < 0.1, "{summary:?}");
    }

    #[test]
    fn a_stall_in_a_closed_loop_counts_for_the_requests_it_held_back() {
        let mut histogram = LatencyHistogram::new();
        let interval = Duration::from_millis(1);
        for _ in 0..99 {
            histogram.record_corrected(Duration::from_micros(100), interval);
        }
        histogram.record_corrected(Duration::from_millis(100), interval);
        let summary = histogram.summary().unwrap();
        // 99 fast samples, then 100 ms standing for 99 more held back: half are slow.
        assert!(summary.count > 190, "{summary:?}");
        assert!(summary.p90_ms > 10.0, "{summary:?}");
    }

    #[test]
    fn an_empty_histogram_has_no_summary() {
        assert!(LatencyHistogram::new().summary().is_none());
    }
}
