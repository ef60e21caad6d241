//! Acceptance: a read can start at any `_seq`. For every `s` (an issued `_seq`, a value between
//! two issued ones, below the first, above the last, the extremes of `u64`),
//! `ReadFrom::Seq(s)` yields exactly the records with `_seq >= s` in order and
//! `ReadFrom::After(s)` exactly those with `_seq > s`, across many segments, before and after a
//! reopen, and from a snapshot taken before later appends (which sees only its own records).
//!
//! Model: a `Vec` of every committed record, filtered. Every case spans at least three
//! segments (generated batches are topped up with filler).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod model;

use model::{
    append_checked, arb_record, assert_segments_at_least, check_exactly, config, fill_segments,
    read, seqs, ModelRecord, RecordSpec, TestClock, START_UNIX_MS,
};
use proptest::prelude::*;
use proptest::sample::Index;
use strand_log::{Partition, ReadFrom, ReadSnapshot, Seq};

/// Where a probe starts, relative to the model so that it lands on interesting values.
#[derive(Clone, Debug)]
enum Probe {
    /// An issued `_seq`, moved by a small delta (0 hits it; others land between or on
    /// neighbours).
    Near(Index, i8),
    /// Just below the first or just above the last issued `_seq`.
    BelowFirst(u64),
    AboveLast(u64),
    /// A raw value, including 0 and `u64::MAX`.
    Raw(u64),
}

impl Probe {
    fn seq(&self, model: &[ModelRecord]) -> Seq {
        let first = model.first().map_or(0, |r| r.seq.0);
        let last = model.last().map_or(0, |r| r.seq.0);
        match self {
            Probe::Near(index, delta) => {
                let at = model[index.index(model.len())].seq.0;
                Seq(at.saturating_add_signed(i64::from(*delta)))
            }
            Probe::BelowFirst(below) => Seq(first.saturating_sub(*below)),
            Probe::AboveLast(above) => Seq(last.saturating_add(*above)),
            Probe::Raw(raw) => Seq(*raw),
        }
    }
}

fn arb_probe() -> impl Strategy<Value = Probe> {
    prop_oneof![
        6 => (any::<Index>(), -3i8..=3).prop_map(|(i, d)| Probe::Near(i, d)),
        1 => (1u64..1 << 30).prop_map(Probe::BelowFirst),
        1 => (1u64..1 << 30).prop_map(Probe::AboveLast),
        1 => prop_oneof![Just(0u64), Just(1), Just(i64::MAX as u64), Just(u64::MAX), any::<u64>()]
            .prop_map(Probe::Raw),
    ]
}

/// Every probe, both ways, against the model.
fn check_probes(snapshot: &ReadSnapshot, model: &[ModelRecord], probes: &[Probe]) {
    assert_eq!(read(snapshot, ReadFrom::Earliest), model);
    assert_eq!(read(snapshot, ReadFrom::Latest), Vec::new());
    for probe in probes {
        let s = probe.seq(model);
        let at_or_after: Vec<ModelRecord> = model.iter().filter(|r| r.seq >= s).cloned().collect();
        let after: Vec<ModelRecord> = model.iter().filter(|r| r.seq > s).cloned().collect();
        let got = read(snapshot, ReadFrom::Seq(s));
        assert_eq!(
            seqs(&got),
            seqs(&at_or_after),
            "ReadFrom::Seq({s}) for {probe:?}"
        );
        assert_eq!(got, at_or_after);
        let got = read(snapshot, ReadFrom::After(s));
        assert_eq!(
            seqs(&got),
            seqs(&after),
            "ReadFrom::After({s}) for {probe:?}"
        );
        assert_eq!(got, after);
    }
}

fn arb_batches() -> impl Strategy<Value = Vec<(i64, Vec<RecordSpec>)>> {
    // Mostly tiny clock steps, so runs of `_seq`s are consecutive integers; sometimes a jump,
    // so some neighbours are far apart.
    let step = prop_oneof![4 => 0i64..3, 1 => -5_000i64..5_000];
    let batch = proptest::collection::vec(arb_record(16, 400), 1..8);
    proptest::collection::vec((step, batch), 2..40)
}

#[test]
fn read_from_any_seq_returns_exactly_the_suffix() {
    let probes = proptest::collection::vec(arb_probe(), 1..40);
    let strategy = (4096u64..16384, arb_batches(), any::<Index>(), probes);
    check_exactly(
        32,
        file!(),
        strategy,
        |(segment_bytes_max, batches, split, probes)| {
            let dir = tempfile::tempdir().unwrap();
            let clock = TestClock::new(START_UNIX_MS);
            let config = config(&clock, segment_bytes_max);
            let mut model = Vec::new();
            {
                let partition = Partition::open(dir.path(), config.clone()).unwrap();
                let split = split.index(batches.len());
                let mut early = None;
                for (i, (step_ms, batch)) in batches.iter().enumerate() {
                    if i == split {
                        early = Some((partition.snapshot(), model.clone()));
                    }
                    clock.shift(*step_ms);
                    append_checked(&partition, &clock, batch, &mut model);
                }
                fill_segments(&partition, &clock, &mut model, segment_bytes_max, 3);
                check_probes(&partition.snapshot(), &model, &probes);
                let (early, early_model) = early.expect("split is inside the batches");
                prop_assert_eq!(
                    early.last_seq(),
                    early_model.last().map_or(Seq::ZERO, |r| r.seq)
                );
                if early_model.is_empty() {
                    prop_assert_eq!(read(&early, ReadFrom::Earliest), Vec::new());
                } else {
                    check_probes(&early, &early_model, &probes);
                }
            }
            // Reads did cross segments: the records span at least three.
            assert_segments_at_least(dir.path(), &model, segment_bytes_max, 3);
            let partition = Partition::open(dir.path(), config).unwrap();
            check_probes(&partition.snapshot(), &model, &probes);
            Ok(())
        },
    );
}
