//! One commit round, as its leader runs it: write each partition's pending frames (rolling
//! segments), make them durable, publish the new views. And the round's drop guard.
//!
//! Panics. A panic while the leader holds a round must never leave the round open: every
//! appender of the store would wait for it forever. Two layers see to that:
//! - a panic while writing one partition (an assert in the write path, or one raised by the
//!   storage layer) is caught there: that partition is poisoned (what reached its files is
//!   unknown), the rest of the round goes on, and the leader raises the panic again once the
//!   round is complete ([`continue_panic`]);
//! - anything else that unwinds out of the round (the shared `syncfs`, publishing) passes
//!   through [`RoundGuard`], the round's "poison dart": it poisons every partition of the
//!   round whose write it cannot vouch for, completes the round and wakes its waiters.
//!
//! Either way the waiters of a poisoned partition get `LogError::Poisoned`, the partition
//! refuses appends until it is reopened (as after a failed fsync), and every other partition
//! keeps committing.
//!
//! A full disk is not a reason to poison: the partition's write of the round is undone
//! (`commit/undo.rs`), its waiters get `LogError::StorageFull`, and it stays writable.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use parking_lot::MutexGuard;

use super::failures::Failure;
use super::undo::Checkpoint;
use super::{BatchMark, CommitQueue, QueueState};
use crate::config::FsyncPolicy;
use crate::error::{LogError, Result};
use crate::partition::{Partition, WriterState};
use crate::segment::ActiveSegment;
use crate::seq::Seq;
use crate::writeback::WritebackQueue;

/// What a caught panic carries, raised again by the leader once its round is complete.
pub(super) type PanicPayload = Box<dyn Any + Send + 'static>;

/// How far the leader got with one partition's write of the round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Progress {
    /// Not written yet.
    Queued,
    /// Written (and synced, if synced per file), not yet published.
    Written,
    /// Published, or its partition poisoned: its waiters' outcome is decided.
    Settled,
}

/// One partition's frames of one round.
#[derive(Debug)]
pub(super) struct PendingWrite {
    pub partition: Arc<Partition>,
    pub frames: Vec<u8>,
    pub batches: Vec<BatchMark>,
    pub progress: Progress,
    /// The partition before this round's write, once written: what a failed shared sync
    /// after a full disk restores.
    pub checkpoint: Option<Checkpoint>,
}

impl PendingWrite {
    pub fn new(partition: Arc<Partition>, frames: Vec<u8>, batches: Vec<BatchMark>) -> Self {
        PendingWrite {
            partition,
            frames,
            batches,
            progress: Progress::Queued,
            checkpoint: None,
        }
    }
}

/// The round in its leader's hands. [`RoundGuard::complete`] ends it normally; if the leader
/// unwinds instead, `drop` poisons the partitions not yet settled and completes the round, so
/// its waiters wake (with `Poisoned`) and the next appender can lead.
pub(super) struct RoundGuard<'q> {
    queue: &'q CommitQueue,
    round: u64,
    writes: Vec<PendingWrite>,
    completed: bool,
}

impl<'q> RoundGuard<'q> {
    pub fn new(queue: &'q CommitQueue, round: u64, writes: Vec<PendingWrite>) -> Self {
        RoundGuard {
            queue,
            round,
            writes,
            completed: false,
        }
    }

    pub fn writes_mut(&mut self) -> &mut [PendingWrite] {
        &mut self.writes
    }

    /// End the round normally; returns the queue's state, locked.
    pub fn complete(mut self) -> MutexGuard<'q, QueueState> {
        self.completed = true;
        let writes = std::mem::take(&mut self.writes);
        self.queue.complete_round(self.round, writes)
    }
}

impl Drop for RoundGuard<'_> {
    fn drop(&mut self) {
        if self.completed {
            return;
        }
        let cause = format!("the commit leader panicked in round {}", self.round);
        let unsettled = self
            .writes
            .iter()
            .filter(|w| w.progress != Progress::Settled);
        let mut poisoned = 0;
        for write in unsettled {
            write.partition.poison(self.round, &cause);
            poisoned += 1;
        }
        tracing::error!(
            round = self.round,
            poisoned,
            "commit round unwound; completing it"
        );
        let writes = std::mem::take(&mut self.writes);
        drop(self.queue.complete_round(self.round, writes));
    }
}

/// How [`super::RoundFailures`] names a partition.
pub(super) fn key_of(partition: &Partition) -> usize {
    partition as *const Partition as usize
}

/// Raise a panic caught in a commit round again in the leader's thread, now that the round is
/// complete; only logged if the thread is already unwinding (a ticket dropped by a panic).
pub(super) fn continue_panic(payload: PanicPayload) {
    if std::thread::panicking() {
        let message = panic_message(&payload);
        tracing::error!(%message, "commit round panicked while its leader was already unwinding");
        return;
    }
    std::panic::resume_unwind(payload);
}

pub(super) fn panic_message(payload: &PanicPayload) -> &str {
    match (
        payload.downcast_ref::<&str>(),
        payload.downcast_ref::<String>(),
    ) {
        (Some(text), _) => text,
        (_, Some(text)) => text,
        _ => "a panic without a message",
    }
}

