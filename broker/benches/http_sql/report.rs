//! The report: the machine, every measurement, Strand and PostgreSQL side by side, the
//! targets with MET / NOT MET / INCONCLUSIVE, and one JSON line per fact.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::workload::{Latency, Measurement};

/// Facts about the machine and the file system under the scratch directory (best effort).
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub ram_gib: f64,
    pub kernel: String,
    /// `<fs type> (<source> at <mount point>)`.
    pub file_system: String,
    /// The block device under the scratch directory, as named in `/proc/diskstats`.
    pub device: Option<String>,
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

impl Machine {
    pub fn probe(dir: &Path) -> Machine {
        let cpu_model = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or("unknown".into(), |(_, model)| model.trim().to_string());
        let ram_kib: u64 = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|l| l.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        Machine {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model,
            ram_gib: ram_kib as f64 / f64::from(1 << 20),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            file_system: mount_of(dir).map_or("unknown".into(), |m| m.describe()),
            device: mount_of(dir).and_then(|m| device_name(&m.source)),
        }
    }
}

struct Mount {
    source: String,
    point: String,
    fs_type: String,
}

impl Mount {
    fn describe(&self) -> String {
        format!("{} ({} at {})", self.fs_type, self.source, self.point)
    }
}

/// The mount holding `dir` (longest matching mount point).
fn mount_of(dir: &Path) -> Option<Mount> {
    let dir = dir.canonicalize().ok()?;
    read("/proc/self/mounts")
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            Some(Mount {
                source: fields.next()?.to_string(),
                point: fields.next()?.replace("\\040", " "),
                fs_type: fields.next()?.to_string(),
            })
        })
        .filter(|mount| dir.starts_with(&mount.point))
        .max_by_key(|mount| mount.point.len())
}

fn device_name(source: &str) -> Option<String> {
    let resolved = Path::new(source).canonicalize().ok()?;
    let name = resolved.file_name()?.to_str()?.to_string();
    disk_flushes(Some(&name)).map(|_| name)
}

/// Cache flushes `device` has completed since boot (field 19 of `/proc/diskstats`, Linux 5.5+).
pub fn disk_flushes(device: Option<&str>) -> Option<u64> {
    let device = device?;
    read("/proc/diskstats").lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(2) != Some(&device) {
            return None;
        }
        fields.get(18)?.parse().ok()
    })
}

/// A goal of the issue, checked against this run's figures.
pub struct Target {
    pub label: String,
    pub measured: f64,
    pub required: f64,
    pub unit: &'static str,
    /// Met when `measured <= required` (latencies), else when `measured >= required`.
    pub at_most: bool,
    /// Why the comparison cannot be trusted (its baseline was in a slow spell): a figure that
    /// meets the requirement then reads INCONCLUSIVE, not MET.
    pub inconclusive: Option<String>,
}

impl Target {
    /// The figure alone against the requirement.
    pub fn met(&self) -> bool {
        if self.at_most {
            self.measured <= self.required
        } else {
            self.measured >= self.required
        }
    }

    /// `MET`, `NOT MET` or `INCONCLUSIVE` (met, against an unreliable baseline).
    pub fn verdict(&self) -> &'static str {
        match (self.met(), &self.inconclusive) {
            (true, None) => "MET",
            (true, Some(_)) => "INCONCLUSIVE",
            (false, _) => "NOT MET",
        }
    }
}

fn us(value: f64) -> String {
    format!("{value:.0}")
}

/// Every measurement, one line each.
pub fn print_measurements(results: &[Measurement]) {
    println!(
        "{:<9}{:<23}{:<22}{:>3}{:>7}{:>6}{:>9}{:>9}{:>7}{:>7}{:>7}{:>7}{:>8}{:>8}{:>7}",
        "system",
        "durability",
        "workload",
        "cl",
        "reqs",
        "secs",
        "req/s",
        "rows/s",
        "p50",
        "p90",
        "p99",
        "max",
        "srv p50",
        "cpu/req",
        "fl/req"
    );
    println!("{}", "-".repeat(140));
    for m in results {
        let flushes_per_request = m.flushes.map_or("-".into(), |f| {
            format!("{:.2}", f as f64 / m.requests.max(1) as f64)
        });
        let cpu_per_request = m.server_cpu.map_or("-".into(), |cpu| {
            us(cpu.as_secs_f64() * 1e6 / m.requests.max(1) as f64)
        });
        println!(
            "{:<9}{:<23}{:<22}{:>3}{:>7}{:>6.2}{:>9.0}{:>9.0}{:>7}{:>7}{:>7}{:>7}{:>8}{:>8}{:>7}",
            m.system,
            m.durability,
            m.workload.label(),
            m.clients,
            m.requests,
            m.elapsed.as_secs_f64(),
            m.requests_per_s(),
            m.rows_per_s(),
            us(m.latency.p50_us),
            us(m.latency.p90_us),
            us(m.latency.p99_us),
            us(m.latency.max_us),
            m.server.map_or("-".into(), |s| us(s.p50_us)),
            cpu_per_request,
            flushes_per_request,
        );
    }
    println!(
        "(cl: concurrent clients, one connection each; p50..max: microseconds per request as \
         the client\n sees it; srv p50: the server's own took_ms (handler start to result, \
         no HTTP);\n cpu/req: server CPU time per request, all threads; fl/req: disk cache \
         flushes per request,\n any process)"
    );
}

