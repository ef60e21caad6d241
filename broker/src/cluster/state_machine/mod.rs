//! The cluster's state machine: openraft's `RaftStateMachine` over the local
//! [`strand_log::Store`]. Applying an entry stores its batch of records at the `_seq`s the
//! leader issued (`apply.rs`); a snapshot is every record the store holds (`snapshot.rs`,
//! bytes in `format.rs`); the applied state and the current snapshot are small files of
//! the state machine's own directory (`files.rs`).
//!
//! Owns what applying an entry does to the store and how far the store has applied the
//! Raft log. Does not own the Raft log or the vote (`raft_log`), the record format
//! (`strand_log`) or what the records mean (tables, topics).
//!
//! Blocking work (appends and their fsyncs, snapshot files) runs on tokio's blocking pool,
//! not on the Raft task's thread.

mod apply;
mod error;
mod files;
mod format;
mod snapshot;
#[cfg(test)]
mod tests;

use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use openraft::storage::RaftStateMachine;
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, OptionalSend, Snapshot, SnapshotMeta, StorageError,
    StoredMembership,
};
use parking_lot::Mutex;
use strand_log::storage::{FileStorage, Storage};
use strand_log::{Partition, Seq, Store};

pub use error::{SnapshotFormatError, StateMachineError};
pub use snapshot::ClusterSnapshotBuilder;

use apply::{apply_batch, Stored};
use files::{SnapshotSlot, StateFiles};
use format::AppliedState;

use crate::cluster::groups::{AppliedIndexes, GroupMap, META_GROUP};
use crate::cluster::rpc::GroupId;
use crate::cluster::types::{ClusterCommand, ClusterReply, ClusterTypes, NodeId};
use crate::limits::CLUSTER_WRITE_TIMEOUT_MS;

/// Told of each partition an apply appended to, once the records are durable, so the parts
/// of the node that serve it (a topic's tailing readers) see them as they see local writes.
pub trait AppliedListener: Send + Sync + 'static {
    /// Records up to `last` were appended to `partition` (named by its id's text).
    fn applied(&self, partition: &str, last: strand_log::Seq);

    /// Whether the group replicates `partition` (what a snapshot carries); all by default.
    fn replicates(&self, _partition: &str) -> bool {
        true
    }

    /// This node's settled tick moved (`cluster/ticks.rs`): subscriptions that read as of
    /// one may go on.
    fn ticked(&self) {}
}

/// The listener, if any, of a state machine.
#[derive(Clone, Default)]
pub struct Listener(Option<Arc<dyn AppliedListener>>);

impl Listener {
    /// Tells `listener` of every apply.
    pub fn new(listener: Arc<dyn AppliedListener>) -> Listener {
        Listener(Some(listener))
    }
}

impl Listener {
    /// Whether a snapshot carries `partition` (all, without a listener).
    fn replicates(&self, partition: &str) -> bool {
        self.0.as_ref().is_none_or(|l| l.replicates(partition))
    }

    /// Tells the listener, if any, that the settled tick moved.
    fn ticked(&self) {
        if let Some(listener) = &self.0 {
            listener.ticked();
        }
    }

    /// Tells the listener, if any, of each written partition's last `_seq`.
    fn tell(&self, written: &[(String, Arc<Partition>)]) {
        if let Some(listener) = &self.0 {
            for (id, partition) in written {
                listener.applied(id, partition.last_seq());
            }
        }
    }
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Listener(set)"
        } else {
            "Listener(none)"
        })
    }
}

/// Where a state machine's group sits among this node's groups: which partitions its
/// snapshots carry, and the applied indexes it waits on and publishes (`groups.rs`).
#[derive(Clone, Debug)]
pub struct GroupPlace {
    /// The group this state machine applies.
    pub group: GroupId,
    /// Which partitions are whose.
    pub map: GroupMap,
    /// Every group's applied index on this node.
    pub indexes: Arc<AppliedIndexes>,
}

impl GroupPlace {
    /// Whether this group's snapshots carry `partition`.
    fn owns(&self, partition: &str) -> bool {
        self.map.group_of(partition) == self.group
    }

    /// The meta index `command` must wait for here, if this node has not applied it yet.
    fn must_wait(&self, command: &ClusterCommand) -> Option<u64> {
        let needed = command.meta_index();
        (self.group != META_GROUP && needed > self.indexes.get(META_GROUP)).then_some(needed)
    }
}

/// openraft's state machine for a Strand node: entries are applied to `store`.
#[derive(Debug)]
pub struct ClusterStateMachine {
    store: Arc<Store>,
    listener: Listener,
    /// `None`: a lone group (tests) that carries every partition and waits for nothing.
    place: Option<GroupPlace>,
    files: Arc<StateFiles>,
    /// What `applied_state` answers; durable on disk whenever `apply` returns.
    applied: Arc<Mutex<AppliedState>>,
    slot: Arc<SnapshotSlot>,
}

impl ClusterStateMachine {
    /// Open the state machine over `store`, with its own files under `dir` (created if
    /// missing): the applied state and the current snapshot are read back.
    pub fn open(store: Arc<Store>, dir: &Path) -> Result<ClusterStateMachine, StateMachineError> {
        ClusterStateMachine::open_with_storage(store, dir, Arc::new(FileStorage))
    }

