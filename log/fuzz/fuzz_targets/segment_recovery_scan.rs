//! `recovery::scan_all` (the scan that tells a torn tail from damage in the middle) over
//! arbitrary segment bytes: it never panics; every frame it indexes decodes, in `_seq` order;
//! its damaged ranges lie between intact frames, each ending at an intact frame whose `_seq`
//! continues the order; a tail has no intact frame after it; and the index it builds decodes.

#![no_main]

mod common;

use common::SegmentSpec;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use strand_log::record::{self, Decoded};
use strand_log::recovery::{resync, scan_all};
use strand_log::segment::SEGMENT_HEADER_BYTES;
use strand_log::{SegmentIndex, Seq};

#[derive(Arbitrary, Debug)]
struct Input {
    first_seq: u64,
    segment: SegmentSpec,
}

fuzz_target!(|input: Input| {
    let first_seq = Seq(input.first_seq);
    let data = input.segment.build(first_seq);
    let scan = scan_all(&data, first_seq);
    // Walk the frames around the damaged ranges: the index counts exactly these.
    let mut position = SEGMENT_HEADER_BYTES as usize;
    let mut last = Seq::ZERO;
    let mut records = 0u32;
    let mut ranges = scan.damaged.iter().peekable();
    loop {
        if let Some(range) = ranges.next_if(|d| d.start as usize == position) {
            assert!(range.start < range.end && range.end as usize <= data.len());
            assert_eq!(range.after_seq, last);
            let Ok(Decoded::Record(view, _)) = record::decode(&data, range.end as usize) else {
                panic!("damaged range does not end at an intact frame");
            };
            assert_eq!(Some(view.seq), range.before_seq);
            position = range.end as usize;
            continue;
        }
        if scan.tail.is_some_and(|t| t.start as usize == position) {
            break;
        }
        match record::decode(&data, position) {
            Ok(Decoded::Record(view, next)) => {
                assert!(view.seq > last && view.seq >= first_seq, "_seq order");
                last = view.seq;
                records += 1;
                position = next;
            }
            _ => break,
        }
    }
    assert!(ranges.next().is_none(), "a damaged range off the walk");
    assert_eq!(records, scan.index.summary.records);
    assert_eq!(last, scan.index.summary.last_seq);
    if let Some(tail) = scan.tail {
        assert_eq!(tail.start as usize, position);
        let floor = last.max(Seq(first_seq.0.saturating_sub(1)));
        assert!(resync(&data, position, floor).is_none(), "a tail with an intact frame after it");
    }
    let decoded = SegmentIndex::decode(&scan.index.encode(), first_seq, u64::MAX);
    assert!(decoded.is_some(), "the index scan_all built decodes");
});
