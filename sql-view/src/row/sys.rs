//! The crate's only `unsafe` (only modules named `sys` may hold any): a validated copy of row
//! bytes that were not aligned for the archive, behind a safe API. A struct cannot hold both
//! an owned buffer and a reference into it, so the copy keeps the buffer and re-derives the
//! archive root on each access with rkyv's unchecked accessor, which is sound because the
//! same, never-mutated bytes were validated once.

use rkyv::rancor;
use rkyv::util::AlignedVec;

use super::Archived;
use crate::error::RowError;

/// Alignment of the copy; at least the archive's (its widest fields are 8-byte numbers).
const ALIGNMENT: usize = 16;

/// Whether the bytes can be read in place.
pub(super) fn is_aligned(bytes: &[u8]) -> bool {
    (bytes.as_ptr() as usize) % std::mem::align_of::<Archived>().max(8) == 0
}

/// Row bytes copied into an aligned buffer and validated.
pub(super) struct ValidatedCopy {
    /// Private and never mutated after validation.
    bytes: AlignedVec<ALIGNMENT>,
}

impl ValidatedCopy {
    pub(super) fn new(bytes: &[u8]) -> Result<ValidatedCopy, RowError> {
        let mut copy = AlignedVec::<ALIGNMENT>::with_capacity(bytes.len());
        copy.extend_from_slice(bytes);
        rkyv::access::<Archived, rancor::Error>(&copy)
            .map_err(|error| RowError::Invalid(error.to_string()))?;
        Ok(ValidatedCopy { bytes: copy })
    }

    pub(super) fn archived(&self) -> &Archived {
        // SAFETY: `self.bytes` passed `rkyv::access` (full bytecheck validation of an
        // `Archived` root) in `new`, is private to this struct and never mutated since, and
        // its heap buffer does not move when the struct moves; so the unchecked access sees
        // exactly the bytes that were validated.
        unsafe { rkyv::access_unchecked::<Archived>(&self.bytes) }
    }
}
