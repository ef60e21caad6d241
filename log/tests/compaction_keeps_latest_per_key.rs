//! Acceptance: keyed compaction keeps, in sealed segments, only the newest version of each key
//! (newest across the whole partition, so a version superseded by a record in the active
//! segment goes too); a tombstone stays while younger than `tombstone_retention_ms` and goes
//! after; records with an empty key are never removed; records in the active segment are never
//! touched; kept records keep their `_seq` and bytes. `lowest_resumable_seq()` becomes the
//! highest removed `_seq`, and every record above it is still there. All of it survives a
//! reopen; appends after compaction work; a snapshot taken before still reads everything it saw.
//!
//! Model: a `Vec` of every committed record, filtered by the rule above.

mod model;

use std::collections::HashMap;

use model::{
    append_checked, config, read, segment_first_seqs, seqs, split_by_segment, ModelRecord,
    RecordSpec, TestClock, START_UNIX_MS,
};
use proptest::prelude::*;
use proptest::sample::Index;
use strand_log::{CompactionOutcome, CompactionPolicy, Partition, ReadFrom, Seq};

/// What compaction must leave of `model`: `(kept, removed)`.
fn compacted(
    model: &[ModelRecord],
    active_first_seq: Seq,
    policy: &CompactionPolicy,
    now_unix_ms: u64,
) -> (Vec<ModelRecord>, Vec<ModelRecord>) {
    let mut newest: HashMap<&[u8], Seq> = HashMap::new();
    for record in model.iter().filter(|r| !r.key.is_empty()) {
        newest.insert(&record.key, record.seq);
    }
    let keep = |r: &ModelRecord| {
        let expired = r.tombstone
            && now_unix_ms.saturating_sub(r.timestamp_unix_ms) >= policy.tombstone_retention_ms;
        r.seq >= active_first_seq
            || r.key.is_empty()
            || (newest[r.key.as_slice()] == r.seq && !expired)
    };
    model.iter().cloned().partition(keep)
}

/// Compact now and check the outcome, the files and the reads against the model; returns the
/// new model.
fn compact_and_check(
    partition: &Partition,
    model: &[ModelRecord],
    policy: &CompactionPolicy,
    now_unix_ms: u64,
) -> Vec<ModelRecord> {
    let dir = partition.dir();
    let first_seqs = segment_first_seqs(dir);
    let active_first_seq = *first_seqs.last().unwrap();
    let lowest_resumable_before = partition.lowest_resumable_seq();
    let (kept, removed) = compacted(model, active_first_seq, policy, now_unix_ms);

    let outcome = partition.compact(policy, now_unix_ms).unwrap();

    let mut expected = CompactionOutcome {
        records_removed: removed.len() as u64,
        ..CompactionOutcome::default()
    };
    let mut expected_files = Vec::new();
    let parts_before = split_by_segment(model, &first_seqs);
    let parts_after = split_by_segment(&kept, &first_seqs);
    for ((first_seq, before), after) in first_seqs.iter().zip(parts_before).zip(parts_after) {
        match (before.len() - after.len(), after.len()) {
            (0, _) => expected_files.push(*first_seq),
            (_, 0) => expected.segments_removed += 1,
            _ => {
                expected.segments_rewritten += 1;
                expected_files.push(*first_seq);
            }
        }
    }
    assert_eq!(outcome, expected);
    assert_eq!(segment_first_seqs(dir), expected_files);

    let lowest_resumable = removed
        .iter()
        .map(|r| r.seq)
        .max()
        .unwrap_or(Seq::ZERO)
        .max(lowest_resumable_before);
    assert_eq!(partition.lowest_resumable_seq(), lowest_resumable);
    check_reads(partition, &kept);
    // Above the resume point the history is complete: exactly the records ever appended.
    let above = |records: &[ModelRecord]| -> Vec<ModelRecord> {
        records
            .iter()
            .filter(|r| r.seq > lowest_resumable)
            .cloned()
            .collect()
    };
    assert_eq!(above(&kept), above(model));
    let snapshot = partition.snapshot();
    assert_eq!(
        read(&snapshot, ReadFrom::After(lowest_resumable)),
        above(model)
    );
    // A read from a removed `_seq` starts at the next record kept.
    for gone in &removed {
        let expected: Vec<Seq> = kept
            .iter()
            .map(|r| r.seq)
            .filter(|s| *s > gone.seq)
            .collect();
        assert_eq!(seqs(&read(&snapshot, ReadFrom::Seq(gone.seq))), expected);
    }
    kept
}

