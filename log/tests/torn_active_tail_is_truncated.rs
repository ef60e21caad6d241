//! A torn tail of the active (newest) segment is cut at open: every complete record before it
//! is served, the torn record is not, the cut bytes are gone from the file, and new appends
//! land where the torn bytes were with higher `_seq`s. The same for garbage written after the
//! last record (directly, or after a zero length word that ends the scan early).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use strand_log::{FsyncPolicy, NewRecord, Partition, PartitionConfig, ReadFrom, Seq};

const RECORDS: usize = 150;

fn config() -> PartitionConfig {
    PartitionConfig {
        segment_bytes_max: 4096,
        fsync: FsyncPolicy::Never,
        ..PartitionConfig::default()
    }
}

fn key(i: usize) -> Vec<u8> {
    format!("key-{i:04}").into_bytes()
}

fn payload(i: usize) -> Vec<u8> {
    format!("payload {i} ").repeat(1 + i % 5).into_bytes()
}

type Record = (Seq, Vec<u8>, Vec<u8>);

fn read_all(partition: &Partition) -> Vec<Record> {
    let snapshot = partition.snapshot();
    let records = snapshot.records(ReadFrom::Earliest);
    records
        .map(|r| {
            let r = r.unwrap();
            (r.seq, r.key.to_vec(), r.payload.to_vec())
        })
        .collect()
}

/// Byte positions and padded ends of the frames of a segment file.
fn frames(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut frames = Vec::new();
    let mut at = 64;
    while at + 4 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        if len == 0 {
            break;
        }
        frames.push((at, at + len.next_multiple_of(8)));
        at += len.next_multiple_of(8);
    }
    frames
}

fn active_segment(dir: &Path) -> PathBuf {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 3,
        "want sealed segments before the active one"
    );
    paths.pop().unwrap()
}

/// Write the records over several segments and close; returns them as read back.
fn fill(dir: &Path) -> Vec<Record> {
    let partition = Partition::open(dir, config()).unwrap();
    for i in 0..RECORDS {
        let (key, payload) = (key(i), payload(i));
        partition.append(&[NewRecord::new(&key, &payload)]).unwrap();
    }
    let records = read_all(&partition);
    assert_eq!(records.len(), RECORDS);
    records
}

/// Reopen, check the records and the file, append, reopen again and check everything.
fn assert_recovers_to(dir: &Path, expected: &[Record], data_end: usize) {
    let segment = active_segment(dir);
    {
        let partition = Partition::open(dir, config()).unwrap();
        assert_eq!(read_all(&partition), expected);
        assert_eq!(partition.verify().unwrap(), expected.len() as u64);
        let bytes = std::fs::read(&segment).unwrap();
        assert!(
            bytes[data_end..].iter().all(|&b| b == 0),
            "bytes after the last complete record were not cut"
        );
        let range = partition
            .append(&[NewRecord::new(b"new", b"after recovery")])
            .unwrap();
        assert!(range.first > expected.last().unwrap().0);
    }
    let partition = Partition::open(dir, config()).unwrap();
    let records = read_all(&partition);
    assert_eq!(&records[..expected.len()], expected);
    assert_eq!(records.len(), expected.len() + 1);
    let new = &records[expected.len()];
    assert_eq!(
        (&new.1[..], &new.2[..]),
        (&b"new"[..], &b"after recovery"[..])
    );
    let bytes = std::fs::read(&segment).unwrap();
    assert_eq!(
        frames(&bytes).last().unwrap().0,
        data_end,
        "new record not at the cut"
    );
}

#[test]
fn record_cut_mid_header_or_mid_payload_is_dropped() {
    for cut_into_frame in [5, 17, 39, 41, 47] {
        let dir = tempfile::tempdir().unwrap();
        let written = fill(dir.path());
        let segment = active_segment(dir.path());
        let bytes = std::fs::read(&segment).unwrap();
        let (last_start, last_end) = *frames(&bytes).last().unwrap();
        assert!(last_start + cut_into_frame < last_end);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&segment)
            .unwrap();
        file.set_len((last_start + cut_into_frame) as u64).unwrap();
        drop(file);
        assert_recovers_to(dir.path(), &written[..RECORDS - 1], last_start);
    }
}

#[test]
fn garbage_after_the_last_record_is_cut() {
    let garbage: Vec<u8> = (0..200u32).map(|i| (i * 37 + 11) as u8 | 1).collect();
    let mut after_zero_word = vec![0u8; 8];
    after_zero_word.extend_from_slice(&garbage);
    for tail in [garbage, after_zero_word] {
        let dir = tempfile::tempdir().unwrap();
        let written = fill(dir.path());
        let segment = active_segment(dir.path());
        let mut bytes = std::fs::read(&segment).unwrap();
        let (_, data_end) = *frames(&bytes).last().unwrap();
        // A cleanly closed segment ends at its data; a crash can leave bytes after it.
        bytes.truncate(data_end);
        bytes.extend_from_slice(&tail);
        std::fs::write(&segment, &bytes).unwrap();
        assert_recovers_to(dir.path(), &written, data_end);
    }
}
