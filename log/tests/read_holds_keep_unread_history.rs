//! Regression (issue 21, found by a 10,000-history guarantee run). Bug: keyed compaction
//! removed superseded versions and expired tombstones whatever a reader following the
//! partition had read. A live feed lagging behind (a busy machine) then read an insert whose
//! previous version, a delete, was gone: subscribers got an insert of a key they held, and
//! never the delete. Fix: a reader takes a `ReadHold`; compaction removes nothing above the
//! lowest hold, and a version at or below it only when a newer one is at or below it too.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod model;

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

use model::{
    append_checked, read, segment_first_seqs, ModelRecord, RecordSpec, TestClock, START_UNIX_MS,
};
use proptest::prelude::*;
use strand_log::limits::READ_HOLD_AGE_MAX_MS;
use strand_log::storage::{AtomicWrite, FileStorage, Storage, StorageFile};
use strand_log::{
    CompactionPolicy, FsyncPolicy, Partition, PartitionConfig, ReadFrom, ReadHold, Seq,
};

const SEGMENT_BYTES: u64 = 4096;

/// Tombstones expire at once: the harshest compaction.
const POLICY: CompactionPolicy = CompactionPolicy {
    tombstone_retention_ms: 0,
};

/// A write to one of a few keys: a put (payload `value`) or a delete.
#[derive(Clone, Debug)]
struct Write {
    key: u8,
    delete: bool,
    value: u8,
}

fn arb_writes() -> impl Strategy<Value = Vec<Write>> {
    let write = (0u8..6, prop::bool::weighted(0.3), any::<u8>())
        .prop_map(|(key, delete, value)| Write { key, delete, value });
    prop::collection::vec(write, 20..120)
}

/// Append `writes` one by one, each naming its key's previous version, as a table would.
fn append_writes(
    partition: &Arc<Partition>,
    clock: &TestClock,
    writes: &[Write],
    history: &mut Vec<ModelRecord>,
) {
    let mut newest: HashMap<u8, Seq> = history
        .iter()
        .filter(|r| !r.key.is_empty())
        .map(|r| (r.key[0], r.seq))
        .collect();
    for write in writes {
        let spec = RecordSpec {
            key: vec![write.key],
            payload: if write.delete {
                Vec::new()
            } else {
                vec![write.value; 150]
            },
            tombstone: write.delete,
            previous_version: newest.get(&write.key).copied().unwrap_or(Seq::ZERO),
        };
        let range = append_checked(partition, clock, &[spec], history);
        newest.insert(write.key, range.first);
    }
}

fn config(clock: &Arc<TestClock>, storage: Arc<dyn Storage>) -> PartitionConfig {
    PartitionConfig {
        segment_bytes_max: SEGMENT_BYTES,
        fsync: FsyncPolicy::Never,
        clock: clock.clone(),
        storage,
        ..PartitionConfig::default()
    }
}

/// What a holder at `position` needs, checked: every record after it, each with the previous
/// version it names (when that was a row, not a delete), and a resumable floor not above it.
fn assert_holder_reads_everything(partition: &Partition, history: &[ModelRecord], position: Seq) {
    let snapshot = partition.snapshot();
    let after: Vec<ModelRecord> = history
        .iter()
        .filter(|r| r.seq > position)
        .cloned()
        .collect();
    assert_eq!(
        read(&snapshot, ReadFrom::After(position)),
        after,
        "a record after the hold at {position} was removed"
    );
    let by_seq: HashMap<Seq, &ModelRecord> = history.iter().map(|r| (r.seq, r)).collect();
    for record in &after {
        let Some(previous) = by_seq.get(&record.previous_version) else {
            continue;
        };
        if previous.tombstone {
            continue;
        }
        let found = read(&snapshot, ReadFrom::Seq(previous.seq));
        assert_eq!(
            found.first(),
            Some(*previous),
            "{} names {} as its previous version, which the hold at {position} did not keep",
            record.seq,
            previous.seq
        );
    }
    assert!(
        partition.lowest_resumable_seq() <= position,
        "the holder at {position} would be told its history is gone"
    );
}

