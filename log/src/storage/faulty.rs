//! [`FaultyStorage`]: [`FileStorage`] with switches a test flips to make the next operations
//! fail or panic, and counters of what was done, so every path that persists can be tested
//! for what it does when the disk says no.

use parking_lot::Mutex;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use super::{
    open_plain, temporary_path, write_temporary, AtomicWrite, FileStorage, PlainFile, Storage,
    StorageFile,
};
use crate::sys::MappedBytes;

/// Switches a test flips to make the next operations fail, and counters of what was done.
/// The switches apply to every file, or only to files under [`Faults::only_under`] once set.
#[derive(Debug, Default)]
pub struct Faults {
    /// Syncs (fdatasync, fsync, syncfs) fail with an I/O error without syncing.
    pub fail_sync: AtomicBool,
    /// Writes fail with an I/O error before writing anything.
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
    /// Atomic whole-file writes write (and sync) the temporary file, then fail before it
    /// replaces the target, as a failed rename or a crash at that point leaves them.
    pub fail_atomic_write: AtomicBool,
    /// Atomic whole-file writes panic before writing anything.
    pub panic_on_atomic_write: AtomicBool,
    /// Renames fail without renaming (checked against the source path).
    pub fail_rename: AtomicBool,
    /// Renames panic before renaming.
    pub panic_on_rename: AtomicBool,
    /// File removals fail without removing.
    pub fail_remove: AtomicBool,
    /// File removals panic before removing.
    pub panic_on_remove: AtomicBool,
    /// Directory creations fail without creating anything.
    pub fail_create_dir: AtomicBool,
    /// Every sync first sleeps this long (to make concurrent appenders pile up in tests).
    pub sync_delay_ms: AtomicU64,
    /// Successful per-file syncs (fdatasync or fsync).
    pub file_syncs: AtomicU64,
    /// Successful file-system syncs (`syncfs`).
    pub file_system_syncs: AtomicU64,
    /// Successful atomic whole-file writes.
    pub atomic_writes: AtomicU64,
    /// Successful renames.
    pub renames: AtomicU64,
    /// Successful file removals.
    pub removals: AtomicU64,
    /// Injected failures and panics that fired, of every kind: a test asserts it rose, so a
    /// call site that bypassed the storage cannot pass unnoticed.
    pub faults_fired: AtomicU64,
    /// When set, the switches above apply only to files in this directory (or below it), and a
    /// `syncfs` only when it is asked for this directory; other files work normally.
    target_dir: Mutex<Option<PathBuf>>,
}

/// [`FileStorage`] with injectable failures, for tests of poisoning and error paths.
#[derive(Debug, Clone, Default)]
pub struct FaultyStorage {
    /// The switches and counters, shared with the test that flips them.
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

    /// Whether switch `on` is set and applies to `path`; counts it in `faults_fired` if so.
    fn fires(&self, on: &AtomicBool, path: &Path) -> bool {
        let fires = on.load(Ordering::SeqCst) && self.applies_to(path);
        if fires {
            self.faults_fired.fetch_add(1, Ordering::SeqCst);
        }
        fires
    }

    /// Panic if `panic_on` fires for `path`, fail if `fail_on` does.
    fn before(
        &self,
        what: &str,
        panic_on: &AtomicBool,
        fail_on: &AtomicBool,
        path: &Path,
    ) -> io::Result<()> {
        if self.fires(panic_on, path) {
            panic!("injected panic in {what} of {}", path.display());
        }
        if self.fires(fail_on, path) {
            return Err(injected(what));
        }
        Ok(())
    }

    fn before_sync(&self, what: &str, path: &Path) -> io::Result<()> {
        let delay_ms = self.sync_delay_ms.load(Ordering::SeqCst);
        if delay_ms > 0 {
            std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        }
        self.before(what, &self.panic_on_sync, &self.fail_sync, path)?;
        if self.fires(&self.full_sync, path) {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        Ok(())
    }
}

fn injected(what: &str) -> io::Error {
    io::Error::other(format!("injected {what} failure"))
}

/// `result`, counted into `counter` when it is a success.
fn counted(counter: &AtomicU64, result: io::Result<()>) -> io::Result<()> {
    if result.is_ok() {
        counter.fetch_add(1, Ordering::SeqCst);
    }
    result
}

impl StorageFile for FaultyFile {
    fn write_all_at(&self, bytes: &[u8], offset: u64) -> io::Result<()> {
        let faults = &self.faults;
        faults.before(
            "write",
            &faults.panic_on_write,
            &faults.fail_write,
            &self.path,
        )?;
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
            faults.faults_fired.fetch_add(1, Ordering::SeqCst);
            let below = limit.saturating_sub(offset).min(bytes.len() as u64) as usize;
            self.inner.write_all_at(&bytes[..below], offset)?;
            return Err(io::Error::from_raw_os_error(libc::EFBIG));
        }
        self.inner.write_all_at(bytes, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.faults.before_sync("fdatasync", &self.path)?;
        counted(&self.faults.file_syncs, self.inner.sync_data())
    }
    fn sync_all(&self) -> io::Result<()> {
        self.faults.before_sync("fsync", &self.path)?;
        counted(&self.faults.file_syncs, self.inner.sync_all())
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

impl FaultyStorage {
    fn wrap(&self, inner: PlainFile, path: &Path) -> Box<dyn StorageFile> {
        Box::new(FaultyFile {
            inner,
            path: path.to_path_buf(),
            faults: self.faults.clone(),
        })
    }
}

impl Storage for FaultyStorage {
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        Ok(self.wrap(open_plain(path, true)?, path))
    }
    fn open_existing(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        Ok(self.wrap(open_plain(path, false)?, path))
    }
    fn sync_file_system(&self, dir: &Path) -> io::Result<()> {
        self.faults.before_sync("syncfs", dir)?;
        let synced = FileStorage.sync_file_system(dir);
        counted(&self.faults.file_system_syncs, synced)
    }
    fn write_atomically(&self, path: &Path, bytes: &[u8], how: AtomicWrite) -> io::Result<()> {
        let faults = &self.faults;
        if faults.fires(&faults.panic_on_atomic_write, path) {
            panic!("injected panic in atomic write of {}", path.display());
        }
        if faults.fires(&faults.fail_atomic_write, path) {
            write_temporary(&temporary_path(path), bytes, how)?;
            return Err(injected("atomic write"));
        }
        let written = FileStorage.write_atomically(path, bytes, how);
        counted(&faults.atomic_writes, written)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let faults = &self.faults;
        faults.before("rename", &faults.panic_on_rename, &faults.fail_rename, from)?;
        counted(&faults.renames, FileStorage.rename(from, to))
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let faults = &self.faults;
        faults.before("remove", &faults.panic_on_remove, &faults.fail_remove, path)?;
        counted(&faults.removals, FileStorage.remove_file(path))
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        if self.faults.fires(&self.faults.fail_create_dir, dir) {
            return Err(injected("create directory"));
        }
        FileStorage.create_dir_all(dir)
    }
}
