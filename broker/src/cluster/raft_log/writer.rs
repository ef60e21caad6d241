//! The write side: appending frames, truncating, purging, saving the vote and log pointers.
//! Each operation is durable when it returns, and publishes its effect to the shared
//! [`Index`] in the order that keeps readers off bytes the index does not vouch for.
//!
//! After any failed write the writer is poisoned: what reached the disk is unknown, so it
//! refuses further writes instead of guessing; reopening recovers from what is on disk.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::LogId;
use parking_lot::Mutex;
use strand_log::storage::sync_dir;

use super::error::RaftLogError;
use super::format::{self, FRAME_HEADER_BYTES, SEGMENT_HEADER_BYTES};
use super::index::{Cut, Index, Location, Segment};
use super::segment;
use super::state::{self, DurableState};
use super::Entry;
use crate::cluster::types::NodeId;

/// The segment being appended to during an append.
struct Tail {
    first_index: u64,
    path: PathBuf,
    file: Arc<File>,
    /// Bytes on disk before `pending`.
    len: u64,
    /// Frames not written yet.
    pending: Vec<u8>,
}

impl Tail {
    /// Write the pending frames and fdatasync: they are durable when this returns.
    fn flush(&mut self) -> Result<(), RaftLogError> {
        use std::os::unix::fs::FileExt;
        if self.pending.is_empty() {
            return Ok(());
        }
        self.file
            .write_all_at(&self.pending, self.len)
            .map_err(|e| RaftLogError::io("write", &self.path, e))?;
        self.file
            .sync_data()
            .map_err(|e| RaftLogError::io("fdatasync", &self.path, e))?;
        self.len += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    /// Bytes the segment will have once the pending frames are written.
    fn len_with_pending(&self) -> u64 {
        self.len + self.pending.len() as u64
    }
}

/// The log's disk side; one operation at a time (the store holds it behind a mutex).
pub(super) struct Writer {
    dir: PathBuf,
    segment_bytes_max: u64,
    /// The durable state, as in the state file.
    state: DurableState,
    index: Arc<Mutex<Index>>,
    poisoned: bool,
}

impl Writer {
    /// The writer of the log in `dir`, whose recovered state and index are given.
    pub fn new(
        dir: &Path,
        segment_bytes_max: u64,
        state: DurableState,
        index: Arc<Mutex<Index>>,
    ) -> Writer {
        Writer {
            dir: dir.to_path_buf(),
            segment_bytes_max,
            state,
            index,
            poisoned: false,
        }
    }

    /// Append `entries`, which must follow the log's last entry; returns once they are durable
    /// and readable. A refused entry (too large, not consecutive) leaves nothing written.
    ///
    /// Entries at or below the purge point are skipped: they are gone from reads as soon as
    /// purged, and stay so. Raft never sends them (it purges only applied entries), but
    /// openraft's storage suite appends some after a purge that its state machine forced.
    pub fn append(&mut self, entries: Vec<Entry>) -> Result<(), RaftLogError> {
        self.writable()?;
        let (mut expected, purged) = {
            let index = self.index.lock();
            (index.next_index(), index.state.last_purged)
        };
        let mut bodies = Vec::with_capacity(entries.len());
        for entry in &entries {
            let found = entry.log_id.index;
            if purged.is_some_and(|purged| found <= purged.index) {
                continue;
            }
            if let Some(expected) = expected.filter(|&expected| expected != found) {
                return Err(RaftLogError::NotConsecutive { expected, found });
            }
            expected = Some(found + 1);
            bodies.push((entry.log_id, format::encode_entry(entry)?));
        }
        let written = self.write_frames(bodies);
        self.poison_on_error(written)
    }

