//! What can go wrong in the state machine, and how openraft hears of it.
//!
//! Two kinds: a malformed snapshot or a damaged file of the state machine (input that is
//! wrong: a typed error, never a panic), and a failing local store (I/O). openraft gets
//! both as a `StorageError` and stops the node: the replica cannot keep up with its group.
//! A malformed *entry* is not an error here: every replica refuses it alike
//! (`ClusterReply::Refused`, `apply.rs`).

use std::path::PathBuf;

use openraft::{StorageError, StorageIOError};
use strand_log::LogError;

use crate::cluster::types::NodeId;

/// Why the state machine could not open, apply, snapshot or install.
#[derive(Debug, thiserror::Error)]
pub enum StateMachineError {
    /// A file of the state machine could not be read or written.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file or directory operated on.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A file of the state machine is damaged (checksum, length or decoding).
    #[error("state machine file {path} is damaged: {reason}")]
    DamagedFile {
        /// The file.
        path: PathBuf,
        /// What check it failed.
        reason: SnapshotFormatError,
    },
    /// Snapshot data received from the leader is not a valid snapshot.
    #[error("snapshot data is malformed: {0}")]
    MalformedSnapshot(#[from] SnapshotFormatError),
    /// The snapshot's own header names another log id than openraft's meta for it.
    #[error("snapshot data is of log id {found}, its meta says {expected}")]
    SnapshotMismatch {
        /// The meta's last log id, as text.
        expected: String,
        /// The data's last log id, as text.
        found: String,
    },
    /// The local store failed (I/O, a poisoned partition, damaged segments).
    #[error(transparent)]
    Log(#[from] LogError),
    /// A blocking task of the state machine ended without an answer (the runtime is
    /// shutting down).
    #[error("state machine task did not complete: {0}")]
    TaskLost(String),
}

/// How bytes of a snapshot or of the applied-state file fail to decode.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotFormatError {
    /// The data does not start with the expected magic bytes (not this format or version).
    #[error("unknown magic bytes (not a Strand state machine file of format version 1)")]
    BadMagic,
    /// The data ends inside a frame or before the end marker.
    #[error("data ends early, inside a frame or before the end marker")]
    Truncated,
    /// A frame longer than the bound for its kind.
    #[error("frame of {bytes} bytes is longer than the {max_bytes} allowed")]
    FrameTooLong {
        /// The frame's declared length.
        bytes: u64,
        /// The bound.
        max_bytes: u64,
    },
    /// A frame whose CRC32 does not match its bytes.
    #[error("frame checksum mismatch")]
    ChecksumMismatch,
    /// A frame whose bytes are not the postcard encoding expected.
    #[error("frame does not decode: {0}")]
    Decode(#[from] postcard::Error),
    /// Bytes after the end marker.
    #[error("bytes follow the end marker")]
    TrailingBytes,
    /// A batch of records that could not be stored as it is (bad name, `_seq`s not
    /// increasing, a record over the log's limits).
    #[error("batch for {partition} refused: {reason}")]
    BadBatch {
        /// The batch's partition name.
        partition: String,
        /// Why it was refused.
        reason: String,
    },
    /// Reading the data failed (a file).
    #[error("read failed: {0}")]
    Read(#[source] std::io::Error),
}

impl StateMachineError {
    /// As openraft's error for a failed write of the state machine (apply, install).
    pub(crate) fn into_write_error(self) -> StorageError<NodeId> {
        StorageIOError::write_state_machine(&self).into()
    }

    /// As openraft's error for a failed read of the state machine (a snapshot).
    pub(crate) fn into_read_error(self) -> StorageError<NodeId> {
        StorageIOError::read_state_machine(&self).into()
    }

    /// As openraft's error for a failed snapshot build or save.
    pub(crate) fn into_snapshot_error(self) -> StorageError<NodeId> {
        StorageIOError::write_snapshot(None, &self).into()
    }
}
