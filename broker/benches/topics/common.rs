//! What both systems' workloads share: the counters producer tasks update, the driver that
//! runs them for a warm-up and a counted window, CPU time of a process, record values, and
//! the results as rows.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::report::Stats;

/// A task of a workload: a producer loop (its per-request latencies, ns) or a consumer (the
/// records it read).
pub type Task<T> = Pin<Box<dyn Future<Output = anyhow::Result<T>> + Send>>;

/// What the driver and the producer tasks share.
#[derive(Default)]
pub struct Gauge {
    /// Producers end their loop when set.
    pub stop: AtomicBool,
    /// Set during the counted window: producers keep their request latencies then.
    pub measuring: AtomicBool,
    /// Records acknowledged so far, all producers.
    pub acked: AtomicU64,
}

impl Gauge {
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    pub fn measuring(&self) -> bool {
        self.measuring.load(Ordering::Relaxed)
    }

    pub fn add(&self, records: u64) {
        self.acked.fetch_add(records, Ordering::Relaxed);
    }
}

/// A produce run's figures.
pub struct Throughput {
    pub records: u64,
    pub elapsed: Duration,
    /// Per request (Strand: one produce of a batch; JetStream: a window of publishes until
    /// its last ack).
    pub request: Option<Stats>,
    pub cpu: CpuUse,
}

impl Throughput {
    pub fn per_s(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// CPU time (ns) of the server, of this process and of the whole machine, and the wall
/// clock, at one moment.
struct CpuMark {
    at: Instant,
    server_ns: u64,
    client_ns: u64,
    machine_ns: u64,
    udp_drops: u64,
}

/// CPU use over a window, in percent of one core.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuUse {
    pub server: f64,
    pub client: f64,
    /// Everything else that ran on the machine meanwhile (other processes, kernel threads
    /// such as writeback; interrupts): a run with much of it was disturbed.
    pub other: f64,
    /// UDP datagrams the kernel dropped meanwhile because a socket's receive buffer was full
    /// (`RcvbufErrors` of `/proc/net/snmp`, machine-wide): QUIC sees them as losses.
    pub udp_drops: u64,
}

impl CpuMark {
    fn now(server_pid: u32) -> CpuMark {
        CpuMark {
            at: Instant::now(),
            server_ns: process_cpu_ns(server_pid),
            client_ns: own_cpu_ns(),
            machine_ns: machine_busy_ns(),
            udp_drops: udp_receive_buffer_drops(),
        }
    }

    fn use_since(&self, server_pid: u32) -> CpuUse {
        let wall = self.at.elapsed().as_nanos().max(1) as f64;
        let server = process_cpu_ns(server_pid).saturating_sub(self.server_ns);
        let client = own_cpu_ns().saturating_sub(self.client_ns);
        let machine = machine_busy_ns().saturating_sub(self.machine_ns);
        let percent = |ns: u64| 100.0 * ns as f64 / wall;
        CpuUse {
            server: percent(server),
            client: percent(client),
            other: percent(machine.saturating_sub(server + client)),
            udp_drops: udp_receive_buffer_drops().saturating_sub(self.udp_drops),
        }
    }
}

/// `RcvbufErrors` of the `Udp:` lines of `/proc/net/snmp` (0 when unreadable).
fn udp_receive_buffer_drops() -> u64 {
    let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut lines = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return 0;
    };
    let column = names.split_whitespace().position(|n| n == "RcvbufErrors");
    column
        .and_then(|c| values.split_whitespace().nth(c)?.parse().ok())
        .unwrap_or(0)
}

/// Busy time of all CPUs since boot (`/proc/stat`: everything but idle and iowait), in ns
/// (counted in 10 ms ticks, so short windows are coarse).
fn machine_busy_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().next() else {
        return 0;
    };
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
    total.saturating_sub(idle) * 10_000_000
}

/// Runs producer `tasks` (already connected) for `warm_up`, counts the records acknowledged
/// in the next `measure`, then stops them and collects their request latencies.
pub async fn drive_producers(
    tasks: Vec<Task<Vec<u64>>>,
    gauge: Arc<Gauge>,
    warm_up: Duration,
    measure: Duration,
    server_pid: u32,
) -> anyhow::Result<Throughput> {
    let handles: Vec<_> = tasks.into_iter().map(tokio::spawn).collect();
    tokio::time::sleep(warm_up).await;
    let before = gauge.acked.load(Ordering::Relaxed);
    let mark = CpuMark::now(server_pid);
    gauge.measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(measure).await;
    let after = gauge.acked.load(Ordering::Relaxed);
    let elapsed = mark.at.elapsed();
    let cpu = mark.use_since(server_pid);
    gauge.measuring.store(false, Ordering::Relaxed);
    gauge.stop.store(true, Ordering::Relaxed);
    let mut samples = Vec::new();
    for handle in handles {
        let joined = tokio::time::timeout(Duration::from_secs(60), handle)
            .await
            .context("a producer did not stop within 60 s")?;
        samples.extend(joined.context("a producer task panicked")??);
    }
    Ok(Throughput {
        records: after - before,
        elapsed,
        request: Stats::of(samples),
        cpu,
    })
}

