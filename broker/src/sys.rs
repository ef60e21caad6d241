//! The broker's only `unsafe` code: an exclusive advisory lock (`flock`) on
//! `<data-dir>/LOCK`, so two servers never open one data directory (two writers on one log
//! would corrupt it; the lock is released when the process exits, even on a crash). Also what
//! the server reports of its heap ([`heap_usage`]) and raising its open-files limit
//! ([`raise_open_files_limit`]).

// The crate's one module allowed `unsafe` (the workspace denies it elsewhere).
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::OnceLock;

use crate::limits::OPEN_FILES_UNLIMITED_TARGET;

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
    /// Another process holds the lock: a server is running on this directory.
    #[error("data directory {0} is in use by another strand process")]
    InUse(String),
    /// The `LOCK` file could not be opened or locked.
    #[error("cannot lock data directory {path}: {source}")]
    Io {
        /// The `LOCK` file.
        path: String,
        /// What the operating system answered.
        #[source]
        source: io::Error,
    },
}

impl DataDirLock {
    /// Lock `<data_dir>/LOCK` (creating it), without waiting: refused at once when held.
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

/// The process's open-files limit (`RLIMIT_NOFILE`) after [`raise_open_files_limit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenFilesLimit {
    /// The soft limit the process started with.
    pub before: u64,
    /// The soft limit now.
    pub now: u64,
    /// The hard limit (the most the soft one may be raised to without privileges).
    pub hard: u64,
}

/// Raises the soft open-files limit to the hard one. The soft default (often 1024) is far
/// below what a server holding thousands of connections and open partitions needs: past it,
/// accepts fail and so do file opens of requests already admitted.
pub fn raise_open_files_limit() -> io::Result<OpenFilesLimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` writes only into `limit`, which lives for the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let before = limit.rlim_cur;
    let hard = limit.rlim_max;
    let target = if hard == libc::RLIM_INFINITY {
        OPEN_FILES_UNLIMITED_TARGET.max(before)
    } else {
        hard
    };
    if target > before {
        let raised = libc::rlimit {
            rlim_cur: target,
            rlim_max: hard,
        };
        // SAFETY: `setrlimit` only reads `raised`, which lives for the call.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(OpenFilesLimit {
        before,
        now: target.max(before),
        hard,
    })
}

/// The global allocator of the process, when a binary has said which it installed
/// ([`set_heap_allocator`]); the library cannot see its `#[global_allocator]`.
static HEAP_ALLOCATOR: OnceLock<HeapAllocator> = OnceLock::new();

/// A global allocator the server can run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeapAllocator {
    /// `mimalloc::MiMalloc` (the `strand` binary's, see `main.rs`).
    Mimalloc,
}

impl HeapAllocator {
    /// The `allocator` label of `strand_heap_in_use_bytes`.
    pub fn name(self) -> &'static str {
        match self {
            HeapAllocator::Mimalloc => "mimalloc",
        }
    }
}

/// Say which global allocator this process runs on; the first call wins. Without it,
/// `/metrics` has no heap figure (the library's own tests run on the system allocator).
pub fn set_heap_allocator(allocator: HeapAllocator) {
    let _ = HEAP_ALLOCATOR.set(allocator);
}

/// The heap, as far as it can be known honestly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeapUsage {
    /// The allocator the figure is of.
    pub allocator: HeapAllocator,
    /// Anonymous memory of the process in RAM (`RssAnon`): the heap the allocator holds,
    /// including free space it has not returned yet, plus thread stacks; not the log's mapped
    /// files.
    pub resident_bytes: u64,
}

/// The heap of the registered allocator ([`set_heap_allocator`]); `None` when unknown.
///
/// Read from the kernel, not from the allocator: mimalloc as `libmimalloc-sys` builds it
/// (release, `MI_STAT=0`) counts no live bytes, and its `committed` figure (`mi_process_info`)
/// only grows on Linux (it is not lowered when pages are purged), so neither follows the heap.
/// glibc's `mallinfo2`, read here before, sees nothing of mimalloc's heap.
pub fn heap_usage() -> Option<HeapUsage> {
    let allocator = *HEAP_ALLOCATOR.get()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    Some(HeapUsage {
        allocator,
        resident_bytes: rss_anon_bytes(&status)?,
    })
}

/// `RssAnon` of a `/proc/<pid>/status` text, in bytes.
fn rss_anon_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("RssAnon:"))?;
    let kib: u64 = line.split_whitespace().next()?.parse().ok()?;
    Some(kib.saturating_mul(1024))
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

    // The bug: the heap figure read glibc's mallinfo2 while mimalloc served every allocation
    // of the `strand` binary, so it counted almost nothing and the memory bench divided noise
    // by 10,000 subscriptions. The figure now follows memory the process really uses,
    // whichever allocator hands it out.
    #[test]
    fn heap_usage_follows_memory_in_use() {
        set_heap_allocator(HeapAllocator::Mimalloc);
        let usage = || heap_usage().expect("registered").resident_bytes;
        let before = usage();
        let bytes = 64 << 20;
        let block = vec![0xa5_u8; bytes];
        let during = usage();
        drop(std::hint::black_box(block));
        assert!(
            during >= before + bytes as u64 / 2,
            "{before} bytes before a {bytes}-byte block was written, {during} with it"
        );
        assert_eq!(heap_usage().map(|u| u.allocator.name()), Some("mimalloc"));
    }

    #[test]
    fn the_open_files_limit_is_raised_to_the_hard_one() {
        let limit = raise_open_files_limit().expect("rlimit");
        assert!(limit.now >= limit.before, "{limit:?}");
        if limit.hard != libc::RLIM_INFINITY {
            assert_eq!(limit.now, limit.hard, "{limit:?}");
        }
        assert_eq!(raise_open_files_limit().expect("again").now, limit.now);
    }

    #[test]
    fn rss_anon_is_read_in_bytes() {
        let status = "Name:\tstrand\nRssAnon:\t   29468 kB\nRssFile:\t 9380 kB\n";
        assert_eq!(rss_anon_bytes(status), Some(29468 * 1024));
        assert_eq!(rss_anon_bytes("Name:\tstrand\n"), None);
    }
}
