//! Raw disk bandwidth: sequential writes of one block, each followed by fdatasync, like
//! `dd if=/dev/zero of=F bs=1M oflag=dsync`. This is the ceiling a durable log can reach on
//! this disk. 64 KiB and 32 KiB bracket one group-commit round (64 writers of 1 KiB records
//! put about half of themselves in each round); 4 KiB shows the cost of a lone fdatasync, what
//! one writer of small records pays per append.
//!
//! The file is grown ahead of the blocks exactly as the log grows its active segment (written
//! zeros, steps doubling from 4 KiB to 1 MiB, written before data goes there), so both
//! fdatasyncs have the same block allocation to journal. `dd` grows its file on every write,
//! which makes each of its fdatasyncs commit an allocation and understated the disk next to
//! the log (issue 16).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Instant;

use crate::machine::DiskProbe;
use crate::report::{Json, Latency, Measurement};
use crate::Plan;

/// The log's growth steps (`log/src/segment.rs`, `GROWTH_BYTES_MIN` and `GROWTH_BYTES_MAX`).
const GROWTH_BYTES_MIN: u64 = 4096;
const GROWTH_BYTES_MAX: u64 = 1024 * 1024;
static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// A file grown ahead of its data with written zeros, as the log's active segment is.
struct PregrownFile {
    file: File,
    capacity_bytes: u64,
}

impl PregrownFile {
    /// A new file with its first growth step written and synced (as a new segment is,
    /// before any record goes in).
    fn create(path: &Path) -> PregrownFile {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .expect("create the raw write file");
        let mut pregrown = PregrownFile {
            file,
            capacity_bytes: 0,
        };
        pregrown.fill_zeros(GROWTH_BYTES_MIN);
        pregrown
            .file
            .sync_all()
            .expect("sync the new raw write file");
        pregrown
    }

    fn fill_zeros(&mut self, to: u64) {
        while self.capacity_bytes < to {
            let chunk = (to - self.capacity_bytes).min(ZEROS.len() as u64) as usize;
            let at = self.capacity_bytes;
            self.file
                .write_all_at(&ZEROS[..chunk], at)
                .expect("raw zero fill");
            self.capacity_bytes += chunk as u64;
        }
    }

    /// Write `data` at `offset`, growing the file first if it does not fit (the log's rule:
    /// at least double, at most 1 MiB more, in whole pages).
    fn write_at(&mut self, data: &[u8], offset: u64) {
        let needed = offset + data.len() as u64;
        if needed > self.capacity_bytes {
            let step = self
                .capacity_bytes
                .clamp(GROWTH_BYTES_MIN, GROWTH_BYTES_MAX);
            let capacity = needed
                .max(self.capacity_bytes + step)
                .next_multiple_of(4096);
            self.fill_zeros(capacity);
        }
        self.file.write_all_at(data, offset).expect("raw write");
    }
}

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
    let mut file = PregrownFile::create(&path);
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
        file.write_at(&data, written);
        file.file.sync_data().expect("raw fdatasync");
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
            ("pregrown", Json::Bool(true)),
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
