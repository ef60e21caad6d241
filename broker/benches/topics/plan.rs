//! How much the topics bench does: the cases for a full run, the same cases with
//! shorter windows and less data for a quick smoke run (`STRAND_BENCH_QUICK=1`, or when not
//! started by `cargo bench`), and which cases run (`STRAND_BENCH_ONLY`).

use std::path::PathBuf;
use std::time::Duration;

/// Worker threads of the client's tokio runtime (the machine has 2 cores).
pub const CLIENT_THREADS: usize = 2;
/// Partitions of every throughput topic (JetStream: as many streams).
pub const PARTITIONS: u32 = 8;
/// Records per produce request (JetStream: publishes per window of awaited acks).
pub const BATCH: usize = 1000;
/// `records_max` and `bytes_max` of a consumer's fetch.
pub const FETCH_RECORDS_MAX: u32 = 10_000;
pub const FETCH_BYTES_MAX: u32 = 4 << 20;
/// Consumers of the parallel consume case (one per partition).
pub const CONSUMERS_PARALLEL: usize = PARTITIONS as usize;
/// Value size of the latency workload.
pub const LATENCY_VALUE_BYTES: usize = 100;

pub struct Plan {
    pub quick: bool,
    /// Only cases whose key contains this run.
    pub only: String,
    pub value_sizes: Vec<usize>,
    pub producers: Vec<usize>,
    /// Produce: time before counting, then the counted window.
    pub warm_up: Duration,
    pub measure: Duration,
    /// Records written before the consume cases, per value size: `(bytes, records)`.
    pub consume_records: Vec<(usize, usize)>,
    /// Latency: records per second (one record per produce), warm-up, counted window.
    pub latency_rate: u32,
    pub latency_warm_up: Duration,
    pub latency_measure: Duration,
}

impl Plan {
    fn full() -> Plan {
        Plan {
            quick: false,
            only: String::new(),
            value_sizes: vec![100, 1024],
            producers: vec![1, 4, 16, 64],
            warm_up: Duration::from_millis(700),
            measure: Duration::from_secs(3),
            consume_records: vec![(100, 4_000_000), (1024, 1_000_000)],
            latency_rate: 1000,
            latency_warm_up: Duration::from_millis(500),
            latency_measure: Duration::from_secs(10),
        }
    }

    fn quick() -> Plan {
        Plan {
            quick: true,
            only: String::new(),
            value_sizes: vec![100, 1024],
            producers: vec![1, 16],
            warm_up: Duration::from_millis(200),
            measure: Duration::from_millis(500),
            consume_records: vec![(100, 200_000), (1024, 50_000)],
            latency_rate: 1000,
            latency_warm_up: Duration::from_millis(200),
            latency_measure: Duration::from_millis(1000),
        }
    }

    pub fn from_env() -> Plan {
        let quick_env =
            std::env::var("STRAND_BENCH_QUICK").is_ok_and(|v| v != "0" && !v.is_empty());
        let benching = std::env::args().any(|arg| arg == "--bench");
        let mut plan = match quick_env || !benching {
            true => Plan::quick(),
            false => Plan::full(),
        };
        plan.only = std::env::var("STRAND_BENCH_ONLY").unwrap_or_default();
        plan
    }

    /// Whether the case `key` runs.
    pub fn wants(&self, key: &str) -> bool {
        key.contains(self.only.as_str())
    }
}

/// `STRAND_BENCH_DIR`, else `<target>/strand-bench`.
pub fn scratch_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("STRAND_BENCH_DIR") {
        return PathBuf::from(dir);
    }
    // The binary is `<target>/<profile>/deps/topics-<hash>`.
    let exe = std::env::current_exe().expect("path of the bench binary");
    match exe.ancestors().nth(3) {
        Some(target) if target.file_name().is_some() => target.join("strand-bench"),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/strand-bench"),
    }
}
