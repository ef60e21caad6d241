//! Compaction swaps a rewritten segment in by renaming it over the original. A failed rename
//! returns the error and keeps the original segment (and every later one) in place and
//! readable: nothing is lost, nothing is poisoned, and after a restart a compaction succeeds.

use strand_log::CompactionPolicy;

use crate::harness::{append_range, assert_injected, files_ending, read_all, Rig};
use crate::model::{assert_resume_floors_hold, segment_first_seqs, segment_path};

#[test]
fn failed_rename_keeps_the_original_segment_readable() {
    let dir = tempfile::tempdir().unwrap();
    let rig = Rig::new();
    let mut model = Vec::new();
    let partition = rig.open(dir.path());
    append_range(&partition, &rig, 0, 60, &mut model);
    let segments = segment_first_seqs(dir.path());
    assert!(segments.len() >= 3, "{segments:?}");
    let originals: Vec<Vec<u8>> = segments
        .iter()
        .map(|&s| std::fs::read(segment_path(dir.path(), s)).unwrap())
        .collect();
    let floors = partition.resume_floors();
    let policy = CompactionPolicy::default();

    let failed = rig.with_fault(
        |f| &f.fail_rename,
        || partition.compact(&policy, rig.clock.now()),
    );
    let oldest = segment_path(dir.path(), segments[0]).with_extension("compact.tmp");
    assert_injected(failed, &oldest, "rename");
    assert!(
        !partition.is_poisoned(),
        "a failed compaction is not a failed write"
    );
    assert_eq!(read_all(&partition), model, "every record is still read");
    for (&first_seq, original) in segments.iter().zip(&originals) {
        let now = std::fs::read(segment_path(dir.path(), first_seq)).unwrap();
        assert!(now == *original, "segment {first_seq} changed");
    }
    assert!(
        files_ending(dir.path(), ".tmp").is_empty(),
        "rewrites were discarded"
    );
    // The floors may have risen for the removal that did not happen: conservative, and
    // every promise they make still holds.
    assert!(partition.resume_floors().lowest_resumable_seq >= floors.lowest_resumable_seq);
    assert_resume_floors_hold(&partition, &model);
    append_range(&partition, &rig, 60, 61, &mut model);
    drop(partition);

    let partition = rig.open(dir.path());
    assert_eq!(read_all(&partition), model);
    assert_eq!(partition.verify().unwrap(), model.len() as u64);
    let outcome = partition.compact(&policy, rig.clock.now()).unwrap();
    assert!(
        outcome.records_removed > 0 && outcome.segments_rewritten > 0,
        "{outcome:?}"
    );
    assert_resume_floors_hold(&partition, &model);
}
