//! Applying entries: the leader's `_seq`s kept, idempotence, persistence, refusals.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::testing::log_id;
use openraft::{EntryPayload, StoredMembership};
use strand_log::storage::FaultyStorage;

use super::{append, entry, membership, record, seq, tombstone, Node};
use crate::cluster::state_machine::ClusterStateMachine;
use crate::cluster::types::{ClusterCommand, ClusterReply, OwnedRecord, ReplicatedBatch};

fn alice() -> Vec<OwnedRecord> {
    vec![record(1, b"k1", b"v1"), record(2, b"k2", b"v2")]
}

#[tokio::test]
async fn apply_keeps_the_leaders_seqs_and_applying_again_changes_nothing() {
    let mut node = Node::new();
    let later = vec![record(5, b"k1", b"v1'"), tombstone(6, b"k2", 2)];
    let entries = || {
        vec![
            entry(1, EntryPayload::Blank),
            append(2, "tables/app.t/alice", alice()),
            append(
                3,
                "topics/app.events/0",
                vec![record(3, b"", b"e1"), record(4, b"", b"e2")],
            ),
            append(4, "tables/app.t/alice", later.clone()),
        ]
    };
    let replies = node.apply(entries()).await;
    let appended = |i| ClusterReply::Appended { last_seq: seq(i) };
    assert_eq!(
        replies,
        vec![ClusterReply::Nothing, appended(2), appended(4), appended(6)]
    );
    let mut expected = alice();
    expected.extend(later.clone());
    let records = node.records();
    assert_eq!(records["tables/app.t/alice"], expected);
    assert_eq!(
        records["topics/app.events/0"],
        vec![record(3, b"", b"e1"), record(4, b"", b"e2")]
    );

    // openraft applies the entries after the last applied id it finds at start again.
    let replies = node.apply(entries()).await;
    assert_eq!(replies, vec![ClusterReply::Nothing; 4]);
    assert_eq!(node.records(), records);

    // A batch partly there: only its new records are appended.
    let overlapping = vec![tombstone(6, b"k2", 2), record(7, b"k3", b"v3")];
    let replies = node
        .apply(vec![append(5, "tables/app.t/alice", overlapping)])
        .await;
    assert_eq!(replies, vec![appended(7)]);
    expected.push(record(7, b"k3", b"v3"));
    assert_eq!(node.records()["tables/app.t/alice"], expected);
    let (last_applied, _) = node.machine.applied_state().await.unwrap();
    assert_eq!(last_applied, Some(log_id(1, 1, 5)));
}

#[tokio::test]
async fn applied_state_and_membership_survive_a_reopen() {
    let mut node = Node::new();
    let members = membership(&[1, 2, 3]);
    let third = append(3, "tables/app.t/alice", alice());
    node.apply(vec![
        entry(1, EntryPayload::Blank),
        entry(2, EntryPayload::Membership(members.clone())),
        third.clone(),
    ])
    .await;
    let records = node.records();

    let mut node = node.reopen();
    let (last_applied, last_membership) = node.machine.applied_state().await.unwrap();
    assert_eq!(last_applied, Some(log_id(1, 1, 3)));
    assert_eq!(
        last_membership,
        StoredMembership::new(Some(log_id(1, 1, 2)), members)
    );
    assert_eq!(node.records(), records);
    // Applying the last entry again after the restart stores nothing twice.
    assert_eq!(node.apply(vec![third]).await, vec![ClusterReply::Nothing]);
    assert_eq!(node.records(), records);
}

#[tokio::test]
async fn a_malformed_batch_is_refused_alike_everywhere_and_later_entries_apply() {
    let entries = || {
        vec![
            append(
                1,
                "tables/app.t/alice",
                vec![record(5, b"k", b"a"), record(3, b"k", b"b")],
            ),
            append(2, "../escape", alice()),
            append(3, "tables/app.t/alice", vec![]),
            append(
                4,
                "tables/app.t/alice",
                vec![OwnedRecord {
                    flags: 0x80,
                    ..record(8, b"k", b"c")
                }],
            ),
            append(5, "tables/app.t/alice", alice()),
        ]
    };
    let mut first = Node::new();
    let mut second = Node::new();
    // The second replica already holds a record above the malformed batch's: the refusal
    // does not depend on what a replica holds.
    second
        .apply(vec![append(
            0,
            "tables/app.t/bob",
            vec![record(9, b"", b"x")],
        )])
        .await;
    let replies = first.apply(entries()).await;
    assert_eq!(replies, second.apply(entries()).await);
    for reply in &replies[..4] {
        assert!(
            matches!(reply, ClusterReply::Refused { reason } if !reason.is_empty()),
            "{reply:?}"
        );
    }
    assert_eq!(replies[4], ClusterReply::Appended { last_seq: seq(2) });
    assert_eq!(first.records()["tables/app.t/alice"], alice());
    assert_eq!(second.records()["tables/app.t/alice"], alice());
    let (last_applied, _) = first.machine.applied_state().await.unwrap();
    assert_eq!(last_applied, Some(log_id(1, 1, 5)));
}

