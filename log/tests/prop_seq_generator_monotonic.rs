//! Acceptance: `_seq` values only go up. Whatever the clock does (jump back by any amount, stand
//! still, leap ahead) and however many ids one millisecond needs (bursts above its 4096), every
//! id issued is strictly above every id issued or observed before, carries the generator's node
//! id, keeps the sign bit clear, and is never behind the clock. The same holds end to end
//! through a `Partition` and a `Store` whose injected clock moves backwards.
//!
//! Model: the last id issued (or the floor observed) and the clock value of each call. The
//! partition and store cases write at least three segments' worth, so segments roll (and are
//! named) while the clock goes back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod model;

use model::{
    append_checked, assert_segments_at_least, check_exactly, config, fill_segments, read,
    ModelRecord, RecordSpec, TestClock, START_UNIX_MS,
};
use proptest::prelude::*;
use strand_log::seq::EPOCH_UNIX_MS;
use strand_log::{
    LogError, NodeId, Partition, PartitionId, ReadFrom, Seq, SeqGenerator, Store, StoreConfig,
};

/// Highest millisecond a `_seq` can encode (41 bits).
const TIME_MS_MAX: u64 = (1 << 41) - 1;
/// Segment size of the partition case: a batch of up to 5,000 records of 48 bytes fits.
const PARTITION_SEGMENT_BYTES: u64 = 256 * 1024;
/// Segment size of the store case: a batch of up to 300 records of 48 bytes fits.
const STORE_SEGMENT_BYTES: u64 = 64 * 1024;

#[derive(Clone, Debug)]
enum Step {
    /// Move the clock by this many milliseconds (negative: backwards).
    Clock(i64),
    /// Issue this many ids one by one at the current clock.
    Next(u32),
    /// Issue a range of this many ids at the current clock.
    Range(u32),
    /// Raise the floor to an id of `node` at `ms` (relative to the clock), sequence `sequence`.
    Observe { ms: i64, node: u16, sequence: u16 },
}

fn arb_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => prop_oneof![-100_000i64..100, -3i64..3, 0i64..100_000].prop_map(Step::Clock),
        3 => (1u32..50).prop_map(Step::Next),
        2 => prop_oneof![1u32..100, 4000u32..9000].prop_map(Step::Range),
        1 => (-50i64..50, 0u16..1024, 0u16..4096)
            .prop_map(|(ms, node, sequence)| Step::Observe { ms, node, sequence }),
    ]
}

fn compose(ms: u64, node: u16, sequence: u16) -> Seq {
    Seq(ms << 22 | u64::from(node) << 12 | u64::from(sequence))
}

/// The checks every issued id must pass.
fn check_issued(seq: Seq, floor: Seq, node: NodeId, now_unix_ms: u64) {
    assert!(seq > floor, "{seq} issued at or below {floor}");
    assert_eq!(seq.node(), node, "node bits of {seq}");
    assert!(seq <= Seq::MAX, "{seq} has the sign bit set");
    let clock_ms = now_unix_ms.saturating_sub(EPOCH_UNIX_MS).min(TIME_MS_MAX);
    assert!(
        seq.epoch_ms() >= clock_ms,
        "{seq} is behind the clock ({clock_ms} ms)"
    );
}

#[test]
fn generator_ids_strictly_increase() {
    let floor_behind_ms = prop_oneof![Just(None), (0u64..1000).prop_map(Some)];
    let steps = proptest::collection::vec(arb_step(), 1..60);
    let strategy = (0u16..1024, 0u64..1 << 40, floor_behind_ms, steps);
    check_exactly(
        256,
        file!(),
        strategy,
        |(node, start_ms, floor_behind_ms, steps)| {
            let node = NodeId::new(node).unwrap();
            let mut now = EPOCH_UNIX_MS + start_ms;
            let mut floor = floor_behind_ms.map_or(Seq::ZERO, |behind| {
                compose(start_ms.saturating_sub(behind), 1023, 4095)
            });
            let mut generator = SeqGenerator::new(node, floor);
            prop_assert_eq!(generator.last(), floor);
            for step in &steps {
                match *step {
                    Step::Clock(delta) => now = now.saturating_add_signed(delta),
                    Step::Next(count) => {
                        for _ in 0..count {
                            let seq = generator.next(now).unwrap();
                            check_issued(seq, floor, node, now);
                            floor = seq;
                        }
                    }
                    Step::Range(count) => {
                        let range = generator.next_range(now, count).unwrap();
                        check_issued(range.first, floor, node, now);
                        check_issued(range.last, floor, node, now);
                        prop_assert!(count == 1 || range.last > range.first);
                        prop_assert!(count > 1 || range.last == range.first);
                        prop_assert_eq!(range.count, count);
                        // 4096 ids per millisecond: a burst needs at least count / 4096 more.
                        let spread = range.last.epoch_ms() - range.first.epoch_ms();
                        prop_assert!(spread >= u64::from(count - 1) / 4096);
                        floor = range.last;
                    }
                    Step::Observe {
                        ms,
                        node: other,
                        sequence,
                    } => {
                        let clock_ms = now.saturating_sub(EPOCH_UNIX_MS);
                        let seen = compose(clock_ms.saturating_add_signed(ms), other, sequence);
                        generator.observe(seen);
                        floor = floor.max(seen);
                    }
                }
                prop_assert_eq!(generator.last(), floor);
            }
            Ok(())
        },
    );
}

