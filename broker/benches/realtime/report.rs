//! What the realtime bench prints and writes: percentiles, one results table (each result a
//! workload, a case and named figures), the targets with MET / NOT MET (or why a figure cannot
//! count: LOST, DUPLICATE, BROKEN), and JSON lines.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

/// Nearest-rank percentiles of a set of durations.
#[derive(Clone, Copy, Debug)]
pub struct Stats {
    pub count: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub p999: Duration,
    pub max: Duration,
}

impl Stats {
    pub fn of(mut samples_ns: Vec<u64>) -> Option<Stats> {
        if samples_ns.is_empty() {
            return None;
        }
        samples_ns.sort_unstable();
        let at = |q: f64| {
            let rank = ((q * samples_ns.len() as f64).ceil() as usize).clamp(1, samples_ns.len());
            Duration::from_nanos(samples_ns[rank - 1])
        };
        Some(Stats {
            count: samples_ns.len(),
            p50: at(0.50),
            p99: at(0.99),
            p999: at(0.999),
            max: at(1.0),
        })
    }

    /// `p50`, `p99`, (`p99.9` when asked) and `max` as millisecond figures.
    pub fn figures(&self, with_p999: bool) -> Vec<Figure> {
        let mut figures = vec![Figure::ms("p50", self.p50), Figure::ms("p99", self.p99)];
        if with_p999 {
            figures.push(Figure::ms("p99.9", self.p999));
        }
        figures.push(Figure::ms("max", self.max));
        figures
    }
}

/// One named number of a result.
#[derive(Clone, Debug)]
pub struct Figure {
    pub name: &'static str,
    pub value: f64,
    pub unit: &'static str,
}

impl Figure {
    pub fn new(name: &'static str, value: f64, unit: &'static str) -> Figure {
        Figure { name, value, unit }
    }

    pub fn ms(name: &'static str, value: Duration) -> Figure {
        Figure::new(name, value.as_secs_f64() * 1e3, "ms")
    }

    pub fn count(name: &'static str, value: u64) -> Figure {
        Figure::new(name, value as f64, "")
    }

    fn text(&self) -> String {
        let value = match self.unit {
            "ms" if self.value < 10.0 => format!("{:.2}", self.value),
            "ms" | "s" if self.value < 100.0 => format!("{:.1}", self.value),
            "s" => format!("{:.1}", self.value),
            _ => thousands(self.value.round() as i64),
        };
        match self.unit {
            "" => format!("{} {value}", self.name),
            unit => format!("{} {value} {unit}", self.name),
        }
    }

    fn json_key(&self) -> String {
        let name = self.name.replace(['.', ' ', '/'], "_");
        match self.unit {
            "" => name,
            "%" => format!("{name}_pct"),
            unit => format!("{name}_{}", unit.replace('/', "_per_")),
        }
    }
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

/// A measured case.
#[derive(Clone, Debug)]
pub struct Measurement {
    /// Stable id, e.g. `latency_10000`.
    pub key: String,
    pub workload: &'static str,
    pub case: String,
    pub figures: Vec<Figure>,
}

impl Measurement {
    pub fn figure(&self, name: &str) -> Option<f64> {
        self.figures
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value)
    }
}

pub fn print_measurements(results: &[Measurement]) {
    const WIDTH: usize = 74;
    println!("{:<24}{:<46}figures", "workload", "case");
    println!("{}", "-".repeat(24 + 46 + WIDTH));
    for m in results {
        let mut lines = vec![String::new()];
        for figure in &m.figures {
            let text = figure.text();
            let line = lines.last_mut().expect("one line at least");
            if !line.is_empty() && line.len() + 3 + text.len() > WIDTH {
                lines.push(text);
            } else if line.is_empty() {
                *line = text;
            } else {
                line.push_str(" | ");
                line.push_str(&text);
            }
        }
        for (i, line) in lines.iter().enumerate() {
            let (workload, case) = match i {
                0 => (m.workload, m.case.as_str()),
                _ => ("", ""),
            };
            println!("{workload:<24}{case:<46}{line}");
        }
    }
}

