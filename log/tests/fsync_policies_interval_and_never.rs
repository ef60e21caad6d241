//! `interval` appends return before fdatasync and a background flusher syncs them soon after;
//! `never` appends are not synced until the partition closes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use strand_log::storage::FaultyStorage;
use strand_log::{FsyncPolicy, NewRecord, Partition, PartitionConfig};

fn open(dir: &std::path::Path, storage: &FaultyStorage, fsync: FsyncPolicy) -> Arc<Partition> {
    let config = PartitionConfig {
        fsync,
        storage: Arc::new(storage.clone()),
        ..PartitionConfig::default()
    };
    Partition::open(dir, config).unwrap()
}

#[test]
fn interval_policy_syncs_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FaultyStorage::default();
    let partition = open(
        dir.path(),
        &storage,
        FsyncPolicy::Interval(Duration::from_millis(20)),
    );
    partition.append(&[NewRecord::new(b"k", b"first")]).unwrap();
    let syncs = &storage.faults.file_syncs;
    // Let the flush of the first append (and of the segment creation) pass first.
    std::thread::sleep(Duration::from_millis(100));
    let before = syncs.load(Ordering::SeqCst);
    partition
        .append(&[NewRecord::new(b"k", b"second")])
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while syncs.load(Ordering::SeqCst) == before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        syncs.load(Ordering::SeqCst) > before,
        "the flusher synced the second append"
    );
    assert_eq!(partition.verify().unwrap(), 2);
}

#[test]
fn never_policy_syncs_only_on_close() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FaultyStorage::default();
    let partition = open(dir.path(), &storage, FsyncPolicy::Never);
    partition.append(&[NewRecord::new(b"k", b"v")]).unwrap();
    let syncs = &storage.faults.file_syncs;
    let after_create = syncs.load(Ordering::SeqCst);
    for i in 0..50u32 {
        partition
            .append(&[NewRecord::new(b"k", &i.to_le_bytes())])
            .unwrap();
    }
    assert_eq!(
        syncs.load(Ordering::SeqCst),
        after_create,
        "no fdatasync per append"
    );
    drop(partition);
    assert_eq!(
        syncs.load(Ordering::SeqCst),
        after_create + 1,
        "one fdatasync on close"
    );
    let reopened = open(dir.path(), &FaultyStorage::default(), FsyncPolicy::Never);
    assert_eq!(reopened.verify().unwrap(), 51);
}
