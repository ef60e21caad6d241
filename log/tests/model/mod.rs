//! Shared pieces of the model-based tests: a clock a test can move backwards, an owned copy of a
//! record to compare against a model (`Vec<ModelRecord>`), and helpers that append while
//! checking what the log assigned and that read a snapshot into owned records.
//!
//! It holds no assertions about a feature of its own; each `prop_*.rs` / acceptance file says
//! what it checks.

// Each test binary includes this module and uses a different subset of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseResult, TestRunner};
use strand_log::record::frame_bytes;
use strand_log::segment::SEGMENT_HEADER_BYTES;
use strand_log::seq::EPOCH_UNIX_MS;
use strand_log::{
    Clock, FsyncPolicy, NewRecord, Partition, PartitionConfig, ReadFrom, ReadSnapshot, RecordFlags,
    RecordView, Seq, SeqRange,
};

/// Run the property `test` on exactly `cases` inputs drawn from `strategy` (plus any failures
/// persisted for `source_file`, pass `file!()`), shrinking a failure as `proptest!` does.
/// Unlike `proptest!`, where `PROPTEST_CASES` replaces the configured count (so a CI setting
/// could lower it to 1, or a local one raise it past the time budget), the count here does not
/// depend on the environment, and the cases actually run are counted.
pub fn check_exactly<S: Strategy>(
    cases: u32,
    source_file: &'static str,
    strategy: S,
    test: impl Fn(S::Value) -> TestCaseResult,
) {
    let config = Config {
        cases,
        source_file: Some(source_file),
        ..Config::default()
    };
    let ran = std::cell::Cell::new(0u32);
    let mut runner = TestRunner::new(config);
    let result = runner.run(&strategy, |value| {
        ran.set(ran.get() + 1);
        test(value)
    });
    if let Err(error) = result {
        panic!("{error}\n{runner}");
    }
    assert!(ran.get() >= cases, "{} of {cases} cases ran", ran.get());
}

/// A day after the Strand epoch: far enough that a clock can go back a long way.
pub const START_UNIX_MS: u64 = EPOCH_UNIX_MS + 86_400_000;

/// Wall clock under the test's control; it may be moved backwards at any time.
#[derive(Debug)]
pub struct TestClock(AtomicU64);

impl TestClock {
    pub fn new(unix_ms: u64) -> Arc<TestClock> {
        Arc::new(TestClock(AtomicU64::new(unix_ms)))
    }

    pub fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    pub fn set(&self, unix_ms: u64) {
        self.0.store(unix_ms, Ordering::SeqCst);
    }

    /// Move by `delta_ms` (negative: backwards), saturating at 0.
    pub fn shift(&self, delta_ms: i64) {
        self.set(self.now().saturating_add_signed(delta_ms));
    }
}

impl Clock for TestClock {
    fn now_unix_ms(&self) -> u64 {
        self.now()
    }
}

/// A partition config for tests: small segments, no fsync (durability is not under test).
pub fn config(clock: &Arc<TestClock>, segment_bytes_max: u64) -> PartitionConfig {
    PartitionConfig {
        segment_bytes_max,
        fsync: FsyncPolicy::Never,
        clock: clock.clone(),
        ..PartitionConfig::default()
    }
}

/// A record as the test generates it, before the log assigns `_seq` and timestamp.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordSpec {
    pub key: Vec<u8>,
    pub payload: Vec<u8>,
    pub tombstone: bool,
    pub previous_version: Seq,
}

impl RecordSpec {
    pub fn new_record(&self) -> NewRecord<'_> {
        let flags = if self.tombstone {
            RecordFlags::TOMBSTONE
        } else {
            RecordFlags::NONE
        };
        NewRecord {
            key: &self.key,
            payload: &self.payload,
            flags,
            previous_version: self.previous_version,
        }
    }

    pub fn frame_bytes(&self) -> u64 {
        frame_bytes(self.key.len(), self.payload.len()) as u64
    }
}

/// Arbitrary records: any key bytes below `key_len_max`, any payload below `payload_len_max`.
pub fn arb_record(key_len_max: usize, payload_len_max: usize) -> BoxedStrategy<RecordSpec> {
    arb_record_in(0..key_len_max, 0..payload_len_max)
}

/// Arbitrary records with key and payload lengths in the given ranges.
pub fn arb_record_in(
    key_len: Range<usize>,
    payload_len: Range<usize>,
) -> BoxedStrategy<RecordSpec> {
    (
        proptest::collection::vec(any::<u8>(), key_len),
        proptest::collection::vec(any::<u8>(), payload_len),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(|(key, payload, tombstone, previous)| RecordSpec {
            key,
            payload,
            tombstone,
            previous_version: Seq(previous),
        })
        .boxed()
}

/// A committed record, owned, so it can be kept in a model and compared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelRecord {
    pub seq: Seq,
    pub timestamp_unix_ms: u64,
    pub previous_version: Seq,
    pub tombstone: bool,
    pub key: Vec<u8>,
    pub payload: Vec<u8>,
}

