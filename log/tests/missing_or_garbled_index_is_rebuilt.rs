//! A sealed segment's `.idx` is derived data: when it is missing, garbled, truncated, belongs
//! to another segment, or is a stale but well-formed index that describes only part of the
//! segment, reads are still exact (from the start and from any `_seq`) and the index is rebuilt
//! byte for byte as it was written at sealing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use strand_log::{FsyncPolicy, NewRecord, Partition, PartitionConfig, ReadFrom, SegmentIndex, Seq};

const RECORDS: usize = 600;

fn config() -> PartitionConfig {
    PartitionConfig {
        segment_bytes_max: 16 * 1024,
        fsync: FsyncPolicy::Never,
        ..PartitionConfig::default()
    }
}

type Record = (Seq, Vec<u8>, Vec<u8>);

fn read(partition: &Partition, from: ReadFrom) -> Vec<Record> {
    let snapshot = partition.snapshot();
    let records = snapshot.records(from);
    records
        .map(|r| {
            let r = r.unwrap();
            (r.seq, r.key.to_vec(), r.payload.to_vec())
        })
        .collect()
}

fn files(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == extension))
        .collect();
    paths.sort();
    paths
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
    }
}

/// A well-formed index of only the first half of the segment's records, as an index written
/// before the segment grew would be.
fn stale_index(segment: &Path) -> Vec<u8> {
    let bytes = std::fs::read(segment).unwrap();
    let stem = segment.file_stem().unwrap().to_str().unwrap();
    let first_seq = Seq(stem.parse().unwrap());
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
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
    let mut index = SegmentIndex::new(first_seq, 64);
    for &(start, end) in &frames[..frames.len() / 2] {
        index.add(
            Seq(word(start + 8)),
            word(start + 16),
            start as u32,
            end as u32,
        );
    }
    index.encode()
}

/// How an index file is damaged.
#[derive(Clone, Copy, Debug)]
enum Damage {
    Deleted,
    ByteFlipped,
    TruncatedToHalf,
    Emptied,
    OfAnotherSegment,
    Stale,
}

fn damage(indexes: &[PathBuf], how: Damage) {
    let originals: Vec<Vec<u8>> = indexes.iter().map(|p| std::fs::read(p).unwrap()).collect();
    for (i, path) in indexes.iter().enumerate() {
        let mut bytes = originals[i].clone();
        let middle = bytes.len() / 2;
        match how {
            Damage::Deleted => {
                std::fs::remove_file(path).unwrap();
                continue;
            }
            Damage::ByteFlipped => bytes[middle] ^= 0x01,
            Damage::TruncatedToHalf => bytes.truncate(middle),
            Damage::Emptied => bytes.clear(),
            Damage::OfAnotherSegment => bytes = originals[(i + 1) % originals.len()].clone(),
            Damage::Stale => bytes = stale_index(&path.with_extension("log")),
        }
        std::fs::write(path, bytes).unwrap();
    }
}

#[test]
fn damaged_indexes_are_rebuilt_and_reads_stay_exact() {
    let pristine = tempfile::tempdir().unwrap();
    {
        let partition = Partition::open(pristine.path(), config()).unwrap();
        for i in 0..RECORDS {
            let key = format!("key-{i:04}");
            let payload = format!("record {i} ").repeat(1 + i % 9);
            let record = NewRecord::new(key.as_bytes(), payload.as_bytes());
            partition.append(&[record]).unwrap();
        }
    }
    let expected = {
        let partition = Partition::open(pristine.path(), config()).unwrap();
        read(&partition, ReadFrom::Earliest)
    };
    assert_eq!(expected.len(), RECORDS);
    let original_indexes: Vec<(PathBuf, Vec<u8>)> = files(pristine.path(), "idx")
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p.file_name().unwrap().into(), bytes)
        })
        .collect();
    assert!(original_indexes.len() >= 3, "want several sealed segments");
    for how in [
        Damage::Deleted,
        Damage::ByteFlipped,
        Damage::TruncatedToHalf,
        Damage::Emptied,
        Damage::OfAnotherSegment,
        Damage::Stale,
    ] {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(pristine.path(), dir.path());
        damage(&files(dir.path(), "idx"), how);
        let partition = Partition::open(dir.path(), config()).unwrap();
        let all = read(&partition, ReadFrom::Earliest);
        assert_eq!(all.len(), expected.len(), "{how:?}: records served");
        assert_eq!(all, expected, "{how:?}");
        for i in (0..RECORDS).step_by(23) {
            let seq = expected[i].0;
            let from_seq = read(&partition, ReadFrom::Seq(seq));
            assert_eq!(from_seq, expected[i..], "{how:?}: from {seq}");
            let after = read(&partition, ReadFrom::After(seq));
            assert_eq!(after, expected[i + 1..], "{how:?}: after {seq}");
        }
        for (name, original) in &original_indexes {
            let rebuilt = std::fs::read(dir.path().join(name)).unwrap();
            assert!(
                &rebuilt == original,
                "{how:?}: {name:?} not rebuilt as written"
            );
        }
    }
}
