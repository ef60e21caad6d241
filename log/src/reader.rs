//! Reading: an immutable [`PartitionView`] published by each commit, the [`ReadSnapshot`] a
//! reader holds, and the [`Records`] iterator of zero-copy [`RecordView`]s over it.
//!
//! A snapshot sees exactly the records committed when it was taken: the active segment is read
//! only up to the committed length recorded in the view, so a record being written is never
//! seen. Every frame's CRC is checked as it is read; a bad frame in a sealed segment ends the
//! iteration with `LogError::CorruptSegment`, never with a silent skip.

use parking_lot::RwLock;
use std::path::PathBuf;
use std::sync::Arc;

use crate::error::{LogError, Result};
use crate::index::SegmentIndex;
use crate::record::{self, Decoded, RecordView};
use crate::segment::{SealedSegment, SEGMENT_HEADER_BYTES};
use crate::seq::Seq;
use crate::sys::MappedBytes;

/// Where a read starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadFrom {
    /// The oldest retained record.
    Earliest,
    /// The first record with `_seq >= seq`.
    Seq(Seq),
    /// The first record with `_seq > seq` (resume after the last one seen).
    After(Seq),
    /// Nothing that is committed now; for readers that only want what comes next.
    Latest,
}

#[derive(Debug)]
pub(crate) struct ActiveRef {
    pub first_seq: Seq,
    pub map: Arc<MappedBytes>,
    pub index: Arc<RwLock<SegmentIndex>>,
    pub committed_bytes: u32,
}

/// One segment of a view, borrowed.
#[derive(Clone, Copy, Debug)]
pub(crate) enum SegmentRef<'v> {
    Sealed(&'v SealedSegment),
    Active(&'v ActiveRef),
}

impl SegmentRef<'_> {
    fn first_seq(self) -> Seq {
        match self {
            SegmentRef::Sealed(s) => s.first_seq,
            SegmentRef::Active(a) => a.first_seq,
        }
    }
}

/// What one commit made visible: the sealed segments (shared between views until one is
/// sealed or removed), the active segment's committed length, and the newest committed `_seq`.
#[derive(Debug)]
pub(crate) struct PartitionView {
    pub sealed: Arc<Vec<Arc<SealedSegment>>>,
    pub active: Option<ActiveRef>,
    pub last_seq: Seq,
}

impl PartitionView {
    fn segment_count(&self) -> usize {
        self.sealed.len() + usize::from(self.active.is_some())
    }

    fn segment(&self, i: usize) -> Option<SegmentRef<'_>> {
        match self.sealed.get(i) {
            Some(sealed) => Some(SegmentRef::Sealed(sealed)),
            None if i == self.sealed.len() => self.active.as_ref().map(SegmentRef::Active),
            None => None,
        }
    }

    /// The last segment whose first `_seq` is at or below `seq` (or the first segment).
    fn segment_for(&self, seq: Seq) -> usize {
        let (mut low, mut high) = (0, self.segment_count());
        while low < high {
            let mid = (low + high) / 2;
            match self.segment(mid) {
                Some(segment) if segment.first_seq() <= seq => low = mid + 1,
                _ => high = mid,
            }
        }
        low.saturating_sub(1)
    }
}

/// A fixed, consistent view of a partition; records borrowed from it stay valid as long as it
/// lives, even if retention or compaction replaces the files meanwhile.
#[derive(Debug)]
pub struct ReadSnapshot {
    view: Arc<PartitionView>,
    dir: PathBuf,
}

impl ReadSnapshot {
    pub(crate) fn new(view: Arc<PartitionView>, dir: PathBuf) -> ReadSnapshot {
        ReadSnapshot { view, dir }
    }

    /// `_seq` of the newest record in this snapshot (`Seq::ZERO` when empty).
    pub fn last_seq(&self) -> Seq {
        self.view.last_seq
    }