impl ModelRecord {
    pub fn from_view(view: &RecordView<'_>) -> ModelRecord {
        ModelRecord {
            seq: view.seq,
            timestamp_unix_ms: view.timestamp_unix_ms,
            previous_version: view.previous_version,
            tombstone: view.flags.is_tombstone(),
            key: view.key.to_vec(),
            payload: view.payload.to_vec(),
        }
    }

    pub fn frame_bytes(&self) -> u64 {
        frame_bytes(self.key.len(), self.payload.len()) as u64
    }

    fn matches(&self, spec: &RecordSpec, timestamp_unix_ms: u64) -> bool {
        self.key == spec.key
            && self.payload == spec.payload
            && self.tombstone == spec.tombstone
            && self.previous_version == spec.previous_version
            && self.timestamp_unix_ms == timestamp_unix_ms
    }
}

/// Every record of `snapshot` from `from`, panicking on a read error.
pub fn read(snapshot: &ReadSnapshot, from: ReadFrom) -> Vec<ModelRecord> {
    snapshot
        .records(from)
        .map(|r| match r {
            Ok(view) => ModelRecord::from_view(&view),
            Err(error) => panic!("read from {from:?} failed: {error}"),
        })
        .collect()
}

pub fn seqs(records: &[ModelRecord]) -> Vec<Seq> {
    records.iter().map(|r| r.seq).collect()
}

/// Append `batch` at the clock's current time and check what the log assigned: a range of
/// `batch.len()` increasing `_seq`s above everything in `model`, readable at once with the
/// given contents and the clock's time. The committed records are pushed onto `model`.
pub fn append_checked(
    partition: &Arc<Partition>,
    clock: &TestClock,
    batch: &[RecordSpec],
    model: &mut Vec<ModelRecord>,
) -> SeqRange {
    let records: Vec<NewRecord<'_>> = batch.iter().map(RecordSpec::new_record).collect();
    let now = clock.now();
    let range = partition
        .append(&records)
        .unwrap_or_else(|e| panic!("append of {} records failed: {e}", batch.len()));
    assert_eq!(range.count as usize, batch.len());
    assert!(range.first <= range.last);
    if let Some(previous) = model.last() {
        assert!(
            range.first > previous.seq,
            "batch starts at {} but {} was issued before",
            range.first,
            previous.seq
        );
    }
    let committed = read(&partition.snapshot(), ReadFrom::Seq(range.first));
    assert_eq!(committed.len(), batch.len(), "batch not fully readable");
    assert_eq!(committed.first().map(|r| r.seq), Some(range.first));
    assert_eq!(committed.last().map(|r| r.seq), Some(range.last));
    for (record, spec) in committed.iter().zip(batch) {
        assert!(
            record.matches(spec, now),
            "{record:?} is not {spec:?} at {now}"
        );
    }
    model.extend(committed);
    range
}

/// Append keyless filler records of about 1 KiB (checked, into `model`) until `model` holds
/// at least `segments` times `segment_bytes_max` bytes of frames. A partition whose segments
/// hold at most `segment_bytes_max` bytes then has more than `segments` segment files, so a
/// property test crosses segments whatever data it generated.
pub fn fill_segments(
    partition: &Arc<Partition>,
    clock: &TestClock,
    model: &mut Vec<ModelRecord>,
    segment_bytes_max: u64,
    segments: u64,
) {
    let filler = RecordSpec {
        key: Vec::new(),
        payload: vec![0xf1; 1000],
        tombstone: false,
        previous_version: Seq::ZERO,
    };
    while model_bytes(model) < segments * segment_bytes_max {
        append_checked(partition, clock, std::slice::from_ref(&filler), model);
    }
}

/// Bytes of the frames of `records`.
pub fn model_bytes(records: &[ModelRecord]) -> u64 {
    records.iter().map(ModelRecord::frame_bytes).sum()
}

/// `dir` has at least `at_least` segment files, and at least as many as `records` need at
/// `segment_bytes_max` bytes a segment: the data did cross segments.
pub fn assert_segments_at_least(
    dir: &Path,
    records: &[ModelRecord],
    segment_bytes_max: u64,
    at_least: usize,
) {
    let files = segment_first_seqs(dir).len();
    let room = segment_bytes_max - u64::from(SEGMENT_HEADER_BYTES);
    let needed = model_bytes(records).div_ceil(room) as usize;
    assert!(
        files >= at_least.max(needed),
        "{} holds {files} segments; expected at least {} ({} bytes of records)",
        dir.display(),
        at_least.max(needed),
        model_bytes(records)
    );
}

