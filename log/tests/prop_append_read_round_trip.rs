//! Acceptance: whatever is appended comes back identical (key, payload, flags, previous version,
//! timestamp) and in order, while small segments roll, and again after a reopen. A batch that
//! cannot fit in one segment is rejected whole and spends nothing.
//!
//! Model: a `Vec` of every committed record, plus a count of the segments the roll rule
//! ("a batch goes to the active segment if it still fits, else to a new one") must create.
//! Every case rolls: generated batches are topped up with filler until the roll rule has made
//! at least three segments, and the files must match that count.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod model;

use model::{
    append_checked, arb_record, check_exactly, config, read, segment_data_bytes,
    segment_first_seqs, segment_path, split_by_segment, ModelRecord, RecordSpec, TestClock,
    START_UNIX_MS,
};
use proptest::prelude::*;
use strand_log::segment::SEGMENT_HEADER_BYTES;
use strand_log::{LogError, NewRecord, Partition, ReadFrom, Seq};

/// How many segments the roll rule creates and how full the newest one is.
#[derive(Debug, Default)]
struct RollModel {
    segments: usize,
    active_bytes: Option<u64>,
}

impl RollModel {
    fn add_batch(&mut self, batch_bytes: u64, segment_bytes_max: u64) {
        match self.active_bytes {
            Some(used) if used + batch_bytes <= segment_bytes_max => {
                self.active_bytes = Some(used + batch_bytes);
            }
            _ => {
                self.segments += 1;
                self.active_bytes = Some(u64::from(SEGMENT_HEADER_BYTES) + batch_bytes);
            }
        }
    }
}

fn batch_bytes(batch: &[RecordSpec]) -> u64 {
    batch.iter().map(RecordSpec::frame_bytes).sum()
}

/// Append `batch`; if it cannot fit in one segment, check it is rejected whole and append its
/// records one by one instead (each again rejected if it alone cannot fit).
fn append_or_split(
    partition: &std::sync::Arc<Partition>,
    clock: &TestClock,
    batch: &[RecordSpec],
    model: &mut Vec<ModelRecord>,
    rolls: &mut RollModel,
    segment_bytes_max: u64,
) {
    let room = segment_bytes_max - u64::from(SEGMENT_HEADER_BYTES);
    let bytes = batch_bytes(batch);
    if bytes <= room {
        append_checked(partition, clock, batch, model);
        rolls.add_batch(bytes, segment_bytes_max);
        return;
    }
    let last_before = partition.last_seq();
    let records: Vec<NewRecord<'_>> = batch.iter().map(RecordSpec::new_record).collect();
    let rejected = partition.append(&records);
    assert!(
        matches!(rejected, Err(LogError::BatchTooLarge { .. })),
        "a {bytes}-byte batch in {segment_bytes_max}-byte segments gave {rejected:?}"
    );
    assert_eq!(
        partition.last_seq(),
        last_before,
        "a rejected batch was committed"
    );
    if batch.len() > 1 {
        for record in batch {
            let single = std::slice::from_ref(record);
            append_or_split(partition, clock, single, model, rolls, segment_bytes_max);
        }
    }
}

/// Every sealed segment file is cut to exactly its records and never exceeds the limit.
fn check_sealed_files(dir: &std::path::Path, model: &[ModelRecord], segment_bytes_max: u64) {
    let first_seqs = segment_first_seqs(dir);
    let parts = split_by_segment(model, &first_seqs);
    let sealed = first_seqs.len().saturating_sub(1);
    for (first_seq, records) in first_seqs.iter().zip(&parts).take(sealed) {
        let file_bytes = std::fs::metadata(segment_path(dir, *first_seq))
            .unwrap()
            .len();
        assert!(
            !records.is_empty(),
            "sealed segment {first_seq} holds no record"
        );
        assert_eq!(
            records[0].seq, *first_seq,
            "segment not named by its first _seq"
        );
        assert_eq!(file_bytes, segment_data_bytes(records));
        assert!(file_bytes <= segment_bytes_max);
    }
}

fn arb_batches() -> impl Strategy<Value = Vec<(i64, Vec<RecordSpec>)>> {
    let batch = proptest::collection::vec(arb_record(64, 4096), 1..6);
    proptest::collection::vec((-20i64..50, batch), 1..24)
}

