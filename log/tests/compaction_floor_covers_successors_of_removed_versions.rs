//! Regression (issue 16, defect 6). Bug: `Partition::compact` raised the lowest resumable
//! `_seq` to the highest `_seq` it removed. A reader resuming from a cursor between a removed
//! version P and its successor K (P <= cursor < K) was told it could resume, then read K, found
//! K's previous version missing and took K for an insert. Impact: the broker treats a missing
//! previous version as "no old row", so an update that made a row stop matching a filter was
//! lost, and the subscriber kept a row the query no longer returns. Fix: the lowest resumable
//! `_seq` is the highest `_seq` of a removed tombstone or of any record whose previous version
//! was removed, and a second floor, the lowest keyed-catch-up `_seq` (removed newest
//! tombstones, and whatever retention removes), says how far back a reader can still learn the
//! newest state of every key. Both are stored in `partition.meta` (format version 2).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod model;

use model::{
    append_checked, assert_resume_floors_hold, config, read, segment_first_seqs, ModelRecord,
    RecordSpec, TestClock, START_UNIX_MS,
};
use strand_log::{CompactionPolicy, Partition, ReadFrom, ResumeFloors, Seq};

fn keyed(key: &[u8], payload: &[u8], previous_version: Seq) -> RecordSpec {
    RecordSpec {
        key: key.to_vec(),
        payload: payload.to_vec(),
        tombstone: false,
        previous_version,
    }
}

fn tombstone(key: &[u8], previous_version: Seq) -> RecordSpec {
    RecordSpec {
        tombstone: true,
        ..keyed(key, b"", previous_version)
    }
}

/// A keyless record of about 3 KiB: two of them never share a 4 KiB segment.
fn filler() -> RecordSpec {
    keyed(b"", &[7; 3000], Seq::ZERO)
}

#[test]
fn resume_between_a_removed_version_and_its_successor_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(START_UNIX_MS);
    let partition = Partition::open(dir.path(), config(&clock, 4096)).unwrap();
    let mut history: Vec<ModelRecord> = Vec::new();
    let mut append = |record: RecordSpec| -> Seq {
        append_checked(&partition, &clock, &[record], &mut history).first
    };
    // Segment 1: the first version P of "row", a key and its delete, filler. Segment 2:
    // filler, then P's successor K. Segment 3 (active): filler.
    let p = append(keyed(b"row", b"matches", Seq::ZERO));
    let gone = append(keyed(b"gone", b"soon deleted", Seq::ZERO));
    let delete = append(tombstone(b"gone", gone));
    append(filler());
    append(filler());
    let k = append(keyed(b"row", b"no longer matches", p));
    append(filler());
    assert_eq!(segment_first_seqs(dir.path()).len(), 3);
    clock.shift(60_000);

    let policy = CompactionPolicy {
        tombstone_retention_ms: 1_000,
    };
    let outcome = partition.compact(&policy, clock.now()).unwrap();
    assert_eq!(
        outcome.records_removed, 3,
        "P, the deleted key's version and its tombstone"
    );
    // P, `gone` and its expired tombstone are removed. Resuming from P (or anywhere below K)
    // would read K and miss its previous version: the resumable floor is K, not P.
    let expected = ResumeFloors {
        lowest_resumable_seq: k,
        lowest_keyed_catch_up_seq: delete,
    };
    assert_eq!(partition.resume_floors(), expected);
    assert_eq!(partition.lowest_resumable_seq(), k);
    assert_eq!(partition.lowest_keyed_catch_up_seq(), delete);
    assert_resume_floors_hold(&partition, &history);

    // Concretely: a reader at P reads K and cannot find P.
    let snapshot = partition.snapshot();
    let after_p = read(&snapshot, ReadFrom::After(p));
    let successor = after_p.iter().find(|r| r.seq == k).unwrap();
    assert_eq!(successor.previous_version, p);
    assert!(
        read(&snapshot, ReadFrom::Seq(p)).first().unwrap().seq > p,
        "P is gone"
    );
    assert!(
        p < partition.lowest_resumable_seq(),
        "so a resume from P must be refused"
    );
    // From the expired delete on, a keyed catch-up works (it learns K as the newest version of
    // "row") though a full resume does not.
    let floors = partition.resume_floors();
    assert!(floors.lowest_keyed_catch_up_seq <= delete && delete < floors.lowest_resumable_seq);
    let rows = read(&snapshot, ReadFrom::After(delete));
    let newest_row = rows.iter().rfind(|r| r.key == b"row").unwrap();
    assert_eq!(newest_row.seq, k);
    drop(snapshot);
    drop(partition);

    // Both floors are durable.
    let partition = Partition::open(dir.path(), config(&clock, 4096)).unwrap();
    assert_eq!(partition.resume_floors(), expected);
    assert_resume_floors_hold(&partition, &history);
}

/// A tombstone removed while superseded (the key came back) does not lower what a keyed
/// catch-up can do: the key's newest version is still there.
#[test]
fn superseded_tombstone_raises_only_the_resumable_floor() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(START_UNIX_MS);
    let partition = Partition::open(dir.path(), config(&clock, 4096)).unwrap();
    let mut history: Vec<ModelRecord> = Vec::new();
    let mut append = |record: RecordSpec| -> Seq {
        append_checked(&partition, &clock, &[record], &mut history).first
    };
    let first = append(keyed(b"row", b"v1", Seq::ZERO));
    let delete = append(tombstone(b"row", first));
    append(filler());
    let back = append(keyed(b"row", b"v2", Seq::ZERO));
    append(filler());
    assert_eq!(segment_first_seqs(dir.path()).len(), 2);

    let policy = CompactionPolicy {
        tombstone_retention_ms: u64::MAX,
    };
    let outcome = partition.compact(&policy, clock.now()).unwrap();
    assert_eq!(outcome.records_removed, 2);
    let expected = ResumeFloors {
        lowest_resumable_seq: delete,
        lowest_keyed_catch_up_seq: Seq::ZERO,
    };
    assert_eq!(partition.resume_floors(), expected);
    assert!(back > delete);
    assert_resume_floors_hold(&partition, &history);
}