impl CommitQueue {
    /// Write every partition of the round, make it durable (one fdatasync per file, or one
    /// syncfs for the whole round when it touched many partitions), then publish. Returns the
    /// first panic caught while writing a partition.
    pub(super) fn write_round(
        &self,
        round: u64,
        writes: &mut [PendingWrite],
    ) -> Option<PanicPayload> {
        let sync = self.fsync == FsyncPolicy::Always;
        let shared_sync = sync && writes.len() >= self.shared_sync_partitions_min;
        let now = self.clock.now_unix_ms();
        let mut panic = None;
        for write in writes.iter_mut() {
            let caught = self.write_partition(round, write, sync && !shared_sync, now);
            panic = panic.or(caught);
        }
        if shared_sync {
            self.sync_file_system(round, writes);
        }
        for write in writes.iter_mut() {
            if write.progress != Progress::Written {
                continue;
            }
            let partition = &write.partition;
            partition.publish(&partition.lock_writer());
            write.progress = Progress::Settled;
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
        // Count the written partitions' open files, closing the least recently written
        // others' over the bound: after publishing, so `unsynced` says what a close must sync.
        let mut over = Vec::new();
        for write in writes.iter().filter(|w| w.checkpoint.is_some()) {
            over.extend(self.files.touch(&write.partition));
        }
        self.files.close(over);
        panic
    }

    /// Write one partition's frames; a failure or a panic poisons that partition only.
    fn write_partition(
        &self,
        round: u64,
        write: &mut PendingWrite,
        sync: bool,
        now: u64,
    ) -> Option<PanicPayload> {
        let partition = &write.partition;
        if partition.is_poisoned() {
            // Poisoned by an earlier round: what reached its files is unknown, so nothing more
            // goes there; this round's waiters get `Poisoned`.
            write.progress = Progress::Settled;
            return None;
        }
        let (frames, batches) = (&write.frames, &write.batches);
        let writeback = self.writeback.as_ref();
        // Unwind safety: on a panic the partition is poisoned, and a poisoned partition's
        // writer state is never written through again.
        let written = catch_unwind(AssertUnwindSafe(|| {
            partition.write_pending(frames, batches, sync, writeback, now)
        }));
        let (progress, panic) = match written {
            Ok(Ok(checkpoint)) => {
                write.checkpoint = Some(checkpoint);
                (Progress::Written, None)
            }
            Ok(Err(LogError::StorageFull { cause, .. })) => {
                let waiters = write.batches.len();
                let cause = Failure::Full(cause);
                self.failures
                    .record(round, key_of(partition), waiters, cause);
                (Progress::Settled, None)
            }
            Ok(Err(LogError::ReopenFailed { cause, .. })) => {
                let waiters = write.batches.len();
                let cause = Failure::Reopen(cause);
                self.failures
                    .record(round, key_of(partition), waiters, cause);
                (Progress::Settled, None)
            }
            Ok(Err(error)) => {
                partition.poison(round, &error);
                (Progress::Settled, None)
            }
            Err(payload) => {
                let cause = format!("panic in the commit round: {}", panic_message(&payload));
                partition.poison(round, &cause);
                (Progress::Settled, Some(payload))
            }
        };
        write.progress = progress;
        panic
    }

    /// One `syncfs` for every partition written this round; if it fails, none of them is
    /// known to be durable.
    fn sync_file_system(&self, round: u64, writes: &mut [PendingWrite]) {
        let Some(first) = writes.first() else { return };
        let dir = &first.partition.dir;
        if let Err(e) = self.storage.sync_file_system(dir) {
            let error = LogError::io(dir, e);
            for write in writes.iter_mut() {
                if write.progress != Progress::Written {
                    continue;
                }
                write.progress = Progress::Settled;
                let partition = &write.partition;
                let undone = match &write.checkpoint {
                    Some(checkpoint) if error.is_storage_full() => partition
                        .undo_round(&mut partition.lock_writer(), checkpoint, &error)
                        .ok(),
                    _ => None,
                };
                match undone {
                    Some(LogError::StorageFull { cause, .. }) => {
                        let waiters = write.batches.len();
                        let cause = Failure::Full(cause);
                        self.failures
                            .record(round, key_of(partition), waiters, cause);
                    }
                    _ => partition.poison(round, &error),
                }
            }
        }
    }
}

impl Partition {
    /// Leader only: write this round's frames for the partition, rolling segments as needed;
    /// `sync`: fdatasync them; `writeback`: start early writeback (policies that do not sync
    /// each round). Not visible to readers until the leader publishes, after the round's
    /// syncs. Returns the state before the round. If the storage is full, the round's write
    /// is undone and the error is `StorageFull`.
    fn write_pending(
        &self,
        frames: &[u8],
        batches: &[BatchMark],
        sync: bool,
        writeback: Option<&WritebackQueue>,
        now: u64,
    ) -> Result<Checkpoint> {
        let mut writer = self.lock_writer();
        if let Some(active) = writer.active.as_mut() {
            // Closed to spare a descriptor (`commit/files.rs`): open it again first.
            if let Err(e) = active.reopen_file(self.storage.as_ref()) {
                return Err(LogError::ReopenFailed {
                    path: self.dir.clone(),
                    cause: e.to_string(),
                });
            }
        }
        let checkpoint = Checkpoint::of(&writer);
        match self.write_frames(&mut writer, frames, batches, sync, writeback, now) {
            Ok(()) => Ok(checkpoint),
            Err(error) if error.is_storage_full() => {
                Err(self.undo_round(&mut writer, &checkpoint, &error)?)
            }
            Err(error) => Err(error),
        }
    }

    fn write_frames(
        &self,
        writer: &mut WriterState,
        frames: &[u8],
        batches: &[BatchMark],
        sync: bool,
        writeback: Option<&WritebackQueue>,
        now: u64,
    ) -> Result<()> {
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
                self.write_run(writer, &frames[run_start..run_end])?;
                self.roll(writer, mark.first_seq, now)?;
                run_start = run_end;
            }
            run_end = mark.end;
        }
        self.write_run(writer, &frames[run_start..run_end])?;
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
