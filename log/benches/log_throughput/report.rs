//! Results: one [`Measurement`] per phase, the table, the targets and the JSON lines.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::machine::{DiskCounters, Machine};
use crate::timed_storage::IoTotals;
use crate::Plan;

/// A value of a JSON line (no serde in this crate's dependencies for one flat object).
#[derive(Clone, Debug)]
pub enum Json {
    Str(String),
    Num(f64),
    Int(u64),
    Bool(bool),
    Null,
}

impl Json {
    fn write(&self, out: &mut String) {
        match self {
            Json::Str(s) => {
                out.push('"');
                for c in s.chars() {
                    match c {
                        '"' => out.push_str("\\\""),
                        '\\' => out.push_str("\\\\"),
                        c if u32::from(c) < 0x20 => {
                            let _ = write!(out, "\\u{:04x}", u32::from(c));
                        }
                        c => out.push(c),
                    }
                }
                out.push('"');
            }
            Json::Num(n) if n.is_finite() => {
                let _ = write!(out, "{n:.3}");
            }
            Json::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Json::Bool(b) => {
                let _ = write!(out, "{b}");
            }
            Json::Num(_) | Json::Null => out.push_str("null"),
        }
    }
}

fn json_line(fields: &[(&str, Json)]) -> String {
    let mut out = String::from("{");
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        Json::Str((*key).to_string()).write(&mut out);
        out.push(':');
        value.write(&mut out);
    }
    out.push('}');
    out
}

/// Per-call latency percentiles, in microseconds.
#[derive(Clone, Copy, Debug)]
pub struct Latency {
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
}

impl Latency {
    pub fn of(mut samples_ns: Vec<u64>) -> Option<Latency> {
        if samples_ns.is_empty() {
            return None;
        }
        samples_ns.sort_unstable();
        let at = |q: f64| samples_ns[((samples_ns.len() - 1) as f64 * q).round() as usize];
        Some(Latency {
            p50_us: at(0.50) as f64 / 1e3,
            p99_us: at(0.99) as f64 / 1e3,
            max_us: at(1.0) as f64 / 1e3,
        })
    }
}

/// One measured phase.
#[derive(Debug)]
pub struct Measurement {
    /// Stable key for JSON and targets, e.g. `append_always_1024B_w64_b1`.
    pub id: String,
    /// Label in the table.
    pub label: String,
    /// Configuration fields for the JSON line.
    pub config: Vec<(&'static str, Json)>,
    /// Records appended or read; `None` for raw disk writes.
    pub records: Option<u64>,
    /// Calls made: appends, or write+fdatasync pairs for raw disk writes; `None` for scans.
    pub calls: Option<u64>,
    /// Bytes counted for MB/s: payload bytes, or bytes written for raw disk writes.
    pub bytes: u64,
    pub elapsed: Duration,
    pub disk: Option<DiskCounters>,
    pub latency: Option<Latency>,
    /// Writes and syncs the partition made, for phases run over the timing storage.
    pub io: Option<IoTotals>,
}

impl Measurement {
    fn seconds(&self) -> f64 {
        self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.seconds()
    }

    pub fn records_per_s(&self) -> f64 {
        self.records.map_or(0.0, |r| r as f64 / self.seconds())
    }

    fn calls_per_s(&self) -> Option<f64> {
        self.calls.map(|c| c as f64 / self.seconds())
    }

    fn flushes_per_s(&self) -> Option<f64> {
        self.disk.map(|d| d.flushes as f64 / self.seconds())
    }

    /// Records (or calls, for raw writes) per device cache flush.
    fn per_flush(&self) -> Option<f64> {
        let flushes = self.disk?.flushes;
        let done = self.records.or(self.calls)?;
        (flushes > 0).then(|| done as f64 / flushes as f64)
    }
}

fn figure(value: Option<f64>) -> String {
    match value {
        None => "-".into(),
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.1}"),
    }
}

