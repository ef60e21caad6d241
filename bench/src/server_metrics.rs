//! What the server says about a run: `/metrics` scraped before and after a case, its
//! difference reported as figures beside the tool's own (records produced and fetched as the
//! server counted them, its fsyncs and their latency, changes delivered). The same series an
//! operator reads, so a figure of the tool can be checked against the server's.

use std::collections::HashMap;

use crate::report::Figure;
use crate::target::Target;

/// One scrape of `/metrics`: every sample by its series (`name{labels}`).
#[derive(Clone, Debug, Default)]
pub struct Scrape {
    samples: HashMap<String, f64>,
}

impl Scrape {
    /// Scrapes `target` (`None` when the server does not answer: the figures are left out).
    pub fn take(target: &Target, token: &str) -> Option<Scrape> {
        target.metrics(token).ok().map(|text| Scrape::parse(&text))
    }

    /// The Prometheus text format: `# ...` comments, then `series value` lines.
    pub fn parse(text: &str) -> Scrape {
        let samples = text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                Some((series.to_string(), value.parse().ok()?))
            })
            .collect();
        Scrape { samples }
    }

    /// The sum of every series of metric `name` (all label values).
    fn sum(&self, name: &str) -> f64 {
        self.samples
            .iter()
            .filter(|(series, _)| metric_name(series) == name)
            .map(|(_, value)| value)
            .sum()
    }

    /// The cumulative buckets of histogram `name`, summed over its other labels, by bound.
    fn buckets(&self, name: &str) -> Vec<(f64, f64)> {
        let bucket = format!("{name}_bucket");
        let mut by_bound: HashMap<String, f64> = HashMap::new();
        for (series, value) in &self.samples {
            if metric_name(series) != bucket {
                continue;
            }
            if let Some(bound) = label(series, "le") {
                *by_bound.entry(bound.to_string()).or_default() += value;
            }
        }
        let mut buckets: Vec<(f64, f64)> = by_bound
            .into_iter()
            .map(|(bound, count)| (bound.parse().unwrap_or(f64::INFINITY), count))
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        buckets
    }
}

fn metric_name(series: &str) -> &str {
    series.split('{').next().unwrap_or(series)
}

fn label<'a>(series: &'a str, name: &str) -> Option<&'a str> {
    let labels = series.split_once('{')?.1.strip_suffix('}')?;
    labels.split(',').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| value.trim_matches('"'))
    })
}

/// What changed on the server between two scrapes, as figures (only those that moved).
pub fn figures(before: &Scrape, after: &Scrape) -> Vec<Figure> {
    let delta = |name: &str| after.sum(name) - before.sum(name);
    let mut figures = Vec::new();
    for (name, figure) in [
        (
            "strand_topic_records_produced_total",
            "server: records produced",
        ),
        (
            "strand_topic_records_fetched_total",
            "server: records fetched",
        ),
        (
            "strand_changes_delivered_total",
            "server: changes delivered",
        ),
        ("strand_log_syncs_total", "server: fsyncs"),
    ] {
        let moved = delta(name);
        if moved > 0.0 {
            figures.push(Figure::new(figure, moved, ""));
        }
    }
    let syncs = "strand_log_sync_duration_seconds";
    let count = delta(&format!("{syncs}_count"));
    if count > 0.0 {
        let mean_ms = delta(&format!("{syncs}_sum")) / count * 1e3;
        figures.push(Figure::new("server: fsync mean", mean_ms, "ms"));
        if let Some(p99_s) = quantile_bound(&before.buckets(syncs), &after.buckets(syncs), 0.99) {
            figures.push(Figure::new("server: fsync p99 at most", p99_s * 1e3, "ms"));
        }
    }
    figures
}

/// The upper bound of the bucket holding quantile `q` of the observations between two
/// scrapes (a histogram tells no more than that); `None` when nothing was observed or the
/// quantile is in the `+Inf` bucket.
fn quantile_bound(before: &[(f64, f64)], after: &[(f64, f64)], q: f64) -> Option<f64> {
    let earlier = |bound: f64| {
        before
            .iter()
            .find(|(b, _)| *b == bound)
            .map_or(0.0, |(_, count)| *count)
    };
    let deltas: Vec<(f64, f64)> = after
        .iter()
        .map(|&(bound, count)| (bound, count - earlier(bound)))
        .collect();
    let total = deltas.last()?.1;
    if total <= 0.0 {
        return None;
    }
    deltas
        .iter()
        .find(|(_, cumulative)| *cumulative >= q * total)
        .map(|(bound, _)| *bound)
        .filter(|bound| bound.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "# TYPE strand_log_syncs_total counter\n\
        strand_log_syncs_total{kind=\"file\"} 10\n\
        strand_topic_records_produced_total{topic=\"a.t\"} 100\n\
        strand_log_sync_duration_seconds_bucket{kind=\"file\",le=\"0.001\"} 10\n\
        strand_log_sync_duration_seconds_bucket{kind=\"file\",le=\"0.01\"} 10\n\
        strand_log_sync_duration_seconds_bucket{kind=\"file\",le=\"+Inf\"} 10\n\
        strand_log_sync_duration_seconds_sum{kind=\"file\"} 0.005\n\
        strand_log_sync_duration_seconds_count{kind=\"file\"} 10\n";
    const AFTER: &str = "strand_log_syncs_total{kind=\"file\"} 110\n\
        strand_log_syncs_total{kind=\"directory\"} 2\n\
        strand_topic_records_produced_total{topic=\"a.t\"} 1100\n\
        strand_topic_records_produced_total{topic=\"a.u\"} 50\n\
        strand_log_sync_duration_seconds_bucket{kind=\"file\",le=\"0.001\"} 105\n\
        strand_log_sync_duration_seconds_bucket{kind=\"file\",le=\"0.01\"} 112\n\
        strand_log_sync_duration_seconds_bucket{kind=\"file\",le=\"+Inf\"} 112\n\
        strand_log_sync_duration_seconds_sum{kind=\"file\"} 0.107\n\
        strand_log_sync_duration_seconds_count{kind=\"file\"} 112\n";

    #[test]
    fn the_difference_of_two_scrapes_is_what_the_server_did_meanwhile() {
        let figures = figures(&Scrape::parse(BEFORE), &Scrape::parse(AFTER));
        let value = |name: &str| figures.iter().find(|f| f.name == name).map(|f| f.value);
        assert_eq!(value("server: records produced"), Some(1050.0));
        assert_eq!(value("server: fsyncs"), Some(102.0));
        assert!((value("server: fsync mean").unwrap() - 1.0).abs() < 1e-9);
        // 95 of 102 syncs within 1 ms, the rest within 10 ms: p99 is in the 10 ms bucket.
        assert_eq!(value("server: fsync p99 at most"), Some(10.0));
        assert_eq!(value("server: records fetched"), None);
    }
}