/// Segments every case reaches before its checks.
const SEGMENTS_MIN: usize = 3;

#[test]
fn appended_batches_read_back_identical_in_order() {
    let more = proptest::collection::vec(arb_record(64, 512), 1..4);
    let strategy = (8192u64..32768, arb_batches(), more);
    check_exactly(
        32,
        file!(),
        strategy,
        |(segment_bytes_max, batches, more)| {
            let dir = tempfile::tempdir().unwrap();
            let clock = TestClock::new(START_UNIX_MS);
            let config = config(&clock, segment_bytes_max);
            let mut model = Vec::new();
            let mut rolls = RollModel::default();
            {
                let partition = Partition::open(dir.path(), config.clone()).unwrap();
                for (step_ms, batch) in &batches {
                    clock.shift(*step_ms);
                    append_or_split(
                        &partition,
                        &clock,
                        batch,
                        &mut model,
                        &mut rolls,
                        segment_bytes_max,
                    );
                }
                let filler = [RecordSpec {
                    key: Vec::new(),
                    payload: vec![0xf1; 1000],
                    tombstone: false,
                    previous_version: Seq::ZERO,
                }];
                while rolls.segments < SEGMENTS_MIN {
                    append_or_split(
                        &partition,
                        &clock,
                        &filler,
                        &mut model,
                        &mut rolls,
                        segment_bytes_max,
                    );
                }
                prop_assert_eq!(&read(&partition.snapshot(), ReadFrom::Earliest), &model);
                let last = model.last().map_or(Seq::ZERO, |r| r.seq);
                prop_assert_eq!(partition.last_seq(), last);
            }
            prop_assert_eq!(segment_first_seqs(dir.path()).len(), rolls.segments);
            check_sealed_files(dir.path(), &model, segment_bytes_max);

            let partition = Partition::open(dir.path(), config).unwrap();
            prop_assert_eq!(&read(&partition.snapshot(), ReadFrom::Earliest), &model);
            prop_assert_eq!(partition.verify().unwrap(), model.len() as u64);
            clock.shift(1);
            append_or_split(
                &partition,
                &clock,
                &more,
                &mut model,
                &mut rolls,
                segment_bytes_max,
            );
            prop_assert_eq!(&read(&partition.snapshot(), ReadFrom::Earliest), &model);
            drop(partition);
            prop_assert_eq!(segment_first_seqs(dir.path()).len(), rolls.segments);
            prop_assert!(rolls.segments >= SEGMENTS_MIN);
            check_sealed_files(dir.path(), &model, segment_bytes_max);
            Ok(())
        },
    );
}

/// A batch that fills the active segment to exactly `segment_bytes_max` stays in it; the next
/// byte starts a new segment.
#[test]
fn batch_filling_segment_exactly_stays_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(START_UNIX_MS);
    let partition = Partition::open(dir.path(), config(&clock, 4096)).unwrap();
    let mut model = Vec::new();
    // Two frames of 40 + 1976 + 0 = 2016 bytes fill the 4032 bytes after the header.
    let half = RecordSpec {
        key: Vec::new(),
        payload: vec![9; 1976],
        tombstone: false,
        previous_version: Seq::ZERO,
    };
    assert_eq!(half.frame_bytes(), 2016);
    append_checked(&partition, &clock, std::slice::from_ref(&half), &mut model);
    append_checked(&partition, &clock, std::slice::from_ref(&half), &mut model);
    assert_eq!(segment_first_seqs(dir.path()).len(), 1);
    let tiny = RecordSpec {
        payload: Vec::new(),
        ..half.clone()
    };
    append_checked(&partition, &clock, std::slice::from_ref(&tiny), &mut model);
    assert_eq!(segment_first_seqs(dir.path()), [model[0].seq, model[2].seq]);
    // A single batch as large as a segment's data area is accepted into a fresh segment.
    append_checked(&partition, &clock, &[half.clone(), half], &mut model);
    assert_eq!(segment_first_seqs(dir.path()).len(), 3);
    assert_eq!(read(&partition.snapshot(), ReadFrom::Earliest), model);
}