/// First `_seq`s of the segment files in `dir`, oldest first.
pub fn segment_first_seqs(dir: &Path) -> Vec<Seq> {
    let mut first_seqs: Vec<Seq> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|entry| {
            let name = entry.unwrap().file_name().into_string().ok()?;
            let digits = name.strip_suffix(".log")?;
            (digits.len() == 20).then(|| digits.parse().ok().map(Seq))?
        })
        .collect();
    first_seqs.sort_unstable();
    first_seqs
}

pub fn segment_path(dir: &Path, first_seq: Seq) -> PathBuf {
    dir.join(format!("{:020}.log", first_seq.0))
}

pub fn index_path(dir: &Path, first_seq: Seq) -> PathBuf {
    dir.join(format!("{:020}.idx", first_seq.0))
}

/// `model` split by segment: the records whose `_seq` falls in each segment's range.
pub fn split_by_segment<'m>(
    model: &'m [ModelRecord],
    first_seqs: &[Seq],
) -> Vec<&'m [ModelRecord]> {
    let mut parts = Vec::with_capacity(first_seqs.len());
    for (i, first) in first_seqs.iter().enumerate() {
        let start = model.partition_point(|r| r.seq < *first);
        let end = match first_seqs.get(i + 1) {
            Some(next) => model.partition_point(|r| r.seq < *next),
            None => model.len(),
        };
        parts.push(&model[start..end]);
    }
    parts
}

/// Bytes a segment holding `records` has written: its header plus every padded frame.
pub fn segment_data_bytes(records: &[ModelRecord]) -> u64 {
    u64::from(SEGMENT_HEADER_BYTES) + records.iter().map(ModelRecord::frame_bytes).sum::<u64>()
}

/// The promises of the resume floors, checked against `history` (every record the partition
/// held before retention or compaction last removed some), at each floor; a cursor above a
/// floor reads a subset of what the floor reads, so checking there covers it too.
/// - Resuming after `lowest_resumable_seq`: every tombstone of `history` after it is read, and
///   every previous version that a record read names and that `history` held is still there.
///   (A superseded version whose successor does not name it may be gone: a reader applying
///   the successor as an insert ends in the same state.)
/// - A keyed catch-up after `lowest_keyed_catch_up_seq` reads, for every key changed after it,
///   that key's newest version in `history` as its newest, and every keyless record after it.
pub fn assert_resume_floors_hold(partition: &Partition, history: &[ModelRecord]) {
    let floors = partition.resume_floors();
    assert!(floors.lowest_keyed_catch_up_seq <= floors.lowest_resumable_seq);
    let snapshot = partition.snapshot();
    let stored: HashSet<Seq> = seqs(&read(&snapshot, ReadFrom::Earliest))
        .into_iter()
        .collect();
    let held: HashSet<Seq> = history.iter().map(|r| r.seq).collect();

    let resumable = floors.lowest_resumable_seq;
    for record in read(&snapshot, ReadFrom::After(resumable)) {
        assert!(
            held.contains(&record.seq),
            "{} was never appended",
            record.seq
        );
        let previous = record.previous_version;
        assert!(
            !held.contains(&previous) || stored.contains(&previous),
            "resuming after {resumable} reads {} whose previous version {previous} is gone",
            record.seq
        );
    }
    for tombstone in history.iter().filter(|r| r.tombstone && r.seq > resumable) {
        assert!(
            stored.contains(&tombstone.seq),
            "resuming after {resumable} misses the tombstone {}",
            tombstone.seq
        );
    }

    let keyed = floors.lowest_keyed_catch_up_seq;
    let newest_of = |records: &[ModelRecord]| -> BTreeMap<Vec<u8>, Seq> {
        let keyed = records.iter().filter(|r| !r.key.is_empty());
        keyed.map(|r| (r.key.clone(), r.seq)).collect()
    };
    let keyless = |records: &[ModelRecord]| -> Vec<Seq> {
        records
            .iter()
            .filter(|r| r.key.is_empty())
            .map(|r| r.seq)
            .collect()
    };
    let history_after: Vec<ModelRecord> =
        history.iter().filter(|r| r.seq > keyed).cloned().collect();
    let read_after = read(&snapshot, ReadFrom::After(keyed));
    let changed = newest_of(&history_after);
    let newest = newest_of(history);
    let expected: BTreeMap<Vec<u8>, Seq> = changed.keys().map(|k| (k.clone(), newest[k])).collect();
    assert_eq!(
        newest_of(&read_after),
        expected,
        "keyed catch-up after {keyed}"
    );
    assert_eq!(
        keyless(&read_after),
        keyless(&history_after),
        "keyless records after {keyed}"
    );
}
