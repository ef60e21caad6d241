//! Frozen segment files of format version 1 (`tests/fixtures/`, see its README) open with an
//! exact outcome: the healthy partition serves exactly its records, and each deliberately
//! damaged copy gives exactly the records or the error variant written below. Every fixture is
//! copied to a temporary directory first, because opening recovers (and may cut) files.
//!
//! The healthy fixture is also compared byte for byte with what this build writes from the same
//! input, so a change to the format cannot slip in unnoticed. The fixtures were written by
//! `STRAND_LOG_BLESS_FIXTURES=1 cargo test -p strand-log --test fixtures_open_with_exact_outcome`
//! (see the README before running it again).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use strand_log::{
    Clock, CompactionPolicy, FsyncPolicy, LogError, NewRecord, Partition, PartitionConfig,
    ReadFrom, RecordFlags, ResumeFloors, Seq,
};

/// 2024-06-01T00:00:00Z: every record and header of the fixtures carries this time.
const NOW_UNIX_MS: u64 = 1_717_200_000_000;
/// The `_seq` of record `i` is `FIRST_SEQ + i`: one millisecond, node 0, sequence `i`.
const FIRST_SEQ: u64 = (NOW_UNIX_MS - 1_704_067_200_000) << 22;
const RECORDS: usize = 120;
const BATCH_SIZES: [usize; 5] = [1, 2, 3, 4, 5];
const SEGMENT_BYTES: u64 = 4096;
/// Records in each segment of the healthy fixture, oldest first; the last one is active.
const RECORDS_PER_SEGMENT: [usize; 3] = [51, 49, 20];
/// The damaged record of `v1_flipped_byte_in_sealed`: the 10th of the second segment.
const FLIPPED_RECORD: usize = 51 + 9;

#[derive(Debug)]
struct FixedClock;

impl Clock for FixedClock {
    fn now_unix_ms(&self) -> u64 {
        NOW_UNIX_MS
    }
}

fn config() -> PartitionConfig {
    PartitionConfig {
        segment_bytes_max: SEGMENT_BYTES,
        fsync: FsyncPolicy::Never,
        clock: Arc::new(FixedClock),
        ..PartitionConfig::default()
    }
}

/// One record of the fixtures, as written and as it must read back.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Expected {
    seq: Seq,
    timestamp_unix_ms: u64,
    previous_version: Seq,
    flags: RecordFlags,
    key: Vec<u8>,
    payload: Vec<u8>,
}

/// Record `i`: 17 keys in turn, every 11th record a tombstone, each pointing at the previous
/// version of its key.
fn record(i: usize) -> Expected {
    let tombstone = i % 11 == 10;
    Expected {
        seq: Seq(FIRST_SEQ + i as u64),
        timestamp_unix_ms: NOW_UNIX_MS,
        previous_version: match i.checked_sub(17) {
            Some(previous) => Seq(FIRST_SEQ + previous as u64),
            None => Seq::ZERO,
        },
        flags: if tombstone {
            RecordFlags::TOMBSTONE
        } else {
            RecordFlags::NONE
        },
        key: format!("user-{:02}", i % 17).into_bytes(),
        payload: match tombstone {
            true => Vec::new(),
            false => format!("row {i}:{}", "x".repeat(i * 7 % 50)).into_bytes(),
        },
    }
}

fn expected(range: std::ops::Range<usize>) -> Vec<Expected> {
    range.map(record).collect()
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn segment_name(first_record: usize) -> String {
    format!("{:020}.log", FIRST_SEQ + first_record as u64)
}

/// File names of the healthy fixture's segments, oldest first.
fn segment_names() -> Vec<String> {
    let mut first = 0;
    RECORDS_PER_SEGMENT
        .iter()
        .map(|count| {
            let name = segment_name(first);
            first += count;
            name
        })
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
    }
}

/// Every file of a directory with its bytes, sorted by name.
fn contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// A private, writable copy of fixture `name`.
fn open_copy(name: &str) -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join(name);
    copy_dir(&fixtures().join(name), &dir);
    (root, dir)
}

