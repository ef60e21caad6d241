//! Acceptance: retention removes whole sealed segments, oldest first, and never the active one.
//! By size: while the partition is larger than `max_bytes`. By age: while a segment's newest
//! record (its timestamp comes from the partition's clock) is older than `max_age_ms` at the
//! `now_unix_ms` given. Afterwards `first_retained_seq()` is the first record left,
//! `lowest_resumable_seq()` and `lowest_keyed_catch_up_seq()` are the last `_seq` of the last
//! removed segment (and survive a reopen), a read from below the retained range starts at the first retained record, and a
//! snapshot taken before still reads everything it saw.
//!
//! Model: a `Vec` of every committed record, split by segment file. Every case spans at least
//! four segments (generated batches are topped up with filler), so there is history to remove.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod model;

use model::{
    append_checked, arb_record_in, assert_resume_floors_hold, assert_segments_at_least,
    check_exactly, config, fill_segments, index_path, read, segment_data_bytes, segment_first_seqs,
    split_by_segment, ModelRecord, RecordSpec, TestClock, START_UNIX_MS,
};
use proptest::prelude::*;
use strand_log::{Partition, ReadFrom, RetentionOutcome, RetentionPolicy, Seq};

/// How many of the oldest segments `policy` must remove, given each segment's records (the
/// last segment is the active one).
fn expected_removed(parts: &[&[ModelRecord]], policy: &RetentionPolicy, now_unix_ms: u64) -> usize {
    let mut total_bytes: u64 = parts.iter().map(|p| segment_data_bytes(p)).sum();
    let sealed = &parts[..parts.len() - 1];
    let mut removed = 0;
    for records in sealed {
        let newest = records.iter().map(|r| r.timestamp_unix_ms).max().unwrap();
        let too_old = policy
            .max_age_ms
            .is_some_and(|age| now_unix_ms - newest > age);
        let too_big = policy.max_bytes.is_some_and(|max| total_bytes > max);
        if !too_old && !too_big {
            break;
        }
        total_bytes -= segment_data_bytes(records);
        removed += 1;
    }
    removed
}

/// The partition's files, reads and resume point match a model where the first `removed`
/// segments are gone.
fn check_retained(
    partition: &Partition,
    first_seqs: &[Seq],
    parts: &[&[ModelRecord]],
    removed: usize,
    lowest_resumable_before: Seq,
) {
    let dir = partition.dir();
    assert_eq!(segment_first_seqs(dir), first_seqs[removed..]);
    for first_seq in &first_seqs[..removed] {
        assert!(
            !index_path(dir, *first_seq).exists(),
            "index of removed segment left"
        );
    }
    let retained: Vec<ModelRecord> = parts[removed..].concat();
    let snapshot = partition.snapshot();
    assert_eq!(read(&snapshot, ReadFrom::Earliest), retained);
    let first_retained = retained.first().map(|r| r.seq);
    assert_eq!(partition.first_retained_seq().unwrap(), first_retained);
    let lowest_resumable = match removed {
        0 => lowest_resumable_before,
        n => parts[n - 1].last().unwrap().seq,
    };
    assert_eq!(partition.lowest_resumable_seq(), lowest_resumable);
    // Retention removes newest versions too: a keyed catch-up cannot start lower either.
    assert_eq!(partition.lowest_keyed_catch_up_seq(), lowest_resumable);
    // Reads from below the retained range start at the first retained record.
    assert_eq!(read(&snapshot, ReadFrom::Seq(Seq(1))), retained);
    assert_eq!(read(&snapshot, ReadFrom::After(lowest_resumable)), retained);
    for gone in parts[..removed].iter().flat_map(|p| p.iter()) {
        assert_eq!(read(&snapshot, ReadFrom::Seq(gone.seq)), retained);
    }
}

fn arb_batches() -> impl Strategy<Value = Vec<(i64, Vec<RecordSpec>)>> {
    let batch = proptest::collection::vec(arb_record_in(0..16, 100..900), 1..4);
    // The clock sometimes goes back: a younger segment may then precede an older one, and
    // retention must still remove only a prefix (a gap would break the resume point).
    let step = prop_oneof![4 => 0i64..2_000, 1 => -3_000i64..0];
    proptest::collection::vec((step, batch), 10..60)
}

fn arb_policy(span_ms: u64) -> impl Strategy<Value = RetentionPolicy> {
    let age = prop_oneof![Just(None), (0..span_ms + 2).prop_map(Some)];
    let bytes = prop_oneof![Just(None), (0u64..200_000).prop_map(Some)];
    (age, bytes).prop_map(|(max_age_ms, max_bytes)| RetentionPolicy {
        max_age_ms,
        max_bytes,
    })
}