    /// [`ClusterStateMachine::open`], writing the state machine's files through `storage`
    /// (tests inject failures with `strand_log::storage::FaultyStorage`).
    pub fn open_with_storage(
        store: Arc<Store>,
        dir: &Path,
        storage: Arc<dyn Storage>,
    ) -> Result<ClusterStateMachine, StateMachineError> {
        let files = Arc::new(StateFiles::open(dir, storage)?);
        let from_file = files.load_applied()?.unwrap_or_default();
        let header = files.load_snapshot_header()?;
        // An install saves the snapshot before the applied state: a crash between leaves the
        // snapshot ahead, and its records are all durable, so it is the applied state.
        let applied = match &header {
            Some(header) if header.applied.last_applied > from_file.last_applied => {
                tracing::warn!(
                    dir = %dir.display(),
                    "snapshot install was interrupted; applied state taken from the snapshot"
                );
                header.applied.clone()
            }
            _ => from_file,
        };
        let current = header.map(|header| header.applied.last_applied);
        Ok(ClusterStateMachine {
            slot: Arc::new(SnapshotSlot::new(files.clone(), current)),
            listener: Listener::default(),
            place: None,
            store,
            files,
            applied: Arc::new(Mutex::new(applied)),
        })
    }
}

impl ClusterStateMachine {
    /// Tells `listener` of every apply from now on.
    pub fn with_listener(mut self, listener: Listener) -> ClusterStateMachine {
        self.listener = listener;
        self
    }

    /// Makes this the state machine of `place.group`: its snapshots carry that group's
    /// partitions only, its data entries wait for the meta group, and it publishes how far
    /// it applied.
    pub fn in_place(mut self, place: GroupPlace) -> ClusterStateMachine {
        let applied = self.applied.lock().last_applied.map_or(0, |id| id.index);
        place.indexes.applied(place.group, applied);
        self.place = Some(place);
        self
    }

    /// Tells the other groups how far this one applied, and, if the entries held a tick,
    /// the realtime parts that wait for ticks.
    fn publish(&self, tick: Option<Seq>) {
        if let Some(place) = &self.place {
            let applied = self.applied.lock().last_applied.map_or(0, |id| id.index);
            place.indexes.applied(place.group, applied);
            let moved = tick.is_some_and(|seq| place.indexes.ticks().ticked(place.group, seq));
            if moved {
                self.listener.ticked();
            }
        }
    }

    /// Waits until this node applied the meta group through `index`, saying so if it takes
    /// long (the meta group cannot make progress here).
    async fn wait_for_meta(&self, index: u64) {
        let Some(place) = &self.place else {
            return;
        };
        let wait = place.indexes.wait_for(META_GROUP, index);
        tokio::pin!(wait);
        let patience = Duration::from_millis(CLUSTER_WRITE_TIMEOUT_MS);
        if tokio::time::timeout(patience, &mut wait).await.is_err() {
            tracing::warn!(
                group = place.group,
                meta_index = index,
                applied = place.indexes.get(META_GROUP),
                "a data entry waits for the meta group to apply the catalog it follows"
            );
            wait.await;
        }
    }
}

/// Run blocking state machine work on tokio's blocking pool. A panic in it is resumed here:
/// it is a bug, and openraft's task should end as if it had happened there.
pub(crate) async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StateMachineError> + Send + 'static,
) -> Result<T, StateMachineError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(error) => Err(StateMachineError::TaskLost(error.to_string())),
    }
}

/// What applying a run of entries answered, and the last tick among them (`ticks.rs`).
type Applied = (Vec<ClusterReply>, Option<Seq>);

/// Apply `entries` in order and persist the applied state once for all of them.
fn apply_entries(
    store: &Store,
    files: &StateFiles,
    applied: &Mutex<AppliedState>,
    entries: Vec<Entry<ClusterTypes>>,
    listener: &Listener,
) -> Result<Applied, StateMachineError> {
    let mut next = applied.lock().clone();
    let mut written: Vec<(String, Arc<Partition>)> = Vec::new();
    let mut replies = Vec::with_capacity(entries.len());
    let mut tick = None;
    let mut highest = 0;
    for entry in entries {
        next.last_applied = Some(entry.log_id);
        let reply = match entry.payload {
            EntryPayload::Blank => ClusterReply::Nothing,
            EntryPayload::Normal(command) => match command.checked_in_term() {
                Some(checked_in) if checked_in != entry.log_id.leader_id.term => {
                    let proposed_in = entry.log_id.leader_id.term;
                    tracing::debug!(log_id = %entry.log_id, checked_in, proposed_in,
                        "a batch checked in an earlier term is not applied");
                    ClusterReply::TermChanged {
                        checked_in,
                        proposed_in,
                    }
                }
                _ => match (&command, command.batch()) {
                    (_, Some(batch)) => {
                        let reply = apply_append(store, &entry.log_id, batch, &mut written)?;
                        if let ClusterReply::Appended { last_seq } = reply {
                            highest = highest.max(last_seq);
                        }
                        reply
                    }
                    (ClusterCommand::Tick { seq, .. }, None) => {
                        // Whoever leads next issues above it, as above every record here.
                        store.observe_issued(Seq(*seq))?;
                        tick = Some(Seq(*seq));
                        ClusterReply::Nothing
                    }
                    (_, None) => ClusterReply::Nothing,
                },
            },
            EntryPayload::Membership(membership) => {
                next.last_membership = StoredMembership::new(Some(entry.log_id), membership);
                ClusterReply::Nothing
            }
        };
        replies.push(reply);
    }
    // The records are durable before the applied state says they are there: else a crash
    // could lose records of entries openraft will not apply again (fsync policies `interval`
    // and `never` return before the disk has them; under `always` this does nothing).
    for (_, partition) in &written {
        partition.sync()?;
    }
    // Whoever leads next issues above every record stored here, not only above the last
    // tick: a batch under a lower `_seq` than its partition's last would not be stored.
    if highest > 0 {
        store.observe_issued(Seq(highest))?;
    }
    listener.tell(&written);
    let mut current = applied.lock();
    if *current != next {
        files.store_applied(&next)?;
        *current = next;
    }
    Ok((replies, tick))
}

