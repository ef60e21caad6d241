//! Keyed compaction: rewrite sealed segments keeping only the newest version of each key
//! (tombstones only while younger than the tombstone retention). Records keep their `_seq`.
//! Records with an empty key are not keyed and are always kept. The removed history raises the
//! partition's resume floors (`meta.rs`) before any file is replaced:
//! - the lowest resumable `_seq` to the highest `_seq` of a removed tombstone or of any record,
//!   kept or removed, whose previous version is removed (a reader resuming below such a record
//!   would read it and miss its previous version, and could not tell an update from an
//!   insert). That is not the highest removed `_seq`: a removed version's successor lies
//!   above it, often in a later segment or the active one;
//! - the lowest keyed-catch-up `_seq` to the highest `_seq` of a removed tombstone that was
//!   its key's newest version (an expired delete): below it a reader cannot learn that delete.
//!
//! Runs beside appends: it reads a snapshot without the writer lock and takes the lock only to
//! swap the rewritten segments in. Records appended meanwhile are never removed, nor is
//! anything a reader's [`crate::ReadHold`] still needs (`holds.rs`): with holds, "newest"
//! above means newest at or below the lowest hold, and nothing above that hold is removed.
//! [`Partition::compaction_backlog`] tells a scheduler, from memory alone, how much sealed
//! history no compaction has checked yet.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::error::{LogError, Result};
use crate::index::SegmentIndex;
use crate::meta::ResumeFloors;
use crate::partition::Partition;
use crate::reader::{ReadFrom, ReadSnapshot};
use crate::record::{self, RecordView};
use crate::retention::remove_segment_files;
use crate::segment::{self, SealedSegment, SEGMENT_HEADER_BYTES};
use crate::seq::Seq;
use crate::storage::AtomicWrite;

/// What a compaction keeps besides each key's newest version.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactionPolicy {
    /// How long a tombstone is kept after it was written, so readers resuming within that time
    /// still learn of the delete.
    pub tombstone_retention_ms: u64,
}

/// What one compaction did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactionOutcome {
    /// Sealed segments replaced by a rewrite holding fewer records.
    pub segments_rewritten: usize,
    /// Sealed segments removed because none of their records was kept.
    pub segments_removed: usize,
    /// Records removed, in either kind of segment.
    pub records_removed: u64,
}

/// Sealed history that no compaction of this [`Partition`] object has checked yet; what a
/// scheduler needs to decide whether the partition is due, known without reading a file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactionBacklog {
    /// Sealed segments sealed (or found at open) since the last compaction.
    pub sealed_segments: usize,
    /// Their size on disk.
    pub sealed_bytes: u64,
    /// When the oldest of them began: the time of its first `_seq`, Unix milliseconds.
    pub oldest_uncompacted_unix_ms: Option<u64>,
}

/// A rewritten segment waiting to be swapped in; `None` content means "now empty".
struct Rewrite {
    original: Arc<SealedSegment>,
    replacement: Option<(PathBuf, SegmentIndex, u64)>,
}

