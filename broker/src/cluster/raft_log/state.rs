//! The state file `raft.state`: the vote, the committed log id and the last purged log id,
//! replaced whole and durably on every change (write a temporary, fsync, rename, fsync the
//! directory), so a crash leaves the old state or the new one.

use std::io;
use std::path::{Path, PathBuf};

use openraft::{LogId, Vote};
use serde::{Deserialize, Serialize};
use strand_log::storage::{AtomicWrite, FileStorage, Storage};

use super::error::RaftLogError;
use super::format;
use crate::cluster::types::NodeId;

/// The state file's name in the log's directory; its temporary is `raft.tmp`.
const STATE_FILE_NAME: &str = "raft.state";

/// What the log keeps beside its entries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct DurableState {
    /// The last vote saved.
    pub vote: Option<Vote<NodeId>>,
    /// The last committed log id saved.
    pub committed: Option<LogId<NodeId>>,
    /// Entries up to this one are purged.
    pub last_purged: Option<LogId<NodeId>>,
}

/// The state file's path in `dir`.
pub(super) fn state_path(dir: &Path) -> PathBuf {
    dir.join(STATE_FILE_NAME)
}

/// The state saved in `dir`, or the empty state when none was saved yet.
pub(super) fn load(dir: &Path) -> Result<DurableState, RaftLogError> {
    let path = state_path(dir);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(DurableState::default()),
        Err(e) => return Err(RaftLogError::io("read", path, e)),
    };
    let body = format::parse_state_file(&bytes)
        .map_err(|reason| RaftLogError::corrupt(&path, 0, reason))?;
    postcard::from_bytes(body).map_err(|e| {
        RaftLogError::corrupt(
            &path,
            0,
            format!("a checksummed state that does not decode: {e}"),
        )
    })
}

/// Replace the state in `dir` with `state`; returns once it is durable.
pub(super) fn save(dir: &Path, state: &DurableState) -> Result<(), RaftLogError> {
    let body = postcard::to_stdvec(state).map_err(|source| RaftLogError::Encode {
        what: "the vote and log pointers".to_owned(),
        source,
    })?;
    let path = state_path(dir);
    FileStorage
        .write_atomically(&path, &format::state_file(&body), AtomicWrite::durable())
        .map_err(|e| RaftLogError::io("write", path, e))
}
