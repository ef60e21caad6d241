//! The recovery scan: damage in the middle never loses an intact frame after it, and a torn
//! tail (a cut, or garbage with no intact frame after it) is still found as a tail.

use super::*;
use crate::record::{encode, NewRecord};
use crate::segment::encode_header;
use proptest::prelude::*;

const FIRST: Seq = Seq(1000);

/// A segment of `count` records with `_seq`s `FIRST`, `FIRST + 3`, ...; returns the bytes and
/// each frame's `(position, end, seq)`.
fn segment(count: usize, payload_bytes: usize) -> (Vec<u8>, Vec<(usize, usize, Seq)>) {
    let mut bytes = encode_header(FIRST, 0).to_vec();
    let mut frames = Vec::new();
    for i in 0..count {
        let seq = Seq(FIRST.0 + 3 * i as u64);
        let key = format!("key-{i}");
        let payload = vec![b'a' + (i % 26) as u8; payload_bytes + i % 7];
        let start = bytes.len();
        encode(
            &mut bytes,
            seq,
            7,
            &NewRecord::new(key.as_bytes(), &payload),
        );
        frames.push((start, bytes.len(), seq));
    }
    (bytes, frames)
}

/// The `_seq`s of the frames a scan found, walked in file order around its damaged ranges.
fn seqs(scan: &SegmentScan, bytes: &[u8]) -> Vec<Seq> {
    let mut found = Vec::new();
    let mut position = SEGMENT_HEADER_BYTES as usize;
    loop {
        if let Some(range) = scan.damaged.iter().find(|d| d.start as usize == position) {
            position = range.end as usize;
            continue;
        }
        match record::decode(bytes, position) {
            Ok(Decoded::Record(view, next)) => {
                found.push(view.seq);
                position = next;
            }
            _ => return found,
        }
    }
}

#[test]
fn clean_segment_has_no_damage_and_no_tail() {
    let (bytes, frames) = segment(50, 30);
    let scan = scan_all(&bytes, FIRST);
    assert!(scan.damaged.is_empty() && scan.tail.is_none());
    assert_eq!(scan.index.summary.records, 50);
    assert_eq!(scan.index.summary.data_bytes as usize, frames[49].1);
}

#[test]
fn flip_in_the_first_record_keeps_every_later_one() {
    let (mut bytes, frames) = segment(80, 30);
    bytes[frames[0].0 + 45] ^= 0xff;
    let scan = scan_all(&bytes, FIRST);
    assert_eq!(scan.index.summary.records, 79);
    assert_eq!(scan.damaged.len(), 1);
    let range = scan.damaged[0];
    assert_eq!(
        (range.start as usize, range.end as usize),
        (frames[0].0, frames[1].0)
    );
    assert_eq!(range.before_seq, Some(frames[1].2));
    assert!(scan.tail.is_none());
    // A read that starts after the damage finds an index entry at its end.
    assert_eq!(scan.index.scan_start(frames[1].2, 64) as usize, frames[1].0);
    assert_eq!(
        seqs(&scan, &bytes),
        frames[1..].iter().map(|f| f.2).collect::<Vec<_>>()
    );
}

#[test]
fn zeroed_length_word_with_records_after_it_is_damage() {
    let (mut bytes, frames) = segment(20, 30);
    bytes[frames[5].0..frames[5].0 + 4].fill(0);
    let scan = scan_all(&bytes, FIRST);
    assert_eq!(scan.damaged.len(), 1);
    assert_eq!(scan.index.summary.records, 19);
}

#[test]
fn replayed_older_frame_is_not_a_resync_point() {
    // A copy of an earlier frame after the damage does not continue the order.
    let (mut bytes, frames) = segment(6, 30);
    let first = bytes[frames[0].0..frames[0].1].to_vec();
    bytes[frames[3].0 + 41] ^= 1;
    bytes.truncate(frames[3].1);
    bytes.extend_from_slice(&first);
    let scan = scan_all(&bytes, FIRST);
    assert!(scan.damaged.is_empty());
    assert_eq!(scan.tail.map(|t| t.start as usize), Some(frames[3].0));
}

/// How a test damages a segment.
#[derive(Clone, Debug)]
enum Harm {
    Flip { at: usize, mask: u8 },
    Zero { at: usize, len: usize },
}

fn harm() -> impl Strategy<Value = Harm> {
    prop_oneof![
        (0usize..1 << 20, 1u8..=255).prop_map(|(at, mask)| Harm::Flip { at, mask }),
        (0usize..1 << 20, 1usize..200).prop_map(|(at, len)| Harm::Zero { at, len }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Whatever bytes of the data area are harmed, every frame that was not touched is found,
    /// with its `_seq`, unless it lies in a tail (nothing intact after the first harm).
    #[test]
    fn damage_never_loses_an_untouched_frame(count in 2usize..60, payload in 0usize..300,
                                            harms in proptest::collection::vec(harm(), 1..4)) {
        let (mut bytes, frames) = segment(count, payload);
        let data = SEGMENT_HEADER_BYTES as usize..bytes.len();
        let mut touched = Vec::new();
        for harm in &harms {
            let (at, len) = match *harm {
                Harm::Flip { at, mask } => {
                    let at = data.start + at % data.len();
                    bytes[at] ^= mask;
                    (at, 1)
                }
                Harm::Zero { at, len } => {
                    let at = data.start + at % data.len();
                    let end = (at + len).min(bytes.len());
                    bytes[at..end].fill(0);
                    (at, end - at)
                }
            };
            touched.push(at..at + len);
        }
        let scan = scan_all(&bytes, FIRST);
        let intact: Vec<Seq> = frames
            .iter()
            .filter(|(start, end, _)| !touched.iter().any(|t| t.start < *end && *start < t.end))
            .map(|f| f.2)
            .collect();
        let found = seqs(&scan, &bytes);
        let found_set: std::collections::BTreeSet<Seq> = found.iter().copied().collect();
        // Found frames are real frames, in order.
        let all: Vec<Seq> = frames.iter().map(|f| f.2).collect();
        prop_assert!(found.windows(2).all(|w| w[0] < w[1]));
        prop_assert!(found.iter().all(|s| all.contains(s)));
        prop_assert_eq!(found.len() as u32, scan.index.summary.records);
        // Untouched frames are all found, except those of a tail that has no intact frame
        // after it: there can be none, since an untouched frame is itself intact.
        for seq in &intact {
            prop_assert!(found_set.contains(seq), "lost intact frame {:?}", seq);
        }
    }

    /// A cut anywhere in the last frame (or garbage after it) is a tail, never damage, and
    /// everything before it is found.
    #[test]
    fn torn_tail_is_a_tail(count in 1usize..40, payload in 0usize..200, cut in 1usize..400,
                           garbage in proptest::collection::vec(any::<u8>(), 0..64)) {
        let (mut bytes, frames) = segment(count, payload);
        let (last_start, last_end, _) = frames[count - 1];
        // Less than the frame without its padding (zeros after it could restore the padding).
        let keep = last_start + cut % (last_end - last_start - 7);
        bytes.truncate(keep);
        bytes.extend_from_slice(&garbage);
        let scan = scan_all(&bytes, FIRST);
        prop_assert!(scan.damaged.is_empty());
        prop_assert_eq!(scan.index.summary.records as usize, count - 1);
        prop_assert_eq!(scan.index.summary.data_bytes as usize, last_start);
    }
}