#[test]
fn partition_seqs_increase_while_injected_clock_goes_back() {
    let steps = proptest::collection::vec((-60_000i64..60_000, 1usize..5_000), 1..12);
    check_exactly(24, file!(), (0u16..1024, steps), |(node, steps)| {
        let dir = tempfile::tempdir().unwrap();
        let clock = TestClock::new(START_UNIX_MS);
        let mut config = config(&clock, PARTITION_SEGMENT_BYTES);
        config.node = NodeId::new(node).unwrap();
        let partition = Partition::open(dir.path(), config).unwrap();
        let mut model = Vec::new();
        for (delta_ms, count) in &steps {
            clock.shift(*delta_ms);
            let batch: Vec<RecordSpec> = (0..*count)
                .map(|i| RecordSpec {
                    key: Vec::new(),
                    payload: (i as u32).to_le_bytes().to_vec(),
                    tombstone: false,
                    previous_version: Seq::ZERO,
                })
                .collect();
            let floor = model.last().map_or(Seq::ZERO, |r: &ModelRecord| r.seq);
            let range = append_checked(&partition, &clock, &batch, &mut model);
            check_issued(range.first, floor, config_node(node), clock.now());
            // A backwards clock step between every batch, also while segments roll.
            clock.shift(-1_000);
        }
        fill_segments(&partition, &clock, &mut model, PARTITION_SEGMENT_BYTES, 3);
        assert_segments_at_least(dir.path(), &model, PARTITION_SEGMENT_BYTES, 3);
        let read = read(&partition.snapshot(), ReadFrom::Earliest);
        prop_assert_eq!(&read, &model);
        for pair in read.windows(2) {
            prop_assert!(pair[0].seq < pair[1].seq);
            prop_assert_eq!(pair[1].seq.node(), config_node(node));
        }
        Ok(())
    });
}

#[test]
fn store_seqs_increase_across_partitions_while_clock_goes_back() {
    let steps = proptest::collection::vec((-60_000i64..60_000, 0usize..3, 1usize..300), 1..30);
    check_exactly(24, file!(), steps, |steps| {
        let dir = tempfile::tempdir().unwrap();
        let clock = TestClock::new(START_UNIX_MS);
        let mut config = StoreConfig::default();
        config.partition = model::config(&clock, STORE_SEGMENT_BYTES);
        config.partition.node = config_node(7);
        let store = Store::open(dir.path(), config).unwrap();
        let ids: Vec<PartitionId> = ["a", "b/c", "d"]
            .iter()
            .map(|n| PartitionId::new(*n).unwrap())
            .collect();
        let mut issued = Vec::new();
        let mut models = vec![Vec::new(); ids.len()];
        for (delta_ms, which, count) in &steps {
            clock.shift(*delta_ms);
            let batch: Vec<RecordSpec> = (0..*count)
                .map(|i| RecordSpec {
                    key: vec![*which as u8],
                    payload: (i as u32).to_le_bytes().to_vec(),
                    tombstone: false,
                    previous_version: Seq::ZERO,
                })
                .collect();
            let partition = store.partition(&ids[*which]).unwrap();
            let before = models[*which].len();
            let floor = issued.last().copied().unwrap_or(Seq::ZERO);
            let range = append_checked(&partition, &clock, &batch, &mut models[*which]);
            check_issued(range.first, floor, config_node(7), clock.now());
            issued.extend(models[*which][before..].iter().map(|r| r.seq));
            prop_assert_eq!(store.last_issued_seq(), range.last);
        }
        // The first partition rolls at least three times, with the clock behind.
        clock.shift(-60_000);
        let first = store.partition(&ids[0]).unwrap();
        let before = models[0].len();
        fill_segments(&first, &clock, &mut models[0], STORE_SEGMENT_BYTES, 3);
        issued.extend(models[0][before..].iter().map(|r| r.seq));
        assert_segments_at_least(first.dir(), &models[0], STORE_SEGMENT_BYTES, 3);
        for pair in issued.windows(2) {
            prop_assert!(
                pair[0] < pair[1],
                "store issued {} after {}",
                pair[1],
                pair[0]
            );
        }
        Ok(())
    });
}

fn config_node(node: u16) -> NodeId {
    NodeId::new(node).unwrap()
}

#[test]
fn exhausted_seq_space_is_an_error_not_a_wrap() {
    let node = NodeId::new(3).unwrap();
    let end_of_time = EPOCH_UNIX_MS + TIME_MS_MAX;
    let mut generator = SeqGenerator::new(node, Seq::ZERO);
    let range = generator.next_range(end_of_time + 1_000, 4096).unwrap();
    assert_eq!(range.first.epoch_ms(), TIME_MS_MAX);
    assert_eq!(range.last.epoch_ms(), TIME_MS_MAX);
    let last = generator.last();
    let error = generator.next(end_of_time);
    assert!(
        matches!(error, Err(LogError::SeqExhausted(seq)) if seq == last),
        "got {error:?}"
    );
    assert_eq!(
        generator.last(),
        last,
        "a failed call must not move the generator"
    );
    assert!(last <= Seq::MAX);
}
