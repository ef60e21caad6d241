//! Acceptance: `Partition::compaction_backlog()` tells a compaction scheduler what no compaction
//! has checked yet, from memory: the sealed segments sealed (or found at open) since this
//! `Partition` object last compacted, their size on disk, and the time of the oldest one's
//! first `_seq`. A compaction empties it (also one that removed nothing); new sealed segments
//! fill it again; after a reopen every sealed segment counts once; the active segment never
//! counts; retention takes removed segments out of it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod model;

use std::path::Path;

use model::{
    append_checked, config, segment_first_seqs, segment_path, ModelRecord, RecordSpec, TestClock,
    START_UNIX_MS,
};
use strand_log::{CompactionBacklog, CompactionPolicy, Partition, RetentionPolicy, Seq};

/// One record of about 1.5 KiB: two fit in a 4 KiB segment.
fn record(key: u8) -> RecordSpec {
    RecordSpec {
        key: vec![key],
        payload: vec![key; 1500],
        tombstone: false,
        previous_version: Seq::ZERO,
    }
}

/// The backlog of the sealed segments named by `first_seqs`, from the files on disk.
fn backlog_of(dir: &Path, first_seqs: &[Seq]) -> CompactionBacklog {
    CompactionBacklog {
        sealed_segments: first_seqs.len(),
        sealed_bytes: first_seqs
            .iter()
            .map(|s| std::fs::metadata(segment_path(dir, *s)).unwrap().len())
            .sum(),
        oldest_uncompacted_unix_ms: first_seqs.first().map(|s| s.unix_ms()),
    }
}

/// First `_seq`s of the sealed segments (all but the newest file).
fn sealed(dir: &Path) -> Vec<Seq> {
    let mut first_seqs = segment_first_seqs(dir);
    first_seqs.pop();
    first_seqs
}

#[test]
fn backlog_counts_sealed_segments_no_compaction_has_checked() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(START_UNIX_MS);
    let partition = Partition::open(dir.path(), config(&clock, 4096)).unwrap();
    let mut model: Vec<ModelRecord> = Vec::new();
    assert_eq!(partition.compaction_backlog(), CompactionBacklog::default());
    // Nine records over three keys, two per segment: four sealed segments and the active one.
    for i in 0..9u8 {
        clock.shift(1_000);
        append_checked(&partition, &clock, &[record(i % 3)], &mut model);
    }
    let before = sealed(dir.path());
    assert_eq!(before.len(), 4);
    assert_eq!(
        partition.compaction_backlog(),
        backlog_of(dir.path(), &before)
    );
    assert_eq!(
        partition.compaction_backlog().oldest_uncompacted_unix_ms,
        Some(START_UNIX_MS + 1_000),
        "the time of the first record"
    );

    let policy = CompactionPolicy::default();
    assert!(
        partition
            .compact(&policy, clock.now())
            .unwrap()
            .records_removed
            > 0
    );
    assert_eq!(partition.compaction_backlog(), CompactionBacklog::default());
    // Nothing more to remove: the segments still count as checked.
    assert_eq!(
        partition
            .compact(&policy, clock.now())
            .unwrap()
            .records_removed,
        0
    );
    assert_eq!(partition.compaction_backlog(), CompactionBacklog::default());

    // New sealed segments count, the compacted ones do not.
    let checked = sealed(dir.path());
    for i in 0..4u8 {
        clock.shift(1_000);
        append_checked(&partition, &clock, &[record(10 + i)], &mut model);
    }
    let fresh: Vec<Seq> = sealed(dir.path())
        .into_iter()
        .filter(|s| !checked.contains(s))
        .collect();
    assert_eq!(fresh.len(), 2);
    assert_eq!(
        partition.compaction_backlog(),
        backlog_of(dir.path(), &fresh)
    );
    drop(partition);

    // After a reopen every sealed segment counts once.
    let partition = Partition::open(dir.path(), config(&clock, 4096)).unwrap();
    let all = sealed(dir.path());
    assert_eq!(partition.compaction_backlog(), backlog_of(dir.path(), &all));
    // Retention removes the oldest segment: it leaves the backlog.
    let retention = RetentionPolicy {
        max_age_ms: None,
        max_bytes: Some(backlog_of(dir.path(), &all).sealed_bytes),
    };
    let removed = partition.apply_retention(&retention, clock.now()).unwrap();
    assert_eq!(removed.segments_removed, 1);
    let left = sealed(dir.path());
    assert_eq!(left.len(), all.len() - 1);
    assert_eq!(
        partition.compaction_backlog(),
        backlog_of(dir.path(), &left)
    );
}
