//! The frame and segment decoders: never a panic, and what they accept is exactly what the
//! encoder wrote.

use std::path::Path;

use proptest::collection::vec;
use proptest::prelude::*;
use strand_log::record::{self, check_record, Decoded, NewRecord};
use strand_log::record::{FRAME_ALIGN_BYTES, FRAME_HEADER_BYTES};
use strand_log::segment::{check_header, scan, ScanStop, SEGMENT_HEADER_BYTES};
use strand_log::{SegmentIndex, Seq};

use crate::inputs::*;
use crate::model::check_exactly;
use crate::{FIRST_SEQ, SOURCE_FILE};

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
pub(crate) fn check_scan(data: &[u8], first_seq: Seq) {
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

#[test]
fn record_decode_never_panics_and_round_trips() {
    let frame = proptest::option::of((any::<u64>(), frame_spec()));
    let (prefix, suffix) = (vec(any::<u8>(), 0..24), vec(any::<u8>(), 0..24));
    let strategy = (prefix, frame, suffix, vec(damage(), 0..3), any::<usize>());
    check_exactly(
        256,
        SOURCE_FILE,
        strategy,
        |(prefix, frame, suffix, damage, position)| {
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
            Ok(())
        },
    );
}

#[test]
fn segment_scan_indexes_exactly_the_valid_prefix() {
    let first_seq = prop_oneof![Just(FIRST_SEQ), any::<u64>().prop_map(Seq)];
    check_exactly(
        256,
        SOURCE_FILE,
        (first_seq, segment_spec()),
        |(first_seq, segment)| {
            check_scan(&segment.build(first_seq), first_seq);
            Ok(())
        },
    );
}
