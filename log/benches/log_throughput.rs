//! `log_throughput`: what `strand-log` does next to what the disk under it can do, in one run of
//! `cargo bench -p strand-log`. It prints one table and a list of targets with MET / NOT MET,
//! and writes one JSON line per result.
//!
//! Phases: (a) raw sequential writes with an fdatasync after every block, like
//! `dd bs=1M oflag=dsync`, at 1 MiB, 64 KiB, 32 KiB and 4 KiB blocks; (b) appends with
//! `fsync=always` from 1, 8 and 64 writer threads sharing one partition (group commit);
//! (c) appends with `fsync=never` from one writer; (d) a full scan of millions of records;
//! (e) keyed appends alone and while another thread compacts the partition in a loop (what
//! compaction costs the writers).
//! (`log_throughput/timed_storage.rs` can also emulate zero-filled growth for what-if runs; the
//! log itself has grown its active files with written zeros since that what-if showed +15 %.)
//!
//! Environment:
//! - `STRAND_BENCH_DIR`: scratch directory. Default `<target>/strand-bench`, on the same file
//!   system as the build (not `/tmp`, which may be a tmpfs).
//! - `STRAND_BENCH_QUICK=1`: a smoke run of a few seconds that still measures real writes,
//!   fsyncs and scans. It is also what runs without `--bench` (`cargo test --all-targets`).
//! - `STRAND_BENCH_JSON`: file for the JSON lines. Default `<scratch>/log_throughput.jsonl`
//!   (`log_throughput-quick.jsonl` for quick runs, so they do not replace a full run's).
//! - `STRAND_BENCH_ONLY=<text>`: run only phases whose id contains the text (for profiling
//!   one phase, e.g. `append_always_1024B_w64`); targets missing an input are left out.
//!
//! The bench owns no storage logic: it only calls the public API of `strand-log`. Its parts
//! live in `benches/log_throughput/` (a bench root resolves modules beside itself, hence
//! the `#[path]`s).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "log_throughput/append.rs"]
mod append;
#[path = "log_throughput/compaction.rs"]
mod compaction;
#[path = "log_throughput/machine.rs"]
mod machine;
#[path = "log_throughput/raw_disk.rs"]
mod raw_disk;
#[path = "log_throughput/report.rs"]
mod report;
#[path = "log_throughput/scan.rs"]
mod scan;
#[path = "log_throughput/timed_storage.rs"]
mod timed_storage;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use strand_log::FsyncPolicy;

use append::AppendCase;
use machine::Machine;
use report::{Measurement, Target};

/// How long and how big each phase is.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// `STRAND_BENCH_QUICK`: a few-second smoke run.
    pub quick: bool,
    /// Raw writes run until both minimums are reached, or until the maximum time.
    pub raw_bytes_min: u64,
    /// Raw writes run at least this long...
    pub raw_duration_min: Duration,
    /// ...and at most this long.
    pub raw_duration_max: Duration,
    /// Each `fsync=always` append case runs this long.
    pub always_duration: Duration,
    /// Each `fsync=never` append case runs this long.
    pub never_duration: Duration,
    /// Records the scan phase fills and reads.
    pub scan_records: u64,
    /// Each compaction phase (alone, compacting) appends this long.
    pub compaction_duration: Duration,
    /// History written before a compaction phase, for the compactions to work through.
    pub compaction_prefill_bytes: u64,
}

impl Plan {
    fn full() -> Plan {
        Plan {
            quick: false,
            raw_bytes_min: 256 << 20,
            raw_duration_min: Duration::from_secs(1),
            raw_duration_max: Duration::from_secs(2),
            always_duration: Duration::from_millis(2500),
            never_duration: Duration::from_secs(2),
            scan_records: 4_000_000,
            compaction_duration: Duration::from_millis(2500),
            compaction_prefill_bytes: 32 << 20,
        }
    }

    fn quick() -> Plan {
        Plan {
            quick: true,
            raw_bytes_min: 16 << 20,
            raw_duration_min: Duration::from_millis(250),
            raw_duration_max: Duration::from_millis(500),
            always_duration: Duration::from_millis(300),
            never_duration: Duration::from_millis(300),
            scan_records: 200_000,
            compaction_duration: Duration::from_millis(300),
            compaction_prefill_bytes: 2 << 20,
        }
    }

    fn from_env() -> Plan {
        let quick_env =
            std::env::var("STRAND_BENCH_QUICK").is_ok_and(|v| v != "0" && !v.is_empty());
        let benching = std::env::args().any(|arg| arg == "--bench");
        if quick_env || !benching {
            Plan::quick()
        } else {
            Plan::full()
        }
    }
}

