//! A failed atomic whole-file write returns an error (or, for derived data, is let go), leaves
//! the old file intact, poisons nothing, and a restart sees a consistent state:
//! - the store's `_seq` lease: the append that needed it fails before any `_seq` is issued;
//! - `partition.meta` (the resume floors): retention stops before removing anything;
//! - a segment's index at sealing: the append succeeds and the index is rebuilt on load.

use strand_log::limits::SEQ_LEASE_MS;
use strand_log::{NewRecord, PartitionId, RetentionPolicy, Store, StoreConfig};

use crate::harness::{append_range, assert_injected, files_ending, read_all, Rig, SEGMENT_BYTES};
use crate::model::{index_path, segment_first_seqs};

#[test]
fn failed_lease_write_fails_the_append_and_keeps_the_old_lease() {
    let root = tempfile::tempdir().unwrap();
    let rig = Rig::new();
    let config = || StoreConfig {
        partition: rig.config(),
        ..StoreConfig::default()
    };
    let id = PartitionId::new("t/p").unwrap();
    let lease_path = root.path().join("seq.lease");
    let mut acked = Vec::new();
    let store = Store::open(root.path(), config()).unwrap();
    for i in 0..5u8 {
        acked.push(
            store
                .append(&id, &[NewRecord::new(b"k", &[i])])
                .unwrap()
                .first,
        );
    }
    let lease = std::fs::read(&lease_path).unwrap();
    let last_issued = store.last_issued_seq();
    // Past the lease: the next append must extend it first.
    rig.clock.shift(SEQ_LEASE_MS as i64 + 1_000);

    let failed = rig.with_fault(
        |f| &f.fail_atomic_write,
        || store.append(&id, &[NewRecord::new(b"k", b"x")]),
    );
    assert_injected(failed, &lease_path, "atomic write");
    let partition = store.partition(&id).unwrap();
    assert!(
        !partition.is_poisoned(),
        "a lease that could not be extended is not damage"
    );
    assert_eq!(
        std::fs::read(&lease_path).unwrap(),
        lease,
        "the old lease is intact"
    );
    assert_eq!(store.last_issued_seq(), last_issued, "no _seq was issued");
    let stored: Vec<_> = read_all(&partition).iter().map(|r| r.seq).collect();
    assert_eq!(stored, acked);
    drop((partition, store));

    // A restart seeds the generator from the old lease and issues only higher ids.
    let store = Store::open(root.path(), config()).unwrap();
    let partition = store.partition(&id).unwrap();
    let stored: Vec<_> = read_all(&partition).iter().map(|r| r.seq).collect();
    assert_eq!(stored, acked);
    let after = store
        .append(&id, &[NewRecord::new(b"k", b"after")])
        .unwrap();
    assert!(after.first > last_issued);
    assert_ne!(
        std::fs::read(&lease_path).unwrap(),
        lease,
        "the lease moved on"
    );
}

#[test]
fn failed_meta_write_stops_retention_before_anything_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let rig = Rig::new();
    let mut model = Vec::new();
    let partition = rig.open(dir.path());
    append_range(&partition, &rig, 0, 40, &mut model);
    // A first sweep writes `partition.meta`, so there is an old file to keep.
    let first = RetentionPolicy {
        max_bytes: Some(2 * SEGMENT_BYTES),
        ..RetentionPolicy::default()
    };
    assert!(
        partition
            .apply_retention(&first, rig.clock.now())
            .unwrap()
            .segments_removed
            > 0
    );
    append_range(&partition, &rig, 40, 60, &mut model);
    let meta_path = dir.path().join("partition.meta");
    let meta = std::fs::read(&meta_path).unwrap();
    let floors = partition.resume_floors();
    let records = read_all(&partition);
    let segments = segment_first_seqs(dir.path());

    let smaller = RetentionPolicy {
        max_bytes: Some(1),
        ..RetentionPolicy::default()
    };
    let failed = rig.with_fault(
        |f| &f.fail_atomic_write,
        || partition.apply_retention(&smaller, rig.clock.now()),
    );
    assert_injected(failed, &meta_path, "atomic write");
    assert!(!partition.is_poisoned());
    assert_eq!(
        partition.resume_floors(),
        floors,
        "floors unchanged in memory"
    );
    assert_eq!(std::fs::read(&meta_path).unwrap(), meta, "and on disk");
    assert_eq!(
        read_all(&partition),
        records,
        "nothing was taken out of the view"
    );
    assert_eq!(segment_first_seqs(dir.path()), segments, "nor removed");
    append_range(&partition, &rig, 60, 61, &mut model);
    let records = read_all(&partition);
    drop(partition);

    let partition = rig.open(dir.path());
    assert_eq!(partition.resume_floors(), floors);
    assert_eq!(read_all(&partition), records);
    assert!(
        files_ending(dir.path(), ".tmp").is_empty(),
        "the temporary was cleaned up"
    );
    let outcome = partition
        .apply_retention(&smaller, rig.clock.now())
        .unwrap();
    assert!(outcome.segments_removed > 0);
    assert!(partition.lowest_resumable_seq() > floors.lowest_resumable_seq);
}

#[test]
fn failed_index_write_at_seal_keeps_appending_and_the_index_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let rig = Rig::new();
    let mut model = Vec::new();
    let partition = rig.open(dir.path());
    rig.with_fault(
        |f| &f.fail_atomic_write,
        || append_range(&partition, &rig, 0, 50, &mut model),
    );
    let segments = segment_first_seqs(dir.path());
    assert!(segments.len() >= 3, "{segments:?}");
    assert!(!partition.is_poisoned(), "an index is derived data");
    let sealed = &segments[..segments.len() - 1];
    for &first_seq in sealed {
        assert!(!index_path(dir.path(), first_seq).exists());
    }
    assert_eq!(read_all(&partition), model);
    drop(partition);

    let partition = rig.open(dir.path());
    assert_eq!(read_all(&partition), model);
    for &first_seq in sealed {
        assert!(
            index_path(dir.path(), first_seq).exists(),
            "rebuilt and written on load"
        );
    }
    assert_eq!(partition.verify().unwrap(), model.len() as u64);
}
