//! openraft's own storage suite against [`RaftLogStore`], paired with a small in-memory state
//! machine written for it (the suite tests both halves of a node's storage together).

use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{
    AnyError, BasicNode, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, SnapshotMeta,
    StorageError, StorageIOError, StoredMembership,
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tempfile::TempDir;

use crate::cluster::raft_log::{Entry, RaftLogStore};
use crate::cluster::types::{ClusterReply, ClusterTypes, NodeId};
use crate::limits::RAFT_LOG_SEGMENT_BYTES_MAX;

/// What the test state machine knows, and its snapshots' data (postcard of it).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Applied {
    last_applied: Option<LogId<NodeId>>,
    last_membership: StoredMembership<NodeId, BasicNode>,
}

#[derive(Debug, Default)]
struct Machine {
    applied: Applied,
    /// The current snapshot: its meta and data.
    snapshot: Option<(SnapshotMeta<NodeId, BasicNode>, Vec<u8>)>,
    snapshots_built: u64,
}

/// A state machine that only tracks what the suite checks.
#[derive(Clone, Debug, Default)]
struct TestStateMachine {
    machine: Arc<Mutex<Machine>>,
}

fn reply_to(payload: &EntryPayload<ClusterTypes>) -> ClusterReply {
    match payload {
        EntryPayload::Normal(command) => command
            .batch()
            .and_then(|batch| batch.records.last())
            .map_or(ClusterReply::Nothing, |record| ClusterReply::Appended {
                last_seq: record.seq,
            }),
        EntryPayload::Blank | EntryPayload::Membership(_) => ClusterReply::Nothing,
    }
}

impl RaftSnapshotBuilder<ClusterTypes> for TestStateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<ClusterTypes>, StorageError<NodeId>> {
        let mut machine = self.machine.lock();
        let data = postcard::to_stdvec(&machine.applied)
            .map_err(|e| StorageIOError::write_snapshot(None, AnyError::new(&e)))?;
        machine.snapshots_built += 1;
        let meta = SnapshotMeta {
            last_log_id: machine.applied.last_applied,
            last_membership: machine.applied.last_membership.clone(),
            snapshot_id: format!("snapshot-{}", machine.snapshots_built),
        };
        machine.snapshot = Some((meta.clone(), data.clone()));
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<ClusterTypes> for TestStateMachine {
    type SnapshotBuilder = TestStateMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>>
    {
        let machine = self.machine.lock();
        let applied = &machine.applied;
        Ok((applied.last_applied, applied.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<ClusterReply>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut machine = self.machine.lock();
        let mut replies = Vec::new();
        for entry in entries {
            machine.applied.last_applied = Some(entry.log_id);
            replies.push(reply_to(&entry.payload));
            if let EntryPayload::Membership(membership) = entry.payload {
                machine.applied.last_membership =
                    StoredMembership::new(Some(entry.log_id), membership);
            }
        }
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> TestStateMachine {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let data = snapshot.into_inner();
        let applied: Applied = postcard::from_bytes(&data).map_err(|e| {
            StorageIOError::read_snapshot(Some(meta.signature()), AnyError::new(&e))
        })?;
        let mut machine = self.machine.lock();
        machine.applied = applied;
        machine.snapshot = Some((meta.clone(), data));
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<ClusterTypes>>, StorageError<NodeId>> {
        let machine = self.machine.lock();
        Ok(machine.snapshot.as_ref().map(|(meta, data)| Snapshot {
            meta: meta.clone(),
            snapshot: Box::new(Cursor::new(data.clone())),
        }))
    }
}

/// Opens a [`RaftLogStore`] in a fresh temporary directory, which the guard holds.
struct Builder {
    segment_bytes_max: u64,
}

impl StoreBuilder<ClusterTypes, RaftLogStore, TestStateMachine, TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(TempDir, RaftLogStore, TestStateMachine), StorageError<NodeId>> {
        let dir = tempfile::tempdir().unwrap();
        let store = RaftLogStore::open_with(dir.path(), self.segment_bytes_max).unwrap();
        Ok((dir, store, TestStateMachine::default()))
    }
}

type TestSuite = Suite<ClusterTypes, RaftLogStore, TestStateMachine, Builder, TempDir>;

// `test_all` runs each test on a runtime of its own, so these are plain tests.

#[test]
fn openraft_storage_suite_passes() {
    let builder = Builder {
        segment_bytes_max: RAFT_LOG_SEGMENT_BYTES_MAX,
    };
    TestSuite::test_all(builder).unwrap();
}

#[test]
fn openraft_storage_suite_passes_with_a_segment_every_few_entries() {
    // A blank entry's frame is about 20 bytes: purges and truncations cross segments.
    TestSuite::test_all(Builder {
        segment_bytes_max: 64,
    })
    .unwrap();
}
