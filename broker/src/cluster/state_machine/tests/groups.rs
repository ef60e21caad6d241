//! A data group's state machine: an entry that follows a meta index waits until the meta
//! group applied it (the entries before it are applied meanwhile), a snapshot carries the
//! group's partitions only and names the meta index its records follow, and an install
//! waits for that index too.

use std::sync::Arc;
use std::time::Duration;

use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
use openraft::EntryPayload;

use strand_log::Seq;

use super::{append, entry, record, seq, Node};
use crate::cluster::groups::{AppliedIndexes, GroupMap, META_GROUP};
use crate::cluster::state_machine::GroupPlace;
use crate::cluster::types::{ClusterCommand, ReplicatedBatch};

fn map() -> GroupMap {
    GroupMap::new(2, vec!["t/"])
}

/// A node whose state machine applies data group `group` of [`map`].
fn data_node(group: u32, indexes: &Arc<AppliedIndexes>) -> Node {
    let Node {
        root,
        store,
        machine,
    } = Node::new();
    let machine = machine.in_place(GroupPlace {
        group,
        map: map(),
        indexes: indexes.clone(),
    });
    Node {
        root,
        store,
        machine,
    }
}

fn after_meta(
    index: u64,
    meta_index: u64,
    partition: &str,
    i: u64,
) -> openraft::Entry<crate::cluster::types::ClusterTypes> {
    let batch = ReplicatedBatch {
        partition: partition.to_owned(),
        records: vec![record(i, b"", b"row")],
    };
    entry(
        index,
        EntryPayload::Normal(ClusterCommand::AppendAfterMeta {
            term: 1,
            meta_index,
            batch,
        }),
    )
}

/// Two partitions of `map()` in group `group`, found by trying names.
fn partitions_of(group: u32, count: usize) -> Vec<String> {
    let map = map();
    (0..1_000)
        .map(|i| format!("t/app.t.1/u/{i:04x}.1"))
        .filter(|name| map.group_of(name) == group)
        .take(count)
        .collect()
}

#[tokio::test]
async fn a_data_entry_waits_for_the_meta_index_it_follows() {
    let indexes = Arc::new(AppliedIndexes::new(&map()));
    let mut node = data_node(1, &indexes);
    let partition = partitions_of(1, 1).remove(0);
    let entries = vec![
        append(1, &partition, vec![record(1, b"", b"first")]),
        after_meta(2, 7, &partition, 2),
    ];
    let replies = {
        let apply = node.machine.apply(entries);
        tokio::pin!(apply);
        let early = tokio::time::timeout(Duration::from_millis(200), &mut apply).await;
        assert!(
            early.is_err(),
            "applied before the meta group reached index 7"
        );
        // The entry before the waiting one is applied and published meanwhile.
        assert_eq!(indexes.get(1), 1);
        indexes.applied(META_GROUP, 7);
        tokio::time::timeout(Duration::from_secs(5), apply)
            .await
            .expect("applied once the meta group reached index 7")
            .unwrap()
    };
    assert_eq!(replies.len(), 2);
    assert_eq!(indexes.get(1), 2);
    assert_eq!(node.records()[&partition].len(), 2);
}

#[tokio::test]
async fn a_data_groups_snapshot_carries_its_partitions_and_waits_for_its_meta_index() {
    let indexes = Arc::new(AppliedIndexes::new(&map()));
    let mut leader = data_node(1, &indexes);
    let ours = partitions_of(1, 1).remove(0);
    let theirs = partitions_of(2, 1).remove(0);
    indexes.applied(META_GROUP, 4);
    leader
        .apply(vec![
            after_meta(1, 4, &ours, 1),
            // Another group's partition in this group's log (never proposed so): stored, but
            // its group's snapshots carry it, not this one's.
            append(2, &theirs, vec![record(2, b"", b"x")]),
        ])
        .await;
    let snapshot = leader
        .machine
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let data = snapshot.snapshot.into_inner();
    assert_eq!(super::super::snapshot::meta_index_of(&data).unwrap(), 4);

    let behind = Arc::new(AppliedIndexes::new(&map()));
    let mut follower = data_node(1, &behind);
    {
        let install = follower
            .machine
            .install_snapshot(&snapshot.meta, Box::new(std::io::Cursor::new(data)));
        tokio::pin!(install);
        assert!(
            tokio::time::timeout(Duration::from_millis(200), &mut install)
                .await
                .is_err(),
            "installed before the meta group reached index 4"
        );
        behind.applied(META_GROUP, 4);
        tokio::time::timeout(Duration::from_secs(5), install)
            .await
            .expect("installed once the meta group reached index 4")
            .unwrap();
    }
    let records = follower.records();
    assert_eq!(records[&ours].len(), 1);
    assert!(!records.contains_key(&theirs), "{records:?}");
    assert_eq!(behind.get(1), 2);
}

fn tick(index: u64, term: u64, i: u64) -> openraft::Entry<crate::cluster::types::ClusterTypes> {
    entry(
        index,
        EntryPayload::Normal(ClusterCommand::Tick { term, seq: seq(i) }),
    )
}

#[tokio::test]
async fn ticks_of_every_data_group_settle_this_nodes_tick_and_raise_its_generator() {
    let indexes = Arc::new(AppliedIndexes::new(&map()));
    let mut one = data_node(1, &indexes);
    let mut two = data_node(2, &indexes);
    // The entries here are of term 1: a tick issued in term 2 is not applied.
    one.machine.apply(vec![tick(1, 2, 10)]).await.unwrap();
    assert_eq!(indexes.ticks().settled(), None);
    assert!(one.store.last_issued_seq() < Seq(seq(10)));

    let partition = partitions_of(1, 1).remove(0);
    let entries = vec![
        append(2, &partition, vec![record(5, b"", b"row")]),
        tick(3, 1, 10),
    ];
    one.machine.apply(entries).await.unwrap();
    assert_eq!(indexes.ticks().settled(), None, "group 2 has not ticked");
    // Whoever leads next issues above the tick, though no record carries it.
    assert!(one.store.last_issued_seq() >= Seq(seq(10)));

    two.machine.apply(vec![tick(1, 1, 8)]).await.unwrap();
    assert_eq!(indexes.ticks().settled(), Some(Seq(seq(8))));
    two.machine.apply(vec![tick(2, 1, 20)]).await.unwrap();
    assert_eq!(indexes.ticks().settled(), Some(Seq(seq(10))));
}
