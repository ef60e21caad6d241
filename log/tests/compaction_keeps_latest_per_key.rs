//! Acceptance: keyed compaction keeps, in sealed segments, only the newest version of each key
//! (newest across the whole partition, so a version superseded by a record in the active
//! segment goes too); a tombstone stays while younger than `tombstone_retention_ms` and goes
//! after; records with an empty key are never removed; records in the active segment are never
//! touched; kept records keep their `_seq` and bytes. The resume floors rise exactly as
//! `docs/log-format.md` says (the lowest resumable `_seq` to the highest removed tombstone or
//! record whose previous version was removed; the keyed-catch-up floor to the highest removed
//! newest tombstone), and what they promise holds: above the resumable floor no delete and no
//! named previous version is missing, above the keyed floor every key's newest version is
//! there (`model::assert_resume_floors_hold`). All of it
//! survives a reopen; appends after compaction work; a snapshot taken before still reads
//! everything it saw; a compacted partition has no compaction backlog.
//!
//! Model: a `Vec` of every committed record, filtered by the rule above. Most keyed records
//! name the newest version of their key as their previous version, as the broker's do.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod model;

use std::collections::HashMap;

use model::{
    append_checked, assert_resume_floors_hold, check_exactly, config, read, segment_first_seqs,
    seqs, split_by_segment, ModelRecord, RecordSpec, TestClock, START_UNIX_MS,
};
use proptest::prelude::*;
use proptest::sample::Index;
use strand_log::{CompactionOutcome, CompactionPolicy, Partition, ReadFrom, ResumeFloors, Seq};

