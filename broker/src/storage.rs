//! [`CountingStorage`]: the log's file storage with counters of fsync-family calls and a
//! histogram of how long each took, so `/metrics` can show how often the log really syncs
//! (group commit makes that far fewer than writes) and what a sync costs. Delegates every
//! operation to `strand_log::storage::FileStorage`.
//!
//! The histograms are atomics (no lock on the sync path): one `Instant::now` pair and three
//! atomic adds per sync, which is nothing beside the sync itself.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strand_log::storage::{AtomicWrite, Durability, FileStorage, Storage, StorageFile};
use strand_log::MappedBytes;

/// Upper bounds of the sync duration buckets, in seconds: an fdatasync on a fast SSD takes
/// tens of microseconds, on a busy or rotating disk tens of milliseconds, and a stall more.
pub const SYNC_BUCKETS_S: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Durations of one kind of sync, lock-free.
#[derive(Debug, Default)]
struct SyncDurations {
    /// Count per bucket of [`SYNC_BUCKETS_S`] (not cumulative); one more slot for `+Inf`.
    buckets: [AtomicU64; SYNC_BUCKETS_S.len() + 1],
    sum_ns: AtomicU64,
    count: AtomicU64,
}

impl SyncDurations {
    fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let slot = SYNC_BUCKETS_S
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(SYNC_BUCKETS_S.len());
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(nanos, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> SyncHistogram {
        let mut buckets = [0; SYNC_BUCKETS_S.len() + 1];
        for (out, bucket) in buckets.iter_mut().zip(&self.buckets) {
            *out = bucket.load(Ordering::Relaxed);
        }
        SyncHistogram {
            buckets,
            sum_s: self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9,
            // The buckets' total, not `count`: read one by one while syncs go on, the two
            // could disagree, and a histogram's `+Inf` bucket must equal its count.
            count: buckets.iter().sum(),
        }
    }
}

/// A copy of one kind's sync durations, for rendering.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SyncHistogram {
    /// Count per bucket of [`SYNC_BUCKETS_S`] (not cumulative); the last slot is `+Inf`.
    pub buckets: [u64; SYNC_BUCKETS_S.len() + 1],
    pub sum_s: f64,
    pub count: u64,
}

/// Successful syncs, by kind: how many, and how long each took.
#[derive(Debug, Default)]
pub struct SyncCounters {
    /// `fdatasync` or `fsync` of a segment or index file.
    file: AtomicU64,
    /// `syncfs` of the data file system (one for a commit round over many partitions).
    file_system: AtomicU64,
    /// `fsync` of a directory after a file was created, renamed or removed.
    directory: AtomicU64,
    /// Durations of the three kinds above, in that order, and of whole atomic writes.
    durations: [SyncDurations; 4],
}

/// Which duration histogram a sync goes to (an index into `SyncCounters::durations`).
#[derive(Clone, Copy, Debug)]
enum SyncKind {
    File = 0,
    FileSystem = 1,
    Directory = 2,
    /// A durable atomic file write (temporary file, fsync, rename, directory fsync), timed
    /// as a whole: its two syncs cannot be timed apart from outside `FileStorage`.
    AtomicWrite = 3,
}

