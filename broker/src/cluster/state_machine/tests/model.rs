//! Model test: random batches over a few partitions, applied with repeats (as openraft
//! repeats the entries after the last applied id at start) and handed to a second node by a
//! snapshot built while the first goes on applying. Both nodes end holding what a plain
//! reference (the batches concatenated per partition) holds.

use std::collections::BTreeMap;

use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
use openraft::Entry;
use proptest::prelude::*;

use super::{append, record, Node};
use crate::cluster::types::{ClusterReply, ClusterTypes, OwnedRecord};

const PARTITIONS: [&str; 3] = ["tables/app.t/alice", "sys/users", "topics/app.e/0"];

/// A batch: its partition (index into `PARTITIONS`), its records' keys (empty: not keyed).
type BatchSpec = (usize, Vec<Vec<u8>>);

fn arb_batches() -> impl Strategy<Value = Vec<BatchSpec>> {
    let key = prop::collection::vec(any::<u8>(), 0..3);
    let batch = (0..PARTITIONS.len(), prop::collection::vec(key, 1..5));
    prop::collection::vec(batch, 1..24)
}

/// The entries for `batches` (indexes from 1, `_seq`s increasing) and the reference.
fn entries_and_model(
    batches: &[BatchSpec],
) -> (Vec<Entry<ClusterTypes>>, BTreeMap<String, Vec<OwnedRecord>>) {
    let mut entries = Vec::new();
    let mut model: BTreeMap<String, Vec<OwnedRecord>> = BTreeMap::new();
    let mut next = 1;
    for (index, (partition, keys)) in batches.iter().enumerate() {
        let mut records = Vec::new();
        for key in keys {
            records.push(record(next, key, &next.to_le_bytes()));
            next += 1;
        }
        let name = PARTITIONS[*partition];
        model
            .entry(name.to_owned())
            .or_default()
            .extend(records.clone());
        entries.push(append(index as u64 + 1, name, records));
    }
    (entries, model)
}

async fn run(batches: Vec<BatchSpec>, repeat_every: usize, cut: (usize, usize)) {
    let (entries, model) = entries_and_model(&batches);
    let (taken, built) = (cut.0.min(entries.len()), cut.1.min(entries.len()));
    let (taken, built) = (taken.min(built), taken.max(built));
    let mut first = Node::new();
    let mut replies = Vec::new();
    for (i, chunk) in entries.chunks(repeat_every).enumerate() {
        replies.extend(first.apply(chunk.to_vec()).await);
        if i % 2 == 0 {
            let again = first.apply(chunk.to_vec()).await;
            assert_eq!(again, vec![ClusterReply::Nothing; chunk.len()]);
        }
    }
    assert!(replies
        .iter()
        .all(|r| matches!(r, ClusterReply::Appended { .. })));
    assert_eq!(first.records(), model);

    // A snapshot whose builder took the applied state after `taken` entries and read the
    // store after `built`, installed on a fresh node that then applies the rest.
    let mut source = Node::new();
    source.apply(entries[..taken].to_vec()).await;
    let mut builder = source.machine.get_snapshot_builder().await;
    source.apply(entries[taken..built].to_vec()).await;
    let snapshot = builder.build_snapshot().await.unwrap();
    let mut second = Node::new();
    let data = Box::new(std::io::Cursor::new(snapshot.snapshot.get_ref().clone()));
    second
        .machine
        .install_snapshot(&snapshot.meta, data)
        .await
        .unwrap();
    let rest = second.apply(entries[taken..].to_vec()).await;
    assert_eq!(
        rest[..built - taken],
        vec![ClusterReply::Nothing; built - taken]
    );
    assert_eq!(rest[built - taken..], replies[built..]);
    assert_eq!(second.records(), model);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn replicas_hold_the_batches_whatever_the_repeats_and_snapshots(
        batches in arb_batches(),
        repeat_every in 1usize..6,
        cut in (0usize..24, 0usize..24),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(run(batches, repeat_every, cut));
    }
}
