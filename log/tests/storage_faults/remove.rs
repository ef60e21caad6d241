//! Retention raises the resume floors durably, takes the segments out of the readers' view,
//! then unlinks their files. When unlinking fails (or panics), the floors are already raised:
//! a reader below them is told its cursor is too old instead of reading past a gap, the
//! records above them are all there, nothing is poisoned, and the next sweep (or the first one
//! after a restart) removes the files that were left.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use strand_log::{Partition, ReadFrom, RetentionPolicy, Seq};

use crate::harness::{append_range, assert_injected, quiet_injected_panics, read_all, Rig};
use crate::model::{read, segment_first_seqs, segment_path, ModelRecord};

/// Larger than nothing: every sealed segment goes.
const EVERYTHING_SEALED: RetentionPolicy = RetentionPolicy {
    max_age_ms: None,
    max_bytes: Some(1),
};

/// What a sweep that removes every sealed segment should leave: the floor (the newest `_seq`
/// below the active segment) and the records above it.
struct Expected {
    sealed: Vec<Seq>,
    floor: Seq,
    kept: Vec<ModelRecord>,
}

fn setup(rig: &Rig, dir: &Path) -> (std::sync::Arc<Partition>, Vec<ModelRecord>, Expected) {
    let mut model = Vec::new();
    let partition = rig.open(dir);
    append_range(&partition, rig, 0, 60, &mut model);
    let segments = segment_first_seqs(dir);
    assert!(segments.len() >= 3, "{segments:?}");
    let (&active, sealed) = segments.split_last().unwrap();
    let kept_from = model.partition_point(|r| r.seq < active);
    let expected = Expected {
        sealed: sealed.to_vec(),
        floor: model[kept_from - 1].seq,
        kept: model[kept_from..].to_vec(),
    };
    (partition, model, expected)
}

/// The sweep failed after the floors were raised and before any file was unlinked.
fn assert_floors_raised_first(
    partition: &Partition,
    dir: &Path,
    model: &[ModelRecord],
    expected: &Expected,
) {
    assert!(
        !partition.is_poisoned(),
        "a failed removal is not a failed write"
    );
    let floors = partition.resume_floors();
    assert_eq!(floors.lowest_resumable_seq, expected.floor);
    assert_eq!(floors.lowest_keyed_catch_up_seq, expected.floor);
    // A reader that saw only the oldest record is below the floor: it is told to start over.
    assert!(model[0].seq < partition.lowest_resumable_seq());
    // Readers see exactly the records above the floor: no gap in what is served.
    assert_eq!(read_all(partition), expected.kept);
    assert_eq!(
        read(&partition.snapshot(), ReadFrom::After(expected.floor)),
        expected.kept
    );
    for &first_seq in &expected.sealed {
        assert!(
            segment_path(dir, first_seq).exists(),
            "{first_seq} is still on disk"
        );
    }
}

fn assert_removed(dir: &Path, expected: &Expected) {
    let left = segment_first_seqs(dir);
    for first_seq in &expected.sealed {
        assert!(
            !left.contains(first_seq),
            "{first_seq} was not removed: {left:?}"
        );
    }
}

#[test]
fn failed_removal_leaves_the_floors_raised_and_the_next_sweep_finishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let rig = Rig::new();
    let (partition, mut model, expected) = setup(&rig, dir.path());

    let failed = rig.with_fault(
        |f| &f.fail_remove,
        || partition.apply_retention(&EVERYTHING_SEALED, rig.clock.now()),
    );
    assert_injected(
        failed,
        &segment_path(dir.path(), expected.sealed[0]),
        "remove",
    );
    assert_floors_raised_first(&partition, dir.path(), &model, &expected);
    append_range(&partition, &rig, 60, 61, &mut model);

    partition
        .apply_retention(&EVERYTHING_SEALED, rig.clock.now())
        .unwrap();
    assert_removed(dir.path(), &expected);
    assert_eq!(partition.lowest_resumable_seq(), expected.floor);
    assert_eq!(
        read_all(&partition),
        model[model.len() - expected.kept.len() - 1..]
    );
}

#[test]
fn after_a_failed_removal_a_restart_is_consistent_and_a_sweep_removes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let rig = Rig::new();
    let (partition, model, expected) = setup(&rig, dir.path());
    let failed = rig.with_fault(
        |f| &f.fail_remove,
        || partition.apply_retention(&EVERYTHING_SEALED, rig.clock.now()),
    );
    assert!(failed.is_err());
    assert_floors_raised_first(&partition, dir.path(), &model, &expected);
    drop(partition);

    // The floors were synced before the removal: the restart keeps them. The segments left
    // behind lie below them, so no reader resumes into them.
    let partition = rig.open(dir.path());
    let floors = partition.resume_floors();
    assert_eq!(floors.lowest_resumable_seq, expected.floor);
    assert_eq!(floors.lowest_keyed_catch_up_seq, expected.floor);
    assert_eq!(
        read(&partition.snapshot(), ReadFrom::After(expected.floor)),
        expected.kept
    );
    assert_eq!(
        read_all(&partition),
        model,
        "the leftover segments are read again, whole"
    );

    let outcome = partition
        .apply_retention(&EVERYTHING_SEALED, rig.clock.now())
        .unwrap();
    assert_eq!(outcome.segments_removed, expected.sealed.len());
    assert_removed(dir.path(), &expected);
    assert_eq!(read_all(&partition), expected.kept);
    assert_eq!(partition.lowest_resumable_seq(), expected.floor);
}

#[test]
fn panic_while_removing_leaves_the_segments_for_the_next_sweep() {
    quiet_injected_panics();
    let dir = tempfile::tempdir().unwrap();
    let rig = Rig::new();
    let (partition, model, expected) = setup(&rig, dir.path());
    let panicked = rig.with_fault(
        |f| &f.panic_on_remove,
        || {
            catch_unwind(AssertUnwindSafe(|| {
                partition.apply_retention(&EVERYTHING_SEALED, rig.clock.now())
            }))
        },
    );
    assert!(panicked.is_err(), "the injected panic reached the caller");
    assert_floors_raised_first(&partition, dir.path(), &model, &expected);

    partition
        .apply_retention(&EVERYTHING_SEALED, rig.clock.now())
        .unwrap();
    assert_removed(dir.path(), &expected);
    assert_eq!(read_all(&partition), expected.kept);
}