pub fn print_table(results: &[Measurement]) {
    println!(
        "{:<40} {:>11} {:>8} {:>10} {:>9} {:>8} {:>8} {:>8} {:>6}",
        "phase", "rec/s", "MB/s", "calls/s", "flush/s", "per-flsh", "p50 us", "p99 us", "secs"
    );
    println!("{}", "-".repeat(118));
    for m in results {
        println!(
            "{:<40} {:>11} {:>8} {:>10} {:>9} {:>8} {:>8} {:>8} {:>6.2}",
            m.label,
            figure(m.records.map(|_| m.records_per_s())),
            figure(Some(m.mb_per_s())),
            figure(m.calls_per_s()),
            figure(m.flushes_per_s()),
            figure(m.per_flush()),
            figure(m.latency.map(|l| l.p50_us)),
            figure(m.latency.map(|l| l.p99_us)),
            m.seconds(),
        );
    }
    println!("(flush/s: cache flushes completed by the device in the phase, any process;");
    println!(" per-flsh: records, or raw writes, per flush; p50/p99: per call)");
}

/// Commit rounds of the `fsync=always` phases: one fdatasync each.
pub fn print_rounds(results: &[Measurement]) {
    let timed: Vec<(&Measurement, IoTotals)> = results
        .iter()
        .filter_map(|m| Some((m, m.io?)))
        .filter(|(_, io)| io.data_syncs > 0)
        .collect();
    if timed.is_empty() {
        return;
    }
    println!(
        "\n{:<40} {:>9} {:>9} {:>8} {:>9} {:>10} {:>8} {:>10}",
        "commit rounds (fsync=always)",
        "rounds/s",
        "rec/round",
        "KB/round",
        "write us",
        "fdatasync",
        "I/O busy",
        "no-idle MB/s"
    );
    println!("{}", "-".repeat(110));
    for (m, io) in timed {
        let rounds = io.data_syncs as f64;
        println!(
            "{:<40} {:>9.0} {:>9.1} {:>8.1} {:>9.1} {:>7.1} us {:>7.0}% {:>10.1}",
            m.label,
            rounds / m.seconds(),
            m.records.unwrap_or(0) as f64 / rounds,
            io.write_bytes as f64 / rounds / 1e3,
            io.write_ns as f64 / rounds / 1e3,
            io.data_sync_ns as f64 / rounds / 1e3,
            io.busy_ns() as f64 / 1e9 / m.seconds() * 100.0,
            m.bytes as f64 / 1e6 / (io.busy_ns() as f64 / 1e9).max(1e-9),
        );
    }
    println!("(write us, fdatasync: mean per round; I/O busy: share of the wall time spent in");
    println!(" writes and syncs; no-idle MB/s: payload rate if rounds ran back to back)");
}

/// A figure and the bar it must reach.
#[derive(Debug)]
pub struct Target {
    pub label: &'static str,
    pub measured: f64,
    pub required: f64,
    pub unit: &'static str,
}

impl Target {
    pub fn new(label: &'static str, measured: f64, required: f64, unit: &'static str) -> Self {
        Target {
            label,
            measured,
            required,
            unit,
        }
    }

    pub fn met(&self) -> bool {
        self.measured >= self.required
    }
}

/// `1.28M rec/s`, `72.2 MB/s`.
fn amount(value: f64, unit: &str) -> String {
    if value >= 1e6 {
        format!("{:.2}M {unit}", value / 1e6)
    } else if value >= 1e4 {
        format!("{:.1}k {unit}", value / 1e3)
    } else {
        format!("{value:.1} {unit}")
    }
}

pub fn print_targets(targets: &[Target]) {
    println!(
        "\n{:<50} {:>16} {:>18} {:>8}",
        "target", "measured", "required", "result"
    );
    println!("{}", "-".repeat(95));
    for t in targets {
        println!(
            "{:<50} {:>16} {:>18} {:>8}",
            t.label,
            amount(t.measured, t.unit),
            format!(">= {}", amount(t.required, t.unit)),
            if t.met() { "MET" } else { "NOT MET" },
        );
    }
}

