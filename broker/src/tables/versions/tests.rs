use super::*;
use strand_log::{FsyncPolicy, NewRecord, PartitionConfig};

fn open(dir: &std::path::Path) -> KeyedPartition {
    let config = PartitionConfig {
        fsync: FsyncPolicy::Never,
        ..PartitionConfig::default()
    };
    KeyedPartition::open(Partition::open(dir, config).unwrap()).unwrap()
}

fn no_check(_: &dyn Fn(&[u8]) -> Option<KeyVersion>) -> Result<(), ()> {
    Ok(())
}

#[test]
fn index_tracks_newest_version_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let seqs = {
        let rows = open(dir.path());
        let put = [
            RowWrite::Put {
                key: b"1",
                row: b"a",
            },
            RowWrite::Put {
                key: b"2",
                row: b"b",
            },
        ];
        let first = rows.apply(&put, no_check).unwrap().unwrap();
        let del = rows
            .apply(&[RowWrite::Delete { key: b"1" }], no_check)
            .unwrap()
            .unwrap();
        assert!(del[0] > first[1]);
        assert_eq!(
            rows.version(b"1"),
            Some(KeyVersion {
                seq: del[0],
                deleted: true
            })
        );
        (first, del)
    };
    let rows = open(dir.path());
    assert_eq!(
        rows.version(b"1"),
        Some(KeyVersion {
            seq: seqs.1[0],
            deleted: true
        })
    );
    assert_eq!(
        rows.version(b"2"),
        Some(KeyVersion {
            seq: seqs.0[1],
            deleted: false
        })
    );
    let snapshot = rows.snapshot();
    let as_of_first = versions_as_of(&snapshot, seqs.0[1]).unwrap();
    assert_eq!(as_of_first.len(), 2);
    assert!(as_of_first.iter().all(|r| !r.flags.is_tombstone()));
    let latest = versions_as_of(&snapshot, Seq::MAX).unwrap();
    assert_eq!(latest.len(), 2, "one newest version per key");
    // In `_seq` order: key 2's insert, then key 1's delete (which replaced its insert).
    assert!(!latest[0].flags.is_tombstone());
    assert!(latest[1].flags.is_tombstone());
    assert_eq!(latest[1].previous_version, seqs.0[0]);
}

#[test]
fn version_as_of_follows_the_links_back_from_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let rows = open(dir.path());
    let put = |row: &'static [u8]| [RowWrite::Put { key: b"k", row }];
    let first = rows.apply(&put(b"a"), no_check).unwrap().unwrap()[0];
    let second = rows.apply(&put(b"b"), no_check).unwrap().unwrap()[0];
    let boundary = rows.indexed_snapshot().last_seq();
    assert_eq!(boundary, second);
    let third = rows.apply(&put(b"c"), no_check).unwrap().unwrap()[0];
    let gone = rows
        .apply(&[RowWrite::Delete { key: b"k" }], no_check)
        .unwrap()
        .unwrap()[0];
    assert_eq!(rows.version(b"k").unwrap().seq, gone);
    let mut read = 0;
    let as_of = |seq, read: &mut u64| rows.version_as_of(b"k", seq, read).unwrap();
    assert_eq!(as_of(boundary, &mut read), Some(second));
    assert_eq!(read, 2, "the delete, then the third version");
    assert_eq!(as_of(first, &mut read), Some(first));
    assert_eq!(as_of(third, &mut read), Some(third));
    assert_eq!(as_of(Seq::ZERO, &mut read), None);
    let mut none = 0;
    assert_eq!(as_of(gone, &mut none), Some(gone));
    assert_eq!(
        none, 0,
        "the index's version at or below the boundary needs no read"
    );
    assert_eq!(rows.version_as_of(b"x", gone, &mut none).unwrap(), None);
}

#[test]
fn rejected_check_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let rows = open(dir.path());
    let put = [RowWrite::Put {
        key: b"1",
        row: b"a",
    }];
    let refused = rows.apply(&put, |_| Err("duplicate")).unwrap();
    assert_eq!(refused, Err("duplicate"));
    assert_eq!(rows.version(b"1"), None);
    assert_eq!(rows.partition().last_seq(), Seq::ZERO);
    let repeated = [
        RowWrite::Put {
            key: b"1",
            row: b"a",
        },
        RowWrite::Delete { key: b"1" },
    ];
    assert!(matches!(
        rows.apply(&repeated, no_check),
        Err(VersionError::KeyRepeated)
    ));
}

/// A cluster member's partition: records arrive in the log as applied entries (here appended
/// the way the state machine does), and the index follows them before a snapshot is handed
/// out; a write before the node joined its cluster is refused, and writes nothing.
#[test]
fn replicated_partition_indexes_applied_records_and_refuses_writes_until_joined() {
    use strand_log::{PartitionId, ReplicatedRecord};
    let dir = tempfile::tempdir().unwrap();
    let config = PartitionConfig {
        fsync: FsyncPolicy::Never,
        ..PartitionConfig::default()
    };
    let log = Partition::open(dir.path(), config).unwrap();
    let id = PartitionId::new("t/app.items.1/shared").unwrap();
    let rows = KeyedPartition::open_replicated(log.clone(), id, SharedWriter::default()).unwrap();
    assert!(rows.is_replicated());

    let refused = rows.apply(
        &[RowWrite::Put {
            key: b"1",
            row: b"a",
        }],
        no_check,
    );
    assert!(
        matches!(refused, Err(VersionError::Replication(_))),
        "{refused:?}"
    );
    assert!(rows
        .try_queue(&[RowWrite::Delete { key: b"1" }], no_check)
        .unwrap()
        .is_none());
    assert_eq!(log.last_seq(), Seq::ZERO);

    let applied = |seq: u64, key: &'static [u8], tombstone: bool, previous: u64| {
        let record = match tombstone {
            true => NewRecord::tombstone(key),
            false => NewRecord::new(key, b"row"),
        };
        let record = NewRecord {
            previous_version: Seq(previous),
            ..record
        };
        log.append_replicated(&[ReplicatedRecord {
            seq: Seq(seq),
            timestamp_unix_ms: 1,
            record,
        }])
        .unwrap();
    };
    applied(10, b"1", false, 0);
    applied(11, b"2", false, 0);
    applied(12, b"1", true, 10);
    let snapshot = rows.indexed_snapshot();
    assert_eq!(snapshot.last_seq(), Seq(12));
    let deleted = KeyVersion {
        seq: Seq(12),
        deleted: true,
    };
    assert_eq!(rows.version(b"1"), Some(deleted));
    let live = KeyVersion {
        seq: Seq(11),
        deleted: false,
    };
    assert_eq!(rows.version(b"2"), Some(live));
    // As of a boundary before the delete, key 1's version is found through the links.
    let mut read = 0;
    assert_eq!(
        rows.version_as_of(b"1", Seq(11), &mut read).unwrap(),
        Some(Seq(10))
    );

    // A reopened member indexes the same from its log.
    drop(rows);
    let id = PartitionId::new("t/app.items.1/shared").unwrap();
    let reopened = KeyedPartition::open_replicated(log, id, SharedWriter::default()).unwrap();
    assert_eq!(reopened.version(b"1"), Some(deleted));
    assert_eq!(reopened.version(b"2"), Some(live));
}
