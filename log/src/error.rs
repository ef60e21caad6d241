//! Typed errors of the log. Input from disk is expected to be wrong sometimes (torn writes,
//! flipped bits, deleted files); those cases get a variant here, never a panic.

use std::path::PathBuf;

use crate::seq::Seq;

/// Everything the log can report to a caller.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A file operation failed outside the cases below.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file or directory operated on.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// Damaged bytes in a segment. Reads that need them end here; the intact records around
    /// them are still served, and `Records::skip_damage` goes on after them.
    #[error("corrupt record in segment {path} at byte {position}: {reason}")]
    CorruptSegment {
        /// The segment file.
        path: PathBuf,
        /// Byte of the segment where the damaged frame starts.
        position: u64,
        /// Which check the frame failed.
        reason: &'static str,
    },
    /// A segment's header is damaged or does not match its file name.
    #[error("segment {path} has an unreadable header: {reason}")]
    BadSegmentHeader {
        /// The segment file.
        path: PathBuf,
        /// Which check the header failed.
        reason: &'static str,
    },
    /// A segment written by a newer format version than this build reads.
    #[error(
        "segment format version {found} in {path} is not supported (this build reads {supported})"
    )]
    UnsupportedVersion {
        /// The segment file.
        path: PathBuf,
        /// The version in its header.
        found: u16,
        /// The version this build reads.
        supported: u16,
    },
    /// A write or sync of the partition failed, or the commit round panicked while writing
    /// it: what reached its files is unknown, so it refuses appends until reopened.
    #[error(
        "partition {path} is poisoned by a failed write, fsync or commit ({cause}); reopen it"
    )]
    Poisoned {
        /// The partition's directory.
        path: PathBuf,
        /// The first failure that poisoned it.
        cause: String,
    },
    /// The disk, a quota or the file-size limit is full (ENOSPC, EDQUOT, EFBIG). Nothing of the
    /// failed write was kept: the partition was cut back to its last committed record and
    /// stays writable, so writes succeed again once space is freed.
    #[error(
        "no space left to write partition {path} ({cause}); nothing of this write was stored, \
         and writes resume once space is freed"
    )]
    StorageFull {
        /// The partition's directory.
        path: PathBuf,
        /// The operating system's words for the failure.
        cause: String,
    },
    /// The partition's active segment file was closed to spare a descriptor and could not be
    /// opened again for this write (e.g. EMFILE); nothing was written, a retry may succeed.
    #[error("partition {path} could not reopen its segment file ({cause}); nothing was written")]
    ReopenFailed {
        /// The partition's directory.
        path: PathBuf,
        /// Why the file could not be opened.
        cause: String,
    },
    /// A record over a limit of `limits.rs` (its key or payload).
    #[error("record rejected: {0}")]
    InvalidRecord(&'static str),
    /// A batch that is empty or has too many records.
    #[error("batch rejected: {0}")]
    InvalidBatch(&'static str),
    /// A batch larger than one append may write: a batch never spans segments, so it must
    /// fit in one segment after its header (and within `BATCH_BYTES_MAX`).
    #[error(
        "a batch of {bytes} encoded bytes is larger than {max_bytes} bytes, the most one append \
         may write (a batch never spans segments: one segment less its header)"
    )]
    BatchTooLarge {
        /// The batch's encoded size.
        bytes: u64,
        /// The most one append may write with this configuration.
        max_bytes: u64,
    },
    /// A configuration value out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(&'static str),
    /// A partition name that is not a safe relative path of `[A-Za-z0-9_.-]` parts.
    #[error("invalid partition name {0:?}: use letters, digits, '_', '-', '.' and '/' only")]
    InvalidPartitionName(String),
    /// Every `_seq` up to the 41-bit millisecond limit was issued.
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

    /// Whether this error means "no space": [`LogError::StorageFull`], or an I/O error that
    /// [`is_storage_full`] recognises (e.g. from writing the `_seq` lease).
    pub fn is_storage_full(&self) -> bool {
        match self {
            LogError::StorageFull { .. } => true,
            LogError::Io { source, .. } => is_storage_full(source),
            _ => false,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LogError::Io {
            path: path.into(),
            source,
        }
    }
}

/// The log's result, with [`LogError`] by default.
pub type Result<T, E = LogError> = std::result::Result<T, E>;

/// Whether an I/O error means the storage is full rather than broken: no space on the file
/// system (ENOSPC), a quota (EDQUOT), or the process's file-size limit (EFBIG, `RLIMIT_FSIZE`).
/// Such a failure is undone and retried later; any other failed write or sync poisons.
pub fn is_storage_full(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        error.raw_os_error(),
        Some(libc::ENOSPC | libc::EDQUOT | libc::EFBIG)
    ) || matches!(
        error.kind(),
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded | ErrorKind::FileTooLarge
    )
}
