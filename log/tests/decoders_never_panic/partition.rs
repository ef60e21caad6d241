//! A partition opened over arbitrary segment and index files opens, reads, verifies and
//! appends with the outcome an oracle derives from the bytes alone.

use std::path::Path;

use proptest::collection::vec;
use proptest::prelude::*;
use strand_log::record::FRAME_HEADER_BYTES;
use strand_log::record::{self, Decoded, NewRecord};
use strand_log::recovery::{scan_all, SegmentScan};
use strand_log::segment::{
    check_header, encode_header, index_path, scan, segment_path, SEGMENT_HEADER_BYTES,
};
use strand_log::{FsyncPolicy, LogError, Partition, PartitionConfig, ReadFrom, Seq};

use crate::codec::check_scan;
use crate::inputs::*;
use crate::model::check_exactly;
use crate::{FIRST_SEQ, LATER_SEQ, SOURCE_FILE, TIME_MS_MAX};

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

/// `_seq`s read from `from` until the end or the first error, and that error.
fn read_all(partition: &Partition, from: ReadFrom) -> (Vec<Seq>, Option<LogError>) {
    let snapshot = partition.snapshot();
    let mut seqs: Vec<Seq> = Vec::new();
    for record in snapshot.records(from) {
        match record {
            Ok(record) => seqs.push(record.seq),
            Err(error) => return (seqs, Some(error)),
        }
    }
    (seqs, None)
}

/// What a partition over the fuzzed files must do, worked out from the bytes alone.
#[derive(Debug)]
struct Oracle {
    /// `Err(e)`: the open fails with an error of the kind of `e`.
    open: Result<(), LogError>,
    /// The fuzzed segment cannot be loaded at all (its header): every read that enters it
    /// ends in an error of this kind, before any record.
    unreadable: Option<LogError>,
    /// The fuzzed segment as reads meet it: intact records and damaged ranges, in file order.
    events: Vec<Event>,
    /// The highest `_seq` the files hold or name; appends are issued above it.
    floor: Seq,
}

/// What a read walking a segment meets.
#[derive(Debug)]
enum Event {
    Record(Seq),
    /// Bytes without an intact frame, then the next intact record's `_seq` (`None`: none in
    /// the segment). A read skips them only if it needs nothing they can hold: when the next
    /// intact record is at or below its start; otherwise it ends with `CorruptSegment`.
    Damage(Option<Seq>),
}

impl Oracle {
    /// The `_seq`s a read from `start` serves, and whether it ends in an error.
    fn read(&self, start: Seq) -> (Vec<Seq>, bool) {
        if self.unreadable.is_some() {
            return (Vec::new(), true);
        }
        let mut served = Vec::new();
        for event in &self.events {
            match *event {
                Event::Record(seq) if seq >= start => served.push(seq),
                Event::Record(_) => {}
                Event::Damage(Some(next)) if next <= start => {}
                Event::Damage(_) => return (served, true),
            }
        }
        (served, false)
    }

    fn error_kind(&self) -> LogError {
        match &self.unreadable {
            Some(LogError::BadSegmentHeader { path, reason }) => LogError::BadSegmentHeader {
                path: path.clone(),
                reason,
            },
            Some(LogError::UnsupportedVersion {
                path,
                found,
                supported,
            }) => LogError::UnsupportedVersion {
                path: path.clone(),
                found: *found,
                supported: *supported,
            },
            _ => LogError::CorruptSegment {
                path: Default::default(),
                position: 0,
                reason: "",
            },
        }
    }
}

fn oracle(dir: &Path, segment: &[u8], sealed: bool) -> Oracle {
    let path = segment_path(dir, FIRST_SEQ);
    let header = check_header(segment, &path, FIRST_SEQ);
    let scan = scan_all(segment, FIRST_SEQ);
    if sealed {
        // Not read at open (the empty segment after it is the active one). A read that enters
        // it loads it: a bad header makes all of it unreadable; damaged frames, and anything
        // but zeros after the last intact one, are met by the reads that need them.
        return Oracle {
            open: Ok(()),
            unreadable: header.err(),
            events: events(segment, &scan, true),
            floor: LATER_SEQ,
        };
    }
    // The active segment: removed if its creation was torn (shorter than a header, or no
    // nonzero byte at all), refused if its header is bad. Else its torn tail (an invalid
    // frame with no intact one after it) is cut; damage with intact records after it is kept,
    // never cut, and reads meet it as in a sealed segment.
    let torn = segment.len() < SEGMENT_HEADER_BYTES as usize || segment.iter().all(|&b| b == 0);
    let (open, events) = match header {
        _ if torn => (Ok(()), Vec::new()),
        Err(error) => (Err(error), Vec::new()),
        Ok(()) => (Ok(()), events(segment, &scan, false)),
    };
    let floor = match torn {
        true => Seq::ZERO,
        false => FIRST_SEQ.max(scan.index.summary.last_seq),
    };
    Oracle {
        open,
        unreadable: None,
        events,
        floor,
    }
}

/// The records and damaged ranges of a segment in file order, walked from its first frame:
/// each intact frame leads to the next; an invalid one to the end of its damaged range.
fn events(segment: &[u8], scan: &SegmentScan, with_tail: bool) -> Vec<Event> {
    let mut events = Vec::new();
    let mut position = SEGMENT_HEADER_BYTES as usize;
    loop {
        if let Ok(Decoded::Record(view, next)) = record::decode(segment, position) {
            if scan.damaged.iter().all(|d| d.start as usize != position)
                && scan.tail.is_none_or(|t| t.start as usize != position)
            {
                events.push(Event::Record(view.seq));
                position = next;
                continue;
            }
        }
        if let Some(range) = scan.damaged.iter().find(|d| d.start as usize == position) {
            events.push(Event::Damage(range.before_seq));
            position = range.end as usize;
            continue;
        }
        if with_tail && scan.tail.is_some_and(|t| t.start as usize == position) {
            events.push(Event::Damage(None));
        }
        let records = events
            .iter()
            .filter(|e| matches!(e, Event::Record(_)))
            .count();
        assert_eq!(
            records as u32, scan.index.summary.records,
            "walk and scan agree"
        );
        return events;
    }
}

