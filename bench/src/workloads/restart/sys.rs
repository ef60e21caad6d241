//! `restart --cold`'s only `unsafe` code (the workspace denies it outside `sys` modules):
//! evicting the data directory's files from the OS page cache, so the server starts as after
//! a reboot, reading its files from the disk.
#![allow(unsafe_code)]

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

use anyhow::{bail, Context};

/// Writes back and evicts from the page cache every file under `dir`; the bytes evicted.
/// Dirty pages cannot be dropped, so each file is `fdatasync`ed first.
pub fn evict_from_page_cache(dir: &Path) -> anyhow::Result<u64> {
    let mut bytes = 0;
    let entries = std::fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))?;
    for entry in entries {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            bytes += evict_from_page_cache(&entry.path())?;
        } else if meta.is_file() {
            let path = entry.path();
            let file = File::open(&path).with_context(|| format!("open {}", path.display()))?;
            file.sync_data()
                .with_context(|| format!("fdatasync {}", path.display()))?;
            // SAFETY: posix_fadvise takes an open descriptor (owned by `file`, alive for the
            // call) and plain integers; it touches no memory of this process.
            let error =
                unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
            if error != 0 {
                bail!("posix_fadvise {}: error {error}", path.display());
            }
            bytes += meta.len();
        }
    }
    Ok(bytes)
}
