//! What a run found: every measurement (Strand's and each peer's) with its throughput,
//! latency percentiles and series, the ratios Strand/peer, the goals checked, and failures.
//! One model, written as a text table (`text.rs`), JSON (serde, the documented format of
//! `docs/bench.md`), an HTML page with SVG charts (`html.rs`) and BENCHMARKS.md
//! (`markdown.rs`).

pub mod html;
pub mod markdown;
mod svg;
pub mod text;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::latency::LatencySummary;
use crate::machine::Machine;

/// The JSON report's format version; bumped when a documented field changes meaning.
pub const FORMAT_VERSION: u32 = 1;

/// A whole run.
#[derive(Serialize, Deserialize)]
pub struct Report {
    pub tool: String,
    pub format: u32,
    pub version: String,
    /// The command line, to run it again.
    pub command: String,
    pub started_unix_s: u64,
    pub elapsed_s: f64,
    pub machine: Machine,
    pub results: Vec<Measurement>,
    pub ratios: Vec<Ratio>,
    pub goals: Vec<Goal>,
    pub failures: Vec<Failure>,
    pub notes: Vec<String>,
}

/// One measured case of one system.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Measurement {
    /// `<workload>/<system>/<case>`: stable across runs.
    pub key: String,
    /// The subcommand that measured it.
    pub workload: String,
    /// `strand`, `jetstream`, `nats-core`, `redis`, `postgres` or `disk`.
    pub system: String,
    /// The case, the same for every system that ran it (ratios pair on it), e.g. `1024B_p4`.
    pub case: String,
    /// The case in words.
    pub label: String,
    /// How durable the system's acknowledgement was, e.g. `fsync=always`.
    pub durability: String,
    /// The case's parameters (record size, producers, rate, ...).
    pub params: Map<String, Value>,
    pub throughput: Option<Throughput>,
    pub latency: Option<LatencySummary>,
    /// Other named figures (CPU, memory, time to ready, ...).
    pub figures: Vec<Figure>,
    /// Throughput over time, one point per interval.
    pub series: Vec<SeriesPoint>,
}

impl Measurement {
    pub fn new(workload: &'static str, system: &str, case: &str, label: &str) -> Measurement {
        Measurement {
            key: key_of(workload, system, case),
            workload: workload.to_string(),
            system: system.to_string(),
            case: case.to_string(),
            label: label.to_string(),
            durability: String::new(),
            params: Map::new(),
            throughput: None,
            latency: None,
            figures: Vec::new(),
            series: Vec::new(),
        }
    }

    /// The same measurement under another case (and so another key).
    pub fn case(mut self, case: &str) -> Measurement {
        self.case = case.to_string();
        self.key = key_of(&self.workload, &self.system, case);
        self
    }

    pub fn durability(mut self, durability: impl Into<String>) -> Measurement {
        self.durability = durability.into();
        self
    }

    pub fn param(mut self, name: &str, value: impl Into<Value>) -> Measurement {
        self.params.insert(name.to_string(), value.into());
        self
    }

    pub fn figure(&self, name: &str) -> Option<f64> {
        self.figures
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value)
    }
}

/// `<workload>/<system>/<case>`: a measurement's stable key.
fn key_of(workload: &str, system: &str, case: &str) -> String {
    format!("{workload}/{system}/{case}")
}

/// Records (messages, rows, requests) over a counted window.
#[derive(Serialize, Deserialize, Clone, Copy, Debug)]
pub struct Throughput {
    pub records: u64,
    pub bytes: u64,
    pub elapsed_s: f64,
    pub records_per_s: f64,
    pub mb_per_s: f64,
}

impl Throughput {
    pub fn of(records: u64, bytes: u64, elapsed: std::time::Duration) -> Throughput {
        let seconds = elapsed.as_secs_f64().max(1e-9);
        Throughput {
            records,
            bytes,
            elapsed_s: elapsed.as_secs_f64(),
            records_per_s: records as f64 / seconds,
            mb_per_s: bytes as f64 / seconds / 1e6,
        }
    }
}

/// One named number.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Figure {
    pub name: String,
    pub value: f64,
    /// `ms`, `s`, `%`, `MiB`, `rows/s`, ... or empty for a count.
    pub unit: String,
}

