//! The basic contract end to end: appended records come back in order, across a segment roll
//! and a reopen.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use strand_log::{FsyncPolicy, NewRecord, Partition, PartitionConfig, ReadFrom};

#[test]
fn appended_records_come_back_after_roll_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let config = PartitionConfig {
        segment_bytes_max: 8192,
        fsync: FsyncPolicy::Never,
        ..PartitionConfig::default()
    };
    let mut seqs = Vec::new();
    {
        let partition = Partition::open(dir.path(), config.clone()).unwrap();
        for i in 0..500u32 {
            let payload = i.to_le_bytes();
            let range = partition.append(&[NewRecord::new(b"k", &payload)]).unwrap();
            seqs.push(range.first);
        }
        let snapshot = partition.snapshot();
        let read: Vec<_> = snapshot
            .records(ReadFrom::Earliest)
            .map(|r| r.unwrap().seq)
            .collect();
        assert_eq!(read, seqs);
    }
    let partition = Partition::open(dir.path(), config).unwrap();
    let snapshot = partition.snapshot();
    let read: Vec<_> = snapshot
        .records(ReadFrom::Earliest)
        .map(|r| r.unwrap().seq)
        .collect();
    assert_eq!(read, seqs);
    let from = seqs[321];
    let tail: Vec<_> = snapshot
        .records(ReadFrom::Seq(from))
        .map(|r| r.unwrap().seq)
        .collect();
    assert_eq!(tail, seqs[321..]);
    let after: Vec<_> = snapshot
        .records(ReadFrom::After(from))
        .map(|r| r.unwrap().seq)
        .collect();
    assert_eq!(after, seqs[322..]);
    let next = partition.append(&[NewRecord::new(b"k", b"x")]).unwrap();
    assert!(next.first > *seqs.last().unwrap());
    let segments = std::fs::read_dir(dir.path()).unwrap().count();
    assert!(
        segments > 4,
        "expected several segments, found {segments} files"
    );
}

#[test]
fn append_with_seqs_reports_every_id_of_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    let partition = Partition::open(dir.path(), PartitionConfig::default()).unwrap();
    let records: Vec<_> = (0..5000u32).map(|_| NewRecord::new(b"k", b"v")).collect();
    let mut seqs = Vec::new();
    let range = partition.append_with_seqs(&records, &mut seqs).unwrap();
    assert_eq!(
        (seqs.first(), seqs.last()),
        (Some(&range.first), Some(&range.last))
    );
    let snapshot = partition.snapshot();
    let read: Vec<_> = snapshot
        .records(ReadFrom::Earliest)
        .map(|r| r.unwrap().seq)
        .collect();
    assert_eq!(
        read, seqs,
        "5000 ids cross a millisecond, so they are not consecutive"
    );
}
