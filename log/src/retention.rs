//! Retention: drop whole sealed segments that are older than the age limit or that push the
//! partition over its size limit, oldest first. The active segment is never dropped. Before any
//! file is removed, both resume floors are raised durably (`meta.rs`): retention removes newest
//! versions of keys too. The order is: raise the floors and sync them, take the segments out
//! of the readers' view, then unlink their files. A removal that fails leaves the floors raised
//! (readers are told "too old", never shown a gap); the files not yet removed are kept in a
//! list that the next retention or compaction of the partition removes first.

use std::io::ErrorKind;
use std::sync::Arc;

use crate::error::{LogError, Result};
use crate::meta::ResumeFloors;
use crate::partition::Partition;
use crate::segment::{self, SealedSegment};
use crate::seq::Seq;

/// Limits of a partition's history; `None` means unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Segments whose newest record is older than this are removed.
    pub max_age_ms: Option<u64>,
    /// Oldest segments are removed while the partition is larger than this.
    pub max_bytes: Option<u64>,
}

/// What one retention sweep removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    /// Sealed segments taken out of the partition.
    pub segments_removed: usize,
    /// Their bytes of records.
    pub bytes_removed: u64,
}

impl Partition {
    /// Apply `policy` as of `now_unix_ms`.
    pub fn apply_retention(
        &self,
        policy: &RetentionPolicy,
        now_unix_ms: u64,
    ) -> Result<RetentionOutcome> {
        let _maintenance = self.maintenance.lock();
        remove_segment_files(self, &[])?;
        let (sealed, active_bytes) = {
            let writer = self.lock_writer();
            let active_bytes = writer
                .active
                .as_ref()
                .map_or(0, |a| u64::from(a.written_bytes()));
            (writer.sealed.clone(), active_bytes)
        };
        let mut total_bytes = active_bytes;
        for segment in sealed.iter() {
            total_bytes += u64::from(segment.load()?.index.summary.data_bytes);
        }
        let mut outcome = RetentionOutcome::default();
        let mut last_removed = Seq::ZERO;
        for segment in sealed.iter() {
            let summary = segment.load()?.index.summary;
            let too_old = policy
                .max_age_ms
                .is_some_and(|age| summary.max_timestamp_unix_ms.saturating_add(age) < now_unix_ms);
            let too_big = policy.max_bytes.is_some_and(|max| total_bytes > max);
            if !too_old && !too_big {
                break;
            }
            total_bytes -= u64::from(summary.data_bytes);
            outcome.segments_removed += 1;
            outcome.bytes_removed += u64::from(summary.data_bytes);
            last_removed = last_removed.max(summary.last_seq).max(segment.first_seq);
        }
        if outcome.segments_removed == 0 {
            return Ok(outcome);
        }
        // Whole segments go, newest versions of keys included: both floors rise.
        self.raise_floors(ResumeFloors::both(last_removed))?;
        let removed = &sealed[..outcome.segments_removed];
        {
            let mut writer = self.lock_writer();
            Arc::make_mut(&mut writer.sealed)
                .retain(|s| !removed.iter().any(|r| Arc::ptr_eq(r, s)));
            self.publish(&writer);
        }
        remove_segment_files(self, removed)?;
        tracing::info!(partition = %self.dir.display(), segments = outcome.segments_removed,
            lowest_resumable_seq = %last_removed, "retention removed segments");
        Ok(outcome)
    }

    /// `_seq` of the oldest record still stored, if any.
    pub fn first_retained_seq(&self) -> Result<Option<Seq>> {
        let snapshot = self.snapshot();
        let first = snapshot
            .records(crate::ReadFrom::Earliest)
            .next()
            .transpose()?;
        Ok(first.map(|r| r.seq))
    }

    /// Durably raise the resume floors to at least `floors` (before anything is removed).
    pub(crate) fn raise_floors(&self, floors: ResumeFloors) -> Result<()> {
        let mut meta = self.meta.lock();
        let raised = meta.raised_to(floors);
        if raised == *meta {
            return Ok(());
        }
        raised.store(self.storage.as_ref(), &self.dir)?;
        *meta = raised;
        Ok(())
    }
}

/// Unlink segments (and their indexes) no longer in the partition's view, after any that an
/// earlier call failed to remove; with nothing to remove, does nothing. Readers that still
/// hold a snapshot keep reading the unlinked files through their maps. On a failure the
/// segments not yet removed stay listed in `Partition::unremoved` for the next call.
pub(crate) fn remove_segment_files(
    partition: &Partition,
    removed: &[Arc<SealedSegment>],
) -> Result<()> {
    let mut unremoved = partition.unremoved.lock();
    unremoved.extend(removed.iter().cloned());
    if unremoved.is_empty() {
        return Ok(());
    }
    let storage = partition.storage.as_ref();
    while let Some(segment) = unremoved.first() {
        match storage.remove_file(&segment.path) {
            // Already gone: removed before a failure later in an earlier call.
            Err(e) if e.kind() != ErrorKind::NotFound => {
                return Err(LogError::io(&segment.path, e))
            }
            _ => {}
        }
        // The index is derived data: one left behind names no segment and is never read.
        let _ = storage.remove_file(&segment::index_path(&partition.dir, segment.first_seq));
        unremoved.remove(0);
    }
    storage
        .sync_directory(&partition.dir)
        .map_err(|e| LogError::io(&partition.dir, e))
}
