//! Snapshot bytes: every single-byte flip and every cut is refused with an error, and a
//! whole snapshot reads back as written.

use crate::cluster::state_machine::format::{
    AppliedState, SnapshotHeader, SnapshotReader, SnapshotWriter,
};
use crate::cluster::state_machine::SnapshotFormatError;
use crate::cluster::types::ReplicatedBatch;

use super::{record, tombstone};

fn small_snapshot() -> Vec<u8> {
    let header = SnapshotHeader {
        applied: AppliedState::default(),
        snapshot_id: "test".to_owned(),
        meta_index: 17,
    };
    let mut writer = SnapshotWriter::new(&header);
    writer.push("tables/a", record(1, b"k", b"payload"));
    writer.push("tables/a", tombstone(2, b"k", 1));
    writer.push("tables/b", record(3, b"", b"x"));
    writer.finish()
}

/// Every batch of `data`, or the first error.
fn read_all(data: &[u8]) -> Result<(SnapshotHeader, Vec<ReplicatedBatch>), SnapshotFormatError> {
    let (header, mut reader) = SnapshotReader::open(data)?;
    let mut batches = Vec::new();
    while let Some(batch) = reader.next_batch()? {
        batches.push(batch);
    }
    Ok((header, batches))
}

#[test]
fn a_snapshot_reads_back_as_written() {
    let (header, batches) = read_all(&small_snapshot()).unwrap();
    assert_eq!(header.snapshot_id, "test");
    let partitions: Vec<&str> = batches.iter().map(|b| b.partition.as_str()).collect();
    assert_eq!(partitions, ["tables/a", "tables/b"]);
    assert_eq!(
        batches[0].records,
        vec![record(1, b"k", b"payload"), tombstone(2, b"k", 1)]
    );
}

#[test]
fn every_flipped_byte_and_every_cut_is_refused() {
    let data = small_snapshot();
    for at in 0..data.len() {
        let mut flipped = data.clone();
        flipped[at] ^= 0x20;
        assert!(
            read_all(&flipped).is_err(),
            "flip at byte {at} went unnoticed"
        );
        assert!(
            read_all(&data[..at]).is_err(),
            "cut at byte {at} went unnoticed"
        );
    }
    let mut longer = data.clone();
    longer.push(0);
    assert!(matches!(
        read_all(&longer),
        Err(SnapshotFormatError::TrailingBytes)
    ));
}