    pub fn records(&self, from: ReadFrom) -> Records<'_> {
        let view = &self.view;
        let (segment, target) = match from {
            ReadFrom::Earliest => (0, Seq::ZERO),
            ReadFrom::Latest => (view.segment_count(), Seq::MAX),
            ReadFrom::Seq(seq) => (view.segment_for(seq), seq),
            ReadFrom::After(seq) => (view.segment_for(seq), seq.successor()),
        };
        Records {
            snapshot: self,
            segment,
            current: None,
            position: 0,
            target,
            last_yielded: Seq::ZERO,
            done: false,
        }
    }
}

/// Iterator over committed records of a snapshot, in `_seq` order.
#[derive(Debug)]
pub struct Records<'s> {
    snapshot: &'s ReadSnapshot,
    segment: usize,
    /// The bytes of the current segment, once entered.
    current: Option<SegmentBytes<'s>>,
    position: usize,
    /// Records below this `_seq` are skipped.
    target: Seq,
    last_yielded: Seq,
    done: bool,
}

/// The bytes of one segment that a snapshot may read.
#[derive(Clone, Copy, Debug)]
struct SegmentBytes<'s> {
    data: &'s [u8],
    sealed: bool,
    start: usize,
}

impl<'s> Records<'s> {
    fn enter(&self, segment: SegmentRef<'s>) -> Result<SegmentBytes<'s>> {
        let data_start = SEGMENT_HEADER_BYTES;
        match segment {
            SegmentRef::Sealed(sealed) => {
                let loaded = sealed.load()?;
                let end = (loaded.index.summary.data_bytes as usize).min(loaded.bytes.len());
                let start = loaded.index.scan_start(self.target, data_start) as usize;
                Ok(SegmentBytes {
                    data: &loaded.bytes.as_slice()[..end],
                    sealed: true,
                    start,
                })
            }
            SegmentRef::Active(active) => {
                let index = active.index.read();
                let start = index.scan_start(self.target, data_start) as usize;
                let end = (active.committed_bytes as usize).min(active.map.len());
                Ok(SegmentBytes {
                    data: &active.map.as_slice()[..end],
                    sealed: false,
                    start,
                })
            }
        }
    }

    fn corrupt(&self, segment: SegmentRef<'_>, position: usize, reason: &'static str) -> LogError {
        let path = match segment {
            SegmentRef::Sealed(s) => s.path.clone(),
            SegmentRef::Active(a) => crate::segment::segment_path(&self.snapshot.dir, a.first_seq),
        };
        LogError::CorruptSegment {
            path,
            position: position as u64,
            reason,
        }
    }

    fn next_record(&mut self) -> Result<Option<RecordView<'s>>> {
        let view: &'s PartitionView = &self.snapshot.view;
        while let Some(segment) = view.segment(self.segment) {
            let bytes = match self.current {
                Some(bytes) => bytes,
                None => {
                    let bytes = self.enter(segment)?;
                    self.position = bytes.start;
                    self.current = Some(bytes);
                    bytes
                }
            };
            while self.position < bytes.data.len() {
                let at = self.position;
                match record::decode(bytes.data, at) {
                    Ok(Decoded::Record(view, next)) => {
                        self.position = next;
                        if view.seq <= self.last_yielded {
                            return Err(self.corrupt(segment, at, "_seq not increasing"));
                        }
                        if view.seq >= self.target {
                            self.last_yielded = view.seq;
                            return Ok(Some(view));
                        }
                    }
                    Ok(Decoded::End) if !bytes.sealed => break,
                    Ok(Decoded::End) => {
                        return Err(self.corrupt(segment, at, "zeroed frame inside data"))
                    }
                    Err(e) => return Err(self.corrupt(segment, at, e.reason())),
                }
            }
            self.segment += 1;
            self.current = None;
        }
        Ok(None)
    }
}

impl<'s> Iterator for Records<'s> {
    type Item = Result<RecordView<'s>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_record() {
            Ok(Some(view)) => Some(Ok(view)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(error) => {
                self.done = true;
                Some(Err(error))
            }
        }
    }
}
