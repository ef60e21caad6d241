//! The state machine's own files in its directory: the applied state (`applied.state`) and
//! the current snapshot (`snapshot.current`). Each is replaced whole and durably (temporary
//! file, fsync, rename, directory fsync: `Storage::write_atomically`), so a crash leaves the
//! old file or the new one, never a mix.

use std::fs::File;
use std::io::{BufReader, ErrorKind};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::LogId;
use parking_lot::Mutex;
use strand_log::storage::{AtomicWrite, Storage};

use super::error::{SnapshotFormatError, StateMachineError};
use super::format::{self, AppliedState, SnapshotHeader, SnapshotReader};
use crate::cluster::types::NodeId;

const APPLIED_FILE: &str = "applied.state";
const SNAPSHOT_FILE: &str = "snapshot.current";

/// Where the state machine keeps its files, and the I/O seam they are written through.
#[derive(Debug)]
pub(crate) struct StateFiles {
    dir: PathBuf,
    storage: Arc<dyn Storage>,
}

impl StateFiles {
    /// The files under `dir`, which is created if missing.
    pub(crate) fn open(
        dir: &Path,
        storage: Arc<dyn Storage>,
    ) -> Result<StateFiles, StateMachineError> {
        storage
            .create_dir_all(dir)
            .map_err(|source| StateMachineError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        Ok(StateFiles {
            dir: dir.to_path_buf(),
            storage,
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The applied state on disk, `None` when it was never written.
    pub(crate) fn load_applied(&self) -> Result<Option<AppliedState>, StateMachineError> {
        let path = self.path(APPLIED_FILE);
        let Some(bytes) = read_if_present(&path)? else {
            return Ok(None);
        };
        format::decode_applied(&bytes)
            .map(Some)
            .map_err(|reason| StateMachineError::DamagedFile { path, reason })
    }

    /// Replace the applied state on disk; durable when this returns.
    pub(crate) fn store_applied(&self, applied: &AppliedState) -> Result<(), StateMachineError> {
        self.write(&self.path(APPLIED_FILE), &format::encode_applied(applied))
    }

    /// The current snapshot's header, read without loading its records.
    pub(crate) fn load_snapshot_header(&self) -> Result<Option<SnapshotHeader>, StateMachineError> {
        let path = self.path(SNAPSHOT_FILE);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StateMachineError::Io { path, source }),
        };
        match SnapshotReader::open(BufReader::new(file)) {
            Ok((header, _)) => Ok(Some(header)),
            Err(SnapshotFormatError::Read(source)) => Err(StateMachineError::Io { path, source }),
            Err(reason) => Err(StateMachineError::DamagedFile { path, reason }),
        }
    }

    /// The current snapshot's data and header, all of it in memory.
    pub(crate) fn load_snapshot(
        &self,
    ) -> Result<Option<(SnapshotHeader, Vec<u8>)>, StateMachineError> {
        let path = self.path(SNAPSHOT_FILE);
        let Some(bytes) = read_if_present(&path)? else {
            return Ok(None);
        };
        match SnapshotReader::open(bytes.as_slice()) {
            Ok((header, _)) => Ok(Some((header, bytes))),
            Err(reason) => Err(StateMachineError::DamagedFile { path, reason }),
        }
    }

    fn write(&self, path: &Path, bytes: &[u8]) -> Result<(), StateMachineError> {
        self.storage
            .write_atomically(path, bytes, AtomicWrite::durable())
            .map_err(|source| StateMachineError::Io {
                path: path.to_path_buf(),
                source,
            })
    }
}

fn read_if_present(path: &Path) -> Result<Option<Vec<u8>>, StateMachineError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StateMachineError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The current snapshot file, shared by the state machine (install) and its snapshot
/// builders, which run concurrently: a builder that started before an install must not
/// replace the installed snapshot with its older one.
#[derive(Debug)]
pub(crate) struct SnapshotSlot {
    files: Arc<StateFiles>,
    /// The last log id of the snapshot on disk (outer `None`: no snapshot yet).
    current: Mutex<Option<Option<LogId<NodeId>>>>,
}

impl SnapshotSlot {
    pub(crate) fn new(
        files: Arc<StateFiles>,
        current: Option<Option<LogId<NodeId>>>,
    ) -> SnapshotSlot {
        SnapshotSlot {
            files,
            current: Mutex::new(current),
        }
    }

    /// Make `data` (a snapshot up to `last_log_id`) the current snapshot, unless the current
    /// one is of a later log id; durable when this returns. Whether it was saved.
    pub(crate) fn save(
        &self,
        last_log_id: Option<LogId<NodeId>>,
        data: &[u8],
    ) -> Result<bool, StateMachineError> {
        let mut current = self.current.lock();
        if matches!(*current, Some(held) if held > last_log_id) {
            return Ok(false);
        }
        self.files.write(&self.files.path(SNAPSHOT_FILE), data)?;
        *current = Some(last_log_id);
        Ok(true)
    }

    /// The current snapshot's data and header, if there is one.
    pub(crate) fn load(&self) -> Result<Option<(SnapshotHeader, Vec<u8>)>, StateMachineError> {
        // Under the lock, so a save in progress is not read half-way (the rename is atomic
        // anyway; this keeps the data and `current` in step).
        let _current = self.current.lock();
        self.files.load_snapshot()
    }
}
