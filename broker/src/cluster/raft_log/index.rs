//! What readers see: where each present entry lies on disk, the open segment files, and the
//! published vote and log pointers. The store and its readers share one [`Index`] behind a
//! mutex; the writer changes it only after the disk holds what it says (or, for a truncate,
//! before the bytes it no longer names are cut), so a reader never reads bytes the index does
//! not vouch for.

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use openraft::LogId;

use super::error::RaftLogError;
use super::format::{self, FrameHeader, FRAME_HEADER_BYTES};
use super::state::DurableState;
use super::Entry;
use crate::cluster::types::NodeId;

/// An open segment file.
#[derive(Debug)]
pub(super) struct Segment {
    /// Its path.
    pub path: PathBuf,
    /// The file, opened for reading and writing; readers use positional reads only.
    pub file: Arc<File>,
    /// Bytes of it the index vouches for (header and whole frames).
    pub len: u64,
}

/// Where an entry's frame lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Location {
    /// The entry's log id, checked against what is read back.
    pub log_id: LogId<NodeId>,
    /// The first index of the segment holding it (its key in [`Index::segments`]).
    pub segment: u64,
    /// Where its frame starts.
    pub offset: u64,
    /// Bytes of its body.
    pub body_len: u32,
}

impl Location {
    /// Where its frame ends.
    pub fn end(&self) -> u64 {
        self.offset + FRAME_HEADER_BYTES + u64::from(self.body_len)
    }
}

/// The log as readers see it.
///
/// Invariants: `entries` have consecutive indexes, all above the last purged index; every
/// segment holds at least one of them, except that the first may also hold purged ones.
#[derive(Debug, Default)]
pub(super) struct Index {
    /// Segment files by first index.
    pub segments: BTreeMap<u64, Segment>,
    /// The present entries, in index order.
    pub entries: VecDeque<Location>,
    /// The vote and log pointers, as last made durable.
    pub state: DurableState,
}

/// What a truncate must do on disk once the index no longer names the entries.
#[derive(Debug, Default)]
pub(super) struct Cut {
    /// Segments to delete, the last first (a crash part way leaves a log without holes).
    pub removed: Vec<PathBuf>,
    /// The segment to cut short, and its new length.
    pub shortened: Option<(PathBuf, Arc<File>, u64)>,
}

impl Index {
    /// The last entry's log id, or the last purged one when no entry is present.
    pub fn last_log_id(&self) -> Option<LogId<NodeId>> {
        self.entries
            .back()
            .map(|location| location.log_id)
            .or(self.state.last_purged)
    }

    /// The index the next appended entry must have; `None` for a log that never held one
    /// (or was truncated to nothing with nothing purged), which takes any.
    pub fn next_index(&self) -> Option<u64> {
        self.last_log_id().map(|log_id| log_id.index + 1)
    }

    /// Forget entries from `index` on; returns the files to delete or shorten.
    pub fn cut_from(&mut self, index: u64) -> Cut {
        let Some(first) = self.entries.front().map(|location| location.log_id.index) else {
            return Cut::default();
        };
        let keep = index.saturating_sub(first);
        if keep >= self.entries.len() as u64 {
            return Cut::default();
        }
        self.entries.truncate(keep as usize);
        let mut cut = Cut::default();
        let removed = match self.entries.back().copied() {
            Some(last) => {
                let removed = self.segments.split_off(&(last.segment + 1));
                if let Some(segment) = self.segments.get_mut(&last.segment) {
                    if segment.len != last.end() {
                        segment.len = last.end();
                        cut.shortened =
                            Some((segment.path.clone(), segment.file.clone(), last.end()));
                    }
                }
                removed
            }
            None => std::mem::take(&mut self.segments),
        };
        cut.removed = removed
            .into_values()
            .rev()
            .map(|segment| segment.path)
            .collect();
        cut
    }

