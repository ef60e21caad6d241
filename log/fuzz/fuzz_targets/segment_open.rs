//! A partition opened over arbitrary files: segment `00000000000000000001.log` (the active
//! segment, or a sealed one when a later segment follows it), optionally with an index file.
//! Opening, reading everything, verifying and appending must each end in `Ok` or `Err`, never
//! in a panic; what is read is in `_seq` order, and an acknowledged append is read back last.

#![no_main]

mod common;

use std::path::Path;

use common::{apply, Damage, SegmentSpec};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use strand_log::segment::{encode_header, index_path, scan, segment_path};
use strand_log::{FsyncPolicy, NewRecord, Partition, PartitionConfig, ReadFrom, Seq};

const FIRST_SEQ: Seq = Seq(1);
/// First `_seq` of the empty segment that follows when the fuzzed one is to be sealed.
const LATER_SEQ: Seq = Seq(1 << 40);

#[derive(Arbitrary, Debug)]
enum IndexSpec {
    Absent,
    /// The index `scan` builds for the segment, then damaged.
    Derived(Vec<Damage>),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Input {
    segment: SegmentSpec,
    sealed: bool,
    index: IndexSpec,
    append: Option<(Vec<u8>, Vec<u8>)>,
    read_from: u64,
}

fn write_files(dir: &Path, input: &Input) {
    let bytes = input.segment.build(FIRST_SEQ);
    let index = match &input.index {
        IndexSpec::Absent => None,
        IndexSpec::Derived(damage) => {
            let mut index = scan(&bytes, FIRST_SEQ).0.encode();
            apply(&mut index, damage);
            Some(index)
        }
        IndexSpec::Raw(raw) => Some(raw.clone()),
    };
    std::fs::write(segment_path(dir, FIRST_SEQ), &bytes).expect("write segment");
    if let Some(index) = index {
        std::fs::write(index_path(dir, FIRST_SEQ), index).expect("write index");
    }
    if input.sealed {
        let later = encode_header(LATER_SEQ, 0);
        std::fs::write(segment_path(dir, LATER_SEQ), later).expect("write later segment");
    }
}

/// Read every record from `from`; `Err` ends the read. Returns the `_seq`s read.
fn read_all(partition: &Partition, from: ReadFrom) -> Vec<Seq> {
    let snapshot = partition.snapshot();
    let mut seqs = Vec::new();
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

/// A scratch directory in memory when there is one: this target opens files, not disks.
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().expect("temp dir")
}

fuzz_target!(|input: Input| {
    let dir = scratch();
    write_files(dir.path(), &input);
    let config = PartitionConfig {
        segment_bytes_max: 4096,
        fsync: FsyncPolicy::Never,
        ..PartitionConfig::default()
    };
    let Ok(partition) = Partition::open(dir.path(), config) else {
        return;
    };
    let all = read_all(&partition, ReadFrom::Earliest);
    let _ = read_all(&partition, ReadFrom::Seq(Seq(input.read_from)));
    let _ = read_all(&partition, ReadFrom::After(Seq(input.read_from)));
    let _ = partition.verify();
    let _ = partition.last_seq();
    let Some((key, payload)) = &input.append else {
        return;
    };
    let Ok(range) = partition.append(&[NewRecord::new(key, payload)]) else {
        return;
    };
    // The `_seq` floor on open comes from the newest segment's name and records; only a sealed
    // segment holding `_seq`s above the name of the segment after it (files no writer could
    // leave) can put a record read before above the new one.
    let consistent = all.last().is_none_or(|&last| last < LATER_SEQ);
    assert!(!consistent || all.last().is_none_or(|&last| range.first > last));
    let after = partition.snapshot();
    let record = after
        .records(ReadFrom::Seq(range.first))
        .next()
        .expect("the acknowledged record is there")
        .expect("the acknowledged record reads back");
    let read = (record.seq, record.key, record.payload);
    assert_eq!(read, (range.first, &key[..], &payload[..]));
});
