//! Acceptance: segment indexes are derived data. Writing across many segments and then deleting,
//! truncating, garbling or swapping the sealed segments' `.idx` files loses nothing: after a
//! reopen, reads from any `_seq` return exactly the model, and every sealed segment has a valid
//! `.idx` again (rebuilt from the segment) once it has been read.
//!
//! Model: a `Vec` of every committed record, split by segment file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod model;

use std::path::Path;

use model::{
    append_checked, arb_record_in, assert_segments_at_least, check_exactly, config, index_path,
    read, segment_first_seqs, segment_path, split_by_segment, ModelRecord, RecordSpec, TestClock,
    START_UNIX_MS,
};
use proptest::prelude::*;
use proptest::sample::Index;
use strand_log::{Partition, ReadFrom, SegmentIndex, Seq};

/// What happens to one sealed segment's index file before the reopen.
#[derive(Clone, Debug)]
enum Damage {
    Keep,
    Delete,
    /// Cut to this fraction (in 1/256ths) of its length.
    Truncate(u8),
    /// Replace with these bytes.
    Garble(Vec<u8>),
    /// Flip one bit at this position.
    FlipBit(Index, u8),
    /// Replace with the (valid) index of another segment.
    SwapWithNeighbour,
    /// Append these bytes after the valid index.
    Extend(Vec<u8>),
}

fn arb_damage() -> impl Strategy<Value = Damage> {
    let bytes = proptest::collection::vec(any::<u8>(), 0..200);
    prop_oneof![
        2 => Just(Damage::Keep),
        3 => Just(Damage::Delete),
        2 => any::<u8>().prop_map(Damage::Truncate),
        2 => bytes.clone().prop_map(Damage::Garble),
        2 => (any::<Index>(), 0u8..8).prop_map(|(at, bit)| Damage::FlipBit(at, bit)),
        1 => Just(Damage::SwapWithNeighbour),
        1 => bytes.prop_map(Damage::Extend),
    ]
}

/// Damage the index of the segment `first_seq`; `neighbour` is another segment's index as
/// sealing wrote it.
fn apply(damage: &Damage, dir: &Path, first_seq: Seq, neighbour: &[u8]) {
    let path = index_path(dir, first_seq);
    let original = std::fs::read(&path).expect("sealing writes an index");
    let damaged = match damage {
        Damage::Keep => return,
        Damage::Delete => return std::fs::remove_file(&path).unwrap(),
        Damage::Truncate(fraction) => {
            original[..original.len() * usize::from(*fraction) / 256].to_vec()
        }
        Damage::Garble(bytes) => bytes.clone(),
        Damage::FlipBit(at, bit) => {
            let mut flipped = original;
            let at = at.index(flipped.len());
            flipped[at] ^= 1 << bit;
            flipped
        }
        Damage::SwapWithNeighbour => neighbour.to_vec(),
        Damage::Extend(bytes) => [original.as_slice(), bytes].concat(),
    };
    std::fs::write(&path, damaged).unwrap();
}

/// The index file of a sealed segment exists and describes exactly its records.
fn check_index_file(dir: &Path, first_seq: Seq, records: &[ModelRecord]) {
    let path = index_path(dir, first_seq);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let segment_bytes = std::fs::metadata(segment_path(dir, first_seq))
        .unwrap()
        .len();
    let index = SegmentIndex::decode(&bytes, first_seq, segment_bytes)
        .unwrap_or_else(|| panic!("{} is not a valid index after reading", path.display()));
    let summary = index.summary;
    assert_eq!(summary.first_seq, first_seq);
    assert_eq!(summary.records as usize, records.len());
    assert_eq!(Some(summary.last_seq), records.last().map(|r| r.seq));
    assert_eq!(u64::from(summary.data_bytes), segment_bytes);
    let newest = records.iter().map(|r| r.timestamp_unix_ms).max();
    assert_eq!(Some(summary.max_timestamp_unix_ms), newest);
    for entry in index.entries() {
        assert!(
            records.iter().any(|r| r.seq == entry.seq),
            "index entry {entry:?} names no record of the segment"
        );
    }
}

