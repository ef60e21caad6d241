//! Full scans: fill a partition with `fsync=never` (batches of 1000), then read every record
//! with `ReadFrom::Earliest`, touching a byte of each key and payload. Two reads: a snapshot of
//! the partition that wrote the records, and one after reopening it (sealed segments then map
//! lazily and load their index files). Both read from a warm page cache.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use strand_log::{FsyncPolicy, NewRecord, Partition, PartitionConfig, ReadFrom};

use crate::machine::DiskProbe;
use crate::report::{Json, Latency, Measurement};

const PAYLOAD_BYTES: usize = 100;
const FILL_BATCH_RECORDS: usize = 1000;

fn config() -> PartitionConfig {
    PartitionConfig {
        fsync: FsyncPolicy::Never,
        ..PartitionConfig::default()
    }
}

fn fill(partition: &Arc<Partition>, records: u64, device: Option<&str>) -> Measurement {
    let mut keys = vec![[0u8; 8]; FILL_BATCH_RECORDS];
    let mut payloads = vec![[0u8; PAYLOAD_BYTES]; FILL_BATCH_RECORDS];
    let mut latencies_ns = Vec::new();
    let mut written = 0u64;
    let probe = DiskProbe::start(device);
    let start = Instant::now();
    while written < records {
        let count = (records - written).min(FILL_BATCH_RECORDS as u64) as usize;
        for (i, (key, payload)) in keys.iter_mut().zip(&mut payloads).enumerate().take(count) {
            let n = written + i as u64;
            *key = n.to_le_bytes();
            payload[0] = n as u8;
            payload[PAYLOAD_BYTES - 1] = (n >> 8) as u8;
        }
        let batch: Vec<NewRecord<'_>> = keys[..count]
            .iter()
            .zip(&payloads[..count])
            .map(|(key, payload)| NewRecord::new(key, payload))
            .collect();
        let call = Instant::now();
        partition.append(&batch).expect("append while filling");
        latencies_ns.push(call.elapsed().as_nanos() as u64);
        written += count as u64;
    }
    let elapsed = start.elapsed();
    Measurement {
        id: format!("append_never_{PAYLOAD_BYTES}B_w1_b{FILL_BATCH_RECORDS}"),
        label: format!("append never {PAYLOAD_BYTES}B 1w x{FILL_BATCH_RECORDS}/call (fill)"),
        config: vec![
            ("phase", Json::Str("append".into())),
            ("fsync", Json::Str("never".into())),
            ("payload_bytes", Json::Int(PAYLOAD_BYTES as u64)),
            ("key_bytes", Json::Int(8)),
            ("writers", Json::Int(1)),
            ("records_per_call", Json::Int(FILL_BATCH_RECORDS as u64)),
        ],
        records: Some(written),
        calls: Some(latencies_ns.len() as u64),
        bytes: written * PAYLOAD_BYTES as u64,
        elapsed,
        disk: probe.finish(),
        latency: Latency::of(latencies_ns),
        io: None,
    }
}

fn scan(partition: &Partition, expected: u64, id: &str, label: &str) -> Measurement {
    let start = Instant::now();
    let snapshot = partition.snapshot();
    let mut records = 0u64;
    let mut bytes = 0u64;
    let mut touched = 0u64;
    for record in snapshot.records(ReadFrom::Earliest) {
        let record = record.expect("scan a record");
        touched += u64::from(record.key[0]) + u64::from(record.payload[PAYLOAD_BYTES - 1]);
        bytes += record.payload.len() as u64;
        records += 1;
    }
    let elapsed = start.elapsed();
    black_box(touched);
    assert_eq!(records, expected, "the scan saw every record written");
    Measurement {
        id: id.into(),
        label: label.into(),
        config: vec![
            ("phase", Json::Str("scan".into())),
            ("payload_bytes", Json::Int(PAYLOAD_BYTES as u64)),
            ("key_bytes", Json::Int(8)),
        ],
        records: Some(records),
        calls: None,
        bytes,
        elapsed,
        disk: None,
        latency: None,
        io: None,
    }
}

pub fn run(scratch: &Path, records: u64, device: Option<&str>) -> Vec<Measurement> {
    let dir = scratch.join("scan");
    let partition = Partition::open(&dir, config()).expect("open the scan partition");
    let filled = fill(&partition, records, device);
    let after_write = scan(
        &partition,
        records,
        "scan_snapshot_after_write",
        &format!(
            "scan {PAYLOAD_BYTES}B Earliest ({}M rec)",
            records as f64 / 1e6
        ),
    );
    drop(partition);
    let reopen_start = Instant::now();
    let partition = Partition::open(&dir, config()).expect("reopen the scan partition");
    let reopen_ms = reopen_start.elapsed().as_secs_f64() * 1e3;
    let mut reopened = scan(
        &partition,
        records,
        "scan_after_reopen",
        &format!("scan {PAYLOAD_BYTES}B Earliest after reopen"),
    );
    reopened.config.push(("reopen_ms", Json::Num(reopen_ms)));
    drop(partition);
    let _ = std::fs::remove_dir_all(&dir);
    vec![filled, after_write, reopened]
}
