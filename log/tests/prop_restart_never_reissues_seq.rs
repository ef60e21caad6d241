//! Acceptance: a restart never reissues a `_seq`. A store is opened, appended to and dropped
//! many times while its clock jumps backwards between (and during) runs, and sometimes its
//! `seq.lease` file is deleted or garbled before a reopen (which makes the store fall back to
//! scanning the partitions). Every `_seq` issued across all runs is unique and strictly above
//! every one issued before it, and every partition still reads back its complete history. The
//! same holds for a standalone `Partition` reopened with a clock that goes back.
//!
//! Model: the list of every `_seq` issued, in issue order, and a `Vec` of records per
//! partition. Segments are small and the first run writes at least three segments' worth, so
//! every later restart recovers a partition with sealed segments behind its active one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod model;

use std::path::Path;

use model::{
    append_checked, assert_segments_at_least, check_exactly, fill_segments, read, ModelRecord,
    RecordSpec, TestClock, START_UNIX_MS,
};
use proptest::prelude::*;
use strand_log::segment::SEGMENT_HEADER_BYTES;
use strand_log::seq::EPOCH_UNIX_MS;
use strand_log::{NodeId, Partition, PartitionId, ReadFrom, Seq, Store, StoreConfig};

// "t" and "t/alice" nest: the lease-less scan must find partitions inside partitions.
const PARTITIONS: [&str; 4] = ["t", "t/alice", "u", "v/w/x"];
/// Segment size of the store test: one append of up to 2,000 records of 56 bytes fits.
const STORE_SEGMENT_BYTES: u64 = 256 * 1024;

/// What happens to `seq.lease` before a reopen.
#[derive(Clone, Debug)]
enum LeaseDamage {
    Keep,
    Delete,
    Garble(Vec<u8>),
}

#[derive(Clone, Debug)]
struct Run {
    /// Clock move before the store is opened (mostly backwards).
    clock_jump_ms: i64,
    lease: LeaseDamage,
    /// `(clock step, partition, records)` appends of this run.
    appends: Vec<(i64, usize, usize)>,
}

fn arb_run() -> impl Strategy<Value = Run> {
    let jump = prop_oneof![-3_600_000i64..0, -20i64..20, 0i64..100_000];
    let lease = prop_oneof![
        2 => Just(LeaseDamage::Keep),
        1 => Just(LeaseDamage::Delete),
        1 => proptest::collection::vec(any::<u8>(), 0..16).prop_map(LeaseDamage::Garble),
    ];
    let append = (-30_000i64..30_000, 0..PARTITIONS.len(), 1usize..2_000);
    (jump, lease, proptest::collection::vec(append, 0..8)).prop_map(
        |(clock_jump_ms, lease, appends)| Run {
            clock_jump_ms,
            lease,
            appends,
        },
    )
}

fn batch(count: usize, tag: u64) -> Vec<RecordSpec> {
    (0..count)
        .map(|i| RecordSpec {
            key: tag.to_le_bytes().to_vec(),
            payload: (i as u32).to_le_bytes().to_vec(),
            tombstone: i % 7 == 0,
            previous_version: Seq(tag),
        })
        .collect()
}

fn damage_lease(root: &Path, damage: &LeaseDamage) {
    let path = root.join("seq.lease");
    match damage {
        LeaseDamage::Keep => {}
        LeaseDamage::Delete => {
            let _ = std::fs::remove_file(&path);
        }
        LeaseDamage::Garble(bytes) => std::fs::write(&path, bytes).unwrap(),
    }
}

/// The lease end in `seq.lease` (`docs/log-format.md`): every `_seq` issued is below
/// `lease_end_ms << 22`.
fn read_lease_end_ms(root: &Path) -> u64 {
    let bytes = std::fs::read(root.join("seq.lease")).expect("appends write seq.lease");
    assert_eq!(bytes.len(), 12, "seq.lease is 12 bytes");
    let (end, crc) = bytes.split_at(8);
    assert_eq!(crc, crc32fast::hash(end).to_le_bytes(), "seq.lease CRC");
    u64::from_le_bytes(end.try_into().unwrap())
}

