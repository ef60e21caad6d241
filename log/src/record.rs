//! The record frame: how one record is laid out inside a segment, encoded on append and
//! decoded (with its checksum checked) on every read. Byte layout: `docs/log-format.md`.
//!
//! This module owns bytes only; which file they live in and who may see them is `segment.rs`
//! and `partition.rs`.

use crate::limits::{KEY_BYTES_MAX, PAYLOAD_BYTES_MAX};
use crate::seq::Seq;

/// Bytes of the fixed frame header.
pub const FRAME_HEADER_BYTES: usize = 40;
/// Frames start at multiples of this, so payloads (at offset 40) are 8-byte aligned in a map.
pub const FRAME_ALIGN_BYTES: usize = 8;

/// Flag bits of a record. Unknown bits are rejected on decode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RecordFlags(u16);

impl RecordFlags {
    /// No flag: an insert or update of its key.
    pub const NONE: RecordFlags = RecordFlags(0);
    /// The record deletes its key; compaction keeps it only for the tombstone retention time.
    pub const TOMBSTONE: RecordFlags = RecordFlags(1);
    const KNOWN: u16 = 1;

    /// The bits as stored in the frame.
    pub fn bits(self) -> u16 {
        self.0
    }

    /// `None` if `bits` has a flag this version does not know.
    pub fn from_bits(bits: u16) -> Option<RecordFlags> {
        (bits & !Self::KNOWN == 0).then_some(RecordFlags(bits))
    }

    /// Whether the record deletes its key.
    pub fn is_tombstone(self) -> bool {
        self.0 & Self::TOMBSTONE.0 != 0
    }
}

/// A record whose `_seq` and time another node issued (a cluster leader), handed to
/// [`crate::Partition::append_replicated`] to be stored exactly so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplicatedRecord<'a> {
    /// The `_seq` the leader issued.
    pub seq: Seq,
    /// The leader's time of the write (retention, expiry and tombstone ages read it).
    pub timestamp_unix_ms: u64,
    /// Key, payload, flags and previous version, as the leader wrote them.
    pub record: NewRecord<'a>,
}

/// A record handed to `append`: borrowed, so appending copies each byte once, into the frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NewRecord<'a> {
    /// What compaction groups versions by; empty: not keyed, never compacted away.
    pub key: &'a [u8],
    /// The record's bytes; the log never looks inside.
    pub payload: &'a [u8],
    /// Flag bits (a tombstone or not).
    pub flags: RecordFlags,
    /// `_seq` of the previous version of the same key in this partition, or `Seq::ZERO`.
    /// The log stores it and never interprets it; tables use it to walk a key's history.
    pub previous_version: Seq,
}

impl<'a> NewRecord<'a> {
    /// A plain record (no flags, no previous version).
    pub fn new(key: &'a [u8], payload: &'a [u8]) -> NewRecord<'a> {
        NewRecord {
            key,
            payload,
            ..NewRecord::default()
        }
    }

    /// A tombstone deleting `key`, with an empty payload.
    pub fn tombstone(key: &'a [u8]) -> NewRecord<'a> {
        NewRecord {
            key,
            flags: RecordFlags::TOMBSTONE,
            ..NewRecord::default()
        }
    }
}

/// A committed record, borrowed from a memory map: no copy is made to read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordView<'a> {
    /// The `_seq` the log issued it.
    pub seq: Seq,
    /// When it was appended, Unix milliseconds from the partition's clock.
    pub timestamp_unix_ms: u64,
    /// As appended: the previous version of its key, or `Seq::ZERO`.
    pub previous_version: Seq,
    /// As appended.
    pub flags: RecordFlags,
    /// As appended.
    pub key: &'a [u8],
    /// As appended.
    pub payload: &'a [u8],
}

/// Why bytes at a position are not a valid frame. The caller decides whether that means "torn
/// tail" (active segment) or "corruption" (sealed segment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Fewer bytes remain than the header or the declared length needs.
    Truncated,
    /// The length fields disagree with each other or with the limits.
    BadLength,
    /// The CRC32 over the frame does not match.
    ChecksumMismatch,
    /// Flag bits this version does not know.
    UnknownFlags,
    /// The frame's `_seq` is not above the previous frame's.
    SeqNotIncreasing,
}

