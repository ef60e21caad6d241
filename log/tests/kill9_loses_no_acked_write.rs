//! A writer process killed with SIGKILL at a random moment loses no acknowledged write, and a
//! reopen serves nothing torn.
//!
//! Each cycle starts `strand-log-crash-writer` on the same partition directory, lets it append
//! for a random 5..150 ms (with `FsyncPolicy::Always` and 64 KiB segments, so kills land during
//! appends, fsyncs, segment rolls and the child's own recovery at open), kills it, and reopens
//! the partition here. The child prints a line per batch only after `append` returned, so every
//! complete line names records that must survive: across cycles the acknowledged set grows and
//! every member must still be there, byte for byte. Records not acknowledged may be present or
//! not, but what is present must be intact and in strictly increasing `_seq` order.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use strand_log::{FsyncPolicy, Partition, PartitionConfig, ReadFrom};

const CYCLES: u32 = 40;
const SEGMENT_BYTES: u64 = 64 * 1024;

/// One acknowledged batch: its `_seq` bounds and its keys in order.
#[derive(Debug)]
struct AckedBatch {
    first: u64,
    last: u64,
    keys: Vec<Vec<u8>>,
}

/// xorshift64: a seeded, dependency-free source of kill delays.
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

#[test]
fn kill9_loses_no_acked_write() {
    let started = Instant::now();
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("partition");
    let mut rng = XorShift(0x5EED_CAFE_F00D_0001);
    let mut acked: Vec<AckedBatch> = Vec::new();
    for cycle in 0..CYCLES {
        let delay = Duration::from_millis(5 + rng.next() % 146);
        let batches = run_and_kill(&dir, cycle, delay);
        acked.extend(batches);
        check_partition(&dir, &acked, cycle);
    }
    let records: usize = acked.iter().map(|b| b.keys.len()).sum();
    let segments = count_files(&dir, ".log");
    // Make sure the test exercised what it claims: many acks and many segment rolls.
    assert!(
        records > 1000,
        "only {records} records acknowledged in {CYCLES} cycles"
    );
    assert!(segments >= 3, "only {segments} segments: no rolls happened");
    eprintln!(
        "{CYCLES} cycles, {} acked batches, {records} acked records, {segments} segments, {:?}",
        acked.len(),
        started.elapsed()
    );
}

/// Start the writer, kill it after `delay`, return the batches it acknowledged.
fn run_and_kill(dir: &Path, cycle: u32, delay: Duration) -> Vec<AckedBatch> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_strand-log-crash-writer"))
        .arg(dir)
        .arg(cycle.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    // Drain stdout while the child runs so a full pipe never throttles it.
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        stdout.read_to_end(&mut bytes).map(|_| bytes)
    });
    std::thread::sleep(delay);
    child.kill().unwrap();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "cycle {cycle}: writer ended by itself ({status}) before the kill: {stderr}"
    );
    let bytes = reader.join().unwrap().unwrap();
    parse_acks(&bytes, cycle)
}

/// Complete lines only: a line cut by the kill was not fully acknowledged to the test.
fn parse_acks(bytes: &[u8], cycle: u32) -> Vec<AckedBatch> {
    let text = std::str::from_utf8(bytes).unwrap();
    let complete = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    complete
        .lines()
        .map(|line| {
            let mut words = line.split(' ');
            let mut seq = || -> u64 { words.next().unwrap().parse().unwrap() };
            let (first, last) = (seq(), seq());
            let keys: Vec<Vec<u8>> = words.map(unhex).collect();
            assert!(
                !keys.is_empty() && first <= last,
                "cycle {cycle}: bad line {line:?}"
            );
            for key in &keys {
                let prefix = format!("r{cycle}-");
                assert!(
                    key.starts_with(prefix.as_bytes()),
                    "cycle {cycle}: key {key:?}"
                );
            }
            AckedBatch { first, last, keys }
        })
        .collect()
}

/// Reopen (recovering), verify, and compare everything read with what was acknowledged.
fn check_partition(dir: &Path, acked: &[AckedBatch], cycle: u32) {
    if !dir.exists() {
        assert!(
            acked.is_empty(),
            "cycle {cycle}: acks but no partition directory"
        );
        return;
    }
    let config = PartitionConfig {
        segment_bytes_max: SEGMENT_BYTES,
        fsync: FsyncPolicy::Always,
        ..PartitionConfig::default()
    };
    let partition = Partition::open(dir, config).unwrap();
    let verified = partition.verify().unwrap();
    let snapshot = partition.snapshot();
    let mut present: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    let mut previous = 0u64;
    for record in snapshot.records(ReadFrom::Earliest) {
        let record = record.unwrap_or_else(|e| panic!("cycle {cycle}: read failed: {e}"));
        assert!(
            record.seq.0 > previous,
            "cycle {cycle}: _seq not increasing"
        );
        previous = record.seq.0;
        assert_eq!(
            record.payload,
            payload_of(record.key),
            "cycle {cycle}: record {} is not intact",
            record.seq
        );
        present.insert(record.seq.0, record.key.to_vec());
    }
    assert_eq!(
        verified,
        present.len() as u64,
        "cycle {cycle}: verify count"
    );
    assert_eq!(snapshot.last_seq().0, previous, "cycle {cycle}: last_seq");
    for batch in acked {
        let found: Vec<&Vec<u8>> = present
            .range(batch.first..=batch.last)
            .map(|(_, k)| k)
            .collect();
        let expected: Vec<&Vec<u8>> = batch.keys.iter().collect();
        assert_eq!(
            found, expected,
            "cycle {cycle}: acknowledged batch {}..={} lost or changed",
            batch.first, batch.last
        );
    }
    let mut keys: Vec<&Vec<u8>> = present.values().collect();
    keys.sort();
    keys.dedup();
    assert_eq!(
        keys.len(),
        present.len(),
        "cycle {cycle}: a record appears twice"
    );
}

/// The payload the writer derives from a key: the key repeated to the length after `-l`.
fn payload_of(key: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(key).unwrap();
    let len: usize = text.rsplit_once("-l").unwrap().1.parse().unwrap();
    key.iter().copied().cycle().take(len).collect()
}

fn unhex(word: &str) -> Vec<u8> {
    assert!(word.len() % 2 == 0, "odd hex {word:?}");
    (0..word.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&word[i..i + 2], 16).unwrap())
        .collect()
}

fn count_files(dir: &Path, suffix: &str) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(suffix)
        })
        .count()
}
