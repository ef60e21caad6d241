//! [`Partition::tick`]: a `_seq` given to no record, ordered with the records of every
//! partition of the store. A tick taken while a batch is submitted but not committed is not
//! settled until that batch is published; once settled, a snapshot holds every record below
//! the tick; records appended later get higher `_seq`s; nothing is written for a tick.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use strand_log::{FsyncPolicy, NewRecord, Partition, PartitionConfig, ReadFrom};

#[test]
fn a_tick_settles_after_the_records_below_it_are_published() {
    let dir = tempfile::tempdir().unwrap();
    let config = PartitionConfig {
        fsync: FsyncPolicy::Never,
        ..PartitionConfig::default()
    };
    let partition = Partition::open(dir.path(), config.clone()).unwrap();
    let first = partition.append(&[NewRecord::new(b"a", b"1")]).unwrap();
    let idle = partition.tick().unwrap();
    assert!(idle.seq > first.last, "above every record issued before");
    assert!(
        partition.tick_settled(&idle),
        "nothing in flight: settled at once"
    );

    let ticket = partition.submit(&[NewRecord::new(b"b", b"2")]).unwrap();
    let pending = partition.tick().unwrap();
    assert!(pending.seq > ticket.range().last);
    assert!(
        !partition.tick_settled(&pending),
        "a batch below the tick is not committed yet"
    );
    ticket.wait().unwrap();
    assert!(partition.tick_settled(&pending));
    let below: Vec<_> = partition
        .snapshot()
        .records(ReadFrom::Earliest)
        .map(|r| r.unwrap().seq)
        .filter(|seq| *seq < pending.seq)
        .collect();
    assert_eq!(below.len(), 2, "both records below the tick are published");

    let later = partition.append(&[NewRecord::new(b"c", b"3")]).unwrap();
    assert!(
        later.first > pending.seq,
        "records after a tick are above it"
    );
    drop(partition);
    let reopened = Partition::open(dir.path(), config).unwrap();
    let count = reopened.snapshot().records(ReadFrom::Earliest).count();
    assert_eq!(count, 3, "a tick writes nothing");
    let after_restart = reopened.append(&[NewRecord::new(b"d", b"4")]).unwrap();
    assert!(
        after_restart.first > pending.seq,
        "a restart never reissues a tick's _seq"
    );
}
