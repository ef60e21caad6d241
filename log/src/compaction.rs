//! Keyed compaction: rewrite sealed segments keeping only the newest version of each key
//! (tombstones only while younger than the tombstone retention). Records keep their `_seq`.
//! Records with an empty key are not keyed and are always kept. The removed history raises the
//! partition's lowest resumable `_seq` before any file is replaced.
//!
//! Runs beside appends: it reads a snapshot without the writer lock and takes the lock only to
//! swap the rewritten segments in. Records appended meanwhile are never removed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::error::{LogError, Result};
use crate::index::SegmentIndex;
use crate::partition::Partition;
use crate::reader::ReadFrom;
use crate::record::{self, RecordView};
use crate::retention::remove_segment_files;
use crate::segment::{self, SealedSegment, SEGMENT_HEADER_BYTES};
use crate::seq::Seq;
use crate::storage;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactionPolicy {
    /// How long a tombstone is kept after it was written, so readers resuming within that time
    /// still learn of the delete.
    pub tombstone_retention_ms: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactionOutcome {
    pub segments_rewritten: usize,
    pub segments_removed: usize,
    pub records_removed: u64,
}

/// A rewritten segment waiting to be swapped in; `None` content means "now empty".
struct Rewrite {
    original: Arc<SealedSegment>,
    replacement: Option<(PathBuf, SegmentIndex)>,
}

impl Partition {
    pub fn compact(
        &self,
        policy: &CompactionPolicy,
        now_unix_ms: u64,
    ) -> Result<CompactionOutcome> {
        let _maintenance = self.maintenance.lock();
        let sealed = self.lock_writer().sealed.clone();
        let snapshot = self.snapshot();
        let mut newest: HashMap<&[u8], Seq> = HashMap::new();
        for record in snapshot.records(ReadFrom::Earliest) {
            let record = record?;
            if !record.key.is_empty() {
                newest.insert(record.key, record.seq);
            }
        }
        let keep = |r: &RecordView<'_>| {
            let newest_seq = newest.get(r.key).copied().unwrap_or(Seq::ZERO);
            let tombstone_expired = r.flags.is_tombstone()
                && r.timestamp_unix_ms
                    .saturating_add(policy.tombstone_retention_ms)
                    <= now_unix_ms;
            r.key.is_empty() || (r.seq >= newest_seq && !tombstone_expired)
        };
        let mut outcome = CompactionOutcome::default();
        let mut max_removed = Seq::ZERO;
        let mut rewrites = Vec::new();
        for segment in sealed.iter() {
            let (rewrite, removed, max) = self.rewrite_segment(segment, &keep, now_unix_ms)?;
            outcome.records_removed += removed;
            max_removed = max_removed.max(max);
            rewrites.extend(rewrite);
        }
        if rewrites.is_empty() {
            return Ok(outcome);
        }
        self.raise_lowest_resumable(max_removed)?;
        self.swap_in(rewrites, &mut outcome)?;
        tracing::info!(partition = %self.dir.display(), records = outcome.records_removed,
            lowest_resumable_seq = %max_removed, "compaction done");
        Ok(outcome)
    }

    /// Copy the kept frames of one segment into a temporary file, fsync'd.
    fn rewrite_segment(
        &self,
        segment: &Arc<SealedSegment>,
        keep: &dyn Fn(&RecordView<'_>) -> bool,
        now_unix_ms: u64,
    ) -> Result<(Option<Rewrite>, u64, Seq)> {
        let loaded = segment.load()?;
        let data = &loaded.bytes.as_slice()[..loaded.index.summary.data_bytes as usize];
        let mut out = segment::encode_header(segment.first_seq, now_unix_ms).to_vec();
        let mut index = SegmentIndex::new(segment.first_seq, SEGMENT_HEADER_BYTES);
        let (mut removed, mut max_removed) = (0, Seq::ZERO);
        let mut position = SEGMENT_HEADER_BYTES as usize;
        while position < data.len() {
            let corrupt = |reason| LogError::CorruptSegment {
                path: segment.path.clone(),
                position: position as u64,
                reason,
            };
            let (view, next) = match record::decode(data, position) {
                Ok(record::Decoded::Record(view, next)) => (view, next),
                Ok(record::Decoded::End) => return Err(corrupt("zeroed frame inside data")),
                Err(e) => return Err(corrupt(e.reason())),
            };
            if keep(&view) {
                let at = out.len() as u32;
                out.extend_from_slice(&data[position..next]);
                index.add(view.seq, view.timestamp_unix_ms, at, out.len() as u32);
            } else {
                removed += 1;
                max_removed = max_removed.max(view.seq);
            }
            position = next;
        }
        if removed == 0 {
            return Ok((None, 0, Seq::ZERO));
        }
        let replacement = if index.summary.records == 0 {
            None
        } else {
            let tmp = segment.path.with_extension("compact.tmp");
            storage::write_atomically(&tmp, &out, true).map_err(|e| LogError::io(&tmp, e))?;
            Some((tmp, index))
        };
        let rewrite = Rewrite {
            original: segment.clone(),
            replacement,
        };
        Ok((Some(rewrite), removed, max_removed))
    }

    /// Rename rewritten segments over the originals and publish the new view.
    fn swap_in(&self, rewrites: Vec<Rewrite>, outcome: &mut CompactionOutcome) -> Result<()> {
        let mut emptied = Vec::new();
        let mut writer = self.lock_writer();
        for rewrite in rewrites {
            let original = &rewrite.original;
            let slot = writer.sealed.iter().position(|s| Arc::ptr_eq(s, original));
            let Some(slot) = slot else { continue };
            match rewrite.replacement {
                Some((tmp, index)) => {
                    std::fs::rename(&tmp, &original.path).map_err(|e| LogError::io(&tmp, e))?;
                    let index_path = segment::index_path(&self.dir, original.first_seq);
                    let _ = storage::write_atomically(&index_path, &index.encode(), false);
                    let fresh = SealedSegment::new(
                        self.storage.clone(),
                        original.path.clone(),
                        original.first_seq,
                    );
                    Arc::make_mut(&mut writer.sealed)[slot] = Arc::new(fresh);
                    outcome.segments_rewritten += 1;
                }
                None => {
                    emptied.push(Arc::make_mut(&mut writer.sealed).remove(slot));
                    outcome.segments_removed += 1;
                }
            }
        }
        self.publish(&writer);
        drop(writer);
        self.storage
            .sync_directory(&self.dir)
            .map_err(|e| LogError::io(&self.dir, e))?;
        remove_segment_files(self, &emptied)
    }
}