/// Check that the batch just issued lies strictly above everything issued before it.
fn record_issued(issued: &mut Vec<Seq>, batch: &[ModelRecord]) {
    for record in batch {
        if let Some(&previous) = issued.last() {
            assert!(
                record.seq > previous,
                "_seq {} reissued or out of order after {}",
                record.seq,
                previous
            );
        }
        issued.push(record.seq);
    }
}

#[test]
fn store_restarts_never_reissue_seq() {
    let runs = proptest::collection::vec(arb_run(), 2..7);
    let strategy = (0u16..1024, 1usize..4, runs);
    check_exactly(
        24,
        file!(),
        strategy,
        |(node, open_partitions_max, runs)| {
            let root = tempfile::tempdir().unwrap();
            let clock = TestClock::new(START_UNIX_MS);
            let mut config = StoreConfig {
                partition: model::config(&clock, STORE_SEGMENT_BYTES),
                open_partitions_max,
                ..StoreConfig::default()
            };
            config.partition.node = NodeId::new(node).unwrap();
            let ids: Vec<PartitionId> = PARTITIONS
                .iter()
                .map(|n| PartitionId::new(*n).unwrap())
                .collect();
            let mut models: Vec<Vec<ModelRecord>> = vec![Vec::new(); ids.len()];
            let mut issued: Vec<Seq> = Vec::new();
            for (run_number, run) in runs.iter().enumerate() {
                damage_lease(root.path(), &run.lease);
                clock.shift(run.clock_jump_ms);
                let store = Store::open(root.path(), config.clone()).unwrap();
                let floor = issued.last().copied().unwrap_or(Seq::ZERO);
                prop_assert!(
                    store.last_issued_seq() >= floor,
                    "store opened below {}",
                    floor
                );
                if run_number == 0 {
                    // Three segments' worth first: later restarts find sealed segments.
                    let partition = store.partition(&ids[0]).unwrap();
                    fill_segments(&partition, &clock, &mut models[0], STORE_SEGMENT_BYTES, 3);
                    record_issued(&mut issued, &models[0]);
                }
                for (i, (step_ms, which, count)) in run.appends.iter().enumerate() {
                    clock.shift(*step_ms);
                    let partition = store.partition(&ids[*which]).unwrap();
                    let before = models[*which].len();
                    let records = batch(*count, (run_number * 100 + i) as u64);
                    let range = append_checked(&partition, &clock, &records, &mut models[*which]);
                    record_issued(&mut issued, &models[*which][before..]);
                    let lease_end_ms = read_lease_end_ms(root.path());
                    let last = range.last;
                    prop_assert!(last.epoch_ms() < lease_end_ms, "{} beyond the lease", last);
                }
                for (id, model) in ids.iter().zip(&models) {
                    let partition = store.partition(id).unwrap();
                    prop_assert_eq!(&read(&partition.snapshot(), ReadFrom::Earliest), model);
                    let at_least = if *id == ids[0] { 3 } else { 0 };
                    let dir = partition.dir();
                    assert_segments_at_least(dir, model, STORE_SEGMENT_BYTES, at_least);
                }
            }
            prop_assert!(!issued.is_empty());
            Ok(())
        },
    );
}

#[test]
fn partition_reopens_never_reissue_seq() {
    let clock_jump = prop_oneof![-3_600_000i64..0, -5i64..5];
    let run = (clock_jump, proptest::collection::vec(1usize..800, 1..5));
    let segment_bytes = prop_oneof![Just(32 * 1024u64), Just(128 * 1024)];
    let strategy = (proptest::collection::vec(run, 2..7), segment_bytes);
    check_exactly(24, file!(), strategy, |(runs, segment_bytes_max)| {
        let dir = tempfile::tempdir().unwrap();
        let clock = TestClock::new(START_UNIX_MS);
        let config = model::config(&clock, segment_bytes_max);
        let mut model: Vec<ModelRecord> = Vec::new();
        let mut issued: Vec<Seq> = Vec::new();
        for (run_number, (jump_ms, counts)) in runs.iter().enumerate() {
            clock.shift(*jump_ms);
            let partition = Partition::open(dir.path(), config.clone()).unwrap();
            prop_assert_eq!(&read(&partition.snapshot(), ReadFrom::Earliest), &model);
            if run_number == 0 {
                // Three segments' worth first: every reopen finds sealed segments.
                fill_segments(&partition, &clock, &mut model, segment_bytes_max, 3);
                record_issued(&mut issued, &model);
            }
            for (i, count) in counts.iter().enumerate() {
                let records = batch(*count, (run_number * 100 + i) as u64);
                // Split so that each batch fits one segment (every frame here is 56 bytes).
                let per_batch = (segment_bytes_max as usize - SEGMENT_HEADER_BYTES as usize) / 56;
                for chunk in records.chunks(per_batch) {
                    let before = model.len();
                    append_checked(&partition, &clock, chunk, &mut model);
                    record_issued(&mut issued, &model[before..]);
                }
            }
        }
        assert_segments_at_least(dir.path(), &model, segment_bytes_max, 3);
        Ok(())
    });
}

