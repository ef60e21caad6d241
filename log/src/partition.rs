//! `Partition`: one directory of segments, its writer state, and the view readers see.
//!
//! The writer state sits behind a mutex that only the commit leader (`commit.rs`) and the
//! maintenance jobs take. Readers never take it: each commit publishes an immutable
//! [`PartitionView`] (an `Arc` swap), and a reader clones that `Arc` and reads from maps.

use parking_lot::{Mutex, MutexGuard, RwLock};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::commit::{CommitQueue, Committed};
use crate::config::PartitionConfig;
use crate::error::{LogError, Result};
use crate::holds::ReadHolds;
use crate::limits::ZEROS_CHUNK_BYTES;
use crate::meta::ResumeFloors;
use crate::reader::{ActiveRef, PartitionView, ReadSnapshot};
use crate::record::NewRecord;
use crate::segment::{self, ActiveSegment, Recovered, SealedSegment, SEGMENT_HEADER_BYTES};
use crate::seq::{Seq, SeqRange};
use crate::storage::Storage;

const HEALTHY: u64 = u64::MAX;

/// The writer's side of a partition.
#[derive(Debug)]
pub(crate) struct WriterState {
    /// Shared with published views; replaced (copy on write) only when segments change.
    pub sealed: Arc<Vec<Arc<SealedSegment>>>,
    pub active: Option<ActiveSegment>,
}

/// One append-only log: a directory of segments with one writer and any number of readers.
#[derive(Debug)]
pub struct Partition {
    pub(crate) dir: PathBuf,
    pub(crate) segment_bytes_max: u64,
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) queue: Arc<CommitQueue>,
    pub(crate) writer: Mutex<WriterState>,
    published: RwLock<Arc<PartitionView>>,
    /// Commit round whose I/O failed, or `HEALTHY`.
    poisoned_round: AtomicU64,
    poison_cause: Mutex<Option<String>>,
    /// The resume floors, as stored in `partition.meta`.
    pub(crate) meta: Mutex<ResumeFloors>,
    /// Serialises retention and compaction of this partition.
    pub(crate) maintenance: Mutex<()>,
    /// Segments taken out of the view whose files a failed removal left on disk; the next
    /// retention or compaction removes them first (`retention.rs`).
    pub(crate) unremoved: Mutex<Vec<Arc<SealedSegment>>>,
    /// Written but not yet fdatasync'd (policies `interval` and `never`).
    pub(crate) unsynced: AtomicBool,
    /// What readers following the partition still need; compaction keeps it (`holds.rs`).
    pub(crate) holds: ReadHolds,
    /// The highest `_seq` queued for this partition (written or not), under the commit
    /// queue's lock: a replicated batch must start above it.
    pub(crate) last_enqueued: AtomicU64,
}

impl Partition {
    /// Open (creating if needed) a partition with its own commit queue and `_seq` generator.
    pub fn open(dir: impl AsRef<Path>, config: PartitionConfig) -> Result<Arc<Partition>> {
        config.validate()?;
        let queue = CommitQueue::standalone(&config);
        let partition = Partition::open_with_queue(dir.as_ref(), &config, queue.clone())?;
        queue.observe(partition.floor_seq());
        Ok(partition)
    }