/// A consume run's figures.
pub struct ConsumeRun {
    pub records: u64,
    pub elapsed: Duration,
    pub cpu: CpuUse,
}

impl ConsumeRun {
    pub fn per_s(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Runs consumer `tasks` (already connected) to their end; the clock runs from their start to
/// the last one's end.
pub async fn drive_consumers(tasks: Vec<Task<u64>>, server_pid: u32) -> anyhow::Result<ConsumeRun> {
    let mark = CpuMark::now(server_pid);
    let handles: Vec<_> = tasks.into_iter().map(tokio::spawn).collect();
    let mut records = 0;
    for handle in handles {
        let joined = tokio::time::timeout(Duration::from_secs(300), handle)
            .await
            .context("a consumer did not finish within 300 s")?;
        records += joined.context("a consumer task panicked")??;
    }
    let elapsed = mark.at.elapsed();
    let cpu = mark.use_since(server_pid);
    Ok(ConsumeRun {
        records,
        elapsed,
        cpu,
    })
}

/// The sum over a process's threads of the first field of `/proc/<pid>/task/<tid>/schedstat`
/// (time on a CPU, ns). Threads that ended are not counted.
pub fn process_cpu_ns(pid: u32) -> u64 {
    tasks_cpu_ns(&format!("/proc/{pid}/task"))
}

pub fn own_cpu_ns() -> u64 {
    tasks_cpu_ns("/proc/self/task")
}

fn tasks_cpu_ns(dir: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir(dir) else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|text| text.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// A value of `bytes` bytes: varied (not all zeros), different per producer.
pub fn value(bytes: usize, producer: usize, n: usize) -> Vec<u8> {
    (0..bytes)
        .map(|i| (i.wrapping_mul(31) ^ producer.wrapping_mul(7) ^ n) as u8)
        .collect()
}

/// A latency record's value: the send time (ns since `base`) in its first 8 bytes.
pub fn stamped_value(bytes: usize, sent_ns: u64) -> Vec<u8> {
    let mut value = vec![0x5a; bytes.max(8)];
    value[..8].copy_from_slice(&sent_ns.to_le_bytes());
    value
}

pub fn stamp_of(value: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = value.get(..8)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// The produce-to-consume latencies of a latency run.
pub struct LatencyRun {
    /// Per record, of the records sent after the warm-up.
    pub stats: Stats,
    /// Records received (all, warm-up included) and sent.
    pub received: usize,
    pub sent: usize,
    /// How late the producer fell behind its schedule at most.
    pub max_send_lag: Duration,
    pub cpu: CpuUse,
}

/// Collects the samples of records sent at or after `warm_up_ns`.
pub fn latency_stats(samples: &[(u64, u64)], warm_up_ns: u64) -> anyhow::Result<Stats> {
    let counted: Vec<u64> = samples
        .iter()
        .filter(|(sent, _)| *sent >= warm_up_ns)
        .map(|(_, latency)| *latency)
        .collect();
    Stats::of(counted).context("no latency samples")
}

/// Paces a producer: the time the `i`-th send is due, and how late we are for it.
pub struct Pacer {
    start: tokio::time::Instant,
    interval: Duration,
    pub max_lag: Duration,
}

impl Pacer {
    pub fn new(rate_per_s: u32) -> Pacer {
        Pacer {
            start: tokio::time::Instant::now(),
            interval: Duration::from_secs(1) / rate_per_s.max(1),
            max_lag: Duration::ZERO,
        }
    }

    pub async fn wait_for(&mut self, i: usize) {
        let due = self.start + self.interval * i as u32;
        tokio::time::sleep_until(due).await;
        let lag = tokio::time::Instant::now().saturating_duration_since(due);
        self.max_lag = self.max_lag.max(lag);
    }
}

/// CPU use over a latency run.
pub struct CpuWindow {
    mark: CpuMark,
    server_pid: u32,
}

impl CpuWindow {
    pub fn start(server_pid: u32) -> CpuWindow {
        CpuWindow {
            mark: CpuMark::now(server_pid),
            server_pid,
        }
    }

    pub fn usage(&self) -> CpuUse {
        self.mark.use_since(self.server_pid)
    }
}
