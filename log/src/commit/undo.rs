//! Undoing one partition's write of a commit round after the storage filled up.
//!
//! A full disk (ENOSPC), a quota (EDQUOT) or the file-size limit (EFBIG) is not damage: the
//! bytes that did reach the file are a prefix of what was written, and nothing before the
//! round is touched. So instead of poisoning the partition until it is reopened (what any
//! other failed write or sync does), the leader puts it back exactly as it was before the
//! round ([`Checkpoint`]): segments the round created are removed, the segment that was active
//! is cut back to its last committed byte (so no partial frame of the round stays in the file,
//! where a later, shorter write would leave its rest in the middle of the log) and reopened.
//! The round's waiters get [`LogError::StorageFull`]; nothing of theirs was acknowledged or
//! will appear later, and the next round writes where the undone one started. Writes thus
//! succeed again as soon as there is room, without a restart.
//!
//! If undoing fails too, the partition is poisoned as before.

use std::io::ErrorKind;
use std::sync::Arc;

use crate::error::{is_storage_full, LogError, Result};
use crate::partition::{Partition, WriterState};
use crate::segment::{self, ActiveSegment, Recovered, SealedSegment};
use crate::seq::Seq;

/// The writer state before a round: what readers could see, and all that may stay on disk.
#[derive(Debug)]
pub(crate) struct Checkpoint {
    sealed: Arc<Vec<Arc<SealedSegment>>>,
    /// The active segment's first `_seq` and written length.
    active: Option<(Seq, u32)>,
}

impl Checkpoint {
    pub(crate) fn of(writer: &WriterState) -> Checkpoint {
        Checkpoint {
            sealed: writer.sealed.clone(),
            active: writer
                .active
                .as_ref()
                .map(|a| (a.first_seq, a.written_bytes())),
        }
    }

    /// The newest segment that existed before the round (`Seq::ZERO`: none).
    fn newest_segment(&self) -> Seq {
        match self.active {
            Some((first_seq, _)) => first_seq,
            None => self.sealed.last().map_or(Seq::ZERO, |s| s.first_seq),
        }
    }
}

impl Partition {
    /// After `failure` (the storage is full) in this round: restore `checkpoint`. `Ok` carries
    /// the round's waiters' [`LogError::StorageFull`]; `Err` means the partition could not be
    /// restored and must be poisoned.
    pub(crate) fn undo_round(
        &self,
        writer: &mut WriterState,
        checkpoint: &Checkpoint,
        failure: &LogError,
    ) -> Result<LogError> {
        tracing::warn!(partition = %self.dir.display(), cause = %failure,
            "storage full: undoing this commit round's writes; writes resume once space is freed");
        if let Err(error) = self.restore(writer, checkpoint) {
            tracing::error!(partition = %self.dir.display(), %error,
                "undoing a commit round after a full disk failed");
            return Err(LogError::Poisoned {
                path: self.dir.clone(),
                cause: format!("{failure}; undoing the write failed: {error}"),
            });
        }
        Ok(LogError::StorageFull {
            path: self.dir.clone(),
            cause: io_cause(failure),
        })
    }

    fn restore(&self, writer: &mut WriterState, checkpoint: &Checkpoint) -> Result<()> {
        // Readers keep the maps of the published view; only the writer's handles go.
        writer.active = None;
        writer.sealed = checkpoint.sealed.clone();
        self.remove_segments_after(checkpoint.newest_segment())?;
        if let Some((first_seq, written_bytes)) = checkpoint.active {
            let path = segment::segment_path(&self.dir, first_seq);
            let io = |e| LogError::io(&path, e);
            let file = self.storage.open_existing(&path).map_err(io)?;
            file.set_len(u64::from(written_bytes)).map_err(io)?;
            durable_unless_full(file.sync_all()).map_err(io)?;
            drop(file);
            // Sealed during the round: its index describes the longer file.
            self.remove_if_present(&segment::index_path(&self.dir, first_seq))?;
            match ActiveSegment::recover(self.storage.as_ref(), path, first_seq)? {
                Recovered::Active { segment, .. } => writer.active = Some(segment),
                Recovered::Damaged { .. } => {
                    return Err(LogError::CorruptSegment {
                        path: segment::segment_path(&self.dir, first_seq),
                        position: u64::from(written_bytes),
                        reason: "damaged records found while undoing a write",
                    })
                }
            }
        }
        self.publish(writer);
        Ok(())
    }

    /// Remove the segment files (and their indexes) named above `newest`: created this round.
    fn remove_segments_after(&self, newest: Seq) -> Result<()> {
        let dir = &self.dir;
        let entries = std::fs::read_dir(dir).map_err(|e| LogError::io(dir, e))?;
        let mut removed = false;
        for entry in entries {
            let entry = entry.map_err(|e| LogError::io(dir, e))?;
            let name = entry.file_name();
            let Some(first_seq) = name.to_str().and_then(segment::parse_segment_name) else {
                continue;
            };
            if first_seq <= newest {
                continue;
            }
            self.remove_if_present(&entry.path())?;
            self.remove_if_present(&segment::index_path(dir, first_seq))?;
            removed = true;
        }
        if removed {
            durable_unless_full(self.storage.sync_directory(dir))
                .map_err(|e| LogError::io(dir, e))?;
        }
        Ok(())
    }

    fn remove_if_present(&self, path: &std::path::Path) -> Result<()> {
        match self.storage.remove_file(path) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(LogError::io(path, e)),
            _ => Ok(()),
        }
    }
}

/// A sync of the undo that fails for lack of space is let go: the file's contents and size
/// are right in the page cache, and nothing is acknowledged before a later round's sync
/// succeeds, which makes them durable with its own data (the next append regrows the file with
/// written zeros from the cut on). Any other failure poisons.
fn durable_unless_full(synced: std::io::Result<()>) -> std::io::Result<()> {
    match synced {
        Err(e) if is_storage_full(&e) => {
            tracing::warn!(error = %e, "sync while undoing a write failed for lack of space");
            Ok(())
        }
        other => other,
    }
}

/// The operating system's words for the failure (the client-facing message names no paths).
fn io_cause(failure: &LogError) -> String {
    match failure {
        LogError::Io { source, .. } => source.to_string(),
        other => other.to_string(),
    }
}