fn apply_append(
    store: &Store,
    log_id: &LogId<NodeId>,
    batch: &crate::cluster::types::ReplicatedBatch,
    written: &mut Vec<(String, Arc<Partition>)>,
) -> Result<ClusterReply, StateMachineError> {
    Ok(match apply_batch(store, batch)? {
        Stored::Appended {
            partition,
            last_seq,
        } => {
            if !written
                .iter()
                .any(|(_, known)| Arc::ptr_eq(known, &partition))
            {
                written.push((batch.partition.clone(), partition));
            }
            ClusterReply::Appended {
                last_seq: last_seq.0,
            }
        }
        Stored::AlreadyThere => ClusterReply::Nothing,
        Stored::Refused(reason) => {
            // Every replica refuses it alike, so the group stays in agreement; the proposer
            // gets the reason. A leader proposing such a batch has a bug.
            tracing::error!(
                %log_id,
                partition = %batch.partition,
                %reason,
                "replicated batch refused"
            );
            ClusterReply::Refused { reason }
        }
    })
}

impl RaftStateMachine<ClusterTypes> for ClusterStateMachine {
    type SnapshotBuilder = ClusterSnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>>
    {
        let applied = self.applied.lock();
        Ok((applied.last_applied, applied.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<ClusterReply>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<ClusterTypes>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut rest: Vec<Entry<ClusterTypes>> = entries.into_iter().collect();
        let mut replies = Vec::with_capacity(rest.len());
        // Entries apply in order; one that follows a meta index this node has not applied
        // yet waits for it, after the entries before it are applied.
        while !rest.is_empty() {
            let waiting = self.place.as_ref().and_then(|place| {
                rest.iter()
                    .enumerate()
                    .find_map(|(at, entry)| match &entry.payload {
                        EntryPayload::Normal(command) => place.must_wait(command).map(|i| (at, i)),
                        _ => None,
                    })
            });
            let ready = match waiting {
                Some((0, meta_index)) => {
                    self.wait_for_meta(meta_index).await;
                    1
                }
                Some((at, _)) => at,
                None => rest.len(),
            };
            let later = rest.split_off(ready);
            let chunk = std::mem::replace(&mut rest, later);
            let (store, files, applied) =
                (self.store.clone(), self.files.clone(), self.applied.clone());
            let listener = self.listener.clone();
            let (applied_now, tick) =
                run_blocking(move || apply_entries(&store, &files, &applied, chunk, &listener))
                    .await
                    .map_err(StateMachineError::into_write_error)?;
            replies.extend(applied_now);
            self.publish(tick);
        }
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> ClusterSnapshotBuilder {
        ClusterSnapshotBuilder {
            store: self.store.clone(),
            applied: self.applied.lock().clone(),
            slot: self.slot.clone(),
            listener: self.listener.clone(),
            place: self.place.clone(),
        }
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
        if self.place.is_some() {
            let meta_index = snapshot::meta_index_of(&data)
                .map_err(|e| StateMachineError::from(e).into_write_error())?;
            self.wait_for_meta(meta_index).await;
        }
        let (store, files, applied) =
            (self.store.clone(), self.files.clone(), self.applied.clone());
        let (slot, meta) = (self.slot.clone(), meta.clone());
        let listener = self.listener.clone();
        run_blocking(move || {
            let installed = snapshot::install(&store, &slot, &meta, &data, &listener)?;
            files.store_applied(&installed)?;
            *applied.lock() = installed;
            Ok(())
        })
        .await
        .map_err(StateMachineError::into_write_error)?;
        self.publish(None);
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<ClusterTypes>>, StorageError<NodeId>> {
        let slot = self.slot.clone();
        let current = run_blocking(move || slot.load())
            .await
            .map_err(StateMachineError::into_read_error)?;
        Ok(current.map(|(header, data)| Snapshot {
            meta: snapshot::meta_of(header),
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}
