//! Expiry of STREAM-table rows: a row whose TTL has passed is deleted by a real tombstone
//! (a [`RowWrite::Expire`], with its own `_seq`), so every reader learns of it the way it
//! learns of any delete: live subscribers get a `delete`, a resume replays the insert and then
//! the delete (never the insert alone), and `_seq`s stay strictly increasing.
//!
//! Only the newest version of a key expires (an older one was replaced before its time, and
//! its replacement expires later); rows without a key each expire on their own. Records are
//! appended in time order, so a scan from where the last one stopped meets expired rows first
//! and stops at the first that has not expired; its expiry time is when to look again.
//!
//! It owns the scan and the write; when to run them is `engine/expiry.rs`'s business.

use strand_log::{ReadFrom, Seq};

use super::versions::{KeyVersion, KeyedPartition, RowWrite, VersionError};
use crate::limits::EXPIRY_BATCH_ROWS_MAX;

/// One row version whose TTL has passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expired {
    pub key: Vec<u8>,
    pub seq: Seq,
}

/// What a scan found.
#[derive(Debug, Default)]
pub struct ExpiryScan {
    /// Newest versions past their TTL, in `_seq` order (at most `EXPIRY_BATCH_ROWS_MAX`).
    pub expired: Vec<Expired>,
    /// Every record up to here has been looked at.
    pub scanned_to: Seq,
    /// When the first record not yet expired expires (Unix ms); `None` when nothing is left
    /// to expire (until the next write).
    pub next_due_unix_ms: Option<u64>,
}

/// Scan `partition` after `after` for rows whose TTL (`ttl_ms`) has passed at `now_unix_ms`.
pub fn scan(
    partition: &KeyedPartition,
    after: Seq,
    ttl_ms: u64,
    now_unix_ms: u64,
) -> Result<ExpiryScan, VersionError> {
    let snapshot = partition.snapshot();
    let mut found = ExpiryScan {
        scanned_to: after,
        ..ExpiryScan::default()
    };
    for record in snapshot.records(ReadFrom::After(after)) {
        let record = record?;
        let expires_at = record.timestamp_unix_ms.saturating_add(ttl_ms);
        if expires_at > now_unix_ms {
            found.next_due_unix_ms = Some(expires_at);
            break;
        }
        found.scanned_to = record.seq;
        if record.flags.is_tombstone() {
            continue;
        }
        let newest = record.key.is_empty()
            || partition.version(record.key)
                == Some(KeyVersion {
                    seq: record.seq,
                    deleted: false,
                });
        if newest {
            found.expired.push(Expired {
                key: record.key.to_vec(),
                seq: record.seq,
            });
            if found.expired.len() >= EXPIRY_BATCH_ROWS_MAX {
                // More may be due at once: look again right away.
                found.next_due_unix_ms = Some(now_unix_ms);
                break;
            }
        }
    }
    Ok(found)
}

/// Delete the `expired` versions that are still the newest of their key (a write may have
/// replaced one since the scan), as one batch under the partition's write lock. Returns how
/// many were deleted.
pub fn expire(partition: &KeyedPartition, expired: &[Expired]) -> Result<usize, VersionError> {
    if expired.is_empty() {
        return Ok(0);
    }
    let writer = partition.writer()?;
    let writes: Vec<RowWrite<'_>> = expired
        .iter()
        .filter(|row| {
            row.key.is_empty()
                || partition.version(&row.key)
                    == Some(KeyVersion {
                        seq: row.seq,
                        deleted: false,
                    })
        })
        .map(|row| RowWrite::Expire {
            key: &row.key,
            version: row.seq,
        })
        .collect();
    let count = writes.len();
    writer.append_holding_lock(&writes)?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    use strand_log::{Clock, FsyncPolicy, Partition, PartitionConfig};

    use super::*;
    use crate::tables::versions::versions_as_of;

    /// A clock the test moves by hand (record timestamps come from it).
    #[derive(Debug)]
    struct ManualClock(AtomicU64);

    impl ManualClock {
        fn new(unix_ms: u64) -> ManualClock {
            ManualClock(AtomicU64::new(unix_ms))
        }
        fn advance_ms(&self, ms: u64) {
            self.0.fetch_add(ms, Ordering::SeqCst);
        }
    }

    impl Clock for ManualClock {
        fn now_unix_ms(&self) -> u64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    fn open(clock: Arc<ManualClock>) -> (tempfile::TempDir, KeyedPartition) {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = PartitionConfig {
            fsync: FsyncPolicy::Never,
            clock,
            ..PartitionConfig::default()
        };
        let partition = Partition::open(dir.path(), config).expect("partition");
        (dir, KeyedPartition::open(partition).expect("keyed"))
    }

    fn put(partition: &KeyedPartition, key: &[u8], row: &[u8]) -> Seq {
        let writes = [RowWrite::Put { key, row }];
        partition
            .writer()
            .expect("writer")
            .append(&writes)
            .expect("append")[0]
    }

    #[test]
    fn only_newest_versions_past_their_ttl_expire_and_keyless_rows_each_on_their_own() {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let (_dir, partition) = open(clock.clone());
        let old_a = put(&partition, b"a", b"a1");
        let keyless = put(&partition, b"", b"x");
        clock.advance_ms(500);
        let new_a = put(&partition, b"a", b"a2");
        let b = put(&partition, b"b", b"b1");
        clock.advance_ms(10_000);
        let late = put(&partition, b"c", b"c1");

        // TTL 1 s at t0 + 1.2 s: the first two records are past it; `a`'s first version was
        // replaced, so only the keyless row expires.
        let scan1 = scan(&partition, Seq::ZERO, 1_000, 1_001_200).expect("scan");
        assert_eq!(
            scan1.expired,
            [Expired {
                key: Vec::new(),
                seq: keyless
            }]
        );
        assert_eq!(scan1.scanned_to, keyless);
        assert_eq!(scan1.next_due_unix_ms, Some(1_001_500));
        assert!(old_a < keyless);
        assert_eq!(expire(&partition, &scan1.expired).expect("expire"), 1);

        // Later: `a`'s second version and `b` expire; `c` is not due yet.
        let scan2 = scan(&partition, scan1.scanned_to, 1_000, 1_002_000).expect("scan");
        let keys: Vec<Seq> = scan2.expired.iter().map(|e| e.seq).collect();
        assert_eq!(keys, [new_a, b]);
        assert_eq!(scan2.next_due_unix_ms, Some(1_011_500));
        // A write that replaces `b` before the expiry is written wins: `b` stays.
        put(&partition, b"b", b"b2");
        assert_eq!(expire(&partition, &scan2.expired).expect("expire"), 1);

        let snapshot = partition.snapshot();
        let live: Vec<&[u8]> = versions_as_of(&snapshot, Seq::MAX)
            .expect("versions")
            .into_iter()
            .filter(|r| !r.flags.is_tombstone())
            .map(|r| r.payload)
            .collect();
        // In `_seq` order: `c` was written before `b`'s second version.
        assert_eq!(live, [&b"c1"[..], b"b2"], "the keyless row and a are gone");
        assert!(late > b);
    }
}
