//! Group commit: the append path.
//!
//! Appenders encode their frames into a per-partition pending buffer under one short lock (where
//! `_seq` values are also issued, so `_seq` order is append order), then one of them becomes the
//! leader of the round: it takes every pending buffer of every partition of the store, writes
//! each partition's frames with one positional write, fdatasyncs each touched file once, publishes
//! the new views, and wakes the others. While a leader does I/O the next round fills up, so under
//! load one fsync serves many writers. Policies `interval` and `never` skip the fdatasync.
//!
//! This module owns the queue (issuing `_seq`s, rounds, waiting); `commit/round.rs` owns what
//! the leader does inside one round, and what happens when it panics there.

mod failures;
mod files;
mod lease;
mod round;
mod undo;
mod waiters;

use parking_lot::{Condvar, Mutex, MutexGuard};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Weak};

use crate::config::{FsyncPolicy, PartitionConfig};
use crate::error::{LogError, Result};
use crate::limits::{BATCH_BYTES_MAX, BATCH_RECORDS_MAX};
use crate::partition::Partition;
use crate::record::{self, NewRecord, ReplicatedRecord};
use crate::segment::SEGMENT_HEADER_BYTES;
use crate::seq::{Clock, Seq, SeqGenerator, SeqRange};
use crate::storage::Storage;
use crate::store::SeqLease;
use crate::writeback::WritebackQueue;
use failures::{Failure, RoundFailures};
use files::OpenFiles;
use round::{PanicPayload, PendingWrite, RoundGuard};
pub use waiters::Committed;
use waiters::{AsyncWaiter, Committer};

/// End of one appended batch inside a pending buffer. Batches never span segments.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BatchMark {
    end: usize,
    first_seq: Seq,
}

#[derive(Debug)]
struct QueueState {
    generator: SeqGenerator,
    /// `_seq` milliseconds (since the Strand epoch) up to which the lease file covers us.
    lease_until_ms: u64,
    /// The renew-ahead thread was asked to move the lease and has not finished.
    lease_renewing: bool,
    open_round: u64,
    completed_round: u64,
    leader_active: bool,
    /// Appenders waiting on `round_done[round % 2]`, so a finished round wakes only its own
    /// waiters (and one of the next round to lead it), not every thread in the queue.
    waiting: [usize; 2],
    pending: Vec<PendingWrite>,
    spare_buffers: Vec<(Vec<u8>, Vec<BatchMark>)>,
    /// Futures waiting for a round ([`Committed`]), woken when it completes.
    async_waiters: Vec<AsyncWaiter>,
    /// The committer thread was asked to lead and has not started yet.
    committer_asked: bool,
    /// The committer thread is leading rounds (and will lead the next one while async
    /// waiters wait).
    committer_leading: bool,
}

/// The commit queue shared by all partitions of a store (or owned by a standalone partition).
#[derive(Debug)]
pub(crate) struct CommitQueue {
    state: Mutex<QueueState>,
    round_done: [Condvar; 2],
    clock: Arc<dyn Clock>,
    fsync: FsyncPolicy,
    storage: Arc<dyn Storage>,
    /// A round touching at least this many partitions uses one syncfs instead of fdatasyncs.
    shared_sync_partitions_min: usize,
    lease: Option<SeqLease>,
    /// Asks the renew-ahead thread to move the lease before it runs out (`renew_lease`).
    lease_renewer: Option<mpsc::Sender<()>>,
    unsynced: Mutex<Vec<Weak<Partition>>>,
    /// Dropping this stops the interval flusher.
    _flusher_stop: Option<mpsc::Sender<()>>,
    /// Early writeback of appended ranges, off the commit path (`never` and `interval`).
    writeback: Option<WritebackQueue>,
    /// Partitions' writes undone after a full disk, until their waiters learnt it.
    failures: RoundFailures,
    /// The bound on partitions holding an open segment file.
    files: OpenFiles,
    /// The thread that leads rounds wanted only by async waiters (`commit/waiters.rs`).
    committer: Committer,
}

impl CommitQueue {
    pub fn standalone(config: &PartitionConfig) -> Arc<CommitQueue> {
        CommitQueue::new(config, None, Seq::ZERO, usize::MAX, usize::MAX)
    }

