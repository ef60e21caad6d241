//! Segment files: naming, the 64-byte header, scanning frames, and the two states of a segment.
//! A [`SealedSegment`] is immutable and mapped read-only on first use; the [`ActiveSegment`] is
//! appended to by the partition's writer and mapped for readers up to its committed length.

use parking_lot::RwLock;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use crate::error::{LogError, Result};
use crate::index::SegmentIndex;
use crate::limits::{
    GROWTH_ALIGN_BYTES, GROWTH_BYTES_MAX, GROWTH_BYTES_MIN, WRITEBACK_BYTES, ZEROS_CHUNK_BYTES,
};
use crate::record::{self, Decoded, FrameError};
use crate::recovery::{self, DamagedRange};
use crate::seq::Seq;
use crate::storage::{AtomicWrite, Storage, StorageFile};
use crate::sys::MappedBytes;
use crate::writeback::WritebackQueue;

/// Bytes of a segment's header, before its first frame.
pub const SEGMENT_HEADER_BYTES: u32 = 64;
/// The segment format version this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;
const MAGIC: &[u8; 8] = b"STRNDLOG";
const SEGMENT_EXTENSION: &str = "log";
const INDEX_EXTENSION: &str = "idx";
// The active file is grown ahead of its data with written zeros, never holes: an fdatasync of
// records written over already allocated blocks needs no journal commit for block allocation
// (measured: fsync=always, 64 writers, 1 KiB: about +15 %). Steps double from
// `GROWTH_BYTES_MIN` up to `GROWTH_BYTES_MAX` (`limits.rs`).
static ZEROS: [u8; ZEROS_CHUNK_BYTES] = [0; ZEROS_CHUNK_BYTES];

/// Extend `file` from `from` to `to` bytes with written zeros.
fn fill_zeros(file: &dyn StorageFile, from: u64, to: u64) -> std::io::Result<()> {
    let mut at = from;
    while at < to {
        let chunk = (to - at).min(ZEROS.len() as u64);
        file.write_all_at(&ZEROS[..chunk as usize], at)?;
        at += chunk;
    }
    Ok(())
}

/// `<dir>/<first_seq, 20 digits>.log`.
pub fn segment_path(dir: &Path, first_seq: Seq) -> PathBuf {
    dir.join(format!("{:020}.{SEGMENT_EXTENSION}", first_seq.0))
}

/// `<dir>/<first_seq, 20 digits>.idx`.
pub fn index_path(dir: &Path, first_seq: Seq) -> PathBuf {
    dir.join(format!("{:020}.{INDEX_EXTENSION}", first_seq.0))
}

/// `Some(first_seq)` when `name` is a segment file name.
pub fn parse_segment_name(name: &str) -> Option<Seq> {
    let digits = name.strip_suffix(".log")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok().map(Seq))
        .flatten()
}

