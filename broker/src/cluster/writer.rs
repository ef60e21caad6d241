//! [`ClusterWriter`]: a write made on this node as the leader of its group. The leader issues
//! the batch's `_seq`s and proposes it as one Raft entry; the write is acknowledged once
//! openraft reports the entry committed (a majority holds it durably) and applied here (the
//! state machine appended it to the local log, as every replica does).
//!
//! Order: `_seq`s are issued and the entry is handed to openraft under one lock, so entries
//! reach the Raft log in `_seq` order and every replica's `append_replicated` accepts them.
//! A new leader first waits until it has applied every entry of earlier terms
//! (`ensure_linearizable`), so the `_seq`s it issues are above everything it will apply.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use std::time::{SystemTime, UNIX_EPOCH};

use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, Raft};
use strand_log::{NewRecord, PartitionId, Seq, SeqRange, Store};

use super::doubt::ProposalDoubt;
use super::groups::{AppliedIndexes, GroupMap, META_GROUP};
use super::rpc::GroupId;
use super::types::{
    ClusterCommand, ClusterReply, ClusterTypes, NodeId, OwnedRecord, ReplicatedBatch,
};
use std::sync::Arc;

use crate::limits::CLUSTER_WRITE_TIMEOUT_MS;

/// Why a write was not acknowledged. It may still land (a leader that lost its office after
/// proposing): the client retries, with an idempotent producer id where it matters.
#[derive(Debug, thiserror::Error)]
pub enum ReplicationError {
    /// This node does not lead the group; `leader` does, if known (id and QUIC address).
    #[error("this node is not the leader{}", leader_text(.leader))]
    NotLeader {
        /// The leader this node knows of.
        leader: Option<(NodeId, String)>,
    },
    /// Every replica refused the batch the same way (a bug or a malformed batch).
    #[error("the replicas refused the batch: {0}")]
    Refused(String),
    /// openraft stopped, or the write could not be confirmed.
    #[error("replication failed: {0}")]
    Raft(String),
    /// The local store could not issue `_seq`s.
    #[error("cannot issue _seqs: {0}")]
    Seqs(String),
}

/// A leader cut off from the majority waits for it: the write is neither refused nor
/// acknowledged until then, so the client hears `unavailable` after a bounded time.
fn unconfirmed() -> ReplicationError {
    ReplicationError::Raft(format!(
        "a majority did not confirm within {CLUSTER_WRITE_TIMEOUT_MS} ms"
    ))
}

/// The `_seq` range of a batch's `_seq`s.
fn range_of(seqs: &[Seq]) -> Result<SeqRange, ReplicationError> {
    let (Some(first), Some(last)) = (seqs.first(), seqs.last()) else {
        return Err(ReplicationError::Refused("an empty batch".to_string()));
    };
    Ok(SeqRange {
        first: *first,
        last: *last,
        count: u32::try_from(seqs.len()).unwrap_or(u32::MAX),
    })
}

/// State read in term `checked_in` cannot back a write or an answer in term `now`: a leader
/// between may have changed it.
fn term_changed(checked_in: u64, now: u64) -> ReplicationError {
    ReplicationError::Raft(format!(
        "the leadership changed (term {checked_in} to {now}) while the statement ran"
    ))
}

fn leader_text(leader: &Option<(NodeId, String)>) -> String {
    match leader {
        Some((id, addr)) => format!("; node {id} at {addr} is"),
        None => "; no leader is known yet".to_string(),
    }
}

/// Proposes this node's writes to one group.
pub struct ClusterWriter {
    raft: Raft<ClusterTypes>,
    store: Arc<Store>,
    group: GroupId,
    /// This node's applied index of each group: a data entry names the meta group's.
    indexes: Arc<AppliedIndexes>,
    /// A data group's: the meta group's writer. Writes to every group are made by the meta
    /// group's leader (`placement.rs`), where the catalog and the locks they are checked
    /// against live.
    meta: Option<Arc<ClusterWriter>>,
    /// Held while `_seq`s are issued and the entry is handed to openraft.
    order: tokio::sync::Mutex<()>,
    /// The term in which this node last confirmed it applied all earlier entries as leader.
    ready_term: AtomicU64,
    /// Proposals whose wait ended without an answer (`doubt.rs`). Until this node applied
    /// every entry it had proposed by then, no state may be read for a new write: the
    /// proposal may still commit, and a write checked without it (a duplicate key, a version
    /// link) would be wrong. See [`ClusterWriter::settle_doubt`].
    doubt: ProposalDoubt,
}

