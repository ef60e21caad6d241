//! How much the realtime bench does: the sizes for a full run, smaller ones for a
//! quick smoke run (`STRAND_BENCH_QUICK=1`, or when not started by `cargo bench`), and which
//! cases run (`STRAND_BENCH_ONLY`).

use std::path::PathBuf;
use std::time::Duration;

use crate::latency::LatencyPlan;

/// Worker threads of the client's tokio runtime (the machine has 2 cores).
pub const CLIENT_THREADS: usize = 2;

pub struct Plan {
    pub quick: bool,
    /// Only cases whose key contains this run.
    pub only: String,
    pub latency_subscribers: Vec<usize>,
    pub latency: LatencyPlan,
    pub memory_subscriptions: Vec<usize>,
    /// Fresh servers per memory case; the median is reported (one reading moves by a few MB
    /// when the server starts or ends threads).
    pub memory_reps: usize,
    pub fanout_subscriptions: usize,
    pub fanout_writes: usize,
    pub ready_rows: usize,
    pub ready_reps: usize,
    /// Rows of the snapshot table, which is also the large side of resume.
    pub big_rows: usize,
    pub snapshot_runs: usize,
    pub resume_small_rows: usize,
    pub resume_reps: usize,
    /// Rows of the table of the point-subscriptions workload.
    pub point_rows: usize,
}

impl Plan {
    fn full() -> Plan {
        Plan {
            quick: false,
            only: String::new(),
            latency_subscribers: vec![1_000, 10_000],
            latency: LatencyPlan {
                rate_per_s: 1000.0,
                warm_up: Duration::from_secs(1),
                measure: Duration::from_secs(5),
            },
            memory_subscriptions: vec![10_000, 100_000],
            memory_reps: 3,
            fanout_subscriptions: 100_000,
            fanout_writes: 5,
            ready_rows: 1000,
            ready_reps: 200,
            big_rows: 1_000_000,
            snapshot_runs: 3,
            resume_small_rows: 10_000,
            resume_reps: 15,
            point_rows: 200_000,
        }
    }

    fn quick() -> Plan {
        Plan {
            quick: true,
            only: String::new(),
            latency_subscribers: vec![100, 1_000],
            latency: LatencyPlan {
                rate_per_s: 1000.0,
                warm_up: Duration::from_millis(300),
                measure: Duration::from_millis(1500),
            },
            // Not 1,000: what they hold (about 1 MB) is within what a reading moves by.
            memory_subscriptions: vec![10_000],
            memory_reps: 1,
            fanout_subscriptions: 10_000,
            fanout_writes: 3,
            ready_rows: 1000,
            ready_reps: 50,
            big_rows: 100_000,
            snapshot_runs: 1,
            resume_small_rows: 1_000,
            resume_reps: 4,
            point_rows: 50_000,
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

    pub fn wants_any<S: AsRef<str>>(&self, keys: &[S]) -> bool {
        keys.iter().any(|key| self.wants(key.as_ref()))
    }

    pub fn latency_keys(&self) -> Vec<String> {
        self.latency_subscribers
            .iter()
            .map(|n| format!("latency_{n}"))
            .collect()
    }
}

/// `STRAND_BENCH_DIR`, else `<target>/strand-bench`.
pub fn scratch_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("STRAND_BENCH_DIR") {
        return PathBuf::from(dir);
    }
    // The binary is `<target>/<profile>/deps/realtime-<hash>`.
    let exe = std::env::current_exe().expect("path of the bench binary");
    match exe.ancestors().nth(3) {
        Some(target) if target.file_name().is_some() => target.join("strand-bench"),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/strand-bench"),
    }
}
