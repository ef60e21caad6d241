//! Every decoder of bytes from disk answers `Ok` or `Err`, never a panic: `record::decode`,
//! `segment::check_header` and `segment::scan`, and a `Partition` opened over arbitrary
//! segment and index files. The same properties as the cargo-fuzz targets in `log/fuzz/`,
//! run here by `cargo test` on stable (the fuzz targets need nightly).
//!
//! Random bytes almost never pass a CRC32, so the inputs are real frames (from the crate's
//! encoder) and raw bytes, then damaged: flipped bits, cuts, zeroed runs, a torn tail.
//!
//! Regression (found by these properties and by `fuzz/segment_open`): a segment whose last
//! frame ends exactly at the end of the file, without its zero padding (a torn write), made
//! `scan` report an indexed length past the end of the data. Impact: opening the partition
//! panicked, by an out-of-range slice when the segment was sealed and its index had to be
//! rebuilt, and by an overflowing subtraction in debug builds when it was the active segment.

use std::path::Path;

use proptest::collection::vec;
use proptest::prelude::*;
use strand_log::record::{self, check_record, Decoded, NewRecord, RecordFlags};
use strand_log::record::{FRAME_ALIGN_BYTES, FRAME_HEADER_BYTES};
use strand_log::segment::{
    check_header, encode_header, index_path, scan, segment_path, ScanStop, SEGMENT_HEADER_BYTES,
};
use strand_log::{FsyncPolicy, Partition, PartitionConfig, ReadFrom, SegmentIndex, Seq};

const FIRST_SEQ: Seq = Seq(1);
/// First `_seq` of an empty segment written after the fuzzed one, which makes it sealed.
const LATER_SEQ: Seq = Seq(1 << 40);

#[derive(Clone, Debug)]
struct FrameSpec {
    seq_step: u64,
    key: Vec<u8>,
    payload: Vec<u8>,
    tombstone: bool,
    previous_version: u64,
    timestamp_unix_ms: u64,
}

