//! The floor under a durable single-row INSERT (system `disk`): this process writes 128 bytes
//! into a preallocated file and calls `fdatasync`, as a log or a WAL does for one small
//! commit. It runs in the same rounds as the servers, so it shows what the disk gave them at
//! the time.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{bail, Context};

use crate::sql::workload::{Connection, Reply, System};

/// Bytes written per "commit": about one row's record with its frame.
const RECORD_BYTES: usize = 128;
/// The file is written with zeros first (and synced), so commits never allocate blocks.
const FILE_BYTES: u64 = 64 << 20;

pub struct DiskSystem {
    path: PathBuf,
    /// Where the next write goes, shared by the rounds' connections.
    offset: AtomicU64,
}

impl DiskSystem {
    pub fn create(path: &Path) -> anyhow::Result<DiskSystem> {
        let mut file = File::create(path).with_context(|| format!("create {}", path.display()))?;
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..FILE_BYTES >> 20 {
            file.write_all(&zeros)?;
        }
        file.sync_all()?;
        Ok(DiskSystem {
            path: path.to_path_buf(),
            offset: AtomicU64::new(0),
        })
    }
}

impl Drop for DiskSystem {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl System for DiskSystem {
    fn name(&self) -> &'static str {
        "disk"
    }

    fn durability(&self) -> &str {
        "128B pwrite+fdatasync"
    }

    fn class(&self) -> &'static str {
        "durable"
    }

    fn connect(&self) -> anyhow::Result<Box<dyn Connection + '_>> {
        let file = OpenOptions::new().write(true).open(&self.path)?;
        Ok(Box::new(DiskConnection { file, system: self }))
    }
}

struct DiskConnection<'a> {
    file: File,
    system: &'a DiskSystem,
}

impl Connection for DiskConnection<'_> {
    fn insert_row(&mut self, _id: i64) -> anyhow::Result<Reply> {
        let step = RECORD_BYTES as u64;
        let offset = self.system.offset.fetch_add(step, Ordering::Relaxed) % FILE_BYTES;
        self.file.write_all_at(&[0xa5; RECORD_BYTES], offset)?;
        self.file.sync_data()?;
        Ok(Reply {
            rows: 1,
            server: None,
        })
    }

    fn insert_rows(&mut self, _statement: &str) -> anyhow::Result<Reply> {
        bail!("the raw disk baseline only measures single-row commits")
    }

    fn select_row(&mut self, _id: i64) -> anyhow::Result<Reply> {
        bail!("the raw disk baseline only measures single-row commits")
    }
}