/// Strand beside PostgreSQL for each case both ran.
pub fn print_side_by_side(results: &[Measurement]) {
    println!(
        "{:<46}{:>10}{:>8}{:>8}  |{:>10}{:>8}{:>8}  |{:>7}",
        "case (durable: fsync=always / sync commit on)",
        "strand",
        "p50 us",
        "p99 us",
        "postgres",
        "p50 us",
        "p99 us",
        "ratio"
    );
    println!("{}", "-".repeat(111));
    for strand in results.iter().filter(|m| m.system == "strand") {
        let Some(postgres) = results
            .iter()
            .find(|m| m.system == "postgres" && m.case() == strand.case())
        else {
            continue;
        };
        let unit = strand.rate_unit();
        let durability = if strand.durable { "durable" } else { "relaxed" };
        let case = format!(
            "{}, {} cl, {durability} ({unit})",
            strand.workload.label(),
            strand.clients
        );
        println!(
            "{case:<46}{:>10.0}{:>8}{:>8}  |{:>10.0}{:>8}{:>8}  |{:>7.2}",
            strand.rate(),
            us(strand.latency.p50_us),
            us(strand.latency.p99_us),
            postgres.rate(),
            us(postgres.latency.p50_us),
            us(postgres.latency.p99_us),
            strand.rate() / postgres.rate().max(1e-9),
        );
    }
    println!("(rates are strand's and postgres's; ratio: strand rate / postgres rate)");
}

pub fn print_targets(targets: &[Target], notes: &[String]) {
    println!(
        "{:<62}{:>14}{:>18}{:>14}",
        "target", "measured", "required", "result"
    );
    println!("{}", "-".repeat(108));
    for t in targets {
        let op = if t.at_most { "<=" } else { ">=" };
        let (measured, required) = match t.unit {
            "rows/s" => (
                format!("{:.0}k {}", t.measured / 1e3, t.unit),
                format!("{op} {:.0}k {}", t.required / 1e3, t.unit),
            ),
            _ => (
                format!("{:.0} {}", t.measured, t.unit),
                format!("{op} {:.0} {}", t.required, t.unit),
            ),
        };
        let result = t.verdict();
        println!("{:<62}{measured:>14}{required:>18}{result:>14}", t.label);
        if let Some(reason) = &t.inconclusive {
            println!("  baseline unreliable: {reason}");
        }
    }
    for note in notes {
        println!("{note}");
    }
}

fn measurement_json(m: &Measurement) -> Value {
    let latency =
        |l: &Latency| json!({"p50": l.p50_us, "p90": l.p90_us, "p99": l.p99_us, "max": l.max_us});
    json!({
        "kind": "measurement",
        "id": m.id(),
        "system": m.system,
        "durability": m.durability,
        "workload": m.workload.key(),
        "clients": m.clients,
        "requests": m.requests,
        "rows": m.rows,
        "seconds": m.elapsed.as_secs_f64(),
        "disk_flushes": m.flushes,
        "server_cpu_seconds": m.server_cpu.map(|cpu| cpu.as_secs_f64()),
        "requests_per_s": m.requests_per_s(),
        "rows_per_s": m.rows_per_s(),
        "latency_us": latency(&m.latency),
        "server_latency_us": m.server.as_ref().map(latency),
    })
}

/// One JSON object per line: the run, each measurement, each target.
pub fn write_json(
    path: &Path,
    run: Value,
    results: &[Measurement],
    targets: &[Target],
) -> std::io::Result<()> {
    let run_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let common = json!({"bench": "http_sql", "run_unix_ms": run_unix_ms});
    let with_common = |mut line: Value| {
        if let (Some(line), Some(common)) = (line.as_object_mut(), common.as_object()) {
            line.extend(common.clone());
        }
        line.to_string()
    };
    let mut lines = vec![with_common(run)];
    lines.extend(results.iter().map(|m| with_common(measurement_json(m))));
    for t in targets {
        lines.push(with_common(json!({
            "kind": "target",
            "target": t.label,
            "measured": t.measured,
            "required": t.required,
            "unit": t.unit,
            "met": t.verdict() == "MET",
            "verdict": t.verdict(),
            "baseline_unreliable": t.inconclusive,
        })));
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, lines.join("\n") + "\n")
}