fn measurement_json(m: &Measurement, common: &[(&'static str, Json)]) -> String {
    let mut fields = common.to_vec();
    fields.push(("kind", Json::Str("result".into())));
    fields.push(("id", Json::Str(m.id.clone())));
    fields.extend(m.config.iter().cloned());
    let opt = |v: Option<f64>| v.map_or(Json::Null, Json::Num);
    fields.extend([
        ("records", m.records.map_or(Json::Null, Json::Int)),
        ("calls", m.calls.map_or(Json::Null, Json::Int)),
        ("bytes", Json::Int(m.bytes)),
        ("elapsed_s", Json::Num(m.seconds())),
        ("records_per_s", opt(m.records.map(|_| m.records_per_s()))),
        ("mb_per_s", Json::Num(m.mb_per_s())),
        ("calls_per_s", opt(m.calls_per_s())),
        (
            "device_flushes",
            m.disk.map_or(Json::Null, |d| Json::Int(d.flushes)),
        ),
        (
            "device_writes",
            m.disk.map_or(Json::Null, |d| Json::Int(d.writes)),
        ),
        ("latency_us_p50", opt(m.latency.map(|l| l.p50_us))),
        ("latency_us_p99", opt(m.latency.map(|l| l.p99_us))),
        ("latency_us_max", opt(m.latency.map(|l| l.max_us))),
    ]);
    if let Some(io) = m.io {
        fields.extend([
            ("commit_rounds", Json::Int(io.data_syncs)),
            ("write_calls", Json::Int(io.writes)),
            ("write_bytes", Json::Int(io.write_bytes)),
            ("write_s", Json::Num(io.write_ns as f64 / 1e9)),
            ("fdatasync_s", Json::Num(io.data_sync_ns as f64 / 1e9)),
            ("other_syncs", Json::Int(io.other_syncs)),
            ("other_sync_s", Json::Num(io.other_sync_ns as f64 / 1e9)),
        ]);
    }
    json_line(&fields)
}

pub fn write_json(
    path: &Path,
    machine: &Machine,
    plan: &Plan,
    results: &[Measurement],
    targets: &[Target],
) {
    let run_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let common = [
        ("bench", Json::Str("log_throughput".into())),
        ("run_unix_ms", Json::Int(run_unix_ms)),
        ("quick", Json::Bool(plan.quick)),
    ];
    let mut lines = Vec::new();
    let mut facts = common.to_vec();
    facts.extend([
        ("kind", Json::Str("machine".into())),
        ("cpus", Json::Int(machine.cpus as u64)),
        ("cpu_model", Json::Str(machine.cpu_model.clone())),
        ("ram_bytes", Json::Int(machine.ram_bytes)),
        ("kernel", Json::Str(machine.kernel.clone())),
        ("fs_type", Json::Str(machine.fs_type.clone())),
        ("fs_source", Json::Str(machine.source.clone())),
        ("write_cache", Json::Str(machine.write_cache.clone())),
    ]);
    lines.push(json_line(&facts));
    lines.extend(results.iter().map(|m| measurement_json(m, &common)));
    for t in targets {
        let mut fields = common.to_vec();
        fields.extend([
            ("kind", Json::Str("target".into())),
            ("target", Json::Str(t.label.into())),
            ("measured", Json::Num(t.measured)),
            ("required", Json::Num(t.required)),
            ("unit", Json::Str(t.unit.into())),
            ("met", Json::Bool(t.met())),
        ]);
        lines.push(json_line(&fields));
    }
    let text = lines.join("\n") + "\n";
    if let Err(error) = std::fs::write(path, text) {
        eprintln!("could not write {}: {error}", path.display());
    }
}