/// A goal of the issue, checked against this run's figures.
#[derive(Default)]
pub struct Target {
    pub label: String,
    pub measured: f64,
    pub required: f64,
    pub unit: &'static str,
    /// Met when `measured <= required`.
    pub at_most: bool,
    /// The figure cannot be trusted: lost or duplicate deliveries, an implausible value. The
    /// target reads the failure's word instead of MET / NOT MET, and the run fails.
    pub failed: Option<Failure>,
    /// A condition of the target was not reached (e.g. the write rate it is stated at): NOT
    /// MET, whatever the figure.
    pub unmet_because: Option<String>,
}

/// Why a target's figure is not a measurement.
pub struct Failure {
    /// `LOST`, `DUPLICATE`, `BROKEN`.
    pub verdict: &'static str,
    pub reason: String,
}

impl Target {
    /// The figure alone against the requirement.
    pub fn met(&self) -> bool {
        match self.at_most {
            true => self.measured <= self.required,
            false => self.measured >= self.required,
        }
    }

    /// `MET`, `NOT MET`, or the failure's word.
    pub fn verdict(&self) -> &'static str {
        match (&self.failed, &self.unmet_because) {
            (Some(failure), _) => failure.verdict,
            (None, Some(_)) => "NOT MET",
            (None, None) if self.met() => "MET",
            (None, None) => "NOT MET",
        }
    }

    /// Why the verdict is not the figure's own, if it is not.
    pub fn reason(&self) -> Option<&str> {
        match (&self.failed, &self.unmet_because) {
            (Some(failure), _) => Some(&failure.reason),
            (None, because) => because.as_deref(),
        }
    }
}

pub fn print_targets(targets: &[Target], notes: &[String]) {
    println!(
        "{:<66}{:>14}{:>16}{:>10}",
        "target", "measured", "required", "result"
    );
    println!("{}", "-".repeat(106));
    for t in targets {
        let op = if t.at_most { "<=" } else { ">=" };
        let number = |v: f64| match t.unit {
            "ms" | "x" | "M rec/s" => format!("{v:.2} {}", t.unit),
            _ => format!("{v:.0} {}", t.unit),
        };
        println!(
            "{:<66}{:>14}{:>16}{:>10}",
            t.label,
            number(t.measured),
            format!("{op} {}", number(t.required)),
            t.verdict()
        );
        if let Some(reason) = t.reason() {
            println!("  {}: {reason}", t.verdict());
        }
    }
    for note in notes {
        println!("{note}");
    }
}

/// One JSON object per line: the run, each measurement, each target.
pub fn write_json(
    path: &Path,
    run: Value,
    results: &[Measurement],
    targets: &[Target],
) -> std::io::Result<()> {
    write_json_of("realtime", path, run, results, targets)
}

/// [`write_json`] for the bench named `bench` (every line carries `"bench": bench`).
pub fn write_json_of(
    bench: &str,
    path: &Path,
    run: Value,
    results: &[Measurement],
    targets: &[Target],
) -> std::io::Result<()> {
    let run_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let stamp = |mut line: Value| {
        if let Some(object) = line.as_object_mut() {
            object.insert("bench".into(), json!(bench));
            object.insert("run_unix_ms".into(), json!(run_unix_ms));
        }
        line.to_string()
    };
    let mut lines = vec![stamp(run)];
    for m in results {
        let mut figures = Map::new();
        for f in &m.figures {
            figures.insert(f.json_key(), json!(f.value));
        }
        lines.push(stamp(json!({
            "kind": "measurement",
            "id": m.key,
            "workload": m.workload,
            "case": m.case,
            "figures": figures,
        })));
    }
    for t in targets {
        lines.push(stamp(json!({
            "kind": "target",
            "target": t.label,
            "measured": t.measured,
            "required": t.required,
            "unit": t.unit,
            "met": t.verdict() == "MET",
            "verdict": t.verdict(),
            "reason": t.reason(),
        })));
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, lines.join("\n") + "\n")
}
