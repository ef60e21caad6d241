//! Append phases: `writers` threads append to one partition for a fixed time, each call
//! carrying `records_per_call` records. With `fsync=always` and many writers this is the
//! group-commit case: one write and one fdatasync per round serve every waiting writer.

use std::path::Path;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use strand_log::{FsyncPolicy, NewRecord, Partition, PartitionConfig};

use crate::machine::DiskProbe;
use crate::report::{Json, Latency, Measurement};
use crate::timed_storage::TimedStorage;
use crate::Plan;

#[derive(Clone, Copy, Debug)]
pub struct AppendCase {
    pub fsync: FsyncPolicy,
    pub payload_bytes: usize,
    pub writers: usize,
    pub records_per_call: usize,
    /// What-if: grow segment files with written zeros (see `timed_storage.rs`).
    pub zero_fill_growth: bool,
}

impl AppendCase {
    fn fsync_name(&self) -> &'static str {
        match self.fsync {
            FsyncPolicy::Always => "always",
            FsyncPolicy::Interval(_) => "interval",
            FsyncPolicy::Never => "never",
        }
    }

    pub fn id(&self) -> String {
        let id = format!(
            "append_{}_{}B_w{}_b{}",
            self.fsync_name(),
            self.payload_bytes,
            self.writers,
            self.records_per_call
        );
        match self.zero_fill_growth {
            true => format!("whatif_{id}_zero_filled"),
            false => id,
        }
    }

    fn label(&self) -> String {
        let (fsync, payload, writers) = (self.fsync_name(), self.payload_bytes, self.writers);
        if self.zero_fill_growth {
            return format!("what-if zero-fill {fsync} {payload}B {writers}w");
        }
        format!(
            "append {fsync} {payload}B {writers}w x{}/call",
            self.records_per_call
        )
    }

    /// Per-call latency is recorded only where a call is slow enough that reading the clock
    /// twice per call does not change the result.
    fn records_latency(&self) -> bool {
        self.fsync == FsyncPolicy::Always || self.records_per_call > 1
    }
}

#[derive(Debug, Default)]
struct WriterOutcome {
    records: u64,
    calls: u64,
    latencies_ns: Vec<u64>,
}

fn writer_loop(
    partition: &std::sync::Arc<Partition>,
    case: &AppendCase,
    writer: usize,
    duration: Duration,
    barrier: &Barrier,
) -> WriterOutcome {
    let key = (writer as u64).to_le_bytes();
    let payload = vec![writer as u8 ^ 0x5a; case.payload_bytes];
    let batch = vec![NewRecord::new(&key, &payload); case.records_per_call];
    let timed = case.records_latency();
    // Untimed calls read the clock once per this many calls.
    let clock_every = if timed { 1 } else { 64 };
    let mut outcome = WriterOutcome::default();
    barrier.wait();
    let deadline = Instant::now() + duration;
    loop {
        let call = Instant::now();
        if call >= deadline {
            break;
        }
        for _ in 0..clock_every {
            partition.append(&batch).expect("append");
            outcome.calls += 1;
        }
        if timed {
            outcome.latencies_ns.push(call.elapsed().as_nanos() as u64);
        }
    }
    outcome.records = outcome.calls * case.records_per_call as u64;
    outcome
}

pub fn run(scratch: &Path, case: &AppendCase, plan: &Plan, device: Option<&str>) -> Measurement {
    let dir = scratch.join(case.id());
    // Durable phases go through a timing wrapper to count commit rounds; the fast `never`
    // phases use plain files so the wrapper's clock reads cost nothing there.
    let timed = TimedStorage {
        zero_fill_growth: case.zero_fill_growth,
        ..TimedStorage::default()
    };
    let mut config = PartitionConfig {
        fsync: case.fsync,
        ..PartitionConfig::default()
    };
    if case.fsync == FsyncPolicy::Always {
        config.storage = std::sync::Arc::new(timed.clone());
    }
    let partition = Partition::open(&dir, config).expect("open the bench partition");
    let duration = match case.fsync {
        FsyncPolicy::Always => plan.always_duration,
        _ => plan.never_duration,
    };
    let barrier = Barrier::new(case.writers + 1);
    let probe = DiskProbe::start(device);
    let io_before = timed.times.totals();
    let (outcomes, elapsed) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..case.writers)
            .map(|writer| {
                let (partition, barrier) = (&partition, &barrier);
                scope.spawn(move || writer_loop(partition, case, writer, duration, barrier))
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let outcomes: Vec<WriterOutcome> = handles
            .into_iter()
            .map(|h| h.join().expect("writer thread"))
            .collect();
        (outcomes, start.elapsed())
    });
    let disk = probe.finish();
    let io = timed.times.totals().since(io_before);
    drop(partition);
    let _ = std::fs::remove_dir_all(&dir);
    let records: u64 = outcomes.iter().map(|o| o.records).sum();
    let latencies_ns: Vec<u64> = outcomes.into_iter().flat_map(|o| o.latencies_ns).collect();
    Measurement {
        id: case.id(),
        label: case.label(),
        config: vec![
            ("phase", Json::Str("append".into())),
            ("fsync", Json::Str(case.fsync_name().into())),
            ("payload_bytes", Json::Int(case.payload_bytes as u64)),
            ("key_bytes", Json::Int(8)),
            ("writers", Json::Int(case.writers as u64)),
            ("records_per_call", Json::Int(case.records_per_call as u64)),
            ("zero_fill_growth", Json::Bool(case.zero_fill_growth)),
        ],
        records: Some(records),
        calls: Some(records / case.records_per_call as u64),
        bytes: records * case.payload_bytes as u64,
        elapsed,
        disk,
        latency: Latency::of(latencies_ns),
        io: (case.fsync == FsyncPolicy::Always).then_some(io),
    }
}