fn check_reads(partition: &Partition, model: &[ModelRecord]) {
    let snapshot = partition.snapshot();
    assert_eq!(read(&snapshot, ReadFrom::Earliest), model);
    for record in model.iter().step_by(7) {
        let from: Vec<ModelRecord> = model
            .iter()
            .filter(|r| r.seq >= record.seq)
            .cloned()
            .collect();
        assert_eq!(read(&snapshot, ReadFrom::Seq(record.seq)), from);
    }
    assert_eq!(partition.verify().unwrap(), model.len() as u64);
}

/// Records over a handful of keys; about one in six has no key, one in five is a tombstone.
fn arb_keyed_record() -> impl Strategy<Value = RecordSpec> {
    let key = prop_oneof![1 => Just(Vec::new()), 5 => (0u8..6).prop_map(|k| vec![b'k', k])];
    let tombstone = proptest::bool::weighted(0.2);
    let payload = proptest::collection::vec(any::<u8>(), 0..300);
    (key, tombstone, payload, any::<u64>()).prop_map(|(key, tombstone, payload, previous)| {
        RecordSpec {
            payload: if tombstone { Vec::new() } else { payload },
            key,
            tombstone,
            previous_version: Seq(previous),
        }
    })
}

fn arb_batches(
    count: std::ops::Range<usize>,
) -> impl Strategy<Value = Vec<(u64, Vec<RecordSpec>)>> {
    let batch = proptest::collection::vec(arb_keyed_record(), 1..5);
    proptest::collection::vec((0u64..500, batch), count)
}

fn append_all(
    partition: &std::sync::Arc<Partition>,
    clock: &TestClock,
    batches: &[(u64, Vec<RecordSpec>)],
    model: &mut Vec<ModelRecord>,
) {
    for (step_ms, batch) in batches {
        clock.shift(*step_ms as i64);
        append_checked(partition, clock, batch, model);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn compaction_keeps_latest_per_key(
        batches in arb_batches(20..80),
        more in arb_batches(1..30),
        snapshot_at in any::<Index>(),
        retention_ms in 0u64..20_000,
        (later_ms, much_later_ms) in (0u64..20_000, 0u64..40_000),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let clock = TestClock::new(START_UNIX_MS);
        let config = config(&clock, 4096);
        let policy = CompactionPolicy { tombstone_retention_ms: retention_ms };
        let partition = Partition::open(dir.path(), config.clone()).unwrap();
        let mut model = Vec::new();
        let split = snapshot_at.index(batches.len());
        append_all(&partition, &clock, &batches[..split], &mut model);
        let (old_snapshot, old_model) = (partition.snapshot(), model.clone());
        append_all(&partition, &clock, &batches[split..], &mut model);
        prop_assert!(segment_first_seqs(dir.path()).len() >= 2);

        let model = compact_and_check(&partition, &model, &policy, clock.now() + later_ms);
        // Compacting again at the same time finds nothing more.
        let again = partition.compact(&policy, clock.now() + later_ms).unwrap();
        prop_assert_eq!(again.records_removed, 0);
        let lowest_resumable = partition.lowest_resumable_seq();
        drop(partition);

        let partition = Partition::open(dir.path(), config).unwrap();
        prop_assert_eq!(partition.lowest_resumable_seq(), lowest_resumable);
        check_reads(&partition, &model);
        let mut model = model;
        append_all(&partition, &clock, &more, &mut model);
        check_reads(&partition, &model);
        // Later, more tombstones have expired and more versions are superseded.
        let now = clock.now() + much_later_ms;
        let model = compact_and_check(&partition, &model, &policy, now);
        prop_assert!(partition.lowest_resumable_seq() >= lowest_resumable);
        prop_assert_eq!(&read(&old_snapshot, ReadFrom::Earliest), &old_model);
        drop(old_snapshot);
        drop(partition);

        let partition = Partition::open(dir.path(), model::config(&clock, 4096)).unwrap();
        check_reads(&partition, &model);
    }
}

/// A reader holding a snapshot from before compaction reads the full history it saw, even
/// though the files it maps were replaced or unlinked meanwhile.
#[test]
fn snapshot_from_before_compaction_reads_everything() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(START_UNIX_MS);
    let partition = Partition::open(dir.path(), config(&clock, 4096)).unwrap();
    let mut model = Vec::new();
    for i in 0..200u32 {
        let record = RecordSpec {
            key: vec![(i % 3) as u8 + 1],
            payload: i.to_le_bytes().repeat(20),
            tombstone: false,
            previous_version: Seq::ZERO,
        };
        append_checked(&partition, &clock, &[record], &mut model);
    }
    // Opened afresh, nothing is mapped until compaction reads it.
    drop(partition);
    let partition = Partition::open(dir.path(), config(&clock, 4096)).unwrap();
    let before = partition.snapshot();
    let sealed = segment_first_seqs(dir.path()).len() - 1;
    // The newest version of every key is in the active segment: all sealed records go.
    let outcome = partition
        .compact(&CompactionPolicy::default(), clock.now())
        .unwrap();
    let expected = CompactionOutcome {
        segments_rewritten: 0,
        segments_removed: sealed,
        records_removed: 200 - active_records(&partition),
    };
    assert_eq!(outcome, expected);
    assert_eq!(segment_first_seqs(dir.path()).len(), 1);
    let last = RecordSpec {
        key: vec![1],
        payload: b"after compaction".to_vec(),
        tombstone: false,
        previous_version: model[198].seq,
    };
    append_checked(&partition, &clock, &[last], &mut Vec::new());
    assert_eq!(read(&before, ReadFrom::Earliest), model);
    let from = model[150].seq;
    assert_eq!(read(&before, ReadFrom::Seq(from)), model[150..]);
}