#[test]
fn retention_removes_oldest_sealed_segments_only() {
    let first = arb_policy(60_000).prop_flat_map(|p| (Just(p), 0u64..3_000));
    let strategy = (arb_batches(), first, arb_policy(60_000));
    check_exactly(
        48,
        file!(),
        strategy,
        |(batches, (policy, later), second)| {
            let dir = tempfile::tempdir().unwrap();
            let clock = TestClock::new(START_UNIX_MS);
            let config = config(&clock, 4096);
            let partition = Partition::open(dir.path(), config.clone()).unwrap();
            let mut model = Vec::new();
            for (step_ms, batch) in &batches {
                clock.shift(*step_ms);
                append_checked(&partition, &clock, batch, &mut model);
            }
            fill_segments(&partition, &clock, &mut model, 4096, 3);
            assert_segments_at_least(dir.path(), &model, 4096, 4);
            let first_seqs = segment_first_seqs(dir.path());
            let parts = split_by_segment(&model, &first_seqs);
            let before = partition.snapshot();
            let newest = model.iter().map(|r| r.timestamp_unix_ms).max().unwrap();
            let now = newest + later;

            let removed = expected_removed(&parts, &policy, now);
            let outcome = partition.apply_retention(&policy, now).unwrap();
            let bytes_removed = parts[..removed].iter().map(|p| segment_data_bytes(p)).sum();
            prop_assert_eq!(
                outcome,
                RetentionOutcome {
                    segments_removed: removed,
                    bytes_removed
                }
            );
            check_retained(&partition, &first_seqs, &parts, removed, Seq::ZERO);
            assert_resume_floors_hold(&partition, &model);
            prop_assert_eq!(&read(&before, ReadFrom::Earliest), &model);
            // Applying the same policy at the same time again finds nothing more to remove.
            let again = partition.apply_retention(&policy, now).unwrap();
            prop_assert_eq!(again, RetentionOutcome::default());
            let lowest_resumable = partition.lowest_resumable_seq();
            drop(before);
            drop(partition);

            let partition = Partition::open(dir.path(), config).unwrap();
            check_retained(&partition, &first_seqs, &parts, removed, Seq::ZERO);
            // A second policy later on removes further, and the resume point only moves up.
            let now = now + 1;
            let further = removed + expected_removed(&parts[removed..], &second, now);
            let outcome = partition.apply_retention(&second, now).unwrap();
            prop_assert_eq!(outcome.segments_removed, further - removed);
            check_retained(&partition, &first_seqs, &parts, further, lowest_resumable);
            prop_assert!(partition.lowest_resumable_seq() >= lowest_resumable);
            Ok(())
        },
    );
}

/// Three phases one hour apart; an age limit of 90 minutes at the end of the third removes the
/// first phase's segments and nothing else.
#[test]
fn age_limit_removes_segments_whose_newest_record_is_older() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(START_UNIX_MS);
    let partition = Partition::open(dir.path(), config(&clock, 4096)).unwrap();
    let mut model = Vec::new();
    let hour_ms: u64 = 3_600_000;
    let record = RecordSpec {
        key: b"k".to_vec(),
        payload: vec![7; 1000],
        tombstone: false,
        previous_version: Seq::ZERO,
    };
    for phase in 0..3 {
        if phase > 0 {
            clock.shift(hour_ms as i64);
        }
        // Twelve ~1 KiB records, three to a 4 KiB segment: exactly four segments per phase.
        for _ in 0..12 {
            append_checked(
                &partition,
                &clock,
                std::slice::from_ref(&record),
                &mut model,
            );
        }
    }
    let first_seqs = segment_first_seqs(dir.path());
    let parts = split_by_segment(&model, &first_seqs);
    assert_eq!(first_seqs.len(), 12);
    // At the end of phase three, phase one is two hours old and phase two one hour.
    let policy = RetentionPolicy {
        max_age_ms: Some(hour_ms + hour_ms / 2),
        max_bytes: None,
    };
    let outcome = partition.apply_retention(&policy, clock.now()).unwrap();
    assert_eq!(outcome.segments_removed, 4);
    check_retained(&partition, &first_seqs, &parts, 4, Seq::ZERO);
    assert_eq!(partition.first_retained_seq().unwrap(), Some(model[12].seq));
    assert_eq!(partition.lowest_resumable_seq(), model[11].seq);
    // Exactly at the limit is not older than it: nothing more goes until a millisecond later.
    let phase_two_newest = model[23].timestamp_unix_ms;
    let at_limit = phase_two_newest + policy.max_age_ms.unwrap();
    assert_eq!(
        partition
            .apply_retention(&policy, at_limit)
            .unwrap()
            .segments_removed,
        0
    );
    assert_eq!(
        partition
            .apply_retention(&policy, at_limit + 1)
            .unwrap()
            .segments_removed,
        4
    );
    assert_eq!(partition.lowest_resumable_seq(), model[23].seq);
}

