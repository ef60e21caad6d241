//! Group commit: the append path.
//!
//! Appenders encode their frames into a per-partition pending buffer under one short lock (where
//! `_seq` values are also issued, so `_seq` order is append order), then one of them becomes the
//! leader of the round: it takes every pending buffer of every partition of the store, writes
//! each partition's frames with one positional write, fdatasyncs each touched file once, publishes
//! the new views, and wakes the others. While a leader does I/O the next round fills up, so under
//! load one fsync serves many writers. Policies `interval` and `never` skip the fdatasync.

use parking_lot::{Condvar, Mutex, MutexGuard};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Weak};

use crate::config::{FsyncPolicy, PartitionConfig};
use crate::error::{LogError, Result};
use crate::limits::{BATCH_BYTES_MAX, BATCH_RECORDS_MAX, SEQ_LEASE_MS};
use crate::partition::{Partition, WriterState};
use crate::record::{self, NewRecord};
use crate::segment::{ActiveSegment, SEGMENT_HEADER_BYTES};
use crate::seq::{Clock, Seq, SeqGenerator, SeqRange, EPOCH_UNIX_MS};
use crate::storage::Storage;
use crate::store::SeqLease;
use crate::writeback::WritebackQueue;

/// End of one appended batch inside a pending buffer. Batches never span segments.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BatchMark {
    end: usize,
    first_seq: Seq,
}

#[derive(Debug)]
struct PendingWrite {
    partition: Arc<Partition>,
    frames: Vec<u8>,
    batches: Vec<BatchMark>,
    /// Set by the leader once the frames are written (and synced, if per file).
    written: bool,
}

#[derive(Debug)]
struct QueueState {
    generator: SeqGenerator,
    /// `_seq` milliseconds (since the Strand epoch) up to which the lease file covers us.
    lease_until_ms: u64,
    open_round: u64,
    completed_round: u64,
    leader_active: bool,
    /// Appenders waiting on `round_done[round % 2]`, so a finished round wakes only its own
    /// waiters (and one of the next round to lead it), not every thread in the queue.
    waiting: [usize; 2],
    pending: Vec<PendingWrite>,
    spare_buffers: Vec<(Vec<u8>, Vec<BatchMark>)>,
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
    unsynced: Mutex<Vec<Weak<Partition>>>,
    /// Dropping this stops the interval flusher.
    _flusher_stop: Option<mpsc::Sender<()>>,
    /// Early writeback of appended ranges, off the commit path (`never` and `interval`).
    writeback: Option<WritebackQueue>,
}

impl CommitQueue {
    pub fn standalone(config: &PartitionConfig) -> Arc<CommitQueue> {
        CommitQueue::new(config, None, Seq::ZERO, usize::MAX)
    }

