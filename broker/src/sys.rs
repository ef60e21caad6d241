//! The broker's only `unsafe` code: an exclusive advisory lock (`flock`) on
//! `<data-dir>/LOCK`, so two servers never open one data directory (two writers on one log
//! would corrupt it; the lock is released when the process exits, even on a crash), and the
//! malloc arena limit ([`limit_malloc_arenas`]).

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

/// Limit glibc malloc to `arenas` arenas (its default is 8 per CPU). The server's long-lived
/// small objects (idle subscriptions, key indexes) are created on many threads (shards, the
/// blocking pool); spread over dozens of arenas, freed memory in one cannot serve another, and
/// resident memory per idle subscription measured 1.7 KB instead of 0.9 KB (BENCHMARKS.md).
/// A no-op on other C libraries.
pub fn limit_malloc_arenas(arenas: usize) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let arenas = libc::c_int::try_from(arenas.max(1)).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt only sets an allocator parameter; it is called before the server
        // starts its threads, and a refused value leaves the default in place.
        let accepted = unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) };
        if accepted != 1 {
            tracing::debug!(arenas, "malloc arena limit not accepted");
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = arenas;
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