/// What compaction must leave of `model`, what it removes, and the floors the removal implies.
fn compacted(
    model: &[ModelRecord],
    active_first_seq: Seq,
    policy: &CompactionPolicy,
    now_unix_ms: u64,
) -> (Vec<ModelRecord>, Vec<ModelRecord>, ResumeFloors) {
    let mut newest: HashMap<&[u8], Seq> = HashMap::new();
    for record in model.iter().filter(|r| !r.key.is_empty()) {
        newest.insert(&record.key, record.seq);
    }
    let expired = |r: &ModelRecord| {
        r.tombstone
            && now_unix_ms.saturating_sub(r.timestamp_unix_ms) >= policy.tombstone_retention_ms
    };
    let keep = |r: &ModelRecord| {
        r.seq >= active_first_seq
            || r.key.is_empty()
            || (newest[r.key.as_slice()] == r.seq && !expired(r))
    };
    let (kept, removed): (Vec<ModelRecord>, Vec<ModelRecord>) =
        model.iter().cloned().partition(keep);
    // The rule of docs/log-format.md, spelled out independently of the implementation.
    let sealed_last = model
        .iter()
        .map(|r| r.seq)
        .filter(|s| *s < active_first_seq)
        .max();
    let sealed_last = sealed_last.unwrap_or(Seq::ZERO);
    let (mut resumable, mut keyed) = (Seq::ZERO, Seq::ZERO);
    for record in model.iter().filter(|r| !r.key.is_empty()) {
        let newest_seq = newest[record.key.as_slice()];
        if !keep(record) && record.tombstone {
            resumable = resumable.max(record.seq);
            if record.seq == newest_seq {
                keyed = keyed.max(record.seq);
            }
        }
        let previous = record.previous_version;
        if previous != Seq::ZERO && previous <= sealed_last && previous < newest_seq {
            resumable = resumable.max(record.seq);
        }
    }
    let floors = ResumeFloors {
        lowest_resumable_seq: resumable.max(keyed),
        lowest_keyed_catch_up_seq: keyed,
    };
    (kept, removed, floors)
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
    let floors_before = partition.resume_floors();
    let (kept, removed, floors) = compacted(model, active_first_seq, policy, now_unix_ms);

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

    let floors = match removed.is_empty() {
        true => floors_before,
        false => floors_before.raised_to(floors),
    };
    assert_eq!(partition.resume_floors(), floors);
    assert_resume_floors_hold(partition, model);
    assert_eq!(partition.compaction_backlog().sealed_segments, 0);
    check_reads(partition, &kept);
    let snapshot = partition.snapshot();
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
/// The flag says whether the record names its key's newest version as its previous version
/// (resolved at append time); otherwise it names a random `_seq`.
fn arb_keyed_record() -> impl Strategy<Value = (RecordSpec, bool)> {
    let key = prop_oneof![1 => Just(Vec::new()), 5 => (0u8..6).prop_map(|k| vec![b'k', k])];
    let tombstone = proptest::bool::weighted(0.2);
    let payload = proptest::collection::vec(any::<u8>(), 0..300);
    let linked = proptest::bool::weighted(0.8);
    (key, tombstone, payload, any::<u64>(), linked).prop_map(
        |(key, tombstone, payload, previous, linked)| {
            let spec = RecordSpec {
                payload: if tombstone { Vec::new() } else { payload },
                key,
                tombstone,
                previous_version: Seq(previous),
            };
            (spec, linked)
        },
    )
}

type Batch = (u64, Vec<(RecordSpec, bool)>);

fn arb_batches(count: std::ops::Range<usize>) -> impl Strategy<Value = Vec<Batch>> {
    let batch = proptest::collection::vec(arb_keyed_record(), 1..5);
    proptest::collection::vec((0u64..500, batch), count)
}

fn append_all(
    partition: &std::sync::Arc<Partition>,
    clock: &TestClock,
    batches: &[Batch],
    model: &mut Vec<ModelRecord>,
) {
    for (step_ms, batch) in batches {
        clock.shift(*step_ms as i64);
        let mut newest: HashMap<&[u8], Seq> = HashMap::new();
        for record in model.iter().filter(|r| !r.key.is_empty()) {
            newest.insert(&record.key, record.seq);
        }
        let records: Vec<RecordSpec> = batch
            .iter()
            .map(|(spec, linked)| match *linked && !spec.key.is_empty() {
                true => RecordSpec {
                    previous_version: newest.get(spec.key.as_slice()).copied().unwrap_or_default(),
                    ..spec.clone()
                },
                false => spec.clone(),
            })
            .collect();
        append_checked(partition, clock, &records, model);
    }
}

#[test]
fn compaction_keeps_latest_per_key() {
    let strategy = (
        arb_batches(20..80),
        arb_batches(1..30),
        any::<Index>(),
        0u64..20_000,
        (0u64..20_000, 0u64..40_000),
    );
    check_exactly(32, file!(), strategy, |args| {
        let (batches, more, snapshot_at, retention_ms, (later_ms, much_later_ms)) = args;
        let dir = tempfile::tempdir().unwrap();
        let clock = TestClock::new(START_UNIX_MS);
        let config = config(&clock, 4096);
        let policy = CompactionPolicy {
            tombstone_retention_ms: retention_ms,
        };
        let partition = Partition::open(dir.path(), config.clone()).unwrap();
        let mut model = Vec::new();
        let split = snapshot_at.index(batches.len());
        append_all(&partition, &clock, &batches[..split], &mut model);
        let (old_snapshot, old_model) = (partition.snapshot(), model.clone());
        append_all(&partition, &clock, &batches[split..], &mut model);
        prop_assert!(segment_first_seqs(dir.path()).len() >= 2);
        let sealed = segment_first_seqs(dir.path()).len() - 1;
        prop_assert_eq!(partition.compaction_backlog().sealed_segments, sealed);

        let model = compact_and_check(&partition, &model, &policy, clock.now() + later_ms);
        // Compacting again at the same time finds nothing more.
        let again = partition.compact(&policy, clock.now() + later_ms).unwrap();
        prop_assert_eq!(again.records_removed, 0);
        let floors = partition.resume_floors();
        drop(partition);

        let partition = Partition::open(dir.path(), config).unwrap();
        prop_assert_eq!(partition.resume_floors(), floors);
        check_reads(&partition, &model);
        let mut model = model;
        append_all(&partition, &clock, &more, &mut model);
        check_reads(&partition, &model);
        // Later, more tombstones have expired and more versions are superseded.
        let now = clock.now() + much_later_ms;
        let model = compact_and_check(&partition, &model, &policy, now);
        let raised = partition.resume_floors();
        prop_assert!(raised.lowest_resumable_seq >= floors.lowest_resumable_seq);
        prop_assert!(raised.lowest_keyed_catch_up_seq >= floors.lowest_keyed_catch_up_seq);
        prop_assert_eq!(&read(&old_snapshot, ReadFrom::Earliest), &old_model);
        drop(old_snapshot);
        drop(partition);

        let partition = Partition::open(dir.path(), model::config(&clock, 4096)).unwrap();
        check_reads(&partition, &model);
        Ok(())
    });
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
