//! Tests of the Raft log: openraft's own storage suite (`suite`), reopening after writes and
//! after damage (`reopen`), and a model the store must match through random operations
//! (`model`).

mod model;
mod reopen;
mod suite;

use std::path::{Path, PathBuf};

use openraft::{CommittedLeaderId, EntryPayload, LogId};

use super::Entry;
use crate::cluster::types::{ClusterCommand, NodeId, OwnedRecord, ReplicatedBatch};

/// The log id of `index` in `term`, proposed by node 1.
fn log_id(term: u64, index: u64) -> LogId<NodeId> {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

/// An entry carrying one record whose payload has `payload_bytes` bytes.
fn append_entry(term: u64, index: u64, payload_bytes: usize) -> Entry {
    let record = OwnedRecord {
        seq: index << 16,
        timestamp_unix_ms: 1_700_000_000_000 + index,
        key: format!("k{index}").into_bytes(),
        payload: vec![index as u8; payload_bytes],
        flags: 0,
        previous_version: 0,
    };
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(ClusterCommand::Append(ReplicatedBatch {
            partition: "orders.7".to_owned(),
            records: vec![record],
        })),
    }
}

/// A single-threaded runtime (with the blocking pool the store needs).
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The segment files in `dir`, in index order.
fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "seg"))
        .collect();
    files.sort();
    files
}

/// Where each frame of the segment at `path` starts, and its length: read by walking the
/// length fields, independently of the code under test.
fn frame_offsets(path: &Path) -> Vec<(u64, u64)> {
    let bytes = std::fs::read(path).unwrap();
    let mut frames = Vec::new();
    let mut at = super::format::SEGMENT_HEADER_BYTES as usize;
    while at + 8 <= bytes.len() {
        let body_len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let frame_len = 8 + body_len;
        if at + frame_len > bytes.len() {
            break;
        }
        frames.push((at as u64, frame_len as u64));
        at += frame_len;
    }
    frames
}
