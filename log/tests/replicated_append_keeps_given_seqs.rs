//! `Partition::append_replicated` (issue 22's groundwork: a cluster replica applies its group's
//! log): the replica stores exactly the records the leader wrote, with the leader's `_seq`s and
//! times, across segment rolls and a reopen; it refuses a batch that does not start above its
//! last record (nothing written); and the replica's own generator never issues a `_seq` at or
//! below one it applied, before or after a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod model;

use std::sync::Arc;

use model::{append_checked, read, ModelRecord, RecordSpec, TestClock, START_UNIX_MS};
use proptest::prelude::*;
use strand_log::{
    FsyncPolicy, LogError, NewRecord, NodeId, Partition, PartitionConfig, ReadFrom,
    ReplicatedRecord, Seq,
};

fn config(clock: &Arc<TestClock>, node: u16) -> PartitionConfig {
    PartitionConfig {
        segment_bytes_max: 4096,
        fsync: FsyncPolicy::Never,
        clock: clock.clone(),
        node: NodeId::new(node).unwrap(),
        ..PartitionConfig::default()
    }
}

fn replicated(record: &ModelRecord) -> ReplicatedRecord<'_> {
    ReplicatedRecord {
        seq: record.seq,
        timestamp_unix_ms: record.timestamp_unix_ms,
        record: NewRecord {
            key: &record.key,
            payload: &record.payload,
            flags: if record.tombstone {
                strand_log::RecordFlags::TOMBSTONE
            } else {
                strand_log::RecordFlags::NONE
            },
            previous_version: record.previous_version,
        },
    }
}

fn arb_batches() -> impl Strategy<Value = Vec<Vec<RecordSpec>>> {
    let record = (
        prop::collection::vec(any::<u8>(), 0..4),
        prop::collection::vec(any::<u8>(), 0..600),
        any::<bool>(),
    )
        .prop_map(|(key, payload, tombstone)| RecordSpec {
            tombstone: tombstone && !key.is_empty(),
            key,
            payload,
            previous_version: Seq::ZERO,
        });
    prop::collection::vec(prop::collection::vec(record, 1..6), 1..30)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn a_replica_holds_the_leaders_records_exactly(batches in arb_batches()) {
        let leader_dir = tempfile::tempdir().unwrap();
        let replica_dir = tempfile::tempdir().unwrap();
        let leader_clock = TestClock::new(START_UNIX_MS + 60_000);
        // The replica's clock is behind the leader's: its own `_seq`s would be lower.
        let replica_clock = TestClock::new(START_UNIX_MS);
        let leader = Partition::open(leader_dir.path(), config(&leader_clock, 1)).unwrap();
        let replica = Partition::open(replica_dir.path(), config(&replica_clock, 2)).unwrap();
        let mut history = Vec::new();
        for batch in &batches {
            let before = history.len();
            append_checked(&leader, &leader_clock, batch, &mut history);
            let applied: Vec<ReplicatedRecord<'_>> =
                history[before..].iter().map(replicated).collect();
            let range = replica.append_replicated(&applied).unwrap();
            prop_assert_eq!(range.first, history[before].seq);
            prop_assert_eq!(range.last, history.last().unwrap().seq);
            leader_clock.shift(7);
        }
        prop_assert_eq!(read(&replica.snapshot(), ReadFrom::Earliest), history.clone());

        // A local write on the replica gets a `_seq` above everything it applied.
        let last = history.last().unwrap().seq;
        let own = replica.append(&[NewRecord { payload: b"own", ..NewRecord::default() }]).unwrap();
        prop_assert!(own.first > last, "{} after applying {}", own.first, last);

        // So does one after a restart, and the records are all still there.
        drop(replica);
        let replica = Partition::open(replica_dir.path(), config(&replica_clock, 2)).unwrap();
        let stored = read(&replica.snapshot(), ReadFrom::Earliest);
        prop_assert_eq!(&stored[..history.len()], &history[..]);
        let again = replica.append(&[NewRecord { payload: b"again", ..NewRecord::default() }]).unwrap();
        prop_assert!(again.first > own.last);
    }
}

#[test]
fn a_batch_not_above_the_last_record_is_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(START_UNIX_MS);
    let replica = Partition::open(dir.path(), config(&clock, 2)).unwrap();
    let record = NewRecord {
        key: b"k",
        payload: b"v",
        ..NewRecord::default()
    };
    let at = |ms: u64, sequence: u64| ReplicatedRecord {
        seq: Seq((ms << 22) | (1 << 12) | sequence),
        timestamp_unix_ms: START_UNIX_MS,
        record,
    };
    replica
        .append_replicated(&[at(1000, 0), at(1000, 1)])
        .unwrap();
    let refused = [
        vec![at(1000, 1)],              // equal to the last
        vec![at(999, 5)],               // below it
        vec![at(1001, 0), at(1001, 0)], // not increasing within the batch
        vec![at(1002, 0), at(1000, 9)],
    ];
    for batch in refused {
        let error = replica.append_replicated(&batch).unwrap_err();
        assert!(matches!(error, LogError::InvalidBatch(_)), "{error}");
    }
    let stored = read(&replica.snapshot(), ReadFrom::Earliest);
    assert_eq!(
        stored.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [at(1000, 0).seq, at(1000, 1).seq],
        "refused batches wrote nothing"
    );
}
