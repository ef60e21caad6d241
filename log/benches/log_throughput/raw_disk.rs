//! Raw disk bandwidth: sequential writes of one block followed by fdatasync, into a new file,
//! like `dd if=/dev/zero of=F bs=1M oflag=dsync`. This is the ceiling a durable log can reach
//! on this disk. 64 KiB and 32 KiB bracket one group-commit round (64 writers of 1 KiB records
//! put about half of themselves in each round); 4 KiB shows the cost of a lone fdatasync, what
//! one writer of small records pays per append.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use crate::machine::DiskProbe;
use crate::report::{Json, Latency, Measurement};
use crate::Plan;

fn size_label(bytes: usize) -> String {
    if bytes >= 1 << 20 {
        format!("{}MiB", bytes >> 20)
    } else {
        format!("{}KiB", bytes >> 10)
    }
}

/// Bytes that neither compress nor deduplicate to nothing, in case the storage under a virtual
/// disk treats zero blocks specially (dd's /dev/zero could then flatter the disk).
fn block(bytes: usize) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..bytes)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

pub fn id(block_bytes: usize) -> String {
    format!("raw_dsync_{}", size_label(block_bytes))
}

pub fn run(scratch: &Path, block_bytes: usize, plan: &Plan, device: Option<&str>) -> Measurement {
    let path = scratch.join(format!("raw-{block_bytes}.bin"));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .expect("create the raw write file");
    let data = block(block_bytes);
    let mut latencies_ns = Vec::new();
    let mut written = 0u64;
    let probe = DiskProbe::start(device);
    let start = Instant::now();
    // At least `raw_duration_min` and `raw_bytes_min`, at most `raw_duration_max`: this disk's
    // speed can vary from one second to the next, so short runs are not enough.
    loop {
        let elapsed = start.elapsed();
        let enough = written >= plan.raw_bytes_min && elapsed >= plan.raw_duration_min;
        if enough || elapsed >= plan.raw_duration_max {
            break;
        }
        let call = Instant::now();
        file.write_all(&data).expect("raw write");
        file.sync_data().expect("raw fdatasync");
        latencies_ns.push(call.elapsed().as_nanos() as u64);
        written += block_bytes as u64;
    }
    let elapsed = start.elapsed();
    let disk = probe.finish();
    drop(file);
    let _ = std::fs::remove_file(&path);
    let label = size_label(block_bytes);
    Measurement {
        id: id(block_bytes),
        label: format!("raw write+fdatasync {label} blocks"),
        config: vec![
            ("phase", Json::Str("raw_dsync".into())),
            ("block_bytes", Json::Int(block_bytes as u64)),
        ],
        records: None,
        calls: Some(latencies_ns.len() as u64),
        bytes: written,
        elapsed,
        disk,
        latency: Latency::of(latencies_ns),
        io: None,
    }
}
