//! Facts about the machine and the disk under the scratch directory, and the block device's
//! counters (`/proc/diskstats`), so each phase can report how many cache flushes reached the
//! device. Everything here is best effort: a missing file gives "unknown", never a failure.

use std::path::Path;

#[derive(Debug)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub ram_bytes: u64,
    pub kernel: String,
    pub mount_point: String,
    pub fs_type: String,
    pub source: String,
    /// Name in `/proc/diskstats` (e.g. `vda`), when found.
    pub device: Option<String>,
    /// `/sys/block/<dev>/queue/write_cache`: "write back" means fdatasync sends a cache flush.
    pub write_cache: String,
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

impl Machine {
    pub fn probe(dir: &Path) -> Machine {
        let cpuinfo = read("/proc/cpuinfo");
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, model)| model.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let ram_kib = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|l| l.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0);
        let (mount_point, source, fs_type) = mount_of(dir).unwrap_or_default();
        let device = device_name(&source);
        let write_cache = device
            .as_deref()
            .map(|d| read(&format!("/sys/block/{d}/queue/write_cache")))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unknown".into());
        Machine {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model,
            ram_bytes: ram_kib * 1024,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            mount_point,
            fs_type,
            source,
            device,
            write_cache,
        }
    }

    pub fn print(&self, scratch: &Path, quick: bool) {
        println!(
            "strand-log log_throughput{}",
            if quick { " (QUICK smoke run)" } else { "" }
        );
        println!(
            "machine: {} cpus, {}, {:.1} GiB RAM, kernel {}",
            self.cpus,
            self.cpu_model,
            self.ram_bytes as f64 / f64::from(1 << 30),
            self.kernel
        );
        println!(
            "scratch: {} on {} ({} at {}), device {} write cache: {}",
            scratch.display(),
            self.fs_type,
            self.source,
            self.mount_point,
            self.device.as_deref().unwrap_or("unknown"),
            self.write_cache
        );
        if self.fs_type == "tmpfs" || self.fs_type == "ramfs" {
            println!(
                "WARNING: scratch is in memory; fsync figures mean nothing. Set STRAND_BENCH_DIR."
            );
        }
        println!("MB = 10^6 bytes; append and scan MB/s count payload bytes only.\n");
    }
}

/// `(mount point, source, fs type)` of the mount holding `dir`: the longest matching prefix.
fn mount_of(dir: &Path) -> Option<(String, String, String)> {
    let dir = dir.canonicalize().ok()?;
    read("/proc/self/mounts")
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let source = fields.next()?.to_string();
            let mount_point = fields.next()?.replace("\\040", " ");
            let fs_type = fields.next()?.to_string();
            Some((mount_point, source, fs_type))
        })
        .filter(|(mount_point, _, _)| dir.starts_with(mount_point))
        .max_by_key(|(mount_point, _, _)| mount_point.len())
}

fn device_name(source: &str) -> Option<String> {
    let resolved = Path::new(source).canonicalize().ok()?;
    let name = resolved.file_name()?.to_str()?.to_string();
    disk_counters(&name).map(|_| name)
}

/// Cumulative counters of one block device.
#[derive(Clone, Copy, Debug, Default)]
pub struct DiskCounters {
    pub writes: u64,
    pub flushes: u64,
}

impl DiskCounters {
    pub fn since(self, before: DiskCounters) -> DiskCounters {
        DiskCounters {
            writes: self.writes.saturating_sub(before.writes),
            flushes: self.flushes.saturating_sub(before.flushes),
        }
    }
}

/// Fields 8 (writes completed) and 19 (flushes completed, Linux 5.5+) of `/proc/diskstats`.
pub fn disk_counters(device: &str) -> Option<DiskCounters> {
    read("/proc/diskstats").lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(2) != Some(&device) {
            return None;
        }
        Some(DiskCounters {
            writes: fields.get(7)?.parse().ok()?,
            flushes: fields.get(18)?.parse().ok()?,
        })
    })
}

/// Counters around a measured phase; `None` when the device is unknown.
#[derive(Debug)]
pub struct DiskProbe<'a> {
    device: Option<&'a str>,
    before: Option<DiskCounters>,
}

impl<'a> DiskProbe<'a> {
    pub fn start(device: Option<&'a str>) -> DiskProbe<'a> {
        DiskProbe {
            device,
            before: device.and_then(disk_counters),
        }
    }

    pub fn finish(&self) -> Option<DiskCounters> {
        let after = disk_counters(self.device?)?;
        Some(after.since(self.before?))
    }
}