/// Records served from `from` up to the first error, and that error.
fn read(partition: &Partition, from: ReadFrom) -> (Vec<Expected>, Option<LogError>) {
    let snapshot = partition.snapshot();
    let mut served = Vec::new();
    for record in snapshot.records(from) {
        match record {
            Ok(r) => served.push(Expected {
                seq: r.seq,
                timestamp_unix_ms: r.timestamp_unix_ms,
                previous_version: r.previous_version,
                flags: r.flags,
                key: r.key.to_vec(),
                payload: r.payload.to_vec(),
            }),
            Err(error) => return (served, Some(error)),
        }
    }
    (served, None)
}

/// Records served from `from`, which must all read cleanly.
fn read_clean(partition: &Partition, from: ReadFrom) -> Vec<Expected> {
    let (served, error) = read(partition, from);
    assert!(error.is_none(), "{error:?}");
    served
}

/// Byte positions of the frames of a segment file.
fn frame_positions(bytes: &[u8]) -> Vec<usize> {
    let mut positions = Vec::new();
    let mut at = 64;
    while at + 4 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        if len == 0 {
            break;
        }
        positions.push(at);
        at += len.next_multiple_of(8);
    }
    positions
}

/// Write the healthy partition with this build, then cut the active segment's preallocated
/// zeros (recovery regrows it) so the fixture stays small.
fn write_healthy(dir: &Path) {
    let partition = Partition::open(dir, config()).unwrap();
    let records = expected(0..RECORDS);
    let mut at = 0;
    for size in BATCH_SIZES.iter().cycle() {
        let batch: Vec<NewRecord<'_>> = records[at..(at + size).min(RECORDS)]
            .iter()
            .map(|r| NewRecord {
                key: &r.key,
                payload: &r.payload,
                flags: r.flags,
                previous_version: r.previous_version,
            })
            .collect();
        partition.append(&batch).unwrap();
        at += batch.len();
        if at == RECORDS {
            break;
        }
    }
    drop(partition);
    let active = contents(dir)
        .into_iter()
        .map(|(name, _)| dir.join(name))
        .filter(|path| path.extension().is_some_and(|x| x == "log"))
        .max()
        .unwrap();
    let bytes = std::fs::read(&active).unwrap();
    let last = *frame_positions(&bytes).last().unwrap();
    let len = u32::from_le_bytes(bytes[last..last + 4].try_into().unwrap()) as usize;
    std::fs::write(&active, &bytes[..last + len.next_multiple_of(8)]).unwrap();
}

/// `partition.meta` as `docs/log-format.md` lays it out, written here independently of the
/// crate's encoder: version 1 holds one floor, version 2 both.
fn meta_bytes(version: u16, floors: ResumeFloors) -> Vec<u8> {
    let mut bytes = b"STRNDMTA".to_vec();
    bytes.extend_from_slice(&version.to_le_bytes());
    bytes.extend_from_slice(&[0; 6]);
    bytes.extend_from_slice(&floors.lowest_resumable_seq.0.to_le_bytes());
    if version >= 2 {
        bytes.extend_from_slice(&floors.lowest_keyed_catch_up_seq.0.to_le_bytes());
    }
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes
}

/// The floors of the meta fixtures: as if retention had removed the first segment (the
/// resumable floor, record 50) and compaction an expired tombstone (record 43).
fn fixture_floors() -> ResumeFloors {
    ResumeFloors {
        lowest_resumable_seq: record(50).seq,
        lowest_keyed_catch_up_seq: record(43).seq,
    }
}

