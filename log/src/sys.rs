//! The crate's only `unsafe`: mapping segment files for reading, `syncfs`, and
//! `sync_file_range`, each behind a safe function.
//!
//! Why mapping is sound here: the log never rewrites bytes below a segment's committed length
//! (appends go past it; compaction and recovery write new files and rename them; retention
//! unlinks files, which keeps mapped pages alive). Readers only look below the committed length
//! they were handed, so the bytes they borrow do not change while borrowed.

// The crate's one module allowed `unsafe` (the workspace denies it elsewhere).
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

use memmap2::{Mmap, MmapOptions};

/// A read-only view of the first `len` bytes of a file (possibly empty).
#[derive(Debug)]
pub struct MappedBytes {
    map: Option<Mmap>,
}

impl MappedBytes {
    /// Map the first `len` bytes of `file` read-only (nothing for `len` 0).
    pub fn map(file: &File, len: u64) -> io::Result<MappedBytes> {
        if len == 0 {
            return Ok(MappedBytes { map: None });
        }
        let len = usize::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "segment too large to map"))?;
        // SAFETY: see the module comment. The mapping is read-only and shared; the regions a
        // reader borrows are never modified in place by this process, and Strand's data
        // directory is not written by other programs.
        let map = unsafe { MmapOptions::new().len(len).map(file)? };
        Ok(MappedBytes { map: Some(map) })
    }

    /// The mapped bytes.
    pub fn as_slice(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    /// Bytes mapped.
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// Whether nothing is mapped.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Flush every dirty page and the journal of the file system holding `file` (Linux `syncfs`).
/// One call makes many partitions' writes durable at once.
pub fn syncfs(file: &File) -> io::Result<()> {
    // SAFETY: `syncfs` only reads the descriptor, which `file` keeps open for the call.
    let rc = unsafe { libc::syncfs(file.as_raw_fd()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Start writing `len` bytes of `file` from `offset` back to the disk without waiting (Linux
/// `sync_file_range(SYNC_FILE_RANGE_WRITE)`). A hint: a range that does not fit the system
/// call's types is skipped, and elsewhere than Linux nothing is done.
#[cfg(target_os = "linux")]
pub fn start_writeback(file: &File, offset: u64, len: u64) -> io::Result<()> {
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return Ok(());
    };
    // SAFETY: a plain system call on a descriptor `file` keeps open for the call; no memory
    // is passed.
    let rc = unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Elsewhere than Linux writeback is left to the kernel.
#[cfg(not(target_os = "linux"))]
pub fn start_writeback(_file: &File, _offset: u64, _len: u64) -> io::Result<()> {
    Ok(())
}
