//! Compaction's cost on writes: `writers` threads append keyed records (100-byte payloads over
//! a few thousand keys, so nearly all history is superseded) to one partition for a fixed
//! time, once alone and once while another thread compacts the same partition in a loop, back
//! to back. The partition starts with a history to compact and uses 1 MiB segments, so the
//! writers keep sealing segments that the next compaction rewrites. The difference in
//! appended records per second is what a running compaction costs the writers of its
//! partition; the loop without pause is the worst case (the broker compacts a partition
//! every few minutes at most).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Instant;

use strand_log::{CompactionPolicy, FsyncPolicy, NewRecord, Partition, PartitionConfig};

use crate::machine::DiskProbe;
use crate::report::{Json, Latency, Measurement};
use crate::Plan;

const KEYS: u64 = 4096;
const PAYLOAD_BYTES: usize = 100;
const SEGMENT_BYTES: u64 = 1024 * 1024;

#[derive(Clone, Copy, Debug)]
pub struct CompactionCase {
    pub fsync: FsyncPolicy,
    pub writers: usize,
    /// Whether a thread compacts the partition in a loop while the writers append.
    pub compacting: bool,
}

impl CompactionCase {
    fn fsync_name(&self) -> &'static str {
        match self.fsync {
            FsyncPolicy::Always => "always",
            FsyncPolicy::Interval(_) => "interval",
            FsyncPolicy::Never => "never",
        }
    }

    pub fn id(&self) -> String {
        let during = if self.compacting { "on" } else { "off" };
        format!(
            "compaction_{during}_{}_w{}",
            self.fsync_name(),
            self.writers
        )
    }

    fn label(&self) -> String {
        let during = if self.compacting {
            "compacting"
        } else {
            "alone"
        };
        format!("keyed {} {}w, {during}", self.fsync_name(), self.writers)
    }
}

/// What the compacting thread did.
#[derive(Debug, Default)]
struct Compactions {
    runs: u64,
    records_removed: u64,
}

fn key(n: u64) -> [u8; 8] {
    (n % KEYS).to_le_bytes()
}

/// A history of `bytes` of keyed records, written without fsync (it is not what is measured).
fn prefill(dir: &Path, bytes: u64) {
    let config = PartitionConfig {
        segment_bytes_max: SEGMENT_BYTES,
        fsync: FsyncPolicy::Never,
        ..PartitionConfig::default()
    };
    let partition = Partition::open(dir, config).expect("open the bench partition");
    let payload = [0x5a; PAYLOAD_BYTES];
    let records = bytes / (PAYLOAD_BYTES as u64 + 48);
    let keys: Vec<[u8; 8]> = (0..records).map(key).collect();
    for chunk in keys.chunks(256) {
        let batch: Vec<NewRecord<'_>> = chunk.iter().map(|k| NewRecord::new(k, &payload)).collect();
        partition.append(&batch).expect("prefill");
    }
    partition.sync().expect("sync the prefill");
}

fn writer_loop(partition: &Arc<Partition>, writer: usize, deadline: Instant) -> (u64, Vec<u64>) {
    let payload = [writer as u8; PAYLOAD_BYTES];
    let mut latencies_ns = Vec::new();
    let mut n = writer as u64 * 7919;
    while Instant::now() < deadline {
        let call = Instant::now();
        let k = key(n);
        partition
            .append(&[NewRecord::new(&k, &payload)])
            .expect("append");
        latencies_ns.push(call.elapsed().as_nanos() as u64);
        n += 1;
    }
    (latencies_ns.len() as u64, latencies_ns)
}

fn compactor_loop(partition: &Partition, stop: &AtomicBool) -> Compactions {
    let policy = CompactionPolicy::default();
    let mut done = Compactions::default();
    while !stop.load(Ordering::Acquire) {
        let now_unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let outcome = partition.compact(&policy, now_unix_ms).expect("compact");
        done.runs += 1;
        done.records_removed += outcome.records_removed;
    }
    done
}