    pub(crate) fn open_with_queue(
        dir: &Path,
        config: &PartitionConfig,
        queue: Arc<CommitQueue>,
    ) -> Result<Arc<Partition>> {
        let storage = config.storage.clone();
        storage
            .create_dir_all(dir)
            .map_err(|e| LogError::io(dir, e))?;
        let segments = list_segments(storage.as_ref(), dir)?;
        let mut sealed = Vec::with_capacity(segments.len());
        let mut active = None;
        for (i, &(first_seq, file_bytes)) in segments.iter().enumerate() {
            let path = segment::segment_path(dir, first_seq);
            if i + 1 < segments.len() {
                let segment = SealedSegment::new(storage.clone(), path, first_seq, file_bytes);
                sealed.push(Arc::new(segment));
            } else {
                match recover_active(storage.clone(), path, first_seq)? {
                    Newest::Active(segment) => active = Some(segment),
                    Newest::Sealed(segment) => sealed.push(Arc::new(segment)),
                    Newest::Removed => {}
                }
            }
        }
        let meta = load_meta(dir, &sealed)?;
        let writer = WriterState {
            sealed: Arc::new(sealed),
            active,
        };
        let view = Arc::new(view_of(&writer));
        let partition = Arc::new(Partition {
            dir: dir.to_path_buf(),
            segment_bytes_max: config.segment_bytes_max,
            storage,
            queue,
            writer: Mutex::new(writer),
            published: RwLock::new(view),
            poisoned_round: AtomicU64::new(HEALTHY),
            poison_cause: Mutex::new(None),
            meta: Mutex::new(meta),
            maintenance: Mutex::new(()),
            unremoved: Mutex::new(Vec::new()),
            unsynced: AtomicBool::new(false),
            holds: ReadHolds::default(),
            last_enqueued: AtomicU64::new(0),
        });
        let floor = partition.floor_seq();
        partition.last_enqueued.store(floor.0, Ordering::Release);
        Ok(partition)
    }

