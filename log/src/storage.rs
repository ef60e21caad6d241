//! The narrow I/O surface the log writes through: positional write, sync, truncate, map, and
//! the directory operations (create, atomic whole-file write, rename, remove).
//!
//! Everything the log persists goes through [`Storage`] and [`StorageFile`], so tests can inject
//! a failed fsync, a short write, a full disk, a failed rename or removal, or a panic
//! ([`FaultyStorage`]) and check that the partition poisons itself (or reports the error) instead
//! of guessing what reached the disk. Reads of whole small files (an index, `partition.meta`,
//! the `_seq` lease) and directory listings go to `std::fs` directly: they change nothing.

mod faulty;

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::sys::{self, MappedBytes};

pub use faulty::{Faults, FaultyStorage};

/// Unix permission bits of a file written by [`Storage::write_atomically`] unless the caller
/// asks for others: what `open(2)` is given by default, before the process's umask.
pub const FILE_MODE_DEFAULT: u32 = 0o666;

/// One open file of a partition.
// `len` reports an I/O result, so an `is_empty` beside it would only restate it.
#[allow(clippy::len_without_is_empty)]
pub trait StorageFile: Send + Sync + fmt::Debug {
    /// Write all of `bytes` at `offset` (`pwrite`), without moving any file position.
    fn write_all_at(&self, bytes: &[u8], offset: u64) -> io::Result<()>;
    /// `fdatasync`: data and the metadata needed to read it back.
    fn sync_data(&self) -> io::Result<()>;
    /// `fsync`: everything, including size changes after a truncate.
    fn sync_all(&self) -> io::Result<()>;
    /// Cut or extend the file to `len` bytes (`ftruncate`).
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// The file's size now.
    fn len(&self) -> io::Result<u64>;
    /// Map the first `len` bytes read-only.
    fn map(&self, len: u64) -> io::Result<MappedBytes>;
    /// Start writing `len` bytes from `offset` back to the disk without waiting for it (Linux
    /// `sync_file_range(SYNC_FILE_RANGE_WRITE)`), so that a later fdatasync has little left to
    /// do. A hint: nothing is durable because of it, and the default does nothing.
    fn start_writeback(&self, offset: u64, len: u64) -> io::Result<()> {
        let _ = (offset, len);
        Ok(())
    }
}

/// Opens, writes whole, renames and removes files; the seam where tests swap in faults.
///
/// Renames and removals are not made durable by themselves: a caller that needs the change to
/// survive a crash calls [`Storage::sync_directory`] after it (once for many).
pub trait Storage: Send + Sync + fmt::Debug {
    /// Create `path`, which must not exist yet, for reading and writing.
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn StorageFile>>;
    /// Open the existing file `path` for reading and writing.
    fn open_existing(&self, path: &Path) -> io::Result<Box<dyn StorageFile>>;
    /// Make everything written to the file system holding `dir` durable (`syncfs`): one call
    /// instead of one fdatasync per file when a commit round touched many partitions.
    fn sync_file_system(&self, dir: &Path) -> io::Result<()>;
    /// Make the entries of `dir` (files created, renamed or removed) durable.
    fn sync_directory(&self, dir: &Path) -> io::Result<()> {
        sync_dir(dir)
    }
    /// Replace the file at `path` with `bytes` so that a crash leaves either the old file or
    /// the new one, whole: write [`temporary_path`], fsync it (when durable), rename (or link,
    /// see [`Existing`]) it over `path`, fsync the directory (when durable). On an error the
    /// file at `path` is untouched; the temporary may be left behind.
    fn write_atomically(&self, path: &Path, bytes: &[u8], how: AtomicWrite) -> io::Result<()>;
    /// Rename `from` to `to`, replacing `to` (`rename(2)`). The default is the plain file
    /// system's, which wrappers that only count or time syncs keep.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    /// Remove the file `path` (`unlink(2)`). Readers that mapped it keep their pages.
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    /// Create the directory `dir` and any missing parents.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }
}

