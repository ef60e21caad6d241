//! Specs of frames, segments and index files, the damage done to them, and their
//! strategies.

use proptest::collection::vec;
use proptest::prelude::*;
use strand_log::record::{self, NewRecord, RecordFlags};
use strand_log::segment::encode_header;
use strand_log::Seq;

#[derive(Clone, Debug)]
pub(crate) struct FrameSpec {
    pub(crate) seq_step: u64,
    pub(crate) key: Vec<u8>,
    pub(crate) payload: Vec<u8>,
    pub(crate) tombstone: bool,
    pub(crate) previous_version: u64,
    pub(crate) timestamp_unix_ms: u64,
}

impl FrameSpec {
    pub(crate) fn encode(&self, seq: Seq) -> Vec<u8> {
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

#[derive(Clone, Debug)]
pub(crate) enum Piece {
    Frame(FrameSpec),
    Raw(Vec<u8>),
}

#[derive(Clone, Debug)]
pub(crate) enum Damage {
    Flip {
        at: usize,
        mask: u8,
    },
    Truncate {
        at: usize,
    },
    Zero {
        at: usize,
        len: usize,
    },
    /// Cut 1 to 7 bytes off the end: a torn last write.
    TrimEnd(usize),
}

#[derive(Clone, Debug)]
pub(crate) enum HeaderSpec {
    Valid,
    OtherSeq(u64),
    Raw(Vec<u8>),
    Absent,
}

#[derive(Clone, Debug)]
pub(crate) struct SegmentSpec {
    pub(crate) header: HeaderSpec,
    pub(crate) pieces: Vec<Piece>,
    pub(crate) damage: Vec<Damage>,
}

pub(crate) fn apply(bytes: &mut Vec<u8>, damage: &[Damage]) {
    for d in damage {
        let len = bytes.len();
        if len == 0 {
            return;
        }
        match *d {
            Damage::Flip { at, mask } => bytes[at % len] ^= mask.max(1),
            Damage::Truncate { at } => bytes.truncate(at % len),
            Damage::Zero { at, len: run } => {
                let start = at % len;
                bytes[start..(start + run).min(len)].fill(0);
            }
            Damage::TrimEnd(cut) => bytes.truncate(len.saturating_sub(cut)),
        }
    }
}

impl SegmentSpec {
    pub(crate) fn build(&self, first_seq: Seq) -> Vec<u8> {
        let mut bytes = match &self.header {
            HeaderSpec::Valid => encode_header(first_seq, 0).to_vec(),
            HeaderSpec::OtherSeq(seq) => encode_header(Seq(*seq), 0).to_vec(),
            HeaderSpec::Raw(raw) => raw.clone(),
            HeaderSpec::Absent => Vec::new(),
        };
        let mut seq = first_seq;
        for piece in &self.pieces {
            match piece {
                Piece::Frame(frame) => {
                    bytes.extend_from_slice(&frame.encode(seq));
                    seq = Seq(seq.0.saturating_add(frame.seq_step));
                }
                Piece::Raw(raw) => bytes.extend_from_slice(raw),
            }
        }
        apply(&mut bytes, &self.damage);
        bytes
    }
}

pub(crate) fn frame_spec() -> impl Strategy<Value = FrameSpec> {
    let steps = prop_oneof![8 => 1u64..5, 1 => Just(0u64), 1 => any::<u64>()];
    (
        steps,
        vec(any::<u8>(), 0..12),
        vec(any::<u8>(), 0..80),
        any::<bool>(),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(
            |(seq_step, key, payload, tombstone, previous_version, ts)| FrameSpec {
                seq_step,
                key,
                payload,
                tombstone,
                previous_version,
                timestamp_unix_ms: ts,
            },
        )
}

pub(crate) fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, mask)| Damage::Flip { at, mask }),
        any::<usize>().prop_map(|at| Damage::Truncate { at }),
        (any::<usize>(), 0usize..64).prop_map(|(at, len)| Damage::Zero { at, len }),
        (1usize..8).prop_map(Damage::TrimEnd),
    ]
}

pub(crate) fn segment_spec() -> impl Strategy<Value = SegmentSpec> {
    let header = prop_oneof![
        12 => Just(HeaderSpec::Valid),
        1 => any::<u64>().prop_map(HeaderSpec::OtherSeq),
        1 => vec(any::<u8>(), 64).prop_map(HeaderSpec::Raw),
        1 => vec(any::<u8>(), 0..64).prop_map(HeaderSpec::Raw),
        1 => Just(HeaderSpec::Absent),
    ];
    let piece = prop_oneof![
        6 => frame_spec().prop_map(Piece::Frame),
        1 => vec(any::<u8>(), 0..48).prop_map(Piece::Raw),
        1 => vec(0u8..2, 0..48).prop_map(Piece::Raw),
    ];
    (header, vec(piece, 0..8), vec(damage(), 0..3)).prop_map(|(header, pieces, damage)| {
        SegmentSpec {
            header,
            pieces,
            damage,
        }
    })
}

#[derive(Clone, Debug)]
pub(crate) enum IndexSpec {
    Absent,
    Derived(Vec<Damage>),
    Raw(Vec<u8>),
}

pub(crate) fn index_spec() -> impl Strategy<Value = IndexSpec> {
    prop_oneof![
        2 => Just(IndexSpec::Absent),
        2 => vec(damage(), 0..2).prop_map(IndexSpec::Derived),
        1 => vec(any::<u8>(), 0..96).prop_map(IndexSpec::Raw),
    ]
}
