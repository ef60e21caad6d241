//! The narrow I/O surface the log writes through: positional write, sync, truncate, map.
//!
//! Everything the log persists goes through [`Storage`] and [`StorageFile`], so tests can inject
//! a failed fsync, a short write, a full disk or a panic ([`FaultyStorage`]) and check that the
//! partition poisons itself instead of guessing what reached the disk.

use parking_lot::Mutex;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::sys::MappedBytes;

/// One open file of a partition.
// `len` reports an I/O result, so an `is_empty` beside it would only restate it.
#[allow(clippy::len_without_is_empty)]
pub trait StorageFile: Send + Sync + fmt::Debug {
    fn write_all_at(&self, bytes: &[u8], offset: u64) -> io::Result<()>;
    /// `fdatasync`: data and the metadata needed to read it back.
    fn sync_data(&self) -> io::Result<()>;
    /// `fsync`: everything, including size changes after a truncate.
    fn sync_all(&self) -> io::Result<()>;
    fn set_len(&self, len: u64) -> io::Result<()>;
    fn len(&self) -> io::Result<u64>;
    fn map(&self, len: u64) -> io::Result<MappedBytes>;
    /// Start writing `len` bytes from `offset` back to the disk without waiting for it (Linux
    /// `sync_file_range(SYNC_FILE_RANGE_WRITE)`), so that a later fdatasync has little left to
    /// do. A hint: nothing is durable because of it, and the default does nothing.
    fn start_writeback(&self, offset: u64, len: u64) -> io::Result<()> {
        let _ = (offset, len);
        Ok(())
    }
}

/// Opens files; the seam where tests swap in faults.
pub trait Storage: Send + Sync + fmt::Debug {
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn StorageFile>>;
    fn open_existing(&self, path: &Path) -> io::Result<Box<dyn StorageFile>>;
    /// Make everything written to the file system holding `dir` durable (`syncfs`): one call
    /// instead of one fdatasync per file when a commit round touched many partitions.
    fn sync_file_system(&self, dir: &Path) -> io::Result<()>;
    /// Make the entries of `dir` (files created, renamed or removed) durable.
    fn sync_directory(&self, dir: &Path) -> io::Result<()> {
        sync_dir(dir)
    }
}

/// Plain files on the local file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct FileStorage;

#[derive(Debug)]
struct PlainFile(File);

impl StorageFile for PlainFile {
    fn write_all_at(&self, bytes: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(bytes, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn sync_all(&self) -> io::Result<()> {
        self.0.sync_all()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn map(&self, len: u64) -> io::Result<MappedBytes> {
        MappedBytes::map(&self.0, len)
    }
    #[cfg(target_os = "linux")]
    fn start_writeback(&self, offset: u64, len: u64) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
            return Ok(());
        };
        // SAFETY: a plain system call on a descriptor this file owns; no memory is passed.
        let done = unsafe {
            libc::sync_file_range(self.0.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
        };
        match done {
            0 => Ok(()),
            _ => Err(io::Error::last_os_error()),
        }
    }
}

impl Storage for FileStorage {
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        Ok(Box::new(PlainFile(file)))
    }
    fn open_existing(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Box::new(PlainFile(file)))
    }
    fn sync_file_system(&self, dir: &Path) -> io::Result<()> {
        crate::sys::syncfs(&File::open(dir)?)
    }
}

/// Switches a test flips to make the next operations fail, and counters of what was done.
/// The switches apply to every file, or only to files under [`Faults::only_under`] once set.
#[derive(Debug, Default)]
pub struct Faults {
    pub fail_sync: AtomicBool,
    pub fail_write: AtomicBool,
    /// Writes land only their first half, then report "no space left".
    pub short_write: AtomicBool,
    /// Syncs (fdatasync, fsync, syncfs) report "no space left" (ENOSPC) without syncing, as
    /// a file system that allocates at writeback may.
    pub full_sync: AtomicBool,
    /// Like `RLIMIT_FSIZE` (0: off): a write past this many bytes of a file lands the part
    /// below the limit, then reports "file too large" (EFBIG).
    pub file_bytes_max: AtomicU64,
    /// Writes panic before writing anything: a bug in the commit path, injected from below.
    pub panic_on_write: AtomicBool,
    /// Syncs (fdatasync, fsync, syncfs) panic before syncing.
    pub panic_on_sync: AtomicBool,
    /// Every sync first sleeps this long (to make concurrent appenders pile up in tests).
    pub sync_delay_ms: AtomicU64,
    /// Successful per-file syncs (fdatasync or fsync).
    pub file_syncs: AtomicU64,
    /// Successful file-system syncs (`syncfs`).
    pub file_system_syncs: AtomicU64,
    /// When set, the switches above apply only to files in this directory (or below it), and a
    /// `syncfs` only when it is asked for this directory; other files work normally.
    target_dir: Mutex<Option<PathBuf>>,
}