/// The records a compaction (every tombstone expired) leaves with a hold at `position`, when
/// the active segment starts at `active_first`: those above the hold or in the active
/// segment, and below it each key's newest version at or below the hold unless a delete.
fn survivors(history: &[ModelRecord], position: Seq, active_first: Seq) -> Vec<ModelRecord> {
    let newest: HashMap<&[u8], Seq> = history
        .iter()
        .filter(|r| r.seq <= position)
        .map(|r| (r.key.as_slice(), r.seq))
        .collect();
    history
        .iter()
        .filter(|r| {
            r.seq > position
                || r.seq >= active_first
                || (newest.get(r.key.as_slice()) == Some(&r.seq) && !r.tombstone)
        })
        .cloned()
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// A hold at any point of a random history keeps everything after it through a
    /// compaction that expires every tombstone; once released, the next compaction removes
    /// what the hold kept (superseded versions in sealed segments).
    #[test]
    fn a_hold_keeps_what_its_reader_has_not_read(
        writes in arb_writes(),
        hold_at in 0usize..120,
        later in arb_writes(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let clock = TestClock::new(START_UNIX_MS);
        let partition = Partition::open(dir.path(), config(&clock, Arc::new(FileStorage))).unwrap();
        let mut history = Vec::new();
        append_writes(&partition, &clock, &writes, &mut history);
        let position = history[hold_at.min(history.len() - 1)].seq;
        let hold = partition.hold_reads_after(position);
        append_writes(&partition, &clock, &later, &mut history);
        clock.shift(60_000);

        let active_first = *segment_first_seqs(dir.path()).last().unwrap();
        partition.compact(&POLICY, clock.now()).unwrap();
        assert_holder_reads_everything(&partition, &history, position);
        // Exactly what the rule allows is removed: the hold does not stop the work below it.
        let expected = survivors(&history, position, active_first);
        prop_assert_eq!(read(&partition.snapshot(), ReadFrom::Earliest), expected);
        // The reader moves on to the end: the next compaction may remove all it kept.
        let kept = read(&partition.snapshot(), ReadFrom::Earliest).len();
        hold.advance(history.last().unwrap().seq);
        prop_assert_eq!(hold.position(), history.last().unwrap().seq);
        partition.compact(&POLICY, clock.now()).unwrap();
        let after_advance = read(&partition.snapshot(), ReadFrom::Earliest).len();
        drop(hold);
        partition.compact(&POLICY, clock.now()).unwrap();
        let released = read(&partition.snapshot(), ReadFrom::Earliest).len();
        prop_assert!(after_advance <= kept);
        prop_assert_eq!(released, after_advance, "a hold at the end holds nothing back");
    }
}

/// 80 writes over five keys, every seventh a delete.
fn five_keys_with_deletes() -> Vec<Write> {
    (0..80)
        .map(|i| Write {
            key: (i % 5) as u8,
            delete: i % 7 == 3,
            value: i as u8,
        })
        .collect()
}

/// Released holds hold nothing: with a hold taken and dropped, compaction removes as much as
/// with none (checked on two copies of the same history).
#[test]
fn a_dropped_hold_holds_nothing_back() {
    let writes = five_keys_with_deletes();
    let remaining = |take_hold: bool| {
        let dir = tempfile::tempdir().unwrap();
        let clock = TestClock::new(START_UNIX_MS);
        let partition = Partition::open(dir.path(), config(&clock, Arc::new(FileStorage))).unwrap();
        let mut history = Vec::new();
        append_writes(&partition, &clock, &writes, &mut history);
        if take_hold {
            drop(partition.hold_reads_after(history[3].seq));
        }
        clock.shift(60_000);
        let outcome = partition.compact(&POLICY, clock.now()).unwrap();
        assert!(
            outcome.records_removed > 0,
            "the history has superseded versions"
        );
        read(&partition.snapshot(), ReadFrom::Earliest)
            .iter()
            .map(|r| (r.key.clone(), r.payload.clone(), r.tombstone))
            .collect::<Vec<_>>()
    };
    assert_eq!(remaining(true), remaining(false));
}

/// A storage that, while compaction writes its first rewritten segment, runs a hook: the
/// moment between a compaction's plan and its swap.
struct PausingStorage {
    hook: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl Storage for PausingStorage {
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        FileStorage.create_new(path)
    }

    fn open_existing(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        FileStorage.open_existing(path)
    }

    fn sync_file_system(&self, dir: &Path) -> io::Result<()> {
        FileStorage.sync_file_system(dir)
    }

    fn write_atomically(&self, path: &Path, bytes: &[u8], how: AtomicWrite) -> io::Result<()> {
        let rewriting = path.to_string_lossy().ends_with(".compact.tmp");
        if rewriting {
            if let Some(hook) = self.hook.lock().unwrap().take() {
                hook();
            }
        }
        FileStorage.write_atomically(path, bytes, how)
    }
}

impl std::fmt::Debug for PausingStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PausingStorage")
    }
}

