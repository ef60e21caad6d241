//! `segment::check_header` and `segment::scan` over arbitrary segment bytes: they never panic,
//! and the index `scan` builds describes exactly the valid prefix it walked.

#![no_main]

mod common;

use std::path::Path;

use common::SegmentSpec;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use strand_log::record::{self, Decoded};
use strand_log::segment::{check_header, scan, ScanStop, SEGMENT_HEADER_BYTES};
use strand_log::{SegmentIndex, Seq};

#[derive(Arbitrary, Debug)]
struct Input {
    first_seq: u64,
    segment: SegmentSpec,
}

fuzz_target!(|input: Input| {
    let first_seq = Seq(input.first_seq);
    let data = input.segment.build(first_seq);
    let _ = check_header(&data, Path::new("fuzz.log"), first_seq);
    let (index, stop) = scan(&data, first_seq);
    let summary = index.summary;
    let data_start = SEGMENT_HEADER_BYTES as usize;
    // Walk the frames again: the index must count exactly these.
    let mut position = data_start;
    let mut last = Seq::ZERO;
    for _ in 0..summary.records {
        let Ok(Decoded::Record(view, next)) = record::decode(&data, position) else {
            panic!("indexed frame at {position} does not decode");
        };
        assert!(view.seq > last && view.seq >= first_seq);
        last = view.seq;
        position = next;
    }
    assert_eq!(summary.last_seq, last);
    assert_eq!(summary.data_bytes as usize, position);
    if summary.records > 0 {
        assert!(
            position <= data.len(),
            "indexed data ends inside the segment"
        );
    }
    match stop {
        ScanStop::CleanEnd => assert_eq!(record::decode(&data, position), Ok(Decoded::End)),
        ScanStop::Invalid { position: at, .. } => assert_eq!(at as usize, position),
    }
    let entries = index.entries();
    for pair in entries.windows(2) {
        assert!(pair[0].seq < pair[1].seq && pair[0].position < pair[1].position);
    }
    assert!(entries.iter().all(|e| (e.position as usize) < position));
    let decoded = SegmentIndex::decode(&index.encode(), first_seq, u64::MAX)
        .expect("an index scan built decodes");
    assert_eq!(decoded.entries(), entries);
    assert_eq!(decoded.summary, summary);
});