impl Figure {
    pub fn new(name: &str, value: f64, unit: &str) -> Figure {
        Figure {
            name: name.to_string(),
            value,
            unit: unit.to_string(),
        }
    }
}

/// Throughput in one interval of a run.
#[derive(Serialize, Deserialize, Clone, Copy, Debug)]
pub struct SeriesPoint {
    /// End of the interval, seconds since the counted window began.
    pub t_s: f64,
    pub records_per_s: f64,
}

/// Strand's figure over a peer's for the same workload and case.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Ratio {
    pub workload: String,
    pub case: String,
    pub peer: String,
    /// `records_per_s` (higher is better) or `p50_ms`/`p99_ms` (lower is better).
    pub figure: String,
    pub strand: f64,
    pub peer_value: f64,
    /// How many times better Strand is (> 1: Strand ahead), whichever direction the figure
    /// improves in.
    pub advantage: f64,
}

/// A goal of the issue checked against this run.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Goal {
    pub label: String,
    pub measured: Option<f64>,
    pub required: Option<f64>,
    pub unit: String,
    /// `MET`, `NOT MET`, or `NOT RUN` (a figure it needs was not measured).
    pub verdict: String,
}

/// A workload that failed; the others still ran.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Failure {
    pub workload: String,
    pub error: String,
}

impl Report {
    /// Pairs every Strand measurement with each peer's of the same workload and case (the
    /// Strand one of the matching durability when several: the first one otherwise).
    pub fn compute_ratios(&mut self) {
        let mut ratios = Vec::new();
        // `disk` is the floor a plain program reaches, shown beside Strand, not a peer.
        let peers = self
            .results
            .iter()
            .filter(|m| m.system != "strand" && m.system != "disk");
        for peer in peers {
            let strand = self.results.iter().filter(|m| {
                m.system == "strand" && m.workload == peer.workload && m.case == peer.case
            });
            for strand in strand {
                ratios.extend(ratios_between(strand, peer));
            }
        }
        self.ratios = ratios;
    }
}

fn ratios_between(strand: &Measurement, peer: &Measurement) -> Vec<Ratio> {
    let mut out = Vec::new();
    let peer_name = format!("{} ({})", peer.system, peer.durability);
    let mut push = |figure: &'static str, s: f64, p: f64, higher_better: bool| {
        if s > 0.0 && p > 0.0 {
            out.push(Ratio {
                workload: strand.workload.clone(),
                case: format!("{} [{}]", strand.case, strand.durability),
                peer: peer_name.clone(),
                figure: figure.to_string(),
                strand: s,
                peer_value: p,
                advantage: if higher_better { s / p } else { p / s },
            });
        }
    };
    if let (Some(s), Some(p)) = (strand.throughput, peer.throughput) {
        push("records_per_s", s.records_per_s, p.records_per_s, true);
    }
    if let (Some(s), Some(p)) = (&strand.latency, &peer.latency) {
        push("p50_ms", s.p50_ms, p.p50_ms, false);
        push("p99_ms", s.p99_ms, p.p99_ms, false);
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A report with no results, for renderers' tests.
    pub fn empty_report() -> Report {
        Report {
            tool: "strand-bench".into(),
            format: FORMAT_VERSION,
            version: "0".into(),
            command: "strand-bench all".into(),
            started_unix_s: 0,
            elapsed_s: 1.0,
            machine: Machine::probe(std::path::Path::new("/")),
            results: Vec::new(),
            ratios: Vec::new(),
            goals: Vec::new(),
            failures: Vec::new(),
            notes: Vec::new(),
        }
    }

    fn throughput_case(system: &str, case: &str, per_s: f64) -> Measurement {
        let mut m = Measurement::new("produce", system, case, case);
        m.throughput = Some(Throughput::of(
            per_s as u64,
            0,
            std::time::Duration::from_secs(1),
        ));
        m
    }

    #[test]
    fn ratios_pair_strand_with_each_peer_of_the_same_case() {
        let mut report = empty_report();
        report.results = vec![
            throughput_case("strand", "100B_p1", 300.0),
            throughput_case("jetstream", "100B_p1", 100.0),
            throughput_case("jetstream", "100B_p4", 100.0),
        ];
        report.compute_ratios();
        assert_eq!(report.ratios.len(), 1, "{:?}", report.ratios);
        assert!((report.ratios[0].advantage - 3.0).abs() < 1e-9);
    }
}