fn check_reads(partition: &Partition, model: &[ModelRecord], probes: &[(Index, i8)]) {
    let snapshot = partition.snapshot();
    for (index, delta) in probes {
        let at = model[index.index(model.len())].seq;
        let s = Seq(at.0.saturating_add_signed(i64::from(*delta)));
        let expected: Vec<ModelRecord> = model.iter().filter(|r| r.seq >= s).cloned().collect();
        assert_eq!(
            read(&snapshot, ReadFrom::Seq(s)),
            expected,
            "ReadFrom::Seq({s})"
        );
    }
    assert_eq!(read(&snapshot, ReadFrom::Earliest), model);
}

fn arb_batches() -> impl Strategy<Value = Vec<Vec<RecordSpec>>> {
    // At least 30 batches of at least 480 bytes: several sealed segments of up to 6 KiB.
    let batch = proptest::collection::vec(arb_record_in(0..24, 200..600), 2..6);
    proptest::collection::vec(batch, 30..60)
}

fn arb_probes() -> impl Strategy<Value = Vec<(Index, i8)>> {
    proptest::collection::vec((any::<Index>(), -2i8..=2), 1..24)
}

#[test]
fn damaged_indexes_are_rebuilt_and_reads_stay_exact() {
    let damages = proptest::collection::vec(arb_damage(), 1..64);
    let strategy = (4096u64..6144, arb_batches(), damages, arb_probes());
    check_exactly(
        32,
        file!(),
        strategy,
        |(segment_bytes_max, batches, damages, probes)| {
            let dir = tempfile::tempdir().unwrap();
            let clock = TestClock::new(START_UNIX_MS);
            let config = config(&clock, segment_bytes_max);
            let mut model = Vec::new();
            {
                let partition = Partition::open(dir.path(), config.clone()).unwrap();
                for batch in &batches {
                    clock.shift(1);
                    append_checked(&partition, &clock, batch, &mut model);
                }
            }
            let first_seqs = segment_first_seqs(dir.path());
            let sealed = &first_seqs[..first_seqs.len() - 1];
            prop_assert!(sealed.len() >= 2, "only {} sealed segments", sealed.len());
            let originals: Vec<Vec<u8>> = sealed
                .iter()
                .map(|s| std::fs::read(index_path(dir.path(), *s)).unwrap())
                .collect();
            for (i, first_seq) in sealed.iter().enumerate() {
                let damage = &damages[i % damages.len()];
                let neighbour = &originals[(i + 1) % sealed.len()];
                apply(damage, dir.path(), *first_seq, neighbour);
            }

            let partition = Partition::open(dir.path(), config.clone()).unwrap();
            check_reads(&partition, &model, &probes);
            let parts = split_by_segment(&model, &first_seqs);
            for (first_seq, records) in sealed.iter().zip(&parts) {
                check_index_file(dir.path(), *first_seq, records);
            }
            drop(partition);

            // The rebuilt files are accepted as they are by the next open.
            let partition = Partition::open(dir.path(), config).unwrap();
            check_reads(&partition, &model, &probes);
            prop_assert_eq!(partition.verify().unwrap(), model.len() as u64);
            Ok(())
        },
    );
}

#[test]
fn deleting_every_index_loses_nothing() {
    check_exactly(
        32,
        file!(),
        (arb_batches(), arb_probes()),
        |(batches, probes)| {
            let dir = tempfile::tempdir().unwrap();
            let clock = TestClock::new(START_UNIX_MS);
            let config = config(&clock, 4096);
            let mut model = Vec::new();
            {
                let partition = Partition::open(dir.path(), config.clone()).unwrap();
                for batch in &batches {
                    append_checked(&partition, &clock, batch, &mut model);
                }
            }
            // At least 14 KiB of records in 4 KiB segments.
            assert_segments_at_least(dir.path(), &model, 4096, 4);
            let first_seqs = segment_first_seqs(dir.path());
            for first_seq in &first_seqs {
                let _ = std::fs::remove_file(index_path(dir.path(), *first_seq));
            }
            let partition = Partition::open(dir.path(), config).unwrap();
            // A read from the middle first: it must not depend on older segments being loaded.
            check_reads(&partition, &model, &probes);
            let parts = split_by_segment(&model, &first_seqs);
            let sealed = first_seqs.len() - 1;
            for (first_seq, records) in first_seqs.iter().zip(&parts).take(sealed) {
                check_index_file(dir.path(), *first_seq, records);
            }
            Ok(())
        },
    );
}