impl FrameSpec {
    fn encode(&self, seq: Seq) -> Vec<u8> {
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
enum Piece {
    Frame(FrameSpec),
    Raw(Vec<u8>),
}

#[derive(Clone, Debug)]
enum Damage {
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
enum HeaderSpec {
    Valid,
    OtherSeq(u64),
    Raw(Vec<u8>),
    Absent,
}

#[derive(Clone, Debug)]
struct SegmentSpec {
    header: HeaderSpec,
    pieces: Vec<Piece>,
    damage: Vec<Damage>,
}

fn apply(bytes: &mut Vec<u8>, damage: &[Damage]) {
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
    fn build(&self, first_seq: Seq) -> Vec<u8> {
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

fn frame_spec() -> impl Strategy<Value = FrameSpec> {
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

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, mask)| Damage::Flip { at, mask }),
        any::<usize>().prop_map(|at| Damage::Truncate { at }),
        (any::<usize>(), 0usize..64).prop_map(|(at, len)| Damage::Zero { at, len }),
        (1usize..8).prop_map(Damage::TrimEnd),
    ]
}

fn segment_spec() -> impl Strategy<Value = SegmentSpec> {
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

/// `decode` at `position`: never a panic, and an accepted frame is what the encoder writes.
fn check_decode(data: &[u8], position: usize) {
    let Ok(Decoded::Record(view, next)) = record::decode(data, position) else {
        return;
    };
    let frame_len = FRAME_HEADER_BYTES + view.key.len() + view.payload.len();
    assert_eq!(
        next,
        position + record::frame_bytes(view.key.len(), view.payload.len())
    );
    let again = NewRecord {
        key: view.key,
        payload: view.payload,
        flags: view.flags,
        previous_version: view.previous_version,
    };
    assert!(
        check_record(&again).is_ok(),
        "small inputs hold only valid records"
    );
    let mut encoded = Vec::new();
    record::encode(&mut encoded, view.seq, view.timestamp_unix_ms, &again);
    assert_eq!(encoded.len(), next - position);
    assert_eq!(&encoded[..frame_len], &data[position..position + frame_len]);
}

/// `scan`: never a panic, and its index describes exactly the valid prefix it walked.
fn check_scan(data: &[u8], first_seq: Seq) {
    let _ = check_header(data, Path::new("prop.log"), first_seq);
    let (index, stop) = scan(data, first_seq);
    let summary = index.summary;
    let mut position = SEGMENT_HEADER_BYTES as usize;
    let mut last = Seq::ZERO;
    for _ in 0..summary.records {
        let Ok(Decoded::Record(view, next)) = record::decode(data, position) else {
            panic!("indexed frame at {position} does not decode");
        };
        assert!(view.seq > last && view.seq >= first_seq);
        last = view.seq;
        position = next;
    }
    assert_eq!(
        (summary.last_seq, summary.data_bytes as usize),
        (last, position)
    );
    if summary.records > 0 {
        assert!(
            position <= data.len(),
            "indexed length {position} past the data"
        );
    }
    match stop {
        ScanStop::CleanEnd => assert_eq!(record::decode(data, position), Ok(Decoded::End)),
        ScanStop::Invalid { position: at, .. } => assert_eq!(at as usize, position),
    }
    let decoded = SegmentIndex::decode(&index.encode(), first_seq, u64::MAX);
    let decoded = decoded.expect("the index scan built decodes");
    assert_eq!(
        (decoded.entries(), decoded.summary),
        (index.entries(), summary)
    );
}

#[derive(Clone, Debug)]
enum IndexSpec {
    Absent,
    Derived(Vec<Damage>),
    Raw(Vec<u8>),
}

fn index_spec() -> impl Strategy<Value = IndexSpec> {
    prop_oneof![
        2 => Just(IndexSpec::Absent),
        2 => vec(damage(), 0..2).prop_map(IndexSpec::Derived),
        1 => vec(any::<u8>(), 0..96).prop_map(IndexSpec::Raw),
    ]
}

fn write_files(dir: &Path, segment: &[u8], index: &IndexSpec, sealed: bool) {
    let index = match index {
        IndexSpec::Absent => None,
        IndexSpec::Derived(damage) => {
            let mut bytes = scan(segment, FIRST_SEQ).0.encode();
            apply(&mut bytes, damage);
            Some(bytes)
        }
        IndexSpec::Raw(raw) => Some(raw.clone()),
    };
    std::fs::write(segment_path(dir, FIRST_SEQ), segment).unwrap();
    if let Some(index) = index {
        std::fs::write(index_path(dir, FIRST_SEQ), index).unwrap();
    }
    if sealed {
        std::fs::write(segment_path(dir, LATER_SEQ), encode_header(LATER_SEQ, 0)).unwrap();
    }
}

/// `_seq`s read from `from` until the end or the first error; asserts they increase.
fn read_all(partition: &Partition, from: ReadFrom) -> Vec<Seq> {
    let snapshot = partition.snapshot();
    let mut seqs: Vec<Seq> = Vec::new();
    for record in snapshot.records(from) {
        let Ok(record) = record else { break };
        assert!(
            seqs.last().is_none_or(|&last| record.seq > last),
            "_seq order"
        );
        seqs.push(record.seq);
    }
    seqs
}

/// Open, read, verify and append over the files: each step ends in `Ok` or `Err`, and an
/// acknowledged append reads back.
fn check_partition(dir: &Path, read_from: Seq, append: Option<&(Vec<u8>, Vec<u8>)>) {
    let config = PartitionConfig {
        segment_bytes_max: 4096,
        fsync: FsyncPolicy::Never,
        ..PartitionConfig::default()
    };
    let Ok(partition) = Partition::open(dir, config) else {
        return;
    };
    let all = read_all(&partition, ReadFrom::Earliest);
    read_all(&partition, ReadFrom::Seq(read_from));
    read_all(&partition, ReadFrom::After(read_from));
    let _ = partition.verify();
    let Some((key, payload)) = append else { return };
    let Ok(range) = partition.append(&[NewRecord::new(key, payload)]) else {
        return;
    };
    // The `_seq` floor on open comes from the newest segment's name and records; only a sealed
    // segment holding `_seq`s above the name of the segment after it (files no writer could
    // leave) can put a record read before above the new one.
    let consistent = all.last().is_none_or(|&last| last < LATER_SEQ);
    assert!(!consistent || all.last().is_none_or(|&last| range.first > last));
    let snapshot = partition.snapshot();
    let record = snapshot.records(ReadFrom::Seq(range.first)).next();
    let record = record
        .expect("the acknowledged record is there")
        .expect("and reads");
    let read = (record.seq, record.key, record.payload);
    assert_eq!(read, (range.first, &key[..], &payload[..]));
}

proptest! {
    #[test]
    fn record_decode_never_panics_and_round_trips(
        prefix in vec(any::<u8>(), 0..24),
        frame in proptest::option::of((any::<u64>(), frame_spec())),
        suffix in vec(any::<u8>(), 0..24),
        damage in vec(damage(), 0..3),
        position in any::<usize>(),
    ) {
        let mut data = prefix;
        if let Some((seq, frame)) = &frame {
            data.extend_from_slice(&frame.encode(Seq(*seq)));
        }
        data.extend_from_slice(&suffix);
        apply(&mut data, &damage);
        check_decode(&data, position % (data.len() + 2 * FRAME_ALIGN_BYTES));
        for start in 0..data.len().min(64) {
            check_decode(&data, start);
        }
    }

    #[test]
    fn segment_scan_indexes_exactly_the_valid_prefix(
        first_seq in prop_oneof![Just(FIRST_SEQ), any::<u64>().prop_map(Seq)],
        segment in segment_spec(),
    ) {
        check_scan(&segment.build(first_seq), first_seq);
    }

    #[test]
    fn partition_over_arbitrary_files_opens_or_errs(
        segment in segment_spec(),
        index in index_spec(),
        sealed in any::<bool>(),
        read_from in any::<u64>(),
        append in proptest::option::of((vec(any::<u8>(), 0..8), vec(any::<u8>(), 0..64))),
    ) {
        let dir = tempfile::tempdir().unwrap();
        write_files(dir.path(), &segment.build(FIRST_SEQ), &index, sealed);
        check_partition(dir.path(), Seq(read_from), append.as_ref());
    }
}

/// A valid header and one frame of 45 bytes that the file ends right after: the 3 bytes of
/// padding a complete write would have added are missing.
fn segment_with_unpadded_last_frame() -> Vec<u8> {
    let mut bytes = encode_header(FIRST_SEQ, 0).to_vec();
    let mut frame = Vec::new();
    record::encode(&mut frame, FIRST_SEQ, 0, &NewRecord::new(b"k", b"abcd"));
    let frame_len = FRAME_HEADER_BYTES + 1 + 4;
    assert!(frame.len() > frame_len, "the frame has padding to lose");
    bytes.extend_from_slice(&frame[..frame_len]);
    bytes
}

#[test]
fn unpadded_last_frame_of_active_segment_opens() {
    let segment = segment_with_unpadded_last_frame();
    check_scan(&segment, FIRST_SEQ);
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), &segment, &IndexSpec::Absent, false);
    check_partition(dir.path(), FIRST_SEQ, Some(&(b"k".to_vec(), b"v".to_vec())));
}

#[test]
fn unpadded_last_frame_of_sealed_segment_without_index_opens() {
    let segment = segment_with_unpadded_last_frame();
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), &segment, &IndexSpec::Absent, true);
    check_partition(dir.path(), FIRST_SEQ, Some(&(b"k".to_vec(), b"v".to_vec())));
}