    /// Write the frames, starting a segment whenever the current one would pass its size (a
    /// segment holds at least one frame, however large), then publish them.
    fn write_frames(&self, bodies: Vec<(LogId<NodeId>, Vec<u8>)>) -> Result<(), RaftLogError> {
        let mut tail = self
            .index
            .lock()
            .segments
            .last_key_value()
            .map(|(first, s)| Tail {
                first_index: *first,
                path: s.path.clone(),
                file: s.file.clone(),
                len: s.len,
                pending: Vec::new(),
            });
        let mut finished: Vec<Tail> = Vec::new();
        let mut locations = Vec::with_capacity(bodies.len());
        for (log_id, body) in bodies {
            let frame_bytes = FRAME_HEADER_BYTES + body.len() as u64;
            let full = |t: &Tail| {
                t.len_with_pending() > SEGMENT_HEADER_BYTES
                    && t.len_with_pending() + frame_bytes > self.segment_bytes_max
            };
            let mut current = match tail.take() {
                Some(t) if !full(&t) => t,
                previous => {
                    // The previous segment is made durable before the next exists, so only
                    // the last segment can ever have a torn tail.
                    if let Some(mut previous) = previous {
                        previous.flush()?;
                        finished.push(previous);
                    }
                    let (path, file) = segment::create(&self.dir, log_id.index)?;
                    Tail {
                        first_index: log_id.index,
                        path,
                        file: Arc::new(file),
                        len: SEGMENT_HEADER_BYTES,
                        pending: Vec::new(),
                    }
                }
            };
            locations.push(Location {
                log_id,
                segment: current.first_index,
                offset: current.len_with_pending(),
                body_len: body.len() as u32,
            });
            format::push_frame(&body, &mut current.pending);
            tail = Some(current);
        }
        if let Some(current) = tail.as_mut() {
            current.flush()?;
        }
        let mut index = self.index.lock();
        for written in finished.into_iter().chain(tail) {
            let segment = index
                .segments
                .entry(written.first_index)
                .or_insert(Segment {
                    path: written.path,
                    file: written.file,
                    len: written.len,
                });
            segment.len = written.len;
        }
        index.entries.extend(locations);
        Ok(())
    }

    /// Delete the entries from `index` on; returns once that is durable. Readers stop seeing
    /// them before any byte is cut.
    pub fn truncate(&mut self, index: u64) -> Result<(), RaftLogError> {
        self.writable()?;
        let cut = self.index.lock().cut_from(index);
        let done = self.apply_cut(cut);
        self.poison_on_error(done)
    }

    fn apply_cut(&self, cut: Cut) -> Result<(), RaftLogError> {
        for path in &cut.removed {
            std::fs::remove_file(path).map_err(|e| RaftLogError::io("remove", path, e))?;
        }
        if let Some((path, file, len)) = cut.shortened {
            file.set_len(len)
                .map_err(|e| RaftLogError::io("truncate", &path, e))?;
            file.sync_all()
                .map_err(|e| RaftLogError::io("fsync", &path, e))?;
        }
        if !cut.removed.is_empty() {
            sync_dir(&self.dir).map_err(|e| RaftLogError::io("fsync", &self.dir, e))?;
        }
        Ok(())
    }

    /// Purge the entries up to `log_id`: the purge point is durable before any file goes, so
    /// a crash part way leaves files the next open deletes, never a hole.
    pub fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), RaftLogError> {
        self.writable()?;
        if self
            .state
            .last_purged
            .is_some_and(|purged| purged.index >= log_id.index)
        {
            return Ok(());
        }
        let mut next = self.state.clone();
        next.last_purged = Some(log_id);
        self.persist(next)?;
        let removed = {
            // One lock for both: readers never see the new purge point with entries below it.
            let mut index = self.index.lock();
            index.state = self.state.clone();
            index.drop_through(log_id.index)
        };
        let done = remove_segments(&self.dir, &removed);
        self.poison_on_error(done)
    }

    /// Change the durable state with `change`; returns once the new state is durable and
    /// published. An unchanged state is not written again.
    pub fn save_state(
        &mut self,
        change: impl FnOnce(&mut DurableState),
    ) -> Result<(), RaftLogError> {
        self.writable()?;
        let mut next = self.state.clone();
        change(&mut next);
        if next == self.state {
            return Ok(());
        }
        self.persist(next)?;
        self.index.lock().state = self.state.clone();
        Ok(())
    }

    /// Make `next` the durable state (not yet published).
    fn persist(&mut self, next: DurableState) -> Result<(), RaftLogError> {
        let saved = state::save(&self.dir, &next);
        self.poison_on_error(saved)?;
        self.state = next;
        Ok(())
    }

    fn writable(&self) -> Result<(), RaftLogError> {
        if self.poisoned {
            return Err(RaftLogError::Poisoned {
                dir: self.dir.clone(),
            });
        }
        Ok(())
    }

    fn poison_on_error<T>(&mut self, result: Result<T, RaftLogError>) -> Result<T, RaftLogError> {
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }
}

/// Delete the segment files at `paths` (in order) and make that durable.
pub(super) fn remove_segments(dir: &Path, paths: &[PathBuf]) -> Result<(), RaftLogError> {
    for path in paths {
        std::fs::remove_file(path).map_err(|e| RaftLogError::io("remove", path, e))?;
    }
    if !paths.is_empty() {
        sync_dir(dir).map_err(|e| RaftLogError::io("fsync", dir, e))?;
    }
    Ok(())
}
