//! A flipped byte inside a record of a sealed (not the newest) segment is corruption, never a
//! torn tail: reading across it ends with `LogError::CorruptSegment` naming that segment and
//! the record's byte position. Records before it are served; a read that needs the bad record
//! is never silently stepped past it, but a read that starts after it (it needs nothing the
//! damage can hold) is served the intact records there. The same holds when the segment's
//! `.idx` is gone: the rebuild indexes around the bad record, and no index is written for the
//! corrupt segment (every load reports it again).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use strand_log::{FsyncPolicy, LogError, NewRecord, Partition, PartitionConfig, ReadFrom, Seq};

const RECORDS: usize = 300;
const FRAME_HEADER_BYTES: usize = 40;

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
    format!("payload of record {i}, with some filler").into_bytes()
}

/// `(seq, key, payload)` of every record read before the first error, and that error.
type Read = (Vec<(Seq, Vec<u8>, Vec<u8>)>, Option<LogError>);

fn read_all(partition: &Partition, from: ReadFrom) -> Read {
    let snapshot = partition.snapshot();
    let mut records = snapshot.records(from);
    let mut served = Vec::new();
    for record in records.by_ref() {
        match record {
            Ok(r) => served.push((r.seq, r.key.to_vec(), r.payload.to_vec())),
            Err(error) => {
                assert!(records.next().is_none(), "records served after an error");
                return (served, Some(error));
            }
        }
    }
    (served, None)
}

/// Byte positions of the frames of a segment file (header 64 bytes, frames 8-aligned).
fn frame_positions(bytes: &[u8]) -> Vec<usize> {
    let mut positions = Vec::new();
    let mut at = 64;
    while at + 4 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        if len == 0 {
            break;
        }
        positions.push(at);
        at += len.next_multiple_of(8);
    }
    positions
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    paths.sort();
    paths
}

/// Index (in append order) of the first record of the `n`th segment.
fn first_record_of_segment(dir: &Path, n: usize) -> usize {
    segments(dir)[..n]
        .iter()
        .map(|p| frame_positions(&std::fs::read(p).unwrap()).len())
        .sum()
}

/// Write the records and close. Returns every record's `_seq`.
fn fill(dir: &Path) -> Vec<Seq> {
    let partition = Partition::open(dir, config()).unwrap();
    let mut seqs = Vec::new();
    for i in 0..RECORDS {
        let (key, payload) = (key(i), payload(i));
        let range = partition.append(&[NewRecord::new(&key, &payload)]).unwrap();
        seqs.push(range.first);
    }
    seqs
}

/// What the damage did: which segment, where, and which record it hit.
struct Flip {
    segment: PathBuf,
    position: usize,
    /// Index (in append order) of the damaged record.
    record: usize,
}

/// Flip one payload byte of a record in the middle of the second segment (a sealed one).
fn flip_payload_byte(dir: &Path) -> Flip {
    let paths = segments(dir);
    assert!(
        paths.len() >= 4,
        "want several sealed segments, got {}",
        paths.len()
    );
    let records_before = first_record_of_segment(dir, 1);
    let segment = paths[1].clone();
    let mut bytes = std::fs::read(&segment).unwrap();
    let positions = frame_positions(&bytes);
    let in_segment = positions.len() / 2;
    let position = positions[in_segment];
    bytes[position + FRAME_HEADER_BYTES + 3] ^= 0x20;
    std::fs::write(&segment, &bytes).unwrap();
    Flip {
        segment,
        position,
        record: records_before + in_segment,
    }
}

fn assert_corrupt_at(error: Option<LogError>, flip: &Flip) {
    match error {
        Some(LogError::CorruptSegment {
            path,
            position,
            reason,
        }) => {
            assert_eq!(path, flip.segment);
            assert_eq!(position, flip.position as u64);
            assert_eq!(reason, "CRC32 mismatch");
        }
        other => panic!(
            "expected CorruptSegment at {}, got {other:?}",
            flip.position
        ),
    }
}

fn expected(seqs: &[Seq], range: std::ops::Range<usize>) -> Vec<(Seq, Vec<u8>, Vec<u8>)> {
    range.map(|i| (seqs[i], key(i), payload(i))).collect()
}

#[test]
fn reading_across_the_flipped_byte_serves_the_prefix_then_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let seqs = fill(dir.path());
    let flip = flip_payload_byte(dir.path());
    let partition = Partition::open(dir.path(), config()).unwrap();

    let (served, error) = read_all(&partition, ReadFrom::Earliest);
    assert_eq!(served, expected(&seqs, 0..flip.record));
    assert_corrupt_at(error, &flip);

    // Starting just before or at the bad record still meets it; it is never stepped over.
    let before = seqs[flip.record - 1];
    let (served, error) = read_all(&partition, ReadFrom::After(before));
    assert_eq!(served, vec![]);
    assert_corrupt_at(error, &flip);
    let (served, error) = read_all(&partition, ReadFrom::Seq(seqs[flip.record]));
    assert_eq!(served, vec![]);
    assert_corrupt_at(error, &flip);

    let verified = partition.verify();
    assert!(
        matches!(verified, Err(LogError::CorruptSegment { ref path, .. }) if *path == flip.segment),
        "verify: {verified:?}"
    );
    // A read that starts in a later segment does not cross the damage and is exact.
    let later = first_record_of_segment(dir.path(), 2);
    let (served, error) = read_all(&partition, ReadFrom::Seq(seqs[later]));
    assert_eq!(served, expected(&seqs, later..RECORDS));
    assert!(error.is_none(), "{error:?}");
}

#[test]
fn with_the_index_deleted_the_rebuild_reports_the_same_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let seqs = fill(dir.path());
    let flip = flip_payload_byte(dir.path());
    let index = flip.segment.with_extension("idx");
    std::fs::remove_file(&index).unwrap();
    let partition = Partition::open(dir.path(), config()).unwrap();

    // The rebuild indexes around the bad record: the records before it are served, then the
    // error names it.
    let (served, error) = read_all(&partition, ReadFrom::Earliest);
    assert_eq!(served, expected(&seqs, 0..flip.record));
    assert_corrupt_at(error, &flip);
    assert!(
        !index.exists(),
        "an index was written for a corrupt segment"
    );
    let (served, error) = read_all(&partition, ReadFrom::Seq(seqs[flip.record]));
    assert_eq!(served, vec![]);
    assert_corrupt_at(error, &flip);

    // Reading from inside the corrupt segment, after the bad record, needs nothing the damage
    // can hold: every intact record from there on is served.
    let (served, error) = read_all(&partition, ReadFrom::Seq(seqs[flip.record + 1]));
    assert_eq!(served, expected(&seqs, flip.record + 1..RECORDS));
    assert!(error.is_none(), "{error:?}");
    assert!(partition.verify().is_err());
}