impl SyncCounters {
    /// `(kind, count)` for each kind, in a fixed order.
    pub fn by_kind(&self) -> [(&'static str, u64); 3] {
        [
            ("file", self.file.load(Ordering::Relaxed)),
            ("file_system", self.file_system.load(Ordering::Relaxed)),
            ("directory", self.directory.load(Ordering::Relaxed)),
        ]
    }

    /// `(kind, durations)` for each kind, in a fixed order: the three of [`Self::by_kind`],
    /// then `atomic_write` (durable whole-file writes, each timed as one observation; their
    /// file and directory syncs are counted in [`Self::by_kind`]).
    pub fn durations_by_kind(&self) -> [(&'static str, SyncHistogram); 4] {
        let of = |kind: SyncKind| self.durations[kind as usize].snapshot();
        [
            ("file", of(SyncKind::File)),
            ("file_system", of(SyncKind::FileSystem)),
            ("directory", of(SyncKind::Directory)),
            ("atomic_write", of(SyncKind::AtomicWrite)),
        ]
    }

    /// Runs `sync`; if it succeeds, counts it in `counter` and its duration as `kind`.
    fn timed(
        &self,
        counter: &AtomicU64,
        kind: SyncKind,
        sync: impl FnOnce() -> io::Result<()>,
    ) -> io::Result<()> {
        let started = Instant::now();
        let result = sync();
        if result.is_ok() {
            self.durations[kind as usize].observe(started.elapsed());
            counter.fetch_add(1, Ordering::Relaxed);
        }
        result
    }
}

/// [`FileStorage`] that counts syncs into shared [`SyncCounters`].
#[derive(Debug, Clone, Default)]
pub struct CountingStorage {
    counters: Arc<SyncCounters>,
}

impl CountingStorage {
    pub fn new(counters: Arc<SyncCounters>) -> CountingStorage {
        CountingStorage { counters }
    }

    fn wrap(&self, inner: Box<dyn StorageFile>) -> Box<dyn StorageFile> {
        Box::new(CountingFile {
            inner,
            counters: self.counters.clone(),
        })
    }
}

#[derive(Debug)]
struct CountingFile {
    inner: Box<dyn StorageFile>,
    counters: Arc<SyncCounters>,
}

impl StorageFile for CountingFile {
    fn write_all_at(&self, bytes: &[u8], offset: u64) -> io::Result<()> {
        self.inner.write_all_at(bytes, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        let counters = &self.counters;
        counters.timed(&counters.file, SyncKind::File, || self.inner.sync_data())
    }
    fn sync_all(&self) -> io::Result<()> {
        let counters = &self.counters;
        counters.timed(&counters.file, SyncKind::File, || self.inner.sync_all())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn map(&self, len: u64) -> io::Result<MappedBytes> {
        self.inner.map(len)
    }
    fn start_writeback(&self, offset: u64, len: u64) -> io::Result<()> {
        self.inner.start_writeback(offset, len)
    }
}

impl Storage for CountingStorage {
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        FileStorage.create_new(path).map(|file| self.wrap(file))
    }
    fn open_existing(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        FileStorage.open_existing(path).map(|file| self.wrap(file))
    }
    fn sync_file_system(&self, dir: &Path) -> io::Result<()> {
        let counters = &self.counters;
        let sync = || FileStorage.sync_file_system(dir);
        counters.timed(&counters.file_system, SyncKind::FileSystem, sync)
    }
    fn sync_directory(&self, dir: &Path) -> io::Result<()> {
        let counters = &self.counters;
        let sync = || FileStorage.sync_directory(dir);
        counters.timed(&counters.directory, SyncKind::Directory, sync)
    }
    /// A durable atomic write syncs its file and then its directory: one of each is counted,
    /// and the whole write is timed as one `atomic_write`.
    fn write_atomically(&self, path: &Path, bytes: &[u8], how: AtomicWrite) -> io::Result<()> {
        if how.durability != Durability::Synced {
            return FileStorage.write_atomically(path, bytes, how);
        }
        let counters = &self.counters;
        let write = || FileStorage.write_atomically(path, bytes, how);
        let written = counters.timed(&counters.file, SyncKind::AtomicWrite, write);
        if written.is_ok() && path.parent().is_some() {
            counters.directory.fetch_add(1, Ordering::Relaxed);
        }
        written
    }
}

#[cfg(test)]
mod tests {
    use strand_log::{FsyncPolicy, NewRecord, PartitionId, Store, StoreConfig};

    use super::*;

    #[test]
    fn appends_under_fsync_always_are_counted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let counters = Arc::new(SyncCounters::default());
        let mut config = StoreConfig::default();
        config.partition.fsync = FsyncPolicy::Always;
        config.partition.storage = Arc::new(CountingStorage::new(counters.clone()));
        let store = Store::open(dir.path(), config).expect("store");
        let id = PartitionId::new("t/p").expect("id");
        store
            .append(&id, &[NewRecord::new(b"k", b"v")])
            .expect("append");
        let [(_, file), (_, file_system), _] = counters.by_kind();
        assert!(file + file_system >= 1, "{:?}", counters.by_kind());
        // Every counted sync was timed too; an atomic write's file sync as part of the write.
        let [(_, file_times), (_, file_system_times), _, (_, atomic_times)] =
            counters.durations_by_kind();
        assert_eq!(file_times.count + atomic_times.count, file);
        assert_eq!(file_system_times.count, file_system);
        assert!(file_times.sum_s + file_system_times.sum_s > 0.0);
    }

    #[test]
    fn durations_fall_into_their_buckets() {
        let durations = SyncDurations::default();
        durations.observe(Duration::from_micros(50));
        durations.observe(Duration::from_millis(3));
        durations.observe(Duration::from_secs(9));
        let histogram = durations.snapshot();
        assert_eq!(histogram.count, 3);
        assert_eq!(histogram.buckets[0], 1, "50 us is within the first bound");
        let three_ms = SYNC_BUCKETS_S
            .iter()
            .position(|&b| b == 0.005)
            .expect("5 ms");
        assert_eq!(histogram.buckets[three_ms], 1);
        assert_eq!(histogram.buckets[SYNC_BUCKETS_S.len()], 1, "+Inf");
        assert!(
            (histogram.sum_s - 9.00305).abs() < 1e-9,
            "{}",
            histogram.sum_s
        );
    }
}
