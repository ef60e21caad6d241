//! Opening the log: the state file, then every segment in order, checked frame by frame.
//!
//! A torn tail of the last segment (a frame cut short, a checksum mismatch, garbage or zeros
//! after the last whole frame, with no whole entry after them: `torn`) is what a crash during
//! an append leaves: those bytes were never acknowledged (an append is acknowledged only
//! after its fdatasync), so they are cut off. Anything else wrong is damage the log refuses
//! to guess about: a bad frame with a later entry after it, a bad frame in an earlier
//! segment, a bad header, entries that are not consecutive, or entries missing after the
//! purge point.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use strand_log::storage::sync_dir;

use super::error::RaftLogError;
use super::format::SEGMENT_HEADER_BYTES;
use super::index::{Index, Location, Segment};
use super::segment::{self, ScannedFrame};
use super::state;
use super::writer::remove_segments;

/// A segment file as found, after any torn tail was cut.
struct Loaded {
    file: File,
    len: u64,
    frames: Vec<ScannedFrame>,
}

/// Open (creating it if missing) the log in `dir`: its index, with the durable state in it.
pub(super) fn recover(dir: &Path) -> Result<Index, RaftLogError> {
    create_durably(dir)?;
    let mut index = Index {
        state: state::load(dir)?,
        ..Index::default()
    };
    let purged_index = index.state.last_purged.map(|log_id| log_id.index);
    let paths = segment::list(dir)?;
    let last_first = paths.keys().next_back().copied();
    let mut next_index: Option<u64> = None;
    for (first, path) in paths {
        let Some(loaded) = load(dir, &path, first, Some(first) == last_first)? else {
            continue;
        };
        if let Some(expected) = next_index.filter(|&expected| expected != first) {
            let reason =
                format!("starts at entry {first}, the segment before ends before {expected}");
            return Err(RaftLogError::corrupt(&path, 0, reason));
        }
        for (frame, expected) in loaded.frames.iter().zip(first..) {
            if frame.log_id.index != expected {
                let reason = format!(
                    "entry {} where entry {expected} was due",
                    frame.log_id.index
                );
                return Err(RaftLogError::corrupt(&path, frame.offset, reason));
            }
            if purged_index.is_none_or(|purged| expected > purged) {
                index.entries.push_back(Location {
                    log_id: frame.log_id,
                    segment: first,
                    offset: frame.offset,
                    body_len: frame.body_len,
                });
            }
        }
        next_index = Some(first + loaded.frames.len() as u64);
        let segment = Segment {
            path,
            file: Arc::new(loaded.file),
            len: loaded.len,
        };
        index.segments.insert(first, segment);
    }
    if let (Some(purged), Some((first, segment))) = (purged_index, index.segments.first_key_value())
    {
        if *first > purged + 1 {
            let reason = format!(
                "the log resumes at entry {first}, but only entries up to {purged} are purged"
            );
            return Err(RaftLogError::corrupt(&segment.path, 0, reason));
        }
    }
    // Segments left over by a purge that a crash cut short.
    if let Some(purged) = purged_index {
        let removed = index.drop_through(purged);
        remove_segments(dir, &removed)?;
    }
    Ok(index)
}

/// Create `dir` and any missing parents, each made durable in its parent: the vote and the
/// entries written in it must not vanish with a directory entry a crash lost.
fn create_durably(dir: &Path) -> Result<(), RaftLogError> {
    let missing: Vec<&Path> = dir.ancestors().take_while(|path| !path.exists()).collect();
    std::fs::create_dir_all(dir).map_err(|e| RaftLogError::io("create", dir, e))?;
    for created in missing.iter().rev() {
        if let Some(parent) = created
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            sync_dir(parent).map_err(|e| RaftLogError::io("fsync", parent, e))?;
        }
    }
    Ok(())
}

/// Load the segment at `path`, named for entry `first`; cut a torn tail off if it is the last.
/// `None` when it was the last and held no whole frame: it is removed.
fn load(
    dir: &Path,
    path: &Path,
    first: u64,
    is_last: bool,
) -> Result<Option<Loaded>, RaftLogError> {
    let file = segment::open(path)?;
    let scan = segment::scan(path, &file)?;
    if scan.first_index != first {
        let reason = format!(
            "the header names entry {}, the file name {first}",
            scan.first_index
        );
        return Err(RaftLogError::corrupt(path, 0, reason));
    }
    let mut len = scan.file_len;
    if let Some(damage) = scan.damage {
        if !(is_last && damage.torn) {
            return Err(RaftLogError::corrupt(path, damage.offset, damage.reason));
        }
        tracing::warn!(
            path = %path.display(),
            offset = damage.offset,
            bytes = scan.file_len - damage.offset,
            reason = %damage.reason,
            "raft log: cutting a torn tail off the last segment"
        );
        file.set_len(damage.offset)
            .map_err(|e| RaftLogError::io("truncate", path, e))?;
        file.sync_all()
            .map_err(|e| RaftLogError::io("fsync", path, e))?;
        len = damage.offset;
    }
    if scan.frames.is_empty() {
        if !is_last {
            let reason = "a segment without entries before the last";
            return Err(RaftLogError::corrupt(path, SEGMENT_HEADER_BYTES, reason));
        }
        // A crash right after the segment was started: it never held an acknowledged entry.
        tracing::warn!(path = %path.display(), "raft log: removing an empty last segment");
        std::fs::remove_file(path).map_err(|e| RaftLogError::io("remove", path, e))?;
        sync_dir(dir).map_err(|e| RaftLogError::io("fsync", dir, e))?;
        return Ok(None);
    }
    Ok(Some(Loaded {
        file,
        len,
        frames: scan.frames,
    }))
}
