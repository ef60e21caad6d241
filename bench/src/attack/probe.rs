//! What the bench measures while the attackers run: the latency of one authenticated client's
//! single-row INSERTs (one keep-alive connection, one statement at a time) and the server's
//! resident memory, sampled from `/proc/<pid>/status`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::latency::LatencyHistogram;
use crate::sql::strand::StrandSystem;
use crate::sql::workload::System;

/// How often the memory sampler reads `/proc/<pid>/status`.
const MEMORY_SAMPLE_PERIOD: Duration = Duration::from_millis(100);
/// How many errors of a phase are kept to report.
const ERRORS_KEPT: usize = 3;

/// The INSERT latencies of one phase.
pub struct InsertLatency {
    pub histogram: LatencyHistogram,
    /// INSERTs that got an error (they count in the latencies too: the client waited).
    pub errors: usize,
    /// The first few errors, as the client saw them.
    pub first_errors: Vec<String>,
}

/// `count` single-row INSERTs with ids from `first_id`, one at a time, due every `interval`
/// (a client that writes steadily, not a saturating one: the question is how long one write
/// waits, not how many fit). Open loop: each latency runs from the INSERT's due time, so a
/// stall shows for every INSERT due during it.
pub fn insert_latency(
    system: &StrandSystem,
    first_id: i64,
    count: usize,
    interval: Duration,
) -> anyhow::Result<InsertLatency> {
    let mut connection = system.connect().context("open the probe connection")?;
    let mut histogram = LatencyHistogram::new();
    let mut errors = 0;
    let mut first_errors = Vec::new();
    let start = Instant::now();
    for i in 0..count {
        let due = start + interval * i as u32;
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let outcome = connection.insert_row(first_id + i as i64);
        histogram.record(due.elapsed());
        if let Err(error) = outcome {
            errors += 1;
            if first_errors.len() < ERRORS_KEPT {
                first_errors.push(format!("INSERT {i}: {error:#}"));
            }
            // A refused or broken connection: the next INSERT opens a new one, as a client
            // would.
            connection = system.connect().context("reopen the probe connection")?;
        }
    }
    anyhow::ensure!(histogram.count() > 0, "no INSERT was measured");
    Ok(InsertLatency {
        histogram,
        errors,
        first_errors,
    })
}

/// The server's memory: the largest `VmRSS` and `RssAnon` seen since the sampler started.
#[derive(Clone, Copy, Debug, Default)]
pub struct MemoryPeak {
    pub rss_kib: u64,
    pub rss_anon_kib: u64,
    pub samples: u64,
}

/// Samples the server's memory in a thread until [`MemorySampler::finish`].
pub struct MemorySampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<MemoryPeak>,
}

impl MemorySampler {
    pub fn start(pid: u32) -> MemorySampler {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut peak = MemoryPeak::default();
            while !stopping.load(Ordering::Relaxed) {
                if let Some((rss, anon)) = memory_kib(pid) {
                    peak.rss_kib = peak.rss_kib.max(rss);
                    peak.rss_anon_kib = peak.rss_anon_kib.max(anon);
                    peak.samples += 1;
                }
                std::thread::sleep(MEMORY_SAMPLE_PERIOD);
            }
            peak
        });
        MemorySampler { stop, thread }
    }

    pub fn finish(self) -> MemoryPeak {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

/// `VmRSS` and `RssAnon` of a process, in KiB.
pub fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("RssAnon:")?))
}

/// Open file descriptors of a process (`/proc/<pid>/fd` entries).
pub fn open_fds(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}