fn scratch_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("STRAND_BENCH_DIR") {
        return PathBuf::from(dir);
    }
    // The binary is `<target>/<profile>/deps/log_throughput-<hash>`.
    let exe = std::env::current_exe().expect("path of the bench binary");
    match exe.ancestors().nth(3) {
        Some(target) if target.file_name().is_some() => target.join("strand-bench"),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/strand-bench"),
    }
}

fn main() {
    let plan = Plan::from_env();
    let root = scratch_root();
    std::fs::create_dir_all(&root).expect("create the scratch directory");
    let scratch = tempfile::Builder::new()
        .prefix("run-")
        .tempdir_in(&root)
        .expect("create a scratch directory for this run");
    let machine = Machine::probe(scratch.path());
    machine.print(scratch.path(), plan.quick);
    let started = Instant::now();
    let device = machine.device.as_deref();
    let only = std::env::var("STRAND_BENCH_ONLY").unwrap_or_default();
    let selected = |id: &str| id.contains(only.as_str());
    let mut results = Vec::new();
    for block_bytes in [1 << 20, 64 << 10, 32 << 10, 4 << 10] {
        if selected(&raw_disk::id(block_bytes)) {
            results.push(raw_disk::run(scratch.path(), block_bytes, &plan, device));
        }
    }
    for case in append_cases().iter().filter(|case| selected(&case.id())) {
        results.push(append::run(scratch.path(), case, &plan, device));
    }
    if selected("scan") {
        results.extend(scan::run(scratch.path(), plan.scan_records, device));
    }
    for case in compaction::cases()
        .iter()
        .filter(|case| selected(&case.id()))
    {
        results.push(compaction::run(scratch.path(), case, &plan, device));
    }
    let targets = targets(&results);
    report::print_table(&results);
    report::print_rounds(&results);
    compaction::print_cost(&results);
    report::print_targets(&targets);
    let json_path = std::env::var_os("STRAND_BENCH_JSON")
        .map(PathBuf::from)
        .unwrap_or_else(|| match plan.quick {
            true => root.join("log_throughput-quick.jsonl"),
            false => root.join("log_throughput.jsonl"),
        });
    report::write_json(&json_path, &machine, &plan, &results, &targets);
    println!(
        "\nJSON lines: {}   total time: {:.1} s",
        json_path.display(),
        started.elapsed().as_secs_f64()
    );
}

fn append_cases() -> Vec<AppendCase> {
    let mut cases = Vec::new();
    for payload_bytes in [100, 1024] {
        for writers in [1, 8, 64] {
            cases.push(AppendCase {
                fsync: FsyncPolicy::Always,
                payload_bytes,
                writers,
                records_per_call: 1,
                zero_fill_growth: false,
            });
        }
    }
    for records_per_call in [1, 100] {
        cases.push(AppendCase {
            fsync: FsyncPolicy::Never,
            payload_bytes: 100,
            writers: 1,
            records_per_call,
            zero_fill_growth: false,
        });
    }
    cases
}

fn find<'a>(results: &'a [Measurement], id: &str) -> Option<&'a Measurement> {
    results.iter().find(|m| m.id == id)
}

/// The acceptance targets, computed from this run's measurements.
fn targets(results: &[Measurement]) -> Vec<Target> {
    let mut targets = Vec::new();
    let raw = find(results, "raw_dsync_1MiB").map(Measurement::mb_per_s);
    let always = find(results, "append_always_1024B_w64_b1").map(Measurement::mb_per_s);
    if let (Some(raw), Some(always)) = (raw, always) {
        let label = "always 1KiB 64 writers >= 50% of raw 1MiB dsync";
        targets.push(Target::new(label, always, raw * 0.5, "MB/s"));
    }
    let rates = [
        (
            "append_never_100B_w1_b1",
            "never 100B 1 rec/call >= 1M rec/s",
            1e6,
        ),
        (
            "append_never_100B_w1_b100",
            "never 100B 100 rec/call >= 1M rec/s",
            1e6,
        ),
        (
            "scan_snapshot_after_write",
            "scan 100B Earliest >= 2M rec/s",
            2e6,
        ),
    ];
    for (id, label, required) in rates {
        if let Some(measured) = find(results, id).map(Measurement::records_per_s) {
            targets.push(Target::new(label, measured, required, "rec/s"));
        }
    }
    targets
}
