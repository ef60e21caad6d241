//! The broker's only `unsafe` code: an exclusive advisory lock (`flock`) on
//! `<data-dir>/LOCK`, so two servers never open one data directory (two writers on one log
//! would corrupt it; the lock is released when the process exits, even on a crash), and the
//! malloc tuning ([`tune_malloc`]).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

/// File name of the lock inside the data directory.
pub const LOCK_FILE: &str = "LOCK";

/// Held for the life of the server; dropping it releases the lock.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("data directory {0} is in use by another strand process")]
    InUse(String),
    #[error("cannot lock data directory {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
}

impl DataDirLock {
    pub fn acquire(data_dir: &Path) -> Result<DataDirLock, LockError> {
        let path = data_dir.join(LOCK_FILE);
        let io_error = |source| LockError::Io {
            path: path.display().to_string(),
            source,
        };
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_error)?;
        // SAFETY: `flock` only reads the descriptor, which `file` keeps open for this call.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let error = io::Error::last_os_error();
            return match error.kind() {
                io::ErrorKind::WouldBlock => Err(LockError::InUse(data_dir.display().to_string())),
                _ => Err(io_error(error)),
            };
        }
        Ok(DataDirLock { _file: file })
    }
}

/// Allocations from this size on are their own memory maps, returned to the system when freed.
const MALLOC_MMAP_THRESHOLD_BYTES: usize = 1024 * 1024;

/// Tune glibc malloc for a long-running server: at most `arenas` arenas (its default is 8 per
/// CPU), and a fixed mmap threshold. The server's long-lived small objects (idle
/// subscriptions, key indexes) are created on many threads (shards, the blocking pool); spread
/// over dozens of arenas, freed memory in one cannot serve another (resident memory per idle
/// subscription measured 1.7 KB instead of 0.9 KB, BENCHMARKS.md). Without a fixed threshold
/// glibc raises it to the largest block freed so far, so each argon2 check's 19 MiB would stay
/// in the heap after the login that needed it. A no-op on other C libraries.
pub fn tune_malloc(arenas: usize) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let arenas = libc::c_int::try_from(arenas.max(1)).unwrap_or(libc::c_int::MAX);
        let threshold = libc::c_int::try_from(MALLOC_MMAP_THRESHOLD_BYTES).unwrap_or(0);
        for (parameter, value, what) in [
            (libc::M_ARENA_MAX, arenas, "arena limit"),
            (libc::M_MMAP_THRESHOLD, threshold, "mmap threshold"),
        ] {
            // SAFETY: mallopt only sets an allocator parameter; it is called before the
            // server starts its threads, and a refused value leaves the default in place.
            let accepted = unsafe { libc::mallopt(parameter, value) };
            if accepted != 1 {
                tracing::debug!(value, "malloc {what} not accepted");
            }
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = arenas;
}

/// Bytes the allocator has handed out and not had back (live heap objects, without the
/// allocator's free space or the file mappings of the log); `None` where unknown.
pub fn heap_in_use_bytes() -> Option<u64> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 only reads the allocator's counters.
        let info = unsafe { libc::mallinfo2() };
        Some((info.uordblks as u64).saturating_add(info.hblkhd as u64))
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_fails_until_first_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = DataDirLock::acquire(dir.path()).expect("first");
        let second = DataDirLock::acquire(dir.path());
        assert!(matches!(second, Err(LockError::InUse(_))), "{second:?}");
        drop(first);
        DataDirLock::acquire(dir.path()).expect("free again");
    }
}
