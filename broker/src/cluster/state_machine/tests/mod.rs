//! Tests of the state machine: applying entries (`apply.rs`), snapshots between two stores
//! (`snapshot.rs`), and the snapshot bytes refusing damage (`format.rs`).

mod apply;
mod format;
mod groups;
mod model;
mod snapshot;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::testing::log_id;
use openraft::{BasicNode, Entry, EntryPayload, Membership};
use strand_log::seq::EPOCH_UNIX_MS;
use strand_log::{FsyncPolicy, PartitionConfig, ReadFrom, Store, StoreConfig};
use tempfile::TempDir;

use super::ClusterStateMachine;
use crate::cluster::types::ReplicatedBatch;
use crate::cluster::types::{ClusterCommand, ClusterReply, ClusterTypes, OwnedRecord};

/// Milliseconds after Strand's epoch of the test leader's first `_seq` (in April 2025).
const BASE_MS: u64 = 40_000_000_000;
/// The node bits of the test leader's `_seq`s.
const LEADER_NODE: u64 = 1;
/// Small segments, so the records span several and a snapshot's batch needs several appends.
const SEGMENT_BYTES: u64 = 64 * 1024;

/// The `i`th `_seq` the test leader issued (4096 per millisecond).
fn seq(i: u64) -> u64 {
    ((BASE_MS + i / 4096) << 22) | (LEADER_NODE << 12) | (i % 4096)
}

/// A record of key `key` (empty: not keyed) at the `i`th `_seq`.
fn record(i: u64, key: &[u8], payload: &[u8]) -> OwnedRecord {
    OwnedRecord {
        seq: seq(i),
        timestamp_unix_ms: EPOCH_UNIX_MS + BASE_MS + i / 4096,
        key: key.to_vec(),
        payload: payload.to_vec(),
        flags: 0,
        previous_version: 0,
    }
}

/// A tombstone of `key` at the `i`th `_seq`, after the version at the `previous`th.
fn tombstone(i: u64, key: &[u8], previous: u64) -> OwnedRecord {
    OwnedRecord {
        flags: strand_log::RecordFlags::TOMBSTONE.bits(),
        previous_version: seq(previous),
        ..record(i, key, b"")
    }
}

fn entry(index: u64, payload: EntryPayload<ClusterTypes>) -> Entry<ClusterTypes> {
    Entry {
        log_id: log_id(1, 1, index),
        payload,
    }
}

fn append(index: u64, partition: &str, records: Vec<OwnedRecord>) -> Entry<ClusterTypes> {
    let batch = ReplicatedBatch {
        partition: partition.to_owned(),
        records,
    };
    entry(index, EntryPayload::Normal(ClusterCommand::Append(batch)))
}

fn membership(voters: &[u64]) -> Membership<u64, BasicNode> {
    let voters: BTreeSet<u64> = voters.iter().copied().collect();
    let nodes: BTreeMap<u64, BasicNode> = voters
        .iter()
        .map(|&id| (id, BasicNode::new(format!("10.0.0.{id}:7000"))))
        .collect();
    Membership::new(vec![voters], nodes)
}

/// A node's store and state machine, under temporary directories.
struct Node {
    root: TempDir,
    store: Arc<Store>,
    machine: ClusterStateMachine,
}

impl Node {
    fn new() -> Node {
        let root = tempfile::tempdir().unwrap();
        let (store, machine) = Node::open(root.path());
        Node {
            root,
            store,
            machine,
        }
    }

    fn open(root: &Path) -> (Arc<Store>, ClusterStateMachine) {
        let config = StoreConfig {
            partition: PartitionConfig {
                segment_bytes_max: SEGMENT_BYTES,
                fsync: FsyncPolicy::Never,
                ..PartitionConfig::default()
            },
            ..StoreConfig::default()
        };
        let store = Arc::new(Store::open(root.join("store"), config).unwrap());
        let machine = ClusterStateMachine::open(store.clone(), &root.join("state")).unwrap();
        (store, machine)
    }

    /// The same directories opened again, as after a restart.
    fn reopen(self) -> Node {
        let Node {
            root,
            store,
            machine,
        } = self;
        drop(machine);
        drop(store);
        let (store, machine) = Node::open(root.path());
        Node {
            root,
            store,
            machine,
        }
    }

    async fn apply(&mut self, entries: Vec<Entry<ClusterTypes>>) -> Vec<ClusterReply> {
        self.machine.apply(entries).await.unwrap()
    }

    /// Every record of every partition, as stored.
    fn records(&self) -> BTreeMap<String, Vec<OwnedRecord>> {
        let mut all = BTreeMap::new();
        for id in self.store.partition_ids().unwrap() {
            let view = self.store.partition(&id).unwrap().snapshot();
            let records: Vec<OwnedRecord> = view
                .records(ReadFrom::Earliest)
                .map(|record| {
                    let record = record.unwrap();
                    OwnedRecord {
                        seq: record.seq.0,
                        timestamp_unix_ms: record.timestamp_unix_ms,
                        key: record.key.to_vec(),
                        payload: record.payload.to_vec(),
                        flags: record.flags.bits(),
                        previous_version: record.previous_version.0,
                    }
                })
                .collect();
            all.insert(id.as_str().to_owned(), records);
        }
        all
    }
}