/// Whether [`Storage::write_atomically`] waits for the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// fsync the file before it replaces the old one, and the directory after: the new file
    /// survives a crash once the call returns.
    Synced,
    /// No fsync: for derived data (an index) that is rebuilt when lost or torn.
    Unsynced,
}

/// What [`Storage::write_atomically`] does when `path` already exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Existing {
    /// Replace it (`rename`).
    Replace,
    /// Keep it and fail with [`io::ErrorKind::AlreadyExists`] (`link`, which never
    /// overwrites): for a file that must be created once, like a signing secret.
    Keep,
}

/// How [`Storage::write_atomically`] writes its file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AtomicWrite {
    /// Whether the call returns only once the new file is durable.
    pub durability: Durability,
    /// Unix permission bits the file is created with (before the umask), e.g. `0o600` for a
    /// private key. Set on the temporary file before any byte is written to it.
    pub mode: u32,
    /// Whether an existing file is replaced.
    pub existing: Existing,
}

impl AtomicWrite {
    /// Synced, mode [`FILE_MODE_DEFAULT`], replacing any existing file.
    pub const fn durable() -> AtomicWrite {
        AtomicWrite {
            durability: Durability::Synced,
            mode: FILE_MODE_DEFAULT,
            existing: Existing::Replace,
        }
    }

    /// Not synced (derived data), mode [`FILE_MODE_DEFAULT`], replacing any existing file.
    pub const fn unsynced() -> AtomicWrite {
        AtomicWrite {
            durability: Durability::Unsynced,
            ..AtomicWrite::durable()
        }
    }

    /// The same write, creating the file with permission bits `mode`.
    pub const fn with_mode(self, mode: u32) -> AtomicWrite {
        AtomicWrite { mode, ..self }
    }

    /// The same write, failing with `AlreadyExists` instead of replacing a file at the path.
    pub const fn keeping_existing(self) -> AtomicWrite {
        AtomicWrite {
            existing: Existing::Keep,
            ..self
        }
    }

    fn is_durable(&self) -> bool {
        self.durability == Durability::Synced
    }
}

/// Where [`Storage::write_atomically`] writes before landing the file: the path with its
/// extension replaced by `tmp` (a partition's leftovers are removed when it is opened).
pub fn temporary_path(path: &Path) -> PathBuf {
    path.with_extension("tmp")
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
    fn start_writeback(&self, offset: u64, len: u64) -> io::Result<()> {
        sys::start_writeback(&self.0, offset, len)
    }
}

impl Storage for FileStorage {
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        Ok(Box::new(open_plain(path, true)?))
    }
    fn open_existing(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        Ok(Box::new(open_plain(path, false)?))
    }
    fn sync_file_system(&self, dir: &Path) -> io::Result<()> {
        sys::syncfs(&File::open(dir)?)
    }
    fn write_atomically(&self, path: &Path, bytes: &[u8], how: AtomicWrite) -> io::Result<()> {
        let tmp = temporary_path(path);
        write_temporary(&tmp, bytes, how)?;
        land_temporary(&tmp, path, how)
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

/// The first half of an atomic write: `bytes` in the temporary file `tmp`, fsync'd if durable.
fn write_temporary(tmp: &Path, bytes: &[u8], how: AtomicWrite) -> io::Result<()> {
    // A leftover temporary may carry other permission bits; `mode` applies only on creation.
    match std::fs::remove_file(tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(how.mode)
        .open(tmp)?;
    file.write_all_at(bytes, 0)?;
    if how.is_durable() {
        file.sync_all()?;
    }
    Ok(())
}

/// The second half of an atomic write: `tmp` becomes `path`, and (if durable) the directory
/// entry is synced.
fn land_temporary(tmp: &Path, path: &Path, how: AtomicWrite) -> io::Result<()> {
    match how.existing {
        Existing::Replace => std::fs::rename(tmp, path)?,
        Existing::Keep => {
            let linked = std::fs::hard_link(tmp, path);
            std::fs::remove_file(tmp)?;
            linked?;
        }
    }
    if how.is_durable() {
        if let Some(dir) = path.parent() {
            sync_dir(dir)?;
        }
    }
    Ok(())
}

/// Make a directory entry (a created, renamed or removed file) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
