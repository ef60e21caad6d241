//! Opening a new partition creates its directory. When that fails, the open returns the error
//! and the store goes on serving its other partitions; the partition opens once it can.

use strand_log::{NewRecord, PartitionId, Store, StoreConfig};

use crate::harness::{assert_injected, Rig};

#[test]
fn failed_directory_creation_is_an_error_and_other_partitions_work() {
    let root = tempfile::tempdir().unwrap();
    let rig = Rig::new();
    let config = StoreConfig {
        partition: rig.config(),
        ..StoreConfig::default()
    };
    let store = Store::open(root.path(), config).unwrap();
    let old = PartitionId::new("t/old").unwrap();
    let new = PartitionId::new("t/new").unwrap();
    store.append(&old, &[NewRecord::new(b"k", b"1")]).unwrap();

    let failed = rig.with_fault(|f| &f.fail_create_dir, || store.partition(&new));
    let new_dir = root.path().join("partitions/t/new");
    assert_injected(failed, &new_dir, "create directory");
    assert!(!new_dir.exists());
    store.append(&old, &[NewRecord::new(b"k", b"2")]).unwrap();
    assert!(!store.partition(&old).unwrap().is_poisoned());

    store.append(&new, &[NewRecord::new(b"k", b"1")]).unwrap();
    assert_eq!(store.partition(&new).unwrap().verify().unwrap(), 1);
}
