//! Partitions a caller holds (as the broker holds every subscribed user's partition) do not
//! hold a descriptor each: with `open_partitions_max = 32`, 400 held partitions are written,
//! read and written again, and the process holds about 32 segment files at any time. A
//! partition whose file was closed reads from its map and reopens the file to write; after
//! reopening the store every record is there. (Issue 17, defect 5: 600 subscribed users held
//! 1,236 descriptors, and the server ran out.)
//!
//! Descriptors are counted in `/proc/self/fd` relative to the count before the store opened,
//! with a small slack for the store's own files and the listing that counts them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use strand_log::{
    FsyncPolicy, NewRecord, Partition, PartitionConfig, PartitionId, ReadFrom, Store, StoreConfig,
};

const PARTITIONS: usize = 400;
const OPEN_PARTITIONS_MAX: usize = 32;
const DESCRIPTOR_SLACK: usize = 16;

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn id(i: usize) -> PartitionId {
    PartitionId::new(format!("t/u{i}")).unwrap()
}

fn payload(i: usize, round: usize) -> Vec<u8> {
    format!("partition {i} round {round}").into_bytes()
}

fn payloads(partition: &Partition) -> Vec<Vec<u8>> {
    let snapshot = partition.snapshot();
    snapshot
        .records(ReadFrom::Earliest)
        .map(|r| r.unwrap().payload.to_vec())
        .collect()
}

fn check(store: &Store, baseline: usize, at: &str) {
    let open = open_descriptors();
    let bound = baseline + OPEN_PARTITIONS_MAX + DESCRIPTOR_SLACK;
    assert!(
        open <= bound,
        "{at}: {open} descriptors open, bound {bound}"
    );
    let files = store.open_segment_files();
    assert!(
        files <= OPEN_PARTITIONS_MAX,
        "{at}: {files} segment files open"
    );
}

fn store(root: &std::path::Path, fsync: FsyncPolicy) -> Store {
    let config = StoreConfig {
        partition: PartitionConfig {
            fsync,
            ..PartitionConfig::default()
        },
        open_partitions_max: OPEN_PARTITIONS_MAX,
        ..StoreConfig::default()
    };
    Store::open(root, config).unwrap()
}

#[test]
fn held_partitions_hold_a_bounded_number_of_descriptors() {
    // `interval` too: a partition closed with unsynced appends is synced first, and the
    // flusher then finds nothing open to sync.
    for fsync in [
        FsyncPolicy::Always,
        FsyncPolicy::Interval(std::time::Duration::from_millis(5)),
    ] {
        let root = tempfile::tempdir().unwrap();
        let baseline = open_descriptors();
        let store = store(root.path(), fsync);
        let mut held: Vec<Arc<Partition>> = Vec::with_capacity(PARTITIONS);
        for i in 0..PARTITIONS {
            let partition = store.partition(&id(i)).unwrap();
            partition
                .append(&[NewRecord::new(b"k", &payload(i, 0))])
                .unwrap();
            held.push(partition);
            if i % 10 == 0 {
                check(&store, baseline, &format!("{fsync:?}: first write of {i}"));
            }
        }
        // Every held partition reads (from its map) and writes (reopening its file) again.
        for (i, partition) in held.iter().enumerate() {
            assert_eq!(payloads(partition), vec![payload(i, 0)]);
            partition
                .append(&[NewRecord::new(b"k", &payload(i, 1))])
                .unwrap();
            assert_eq!(payloads(partition), vec![payload(i, 0), payload(i, 1)]);
            if i % 10 == 0 {
                check(&store, baseline, &format!("{fsync:?}: second write of {i}"));
            }
        }
        store.sync().unwrap();
        drop((held, store));

        let store = self::store(root.path(), FsyncPolicy::Always);
        for i in 0..PARTITIONS {
            let partition = store.partition(&id(i)).unwrap();
            assert_eq!(payloads(&partition), vec![payload(i, 0), payload(i, 1)]);
            assert_eq!(partition.verify().unwrap(), 2);
        }
        check(&store, baseline, "after reopening");
    }
}