/// The header of a segment named `first_seq`, created at `created_unix_ms`.
pub fn encode_header(first_seq: Seq, created_unix_ms: u64) -> [u8; SEGMENT_HEADER_BYTES as usize] {
    let mut header = [0u8; SEGMENT_HEADER_BYTES as usize];
    header[..8].copy_from_slice(MAGIC);
    header[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header[10..12].copy_from_slice(&(SEGMENT_HEADER_BYTES as u16).to_le_bytes());
    header[16..24].copy_from_slice(&first_seq.0.to_le_bytes());
    header[24..32].copy_from_slice(&created_unix_ms.to_le_bytes());
    let crc = crc32fast::hash(&header[..60]);
    header[60..].copy_from_slice(&crc.to_le_bytes());
    header
}

/// Check the header at the start of `bytes` (magic, version, CRC, its `_seq` against the name).
pub fn check_header(bytes: &[u8], path: &Path, first_seq: Seq) -> Result<()> {
    let bad = |reason| LogError::BadSegmentHeader {
        path: path.to_path_buf(),
        reason,
    };
    let header = bytes
        .get(..SEGMENT_HEADER_BYTES as usize)
        .ok_or(bad("file shorter than header"))?;
    if &header[..8] != MAGIC {
        return Err(bad("not a Strand segment (magic)"));
    }
    if crc32fast::hash(&header[..60]).to_le_bytes() != header[60..64] {
        return Err(bad("header CRC32 mismatch"));
    }
    let version = u16::from_le_bytes([header[8], header[9]]);
    if version != FORMAT_VERSION {
        return Err(LogError::UnsupportedVersion {
            path: path.to_path_buf(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    if record::read_u64(header, 16) != first_seq.0 {
        return Err(bad("first _seq in header differs from the file name"));
    }
    Ok(())
}

/// Where a scan of a segment's frames stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanStop {
    /// A zero length word (or the end of the bytes) after the last frame.
    CleanEnd,
    /// An invalid frame at this byte.
    Invalid {
        /// Byte of the segment where the frame starts.
        position: u32,
        /// Why it is invalid.
        error: FrameError,
    },
}

/// Walk and check every frame of `data`, building the index of the valid prefix.
pub fn scan(data: &[u8], first_seq: Seq) -> (SegmentIndex, ScanStop) {
    let mut index = SegmentIndex::new(first_seq, SEGMENT_HEADER_BYTES);
    let mut position = SEGMENT_HEADER_BYTES as usize;
    loop {
        match record::decode(data, position) {
            Ok(Decoded::End) => return (index, ScanStop::CleanEnd),
            Ok(Decoded::Record(view, next))
                if view.seq > index.summary.last_seq && view.seq >= first_seq =>
            {
                index.add(
                    view.seq,
                    view.timestamp_unix_ms,
                    position as u32,
                    next as u32,
                );
                position = next;
            }
            Ok(Decoded::Record(..)) => {
                let error = FrameError::SeqNotIncreasing;
                return (
                    index,
                    ScanStop::Invalid {
                        position: position as u32,
                        error,
                    },
                );
            }
            Err(error) => {
                return (
                    index,
                    ScanStop::Invalid {
                        position: position as u32,
                        error,
                    },
                )
            }
        }
    }
}

/// A segment no longer written: its bytes never change until retention or compaction replaces
/// the whole file. Mapped and indexed lazily, on the first read that needs it.
#[derive(Debug)]
pub struct SealedSegment {
    /// The segment file.
    pub path: PathBuf,
    /// Its name: no record of it lies below.
    pub first_seq: Seq,
    storage: Arc<dyn Storage>,
    loaded: OnceLock<LoadedSegment>,
    /// Length of the file, known without reading it: from sealing, from the rewrite that made
    /// it, or from the directory listing at open.
    file_bytes: u64,
    /// Checked by a compaction of this process (rewritten, or found with nothing to remove).
    compacted: AtomicBool,
}

/// A sealed segment's map and index, loaded once.
#[derive(Debug)]
pub struct LoadedSegment {
    /// The whole file, mapped.
    pub bytes: MappedBytes,
    /// Its index, read from the `.idx` file or rebuilt.
    pub index: SegmentIndex,
    /// Where reads stop: the end of the last intact record, or the end of the file when
    /// damaged bytes follow it (reads that need them must meet them, not stop short).
    pub read_end: u32,
}

impl SealedSegment {
    /// A sealed segment of `file_bytes` bytes, mapped and indexed on first use.
    pub fn new(
        storage: Arc<dyn Storage>,
        path: PathBuf,
        first_seq: Seq,
        file_bytes: u64,
    ) -> SealedSegment {
        SealedSegment {
            path,
            first_seq,
            storage,
            loaded: OnceLock::new(),
            file_bytes,
            compacted: AtomicBool::new(false),
        }
    }

    fn with_loaded(storage: Arc<dyn Storage>, path: PathBuf, loaded: LoadedSegment) -> Self {
        let (first_seq, data_bytes) = (
            loaded.index.summary.first_seq,
            loaded.index.summary.data_bytes,
        );
        let segment = SealedSegment::new(storage, path, first_seq, u64::from(data_bytes));
        let _ = segment.loaded.set(loaded);
        segment
    }

    /// Size of the segment file (no I/O).
    pub fn file_bytes(&self) -> u64 {
        self.file_bytes
    }

    /// Whether a compaction of this process has checked this segment.
    pub fn is_compacted(&self) -> bool {
        self.compacted.load(Ordering::Acquire)
    }

    pub(crate) fn mark_compacted(&self) {
        self.compacted.store(true, Ordering::Release);
    }

    /// Map the segment and load (or rebuild) its index.
    pub fn load(&self) -> Result<&LoadedSegment> {
        if let Some(loaded) = self.loaded.get() {
            return Ok(loaded);
        }
        let loaded = self.load_uncached()?;
        Ok(self.loaded.get_or_init(|| loaded))
    }

    fn load_uncached(&self) -> Result<LoadedSegment> {
        let io = |e| LogError::io(&self.path, e);
        let file = self.storage.open_existing(&self.path).map_err(io)?;
        let file_bytes = file.len().map_err(io)?;
        let bytes = file.map(file_bytes).map_err(io)?;
        check_header(bytes.as_slice(), &self.path, self.first_seq)?;
        let index_path = self.path.with_extension(INDEX_EXTENSION);
        let stored = std::fs::read(&index_path).ok();
        let decoded = stored.and_then(|b| SegmentIndex::decode(&b, self.first_seq, file_bytes));
        // A well-formed but stale index (written before the segment grew) must not hide the
        // records after its data end: a sealed file holds only zeros past its data.
        let data = bytes.as_slice();
        let decoded = decoded.filter(|index| {
            data.get(index.summary.data_bytes as usize..)
                .is_some_and(|rest| rest.iter().all(|&b| b == 0))
        });
        let (index, read_end) = match decoded {
            Some(index) => {
                let end = index.summary.data_bytes;
                (index, end)
            }
            None => self.rebuild_index(bytes.as_slice(), &index_path),
        };
        Ok(LoadedSegment {
            bytes,
            index,
            read_end,
        })
    }

    /// Rebuild a missing or garbled index by scanning. Damaged frames are indexed around (the
    /// index holds every intact record, and reads that meet the damage end with
    /// `CorruptSegment`); such an index is not written, so every load scans and reports again.
    /// Returns the index and where reads stop.
    fn rebuild_index(&self, data: &[u8], index_path: &Path) -> (SegmentIndex, u32) {
        let scan = recovery::scan_all(data, self.first_seq);
        if scan.damaged.is_empty() && scan.tail.is_none() {
            tracing::warn!(segment = %self.path.display(), "rebuilt segment index");
            let index = scan.index.encode();
            let _ = self
                .storage
                .write_atomically(index_path, &index, AtomicWrite::unsynced());
            let end = scan.index.summary.data_bytes;
            return (scan.index, end);
        }
        for range in scan.damaged.iter().chain(&scan.tail) {
            tracing::error!(segment = %self.path.display(), start = range.start,
                end = range.end, reason = range.error.reason(),
                "damaged bytes in sealed segment; reads that need them fail, the intact records are served (`strand repair` moves them aside)");
        }
        let end = match scan.tail {
            Some(tail) => tail.end,
            None => scan.index.summary.data_bytes,
        };
        (scan.index, end)
    }
}

/// What reopening the newest segment found.
#[derive(Debug)]
pub enum Recovered {
    /// Intact (a torn tail of `cut_bytes` was cut): appends go on in it.
    Active {
        /// The reopened segment.
        segment: ActiveSegment,
        /// Bytes of torn tail cut off its end.
        cut_bytes: u64,
    },
    /// Damaged in the middle: never appended to again. The partition keeps it as a sealed
    /// segment of `data_bytes` bytes (reads that need the damaged ranges fail) and starts a
    /// new segment for appends.
    Damaged {
        /// Bytes of the file up to the end of its last intact record.
        data_bytes: u64,
        /// The damaged ranges with intact records after them.
        damaged: Vec<DamagedRange>,
    },
}

/// The segment being appended to. Owned by the partition's writer; readers see it through
/// [`ActiveSegment::reader_parts`] up to the committed length the partition publishes.
#[derive(Debug)]
pub struct ActiveSegment {
    /// The segment file.
    pub path: PathBuf,
    /// Its name: no record of it lies below.
    pub first_seq: Seq,
    /// `None` while closed to spare a descriptor: an idle partition of a store with more
    /// partitions than `open_partitions_max` (`commit/files.rs`). Readers need only the map;
    /// the writer reopens the file ([`ActiveSegment::reopen_file`]) before writing.
    open: Option<Arc<dyn StorageFile>>,
    capacity_bytes: u64,
    map: Arc<MappedBytes>,
    index: Arc<RwLock<SegmentIndex>>,
    written_bytes: u32,
    /// Bytes before this were handed to [`StorageFile::start_writeback`] (or synced).
    writeback_from: u32,
    last_seq: Seq,
}

impl ActiveSegment {
    /// Create the segment `first_seq` in `dir`: header, first growth step of zeros, fsync of
    /// the file and of the directory.
    pub fn create(storage: &dyn Storage, dir: &Path, first_seq: Seq, now_ms: u64) -> Result<Self> {
        let path = segment_path(dir, first_seq);
        let io = |e| LogError::io(&path, e);
        let file: Arc<dyn StorageFile> = storage.create_new(&path).map_err(io)?.into();
        file.write_all_at(&encode_header(first_seq, now_ms), 0)
            .map_err(io)?;
        let capacity_bytes = GROWTH_BYTES_MIN;
        fill_zeros(
            file.as_ref(),
            u64::from(SEGMENT_HEADER_BYTES),
            capacity_bytes,
        )
        .map_err(io)?;
        file.sync_all().map_err(io)?;
        storage
            .sync_directory(dir)
            .map_err(|e| LogError::io(dir, e))?;
        let map = Arc::new(file.map(capacity_bytes).map_err(io)?);
        let index = SegmentIndex::new(first_seq, SEGMENT_HEADER_BYTES);
        Ok(ActiveSegment {
            path,
            first_seq,
            open: Some(file),
            capacity_bytes,
            map,
            index: Arc::new(RwLock::new(index)),
            written_bytes: SEGMENT_HEADER_BYTES,
            writeback_from: SEGMENT_HEADER_BYTES,
            last_seq: Seq::ZERO,
        })
    }

    /// Reopen the last segment after a restart: keep every intact record, cut a torn tail.
    /// Damage with intact records after it is never cut: the segment is then kept as it is
    /// (less its torn tail, if any) and handed back as [`Recovered::Damaged`].
    pub fn recover(storage: &dyn Storage, path: PathBuf, first_seq: Seq) -> Result<Recovered> {
        let io = |e| LogError::io(&path, e);
        let file: Arc<dyn StorageFile> = storage.open_existing(&path).map_err(io)?.into();
        let file_bytes = file.len().map_err(io)?;
        let bytes = file.map(file_bytes).map_err(io)?;
        check_header(bytes.as_slice(), &path, first_seq)?;
        let scan = recovery::scan_all(bytes.as_slice(), first_seq);
        let index = scan.index;
        let data_bytes = index.summary.data_bytes;
        let mut cut_bytes = 0;
        if let Some(tail) = scan.tail {
            tracing::warn!(segment = %path.display(), position = tail.start,
                reason = tail.error.reason(), "truncating torn tail of active segment");
            cut_bytes = file_bytes.saturating_sub(u64::from(tail.start));
        }
        drop(bytes);
        let mut capacity_bytes = file_bytes;
        // A closed partition trims its active file to its data (`trim`), so spare bytes mean a
        // crash: cut everything after the last intact record (a torn frame, or stale bytes a
        // torn multi-page write left further on); the next append regrows it with zeros.
        if file_bytes > u64::from(data_bytes) {
            file.set_len(u64::from(data_bytes)).map_err(io)?;
            file.sync_all().map_err(io)?;
            capacity_bytes = u64::from(data_bytes);
        }
        if !scan.damaged.is_empty() {
            for range in &scan.damaged {
                tracing::error!(segment = %path.display(), start = range.start, end = range.end,
                    reason = range.error.reason(),
                    "damaged bytes with intact records after them in the newest segment: kept, not cut");
            }
            return Ok(Recovered::Damaged {
                data_bytes: u64::from(data_bytes),
                damaged: scan.damaged,
            });
        }
        let map = Arc::new(file.map(capacity_bytes).map_err(io)?);
        let last_seq = index.summary.last_seq;
        let segment = ActiveSegment {
            path,
            first_seq,
            open: Some(file),
            capacity_bytes,
            map,
            index: Arc::new(RwLock::new(index)),
            written_bytes: data_bytes,
            writeback_from: data_bytes,
            last_seq,
        };
        Ok(Recovered::Active { segment, cut_bytes })
    }

    /// Bytes written: the header and every frame appended.
    pub fn written_bytes(&self) -> u32 {
        self.written_bytes
    }

    /// `_seq` of the newest record (`Seq::ZERO` when none).
    pub fn last_seq(&self) -> Seq {
        self.last_seq
    }

    /// Whether no record was appended yet.
    pub fn is_empty(&self) -> bool {
        self.written_bytes == SEGMENT_HEADER_BYTES
    }

    /// What readers need: the map and the shared index (both `Arc`, no lock held).
    pub fn reader_parts(&self) -> (Arc<MappedBytes>, Arc<RwLock<SegmentIndex>>) {
        (self.map.clone(), self.index.clone())
    }

    /// Write whole encoded frames at the end. Not visible to readers until published.
    pub fn append(&mut self, frames: &[u8]) -> std::io::Result<()> {
        let end = u64::from(self.written_bytes) + frames.len() as u64;
        if end > self.capacity_bytes {
            self.grow(end)?;
        }
        self.file()?
            .write_all_at(frames, u64::from(self.written_bytes))?;
        let mut index = self.index.write();
        let mut at = 0;
        while at < frames.len() {
            let (frame_bytes, seq, timestamp) = record::encoded_frame_fields(frames, at);
            let position = self.written_bytes + at as u32;
            index.add(seq, timestamp, position, position + frame_bytes as u32);
            at += frame_bytes;
            self.last_seq = seq;
        }
        self.written_bytes = end as u32;
        Ok(())
    }

    /// Under `never` and `interval`: once [`WRITEBACK_BYTES`] were appended since the last
    /// call, hand them to the writeback thread, which starts the kernel writing them back, so
    /// that the fdatasync that seals the segment (or the interval flusher's) finds little left
    /// to write instead of up to a whole segment, which stalled every appender of the store
    /// behind it. Best effort.
    pub(crate) fn start_writeback_if_due(&mut self, queue: &WritebackQueue) {
        let pending = self.written_bytes.saturating_sub(self.writeback_from);
        if pending < WRITEBACK_BYTES {
            return;
        }
        let Some(file) = &self.open else { return };
        let from = u64::from(self.writeback_from);
        queue.submit(file, from, u64::from(pending));
        self.writeback_from = self.written_bytes;
    }

    fn grow(&mut self, needed_bytes: u64) -> std::io::Result<()> {
        let step = self
            .capacity_bytes
            .clamp(GROWTH_BYTES_MIN, GROWTH_BYTES_MAX);
        let needed = needed_bytes.next_multiple_of(GROWTH_ALIGN_BYTES);
        let mut capacity = needed.max(self.capacity_bytes + step);
        let file = self.file()?.clone();
        match fill_zeros(file.as_ref(), self.capacity_bytes, capacity) {
            // No room to grow ahead (a nearly full disk, a quota, a file-size limit): grow
            // only as far as this write needs, so the last free space is still used.
            Err(e) if crate::error::is_storage_full(&e) && capacity > needed => {
                fill_zeros(file.as_ref(), self.capacity_bytes, needed)?;
                capacity = needed;
            }
            grown => grown?,
        }
        self.map = Arc::new(file.map(capacity)?);
        self.capacity_bytes = capacity;
        Ok(())
    }

    /// fdatasync the file (an error if it is closed).
    pub fn sync_data(&self) -> std::io::Result<()> {
        self.file()?.sync_data()
    }

    /// The open file, for an fdatasync that must not hold the writer (the interval flusher);
    /// `None` while closed (it was synced before it was closed).
    pub fn file_handle(&self) -> Option<Arc<dyn StorageFile>> {
        self.open.clone()
    }

    fn file(&self) -> std::io::Result<&Arc<dyn StorageFile>> {
        self.open
            .as_ref()
            .ok_or_else(|| std::io::Error::other("the active segment's file is closed"))
    }

    /// Close the file to spare its descriptor; readers keep the map. Returns the handle, so
    /// the caller can sync it first if it has unsynced appends.
    pub(crate) fn close_file(&mut self) -> Option<Arc<dyn StorageFile>> {
        self.open.take()
    }

    /// Open the file again if it was closed; returns whether it was.
    pub(crate) fn reopen_file(&mut self, storage: &dyn Storage) -> std::io::Result<bool> {
        if self.open.is_some() {
            return Ok(false);
        }
        self.open = Some(storage.open_existing(&self.path)?.into());
        Ok(true)
    }

    /// On close: drop the spare capacity, so the next open knows the file ends cleanly. (A
    /// closed file keeps its spare zeros; the next open cuts them as after a crash.)
    pub fn trim(&mut self) -> std::io::Result<()> {
        let Some(file) = &self.open else {
            return Ok(());
        };
        if self.capacity_bytes > u64::from(self.written_bytes) {
            file.set_len(u64::from(self.written_bytes))?;
            self.capacity_bytes = u64::from(self.written_bytes);
        }
        Ok(())
    }

    /// Make the segment immutable: sync, cut to its data, write its index.
    pub fn seal(self, storage: Arc<dyn Storage>) -> Result<SealedSegment> {
        let io = |e| LogError::io(&self.path, e);
        let file = self.file().map_err(io)?;
        file.sync_data().map_err(io)?;
        file.set_len(u64::from(self.written_bytes)).map_err(io)?;
        file.sync_all().map_err(io)?;
        let index = self.index.read().clone();
        let index_path = self.path.with_extension(INDEX_EXTENSION);
        // The index is derived data: a lost or torn index file is rebuilt, so no fsync here.
        let encoded = index.encode();
        if let Err(error) = storage.write_atomically(&index_path, &encoded, AtomicWrite::unsynced())
        {
            tracing::warn!(segment = %self.path.display(), %error, "index not written");
        }
        let bytes = file.map(u64::from(self.written_bytes)).map_err(io)?;
        Ok(SealedSegment::with_loaded(
            storage,
            self.path,
            LoadedSegment {
                bytes,
                read_end: index.summary.data_bytes,
                index,
            },
        ))
    }
}