    pub fn new(
        config: &PartitionConfig,
        lease: Option<SeqLease>,
        floor: Seq,
        shared_sync_partitions_min: usize,
    ) -> Arc<Self> {
        let (stop, stopped) = mpsc::channel();
        let lease_until_ms = if lease.is_some() {
            floor.epoch_ms() + 1
        } else {
            u64::MAX
        };
        let queue = Arc::new(CommitQueue {
            state: Mutex::new(QueueState {
                generator: SeqGenerator::new(config.node, floor),
                lease_until_ms,
                open_round: 1,
                completed_round: 0,
                leader_active: false,
                waiting: [0; 2],
                pending: Vec::new(),
                spare_buffers: Vec::new(),
            }),
            round_done: [Condvar::new(), Condvar::new()],
            clock: config.clock.clone(),
            fsync: config.fsync,
            storage: config.storage.clone(),
            shared_sync_partitions_min: shared_sync_partitions_min.max(2),
            lease,
            unsynced: Mutex::new(Vec::new()),
            _flusher_stop: Some(stop),
            writeback: (config.fsync != FsyncPolicy::Always).then(WritebackQueue::start),
        });
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

    pub fn leader_active(&self) -> bool {
        self.lock().leader_active
    }

    pub fn last_issued(&self) -> Seq {
        self.lock().generator.last()
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

    /// Return once `round` is committed (leading it, or a later one, if no one else does).
    pub fn wait(&self, partition: &Partition, round: u64) -> Result<()> {
        let mut state = self.lock();
        let parity = (round % 2) as usize;
        while state.completed_round < round {
            if state.leader_active {
                state.waiting[parity] += 1;
                self.round_done[parity].wait(&mut state);
                state.waiting[parity] -= 1;
            } else {
                state = self.lead(state);
            }
        }
        drop(state);
        if partition.poisoned_in_or_before(round) {
            return Err(partition.poisoned_error());
        }
        Ok(())
    }

    /// Run the open round: take all pending writes, do the I/O without the lock, publish.
    fn lead<'a>(&'a self, mut state: MutexGuard<'a, QueueState>) -> MutexGuard<'a, QueueState> {
        state.leader_active = true;
        let round = state.open_round;
        state.open_round += 1;
        let mut writes = std::mem::take(&mut state.pending);
        drop(state);
        self.write_round(round, &mut writes);
        let mut state = self.lock();
        for mut write in writes.drain(..) {
            write.frames.clear();
            write.batches.clear();
            state.spare_buffers.push((write.frames, write.batches));
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
        state
    }

    /// Write every partition of the round, make it durable (one fdatasync per file, or one
    /// syncfs for the whole round when it touched many partitions), then publish.
    fn write_round(&self, round: u64, writes: &mut [PendingWrite]) {
        let sync = self.fsync == FsyncPolicy::Always;
        let shared_sync = sync && writes.len() >= self.shared_sync_partitions_min;
        let now = self.clock.now_unix_ms();
        for write in writes.iter_mut() {
            let partition = &write.partition;
            let synced_here = sync && !shared_sync;
            let (frames, batches) = (&write.frames, &write.batches);
            let writeback = self.writeback.as_ref();
            match partition.write_pending(frames, batches, synced_here, writeback, now) {
                Ok(()) => write.written = true,
                Err(error) => partition.poison(round, &error),
            }
        }
        if shared_sync {
            if let Some(first) = writes.first() {
                let dir = &first.partition.dir;
                if let Err(e) = self.storage.sync_file_system(dir) {
                    let error = LogError::io(dir, e);
                    for write in writes.iter_mut().filter(|w| w.written) {
                        write.partition.poison(round, &error);
                        write.written = false;
                    }
                }
            }
        }
        for write in writes.iter().filter(|w| w.written) {
            let partition = &write.partition;
            partition.publish(&partition.lock_writer());
            if sync {
                continue;
            }
            let was_unsynced = partition.unsynced.swap(true, Ordering::AcqRel);
            // Only the interval flusher drains this list; `never` syncs on close instead.
            if !was_unsynced && matches!(self.fsync, FsyncPolicy::Interval(_)) {
                let mut unsynced = self.unsynced.lock();
                unsynced.push(Arc::downgrade(partition));
            }
        }
    }

    /// Persist a new `_seq` lease before issuing ids beyond the current one, so a restart
    /// (which seeds the generator from the lease) never reissues an id.
    fn extend_lease(&self, state: &mut QueueState, now_unix_ms: u64, records: usize) -> Result<()> {
        let Some(lease) = &self.lease else {
            return Ok(());
        };
        let now_ms = now_unix_ms.saturating_sub(EPOCH_UNIX_MS);
        let needed_ms = now_ms.max(state.generator.last().epoch_ms()) + records as u64 / 4096 + 1;
        if needed_ms < state.lease_until_ms {
            return Ok(());
        }
        let until_ms = needed_ms + SEQ_LEASE_MS;
        lease.store(until_ms)?;
        state.lease_until_ms = until_ms;
        Ok(())
    }
}

impl QueueState {
    /// Issue `_seq`s and encode the batch into the partition's pending buffer.
    fn enqueue(
        &mut self,
        partition: &Arc<Partition>,
        records: &[NewRecord<'_>],
        now: u64,
        bytes: usize,
        mut seqs: Option<&mut Vec<Seq>>,
    ) -> Result<SeqRange> {
        let slot = match self
            .pending
            .iter()
            .position(|w| Arc::ptr_eq(&w.partition, partition))
        {
            Some(slot) => slot,
            None => {
                let (frames, batches) = self.spare_buffers.pop().unwrap_or_default();
                self.pending.push(PendingWrite {
                    partition: partition.clone(),
                    frames,
                    batches,
                    written: false,
                });
                self.pending.len() - 1
            }
        };
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
        Ok(SeqRange {
            first,
            last,
            count: records.len() as u32,
        })
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
    if bytes > BATCH_BYTES_MAX || bytes as u64 > room {
        return Err(LogError::InvalidBatch(
            "batch larger than batch_bytes_max or a segment",
        ));
    }
    Ok(bytes)
}

impl Partition {
    /// Leader only: write this round's frames for the partition, rolling segments as needed;
    /// `sync`: fdatasync them; `writeback`: start early writeback (policies that do not sync
    /// each round). Not visible to readers until the leader publishes.
    fn write_pending(
        &self,
        frames: &[u8],
        batches: &[BatchMark],
        sync: bool,
        writeback: Option<&WritebackQueue>,
        now: u64,
    ) -> Result<()> {
        let mut writer = self.lock_writer();
        let mut run_start = 0;
        let mut run_end = 0;
        for mark in batches {
            let batch_bytes = (mark.end - run_end) as u64;
            let fits = match &writer.active {
                None => false,
                Some(active) => {
                    let used = u64::from(active.written_bytes()) + (run_end - run_start) as u64;
                    let empty = active.is_empty() && run_end == run_start;
                    empty || used + batch_bytes <= self.segment_bytes_max
                }
            };
            if !fits {
                self.write_run(&mut writer, &frames[run_start..run_end])?;
                self.roll(&mut writer, mark.first_seq, now)?;
                run_start = run_end;
            }
            run_end = mark.end;
        }
        self.write_run(&mut writer, &frames[run_start..run_end])?;
        if let (Some(queue), Some(active)) = (writeback, writer.active.as_mut()) {
            active.start_writeback_if_due(queue);
        }
        if sync {
            if let Some(active) = &writer.active {
                active
                    .sync_data()
                    .map_err(|e| LogError::io(&active.path, e))?;
            }
        }
        self.publish(&writer);
        Ok(())
    }

    fn write_run(&self, writer: &mut WriterState, run: &[u8]) -> Result<()> {
        if run.is_empty() {
            return Ok(());
        }
        let Some(active) = writer.active.as_mut() else {
            unreachable!("a run is only formed after a segment exists");
        };
        active
            .append(run)
            .map_err(|e| LogError::io(&active.path, e))
    }

    /// Seal the active segment (if any) and start a new one named by `first_seq`.
    pub(crate) fn roll(&self, writer: &mut WriterState, first_seq: Seq, now: u64) -> Result<()> {
        if let Some(active) = writer.active.take() {
            tracing::debug!(partition = %self.dir.display(), first_seq = %active.first_seq,
                "sealing segment");
            let sealed = Arc::new(active.seal(self.storage.clone())?);
            Arc::make_mut(&mut writer.sealed).push(sealed);
        }
        let active = ActiveSegment::create(self.storage.as_ref(), &self.dir, first_seq, now)?;
        writer.active = Some(active);
        Ok(())
    }
}
