//! The bytes of the state machine's files and snapshots (`docs/cluster-state-machine.md`).
//!
//! Both are magic bytes, then frames: `u32` LE length, `u32` LE CRC32 of the body, the body
//! (postcard). A snapshot ends with an end marker (a zero length and a zero checksum), so data
//! cut at a frame boundary is told from a whole snapshot. Everything read is checked (lengths
//! against named bounds, checksums, postcard) and fails with a typed error, never a panic:
//! snapshot data comes from another node.
//!
//! This module owns bytes only; which store they describe is `snapshot.rs`.

use std::io::{ErrorKind, Read};

use openraft::{BasicNode, LogId, StoredMembership};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::error::SnapshotFormatError;
use crate::cluster::types::{NodeId, OwnedRecord, ReplicatedBatch};
use crate::limits::{
    APPLIED_STATE_BYTES_MAX, SNAPSHOT_BATCH_BYTES_TARGET, SNAPSHOT_FRAME_BYTES_MAX,
    SNAPSHOT_RECORD_OVERHEAD_BYTES,
};

/// First bytes of the applied-state file, format version 1.
pub(crate) const APPLIED_MAGIC: &[u8; 8] = b"STRNDAP1";
/// First bytes of snapshot data, format version 2 (version 1 had no `meta_index`).
pub(crate) const SNAPSHOT_MAGIC: &[u8; 8] = b"STRNDSN2";
/// Bytes of a frame's length and checksum.
const FRAME_HEADER_BYTES: usize = 8;

/// How far the state machine has applied the log: what `applied_state` answers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AppliedState {
    /// The last entry applied (or refused), `None` before the first.
    pub last_applied: Option<LogId<NodeId>>,
    /// The last membership entry applied.
    pub last_membership: StoredMembership<NodeId, BasicNode>,
}

/// The first frame of snapshot data: what it holds up to, so the data stands alone (the
/// current snapshot is a file read back after a restart).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SnapshotHeader {
    /// The applied state the snapshot's records include.
    pub applied: AppliedState,
    /// openraft's id for the snapshot.
    pub snapshot_id: String,
    /// A data group's snapshot: the meta group's index its builder had applied once it read
    /// the records; a member installs it only after applying the meta group that far
    /// (`groups.rs`). 0 for the meta group's own.
    pub meta_index: u64,
}

/// Append a frame holding `body` to `out`.
fn put_frame(out: &mut Vec<u8>, body: &[u8]) {
    let length = u32::try_from(body.len()).unwrap_or(u32::MAX);
    assert!(
        length as usize == body.len(),
        "frames are bounded far below 4 GiB"
    );
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    out.extend_from_slice(body);
}

/// The next frame's body, or `None` at an end marker. `max_bytes` bounds the length read
/// before anything is allocated for it.
fn take_frame(
    input: &mut impl Read,
    max_bytes: usize,
) -> Result<Option<Vec<u8>>, SnapshotFormatError> {
    let mut header = [0u8; FRAME_HEADER_BYTES];
    read_exactly(input, &mut header)?;
    let [l0, l1, l2, l3, c0, c1, c2, c3] = header;
    let length = u32::from_le_bytes([l0, l1, l2, l3]);
    let checksum = u32::from_le_bytes([c0, c1, c2, c3]);
    if length == 0 {
        return match checksum {
            0 => Ok(None),
            _ => Err(SnapshotFormatError::ChecksumMismatch),
        };
    }
    if length as usize > max_bytes {
        return Err(SnapshotFormatError::FrameTooLong {
            bytes: u64::from(length),
            max_bytes: max_bytes as u64,
        });
    }
    let mut body = vec![0u8; length as usize];
    read_exactly(input, &mut body)?;
    if crc32fast::hash(&body) != checksum {
        return Err(SnapshotFormatError::ChecksumMismatch);
    }
    Ok(Some(body))
}

fn read_exactly(input: &mut impl Read, buffer: &mut [u8]) -> Result<(), SnapshotFormatError> {
    input.read_exact(buffer).map_err(|e| match e.kind() {
        ErrorKind::UnexpectedEof => SnapshotFormatError::Truncated,
        _ => SnapshotFormatError::Read(e),
    })
}

fn take_magic(input: &mut impl Read, magic: &[u8; 8]) -> Result<(), SnapshotFormatError> {
    let mut found = [0u8; 8];
    read_exactly(input, &mut found).map_err(|e| match e {
        SnapshotFormatError::Truncated => SnapshotFormatError::BadMagic,
        other => other,
    })?;
    match &found == magic {
        true => Ok(()),
        false => Err(SnapshotFormatError::BadMagic),
    }
}

/// A frame that must be there (not an end marker), decoded.
fn take_value<T: DeserializeOwned>(
    input: &mut impl Read,
    max_bytes: usize,
) -> Result<T, SnapshotFormatError> {
    let body = take_frame(input, max_bytes)?.ok_or(SnapshotFormatError::Truncated)?;
    Ok(postcard::from_bytes(&body)?)
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // postcard fails only on types it cannot represent (maps with unknown length, `any`):
    // ours are plain structs, so a failure is a bug.
    match postcard::to_stdvec(value) {
        Ok(bytes) => bytes,
        Err(error) => panic!("postcard cannot encode a state machine type: {error}"),
    }
}

