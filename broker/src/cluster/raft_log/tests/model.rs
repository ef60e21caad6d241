//! Model-based test: random appends (consecutive indexes, terms never decreasing, payloads of
//! random sizes, segments small enough to roll often), truncations, purges (also past the
//! end), votes and reopens; after each, the store must read exactly what a `BTreeMap` and a
//! purge point say.

use std::collections::BTreeMap;
use std::path::Path;

use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
use openraft::{LogId, LogState, RaftLogReader, Vote};
use proptest::prelude::*;

use super::{append_entry, log_id, runtime};
use crate::cluster::raft_log::{Entry, RaftLogStore};
use crate::cluster::types::{ClusterTypes, NodeId};

#[derive(Clone, Debug)]
enum Op {
    /// Entries to append: for each, whether it starts a new term, and its payload's size.
    Append(Vec<(bool, usize)>),
    /// Truncate this many entries before the last one (0: the last alone).
    Truncate(u64),
    /// Purge this many entries past the purge point (0: the first present entry alone); may
    /// reach past the end.
    Purge(u64),
    /// Save a vote of this term.
    Vote(u64),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    let entry = (prop::bool::weighted(0.1), 0usize..600);
    prop_oneof![
        5 => prop::collection::vec(entry, 1..8).prop_map(Op::Append),
        1 => (0u64..10).prop_map(Op::Truncate),
        1 => (0u64..12).prop_map(Op::Purge),
        1 => (1u64..5).prop_map(Op::Vote),
        1 => Just(Op::Reopen),
    ]
}

/// What the store must hold.
#[derive(Default)]
struct Model {
    entries: BTreeMap<u64, Entry>,
    last_purged: Option<LogId<NodeId>>,
    vote: Option<Vote<NodeId>>,
    /// The term of the next entry (terms never go down, even across truncations).
    term: u64,
}

impl Model {
    fn last_log_id(&self) -> Option<LogId<NodeId>> {
        let last = self.entries.values().next_back().map(|entry| entry.log_id);
        last.or(self.last_purged)
    }

    fn next_index(&self) -> u64 {
        self.last_log_id().map_or(0, |log_id| log_id.index + 1)
    }

    /// The log id of `index`: its entry's, or one in the current term for an index the log
    /// does not hold (a purge past the end).
    fn log_id_at(&self, index: u64) -> LogId<NodeId> {
        self.entries
            .get(&index)
            .map_or(log_id(self.term, index), |entry| entry.log_id)
    }
}

/// Apply `op` to the store and the model alike.
async fn apply(op: &Op, store: &mut RaftLogStore, model: &mut Model, dir: &Path, segment: u64) {
    match op {
        Op::Append(entries) => {
            let mut batch = Vec::new();
            for &(new_term, payload_bytes) in entries {
                model.term += u64::from(new_term);
                let entry = append_entry(model.term, model.next_index(), payload_bytes);
                model.entries.insert(entry.log_id.index, entry.clone());
                batch.push(entry);
            }
            store.blocking_append(batch).await.unwrap();
        }
        Op::Truncate(back) => {
            let Some(&last) = model.entries.keys().next_back() else {
                return;
            };
            let index = last.saturating_sub(*back);
            let at = model.log_id_at(index);
            model.entries.split_off(&index);
            store.truncate(at).await.unwrap();
        }
        Op::Purge(ahead) => {
            let from = model.last_purged.map_or(0, |log_id| log_id.index + 1);
            let at = model.log_id_at(from + ahead);
            model.entries = model.entries.split_off(&(at.index + 1));
            model.last_purged = Some(at);
            store.purge(at).await.unwrap();
        }
        Op::Vote(term) => {
            let vote = Vote::new(*term, 1);
            model.vote = Some(vote);
            store.save_vote(&vote).await.unwrap();
        }
        Op::Reopen => {
            // Close the store before the next one opens the same files.
            let reopened = RaftLogStore::open_with(dir, segment).unwrap();
            drop(std::mem::replace(store, reopened));
        }
    }
}

/// The store reads exactly what the model holds, whole and in parts.
async fn check(store: &mut RaftLogStore, model: &Model) -> Result<(), TestCaseError> {
    let state = store.get_log_state().await.unwrap();
    let expected: LogState<ClusterTypes> = LogState {
        last_purged_log_id: model.last_purged,
        last_log_id: model.last_log_id(),
    };
    prop_assert_eq!(state, expected);
    let all: Vec<Entry> = model.entries.values().cloned().collect();
    prop_assert_eq!(&store.try_get_log_entries(..).await.unwrap(), &all);
    prop_assert_eq!(store.read_vote().await.unwrap(), model.vote);

    // A middle part, through a reader, and a bounded read from the first present entry.
    let mut reader = store.get_log_reader().await;
    let next = model.next_index();
    let (from, to) = (next / 3, next - next / 4);
    let part: Vec<Entry> = model
        .entries
        .range(from..to)
        .map(|(_, e)| e.clone())
        .collect();
    prop_assert_eq!(reader.try_get_log_entries(from..to).await.unwrap(), part);
    if let Some(&first) = model.entries.keys().next() {
        let limited = reader.limited_get_log_entries(first, next).await.unwrap();
        prop_assert!(!limited.is_empty());
        prop_assert_eq!(&limited[..], &all[..limited.len()]);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn the_store_matches_a_model(
        segment_bytes in 64u64..3000,
        ops in prop::collection::vec(op(), 1..40),
    ) {
        let dir = tempfile::tempdir().unwrap();
        runtime().block_on(async {
            let mut store = RaftLogStore::open_with(dir.path(), segment_bytes).unwrap();
            let mut model = Model { term: 1, ..Model::default() };
            for op in &ops {
                apply(op, &mut store, &mut model, dir.path(), segment_bytes).await;
                check(&mut store, &model).await?;
            }
            Ok::<(), TestCaseError>(())
        })?;
    }
}
