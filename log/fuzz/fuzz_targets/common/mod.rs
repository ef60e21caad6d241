//! Shared input model of the fuzz targets: a segment described as pieces (well-formed frames,
//! raw bytes) plus damage (flipped bits, cuts, zeroed runs). Pure random bytes almost never
//! pass a CRC32, so the fuzzer would only ever test the first check; building real frames and
//! then damaging them reaches every branch of the decoders.

#![allow(dead_code)] // Each target uses a different part.

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use strand_log::record::{self, NewRecord, RecordFlags};
use strand_log::segment::{encode_header, SEGMENT_HEADER_BYTES};
use strand_log::Seq;

/// One record frame, encoded with the crate's own encoder.
#[derive(Arbitrary, Debug)]
pub struct FrameSpec {
    /// Added to the previous `_seq`; 0 repeats it (an out-of-order frame).
    pub seq_step: u16,
    pub key: Vec<u8>,
    pub payload: Vec<u8>,
    pub tombstone: bool,
    pub previous_version: u64,
    pub timestamp_unix_ms: u64,
}

impl FrameSpec {
    /// The frame's bytes, padding included.
    pub fn encode(&self, seq: Seq) -> Vec<u8> {
        let flags = if self.tombstone {
            RecordFlags::TOMBSTONE
        } else {
            RecordFlags::NONE
        };
        let record = NewRecord {
            key: &self.key,
            payload: &self.payload,
            flags,
            previous_version: Seq(self.previous_version),
        };
        let mut out = Vec::new();
        record::encode(&mut out, seq, self.timestamp_unix_ms, &record);
        out
    }
}

#[derive(Arbitrary, Debug)]
pub enum Piece {
    Frame(FrameSpec),
    Raw(Vec<u8>),
}

/// Damage applied after the pieces are laid out; positions wrap around the length.
#[derive(Arbitrary, Debug)]
pub enum Damage {
    Flip {
        at: u32,
        mask: u8,
    },
    Truncate {
        at: u32,
    },
    Zero {
        at: u32,
        len: u8,
    },
    /// Cut up to 7 bytes off the end: a torn last write.
    TrimEnd(u8),
}

pub fn apply(bytes: &mut Vec<u8>, damage: &[Damage]) {
    for d in damage {
        if bytes.is_empty() {
            return;
        }
        let len = bytes.len();
        match *d {
            Damage::Flip { at, mask } => bytes[at as usize % len] ^= mask.max(1),
            Damage::Truncate { at } => bytes.truncate(at as usize % len),
            Damage::Zero { at, len: run } => {
                let start = at as usize % len;
                let end = (start + usize::from(run)).min(len);
                bytes[start..end].fill(0);
            }
            Damage::TrimEnd(cut) => bytes.truncate(len.saturating_sub(usize::from(cut % 8))),
        }
    }
}

#[derive(Arbitrary, Debug)]
pub enum HeaderSpec {
    /// The header a segment with this first `_seq` gets.
    Valid,
    /// A valid header naming another first `_seq`.
    OtherSeq(u64),
    Raw([u8; 64]),
    Absent,
}

/// A whole segment file.
#[derive(Arbitrary, Debug)]
pub struct SegmentSpec {
    pub header: HeaderSpec,
    pub pieces: Vec<Piece>,
    pub damage: Vec<Damage>,
}

impl SegmentSpec {
    pub fn build(&self, first_seq: Seq) -> Vec<u8> {
        let mut bytes = match &self.header {
            HeaderSpec::Valid => encode_header(first_seq, 0).to_vec(),
            HeaderSpec::OtherSeq(seq) => encode_header(Seq(*seq), 0).to_vec(),
            HeaderSpec::Raw(raw) => raw.to_vec(),
            HeaderSpec::Absent => Vec::new(),
        };
        debug_assert!(bytes.is_empty() || bytes.len() == SEGMENT_HEADER_BYTES as usize);
        let mut seq = first_seq;
        for piece in &self.pieces {
            match piece {
                Piece::Frame(frame) => {
                    let frame_bytes = frame.encode(seq);
                    seq = Seq(seq.0.saturating_add(u64::from(frame.seq_step)));
                    bytes.extend_from_slice(&frame_bytes);
                }
                Piece::Raw(raw) => bytes.extend_from_slice(raw),
            }
        }
        apply(&mut bytes, &self.damage);
        bytes
    }
}
