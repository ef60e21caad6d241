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
use crate::recovery;
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

    /// The snapshot's records from `from` on, in `_seq` order, borrowed from the maps.
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
            last_seen: Seq::ZERO,
            damage: None,
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
    /// `_seq` of the last intact record decoded in the current segment, yielded or skipped.
    last_seen: Seq,
    /// After an error at damaged bytes: where the next intact frame of that segment is (or
    /// `None`: none in that segment), for [`Records::skip_damage`].
    damage: Option<Damage>,
    done: bool,
}

/// Damaged bytes a read met, and what [`Records::skip_damage`] would skip.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// The damaged segment file.
    pub path: PathBuf,
    /// Byte of the first invalid frame.
    pub start: u64,
    /// Byte of the next intact frame of the segment, or the end of its data.
    pub end: u64,
    /// `_seq` of the last intact record before the damage in its segment (none: one below
    /// the segment's first `_seq`).
    pub after_seq: Seq,
    /// `_seq` of the first intact record after it in its segment, if any: records between
    /// `after_seq` and this one (exclusive) are unreadable.
    pub before_seq: Option<Seq>,
    /// Where to go on in the segment, if anywhere.
    resume_at: Option<usize>,
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
                let end = (loaded.read_end as usize).min(loaded.bytes.len());
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

    fn segment_path(&self, segment: SegmentRef<'_>) -> PathBuf {
        match segment {
            SegmentRef::Sealed(s) => s.path.clone(),
            SegmentRef::Active(a) => crate::segment::segment_path(&self.snapshot.dir, a.first_seq),
        }
    }

    fn corrupt(&self, segment: SegmentRef<'_>, position: usize, reason: &'static str) -> LogError {
        LogError::CorruptSegment {
            path: self.segment_path(segment),
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
                    let bytes = self.enter(segment).inspect_err(|_| {
                        // A segment that cannot be loaded at all (its header): all of it.
                        self.damage = Some(Damage {
                            path: self.segment_path(segment),
                            start: 0,
                            end: 0,
                            after_seq: Seq::ZERO,
                            before_seq: None,
                            resume_at: None,
                        });
                    })?;
                    self.position = bytes.start;
                    self.last_seen = Seq(segment.first_seq().0.saturating_sub(1));
                    self.current = Some(bytes);
                    bytes
                }
            };
            while self.position < bytes.data.len() {
                let at = self.position;
                let reason = match record::decode(bytes.data, at) {
                    Ok(Decoded::Record(view, next))
                        if view.seq > self.last_yielded && view.seq > self.last_seen =>
                    {
                        self.position = next;
                        self.last_seen = view.seq;
                        if view.seq >= self.target {
                            self.last_yielded = view.seq;
                            return Ok(Some(view));
                        }
                        continue;
                    }
                    Ok(Decoded::Record(..)) => "_seq not increasing",
                    Ok(Decoded::End) if !bytes.sealed => break,
                    Ok(Decoded::End) => "zeroed frame inside data",
                    Err(e) => e.reason(),
                };
                // Damage: skip it only when every record it can hold lies below the target
                // (the next intact frame is at or below it); otherwise the read needs it.
                let found = recovery::resync(bytes.data, at, self.last_seen);
                match found {
                    Some((next, seq)) if seq <= self.target => {
                        self.position = next;
                    }
                    _ => {
                        let error = self.corrupt(segment, at, reason);
                        self.damage = Some(Damage {
                            path: self.segment_path(segment),
                            start: at as u64,
                            end: found.map_or(bytes.data.len(), |(next, _)| next) as u64,
                            after_seq: self.last_seen,
                            before_seq: found.map(|(_, seq)| seq),
                            resume_at: found.map(|(next, _)| next),
                        });
                        return Err(error);
                    }
                }
            }
            self.segment += 1;
            self.current = None;
        }
        Ok(None)
    }
}

impl Records<'_> {
    /// After this iterator ended with `LogError::CorruptSegment` at damaged bytes: go on with
    /// the next intact record after them (the rest of that segment, or the next segment), and
    /// say what was skipped. `None` (and nothing changes) when the last item was not such an
    /// error, e.g. a segment whose header is unreadable. For callers that must know what is
    /// intact (a key index, a repair); a plain read must not skip silently.
    pub fn skip_damage(&mut self) -> Option<Damage> {
        let damage = self.damage.take()?;
        match damage.resume_at {
            Some(next) => self.position = next,
            None => {
                self.segment += 1;
                self.current = None;
            }
        }
        self.done = false;
        Some(damage)
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
