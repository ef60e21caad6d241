//! A [`Storage`] that delegates to [`FileStorage`] and times every write and sync, so the
//! `fsync=always` phases can say how many commit rounds ran and how much of the wall time the
//! leader spent in I/O. Two clock reads per call: negligible next to a write or fdatasync.
//!
//! With `zero_fill_growth` it also answers a what-if: the log grows its active file with
//! `set_len`, leaving a hole, so every commit round allocates blocks and its fdatasync must
//! also commit file-system metadata. Growing by writing zeros instead (synced before use) lets
//! a round's fdatasync flush data only. The zeros are written inside the measured time.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use strand_log::storage::{AtomicWrite, FileStorage, Storage, StorageFile};
use strand_log::MappedBytes;

/// Cumulative counters; [`IoTimes::totals`] reads them.
#[derive(Debug, Default)]
pub struct IoTimes {
    writes: AtomicU64,
    write_bytes: AtomicU64,
    write_ns: AtomicU64,
    data_syncs: AtomicU64,
    data_sync_ns: AtomicU64,
    other_syncs: AtomicU64,
    other_sync_ns: AtomicU64,
}

/// A reading of [`IoTimes`].
#[derive(Clone, Copy, Debug, Default)]
pub struct IoTotals {
    pub writes: u64,
    pub write_bytes: u64,
    pub write_ns: u64,
    /// fdatasyncs: one per commit round under `fsync=always`.
    pub data_syncs: u64,
    pub data_sync_ns: u64,
    /// fsyncs and syncfs (segment creation and sealing, shared syncs).
    pub other_syncs: u64,
    pub other_sync_ns: u64,
}

impl IoTimes {
    pub fn totals(&self) -> IoTotals {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        IoTotals {
            writes: load(&self.writes),
            write_bytes: load(&self.write_bytes),
            write_ns: load(&self.write_ns),
            data_syncs: load(&self.data_syncs),
            data_sync_ns: load(&self.data_sync_ns),
            other_syncs: load(&self.other_syncs),
            other_sync_ns: load(&self.other_sync_ns),
        }
    }
}

impl IoTotals {
    pub fn since(self, before: IoTotals) -> IoTotals {
        IoTotals {
            writes: self.writes - before.writes,
            write_bytes: self.write_bytes - before.write_bytes,
            write_ns: self.write_ns - before.write_ns,
            data_syncs: self.data_syncs - before.data_syncs,
            data_sync_ns: self.data_sync_ns - before.data_sync_ns,
            other_syncs: self.other_syncs - before.other_syncs,
            other_sync_ns: self.other_sync_ns - before.other_sync_ns,
        }
    }

    /// Nanoseconds spent in writes and syncs of any kind.
    pub fn busy_ns(&self) -> u64 {
        self.write_ns + self.data_sync_ns + self.other_sync_ns
    }
}

fn timed<T>(calls: &AtomicU64, ns: &AtomicU64, op: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = op();
    ns.fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
    calls.fetch_add(1, Ordering::Relaxed);
    out
}

#[derive(Debug, Clone, Default)]
pub struct TimedStorage {
    pub times: Arc<IoTimes>,
    /// Grow files by writing zeros and syncing them, instead of leaving a hole.
    pub zero_fill_growth: bool,
}

#[derive(Debug)]
struct TimedFile {
    inner: Box<dyn StorageFile>,
    times: Arc<IoTimes>,
    zero_fill_growth: bool,
}

const ZERO_CHUNK_BYTES: usize = 1 << 20;

impl TimedFile {
    /// Extend the file from `from` to `to` with written (not sparse) zeros, durably.
    fn zero_fill(&self, from: u64, to: u64) -> io::Result<()> {
        let zeros = vec![0u8; ZERO_CHUNK_BYTES];
        let mut at = from;
        while at < to {
            let chunk = (to - at).min(ZERO_CHUNK_BYTES as u64) as usize;
            self.inner.write_all_at(&zeros[..chunk], at)?;
            at += chunk as u64;
        }
        self.inner.sync_data()
    }
}

impl StorageFile for TimedFile {
    fn write_all_at(&self, bytes: &[u8], offset: u64) -> io::Result<()> {
        let t = &self.times;
        t.write_bytes
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        timed(&t.writes, &t.write_ns, || {
            self.inner.write_all_at(bytes, offset)
        })
    }
    fn sync_data(&self) -> io::Result<()> {
        let t = &self.times;
        timed(&t.data_syncs, &t.data_sync_ns, || self.inner.sync_data())
    }
    fn sync_all(&self) -> io::Result<()> {
        let t = &self.times;
        timed(&t.other_syncs, &t.other_sync_ns, || self.inner.sync_all())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        if self.zero_fill_growth {
            let current = self.inner.len()?;
            if len > current {
                return self.zero_fill(current, len);
            }
        }
        self.inner.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn map(&self, len: u64) -> io::Result<MappedBytes> {
        self.inner.map(len)
    }
}

impl Storage for TimedStorage {
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let inner = FileStorage.create_new(path)?;
        Ok(Box::new(TimedFile {
            inner,
            times: self.times.clone(),
            zero_fill_growth: self.zero_fill_growth,
        }))
    }
    fn open_existing(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let inner = FileStorage.open_existing(path)?;
        Ok(Box::new(TimedFile {
            inner,
            times: self.times.clone(),
            zero_fill_growth: self.zero_fill_growth,
        }))
    }
    fn sync_file_system(&self, dir: &Path) -> io::Result<()> {
        let t = &self.times;
        timed(&t.other_syncs, &t.other_sync_ns, || {
            FileStorage.sync_file_system(dir)
        })
    }
    // Not timed: the `_seq` lease and index writes are off the measured append path.
    fn write_atomically(&self, path: &Path, bytes: &[u8], how: AtomicWrite) -> io::Result<()> {
        FileStorage.write_atomically(path, bytes, how)
    }
}