    /// Forget entries up to `index`, and the segments holding no other; returns their paths,
    /// the first first.
    pub fn drop_through(&mut self, index: u64) -> Vec<PathBuf> {
        while self
            .entries
            .front()
            .is_some_and(|location| location.log_id.index <= index)
        {
            self.entries.pop_front();
        }
        let doomed: Vec<u64> = if self.entries.is_empty() {
            self.segments.keys().copied().collect()
        } else {
            // A segment holds entries up to the next one's first index, exclusive.
            let firsts: Vec<u64> = self.segments.keys().copied().collect();
            firsts
                .windows(2)
                .filter(|pair| pair[1] <= index + 1)
                .map(|pair| pair[0])
                .collect()
        };
        doomed
            .iter()
            .filter_map(|first| self.segments.remove(first))
            .map(|segment| segment.path)
            .collect()
    }

    /// The present entries with indexes in `start..end`, from the first on, stopping before
    /// one that would take the frames read past `bytes_max` (the first is read regardless).
    pub fn read(&self, start: u64, end: u64, bytes_max: usize) -> Result<Vec<Entry>, RaftLogError> {
        let Some(first) = self.entries.front().map(|location| location.log_id.index) else {
            return Ok(Vec::new());
        };
        let from = start.max(first);
        let to = end.min(first + self.entries.len() as u64);
        let mut chosen: Vec<Location> = Vec::new();
        let mut bytes = 0u64;
        for index in from..to {
            let Some(location) = self.entries.get((index - first) as usize) else {
                break;
            };
            bytes += location.end() - location.offset;
            if !chosen.is_empty() && bytes > bytes_max as u64 {
                break;
            }
            chosen.push(*location);
        }
        let mut entries = Vec::with_capacity(chosen.len());
        for run in chosen.chunk_by(|a, b| a.segment == b.segment && a.end() == b.offset) {
            self.read_run(run, &mut entries)?;
        }
        Ok(entries)
    }

    /// Read the adjacent frames of `run`, all in one segment, with one positional read.
    fn read_run(&self, run: &[Location], out: &mut Vec<Entry>) -> Result<(), RaftLogError> {
        let (Some(head), Some(tail)) = (run.first(), run.last()) else {
            return Ok(());
        };
        let Some(segment) = self.segments.get(&head.segment) else {
            let reason = format!(
                "no segment {} for entry {}",
                head.segment, head.log_id.index
            );
            return Err(RaftLogError::corrupt(PathBuf::new(), head.offset, reason));
        };
        let mut bytes = vec![0u8; (tail.end() - head.offset) as usize];
        segment
            .file
            .read_exact_at(&mut bytes, head.offset)
            .map_err(|e| RaftLogError::io("read", &segment.path, e))?;
        for location in run {
            let start = (location.offset - head.offset) as usize;
            let frame = &bytes[start..(location.end() - head.offset) as usize];
            let entry = decode_frame(frame, location)
                .map_err(|reason| RaftLogError::corrupt(&segment.path, location.offset, reason))?;
            out.push(entry);
        }
        Ok(())
    }
}

/// The entry in `frame`, checked against everything the index knows of it: the file may have
/// changed under the log since it was scanned.
fn decode_frame(frame: &[u8], location: &Location) -> Result<Entry, String> {
    let mut header = [0u8; FRAME_HEADER_BYTES as usize];
    header.copy_from_slice(&frame[..FRAME_HEADER_BYTES as usize]);
    let header = FrameHeader::parse(&header);
    let body = &frame[FRAME_HEADER_BYTES as usize..];
    if header.body_len != location.body_len {
        return Err(format!(
            "frame announces {} bytes where {} were written",
            header.body_len, location.body_len
        ));
    }
    if format::crc32(body) != header.crc {
        return Err("checksum mismatch".to_owned());
    }
    let entry = format::decode_entry(body)?;
    if entry.log_id != location.log_id {
        return Err(format!(
            "entry {} where {} was written",
            entry.log_id, location.log_id
        ));
    }
    Ok(entry)
}