/// Records in the active segment, which compaction leaves alone.
fn active_records(partition: &Partition) -> u64 {
    let first_seqs = segment_first_seqs(partition.dir());
    let active_first = *first_seqs.last().unwrap();
    partition
        .snapshot()
        .records(ReadFrom::Seq(active_first))
        .count() as u64
}

/// A tombstone is kept while it is younger than the retention and dropped from the moment it
/// is as old as the retention.
#[test]
fn tombstone_goes_exactly_when_retention_has_passed() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(START_UNIX_MS);
    let partition = Partition::open(dir.path(), config(&clock, 4096)).unwrap();
    let mut model = Vec::new();
    let value = RecordSpec {
        key: b"gone".to_vec(),
        payload: vec![5; 1500],
        tombstone: false,
        previous_version: Seq::ZERO,
    };
    let delete = RecordSpec {
        key: b"gone".to_vec(),
        payload: Vec::new(),
        tombstone: true,
        previous_version: Seq::ZERO,
    };
    let filler = RecordSpec {
        key: Vec::new(),
        payload: vec![6; 3000],
        tombstone: false,
        previous_version: Seq::ZERO,
    };
    append_checked(&partition, &clock, &[value, delete], &mut model);
    clock.shift(10);
    // Seal the segment holding the value and its tombstone.
    append_checked(
        &partition,
        &clock,
        std::slice::from_ref(&filler),
        &mut model,
    );
    assert_eq!(segment_first_seqs(dir.path()).len(), 2);
    let tombstone_ms = model[1].timestamp_unix_ms;
    let policy = CompactionPolicy {
        tombstone_retention_ms: 5_000,
    };

    let model = compact_and_check(&partition, &model, &policy, tombstone_ms + 4_999);
    assert_eq!(
        seqs(&model).len(),
        2,
        "value superseded, tombstone still young"
    );
    assert!(model[0].tombstone);
    let model = compact_and_check(&partition, &model, &policy, tombstone_ms + 5_000);
    assert_eq!(model.len(), 1, "expired tombstone dropped");
    assert!(model[0].key.is_empty());
}
