//! [`RaftLogError`]: what opening, writing or reading the Raft log can fail with, and its
//! conversion into openraft's `StorageError`.

use std::io;
use std::path::PathBuf;

use openraft::{AnyError, StorageError, StorageIOError};

use crate::cluster::types::NodeId;

/// Why the Raft log could not be opened, written or read. Every variant about a file names it.
#[derive(Debug, thiserror::Error)]
pub enum RaftLogError {
    /// A file system call failed.
    #[error("raft log: cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done (`"read"`, `"fsync"`, ...).
        action: &'static str,
        /// The file or directory it was done to.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// A file holds bytes that are not what this log writes, beyond a torn tail that could be
    /// cut: the log refuses to guess what the rest means.
    #[error("raft log: {} is damaged at byte {offset}: {reason}", path.display())]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Where in it the damage starts.
        offset: u64,
        /// What is wrong there.
        reason: String,
    },
    /// An entry to append does not directly follow the log's last entry.
    #[error("raft log: entry {found} cannot follow the log, which expects entry {expected} next")]
    NotConsecutive {
        /// The index the next entry must have.
        expected: u64,
        /// The index it has.
        found: u64,
    },
    /// An entry encodes into more bytes than a frame may hold.
    #[error("raft log: entry {index} encodes into {bytes} bytes, more than the {max} allowed")]
    EntryTooLarge {
        /// The entry's index.
        index: u64,
        /// Its encoded size.
        bytes: usize,
        /// `limits::RAFT_ENTRY_BYTES_MAX`.
        max: usize,
    },
    /// An entry or the state could not be encoded.
    #[error("raft log: cannot encode {what}: {source}")]
    Encode {
        /// What was being encoded.
        what: String,
        /// postcard's error.
        source: postcard::Error,
    },
    /// An earlier write failed, so what reached the disk is unknown: the log takes no more
    /// writes until it is reopened (and recovered from what is on disk).
    #[error("raft log in {}: refusing writes after an earlier write failed", dir.display())]
    Poisoned {
        /// The log's directory.
        dir: PathBuf,
    },
    /// The blocking task doing the I/O did not finish (it panicked, or the runtime is
    /// shutting down).
    #[error("raft log: the I/O task did not finish: {0}")]
    Task(String),
}

impl RaftLogError {
    /// An [`RaftLogError::Io`] for `action` on `path`.
    pub(super) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        RaftLogError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// A [`RaftLogError::Corrupt`] at `offset` of `path`.
    pub(super) fn corrupt(
        path: impl Into<PathBuf>,
        offset: u64,
        reason: impl Into<String>,
    ) -> Self {
        RaftLogError::Corrupt {
            path: path.into(),
            offset,
            reason: reason.into(),
        }
    }

    /// openraft's error for a failed write of the log or the vote; openraft stops the node.
    pub(super) fn into_write_error(self) -> StorageError<NodeId> {
        StorageIOError::write_logs(AnyError::new(&self)).into()
    }

    /// openraft's error for a failed read.
    pub(super) fn into_read_error(self) -> StorageError<NodeId> {
        StorageIOError::read_logs(AnyError::new(&self)).into()
    }

    /// openraft's error for a failed vote write.
    pub(super) fn into_vote_error(self) -> StorageError<NodeId> {
        StorageIOError::write_vote(AnyError::new(&self)).into()
    }
}
