//! `partition.meta`: the one fact about a partition that cannot be derived from its segments,
//! the lowest resumable `_seq` (raised by retention and compaction when they remove records).
//! Written atomically and durably before the segments it describes are removed, so after a crash
//! it may be conservative (too high) but never claims history that is gone.

use std::path::{Path, PathBuf};

use crate::error::{LogError, Result};
use crate::record::read_u64;
use crate::seq::Seq;
use crate::storage;

const MAGIC: &[u8; 8] = b"STRNDMTA";
const VERSION: u16 = 1;
const FILE_NAME: &str = "partition.meta";
const META_BYTES: usize = 28;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PartitionMeta {
    /// A reader that has seen everything up to `S >= lowest_resumable_seq` can read the complete
    /// history after `S`; below it some changes were removed.
    pub lowest_resumable_seq: Seq,
}

pub fn meta_path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

impl PartitionMeta {
    fn encode(&self) -> [u8; META_BYTES] {
        let mut out = [0u8; META_BYTES];
        out[..8].copy_from_slice(MAGIC);
        out[8..10].copy_from_slice(&VERSION.to_le_bytes());
        out[16..24].copy_from_slice(&self.lowest_resumable_seq.0.to_le_bytes());
        let crc = crc32fast::hash(&out[..24]);
        out[24..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<PartitionMeta> {
        if bytes.len() != META_BYTES
            || &bytes[..8] != MAGIC
            || bytes[8..10] != VERSION.to_le_bytes()
        {
            return None;
        }
        if crc32fast::hash(&bytes[..24]).to_le_bytes() != bytes[24..] {
            return None;
        }
        Some(PartitionMeta {
            lowest_resumable_seq: Seq(read_u64(bytes, 16)),
        })
    }

    /// `Ok(None)` when the file is absent (nothing was ever removed), `Ok(Some(None))` when
    /// it is unreadable.
    pub fn load(dir: &Path) -> Result<Option<Option<PartitionMeta>>> {
        let path = meta_path(dir);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(PartitionMeta::decode(&bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(LogError::io(path, e)),
        }
    }

    pub fn store(&self, dir: &Path) -> Result<()> {
        let path = meta_path(dir);
        storage::write_atomically(&path, &self.encode(), true).map_err(|e| LogError::io(path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garble_detection() {
        let meta = PartitionMeta {
            lowest_resumable_seq: Seq(77),
        };
        let bytes = meta.encode();
        assert_eq!(PartitionMeta::decode(&bytes), Some(meta));
        let mut garbled = bytes;
        garbled[17] ^= 4;
        assert_eq!(PartitionMeta::decode(&garbled), None);
    }
}