impl ClusterWriter {
    /// A writer for `raft`, group `group`, over the local `store`; `meta` is the meta
    /// group's writer, for a data group.
    pub fn new(
        raft: Raft<ClusterTypes>,
        store: Arc<Store>,
        group: GroupId,
        indexes: Arc<AppliedIndexes>,
        meta: Option<Arc<ClusterWriter>>,
    ) -> ClusterWriter {
        ClusterWriter {
            raft,
            store,
            group,
            indexes,
            meta,
            order: tokio::sync::Mutex::new(()),
            ready_term: AtomicU64::new(0),
            doubt: ProposalDoubt::default(),
        }
    }

    /// Replicates `records` to `partition`, a write checked against no state: returns their
    /// `_seq` range once a majority holds them durably and this node applied them.
    pub async fn append(
        &self,
        partition: &PartitionId,
        records: &[NewRecord<'_>],
    ) -> Result<SeqRange, ReplicationError> {
        let term = self.ready_to_lead().await?;
        let seqs = self.propose(partition, records, term).await?;
        range_of(&seqs)
    }

    /// [`ClusterWriter::append`] of a write checked against state read after
    /// [`ClusterWriter::ready_to_lead`] answered `checked_in`: stored only if proposed in that
    /// term ([`ClusterCommand::AppendInTerm`]), else `Raft`, so the client tries again.
    pub async fn append_in(
        &self,
        partition: &PartitionId,
        records: &[NewRecord<'_>],
        checked_in: u64,
    ) -> Result<SeqRange, ReplicationError> {
        let seqs = self.append_seqs_in(partition, records, checked_in).await?;
        range_of(&seqs)
    }

    /// [`ClusterWriter::append_in`] that returns each record's `_seq`.
    pub async fn append_seqs_in(
        &self,
        partition: &PartitionId,
        records: &[NewRecord<'_>],
        checked_in: u64,
    ) -> Result<Vec<Seq>, ReplicationError> {
        let leading_in = self.ready_to_lead().await?;
        if leading_in != checked_in {
            return Err(term_changed(checked_in, leading_in));
        }
        self.propose(partition, records, checked_in).await
    }

    /// Issues the batch's `_seq`s and proposes it in `checked_in`, the term
    /// [`ClusterWriter::ready_to_lead`] just answered; waits for its answer.
    async fn propose(
        &self,
        partition: &PartitionId,
        records: &[NewRecord<'_>],
        checked_in: u64,
    ) -> Result<Vec<Seq>, ReplicationError> {
        let (seqs, receiver) = {
            let _order = self.order.lock().await;
            let seqs = self
                .store
                .issue_ids(records.len())
                .map_err(|e| ReplicationError::Seqs(e.to_string()))?;
            let now_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            let batch = ReplicatedBatch {
                partition: partition.as_str().to_string(),
                records: records
                    .iter()
                    .zip(&seqs)
                    .map(|(record, seq)| OwnedRecord {
                        seq: seq.0,
                        timestamp_unix_ms: now_ms,
                        key: record.key.to_vec(),
                        payload: record.payload.to_vec(),
                        flags: record.flags.bits(),
                        previous_version: record.previous_version.0,
                    })
                    .collect(),
            };
            if seqs.is_empty() {
                return Err(ReplicationError::Refused("an empty batch".to_string()));
            }
            let term = checked_in;
            let command = match self.meta {
                None => ClusterCommand::AppendInTerm { term, batch },
                Some(_) => ClusterCommand::AppendAfterMeta {
                    term,
                    meta_index: self.indexes.get(META_GROUP),
                    batch,
                },
            };
            let receiver = self
                .raft
                .client_write_ff(command)
                .await
                .map_err(|e| ReplicationError::Raft(e.to_string()))?;
            (seqs, receiver)
        };
        let last = seqs.last().map_or(0, |seq| seq.0);
        let timeout = Duration::from_millis(CLUSTER_WRITE_TIMEOUT_MS);
        let written = match tokio::time::timeout(timeout, receiver).await {
            Ok(Ok(written)) => written,
            Ok(Err(_)) => {
                self.doubt(checked_in);
                return Err(ReplicationError::Raft(
                    "openraft dropped the write".to_string(),
                ));
            }
            Err(_) => {
                self.doubt(checked_in);
                return Err(unconfirmed());
            }
        };
        match written {
            Ok(response) => match response.data {
                ClusterReply::Appended { last_seq } if last_seq == last => Ok(seqs),
                ClusterReply::Appended { last_seq } => Err(ReplicationError::Refused(format!(
                    "applied up to _seq {last_seq}, not the batch's last {last}"
                ))),
                ClusterReply::Refused { reason } => Err(ReplicationError::Refused(reason)),
                ClusterReply::TermChanged {
                    checked_in,
                    proposed_in,
                } => Err(term_changed(checked_in, proposed_in)),
                // Its `_seq`s were at or below the partition's last: never for a batch this
                // leader just issued them to, so it is not acknowledged.
                ClusterReply::Nothing => Err(ReplicationError::Refused(
                    "the partition already held later _seqs".to_string(),
                )),
            },
            Err(ClientWriteError::ForwardToLeader(forward)) => Err(ReplicationError::NotLeader {
                leader: forward
                    .leader_id
                    .zip(forward.leader_node.map(|node: BasicNode| node.addr)),
            }),
            Err(error) => Err(ReplicationError::Raft(error.to_string())),
        }
    }

    /// A proposal made in `term` got no answer in time: remember it (the doubt is settled
    /// by the next [`ClusterWriter::ready_to_lead`]).
    fn doubt(&self, term: u64) {
        self.doubt.record(term);
    }

    /// Whether this node leads the group now, as far as it knows (no majority asked).
    pub fn leads(&self) -> bool {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        metrics.current_leader == Some(metrics.id)
    }

    /// Proposes a tick of this group (`ticks.rs`) and waits for its answer: a `_seq` issued
    /// under the order lock, so the entries before it carry lower `_seq`s and those after it
    /// higher ones; applied only in the term it was issued in.
    pub async fn propose_tick(&self) -> Result<(), ReplicationError> {
        let term = self.ready_to_lead().await?;
        let receiver = {
            let _order = self.order.lock().await;
            let issued = self
                .store
                .issue_ids(1)
                .map_err(|e| ReplicationError::Seqs(e.to_string()))?;
            let Some(seq) = issued.first().map(|seq| seq.0) else {
                return Err(ReplicationError::Seqs("no _seq was issued".to_string()));
            };
            let tick = ClusterCommand::Tick { term, seq };
            self.raft
                .client_write_ff(tick)
                .await
                .map_err(|e| ReplicationError::Raft(e.to_string()))?
        };
        // No doubt is left by a tick without an answer: no state was read for it.
        match receiver.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(ReplicationError::Raft(error.to_string())),
            Err(_) => Err(ReplicationError::Raft(
                "openraft dropped the tick".to_string(),
            )),
        }
    }

    /// Waits, while this node leads in the doubtful proposal's term, until it applied every
    /// entry in its log now (the proposal among them); a later term settles it too, since a
    /// new term's [`ClusterWriter::ready_to_lead`] applies whatever of it was committed. Still
    /// unapplied after the write timeout: `unavailable`, and the doubt stays.
    async fn settle_doubt(
        &self,
        metrics: &openraft::RaftMetrics<NodeId, BasicNode>,
    ) -> Result<(), ReplicationError> {
        // Taken after `metrics`: every doubt seen here is of a proposal at or below
        // `metrics.last_log_index` (it was proposed a write timeout before it was recorded).
        let Some(seen) = self.doubt.seen() else {
            return Ok(());
        };
        let doubt = seen.term;
        if doubt == metrics.current_term {
            let target = metrics.last_log_index;
            self.applied_through(doubt, target).await?;
            tracing::debug!(
                term = doubt,
                ?target,
                "a proposal that had no answer in time is settled"
            );
        }
        self.doubt.settled(seen);
        Ok(())
    }

    /// Waits, within the write timeout, until this node applied its log through `target` or
    /// its term is no longer `term`. Whether it is still in `term`.
    async fn applied_through(
        &self,
        term: u64,
        target: Option<u64>,
    ) -> Result<bool, ReplicationError> {
        let timeout = Some(Duration::from_millis(CLUSTER_WRITE_TIMEOUT_MS));
        let wait = self.raft.wait(timeout);
        let reached = wait.metrics(
            move |m| m.current_term != term || m.last_applied.map(|id| id.index) >= target,
            "the log is applied through the target or the term is over",
        );
        let metrics = reached.await.map_err(|_| unconfirmed())?;
        Ok(metrics.current_term == term)
    }

    /// Once per term as leader: wait until every entry in its log then (those of earlier
    /// terms, and its own from before a restart) is applied here, so state read now (a
    /// producer's last batch, the catalog) includes every write before; and
    /// after a proposal that got no answer, until it is applied or its term is over. Returns
    /// the term it leads in. `NotLeader` on a member that does not lead.
    pub async fn ready_to_lead(&self) -> Result<u64, ReplicationError> {
        if let Some(meta) = &self.meta {
            Box::pin(meta.ready_to_lead()).await?;
        }
        let metrics = self.raft.metrics().borrow().clone();
        if self.meta.is_some() && metrics.current_leader != Some(metrics.id) {
            // This node leads the meta group; the data group follows it shortly.
            return Err(ReplicationError::Raft(format!(
                "data group {} has not made this node its leader yet",
                self.group
            )));
        }
        if metrics.current_leader != Some(metrics.id) {
            let leader = metrics.current_leader.and_then(|id| {
                let membership = metrics.membership_config.membership();
                membership.get_node(&id).map(|node| (id, node.addr.clone()))
            });
            return Err(ReplicationError::NotLeader { leader });
        }
        self.settle_doubt(&metrics).await?;
        if self.ready_term.load(Ordering::Acquire) == metrics.current_term {
            return Ok(metrics.current_term);
        }
        self.linearizable().await?;
        // openraft restores a leader that restarts with its vote committed in the same term,
        // and then vouches only for its first entry of the term and the commit index it
        // stored (`ensure_linearizable`). Entries it proposed before the crash sit after them,
        // uncommitted, and commit later: a state read now would miss them, and a retry of
        // one (its client got no answer) would pass the check and be written twice. The
        // doubts that would have covered them died with the process, so the whole log as it
        // is when this term is first served counts as in doubt. For a newly elected leader
        // this is its first entry of the term, which `linearizable` waited for already.
        let term = metrics.current_term;
        if !self.applied_through(term, metrics.last_log_index).await? {
            let now = self.raft.metrics().borrow().current_term;
            return Err(term_changed(term, now));
        }
        self.ready_term.store(term, Ordering::Release);
        Ok(term)
    }

    /// openraft's `ensure_linearizable` within the write timeout: a majority confirmed this
    /// node leads, and it applied everything committed when it asked.
    async fn linearizable(&self) -> Result<(), ReplicationError> {
        let timeout = Duration::from_millis(CLUSTER_WRITE_TIMEOUT_MS);
        let confirmed = tokio::time::timeout(timeout, self.raft.ensure_linearizable());
        match confirmed.await.map_err(|_| unconfirmed())? {
            Ok(_) => Ok(()),
            Err(RaftError::APIError(error)) => Err(ReplicationError::Raft(error.to_string())),
            Err(RaftError::Fatal(error)) => Err(ReplicationError::Raft(error.to_string())),
        }
    }

    /// Confirms with a majority that this node still leads, in `term`, and has applied what
    /// it committed: for an answer taken from this node's state alone, without a proposal
    /// (which a majority would have to accept). A term other than `term` means the state read
    /// may lack a newer leader's writes: `Raft`, so the client tries again.
    pub async fn confirm_leading(&self, term: u64) -> Result<(), ReplicationError> {
        self.linearizable().await?;
        let now = self.raft.metrics().borrow().current_term;
        if now != term {
            return Err(term_changed(term, now));
        }
        Ok(())
    }
}

/// Every group's writer on this node, and which partition goes to which.
pub struct ClusterWriters {
    map: GroupMap,
    /// By group id: the meta group's first.
    writers: Vec<Arc<ClusterWriter>>,
}

impl ClusterWriters {
    /// `writers`, by group id, for the groups of `map`.
    pub fn new(map: GroupMap, writers: Vec<Arc<ClusterWriter>>) -> ClusterWriters {
        ClusterWriters { map, writers }
    }

    /// The writer of the group that replicates `partition`.
    pub fn for_partition(
        &self,
        partition: &PartitionId,
    ) -> Result<&ClusterWriter, ReplicationError> {
        self.of_group(self.map.group_of(partition.as_str()))
    }

    /// The meta group's writer.
    pub fn meta(&self) -> Result<&ClusterWriter, ReplicationError> {
        self.of_group(META_GROUP)
    }

    /// The data groups' writers.
    pub fn data(&self) -> impl Iterator<Item = &ClusterWriter> {
        self.writers.iter().skip(1).map(|writer| writer.as_ref())
    }

    /// This node's settled tick (`ticks.rs`): every record of every data group below it is
    /// published here. `None` before each data group applied a tick since the node started.
    pub fn settled_tick(&self) -> Option<Seq> {
        self.writers
            .first()
            .and_then(|meta| meta.indexes.ticks().settled())
    }

    fn of_group(&self, group: GroupId) -> Result<&ClusterWriter, ReplicationError> {
        usize::try_from(group)
            .ok()
            .and_then(|at| self.writers.get(at))
            .map(|writer| writer.as_ref())
            .ok_or_else(|| ReplicationError::Raft(format!("this node has no group {group}")))
    }
}

/// A [`ClusterWriters`] for callers on blocking threads (the catalog's and topics' writes run
/// there): each write waits on the runtime openraft runs on.
#[derive(Clone)]
pub struct BlockingWriter {
    writers: Arc<ClusterWriters>,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for BlockingWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlockingWriter")
    }
}

impl BlockingWriter {
    /// `writers`, driven on `runtime`.
    pub fn new(writers: Arc<ClusterWriters>, runtime: tokio::runtime::Handle) -> BlockingWriter {
        BlockingWriter { writers, runtime }
    }

    /// [`ClusterWriter::append`] of `partition`'s group, waited for. Must not be called on a
    /// runtime thread.
    pub fn append(
        &self,
        partition: &PartitionId,
        records: &[NewRecord<'_>],
    ) -> Result<SeqRange, ReplicationError> {
        let writer = self.writers.for_partition(partition)?;
        self.runtime.block_on(writer.append(partition, records))
    }

    /// [`ClusterWriter::append_in`] of `partition`'s group, waited for. Must not be called on
    /// a runtime thread.
    pub fn append_in(
        &self,
        partition: &PartitionId,
        records: &[NewRecord<'_>],
        checked_in: u64,
    ) -> Result<SeqRange, ReplicationError> {
        let writer = self.writers.for_partition(partition)?;
        self.runtime
            .block_on(writer.append_in(partition, records, checked_in))
    }

    /// [`ClusterWriter::append_seqs_in`] of `partition`'s group, waited for. Must not be
    /// called on a runtime thread.
    pub fn append_seqs_in(
        &self,
        partition: &PartitionId,
        records: &[NewRecord<'_>],
        checked_in: u64,
    ) -> Result<Vec<Seq>, ReplicationError> {
        let writer = self.writers.for_partition(partition)?;
        self.runtime
            .block_on(writer.append_seqs_in(partition, records, checked_in))
    }

    /// The meta group's [`ClusterWriter::ready_to_lead`], waited for: call before reading
    /// state that a write to a meta partition (catalog, users, offsets) is checked against,
    /// and pass the term it returns to [`BlockingWriter::append_in`].
    pub fn ready_to_lead(&self) -> Result<u64, ReplicationError> {
        let writer = self.writers.meta()?;
        self.runtime.block_on(writer.ready_to_lead())
    }

    /// [`ClusterWriter::ready_to_lead`] of `partition`'s group (and the meta group), waited
    /// for: call before reading state that a write to `partition` is checked against.
    /// Returns the term this node leads `partition`'s group in.
    pub fn ready_for(&self, partition: &PartitionId) -> Result<u64, ReplicationError> {
        let writer = self.writers.for_partition(partition)?;
        self.runtime.block_on(writer.ready_to_lead())
    }

    /// The meta group's [`ClusterWriter::confirm_leading`], waited for. Must not be called
    /// on a runtime thread.
    pub fn confirm_leading(&self, term: u64) -> Result<(), ReplicationError> {
        let writer = self.writers.meta()?;
        self.runtime.block_on(writer.confirm_leading(term))
    }

    /// [`ClusterWriter::confirm_leading`] of `partition`'s group, waited for. Must not be
    /// called on a runtime thread.
    pub fn confirm_for(&self, partition: &PartitionId, term: u64) -> Result<(), ReplicationError> {
        let writer = self.writers.for_partition(partition)?;
        self.runtime.block_on(writer.confirm_leading(term))
    }

    /// [`ClusterWriters::settled_tick`].
    pub fn settled_tick(&self) -> Option<Seq> {
        self.writers.settled_tick()
    }

    /// The meta group's [`ClusterWriter::ready_to_lead`] for a caller on the runtime (a
    /// request handler): state that only the leader keeps (consumer-group coordinators)
    /// belongs to the term it returns, and is dropped when it changes.
    pub async fn leading_term_async(&self) -> Result<u64, ReplicationError> {
        self.writers.meta()?.ready_to_lead().await
    }
}