pub fn run(
    scratch: &Path,
    case: &CompactionCase,
    plan: &Plan,
    device: Option<&str>,
) -> Measurement {
    let dir = scratch.join(case.id());
    prefill(&dir, plan.compaction_prefill_bytes);
    let config = PartitionConfig {
        segment_bytes_max: SEGMENT_BYTES,
        fsync: case.fsync,
        ..PartitionConfig::default()
    };
    let partition = Arc::new(Partition::open(&dir, config).expect("open the bench partition"));
    let duration = plan.compaction_duration;
    let barrier = Barrier::new(case.writers + 1);
    let stop = AtomicBool::new(false);
    let probe = DiskProbe::start(device);
    let (outcomes, compactions, elapsed) = std::thread::scope(|scope| {
        let compactor = case
            .compacting
            .then(|| scope.spawn(|| compactor_loop(&partition, &stop)));
        let writers: Vec<_> = (0..case.writers)
            .map(|writer| {
                let (partition, barrier) = (&partition, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    writer_loop(partition, writer, Instant::now() + duration)
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let outcomes: Vec<(u64, Vec<u64>)> = writers
            .into_iter()
            .map(|w| w.join().expect("writer thread"))
            .collect();
        let elapsed = start.elapsed();
        stop.store(true, Ordering::Release);
        let compactions = compactor.map(|c| c.join().expect("compactor thread"));
        (outcomes, compactions.unwrap_or_default(), elapsed)
    });
    let disk = probe.finish();
    drop(partition);
    let _ = std::fs::remove_dir_all(&dir);
    let records: u64 = outcomes.iter().map(|(r, _)| r).sum();
    let latencies_ns: Vec<u64> = outcomes.into_iter().flat_map(|(_, l)| l).collect();
    Measurement {
        id: case.id(),
        label: case.label(),
        config: vec![
            ("phase", Json::Str("compaction".into())),
            ("fsync", Json::Str(case.fsync_name().into())),
            ("payload_bytes", Json::Int(PAYLOAD_BYTES as u64)),
            ("keys", Json::Int(KEYS)),
            ("writers", Json::Int(case.writers as u64)),
            ("compacting", Json::Bool(case.compacting)),
            ("segment_bytes", Json::Int(SEGMENT_BYTES)),
            ("prefill_bytes", Json::Int(plan.compaction_prefill_bytes)),
            ("compactions", Json::Int(compactions.runs)),
            (
                "compaction_records_removed",
                Json::Int(compactions.records_removed),
            ),
        ],
        records: Some(records),
        calls: Some(records),
        bytes: records * PAYLOAD_BYTES as u64,
        elapsed,
        disk,
        latency: Latency::of(latencies_ns),
        io: None,
    }
}

/// The cases: each fsync policy alone, then with compaction, back to back.
pub fn cases() -> Vec<CompactionCase> {
    let mut cases = Vec::new();
    for (fsync, writers) in [(FsyncPolicy::Always, 8), (FsyncPolicy::Never, 2)] {
        for compacting in [false, true] {
            cases.push(CompactionCase {
                fsync,
                writers,
                compacting,
            });
        }
    }
    cases
}

/// Appends per second while compacting, next to alone, for each pair measured.
pub fn print_cost(results: &[Measurement]) {
    let pairs: Vec<(&Measurement, &Measurement)> = cases()
        .chunks(2)
        .filter_map(|pair| {
            let find = |id: String| results.iter().find(|m| m.id == id);
            Some((find(pair[0].id())?, find(pair[1].id())?))
        })
        .collect();
    if pairs.is_empty() {
        return;
    }
    println!(
        "\n{:<40} {:>12} {:>12} {:>8}",
        "compaction cost on appends", "alone rec/s", "compacting", "change"
    );
    println!("{}", "-".repeat(76));
    for (alone, compacting) in pairs {
        let (a, c) = (alone.records_per_s(), compacting.records_per_s());
        let change = (c / a.max(1e-9) - 1.0) * 100.0;
        let label = alone.label.trim_end_matches(", alone");
        println!("{label:<40} {a:>12.0} {c:>12.0} {change:>7.1}%");
    }
}