impl FrameError {
    /// Words for an error message.
    pub fn reason(self) -> &'static str {
        match self {
            FrameError::Truncated => "frame runs past the end of the data",
            FrameError::BadLength => "frame length fields are inconsistent",
            FrameError::ChecksumMismatch => "CRC32 mismatch",
            FrameError::UnknownFlags => "unknown flag bits",
            FrameError::SeqNotIncreasing => "_seq not above the previous record's",
        }
    }
}

/// What lies at a position in a segment's data area.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A valid frame and the position of the next one.
    Record(RecordView<'a>, usize),
    /// A zero length word: no frame was ever written here.
    End,
}

/// Bytes a record occupies in a segment, padding included.
pub const fn frame_bytes(key_len: usize, payload_len: usize) -> usize {
    align_up(FRAME_HEADER_BYTES + key_len + payload_len)
}

const fn align_up(n: usize) -> usize {
    (n + FRAME_ALIGN_BYTES - 1) & !(FRAME_ALIGN_BYTES - 1)
}

/// Reject records no frame can hold, before any `_seq` is spent on them.
pub fn check_record(record: &NewRecord<'_>) -> Result<(), &'static str> {
    if record.key.len() > KEY_BYTES_MAX {
        return Err("key longer than key_bytes_max");
    }
    if record.payload.len() > PAYLOAD_BYTES_MAX {
        return Err("payload longer than payload_bytes_max");
    }
    if RecordFlags::from_bits(record.flags.0).is_none() {
        return Err("unknown flag bits");
    }
    Ok(())
}

/// Append one frame to `out`. The record must have passed [`check_record`].
pub fn encode(out: &mut Vec<u8>, seq: Seq, timestamp_unix_ms: u64, record: &NewRecord<'_>) {
    let start = out.len();
    let frame_len = FRAME_HEADER_BYTES + record.payload.len() + record.key.len();
    assert!(start % FRAME_ALIGN_BYTES == 0, "frames start aligned");
    assert!(record.key.len() <= KEY_BYTES_MAX && record.payload.len() <= PAYLOAD_BYTES_MAX);
    out.extend_from_slice(&(frame_len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&seq.0.to_le_bytes());
    out.extend_from_slice(&timestamp_unix_ms.to_le_bytes());
    out.extend_from_slice(&record.previous_version.0.to_le_bytes());
    out.extend_from_slice(&(record.payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&(record.key.len() as u16).to_le_bytes());
    out.extend_from_slice(&record.flags.0.to_le_bytes());
    out.extend_from_slice(record.payload);
    out.extend_from_slice(record.key);
    let crc = crc32fast::hash(&out[start + 8..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    out.resize(start + align_up(frame_len), 0);
}

/// Decode the frame at `position` of `data`, checking length fields and CRC.
pub fn decode(data: &[u8], position: usize) -> Result<Decoded<'_>, FrameError> {
    let rest = data.get(position..).ok_or(FrameError::Truncated)?;
    if rest.len() < 4 {
        return if rest.iter().all(|&b| b == 0) {
            Ok(Decoded::End)
        } else {
            Err(FrameError::Truncated)
        };
    }
    let frame_len = read_u32(rest, 0) as usize;
    if frame_len == 0 {
        return Ok(Decoded::End);
    }
    if frame_len < FRAME_HEADER_BYTES {
        return Err(FrameError::BadLength);
    }
    // The writer always writes the padding too: a frame whose padding is missing is torn.
    if rest.len() < align_up(frame_len) {
        return Err(FrameError::Truncated);
    }
    let frame = &rest[..frame_len];
    if crc32fast::hash(&frame[8..]) != read_u32(frame, 4) {
        return Err(FrameError::ChecksumMismatch);
    }
    let payload_len = read_u32(frame, 32) as usize;
    let key_len = usize::from(read_u16(frame, 36));
    if FRAME_HEADER_BYTES + payload_len + key_len != frame_len {
        return Err(FrameError::BadLength);
    }
    let flags = RecordFlags::from_bits(read_u16(frame, 38)).ok_or(FrameError::UnknownFlags)?;
    let payload_end = FRAME_HEADER_BYTES + payload_len;
    let view = RecordView {
        seq: Seq(read_u64(frame, 8)),
        timestamp_unix_ms: read_u64(frame, 16),
        previous_version: Seq(read_u64(frame, 24)),
        flags,
        payload: &frame[FRAME_HEADER_BYTES..payload_end],
        key: &frame[payload_end..],
    };
    Ok(Decoded::Record(view, position + align_up(frame_len)))
}

/// `(frame bytes with padding, _seq, timestamp)` of a frame this process just encoded.
pub(crate) fn encoded_frame_fields(bytes: &[u8], position: usize) -> (usize, Seq, u64) {
    let frame_len = read_u32(bytes, position) as usize;
    assert!(
        frame_len >= FRAME_HEADER_BYTES,
        "own frames are well formed"
    );
    let seq = Seq(read_u64(bytes, position + 8));
    (align_up(frame_len), seq, read_u64(bytes, position + 16))
}

fn read_u16(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

pub(crate) fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encoded(seq: u64, key: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(&mut out, Seq(seq), 7, &NewRecord::new(key, payload));
        out
    }

    #[test]
    fn payload_starts_aligned_and_frame_is_padded() {
        let bytes = encoded(9, b"k", b"abc");
        assert_eq!(bytes.len(), frame_bytes(1, 3));
        assert_eq!(bytes.len() % FRAME_ALIGN_BYTES, 0);
        assert_eq!(&bytes[FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + 3], b"abc");
    }

    #[test]
    fn every_single_byte_flip_is_detected() {
        let bytes = encoded(42, b"key", b"payload bytes");
        let frame_len = FRAME_HEADER_BYTES + 3 + 13;
        for at in 0..frame_len {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0x10;
            let decoded = decode(&flipped, 0);
            assert!(
                decoded.is_err(),
                "flip at byte {at} went unnoticed: {decoded:?}"
            );
        }
    }

    #[test]
    fn zero_word_is_the_end() {
        assert_eq!(decode(&[0; 64], 0), Ok(Decoded::End));
        assert_eq!(decode(&[], 0), Ok(Decoded::End));
    }

    /// Run `test` on exactly `cases` inputs: unlike `proptest!`, the count does not follow
    /// `PROPTEST_CASES` (see `tests/model/mod.rs`, `check_exactly`).
    fn check_exactly<S: Strategy>(
        cases: u32,
        strategy: S,
        test: impl Fn(S::Value) -> Result<(), TestCaseError>,
    ) {
        let config = ProptestConfig {
            cases,
            source_file: Some(file!()),
            ..ProptestConfig::default()
        };
        let ran = std::cell::Cell::new(0u32);
        let mut runner = proptest::test_runner::TestRunner::new(config);
        let result = runner.run(&strategy, |value| {
            ran.set(ran.get() + 1);
            test(value)
        });
        if let Err(error) = result {
            panic!("{error}\n{runner}");
        }
        assert!(ran.get() >= cases, "{} of {cases} cases ran", ran.get());
    }

    #[test]
    fn round_trip() {
        let key = proptest::collection::vec(any::<u8>(), 0..64);
        let payload = proptest::collection::vec(any::<u8>(), 0..2048);
        let strategy = (
            1u64..u64::MAX >> 1,
            any::<u64>(),
            any::<u64>(),
            any::<bool>(),
            key,
            payload,
        );
        check_exactly(256, strategy, |(seq, ts, prev, tomb, key, payload)| {
            let flags = if tomb {
                RecordFlags::TOMBSTONE
            } else {
                RecordFlags::NONE
            };
            let record = NewRecord {
                key: &key,
                payload: &payload,
                flags,
                previous_version: Seq(prev),
            };
            let mut out = vec![];
            encode(&mut out, Seq(seq), ts, &record);
            let Ok(Decoded::Record(view, next)) = decode(&out, 0) else {
                return Err(TestCaseError::fail("frame did not decode"));
            };
            prop_assert_eq!(next, out.len());
            prop_assert_eq!(view.seq, Seq(seq));
            prop_assert_eq!(view.timestamp_unix_ms, ts);
            prop_assert_eq!(view.previous_version, Seq(prev));
            prop_assert_eq!(view.flags, flags);
            prop_assert_eq!(view.key, &key[..]);
            prop_assert_eq!(view.payload, &payload[..]);
            Ok(())
        });
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let strategy = (proptest::collection::vec(any::<u8>(), 0..256), 0usize..300);
        check_exactly(256, strategy, |(bytes, at)| {
            let _ = decode(&bytes, at);
            Ok(())
        });
    }
}
