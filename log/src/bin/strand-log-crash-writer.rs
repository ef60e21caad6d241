//! `strand-log-crash-writer`: a child process for the crash test
//! (`tests/kill9_loses_no_acked_write.rs`). It exists only to be killed with SIGKILL while it
//! appends; it is not a tool for operators.
//!
//! Usage: `strand-log-crash-writer <partition-dir> <run-id>`
//!
//! It opens the partition with `FsyncPolicy::Always` and 64 KiB segments (so segments roll
//! during the test), then several threads append small batches of varying sizes until killed
//! (or until a time and record bound, so a forgotten child cannot fill the disk). After each
//! append returns, it prints one line per batch and flushes: `{first_seq} {last_seq}` and the
//! batch's keys in hex, space-separated. A complete printed line therefore means "this batch was
//! acknowledged as durable"; its records are exactly those with `_seq` in `first..=last`.
//!
//! The key is `r{run}-t{thread}-n{counter}-l{payload_len}` and the payload is the key's bytes
//! repeated to `payload_len` bytes, so the test can check every record it reads without
//! knowing which ones were acknowledged.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use strand_log::{FsyncPolicy, NewRecord, Partition, PartitionConfig};

const USAGE: &str = "usage: strand-log-crash-writer <partition-dir> <run-id>";
const THREADS: u64 = 4;
const SEGMENT_BYTES: u64 = 64 * 1024;
const BATCH_RECORDS_MAX: u64 = 8;
const PAYLOAD_BYTES_MAX: u64 = 300;
/// The child stops by itself after this long or this many records per thread.
const RUN_TIME_MAX: Duration = Duration::from_secs(20);
const RECORDS_PER_THREAD_MAX: u64 = 200_000;

struct Args {
    dir: PathBuf,
    run: u32,
}

fn parse_args() -> Option<Args> {
    let mut args = std::env::args_os().skip(1);
    let dir = PathBuf::from(args.next()?);
    let run = args.next()?.to_str()?.parse().ok()?;
    if args.next().is_some() {
        return None;
    }
    Some(Args { dir, run })
}

fn main() -> ExitCode {
    let Some(args) = parse_args() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let config = PartitionConfig {
        segment_bytes_max: SEGMENT_BYTES,
        fsync: FsyncPolicy::Always,
        ..PartitionConfig::default()
    };
    let partition = match Partition::open(&args.dir, config) {
        Ok(partition) => partition,
        Err(error) => {
            eprintln!(
                "strand-log-crash-writer: open {}: {error}",
                args.dir.display()
            );
            return ExitCode::from(1);
        }
    };
    let threads: Vec<_> = (0..THREADS)
        .map(|thread| {
            let partition = partition.clone();
            std::thread::spawn(move || append_until_stopped(&partition, args.run, thread))
        })
        .collect();
    let mut code = ExitCode::SUCCESS;
    for thread in threads {
        match thread.join() {
            Ok(Ok(())) => {}
            Ok(Err(message)) => {
                eprintln!("strand-log-crash-writer: {message}");
                code = ExitCode::from(1);
            }
            Err(_) => code = ExitCode::from(1),
        }
    }
    code
}

/// Append batches and print what was acknowledged, until a bound is reached or stdout closes.
fn append_until_stopped(partition: &Arc<Partition>, run: u32, thread: u64) -> Result<(), String> {
    let started = Instant::now();
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15 ^ (u64::from(run) << 8) ^ (thread + 1));
    let mut counter = 0u64;
    let mut out = String::new();
    while counter < RECORDS_PER_THREAD_MAX && started.elapsed() < RUN_TIME_MAX {
        let batch_records = 1 + rng.next() % BATCH_RECORDS_MAX;
        let keys: Vec<String> = (0..batch_records)
            .map(|i| {
                let payload_len = rng.next() % (PAYLOAD_BYTES_MAX + 1);
                format!("r{run}-t{thread}-n{}-l{payload_len}", counter + i)
            })
            .collect();
        counter += batch_records;
        let payloads: Vec<Vec<u8>> = keys.iter().map(|k| payload_of(k.as_bytes())).collect();
        let records: Vec<NewRecord<'_>> = keys
            .iter()
            .zip(&payloads)
            .map(|(key, payload)| NewRecord::new(key.as_bytes(), payload))
            .collect();
        let range = partition
            .append(&records)
            .map_err(|e| format!("append failed: {e}"))?;
        out.clear();
        let _ = write!(out, "{} {}", range.first, range.last);
        for key in &keys {
            out.push(' ');
            for byte in key.as_bytes() {
                let _ = write!(out, "{byte:02x}");
            }
        }
        out.push('\n');
        let mut stdout = std::io::stdout().lock();
        if stdout
            .write_all(out.as_bytes())
            .and_then(|()| stdout.flush())
            .is_err()
        {
            return Ok(()); // The test stopped listening: nothing left to prove.
        }
    }
    Ok(())
}

/// The key's bytes repeated to the length named after its last `-l`.
fn payload_of(key: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(key).unwrap_or("");
    let len: usize = text
        .rsplit_once("-l")
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(0);
    key.iter().copied().cycle().take(len).collect()
}

/// A tiny deterministic generator (xorshift64); no dependency needed for varying sizes.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}