/// Derive each damaged fixture from the healthy one (see `tests/fixtures/README.md`).
fn write_damaged(healthy: &Path, root: &Path) {
    let names = segment_names();
    let variant = |name: &str, segment: &str, damage: &dyn Fn(&mut Vec<u8>)| {
        let dir = root.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        copy_dir(healthy, &dir);
        let path = dir.join(segment);
        let mut bytes = std::fs::read(&path).unwrap();
        damage(&mut bytes);
        std::fs::write(&path, bytes).unwrap();
    };
    variant("v1_flipped_byte_in_sealed", &names[1], &|bytes| {
        let position = frame_positions(bytes)[FLIPPED_RECORD - RECORDS_PER_SEGMENT[0]];
        bytes[position + 40 + 2] ^= 0x04;
    });
    variant("v1_torn_tail", &names[2], &|bytes| {
        let last = *frame_positions(bytes).last().unwrap();
        bytes.truncate(last + 29);
    });
    variant("v1_bad_header_magic_in_sealed", &names[0], &|bytes| {
        bytes[7] = b'X'
    });
    variant("v1_bad_header_magic_in_active", &names[2], &|bytes| {
        bytes[0] = b'Z'
    });
    variant("v1_zeroed_header_in_active", &names[2], &|bytes| {
        bytes[..64].fill(0)
    });
    let with_meta = |name: &str, meta: &[u8]| {
        let dir = root.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        copy_dir(healthy, &dir);
        std::fs::write(dir.join("partition.meta"), meta).unwrap();
    };
    with_meta("v1_meta_v1", &meta_bytes(1, fixture_floors()));
    with_meta("v1_meta_v2", &meta_bytes(2, fixture_floors()));
    let mut garbled = meta_bytes(2, fixture_floors());
    garbled[20] ^= 0x10;
    with_meta("v1_meta_v2_garbled", &garbled);
    let dir = root.join("v2_unsupported_version");
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(healthy, &dir);
    for name in &names {
        let path = dir.join(name);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[8..10].copy_from_slice(&2u16.to_le_bytes());
        let crc = crc32fast::hash(&bytes[..60]);
        bytes[60..64].copy_from_slice(&crc.to_le_bytes());
        std::fs::write(&path, bytes).unwrap();
    }
}

#[test]
fn healthy_fixture_is_what_this_build_writes() {
    let root = tempfile::tempdir().unwrap();
    let written = root.path().join("v1_healthy");
    write_healthy(&written);
    if std::env::var_os("STRAND_LOG_BLESS_FIXTURES").is_some() {
        let healthy = fixtures().join("v1_healthy");
        let _ = std::fs::remove_dir_all(&healthy);
        copy_dir(&written, &healthy);
        write_damaged(&healthy, &fixtures());
    }
    let frozen = contents(&fixtures().join("v1_healthy"));
    let now = contents(&written);
    let names = |files: &[(String, Vec<u8>)]| -> Vec<String> {
        files.iter().map(|(name, _)| name.clone()).collect()
    };
    assert_eq!(names(&now), names(&frozen));
    for ((name, now), (_, frozen)) in now.iter().zip(&frozen) {
        assert!(
            now == frozen,
            "{name}: this build writes different bytes than format v1"
        );
    }
    // The damaged fixtures are exactly the healthy one with the damage described above.
    let derived = root.path().join("derived");
    write_damaged(&fixtures().join("v1_healthy"), &derived);
    for entry in std::fs::read_dir(&derived).unwrap() {
        let name = entry.unwrap().file_name();
        let frozen = contents(&fixtures().join(&name));
        assert!(contents(&derived.join(&name)) == frozen, "{name:?} differs");
    }
}

#[test]
fn v1_healthy_serves_every_record_exactly() {
    let (_root, dir) = open_copy("v1_healthy");
    let names: Vec<String> = contents(&dir).into_iter().map(|(name, _)| name).collect();
    let mut segments = segment_names();
    segments.extend(
        segment_names()[..2]
            .iter()
            .map(|n| n.replace(".log", ".idx")),
    );
    segments.sort();
    assert_eq!(names, segments);
    let partition = Partition::open(&dir, config()).unwrap();
    assert_eq!(
        read_clean(&partition, ReadFrom::Earliest),
        expected(0..RECORDS)
    );
    assert_eq!(partition.verify().unwrap(), RECORDS as u64);
    assert_eq!(partition.last_seq(), Seq(FIRST_SEQ + RECORDS as u64 - 1));
    for i in [0, 50, 51, 77, 100, 119] {
        let from = read_clean(&partition, ReadFrom::Seq(record(i).seq));
        assert_eq!(from, expected(i..RECORDS), "from {i}");
    }
    let next = partition.append(&[NewRecord::new(b"k", b"v")]).unwrap();
    assert!(next.first > Seq(FIRST_SEQ + RECORDS as u64 - 1));
}

