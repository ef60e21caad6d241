//! After a failed fsync the partition does not guess what reached the disk: that append
//! returns the I/O error, every later append returns `LogError::Poisoned`, and reads keep
//! serving exactly what was committed before. A failed write does the same. (A full disk is
//! not damage: `full_disk_is_undone_and_writes_resume.rs`.) Reopening with healthy storage recovers: the committed records are all there,
//! anything after them is intact, and appends work again with higher `_seq`s.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use strand_log::storage::{Faults, FaultyStorage};
use strand_log::{FsyncPolicy, LogError, NewRecord, Partition, PartitionConfig, ReadFrom, Seq};

type Record = (Seq, Vec<u8>, Vec<u8>);
/// Picks one of the fault switches.
type FaultSwitch = fn(&Faults) -> &AtomicBool;

fn config(storage: FaultyStorage, segment_bytes_max: u64) -> PartitionConfig {
    PartitionConfig {
        segment_bytes_max,
        fsync: FsyncPolicy::Always,
        storage: Arc::new(storage),
        ..PartitionConfig::default()
    }
}

fn healthy() -> PartitionConfig {
    config(FaultyStorage::default(), 4096)
}

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

/// Append `count` single-record batches of about 100 bytes each; returns them as committed.
fn append_some(partition: &Arc<Partition>, count: usize) -> Vec<Record> {
    (0..count)
        .map(|i| {
            let key = format!("committed-{i}").into_bytes();
            let payload = vec![b'a' + (i % 26) as u8; 50];
            let range = partition.append(&[NewRecord::new(&key, &payload)]).unwrap();
            (range.first, key, payload)
        })
        .collect()
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

/// The faulted append failed; every later one is refused with `Poisoned`. The failed one may
/// report the I/O error itself (on `segment`, of `expected_kind`) or `Poisoned` carrying that
/// I/O error as its cause.
fn assert_poisoned_after(
    failed: Result<strand_log::SeqRange, LogError>,
    partition: &Arc<Partition>,
    segment: &Path,
    expected_kind: ErrorKind,
) {
    match failed {
        Err(LogError::Io { path, source }) => {
            assert_eq!(path, segment);
            assert_eq!(source.kind(), expected_kind, "{source}");
        }
        Err(LogError::Poisoned { path, cause }) => {
            assert_eq!(path, partition.dir());
            assert!(
                cause.contains("injected"),
                "cause names the failure: {cause}"
            );
        }
        other => panic!("expected the append to fail, got {other:?}"),
    }
    assert!(partition.is_poisoned());
    for _ in 0..3 {
        match partition.append(&[NewRecord::new(b"later", b"refused")]) {
            Err(LogError::Poisoned { path, cause }) => {
                assert_eq!(path, partition.dir());
                assert!(
                    cause.contains("injected"),
                    "cause names the failure: {cause}"
                );
            }
            other => panic!("expected Poisoned, got {other:?}"),
        }
    }
}

/// Reopen with healthy storage: `committed` first; at most `unacked` after it, intact; then a
/// new append works and comes back after a second reopen.
fn assert_reopen_recovers(dir: &Path, committed: &[Record], unacked: &[(&[u8], &[u8])]) {
    let last = {
        let partition = Partition::open(dir, healthy()).unwrap();
        let records = read_all(&partition);
        assert_eq!(&records[..committed.len()], committed);
        let extra = &records[committed.len()..];
        assert!(extra.len() <= unacked.len(), "unexpected records {extra:?}");
        for (record, (key, payload)) in extra.iter().zip(unacked) {
            assert_eq!((&record.1[..], &record.2[..]), (*key, *payload));
        }
        let range = partition
            .append(&[NewRecord::new(b"after", b"reopen")])
            .unwrap();
        assert!(range.first > records.last().unwrap().0);
        assert_eq!(partition.verify().unwrap(), records.len() as u64 + 1);
        range.first
    };
    let partition = Partition::open(dir, healthy()).unwrap();
    let records = read_all(&partition);
    assert_eq!(&records[..committed.len()], committed);
    let newest = records.last().unwrap();
    assert_eq!((newest.0, &newest.1[..]), (last, &b"after"[..]));
}

#[test]
fn failed_fdatasync_fails_that_append_and_poisons_later_ones() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FaultyStorage::default();
    let faults = storage.faults.clone();
    let partition = Partition::open(dir.path(), config(storage, 1 << 20)).unwrap();
    let committed = append_some(&partition, 20);
    let before = partition.snapshot();

    faults.fail_sync.store(true, Ordering::SeqCst);
    let failed = partition.append(&[NewRecord::new(b"unacked", b"fsync failed")]);
    faults.fail_sync.store(false, Ordering::SeqCst);
    let segment = segments(dir.path()).pop().unwrap();
    assert_poisoned_after(failed, &partition, &segment, ErrorKind::Other);

    assert_eq!(read_all(&partition), committed);
    assert_eq!(partition.verify().unwrap(), committed.len() as u64);
    assert_eq!(partition.last_seq(), committed.last().unwrap().0);
    let records_before: Vec<Seq> = before
        .records(ReadFrom::Earliest)
        .map(|r| r.unwrap().seq)
        .collect();
    assert_eq!(records_before.len(), committed.len());

    drop((before, partition));
    assert_reopen_recovers(dir.path(), &committed, &[(b"unacked", b"fsync failed")]);
}

#[test]
fn failed_fsync_while_sealing_a_segment_poisons_and_keeps_the_segment() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FaultyStorage::default();
    let faults = storage.faults.clone();
    let partition = Partition::open(dir.path(), config(storage, 4096)).unwrap();
    // 30 frames of 104 bytes: 3184 bytes with the header, one segment.
    let committed = append_some(&partition, 30);
    let segment = segments(dir.path()).pop().unwrap();
    assert_eq!(segments(dir.path()).len(), 1);

    // A 2 KiB record does not fit: the append must seal the segment first, and that fails.
    faults.fail_sync.store(true, Ordering::SeqCst);
    let big = vec![b'z'; 2048];
    let failed = partition.append(&[NewRecord::new(b"big", &big)]);
    faults.fail_sync.store(false, Ordering::SeqCst);
    assert_poisoned_after(failed, &partition, &segment, ErrorKind::Other);
    assert_eq!(read_all(&partition), committed);
    assert_eq!(
        segments(dir.path()),
        vec![segment.clone()],
        "a segment was created"
    );

    drop(partition);
    assert_reopen_recovers(dir.path(), &committed, &[]);
}

#[test]
fn failed_write_fails_that_append_and_poisons_later_ones() {
    let cases: [(FaultSwitch, ErrorKind); 1] = [(|f| &f.fail_write, ErrorKind::Other)];
    for (switch, kind) in cases {
        let dir = tempfile::tempdir().unwrap();
        let storage = FaultyStorage::default();
        let faults = storage.faults.clone();
        let partition = Partition::open(dir.path(), config(storage, 1 << 20)).unwrap();
        let committed = append_some(&partition, 20);
        let segment = segments(dir.path()).pop().unwrap();

        switch(&faults).store(true, Ordering::SeqCst);
        let payload = vec![b'x'; 300];
        let failed = partition.append(&[NewRecord::new(b"unacked", &payload)]);
        switch(&faults).store(false, Ordering::SeqCst);
        assert_poisoned_after(failed, &partition, &segment, kind);
        assert_eq!(read_all(&partition), committed);
        assert_eq!(partition.verify().unwrap(), committed.len() as u64);

        drop(partition);
        // Nothing of the frame reached the file, so nothing after `committed`.
        assert_reopen_recovers(dir.path(), &committed, &[]);
    }
}