fn same_kind(actual: &LogError, expected: &LogError) -> bool {
    std::mem::discriminant(actual) == std::mem::discriminant(expected)
}

/// A read from `from` serves what the oracle says: the records at or after its start, and
/// the fuzzed segment's error if the read enters it and needs damaged bytes.
fn check_read(partition: &Partition, oracle: &Oracle, sealed: bool, from: ReadFrom) {
    let (named, start) = match from {
        ReadFrom::Seq(s) => (s, s),
        ReadFrom::After(s) => (s, s.successor()),
        _ => (Seq::ZERO, Seq::ZERO),
    };
    // A read starts in the last segment named at or below its `_seq`: from `LATER_SEQ` on that
    // is the empty active segment, whatever `_seq`s the fuzzed one holds.
    let enters_fuzzed = !sealed || named < LATER_SEQ;
    let (expected, fails) = match enters_fuzzed {
        true => oracle.read(start),
        false => (Vec::new(), false),
    };
    let (served, error) = read_all(partition, from);
    assert_eq!(served, expected, "records read from {from:?}");
    match (&error, fails) {
        (None, false) => {}
        (Some(error), true) if same_kind(error, &oracle.error_kind()) => {}
        (error, _) => panic!(
            "read from {from:?} ended in {error:?}, expected {:?}",
            fails.then(|| oracle.error_kind())
        ),
    }
}

/// Open, read, verify and append over the files, each with the outcome the oracle derives
/// from the bytes: a failed open fails the test unless the files call for exactly that kind
/// of error, and every read is compared with the valid prefix.
fn check_partition(
    dir: &Path,
    segment: &[u8],
    sealed: bool,
    read_from: Seq,
    append: Option<&(Vec<u8>, Vec<u8>)>,
) {
    let config = PartitionConfig {
        segment_bytes_max: 4096,
        fsync: FsyncPolicy::Never,
        ..PartitionConfig::default()
    };
    let oracle = oracle(dir, segment, sealed);
    let partition = match (Partition::open(dir, config), &oracle.open) {
        (Ok(partition), Ok(())) => partition,
        (Err(error), Err(expected)) if same_kind(&error, expected) => return,
        (result, expected) => panic!("open gave {result:?}, expected {expected:?}"),
    };
    check_read(&partition, &oracle, sealed, ReadFrom::Earliest);
    check_read(&partition, &oracle, sealed, ReadFrom::Seq(read_from));
    check_read(&partition, &oracle, sealed, ReadFrom::After(read_from));
    match (partition.verify(), oracle.read(Seq::ZERO)) {
        (Ok(records), (expected, false)) => assert_eq!(records, expected.len() as u64),
        (Err(error), (_, true)) if same_kind(&error, &oracle.error_kind()) => {}
        (result, expected) => panic!("verify gave {result:?}, expected {expected:?}"),
    }
    let Some((key, payload)) = append else { return };
    let range = match partition.append(&[NewRecord::new(key, payload)]) {
        Ok(range) => range,
        // Only files naming `_seq`s at the end of time leave nothing to issue.
        Err(LogError::SeqExhausted(_)) if oracle.floor.epoch_ms() >= TIME_MS_MAX => return,
        Err(error) => panic!("append above {} failed: {error}", oracle.floor),
    };
    assert!(
        range.first > oracle.floor,
        "{} issued at or below {}",
        range.first,
        oracle.floor
    );
    let snapshot = partition.snapshot();
    let record = snapshot.records(ReadFrom::Seq(range.first)).next();
    let record = record
        .expect("the acknowledged record is there")
        .expect("and reads");
    let read = (record.seq, record.key, record.payload);
    assert_eq!(read, (range.first, &key[..], &payload[..]));
}

#[test]
fn partition_over_arbitrary_files_opens_or_errs_as_the_bytes_say() {
    let append = proptest::option::of((vec(any::<u8>(), 0..8), vec(any::<u8>(), 0..64)));
    // Mostly near the records' `_seq`s (they start at 1 and step by a few), so a read from a
    // `_seq` starts among the records and its result says something.
    let read_from = prop_oneof![3 => 0u64..48, 1 => any::<u64>()];
    let strategy = (
        segment_spec(),
        index_spec(),
        any::<bool>(),
        read_from,
        append,
    );
    check_exactly(
        256,
        SOURCE_FILE,
        strategy,
        |(segment, index, sealed, read_from, append)| {
            let dir = tempfile::tempdir().unwrap();
            let bytes = segment.build(FIRST_SEQ);
            write_files(dir.path(), &bytes, &index, sealed);
            check_partition(dir.path(), &bytes, sealed, Seq(read_from), append.as_ref());
            Ok(())
        },
    );
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
    let append = (b"k".to_vec(), b"v".to_vec());
    check_partition(dir.path(), &segment, false, FIRST_SEQ, Some(&append));
}

#[test]
fn unpadded_last_frame_of_sealed_segment_without_index_opens() {
    let segment = segment_with_unpadded_last_frame();
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), &segment, &IndexSpec::Absent, true);
    let append = (b"k".to_vec(), b"v".to_vec());
    check_partition(dir.path(), &segment, true, FIRST_SEQ, Some(&append));
}