#[test]
fn v1_flipped_byte_in_sealed_is_corrupt_segment_after_the_prefix() {
    let (_root, dir) = open_copy("v1_flipped_byte_in_sealed");
    let segment = dir.join(&segment_names()[1]);
    let position = frame_positions(&std::fs::read(&segment).unwrap())[9] as u64;
    let corrupt = |error: Option<LogError>| match error {
        Some(LogError::CorruptSegment {
            path,
            position: at,
            reason,
        }) => path == segment && at == position && reason == "CRC32 mismatch",
        _ => false,
    };
    let partition = Partition::open(&dir, config()).unwrap();
    let (served, error) = read(&partition, ReadFrom::Earliest);
    assert_eq!(served, expected(0..FLIPPED_RECORD));
    assert!(corrupt(error), "expected CorruptSegment at {position}");
    // Starting at the bad record still meets it; starting after it, inside its segment, needs
    // nothing the damage can hold: the intact records after it are served.
    let (served, error) = read(&partition, ReadFrom::Seq(record(FLIPPED_RECORD).seq));
    assert!(served.is_empty() && corrupt(error), "{served:?}");
    let from = read_clean(&partition, ReadFrom::Seq(record(FLIPPED_RECORD + 1).seq));
    assert_eq!(from, expected(FLIPPED_RECORD + 1..RECORDS));
    // The third segment does not cross the damage.
    let from = read_clean(&partition, ReadFrom::Seq(record(105).seq));
    assert_eq!(from, expected(105..RECORDS));
    drop(partition);

    // Without the index, the rebuild indexes around the bad record: the same answers.
    std::fs::remove_file(segment.with_extension("idx")).unwrap();
    let partition = Partition::open(&dir, config()).unwrap();
    let (served, error) = read(&partition, ReadFrom::Earliest);
    assert_eq!(served, expected(0..FLIPPED_RECORD));
    assert!(corrupt(error), "expected CorruptSegment at {position}");
    let from = read_clean(&partition, ReadFrom::Seq(record(FLIPPED_RECORD + 1).seq));
    assert_eq!(from, expected(FLIPPED_RECORD + 1..RECORDS));
}

#[test]
fn v1_torn_tail_serves_all_but_the_torn_record() {
    let (_root, dir) = open_copy("v1_torn_tail");
    let partition = Partition::open(&dir, config()).unwrap();
    assert_eq!(
        read_clean(&partition, ReadFrom::Earliest),
        expected(0..RECORDS - 1)
    );
    assert_eq!(partition.last_seq(), record(RECORDS - 2).seq);
    let next = partition.append(&[NewRecord::new(b"k", b"v")]).unwrap();
    assert!(next.first > record(RECORDS - 2).seq);
    drop(partition);
    let partition = Partition::open(&dir, config()).unwrap();
    let served = read_clean(&partition, ReadFrom::Earliest);
    assert_eq!(served.len(), RECORDS);
    assert_eq!(served[..RECORDS - 1], expected(0..RECORDS - 1));
    assert_eq!(
        (served[RECORDS - 1].seq, &served[RECORDS - 1].payload[..]),
        (next.first, &b"v"[..])
    );
}

#[test]
fn v1_bad_header_magic_in_sealed_is_bad_segment_header_when_read() {
    let (_root, dir) = open_copy("v1_bad_header_magic_in_sealed");
    let partition = Partition::open(&dir, config()).unwrap();
    match read(&partition, ReadFrom::Earliest) {
        (served, Some(LogError::BadSegmentHeader { path, reason })) => {
            assert!(served.is_empty());
            assert_eq!(path, dir.join(&segment_names()[0]));
            assert_eq!(reason, "not a Strand segment (magic)");
        }
        other => panic!("expected BadSegmentHeader, got {other:?}"),
    }
    // Later segments do not depend on the first one's header.
    let first_of_second = RECORDS_PER_SEGMENT[0];
    let from = read_clean(&partition, ReadFrom::Seq(record(first_of_second).seq));
    assert_eq!(from, expected(first_of_second..RECORDS));
}