impl Partition {
    /// Compact the sealed segments as of `now_unix_ms`; see the module comment.
    pub fn compact(
        &self,
        policy: &CompactionPolicy,
        now_unix_ms: u64,
    ) -> Result<CompactionOutcome> {
        let _maintenance = self.maintenance.lock();
        let sealed = self.lock_writer().sealed.clone();
        let Some(last_sealed) = sealed.last() else {
            return Ok(CompactionOutcome::default());
        };
        // Records at or below this `_seq` are in the segments this compaction rewrites (a
        // segment's records lie at or above its name, and the next segment's above that).
        let summary = last_sealed.load()?.index.summary;
        let sealed_last_seq = summary.last_seq.max(last_sealed.first_seq);
        // Read the holds before the snapshot: a hold registered later starts at or above
        // the snapshot's last record (or is checked again before the swap).
        let held = self.holds.lock().lowest(now_unix_ms);
        let snapshot = self.snapshot();
        let planned = held.map_or(snapshot.last_seq(), |h| h.min(snapshot.last_seq()));
        let newest = newest_versions(&snapshot, planned)?;
        let keep = |r: &RecordView<'_>| {
            let newest_seq = newest.get(r.key).copied().unwrap_or(Seq::ZERO);
            let tombstone_expired = r.flags.is_tombstone()
                && r.timestamp_unix_ms
                    .saturating_add(policy.tombstone_retention_ms)
                    <= now_unix_ms;
            r.key.is_empty() || r.seq > planned || (r.seq >= newest_seq && !tombstone_expired)
        };
        let mut outcome = CompactionOutcome::default();
        let mut rewrites = Vec::new();
        for segment in sealed.iter() {
            let (rewrite, removed) = self.rewrite_segment(segment, &keep, now_unix_ms)?;
            outcome.records_removed += removed;
            rewrites.extend(rewrite);
        }
        if !rewrites.is_empty() {
            let floors = removed_history_floors(&snapshot, &newest, sealed_last_seq, &keep)?;
            let mut holds = self.holds.lock();
            if holds
                .lowest(now_unix_ms)
                .is_some_and(|lowest| lowest < planned)
            {
                // A reader registered below the plan meanwhile (a resume): what the plan
                // removes may be what it reads next. Try again at the next compaction.
                drop(holds);
                self.discard(rewrites);
                tracing::debug!(partition = %self.dir.display(), planned = %planned,
                    "compaction gave way to a read hold registered below its plan");
                return Ok(CompactionOutcome::default());
            }
            self.raise_floors(floors)?;
            self.swap_in(rewrites, &mut outcome)?;
            drop(holds);
            tracing::info!(partition = %self.dir.display(), records = outcome.records_removed,
                lowest_resumable_seq = %floors.lowest_resumable_seq,
                lowest_keyed_catch_up_seq = %floors.lowest_keyed_catch_up_seq, "compaction done");
        }
        if planned >= sealed_last_seq {
            // Held back by a reader, the segments stay due: what it held is removable later.
            for segment in sealed.iter() {
                segment.mark_compacted();
            }
        }
        Ok(outcome)
    }

    /// The sealed segments no compaction of this object has checked (every one after an
    /// open), from memory only: no file is read. O(sealed segments).
    pub fn compaction_backlog(&self) -> CompactionBacklog {
        let mut backlog = CompactionBacklog::default();
        for segment in self.published_sealed().iter() {
            if segment.is_compacted() {
                continue;
            }
            backlog.sealed_segments += 1;
            backlog.sealed_bytes += segment.file_bytes();
            let began = segment.first_seq.unix_ms();
            let oldest = backlog.oldest_uncompacted_unix_ms.get_or_insert(began);
            *oldest = (*oldest).min(began);
        }
        backlog
    }

    /// Copy the kept frames of one segment into a temporary file, fsync'd.
    fn rewrite_segment(
        &self,
        segment: &Arc<SealedSegment>,
        keep: &dyn Fn(&RecordView<'_>) -> bool,
        now_unix_ms: u64,
    ) -> Result<(Option<Rewrite>, u64)> {
        let loaded = segment.load()?;
        let data = &loaded.bytes.as_slice()[..loaded.index.summary.data_bytes as usize];
        let mut out = segment::encode_header(segment.first_seq, now_unix_ms).to_vec();
        let mut index = SegmentIndex::new(segment.first_seq, SEGMENT_HEADER_BYTES);
        let mut removed = 0;
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
            }
            position = next;
        }
        if removed == 0 {
            return Ok((None, 0));
        }
        let replacement = if index.summary.records == 0 {
            None
        } else {
            let tmp = segment.path.with_extension("compact.tmp");
            self.storage
                .write_atomically(&tmp, &out, AtomicWrite::durable())
                .map_err(|e| LogError::io(&tmp, e))?;
            Some((tmp, index, out.len() as u64))
        };
        let rewrite = Rewrite {
            original: segment.clone(),
            replacement,
        };
        Ok((Some(rewrite), removed))
    }

    /// Drop rewrites that will not be swapped in (best effort: a leftover `.tmp` is removed
    /// when the partition is opened).
    fn discard(&self, rewrites: Vec<Rewrite>) {
        for rewrite in rewrites {
            if let Some((tmp, ..)) = &rewrite.replacement {
                let _ = self.storage.remove_file(tmp);
            }
        }
    }

    /// Rename rewritten segments over the originals and publish the new view. A rename that
    /// fails keeps its original segment (and every later one) in place, readable as before:
    /// the floors were raised for the removal already, which only makes them conservative.
    /// What was swapped in before it is published and the error returned.
    fn swap_in(&self, rewrites: Vec<Rewrite>, outcome: &mut CompactionOutcome) -> Result<()> {
        let mut emptied = Vec::new();
        let mut failure = None;
        let mut writer = self.lock_writer();
        for rewrite in rewrites {
            let original = &rewrite.original;
            let slot = writer.sealed.iter().position(|s| Arc::ptr_eq(s, original));
            let Some(slot) = slot.filter(|_| failure.is_none()) else {
                if let Some((tmp, ..)) = &rewrite.replacement {
                    // Best effort: a leftover `.tmp` is removed when the partition is opened.
                    let _ = self.storage.remove_file(tmp);
                }
                continue;
            };
            match rewrite.replacement {
                Some((tmp, index, file_bytes)) => {
                    if let Err(e) = self.storage.rename(&tmp, &original.path) {
                        failure = Some(LogError::io(&tmp, e));
                        let _ = self.storage.remove_file(&tmp);
                        continue;
                    }
                    let index_path = segment::index_path(&self.dir, original.first_seq);
                    let encoded = index.encode();
                    let how = AtomicWrite::unsynced();
                    let _ = self.storage.write_atomically(&index_path, &encoded, how);
                    let fresh = SealedSegment::new(
                        self.storage.clone(),
                        original.path.clone(),
                        original.first_seq,
                        file_bytes,
                    );
                    fresh.mark_compacted();
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
        remove_segment_files(self, &emptied)?;
        failure.map_or(Ok(()), Err)
    }
}

/// The newest `_seq` at or below `upto` of every key in `snapshot`.
fn newest_versions(snapshot: &ReadSnapshot, upto: Seq) -> Result<HashMap<&[u8], Seq>> {
    let mut newest: HashMap<&[u8], Seq> = HashMap::new();
    for record in snapshot.records(ReadFrom::Earliest) {
        let record = record?;
        if record.seq > upto {
            break;
        }
        if !record.key.is_empty() {
            newest.insert(record.key, record.seq);
        }
    }
    Ok(newest)
}

/// The resume floors once `keep` has removed its records at or below `sealed_last_seq` (see
/// the module comment). A previous version `p` named by a record of key `k` is removed when it
/// lies in the rewritten range and below `k`'s newest version (previous versions name the same
/// key; a link that does not only makes the floor higher than needed, never lower).
fn removed_history_floors(
    snapshot: &ReadSnapshot,
    newest: &HashMap<&[u8], Seq>,
    sealed_last_seq: Seq,
    keep: &dyn Fn(&RecordView<'_>) -> bool,
) -> Result<ResumeFloors> {
    let mut floors = ResumeFloors::default();
    for record in snapshot.records(ReadFrom::Earliest) {
        let record = record?;
        // Keyless records are never removed, nor are the keyless records they name.
        if record.key.is_empty() {
            continue;
        }
        let newest_seq = newest.get(record.key).copied().unwrap_or(Seq::ZERO);
        let removed = record.seq <= sealed_last_seq && !keep(&record);
        if removed && record.flags.is_tombstone() {
            let resumable = ResumeFloors {
                lowest_resumable_seq: record.seq,
                lowest_keyed_catch_up_seq: Seq::ZERO,
            };
            floors = floors.raised_to(match record.seq == newest_seq {
                true => ResumeFloors::both(record.seq),
                false => resumable,
            });
        }
        let previous = record.previous_version;
        if previous != Seq::ZERO && previous <= sealed_last_seq && previous < newest_seq {
            floors = floors.raised_to(ResumeFloors {
                lowest_resumable_seq: record.seq,
                lowest_keyed_catch_up_seq: Seq::ZERO,
            });
        }
    }
    Ok(floors)
}
