//! Reopening the log: what survives, which damage is cut off as a torn tail, and which is an
//! error naming the file and the offset.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
use openraft::{RaftLogReader, Vote};

use super::{append_entry, frame_offsets, log_id, runtime, segment_files};
use crate::cluster::raft_log::{Entry, RaftLogError, RaftLogStore};

/// About 16 entries of [`PAYLOAD_BYTES`] per segment.
const SEGMENT_BYTES: u64 = 4096;
const PAYLOAD_BYTES: usize = 200;

fn open(dir: &Path) -> RaftLogStore {
    RaftLogStore::open_with(dir, SEGMENT_BYTES).unwrap()
}

fn entries(term: u64, indexes: std::ops::Range<u64>) -> Vec<Entry> {
    indexes
        .map(|index| append_entry(term, index, PAYLOAD_BYTES))
        .collect()
}

/// A store in `dir` holding `indexes` (in term 1), closed again.
fn write_log(dir: &Path, indexes: std::ops::Range<u64>) {
    runtime().block_on(async {
        let mut store = open(dir);
        store.blocking_append(entries(1, indexes)).await.unwrap();
    });
}

/// Everything the store at `dir` holds, read after opening it.
fn read_all(dir: &Path) -> Vec<Entry> {
    runtime().block_on(async { open(dir).try_get_log_entries(..).await.unwrap() })
}

/// Flip one bit at `offset` of the file at `path`.
fn flip_bit(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x10;
    std::fs::write(path, bytes).unwrap();
}

fn assert_corrupt_at(dir: &Path, file: &Path, expected_offset: u64) {
    match RaftLogStore::open_with(dir, SEGMENT_BYTES) {
        Err(RaftLogError::Corrupt { path, offset, .. }) => {
            assert_eq!((path.as_path(), offset), (file, expected_offset));
        }
        Err(other) => panic!("expected damage in {}, got {other}", file.display()),
        Ok(_) => panic!("expected damage in {}, the log opened", file.display()),
    }
    let message = RaftLogStore::open_with(dir, SEGMENT_BYTES)
        .err()
        .unwrap()
        .to_string();
    assert!(message.contains(&file.display().to_string()), "{message}");
}

#[test]
fn entries_vote_committed_and_purge_point_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let mut store = open(dir.path());
        store.blocking_append(entries(1, 0..40)).await.unwrap();
        store.save_vote(&Vote::new(3, 2)).await.unwrap();
        store.save_committed(Some(log_id(1, 30))).await.unwrap();
        store.purge(log_id(1, 20)).await.unwrap();
        store.truncate(log_id(1, 35)).await.unwrap();
        let before = store.try_get_log_entries(..).await.unwrap();
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(log_id(1, 20)));
        assert_eq!(state.last_log_id, Some(log_id(1, 34)));
        drop(store);

        let mut store = open(dir.path());
        let after = store.try_get_log_entries(..).await.unwrap();
        assert_eq!(after, before);
        assert_eq!(after.first().map(|e| e.log_id.index), Some(21));
        assert_eq!(store.get_log_state().await.unwrap(), state);
        assert_eq!(store.read_vote().await.unwrap(), Some(Vote::new(3, 2)));
        assert_eq!(store.read_committed().await.unwrap(), Some(log_id(1, 30)));
        // The log goes on where it ended, and that survives too.
        store.blocking_append(entries(2, 35..37)).await.unwrap();
        drop(store);
        let mut store = open(dir.path());
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_log_id, Some(log_id(2, 36)));
    });
}

#[test]
fn purge_deletes_the_segments_wholly_at_or_below_the_purge_point() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let mut store = open(dir.path());
        store.blocking_append(entries(1, 0..60)).await.unwrap();
        let segments = segment_files(dir.path());
        assert!(segments.len() >= 4, "{segments:?}");
        store.purge(log_id(1, 40)).await.unwrap();
        let left = segment_files(dir.path());
        assert!(left.len() < segments.len());
        assert_eq!(left, segments[segments.len() - left.len()..]);
        // The first segment left still holds entry 41; the one before it (gone) did not.
        let first_left = frame_offsets(&left[0]).len() as u64;
        let name = left[0].file_stem().unwrap().to_str().unwrap();
        let first_index: u64 = name.parse().unwrap();
        assert!(first_index <= 41 && 41 < first_index + first_left);

        store.purge(log_id(1, 70)).await.unwrap();
        assert!(segment_files(dir.path()).is_empty());
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_log_id, Some(log_id(1, 70)));
        store.blocking_append(entries(2, 71..73)).await.unwrap();
        drop(store);
        let mut store = open(dir.path());
        let read: Vec<u64> = store
            .try_get_log_entries(..)
            .await
            .unwrap()
            .iter()
            .map(|e| e.log_id.index)
            .collect();
        assert_eq!(read, vec![71, 72]);
    });
}

#[test]
fn garbage_after_the_last_frame_is_cut_and_the_rest_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 0..30);
    let before = read_all(dir.path());
    let last = segment_files(dir.path()).pop().unwrap();
    let len = std::fs::metadata(&last).unwrap().len();
    let mut file = OpenOptions::new().append(true).open(&last).unwrap();
    file.write_all(b"\x03\x00\x00\x00garbage after the frames")
        .unwrap();
    drop(file);

    assert_eq!(read_all(dir.path()), before);
    assert_eq!(std::fs::metadata(&last).unwrap().len(), len);
    runtime().block_on(async {
        let mut store = open(dir.path());
        store.blocking_append(entries(1, 30..31)).await.unwrap();
    });
    assert_eq!(read_all(dir.path()).len(), 31);
}

