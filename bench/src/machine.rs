//! The machine a run measured on: CPUs, memory, kernel, the file system under the scratch
//! directory, and what its disk gives a plain program in the same run (append+fdatasync
//! latency, sequential `O_DSYNC` bandwidth), the floor Strand's durable figures are held
//! against.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::latency::{LatencyHistogram, LatencySummary, OpenLoop};

/// Bytes of one append of the fdatasync probe: about one small record with its frame.
const PROBE_RECORD_BYTES: usize = 200;
/// Appends per second of the fdatasync probe (the produce-to-consume rate).
const PROBE_RATE: f64 = 1000.0;
/// Bytes of one write of the bandwidth probe.
const PROBE_BLOCK_BYTES: usize = 1 << 20;

/// Facts about the machine (best effort: unknown fields say so).
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub ram_gib: f64,
    pub kernel: String,
    /// `<fs type> (<source> at <mount point>)` of the scratch directory.
    pub file_system: String,
    /// Measured in this run, when a workload needed it.
    pub disk: Option<DiskProbe>,
}

/// What the disk under the scratch directory gave a plain program in this run.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct DiskProbe {
    /// 200 B append + fdatasync at 1,000/s, open loop.
    pub fdatasync: LatencySummary,
    /// Sequential 1 MiB writes to a file opened with `O_DSYNC`.
    pub odsync_mb_per_s: f64,
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
            disk: None,
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

impl DiskProbe {
    /// Runs both probes in `dir` for about `seconds` each.
    pub fn measure(dir: &Path, seconds: f64) -> anyhow::Result<DiskProbe> {
        let fdatasync = fdatasync_latency(&dir.join("probe-fdatasync"), seconds)?;
        let odsync_mb_per_s = odsync_bandwidth(&dir.join("probe-odsync"), seconds)?;
        Ok(DiskProbe {
            fdatasync,
            odsync_mb_per_s,
        })
    }
}

/// Appends of [`PROBE_RECORD_BYTES`] each followed by `fdatasync`, due at [`PROBE_RATE`] per
/// second (open loop, latency from the due time), to a file that grows as a log does.
fn fdatasync_latency(path: &Path, seconds: f64) -> anyhow::Result<LatencySummary> {
    let mut file = File::create(path)?;
    let record = [0x5au8; PROBE_RECORD_BYTES];
    let mut histogram = LatencyHistogram::new();
    let total = (seconds * PROBE_RATE) as u64;
    let mut schedule = OpenLoop::new(Instant::now(), PROBE_RATE);
    for _ in 0..total {
        let due = schedule.next_due_blocking();
        file.write_all(&record)?;
        file.sync_data()?;
        histogram.record(due.elapsed());
    }
    drop(file);
    let _ = std::fs::remove_file(path);
    histogram
        .summary()
        .ok_or_else(|| anyhow::anyhow!("the fdatasync probe recorded nothing"))
}

/// Sequential writes of [`PROBE_BLOCK_BYTES`] through `O_DSYNC` for `seconds`: MB/s.
fn odsync_bandwidth(path: &Path, seconds: f64) -> anyhow::Result<f64> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .custom_flags(libc::O_DSYNC)
        .open(path)?;
    let block = vec![0xa5u8; PROBE_BLOCK_BYTES];
    let started = Instant::now();
    let mut written = 0u64;
    while started.elapsed() < Duration::from_secs_f64(seconds) {
        file.write_all_at(&block, written)?;
        written += block.len() as u64;
    }
    let elapsed = started.elapsed().as_secs_f64();
    drop(file);
    let _ = std::fs::remove_file(path);
    Ok(written as f64 / elapsed / 1e6)
}