    /// The partition's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Append a batch; returns once it is durable under the fsync policy. The batch lands in
    /// one segment, in order, with increasing `_seq`.
    pub fn append(self: &Arc<Self>, records: &[NewRecord<'_>]) -> Result<SeqRange> {
        CommitQueue::append(&self.queue.clone(), self, records, None)
    }

    /// Append records with the `_seq`s and times another node issued for them (a replica
    /// applying its cluster group's log), so every replica holds the same records at the same
    /// `_seq`. Each `_seq` must be above the partition's last record and the one before it
    /// (else `InvalidBatch`, nothing written); the store's generator is raised past them, so
    /// this node never issues a `_seq` at or below them afterwards. Returns once durable.
    pub fn append_replicated(
        self: &Arc<Self>,
        records: &[crate::ReplicatedRecord<'_>],
    ) -> Result<SeqRange> {
        let (round, range) = self.queue.submit_replicated(self, records)?;
        self.queue.wait(self, round)?;
        Ok(range)
    }

    /// [`Partition::append`] that also pushes each record's `_seq` onto `seqs` (the ids of a
    /// batch increase but are not consecutive integers). On error `seqs` may hold ids that were
    /// issued but not committed.
    pub fn append_with_seqs(
        self: &Arc<Self>,
        records: &[NewRecord<'_>],
        seqs: &mut Vec<Seq>,
    ) -> Result<SeqRange> {
        CommitQueue::append(&self.queue.clone(), self, records, Some(seqs))
    }

    /// The first half of [`Partition::append_with_seqs`]: issue the `_seq`s and fix the batch's
    /// place in the partition, without waiting for durability. A caller that must order
    /// batches under its own lock (a primary-key check) submits under it and waits after
    /// releasing it, so concurrent callers still share one fsync. Dropping the ticket waits.
    pub fn submit_with_seqs(
        self: &Arc<Self>,
        records: &[NewRecord<'_>],
        seqs: &mut Vec<Seq>,
    ) -> Result<AppendTicket> {
        let (round, range) = self.queue.submit(self, records, Some(seqs))?;
        Ok(AppendTicket {
            partition: self.clone(),
            round,
            range,
            waited: false,
        })
    }

    /// [`Partition::submit_with_seqs`] for a caller that needs only the batch's range.
    pub fn submit(self: &Arc<Self>, records: &[NewRecord<'_>]) -> Result<AppendTicket> {
        let (round, range) = self.queue.submit(self, records, None)?;
        Ok(AppendTicket {
            partition: self.clone(),
            round,
            range,
            waited: false,
        })
    }

    /// A [`Tick`]: a `_seq` of the store's order given to no record (readers stamp what
    /// happens between records with it, such as time passing).
    pub fn tick(&self) -> Result<Tick> {
        let (seq, round) = self.queue.tick()?;
        Ok(Tick { seq, round })
    }

    /// Whether every record with a `_seq` below `tick`'s, in any partition of the store, is
    /// committed and published: a snapshot taken after this is true holds all of this
    /// partition's records below it.
    pub fn tick_settled(&self, tick: &Tick) -> bool {
        self.queue.is_completed(tick.round)
    }

    /// A consistent, lock-free view of what is committed now.
    pub fn snapshot(&self) -> ReadSnapshot {
        let view = self.published.read().clone();
        ReadSnapshot::new(view, self.dir.clone())
    }

    /// `_seq` of the newest committed record, or `Seq::ZERO` when the partition is empty.
    pub fn last_seq(&self) -> Seq {
        self.published.read().last_seq
    }

    /// A reader that has seen everything up to `S >= lowest_resumable_seq()` can resume by
    /// reading after `S`: no delete is missing and every previous version a record read names
    /// is there (see [`ResumeFloors`]); below it, retention or compaction removed history.
    pub fn lowest_resumable_seq(&self) -> Seq {
        self.meta.lock().lowest_resumable_seq
    }

    /// A reader at `S >= lowest_keyed_catch_up_seq()` can still learn the newest version of
    /// every key changed after `S` (deletes included) by reading after `S`; see
    /// [`ResumeFloors`]. Never above [`Partition::lowest_resumable_seq`].
    pub fn lowest_keyed_catch_up_seq(&self) -> Seq {
        self.meta.lock().lowest_keyed_catch_up_seq
    }

    /// Both floors, read together (a resume decision compares a cursor with both).
    pub fn resume_floors(&self) -> ResumeFloors {
        *self.meta.lock()
    }

    /// Whether a failed write or sync (or a panic while writing) made the partition refuse
    /// appends until it is reopened.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned_round.load(Ordering::Acquire) != HEALTHY
    }

    pub(crate) fn poisoned_in_or_before(&self, round: u64) -> bool {
        self.poisoned_round.load(Ordering::Acquire) <= round
    }

    /// Refuse appends from now on, and fail the waiters of `round` and later rounds: after a
    /// failed write or sync, or a panic while writing, what reached the files is unknown.
    pub(crate) fn poison(&self, round: u64, cause: &dyn std::fmt::Display) {
        tracing::error!(partition = %self.dir.display(), %cause, "partition poisoned");
        let mut first_cause = self.poison_cause.lock();
        first_cause.get_or_insert_with(|| cause.to_string());
        self.poisoned_round.fetch_min(round, Ordering::AcqRel);
    }

    /// `Poisoned`, carrying the first failure so callers can tell a full disk from a bad one.
    pub(crate) fn poisoned_error(&self) -> LogError {
        let cause = self.poison_cause.lock();
        LogError::Poisoned {
            path: self.dir.clone(),
            cause: cause.clone().unwrap_or_default(),
        }
    }

    /// Highest `_seq` this partition may have issued (records, or a segment name).
    pub(crate) fn floor_seq(&self) -> Seq {
        let writer = self.lock_writer();
        let active = writer
            .active
            .as_ref()
            .map(|a| a.first_seq.max(a.last_seq()));
        // Without an active segment (its creation was torn and it was removed on open) the
        // newest sealed segment's records lie above its name: its index says how far.
        let sealed = || {
            let named = writer.sealed.last().map_or(Seq::ZERO, |s| s.first_seq);
            named.max(last_sealed_seq(&writer.sealed))
        };
        active.unwrap_or_else(sealed)
    }

    /// The sealed segments readers see now, without waiting for the writer.
    pub(crate) fn published_sealed(&self) -> Arc<Vec<Arc<SealedSegment>>> {
        self.published.read().sealed.clone()
    }

    pub(crate) fn lock_writer(&self) -> MutexGuard<'_, WriterState> {
        self.writer.lock()
    }

    /// Make the writer's current state visible to new snapshots.
    pub(crate) fn publish(&self, writer: &WriterState) {
        let view = Arc::new(view_of(writer));
        *self.published.write() = view;
    }

    /// fdatasync the active segment if appends since the last sync were not synced.
    pub fn sync(&self) -> Result<()> {
        if !self.unsynced.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        // Only the handle is taken under the writer lock: appends go on during the fdatasync
        // (a sealed segment was synced when it was sealed; later appends set `unsynced` again).
        let handle = {
            let writer = self.lock_writer();
            writer
                .active
                .as_ref()
                .and_then(|a| Some((a.path.clone(), a.file_handle()?)))
        };
        if let Some((path, file)) = handle {
            if let Err(e) = file.sync_data() {
                let error = LogError::io(&path, e);
                self.poison(0, &error);
                return Err(error);
            }
        }
        Ok(())
    }

    /// Check every record of every segment (CRC, order). For operators and tests.
    pub fn verify(&self) -> Result<u64> {
        let snapshot = self.snapshot();
        let mut records = 0;
        for record in snapshot.records(crate::ReadFrom::Earliest) {
            record?;
            records += 1;
        }
        Ok(records)
    }
}

/// A `_seq` issued to no record ([`Partition::tick`]) and the commit round that settles it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// The `_seq`: above every record issued before, below every record issued after.
    pub seq: Seq,
    round: u64,
}

/// A submitted batch: [`AppendTicket::wait`] returns once it is durable under the policy.
#[derive(Debug)]
pub struct AppendTicket {
    partition: Arc<Partition>,
    round: u64,
    range: SeqRange,
    waited: bool,
}

impl AppendTicket {
    /// The `_seq` range the batch got; it is durable (and visible) once [`AppendTicket::wait`]
    /// returns `Ok`.
    pub fn range(&self) -> SeqRange {
        self.range
    }

    /// Wait until the batch is durable under the fsync policy (or its round failed).
    pub fn wait(mut self) -> Result<SeqRange> {
        self.waited = true;
        self.partition.queue.wait(&self.partition, self.round)?;
        Ok(self.range)
    }

    /// [`AppendTicket::wait`] as a future, for callers on an async runtime: no thread waits;
    /// the round is led by the store's commit thread unless another appender leads it.
    /// Dropping the future before it resolves leaves the batch queued (it still commits).
    pub fn committed(mut self) -> Committed {
        self.waited = true;
        Committed {
            partition: self.partition.clone(),
            round: self.round,
            range: self.range,
            done: false,
        }
    }
}

impl Drop for AppendTicket {
    fn drop(&mut self) {
        // An abandoned batch is still queued; someone must lead its round.
        if !self.waited {
            let _ = self.partition.queue.wait(&self.partition, self.round);
        }
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        if let Err(error) = self.sync() {
            tracing::error!(partition = %self.dir.display(), %error, "final sync failed");
        }
        if self.is_poisoned() {
            return;
        }
        if let Some(active) = self.lock_writer().active.as_mut() {
            if let Err(error) = active.trim() {
                tracing::warn!(segment = %active.path.display(), %error, "trim on close failed");
            }
        }
    }
}

/// Build the readers' view of the writer state: a few `Arc` clones, whatever the history length.
pub(crate) fn view_of(writer: &WriterState) -> PartitionView {
    let active = writer.active.as_ref().map(|active| {
        let (map, index) = active.reader_parts();
        ActiveRef {
            first_seq: active.first_seq,
            map,
            index,
            committed_bytes: active.written_bytes(),
        }
    });
    let active_last = writer.active.as_ref().map_or(Seq::ZERO, |a| a.last_seq());
    let last_seq = match active_last {
        Seq::ZERO => last_sealed_seq(&writer.sealed),
        seq => seq,
    };
    PartitionView {
        sealed: writer.sealed.clone(),
        active,
        last_seq,
    }
}

fn last_sealed_seq(sealed: &[Arc<SealedSegment>]) -> Seq {
    for segment in sealed.iter().rev() {
        match segment.load() {
            Ok(loaded) if loaded.index.summary.records > 0 => return loaded.index.summary.last_seq,
            Ok(_) => continue,
            Err(_) => return segment.first_seq,
        }
    }
    Seq::ZERO
}

/// Segment first `_seq`s and file sizes, in order; leftover temporary files of interrupted
/// writes are removed.
fn list_segments(storage: &dyn Storage, dir: &Path) -> Result<Vec<(Seq, u64)>> {
    let entries = std::fs::read_dir(dir).map_err(|e| LogError::io(dir, e))?;
    let mut segments = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| LogError::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(".tmp") {
            let _ = storage.remove_file(&entry.path());
        } else if let Some(seq) = segment::parse_segment_name(name) {
            let metadata = entry
                .metadata()
                .map_err(|e| LogError::io(entry.path(), e))?;
            segments.push((seq, metadata.len()));
        }
    }
    segments.sort_unstable();
    Ok(segments)
}

/// What became of the newest segment at open.
enum Newest {
    /// Appends go on in it.
    Active(ActiveSegment),
    /// Damaged in the middle: kept read-only; the next append starts a new segment.
    Sealed(SealedSegment),
    /// Its creation was torn; removed.
    Removed,
}

/// Recover the newest segment. A segment whose header never reached the disk (a crash while it
/// was being created, before any record could be acknowledged in it) is removed. A zeroed
/// header in front of records is damage, not a torn creation: it is reported, not removed.
/// Damage with intact records after it is kept as a sealed segment, never cut.
fn recover_active(storage: Arc<dyn Storage>, path: PathBuf, first_seq: Seq) -> Result<Newest> {
    let mut header = Vec::with_capacity(SEGMENT_HEADER_BYTES as usize);
    let io = |e| LogError::io(&path, e);
    let mut file = std::fs::File::open(&path).map_err(io)?;
    (&mut file)
        .take(u64::from(SEGMENT_HEADER_BYTES))
        .read_to_end(&mut header)
        .map_err(io)?;
    let short = header.len() < SEGMENT_HEADER_BYTES as usize;
    if short || (header.iter().all(|&b| b == 0) && only_zeros_follow(&mut file).map_err(io)?) {
        tracing::warn!(segment = %path.display(), "removing segment whose creation was torn");
        storage
            .remove_file(&path)
            .map_err(|e| LogError::io(&path, e))?;
        return Ok(Newest::Removed);
    }
    match ActiveSegment::recover(storage.as_ref(), path.clone(), first_seq)? {
        Recovered::Active { segment, cut_bytes } => {
            if cut_bytes > 0 {
                tracing::warn!(segment = %segment.path.display(), cut_bytes, "recovered active segment");
            }
            Ok(Newest::Active(segment))
        }
        Recovered::Damaged { data_bytes, .. } => Ok(Newest::Sealed(SealedSegment::new(
            storage, path, first_seq, data_bytes,
        ))),
    }
}

/// Whether the rest of `file`, from its current position, is all zero bytes.
fn only_zeros_follow(file: &mut std::fs::File) -> std::io::Result<bool> {
    let mut buffer = vec![0u8; ZEROS_CHUNK_BYTES];
    loop {
        let read = match file.read(&mut buffer) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            result => result?,
        };
        if read == 0 {
            return Ok(true);
        }
        if buffer[..read].iter().any(|&b| b != 0) {
            return Ok(false);
        }
    }
}

fn load_meta(dir: &Path, sealed: &[Arc<SealedSegment>]) -> Result<ResumeFloors> {
    match ResumeFloors::load(dir)? {
        None => Ok(ResumeFloors::default()),
        Some(Some(floors)) => Ok(floors),
        Some(None) => {
            // Unreadable: assume every sealed segment may have lost history.
            let seq = last_sealed_seq(sealed);
            tracing::warn!(partition = %dir.display(), floors = %seq,
                "partition.meta unreadable; assuming sealed history is incomplete");
            Ok(ResumeFloors::both(seq))
        }
    }
}