/// [`FileStorage`] with injectable failures, for tests of poisoning and error paths.
#[derive(Debug, Clone, Default)]
pub struct FaultyStorage {
    pub faults: Arc<Faults>,
}

#[derive(Debug)]
struct FaultyFile {
    inner: PlainFile,
    path: PathBuf,
    faults: Arc<Faults>,
}

impl Faults {
    /// Limit the switches to files under `dir` (`None`: every file again).
    pub fn only_under(&self, dir: Option<&Path>) {
        *self.target_dir.lock() = dir.map(Path::to_path_buf);
    }

    fn applies_to(&self, path: &Path) -> bool {
        match &*self.target_dir.lock() {
            Some(dir) => path.starts_with(dir),
            None => true,
        }
    }

    /// Whether switch `on` is set and applies to `path`.
    fn fires(&self, on: &AtomicBool, path: &Path) -> bool {
        on.load(Ordering::SeqCst) && self.applies_to(path)
    }

    fn before_sync(&self, what: &str, path: &Path) -> io::Result<()> {
        let delay_ms = self.sync_delay_ms.load(Ordering::SeqCst);
        if delay_ms > 0 {
            std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        }
        if self.fires(&self.panic_on_sync, path) {
            panic!("injected panic in {what} of {}", path.display());
        }
        if self.fires(&self.fail_sync, path) {
            return Err(injected(what));
        }
        if self.fires(&self.full_sync, path) {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        Ok(())
    }
}

fn injected(what: &str) -> io::Error {
    io::Error::other(format!("injected {what} failure"))
}

impl StorageFile for FaultyFile {
    fn write_all_at(&self, bytes: &[u8], offset: u64) -> io::Result<()> {
        let faults = &self.faults;
        if faults.fires(&faults.panic_on_write, &self.path) {
            panic!("injected panic in write to {}", self.path.display());
        }
        if faults.fires(&faults.fail_write, &self.path) {
            return Err(injected("write"));
        }
        if faults.fires(&faults.short_write, &self.path) {
            self.inner.write_all_at(&bytes[..bytes.len() / 2], offset)?;
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "injected full disk",
            ));
        }
        let limit = faults.file_bytes_max.load(Ordering::SeqCst);
        let end = offset + bytes.len() as u64;
        if limit > 0 && end > limit && faults.applies_to(&self.path) {
            let below = limit.saturating_sub(offset).min(bytes.len() as u64) as usize;
            self.inner.write_all_at(&bytes[..below], offset)?;
            return Err(io::Error::from_raw_os_error(libc::EFBIG));
        }
        self.inner.write_all_at(bytes, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.faults.before_sync("fdatasync", &self.path)?;
        self.inner.sync_data()?;
        self.faults.file_syncs.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn sync_all(&self) -> io::Result<()> {
        self.faults.before_sync("fsync", &self.path)?;
        self.inner.sync_all()?;
        self.faults.file_syncs.fetch_add(1, Ordering::SeqCst);
        Ok(())
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

impl Storage for FaultyStorage {
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let inner = open_plain(path, true)?;
        Ok(Box::new(FaultyFile {
            inner,
            path: path.to_path_buf(),
            faults: self.faults.clone(),
        }))
    }
    fn open_existing(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let inner = open_plain(path, false)?;
        Ok(Box::new(FaultyFile {
            inner,
            path: path.to_path_buf(),
            faults: self.faults.clone(),
        }))
    }
    fn sync_file_system(&self, dir: &Path) -> io::Result<()> {
        self.faults.before_sync("syncfs", dir)?;
        FileStorage.sync_file_system(dir)?;
        self.faults.file_system_syncs.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

fn open_plain(path: &Path, create: bool) -> io::Result<PlainFile> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(create)
        .open(path)?;
    Ok(PlainFile(file))
}

/// Make a directory entry (a created, renamed or removed file) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Replace `path` atomically with `bytes`: write a temporary file, fsync it, rename, fsync dir.
pub fn write_atomically(path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        file.write_all_at(bytes, 0)?;
        if durable {
            file.sync_all()?;
        }
    }
    std::fs::rename(&tmp, path)?;
    if durable {
        if let Some(dir) = path.parent() {
            sync_dir(dir)?;
        }
    }
    Ok(())
}
