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
    /// The disk, a quota or the file-size limit is full (ENOSPC, EDQUOT, EFBIG). Nothing of the
    /// failed write was kept: the partition was cut back to its last committed record and
    /// stays writable, so writes succeed again once space is freed.
    #[error(
        "no space left to write partition {path} ({cause}); nothing of this write was stored, \
         and writes resume once space is freed"
    )]
    StorageFull { path: PathBuf, cause: String },
    /// The partition's active segment file was closed to spare a descriptor and could not be
    /// opened again for this write (e.g. EMFILE); nothing was written, a retry may succeed.
    #[error("partition {path} could not reopen its segment file ({cause}); nothing was written")]
    ReopenFailed { path: PathBuf, cause: String },
    #[error("record rejected: {0}")]
    InvalidRecord(&'static str),
    #[error("batch rejected: {0}")]
    InvalidBatch(&'static str),
    /// A batch larger than one append may write: a batch never spans segments, so it must
    /// fit in one segment after its header (and within `BATCH_BYTES_MAX`).
    #[error(
        "a batch of {bytes} encoded bytes is larger than {max_bytes} bytes, the most one append \
         may write (a batch never spans segments: one segment less its header)"
    )]
    BatchTooLarge { bytes: u64, max_bytes: u64 },
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