/// Opening fails with `expected` and leaves every file as it was.
fn assert_open_refused(name: &str, expected: &dyn Fn(LogError, &Path) -> bool) {
    let (_root, dir) = open_copy(name);
    let before = contents(&dir);
    match Partition::open(&dir, config()) {
        Err(error) => assert!(expected(error, &dir), "{name}: wrong error"),
        Ok(_) => panic!("{name}: opened"),
    }
    assert!(
        contents(&dir) == before,
        "{name}: a refused open changed the files"
    );
}

#[test]
fn v1_bad_header_magic_in_active_refuses_to_open() {
    assert_open_refused("v1_bad_header_magic_in_active", &|error, dir| {
        let active = dir.join(&segment_names()[2]);
        matches!(error, LogError::BadSegmentHeader { path, reason }
            if path == active && reason == "not a Strand segment (magic)")
    });
}

#[test]
fn v1_zeroed_header_in_active_with_records_refuses_to_open() {
    assert_open_refused("v1_zeroed_header_in_active", &|error, dir| {
        let active = dir.join(&segment_names()[2]);
        matches!(error, LogError::BadSegmentHeader { path, reason }
            if path == active && reason == "not a Strand segment (magic)")
    });
}

#[test]
fn v2_unsupported_version_refuses_to_open() {
    assert_open_refused("v2_unsupported_version", &|error, dir| {
        let active = dir.join(&segment_names()[2]);
        matches!(error, LogError::UnsupportedVersion { path, found: 2, supported: 1 }
            if path == active)
    });
}

/// Open a fixture that must serve every record of `v1_healthy`; returns it.
fn open_healthy_copy(name: &str) -> (tempfile::TempDir, std::sync::Arc<Partition>) {
    let (root, dir) = open_copy(name);
    let partition = Partition::open(&dir, config()).unwrap();
    assert_eq!(
        read_clean(&partition, ReadFrom::Earliest),
        expected(0..RECORDS)
    );
    (root, partition)
}

#[test]
fn v1_meta_v1_reads_with_the_keyed_floor_at_the_resumable_one() {
    let (_root, partition) = open_healthy_copy("v1_meta_v1");
    let floors = ResumeFloors::both(record(50).seq);
    assert_eq!(partition.resume_floors(), floors);
}

#[test]
fn v1_meta_v2_reads_both_floors() {
    let (_root, partition) = open_healthy_copy("v1_meta_v2");
    assert_eq!(partition.resume_floors(), fixture_floors());
    assert_eq!(partition.lowest_resumable_seq(), record(50).seq);
    assert_eq!(partition.lowest_keyed_catch_up_seq(), record(43).seq);
}

#[test]
fn v1_meta_v2_garbled_assumes_the_sealed_history_incomplete() {
    let (_root, partition) = open_healthy_copy("v1_meta_v2_garbled");
    // Both floors at the last record of the last sealed segment.
    let floors = ResumeFloors::both(record(99).seq);
    assert_eq!(partition.resume_floors(), floors);
}

/// What this build writes is format version 2, byte for byte as documented: compacting the
/// healthy fixture (every sealed record is superseded by one in the active segment, no
/// tombstone is the newest of its key) raises only the resumable floor, to record 116, the
/// last record whose previous version (record 99) was removed.
#[test]
fn compaction_writes_meta_v2_as_documented() {
    let (_root, dir) = open_copy("v1_healthy");
    let partition = Partition::open(&dir, config()).unwrap();
    let policy = CompactionPolicy {
        tombstone_retention_ms: 0,
    };
    let outcome = partition.compact(&policy, NOW_UNIX_MS + 1).unwrap();
    assert_eq!(outcome.records_removed, 100);
    let floors = ResumeFloors {
        lowest_resumable_seq: record(116).seq,
        lowest_keyed_catch_up_seq: Seq::ZERO,
    };
    assert_eq!(partition.resume_floors(), floors);
    let written = std::fs::read(dir.join("partition.meta")).unwrap();
    assert_eq!(written, meta_bytes(2, floors));
}
