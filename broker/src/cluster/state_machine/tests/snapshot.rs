//! Snapshots: built on one node, installed on a fresh one, they leave both holding the same
//! records, and both agree after later entries.

use std::io::Cursor;

use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
use openraft::testing::log_id;
use openraft::{Entry, EntryPayload, Snapshot};

use super::{append, entry, membership, record, tombstone, Node};
use crate::cluster::types::{ClusterReply, ClusterTypes};

/// Entries `first..` that fill several partitions: keyed rows with updates and tombstones,
/// a system partition, and a topic partition of more than a snapshot batch (1 MiB) and many
/// segments.
fn history(first: u64) -> Vec<Entry<ClusterTypes>> {
    let mut entries = vec![
        entry(first, EntryPayload::Membership(membership(&[1, 2, 3]))),
        append(
            first + 1,
            "tables/app.t/alice",
            vec![record(1, b"k1", b"a"), record(2, b"k2", b"b")],
        ),
        append(first + 2, "tables/app.t/bob", vec![record(3, b"k1", b"c")]),
        append(
            first + 3,
            "tables/app.t/alice",
            vec![
                OwnedRecordExt::after(record(4, b"k1", b"a'"), 1),
                tombstone(5, b"k2", 2),
            ],
        ),
        append(first + 4, "sys/users", vec![record(6, b"u/alice", b"{}")]),
    ];
    let payload = vec![7u8; 2000];
    let mut next = 100;
    for batch in 0..35 {
        let records = (0..20).map(|i| record(next + i, b"", &payload)).collect();
        entries.push(append(first + 5 + batch, "topics/app.events/0", records));
        next += 20;
    }
    entries
}

/// Sets `previous_version` in test records.
trait OwnedRecordExt {
    fn after(self, previous: u64) -> Self;
}

impl OwnedRecordExt for crate::cluster::types::OwnedRecord {
    fn after(mut self, previous: u64) -> Self {
        self.previous_version = super::seq(previous);
        self
    }
}

async fn install(node: &mut Node, snapshot: &Snapshot<ClusterTypes>) {
    let mut receiving = node.machine.begin_receiving_snapshot().await.unwrap();
    receiving
        .get_mut()
        .extend_from_slice(snapshot.snapshot.get_ref());
    node.machine
        .install_snapshot(&snapshot.meta, receiving)
        .await
        .unwrap();
}

fn later_entries(first: u64) -> Vec<Entry<ClusterTypes>> {
    vec![
        append(first, "tables/app.t/alice", vec![record(5000, b"k3", b"d")]),
        append(
            first + 1,
            "tables/app.t/carol",
            vec![record(5001, b"k1", b"e")],
        ),
        entry(first + 2, EntryPayload::Blank),
    ]
}

#[tokio::test]
async fn a_snapshot_installed_on_a_fresh_node_holds_every_record() {
    let mut leader = Node::new();
    let entries = history(1);
    let last = entries.len() as u64;
    leader.apply(entries).await;
    let mut builder = leader.machine.get_snapshot_builder().await;
    let snapshot = builder.build_snapshot().await.unwrap();
    assert_eq!(snapshot.meta.last_log_id, Some(log_id(1, 1, last)));
    assert!(
        snapshot.snapshot.get_ref().len() > 1024 * 1024,
        "spans several batches"
    );

    let mut replica = Node::new();
    install(&mut replica, &snapshot).await;
    assert_eq!(replica.records(), leader.records());
    assert_eq!(replica.records().len(), 4);
    let (last_applied, last_membership) = replica.machine.applied_state().await.unwrap();
    assert_eq!(last_applied, snapshot.meta.last_log_id);
    assert_eq!(last_membership, snapshot.meta.last_membership);

    let later = || later_entries(last + 1);
    let replies = leader.apply(later()).await;
    assert_eq!(replica.apply(later()).await, replies);
    assert_eq!(replica.records(), leader.records());

    // Both keep their current snapshot across a restart.
    let mut replica = replica.reopen();
    let mut leader = leader.reopen();
    for node in [&mut leader, &mut replica] {
        let current = node.machine.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(current.meta, snapshot.meta);
        assert_eq!(current.snapshot.get_ref(), snapshot.snapshot.get_ref());
    }
    assert_eq!(
        replica.machine.applied_state().await.unwrap().0,
        Some(log_id(1, 1, last + 3))
    );
}

#[tokio::test]
async fn records_after_the_snapshots_log_id_are_skipped_when_their_entries_apply() {
    let mut leader = Node::new();
    leader.apply(history(1)).await;
    let mut builder = leader.machine.get_snapshot_builder().await;
    // Applied after the builder took the applied state, before it read the store.
    let next = log_id(1, 1, 41).index;
    let replies = leader.apply(later_entries(next)).await;
    let snapshot = builder.build_snapshot().await.unwrap();
    assert_eq!(snapshot.meta.last_log_id, Some(log_id(1, 1, next - 1)));

    let mut replica = Node::new();
    install(&mut replica, &snapshot).await;
    assert_eq!(
        replica.records(),
        leader.records(),
        "the snapshot holds the later records"
    );
    let replica_replies = replica.apply(later_entries(next)).await;
    assert_eq!(replica_replies, vec![ClusterReply::Nothing; replies.len()]);
    assert_eq!(replica.records(), leader.records());
}

#[tokio::test]
async fn an_install_cut_before_its_applied_state_was_written_is_finished_at_open() {
    let mut leader = Node::new();
    leader.apply(history(1)).await;
    let snapshot = leader
        .machine
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let mut replica = Node::new();
    install(&mut replica, &snapshot).await;
    // As if the node stopped between saving the snapshot and its applied state.
    std::fs::remove_file(replica.root.path().join("state/applied.state")).unwrap();
    let mut replica = replica.reopen();
    let (last_applied, last_membership) = replica.machine.applied_state().await.unwrap();
    assert_eq!(last_applied, snapshot.meta.last_log_id);
    assert_eq!(last_membership, snapshot.meta.last_membership);
}

#[tokio::test]
async fn damaged_snapshot_data_is_refused() {
    let mut leader = Node::new();
    leader.apply(history(1)).await;
    let snapshot = leader
        .machine
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let mut data = snapshot.snapshot.get_ref().clone();
    let middle = data.len() / 2;
    data[middle] ^= 0x01;
    let mut replica = Node::new();
    let damaged = Box::new(Cursor::new(data));
    assert!(replica
        .machine
        .install_snapshot(&snapshot.meta, damaged)
        .await
        .is_err());
    assert_eq!(replica.machine.applied_state().await.unwrap().0, None);
}