/// A reader resuming from an old `_seq` registers its hold while a compaction that planned
/// without it is running: the compaction gives way (removes nothing), the reader's check of
/// the resumable floor passes, and everything after its position is there.
#[test]
fn a_hold_registered_during_a_compaction_makes_it_give_way() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(START_UNIX_MS);
    let storage = Arc::new(PausingStorage {
        hook: Mutex::new(None),
    });
    let partition = Partition::open(dir.path(), config(&clock, storage.clone())).unwrap();
    // Every third write is to a key of its own: each segment keeps some records, so the
    // compaction rewrites (not only removes) segments.
    let writes: Vec<Write> = (0..80)
        .map(|i| Write {
            key: if i % 3 == 0 {
                100 + i as u8
            } else {
                (i % 4) as u8
            },
            delete: i % 5 == 2,
            value: i as u8,
        })
        .collect();
    let mut history = Vec::new();
    append_writes(&partition, &clock, &writes, &mut history);
    clock.shift(60_000);

    let resume_from = history[2].seq;
    let registered: Arc<Mutex<Option<ReadHold>>> = Arc::new(Mutex::new(None));
    let (slot, target) = (registered.clone(), partition.clone());
    *storage.hook.lock().unwrap() = Some(Box::new(move || {
        *slot.lock().unwrap() = Some(target.hold_reads_after(resume_from));
    }));
    let outcome = partition.compact(&POLICY, clock.now()).unwrap();
    assert!(
        registered.lock().unwrap().is_some(),
        "the hook ran mid-compaction"
    );
    assert_eq!(outcome.records_removed, 0, "the compaction gave way");
    assert_holder_reads_everything(&partition, &history, resume_from);
    assert!(
        !dir.path().read_dir().unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".tmp")),
        "the abandoned rewrite left no file"
    );

    // With the hold in place from the start, the next compaction works below it only.
    partition.compact(&POLICY, clock.now()).unwrap();
    assert_holder_reads_everything(&partition, &history, resume_from);
    registered.lock().unwrap().take();
    let outcome = partition.compact(&POLICY, clock.now()).unwrap();
    assert!(
        outcome.records_removed > 0,
        "released, the history compacts"
    );
}

/// A reader far behind (its position older than `READ_HOLD_AGE_MAX_MS`) does not stop
/// compaction: it is compacted as if it held nothing, and the floors tell it so.
#[test]
fn a_hold_too_far_behind_is_not_honoured_and_the_floors_say_so() {
    let writes = five_keys_with_deletes();
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(START_UNIX_MS);
    let partition = Partition::open(dir.path(), config(&clock, Arc::new(FileStorage))).unwrap();
    let mut history = Vec::new();
    append_writes(&partition, &clock, &writes, &mut history);
    let position = history[3].seq;
    let hold = partition.hold_reads_after(position);

    clock.shift(READ_HOLD_AGE_MAX_MS as i64 - 1_000);
    partition.compact(&POLICY, clock.now()).unwrap();
    // Within the age, the hold is honoured.
    assert_holder_reads_everything(&partition, &history, position);

    clock.shift(2_000);
    let outcome = partition.compact(&POLICY, clock.now()).unwrap();
    assert!(outcome.records_removed > 0, "past the age, it is not");
    assert!(
        partition.lowest_resumable_seq() > hold.position(),
        "and the reader learns its history is gone"
    );
}
