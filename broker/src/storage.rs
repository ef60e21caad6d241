//! [`CountingStorage`]: the log's file storage with counters of fsync-family calls, so
//! `/metrics` can show how often the log really syncs (group commit makes that far fewer
//! than writes). Delegates every operation to `strand_log::storage::FileStorage`.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use strand_log::storage::{AtomicWrite, Durability, FileStorage, Storage, StorageFile};
use strand_log::MappedBytes;

/// Successful syncs, by kind.
#[derive(Debug, Default)]
pub struct SyncCounters {
    /// `fdatasync` or `fsync` of a segment or index file.
    file: AtomicU64,
    /// `syncfs` of the data file system (one for a commit round over many partitions).
    file_system: AtomicU64,
    /// `fsync` of a directory after a file was created, renamed or removed.
    directory: AtomicU64,
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

fn counted(counter: &AtomicU64, result: io::Result<()>) -> io::Result<()> {
    if result.is_ok() {
        counter.fetch_add(1, Ordering::Relaxed);
    }
    result
}

impl StorageFile for CountingFile {
    fn write_all_at(&self, bytes: &[u8], offset: u64) -> io::Result<()> {
        self.inner.write_all_at(bytes, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        counted(&self.counters.file, self.inner.sync_data())
    }
    fn sync_all(&self) -> io::Result<()> {
        counted(&self.counters.file, self.inner.sync_all())
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
        counted(
            &self.counters.file_system,
            FileStorage.sync_file_system(dir),
        )
    }
    fn sync_directory(&self, dir: &Path) -> io::Result<()> {
        counted(&self.counters.directory, FileStorage.sync_directory(dir))
    }
    /// A durable atomic write syncs its file and then its directory: one of each is counted.
    fn write_atomically(&self, path: &Path, bytes: &[u8], how: AtomicWrite) -> io::Result<()> {
        let written = FileStorage.write_atomically(path, bytes, how);
        if written.is_ok() && how.durability == Durability::Synced {
            self.counters.file.fetch_add(1, Ordering::Relaxed);
            if path.parent().is_some() {
                self.counters.directory.fetch_add(1, Ordering::Relaxed);
            }
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
    }
}