/// A burst that starts just below the lease end and needs more milliseconds than are left
/// (4096 ids per millisecond) must move the lease first, or the restart would reissue its tail.
#[test]
fn burst_at_the_lease_end_moves_the_lease_first() {
    let root = tempfile::tempdir().unwrap();
    let clock = TestClock::new(START_UNIX_MS);
    let config = StoreConfig {
        partition: model::config(&clock, 1 << 20),
        ..StoreConfig::default()
    };
    let id = PartitionId::new("burst").unwrap();
    let mut model = Vec::new();
    let mut issued = Vec::new();
    {
        let store = Store::open(root.path(), config.clone()).unwrap();
        let partition = store.partition(&id).unwrap();
        append_checked(&partition, &clock, &batch(1, 1), &mut model);
        let lease_end_ms = read_lease_end_ms(root.path());
        // Two milliseconds before the lease end, ask for 2.5 milliseconds' worth of ids.
        clock.set(EPOCH_UNIX_MS + lease_end_ms - 2);
        let range = append_checked(&partition, &clock, &batch(10_000, 2), &mut model);
        let lease_end_ms = read_lease_end_ms(root.path());
        assert!(
            range.last.epoch_ms() < lease_end_ms,
            "{} beyond the lease",
            range.last
        );
        record_issued(&mut issued, &model);
    }
    let store = Store::open(root.path(), config).unwrap();
    let partition = store.partition(&id).unwrap();
    let before = model.len();
    append_checked(&partition, &clock, &batch(10, 3), &mut model);
    record_issued(&mut issued, &model[before..]);
}

/// Regression. A crash while the next segment was being created leaves a file whose header
/// never reached the disk; the reopen removes it, so the newest segment left is a sealed one.
/// Bug: the `_seq` floor was then that segment's *first* `_seq`, so with the clock behind, a
/// standalone partition reissued `_seq`s of records it holds, and reads of the partition failed
/// on the out-of-order `_seq`. Fix: the floor is the newest sealed segment's last `_seq`.
#[test]
fn reopen_after_torn_segment_creation_never_reissues_seq() {
    for torn_bytes in [0usize, 64, 4096] {
        let dir = tempfile::tempdir().unwrap();
        let clock = TestClock::new(START_UNIX_MS);
        let config = model::config(&clock, 4096);
        let mut model = Vec::new();
        {
            let partition = Partition::open(dir.path(), config.clone()).unwrap();
            for chunk in batch(200, 1).chunks(50) {
                append_checked(&partition, &clock, chunk, &mut model);
            }
        }
        let last = model.last().unwrap().seq;
        let torn = model::segment_path(dir.path(), Seq(last.0 + 1));
        std::fs::write(&torn, vec![0u8; torn_bytes]).unwrap();
        clock.shift(-60_000);

        let partition = Partition::open(dir.path(), config).unwrap();
        assert!(!torn.exists(), "the torn segment is removed on open");
        assert_eq!(read(&partition.snapshot(), ReadFrom::Earliest), model);
        let mut issued = model.iter().map(|r| r.seq).collect();
        let before = model.len();
        append_checked(&partition, &clock, &batch(5, 2), &mut model);
        record_issued(&mut issued, &model[before..]);
        assert_eq!(read(&partition.snapshot(), ReadFrom::Earliest), model);
    }
}
