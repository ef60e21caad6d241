//! Group commit: concurrent appends share fsyncs, within one partition and across the
//! partitions of a store. Each sync is slowed down so the appenders that arrive while a leader
//! syncs are certain to pile up behind it, which makes the counts below deterministic.
//!
//! The counts are bounded on both sides (issue 16, checks): at most a few syncs (shared), and
//! at least one (an upper bound alone also passes a build that skips the fdatasync).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier};

use strand_log::storage::FaultyStorage;
use strand_log::{
    FsyncPolicy, NewRecord, Partition, PartitionConfig, PartitionId, ReadFrom, Store, StoreConfig,
};

const WRITERS: usize = 16;

fn config(storage: &FaultyStorage) -> PartitionConfig {
    PartitionConfig {
        fsync: FsyncPolicy::Always,
        storage: Arc::new(storage.clone()),
        ..PartitionConfig::default()
    }
}

#[test]
fn concurrent_appends_to_one_partition_share_fdatasyncs() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FaultyStorage::default();
    let partition = Partition::open(dir.path(), config(&storage)).unwrap();
    partition.append(&[NewRecord::new(b"warm", b"up")]).unwrap();
    let faults = storage.faults.clone();
    faults.file_syncs.store(0, Ordering::SeqCst);
    faults.sync_delay_ms.store(200, Ordering::SeqCst);
    let barrier = Arc::new(Barrier::new(WRITERS));
    let threads: Vec<_> = (0..WRITERS)
        .map(|i| {
            let (partition, barrier) = (partition.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let key = format!("k{i}");
                partition
                    .append(&[NewRecord::new(key.as_bytes(), b"v")])
                    .unwrap()
            })
        })
        .collect();
    let mut seqs: Vec<_> = threads
        .into_iter()
        .map(|t| t.join().unwrap().first)
        .collect();
    let syncs = faults.file_syncs.load(Ordering::SeqCst);
    // Both bounds: shared, and not skipped (an append acknowledged without any fdatasync under
    // `fsync=always` would pass the upper bound alone).
    assert!(
        syncs >= 1,
        "{WRITERS} appends under fsync=always were acknowledged without an fdatasync"
    );
    assert!(
        syncs <= 3,
        "{WRITERS} appends took {syncs} fdatasyncs; expected them shared"
    );
    seqs.sort();
    let snapshot = partition.snapshot();
    let read: Vec<_> = snapshot
        .records(ReadFrom::Earliest)
        .skip(1)
        .map(|r| r.unwrap().seq)
        .collect();
    assert_eq!(
        read, seqs,
        "every acknowledged append is readable, in _seq order"
    );
}

#[test]
fn concurrent_appends_across_partitions_share_one_file_system_sync() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FaultyStorage::default();
    let store_config = StoreConfig {
        partition: config(&storage),
        shared_sync_partitions_min: 4,
        ..StoreConfig::default()
    };
    let store = Arc::new(Store::open(dir.path(), store_config).unwrap());
    let ids: Vec<_> = (0..WRITERS)
        .map(|i| PartitionId::new(format!("t/p{i}")).unwrap())
        .collect();
    for id in &ids {
        store.append(id, &[NewRecord::new(b"warm", b"up")]).unwrap();
    }
    let faults = storage.faults.clone();
    faults.file_syncs.store(0, Ordering::SeqCst);
    faults.sync_delay_ms.store(200, Ordering::SeqCst);
    let barrier = Arc::new(Barrier::new(WRITERS));
    let threads: Vec<_> = ids
        .iter()
        .cloned()
        .map(|id| {
            let (store, barrier) = (store.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                store.append(&id, &[NewRecord::new(b"k", b"v")]).unwrap()
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let file_syncs = faults.file_syncs.load(Ordering::SeqCst);
    let file_system_syncs = faults.file_system_syncs.load(Ordering::SeqCst);
    assert!(
        file_system_syncs >= 1,
        "a round over many partitions uses syncfs"
    );
    assert!(
        file_syncs + file_system_syncs <= 4,
        "{WRITERS} appends to {WRITERS} partitions took {file_syncs} fdatasyncs and \
         {file_system_syncs} syncfs calls; expected them shared"
    );
    for id in &ids {
        let partition = store.partition(id).unwrap();
        assert_eq!(
            partition.verify().unwrap(),
            2,
            "both records of {id} are readable"
        );
    }
}
