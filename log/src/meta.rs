//! `partition.meta`: the facts about a partition that cannot be derived from its segments, the
//! two resume floors ([`ResumeFloors`]) that retention and compaction raise when they remove
//! records. Written atomically and durably before the segments it describes change, so after a
//! crash it may be conservative (too high) but never claims history that is gone.
//!
//! Format version 2 holds both floors; a version 1 file (lowest resumable `_seq` only) is read
//! with the keyed floor equal to it. Layout: `docs/log-format.md`.

use std::path::{Path, PathBuf};

use crate::error::{LogError, Result};
use crate::record::read_u64;
use crate::seq::Seq;
use crate::storage::{AtomicWrite, Storage};

const MAGIC: &[u8; 8] = b"STRNDMTA";
const VERSION: u16 = 2;
const FILE_NAME: &str = "partition.meta";
const META_V1_BYTES: usize = 28;
const META_V2_BYTES: usize = 36;

/// How far back a reader of a partition can start again, after retention or compaction removed
/// history. Both only rise, and the keyed floor is never above the resumable one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResumeFloors {
    /// A reader that has seen everything up to `S >= lowest_resumable_seq` can resume by
    /// reading after `S`: no delete after `S` is missing, and every previous version that a
    /// record read names is stored, so each change is told apart (insert, update, delete) as
    /// when it was written. (A superseded version whose successor does not name it may be
    /// gone: applying the successor as an insert ends in the same state.) Below it, a delete or
    /// a previous version was removed.
    pub lowest_resumable_seq: Seq,
    /// A reader at `S >= lowest_keyed_catch_up_seq` can still learn the newest state of every
    /// key changed after `S` by reading after `S` (a keyed catch-up): each such key's newest
    /// version is stored, tombstones included, though versions in between and the previous
    /// versions they name may be gone. Below it, a removed tombstone or a segment dropped by
    /// retention took a key's newest state with it.
    pub lowest_keyed_catch_up_seq: Seq,
}

pub fn meta_path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

impl ResumeFloors {
    /// These floors raised to at least `other`'s; the keyed floor never exceeds the other.
    pub fn raised_to(self, other: ResumeFloors) -> ResumeFloors {
        let keyed = self
            .lowest_keyed_catch_up_seq
            .max(other.lowest_keyed_catch_up_seq);
        let resumable = self.lowest_resumable_seq.max(other.lowest_resumable_seq);
        ResumeFloors {
            lowest_resumable_seq: resumable.max(keyed),
            lowest_keyed_catch_up_seq: keyed,
        }
    }

    /// Both floors at `seq`: everything at or below it may be gone (retention).
    pub fn both(seq: Seq) -> ResumeFloors {
        ResumeFloors {
            lowest_resumable_seq: seq,
            lowest_keyed_catch_up_seq: seq,
        }
    }

    fn encode(&self) -> [u8; META_V2_BYTES] {
        let mut out = [0u8; META_V2_BYTES];
        out[..8].copy_from_slice(MAGIC);
        out[8..10].copy_from_slice(&VERSION.to_le_bytes());
        out[16..24].copy_from_slice(&self.lowest_resumable_seq.0.to_le_bytes());
        out[24..32].copy_from_slice(&self.lowest_keyed_catch_up_seq.0.to_le_bytes());
        let crc = crc32fast::hash(&out[..32]);
        out[32..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// `None` for anything but a well-formed version 1 or 2 file.
    fn decode(bytes: &[u8]) -> Option<ResumeFloors> {
        if bytes.get(..8)? != MAGIC {
            return None;
        }
        let version = u16::from_le_bytes([*bytes.get(8)?, *bytes.get(9)?]);
        let crc_at = match (version, bytes.len()) {
            (1, META_V1_BYTES) => 24,
            (2, META_V2_BYTES) => 32,
            _ => return None,
        };
        if crc32fast::hash(&bytes[..crc_at]).to_le_bytes() != bytes[crc_at..] {
            return None;
        }
        let resumable = Seq(read_u64(bytes, 16));
        let keyed = match version {
            1 => resumable,
            _ => Seq(read_u64(bytes, 24)),
        };
        // Written by this code, the keyed floor is never above the other one.
        (keyed <= resumable).then_some(ResumeFloors {
            lowest_resumable_seq: resumable,
            lowest_keyed_catch_up_seq: keyed,
        })
    }

    /// `Ok(None)` when the file is absent (nothing was ever removed), `Ok(Some(None))` when
    /// it is unreadable.
    pub(crate) fn load(dir: &Path) -> Result<Option<Option<ResumeFloors>>> {
        let path = meta_path(dir);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(ResumeFloors::decode(&bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(LogError::io(path, e)),
        }
    }

    /// Write the floors atomically and durably: a crash leaves the old file or this one.
    pub(crate) fn store(&self, storage: &dyn Storage, dir: &Path) -> Result<()> {
        let path = meta_path(dir);
        storage
            .write_atomically(&path, &self.encode(), AtomicWrite::durable())
            .map_err(|e| LogError::io(path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn floors(resumable: u64, keyed: u64) -> ResumeFloors {
        ResumeFloors {
            lowest_resumable_seq: Seq(resumable),
            lowest_keyed_catch_up_seq: Seq(keyed),
        }
    }

    #[test]
    fn round_trip_and_garble_detection() {
        let meta = floors(77, 41);
        let bytes = meta.encode();
        assert_eq!(ResumeFloors::decode(&bytes), Some(meta));
        for at in 0..bytes.len() {
            let mut garbled = bytes;
            garbled[at] ^= 4;
            assert_eq!(ResumeFloors::decode(&garbled), None, "byte {at}");
        }
        assert_eq!(ResumeFloors::decode(&bytes[..35]), None);
    }

    #[test]
    fn version_1_reads_with_the_keyed_floor_at_the_resumable_one() {
        let mut v1 = [0u8; META_V1_BYTES];
        v1[..8].copy_from_slice(MAGIC);
        v1[8..10].copy_from_slice(&1u16.to_le_bytes());
        v1[16..24].copy_from_slice(&99u64.to_le_bytes());
        let crc = crc32fast::hash(&v1[..24]);
        v1[24..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(ResumeFloors::decode(&v1), Some(floors(99, 99)));
        // A version 1 header on a version 2 length (or the reverse) is not accepted.
        let mut long = meta_v2_with_version(1);
        assert_eq!(ResumeFloors::decode(&long), None);
        long = meta_v2_with_version(3);
        assert_eq!(ResumeFloors::decode(&long), None);
    }

    fn meta_v2_with_version(version: u16) -> [u8; META_V2_BYTES] {
        let mut bytes = floors(5, 3).encode();
        bytes[8..10].copy_from_slice(&version.to_le_bytes());
        let crc = crc32fast::hash(&bytes[..32]);
        bytes[32..].copy_from_slice(&crc.to_le_bytes());
        bytes
    }

    #[test]
    fn keyed_floor_above_the_resumable_one_is_unreadable() {
        let bytes = floors(3, 5).encode();
        assert_eq!(ResumeFloors::decode(&bytes), None);
    }

    #[test]
    fn max_keeps_the_keyed_floor_at_or_below_the_resumable_one() {
        assert_eq!(floors(10, 2).raised_to(floors(4, 7)), floors(10, 7));
        assert_eq!(
            floors(3, 3).raised_to(ResumeFloors::both(Seq(8))),
            floors(8, 8)
        );
        assert_eq!(floors(5, 1).raised_to(floors(0, 6)), floors(6, 6));
    }
}