#[test]
fn a_last_frame_cut_in_half_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 0..30);
    let before = read_all(dir.path());
    let last = segment_files(dir.path()).pop().unwrap();
    let (offset, frame_len) = *frame_offsets(&last).last().unwrap();
    let file = OpenOptions::new().write(true).open(&last).unwrap();
    file.set_len(offset + frame_len / 2).unwrap();
    drop(file);

    assert_eq!(read_all(dir.path()), before[..29]);
    assert_eq!(std::fs::metadata(&last).unwrap().len(), offset);
    runtime().block_on(async {
        let mut store = open(dir.path());
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_log_id, Some(log_id(1, 28)));
    });
}

#[test]
fn a_checksum_mismatch_in_the_last_frame_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 0..30);
    let before = read_all(dir.path());
    let last = segment_files(dir.path()).pop().unwrap();
    let (offset, frame_len) = *frame_offsets(&last).last().unwrap();
    flip_bit(&last, offset + frame_len - 1);
    assert_eq!(read_all(dir.path()), before[..29]);
}

#[test]
fn zeros_after_the_last_frame_are_cut() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 0..30);
    let before = read_all(dir.path());
    let last = segment_files(dir.path()).pop().unwrap();
    let len = std::fs::metadata(&last).unwrap().len();
    let file = OpenOptions::new().write(true).open(&last).unwrap();
    file.set_len(len + 10_000).unwrap();
    drop(file);
    assert_eq!(read_all(dir.path()), before);
    assert_eq!(std::fs::metadata(&last).unwrap().len(), len);
}

#[test]
fn a_last_segment_left_without_entries_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 0..30);
    let last = segment_files(dir.path()).pop().unwrap();
    let first: u64 = last.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    let (offset, frame_len) = frame_offsets(&last)[0];
    let file = OpenOptions::new().write(true).open(&last).unwrap();
    // Only part of the segment's first frame made it to the disk.
    file.set_len(offset + frame_len - 3).unwrap();
    drop(file);
    let read: Vec<u64> = read_all(dir.path())
        .iter()
        .map(|e| e.log_id.index)
        .collect();
    assert_eq!(read, (0..first).collect::<Vec<u64>>());
    assert!(!last.exists());
}

#[test]
fn a_damaged_frame_before_the_last_is_an_error() {
    // A flipped bit in the length, the checksum or the body of a frame with entries after it:
    // cutting there would drop acknowledged entries.
    for (field, at) in [("length", 1), ("checksum", 5), ("body", 12)] {
        let dir = tempfile::tempdir().unwrap();
        write_log(dir.path(), 0..30);
        let last = segment_files(dir.path()).pop().unwrap();
        let frames = frame_offsets(&last);
        assert!(frames.len() >= 3);
        let (offset, _) = frames[1];
        flip_bit(&last, offset + at);
        eprintln!("a flipped bit in the {field}");
        assert_corrupt_at(dir.path(), &last, offset);
    }
}

#[test]
fn damage_in_an_earlier_segment_is_an_error_even_in_its_last_frame() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 0..40);
    let first = segment_files(dir.path()).remove(0);
    let (offset, frame_len) = *frame_offsets(&first).last().unwrap();
    let file = OpenOptions::new().write(true).open(&first).unwrap();
    file.set_len(offset + frame_len / 2).unwrap();
    drop(file);
    assert_corrupt_at(dir.path(), &first, offset);
}

#[test]
fn a_damaged_segment_header_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 0..30);
    let last = segment_files(dir.path()).pop().unwrap();
    flip_bit(&last, 2);
    assert_corrupt_at(dir.path(), &last, 0);
}

#[test]
fn a_missing_segment_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 0..60);
    let segments = segment_files(dir.path());
    assert!(segments.len() >= 3);
    std::fs::remove_file(&segments[1]).unwrap();
    assert_corrupt_at(dir.path(), &segments[2], 0);
}

#[test]
fn entries_missing_after_the_purge_point_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 0..60);
    runtime().block_on(async {
        let mut store = open(dir.path());
        store.purge(log_id(1, 3)).await.unwrap();
    });
    let segments = segment_files(dir.path());
    std::fs::remove_file(&segments[0]).unwrap();
    assert_corrupt_at(dir.path(), &segments[1], 0);
}

#[test]
fn a_damaged_state_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let mut store = open(dir.path());
        store.save_vote(&Vote::new(1, 1)).await.unwrap();
    });
    let state = dir.path().join("raft.state");
    flip_bit(&state, 20);
    assert_corrupt_at(dir.path(), &state, 0);
}

#[test]
fn appending_out_of_order_is_refused_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let mut store = open(dir.path());
        store.blocking_append(entries(1, 0..3)).await.unwrap();
        assert!(store.blocking_append(entries(1, 4..5)).await.is_err());
        // Refused before any write: the store is not poisoned and goes on.
        store.blocking_append(entries(1, 3..4)).await.unwrap();
    });
    assert_eq!(read_all(dir.path()).len(), 4);
}