/// The applied-state file's bytes.
pub(crate) fn encode_applied(applied: &AppliedState) -> Vec<u8> {
    let body = encode(applied);
    assert!(
        body.len() <= APPLIED_STATE_BYTES_MAX,
        "applied state over its bound"
    );
    let mut out = APPLIED_MAGIC.to_vec();
    put_frame(&mut out, &body);
    out
}

/// The applied state in an applied-state file's bytes.
pub(crate) fn decode_applied(mut bytes: &[u8]) -> Result<AppliedState, SnapshotFormatError> {
    take_magic(&mut bytes, APPLIED_MAGIC)?;
    let applied = take_value(&mut bytes, APPLIED_STATE_BYTES_MAX)?;
    match bytes.is_empty() {
        true => Ok(applied),
        false => Err(SnapshotFormatError::TrailingBytes),
    }
}

/// Builds snapshot data in memory: the header, then batches of at most about
/// [`SNAPSHOT_BATCH_BYTES_TARGET`] bytes, then the end marker.
#[derive(Debug)]
pub(crate) struct SnapshotWriter {
    out: Vec<u8>,
    /// The batch being filled, and the bytes it accounts for.
    pending: Option<(ReplicatedBatch, usize)>,
    /// The last record pushed: its partition and `_seq`, checked against the next.
    previous: Option<(String, u64)>,
}

impl SnapshotWriter {
    pub(crate) fn new(header: &SnapshotHeader) -> SnapshotWriter {
        let body = encode(header);
        assert!(
            body.len() <= APPLIED_STATE_BYTES_MAX,
            "snapshot header over its bound"
        );
        let mut out = SNAPSHOT_MAGIC.to_vec();
        put_frame(&mut out, &body);
        SnapshotWriter {
            out,
            pending: None,
            previous: None,
        }
    }

    /// Add `record` of `partition`; records of a partition come in `_seq` order, and all of
    /// one partition before the next.
    pub(crate) fn push(&mut self, partition: &str, record: OwnedRecord) {
        match &mut self.previous {
            Some((name, seq)) if name == partition => {
                // The log yields a partition's records in `_seq` order; an installing
                // replica refuses a batch that is not.
                assert!(
                    record.seq > *seq,
                    "snapshot records of {partition} out of order"
                );
                *seq = record.seq;
            }
            _ => self.previous = Some((partition.to_owned(), record.seq)),
        }
        let bytes = record.key.len() + record.payload.len() + SNAPSHOT_RECORD_OVERHEAD_BYTES;
        let full = match &self.pending {
            Some((batch, held)) => {
                batch.partition != partition || held + bytes > SNAPSHOT_BATCH_BYTES_TARGET
            }
            None => false,
        };
        if full {
            self.flush();
        }
        let (batch, held) = self.pending.get_or_insert_with(|| {
            let batch = ReplicatedBatch {
                partition: partition.to_owned(),
                records: Vec::new(),
            };
            (batch, 0)
        });
        batch.records.push(record);
        *held += bytes;
    }

    fn flush(&mut self) {
        if let Some((batch, _)) = self.pending.take() {
            let body = encode(&batch);
            assert!(
                body.len() <= SNAPSHOT_FRAME_BYTES_MAX,
                "snapshot batch over its bound"
            );
            put_frame(&mut self.out, &body);
        }
    }

    /// The whole snapshot data, end marker included.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.flush();
        self.out.extend_from_slice(&[0u8; FRAME_HEADER_BYTES]);
        self.out
    }
}

/// Reads snapshot data: [`SnapshotReader::open`] checks the magic and reads the header, then
/// [`SnapshotReader::next_batch`] yields the batches up to the end marker.
#[derive(Debug)]
pub(crate) struct SnapshotReader<R> {
    input: R,
    ended: bool,
}

impl<R: Read> SnapshotReader<R> {
    pub(crate) fn open(
        mut input: R,
    ) -> Result<(SnapshotHeader, SnapshotReader<R>), SnapshotFormatError> {
        take_magic(&mut input, SNAPSHOT_MAGIC)?;
        let header = take_value(&mut input, APPLIED_STATE_BYTES_MAX)?;
        let reader = SnapshotReader {
            input,
            ended: false,
        };
        Ok((header, reader))
    }

    /// The next batch, or `None` after the end marker (and nothing after it).
    pub(crate) fn next_batch(&mut self) -> Result<Option<ReplicatedBatch>, SnapshotFormatError> {
        if self.ended {
            return Ok(None);
        }
        match take_frame(&mut self.input, SNAPSHOT_FRAME_BYTES_MAX)? {
            Some(body) => Ok(Some(postcard::from_bytes(&body)?)),
            None => {
                self.ended = true;
                let mut extra = [0u8; 1];
                match self.input.read(&mut extra) {
                    Ok(0) => Ok(None),
                    Ok(_) => Err(SnapshotFormatError::TrailingBytes),
                    Err(e) => Err(SnapshotFormatError::Read(e)),
                }
            }
        }
    }
}