/// However small the limits, the active segment stays and stays readable.
#[test]
fn active_segment_is_never_removed() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(START_UNIX_MS);
    let partition = Partition::open(dir.path(), config(&clock, 4096)).unwrap();
    let mut model = Vec::new();
    let record = RecordSpec {
        key: Vec::new(),
        payload: vec![1; 1500],
        tombstone: false,
        previous_version: Seq::ZERO,
    };
    for _ in 0..7 {
        append_checked(
            &partition,
            &clock,
            std::slice::from_ref(&record),
            &mut model,
        );
    }
    let first_seqs = segment_first_seqs(dir.path());
    let parts = split_by_segment(&model, &first_seqs);
    assert!(first_seqs.len() >= 3);
    let policy = RetentionPolicy {
        max_age_ms: Some(0),
        max_bytes: Some(0),
    };
    let outcome = partition
        .apply_retention(&policy, clock.now() + 1_000_000)
        .unwrap();
    assert_eq!(outcome.segments_removed, first_seqs.len() - 1);
    check_retained(
        &partition,
        &first_seqs,
        &parts,
        first_seqs.len() - 1,
        Seq::ZERO,
    );
    assert_eq!(
        read(&partition.snapshot(), ReadFrom::Earliest),
        *parts.last().unwrap()
    );
    let outcome = partition
        .apply_retention(&policy, clock.now() + 2_000_000)
        .unwrap();
    assert_eq!(outcome, RetentionOutcome::default());
}

/// The size limit is inclusive: a partition exactly at `max_bytes` keeps everything; one byte
/// less removes the oldest segment.
#[test]
fn size_limit_is_inclusive() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(START_UNIX_MS);
    let partition = Partition::open(dir.path(), config(&clock, 4096)).unwrap();
    let mut model = Vec::new();
    let record = RecordSpec {
        key: b"size".to_vec(),
        payload: vec![3; 1700],
        tombstone: false,
        previous_version: Seq::ZERO,
    };
    for _ in 0..6 {
        append_checked(
            &partition,
            &clock,
            std::slice::from_ref(&record),
            &mut model,
        );
    }
    let first_seqs = segment_first_seqs(dir.path());
    let parts = split_by_segment(&model, &first_seqs);
    assert_eq!(first_seqs.len(), 3, "two records per segment");
    let total: u64 = parts.iter().map(|p| segment_data_bytes(p)).sum();
    let exactly = RetentionPolicy {
        max_age_ms: None,
        max_bytes: Some(total),
    };
    let now = clock.now();
    assert_eq!(
        partition.apply_retention(&exactly, now).unwrap(),
        RetentionOutcome::default()
    );
    check_retained(&partition, &first_seqs, &parts, 0, Seq::ZERO);
    let one_less = RetentionPolicy {
        max_bytes: Some(total - 1),
        ..exactly
    };
    let outcome = partition.apply_retention(&one_less, now).unwrap();
    assert_eq!(outcome.segments_removed, 1);
    assert_eq!(outcome.bytes_removed, segment_data_bytes(parts[0]));
    check_retained(&partition, &first_seqs, &parts, 1, Seq::ZERO);
}

/// Removal is a prefix: an old segment behind a young one (the clock went back between them)
/// stays until the young one goes, so no gap ever opens in the retained history.
#[test]
fn old_segment_behind_a_young_one_stays() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(START_UNIX_MS);
    let partition = Partition::open(dir.path(), config(&clock, 4096)).unwrap();
    let mut model = Vec::new();
    let record = RecordSpec {
        key: b"gap".to_vec(),
        payload: vec![4; 3000],
        tombstone: false,
        previous_version: Seq::ZERO,
    };
    let hour_ms: u64 = 3_600_000;
    for shift_ms in [0, -(hour_ms as i64), hour_ms as i64] {
        clock.shift(shift_ms);
        append_checked(
            &partition,
            &clock,
            std::slice::from_ref(&record),
            &mut model,
        );
    }
    let first_seqs = segment_first_seqs(dir.path());
    let parts = split_by_segment(&model, &first_seqs);
    assert_eq!(first_seqs.len(), 3, "one record per segment");
    let policy = RetentionPolicy {
        max_age_ms: Some(hour_ms / 2),
        max_bytes: None,
    };
    let now = START_UNIX_MS + 60_000;
    assert_eq!(
        partition.apply_retention(&policy, now).unwrap(),
        RetentionOutcome::default()
    );
    check_retained(&partition, &first_seqs, &parts, 0, Seq::ZERO);
    let outcome = partition.apply_retention(&policy, now + hour_ms).unwrap();
    assert_eq!(outcome.segments_removed, 2);
    check_retained(&partition, &first_seqs, &parts, 2, Seq::ZERO);
}