    pub fn new(
        config: &PartitionConfig,
        lease: Option<SeqLease>,
        floor: Seq,
        shared_sync_partitions_min: usize,
        open_files_max: usize,
    ) -> Arc<Self> {
        let (stop, stopped) = mpsc::channel();
        let (renewer, renew_requests) = mpsc::channel();
        let has_lease = lease.is_some();
        let lease_until_ms = if lease.is_some() {
            floor.epoch_ms() + 1
        } else {
            u64::MAX
        };
        let queue = Arc::new(CommitQueue {
            state: Mutex::new(QueueState {
                generator: SeqGenerator::new(config.node, floor),
                lease_until_ms,
                lease_renewing: false,
                open_round: 1,
                completed_round: 0,
                leader_active: false,
                waiting: [0; 2],
                pending: Vec::new(),
                spare_buffers: Vec::new(),
                async_waiters: Vec::new(),
                committer_asked: false,
                committer_leading: false,
            }),
            round_done: [Condvar::new(), Condvar::new()],
            clock: config.clock.clone(),
            fsync: config.fsync,
            storage: config.storage.clone(),
            shared_sync_partitions_min: shared_sync_partitions_min.max(2),
            lease,
            lease_renewer: has_lease.then_some(renewer),
            unsynced: Mutex::new(Vec::new()),
            _flusher_stop: Some(stop),
            writeback: (config.fsync != FsyncPolicy::Always).then(WritebackQueue::start),
            failures: RoundFailures::default(),
            files: OpenFiles::new(open_files_max),
            committer: Committer::default(),
        });
        if has_lease {
            lease::start_renewer(&queue, renew_requests);
        }
        if let FsyncPolicy::Interval(every) = config.fsync {
            let weak = Arc::downgrade(&queue);
            std::thread::Builder::new()
                .name("strand-log-flusher".into())
                .spawn(move || loop {
                    match stopped.recv_timeout(every) {
                        Err(RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                    let Some(queue) = weak.upgrade() else { return };
                    queue.sync_unsynced();
                })
                .ok();
        }
        queue
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock()
    }

    /// Raise the generator's floor (a partition opened later may hold a higher `_seq`).
    pub fn observe(&self, seq: Seq) {
        self.lock().generator.observe(seq);
    }

    /// Raise the floor to a `_seq` another node issued, and extend the lease over it, so
    /// this node never issues it or below, even after a restart.
    pub fn observe_issued(&self, seq: Seq) -> Result<()> {
        let mut state = self.lock();
        state.generator.observe(seq);
        self.extend_lease(&mut state, self.clock.now_unix_ms(), 0)
    }

    pub fn leader_active(&self) -> bool {
        self.lock().leader_active
    }

    /// `partition` was opened (its active segment file with it): count it against the bound
    /// on open files, closing the least recently written others' if it is passed.
    pub fn opened(&self, partition: &Arc<Partition>) {
        let over = self.files.touch(partition);
        self.files.close(over);
    }

    /// Partitions holding an open segment file now.
    pub fn open_files(&self) -> usize {
        self.files.open()
    }

    pub fn last_issued(&self) -> Seq {
        self.lock().generator.last()
    }

    /// Issue `count` ids from the `_seq` generator without writing a record: unique across
    /// nodes and increasing like every `_seq`, and covered by the lease, so a restart never
    /// issues them again (SQL's `SNOWFLAKE_ID()` defaults).
    pub fn issue_ids(&self, count: usize) -> Result<Vec<Seq>> {
        let mut state = self.lock();
        let now = self.clock.now_unix_ms();
        self.extend_lease(&mut state, now, count)?;
        (0..count).map(|_| state.generator.next(now)).collect()
    }

    /// fdatasync every partition written since the last call (interval policy).
    pub fn sync_unsynced(&self) {
        let partitions = std::mem::take(&mut *self.unsynced.lock());
        for partition in partitions.iter().filter_map(Weak::upgrade) {
            // A failure poisons the partition; its next append reports it.
            let _ = partition.sync();
        }
    }

    pub fn append(
        self: &Arc<Self>,
        partition: &Arc<Partition>,
        records: &[NewRecord<'_>],
        seqs: Option<&mut Vec<Seq>>,
    ) -> Result<SeqRange> {
        let (round, range) = self.submit(partition, records, seqs)?;
        self.wait(partition, round)?;
        Ok(range)
    }

    /// Issue `_seq`s and queue the batch (its place in the partition is fixed from here on);
    /// returns the commit round that will make it durable.
    pub fn submit(
        &self,
        partition: &Arc<Partition>,
        records: &[NewRecord<'_>],
        seqs: Option<&mut Vec<Seq>>,
    ) -> Result<(u64, SeqRange)> {
        let batch_bytes = check_batch(records, partition.segment_bytes_max)?;
        if partition.is_poisoned() {
            return Err(partition.poisoned_error());
        }
        let mut state = self.lock();
        let now = self.clock.now_unix_ms();
        self.extend_lease(&mut state, now, records.len())?;
        let round = state.open_round;
        let range = state.enqueue(partition, records, now, batch_bytes, seqs)?;
        Ok((round, range))
    }

    /// Queue a batch whose `_seq`s and times another node issued (see
    /// [`Partition::append_replicated`]); returns the commit round that makes it durable.
    pub fn submit_replicated(
        &self,
        partition: &Arc<Partition>,
        records: &[ReplicatedRecord<'_>],
    ) -> Result<(u64, SeqRange)> {
        let plain: Vec<NewRecord<'_>> = records.iter().map(|r| r.record).collect();
        let batch_bytes = check_batch(&plain, partition.segment_bytes_max)?;
        if partition.is_poisoned() {
            return Err(partition.poisoned_error());
        }
        let mut state = self.lock();
        let mut previous = Seq(partition.last_enqueued.load(Ordering::Acquire));
        for record in records {
            if record.seq <= previous {
                return Err(LogError::InvalidBatch(
                    "a replicated _seq must be above the partition's last and the one before it",
                ));
            }
            previous = record.seq;
        }
        // This node may lead later: it must never issue a `_seq` at or below these.
        state.generator.observe(previous);
        self.extend_lease(&mut state, self.clock.now_unix_ms(), 0)?;
        let round = state.open_round;
        let range = state.enqueue_replicated(partition, records, batch_bytes);
        Ok((round, range))
    }

    /// A `_seq` issued to no record, in order with every record of the store: each record with
    /// a lower `_seq` is in the returned round or an earlier one (so every partition has
    /// published it once that round completes), and every later record gets a higher `_seq`.
    pub fn tick(&self) -> Result<(Seq, u64)> {
        let mut state = self.lock();
        let now = self.clock.now_unix_ms();
        self.extend_lease(&mut state, now, 1)?;
        let seq = state.generator.next(now)?;
        // With nothing pending, every lower `_seq` is in a round already taken by a leader.
        let round = if state.pending.is_empty() {
            state.open_round - 1
        } else {
            state.open_round
        };
        Ok((seq, round))
    }

    /// Whether `round` has completed (its records are published).
    pub fn is_completed(&self, round: u64) -> bool {
        self.lock().completed_round >= round
    }

    /// Return once `round` is committed (leading it, or a later one, if no one else does).
    pub fn wait(&self, partition: &Partition, round: u64) -> Result<()> {
        let mut state = self.lock();
        let parity = (round % 2) as usize;
        let mut panic = None;
        while state.completed_round < round {
            if state.leader_active {
                state.waiting[parity] += 1;
                self.round_done[parity].wait(&mut state);
                state.waiting[parity] -= 1;
            } else {
                let (next, led_panic) = self.lead(state);
                state = next;
                panic = panic.or(led_panic);
            }
        }
        drop(state);
        // Taken before a panic is raised again: each waiter takes its round's entry once.
        let outcome = self.outcome(partition, round);
        if let Some(payload) = panic {
            round::continue_panic(payload);
        }
        outcome
    }

    /// What the waiter of a batch of `partition` in the completed `round` is told; takes the
    /// round's failure entry, so call it once per batch.
    fn outcome(&self, partition: &Partition, round: u64) -> Result<()> {
        let full = self.failures.take(round, round::key_of(partition));
        let path = || partition.dir.clone();
        match full {
            Some(Failure::Full(cause)) => {
                return Err(LogError::StorageFull {
                    path: path(),
                    cause,
                })
            }
            Some(Failure::Reopen(cause)) => {
                return Err(LogError::ReopenFailed {
                    path: path(),
                    cause,
                })
            }
            None => {}
        }
        if partition.poisoned_in_or_before(round) {
            return Err(partition.poisoned_error());
        }
        Ok(())
    }

    /// Run the open round: take all pending writes, do the I/O without the lock, publish.
    /// Returns the locked state after the round completed, and the payload of a panic met
    /// while writing one partition (that partition is poisoned; the caller raises it again).
    fn lead<'a>(
        &'a self,
        mut state: MutexGuard<'a, QueueState>,
    ) -> (MutexGuard<'a, QueueState>, Option<PanicPayload>) {
        state.leader_active = true;
        let round = state.open_round;
        state.open_round += 1;
        let writes = std::mem::take(&mut state.pending);
        drop(state);
        // If anything below unwinds, the guard completes the round (see `round.rs`).
        let mut guard = RoundGuard::new(self, round, writes);
        let panic = self.write_round(round, guard.writes_mut());
        (guard.complete(), panic)
    }

    /// Mark `round` done: return its buffers, let the next leader in, wake its waiters.
    fn complete_round(&self, round: u64, writes: Vec<PendingWrite>) -> MutexGuard<'_, QueueState> {
        let mut state = self.lock();
        for write in writes {
            let (mut frames, mut batches) = (write.frames, write.batches);
            frames.clear();
            batches.clear();
            state.spare_buffers.push((frames, batches));
        }
        state.completed_round = round;
        state.leader_active = false;
        let (done, next) = ((round % 2) as usize, ((round + 1) % 2) as usize);
        if state.waiting[done] > 0 {
            self.round_done[done].notify_all();
        }
        // Everyone waiting on the other condvar is in the next round; one of them leads it
        // (unless a new appender takes the lead first).
        if state.waiting[next] > 0 {
            self.round_done[next].notify_one();
        }
        let ready = self.ready_waiters(&mut state);
        if ready.is_empty() {
            return state;
        }
        drop(state);
        ready.settle(self);
        self.lock()
    }
}

impl QueueState {
    /// Issue `_seq`s and encode the batch into the partition's pending buffer.
    /// The pending write of `partition` in the open round, added if it has none.
    fn pending_slot(&mut self, partition: &Arc<Partition>) -> usize {
        let found = self
            .pending
            .iter()
            .position(|w| Arc::ptr_eq(&w.partition, partition));
        found.unwrap_or_else(|| {
            let (frames, batches) = self.spare_buffers.pop().unwrap_or_default();
            self.pending
                .push(PendingWrite::new(partition.clone(), frames, batches));
            self.pending.len() - 1
        })
    }

    fn enqueue(
        &mut self,
        partition: &Arc<Partition>,
        records: &[NewRecord<'_>],
        now: u64,
        bytes: usize,
        mut seqs: Option<&mut Vec<Seq>>,
    ) -> Result<SeqRange> {
        let slot = self.pending_slot(partition);
        let write = &mut self.pending[slot];
        let start = write.frames.len();
        write.frames.reserve(bytes);
        let mut first = Seq::ZERO;
        for record in records {
            let seq = match self.generator.next(now) {
                Ok(seq) => seq,
                Err(error) => {
                    write.frames.truncate(start);
                    return Err(error);
                }
            };
            if first == Seq::ZERO {
                first = seq;
            }
            if let Some(seqs) = seqs.as_deref_mut() {
                seqs.push(seq);
            }
            record::encode(&mut write.frames, seq, now, record);
        }
        write.batches.push(BatchMark {
            end: write.frames.len(),
            first_seq: first,
        });
        let last = self.generator.last();
        partition.last_enqueued.store(last.0, Ordering::Release);
        Ok(SeqRange {
            first,
            last,
            count: records.len() as u32,
        })
    }
}

impl QueueState {
    /// [`QueueState::enqueue`] with the `_seq`s and times the records carry (checked by the
    /// caller: increasing, above the partition's last).
    fn enqueue_replicated(
        &mut self,
        partition: &Arc<Partition>,
        records: &[ReplicatedRecord<'_>],
        bytes: usize,
    ) -> SeqRange {
        let slot = self.pending_slot(partition);
        let write = &mut self.pending[slot];
        write.frames.reserve(bytes);
        for replicated in records {
            record::encode(
                &mut write.frames,
                replicated.seq,
                replicated.timestamp_unix_ms,
                &replicated.record,
            );
        }
        let first = records.first().map_or(Seq::ZERO, |r| r.seq);
        let last = records.last().map_or(Seq::ZERO, |r| r.seq);
        write.batches.push(BatchMark {
            end: write.frames.len(),
            first_seq: first,
        });
        partition.last_enqueued.store(last.0, Ordering::Release);
        SeqRange {
            first,
            last,
            count: records.len() as u32,
        }
    }
}

/// Validate a batch before any `_seq` is spent on it; returns its encoded size.
fn check_batch(records: &[NewRecord<'_>], segment_bytes_max: u64) -> Result<usize> {
    if records.is_empty() {
        return Err(LogError::InvalidBatch("empty batch"));
    }
    if records.len() > BATCH_RECORDS_MAX {
        return Err(LogError::InvalidBatch(
            "more records than batch_records_max",
        ));
    }
    let mut bytes = 0usize;
    for record in records {
        record::check_record(record).map_err(LogError::InvalidRecord)?;
        bytes += record::frame_bytes(record.key.len(), record.payload.len());
    }
    let room = segment_bytes_max.saturating_sub(u64::from(SEGMENT_HEADER_BYTES));
    let max_bytes = room.min(BATCH_BYTES_MAX as u64);
    if bytes as u64 > max_bytes {
        return Err(LogError::BatchTooLarge {
            bytes: bytes as u64,
            max_bytes,
        });
    }
    Ok(bytes)
}
