//! Typed errors of the log. Input from disk is expected to be wrong sometimes (torn writes,
//! flipped bits, deleted files); those cases get a variant here, never a panic.

use std::path::PathBuf;

use crate::seq::Seq;

/// Everything the log can report to a caller.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Damaged bytes in a segment. Reads that need them end here; the intact records around
    /// them are still served, and `Records::skip_damage` goes on after them.
    #[error("corrupt record in segment {path} at byte {position}: {reason}")]
    CorruptSegment {
        path: PathBuf,
        position: u64,
        reason: &'static str,
    },
    #[error("segment {path} has an unreadable header: {reason}")]
    BadSegmentHeader { path: PathBuf, reason: &'static str },
    #[error(
        "segment format version {found} in {path} is not supported (this build reads {supported})"
    )]
    UnsupportedVersion {
        path: PathBuf,
        found: u16,
        supported: u16,
    },
    /// A write or sync of the partition failed, or the commit round panicked while writing
    /// it: what reached its files is unknown, so it refuses appends until reopened.
    #[error(
        "partition {path} is poisoned by a failed write, fsync or commit ({cause}); reopen it"
    )]
    Poisoned { path: PathBuf, cause: String },
    #[error("record rejected: {0}")]
    InvalidRecord(&'static str),
    #[error("batch rejected: {0}")]
    InvalidBatch(&'static str),
    #[error("invalid configuration: {0}")]
    InvalidConfig(&'static str),
    #[error("invalid partition name {0:?}: use letters, digits, '_', '-', '.' and '/' only")]
    InvalidPartitionName(String),
    #[error("the _seq space is exhausted (last issued {0})")]
    SeqExhausted(Seq),
}

impl LogError {
    /// Whether a file of the log is damaged (as opposed to an I/O failure or a refusal).
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            LogError::CorruptSegment { .. } | LogError::BadSegmentHeader { .. }
        )
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LogError::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = LogError> = std::result::Result<T, E>;
