//! A store with 20,000 partitions and `open_partitions_max = 256` writes and reads every one of
//! them while holding a bounded number of descriptors: idle partitions are closed, and a closed
//! partition reopens with its records intact.
//!
//! Descriptors are counted in `/proc/self/fd` relative to the count before the store opened;
//! each open partition holds one (its active segment), plus a small fixed slack for the store's
//! own files and the directory listing that does the counting.
//!
//! Runtime: with real fsyncs this test takes about 95 s here, almost all of it in fsync (a new
//! segment is fsync'd with its directory before any record goes in, a closed `never` partition
//! is fdatasync'd, a reopened one fsync'd after recovery). The fsyncs prove nothing about
//! descriptors, so the files (and directory entries) go through a storage that skips them;
//! what remains is creating, listing and removing 20,000 directories and files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use strand_log::storage::{AtomicWrite, Durability, FileStorage, Storage, StorageFile};
use strand_log::MappedBytes;

use strand_log::{
    FsyncPolicy, NewRecord, PartitionConfig, PartitionId, ReadFrom, Store, StoreConfig,
};

const PARTITIONS: usize = 20_000;
const OPEN_PARTITIONS_MAX: usize = 256;
const DESCRIPTOR_SLACK: usize = 64;
const RECORDS_PER_PARTITION: usize = 3;
/// Count descriptors after every this many partitions (each count lists `/proc/self/fd`).
const SAMPLE_EVERY: usize = 7;

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn id(i: usize) -> PartitionId {
    PartitionId::new(format!("t/u{i}")).unwrap()
}

fn payload(i: usize, j: usize) -> Vec<u8> {
    format!("partition {i} record {j}").into_bytes()
}

/// Plain files whose fsyncs are skipped: this test is about descriptors, and 20,000 partition
/// creations would otherwise spend most of their time in fsync. Each file is the same single
/// descriptor a `FileStorage` file is.
#[derive(Debug)]
struct UnsyncedStorage;

#[derive(Debug)]
struct UnsyncedFile(Box<dyn StorageFile>);

impl StorageFile for UnsyncedFile {
    fn write_all_at(&self, bytes: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(bytes, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        Ok(())
    }
    fn sync_all(&self) -> io::Result<()> {
        Ok(())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.0.len()
    }
    fn map(&self, len: u64) -> io::Result<MappedBytes> {
        self.0.map(len)
    }
}

impl Storage for UnsyncedStorage {
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        Ok(Box::new(UnsyncedFile(FileStorage.create_new(path)?)))
    }
    fn open_existing(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        Ok(Box::new(UnsyncedFile(FileStorage.open_existing(path)?)))
    }
    fn sync_file_system(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }
    fn sync_directory(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }
    fn write_atomically(&self, path: &Path, bytes: &[u8], how: AtomicWrite) -> io::Result<()> {
        let how = AtomicWrite {
            durability: Durability::Unsynced,
            ..how
        };
        FileStorage.write_atomically(path, bytes, how)
    }
}

/// Track the highest descriptor count seen and fail as soon as it passes the bound.
struct DescriptorWatch {
    baseline: usize,
    peak: usize,
}

impl DescriptorWatch {
    fn check(&mut self, store: &Store, at: &str) {
        let open = open_descriptors();
        self.peak = self.peak.max(open);
        let bound = self.baseline + OPEN_PARTITIONS_MAX + DESCRIPTOR_SLACK;
        assert!(
            open <= bound,
            "{at}: {open} descriptors open, bound {bound}"
        );
        let partitions = store.open_partitions();
        assert!(
            partitions <= OPEN_PARTITIONS_MAX,
            "{at}: {partitions} partitions open"
        );
    }
}

#[test]
fn store_20000_partitions_bounded_descriptors() {
    let root = tempfile::tempdir().unwrap();
    let mut watch = DescriptorWatch {
        baseline: open_descriptors(),
        peak: 0,
    };
    let config = StoreConfig {
        partition: PartitionConfig {
            fsync: FsyncPolicy::Never,
            storage: Arc::new(UnsyncedStorage),
            ..PartitionConfig::default()
        },
        open_partitions_max: OPEN_PARTITIONS_MAX,
        ..StoreConfig::default()
    };
    let store = Store::open(root.path(), config).unwrap();
    let started = Instant::now();
    for i in 0..PARTITIONS {
        let payloads: Vec<Vec<u8>> = (0..RECORDS_PER_PARTITION).map(|j| payload(i, j)).collect();
        let records: Vec<NewRecord<'_>> =
            payloads.iter().map(|p| NewRecord::new(b"k", p)).collect();
        store.append(&id(i), &records[..1]).unwrap();
        store.append(&id(i), &records[1..]).unwrap();
        if i % SAMPLE_EVERY == 0 {
            watch.check(&store, &format!("writing partition {i}"));
        }
    }
    let written = started.elapsed();
    assert_eq!(store.open_partitions(), OPEN_PARTITIONS_MAX);

    let started = Instant::now();
    for i in 0..PARTITIONS {
        let partition = store.partition(&id(i)).unwrap();
        let snapshot = partition.snapshot();
        let read: Vec<Vec<u8>> = snapshot
            .records(ReadFrom::Earliest)
            .map(|r| r.unwrap().payload.to_vec())
            .collect();
        let expected: Vec<Vec<u8>> = (0..RECORDS_PER_PARTITION).map(|j| payload(i, j)).collect();
        assert_eq!(read, expected, "partition {i}");
        drop((snapshot, partition));
        if i % SAMPLE_EVERY == 0 {
            watch.check(&store, &format!("reading partition {i}"));
        }
    }
    let read = started.elapsed();
    assert_eq!(store.partition_ids().unwrap().len(), PARTITIONS);
    watch.check(&store, "end");
    eprintln!(
        "write {written:?}, read {read:?}; descriptors: baseline {}, peak {}",
        watch.baseline, watch.peak
    );
}