#[tokio::test]
async fn a_failed_applied_state_write_fails_apply_and_applying_again_recovers() {
    let node = Node::new();
    let storage = FaultyStorage::default();
    let faults = storage.faults.clone();
    let dir = node.root.path().join("faulty-state");
    let mut machine =
        ClusterStateMachine::open_with_storage(node.store.clone(), &dir, Arc::new(storage))
            .unwrap();
    faults.fail_atomic_write.store(true, Ordering::SeqCst);
    let entries = || vec![append(1, "tables/app.t/alice", alice())];
    assert!(machine.apply(entries()).await.is_err());
    assert!(faults.faults_fired.load(Ordering::SeqCst) > 0);
    assert_eq!(machine.applied_state().await.unwrap().0, None);

    // openraft stops the node; after a restart it applies the entry again.
    faults.fail_atomic_write.store(false, Ordering::SeqCst);
    let mut machine = ClusterStateMachine::open_with_storage(
        node.store.clone(),
        &dir,
        Arc::new(FaultyStorage::default()),
    )
    .unwrap();
    assert_eq!(machine.applied_state().await.unwrap().0, None);
    assert_eq!(
        machine.apply(entries()).await.unwrap(),
        vec![ClusterReply::Nothing]
    );
    assert_eq!(
        machine.applied_state().await.unwrap().0,
        Some(log_id(1, 1, 1))
    );
    assert_eq!(node.records()["tables/app.t/alice"], alice());
}

/// An entry of `entry_term` carrying a batch checked in `checked_in`.
fn checked(
    index: u64,
    entry_term: u64,
    checked_in: u64,
    records: Vec<OwnedRecord>,
) -> openraft::Entry<crate::cluster::types::ClusterTypes> {
    let batch = ReplicatedBatch {
        partition: "tables/app.t/alice".to_owned(),
        records,
    };
    openraft::Entry {
        log_id: log_id(entry_term, 1, index),
        payload: EntryPayload::Normal(ClusterCommand::AppendInTerm {
            term: checked_in,
            batch,
        }),
    }
}

#[tokio::test]
async fn a_batch_checked_in_an_earlier_term_is_refused_alike_everywhere() {
    // Index 2: a leader checked an INSERT of k in term 1, lost the office and won it again,
    // and its proposal landed in term 3, after another leader's write of k (index 1, an
    // entry of term 2 checked in term 2). Storing it would make k's second INSERT.
    let entries = || {
        vec![
            checked(1, 2, 2, vec![record(1, b"k", b"first")]),
            checked(2, 3, 1, vec![record(2, b"k", b"second")]),
            checked(3, 3, 3, vec![record(3, b"j", b"later")]),
        ]
    };
    let mut first = Node::new();
    let mut second = Node::new();
    let replies = first.apply(entries()).await;
    assert_eq!(replies, second.apply(entries()).await);
    assert_eq!(
        replies,
        vec![
            ClusterReply::Appended { last_seq: seq(1) },
            ClusterReply::TermChanged {
                checked_in: 1,
                proposed_in: 3
            },
            ClusterReply::Appended { last_seq: seq(3) },
        ]
    );
    let kept = vec![record(1, b"k", b"first"), record(3, b"j", b"later")];
    assert_eq!(first.records()["tables/app.t/alice"], kept);
    assert_eq!(second.records()["tables/app.t/alice"], kept);
    let (last_applied, _) = first.machine.applied_state().await.unwrap();
    assert_eq!(last_applied, Some(log_id(3, 1, 3)));
}

#[tokio::test]
async fn applying_a_batch_raises_the_generator_above_its_records() {
    // A record issued after the leader's last tick: the next leader must issue above it, or
    // its own batch for the partition would sit below the partition's last and not be stored.
    let mut node = Node::new();
    assert!(node.store.last_issued_seq().0 < seq(9));
    node.apply(vec![append(
        1,
        "topics/app.events/0",
        vec![record(9, b"", b"e")],
    )])
    .await;
    assert!(node.store.last_issued_seq().0 >= seq(9));
    let next = node.store.issue_ids(1).unwrap();
    assert!(next[0].0 > seq(9), "{next:?}");
}
