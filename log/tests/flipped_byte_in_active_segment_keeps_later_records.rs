//! A flipped byte in a record of the newest (active) segment, with intact records after it, is
//! damage, not a torn tail: reopening never cuts it or anything after it. Reads that need the
//! bad record end with `CorruptSegment` at its byte; reads that start after it are served;
//! `Records::skip_damage` goes on past it; appends go to a new segment; the file keeps every
//! byte (less nothing) across any number of reopens.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use strand_log::{FsyncPolicy, LogError, NewRecord, Partition, PartitionConfig, ReadFrom, Seq};

const RECORDS: usize = 80;

fn config() -> PartitionConfig {
    PartitionConfig {
        segment_bytes_max: 1 << 20,
        fsync: FsyncPolicy::Never,
        ..PartitionConfig::default()
    }
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

fn fill(dir: &Path) -> Vec<Seq> {
    let partition = Partition::open(dir, config()).unwrap();
    (0..RECORDS)
        .map(|i| {
            let payload = format!("row {i} of the only segment");
            let key = format!("k{i}");
            let record = NewRecord::new(key.as_bytes(), payload.as_bytes());
            partition.append(&[record]).unwrap().first
        })
        .collect()
}

/// Every record, skipping damage; and the damage met.
fn read_skipping(partition: &Partition) -> (Vec<Seq>, Vec<strand_log::Damage>) {
    let snapshot = partition.snapshot();
    let mut records = snapshot.records(ReadFrom::Earliest);
    let (mut seqs, mut damage) = (Vec::new(), Vec::new());
    loop {
        match records.next() {
            Some(Ok(record)) => seqs.push(record.seq),
            Some(Err(error)) => {
                assert!(error.is_corruption(), "{error}");
                damage.push(records.skip_damage().expect("damage to skip"));
            }
            None => return (seqs, damage),
        }
    }
}

#[test]
fn flip_in_the_first_record_keeps_the_other_79_across_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let seqs = fill(dir.path());
    let [segment] = &segments(dir.path())[..] else {
        panic!("one segment expected")
    };
    let mut bytes = std::fs::read(segment).unwrap();
    let length = bytes.len();
    bytes[64 + 45] ^= 0xff;
    std::fs::write(segment, &bytes).unwrap();

    for round in 0..2 {
        let partition = Partition::open(dir.path(), config()).unwrap();
        let snapshot = partition.snapshot();
        let first = snapshot.records(ReadFrom::Earliest).next();
        match first {
            Some(Err(LogError::CorruptSegment { path, position, .. })) => {
                assert_eq!((&path, position), (segment, 64));
            }
            other => panic!("expected CorruptSegment at byte 64, got {other:?}"),
        }
        let after: Vec<Seq> = snapshot
            .records(ReadFrom::Seq(seqs[1]))
            .map(|r| r.unwrap().seq)
            .collect();
        assert_eq!(&after[..RECORDS - 1], &seqs[1..], "round {round}");
        let (read, damage) = read_skipping(&partition);
        assert_eq!(&read[..RECORDS - 1], &seqs[1..]);
        assert_eq!(damage.len(), 1);
        assert_eq!((damage[0].start, damage[0].before_seq), (64, Some(seqs[1])));
        assert_eq!(std::fs::read(segment).unwrap().len(), length, "nothing cut");
        let range = partition
            .append(&[NewRecord::new(b"new", b"after")])
            .unwrap();
        assert!(range.first > seqs[RECORDS - 1]);
    }
    assert_eq!(
        segments(dir.path()).len(),
        2,
        "appends went to a new segment"
    );
    let partition = Partition::open(dir.path(), config()).unwrap();
    assert_eq!(read_skipping(&partition).0.len(), RECORDS - 1 + 2);
}

#[test]
fn a_torn_tail_after_the_damage_is_still_cut() {
    let dir = tempfile::tempdir().unwrap();
    let seqs = fill(dir.path());
    let segment = segments(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[64 + 45] ^= 0xff;
    let length = bytes.len();
    bytes.truncate(length - 5);
    bytes.extend_from_slice(&[0; 4096]);
    std::fs::write(&segment, &bytes).unwrap();
    let partition = Partition::open(dir.path(), config()).unwrap();
    let (read, damage) = read_skipping(&partition);
    assert_eq!(read, seqs[1..RECORDS - 1]);
    assert_eq!(damage.len(), 1);
}
