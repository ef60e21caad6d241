//! [`SnapshotCursor`]: a subscription's snapshot (the rows matching its filter as of its
//! boundary), read from the log batch by batch as the client asks, in `_seq` order of the rows'
//! versions. Its memory does not grow with the partition: a scan keeps only where it stopped,
//! a point lookup only the `_seq`s of the pinned keys' versions.
//!
//! Which version of a key is the newest as of the boundary comes from the key index
//! (`tables/versions.rs`): the snapshot is taken while no write is between issuing `_seq`s and
//! indexing them, so the index's version of a key is never older than the snapshot's. When it
//! is the row's own version, or not after the boundary, that answers it; when the key was
//! written after the boundary, the versions' `previous_version` links lead back to it.
//!
//! - A filter that pins the primary key (`id = 5`, `id IN (...)`) reads one version per
//!   pinned key: no scan.
//! - Any other filter scans the log up to the boundary, at most until one more matching row
//!   than the batch holds was found (so `has_more` is exact), and continues there at the next
//!   batch. Rows without a primary key (keyless STREAM tables) are live until a tombstone
//!   names them: the first batch collects the `_seq`s those tombstones name (retention bounds
//!   them), the only state of a scan that grows with the log.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value as Json};
use strand_log::{ReadFrom, ReadSnapshot, RecordView, Seq};
use strand_sql_view::encode_key;

use super::history::{decode, record_at, HistoryError};
use super::plan::SubscriptionPlan;
use super::subscription::LiveSubscription;
use super::tick::fresh_tick;
use crate::error::ApiError;
use crate::limits::{LIVE_CLOCK_SETTLE_WAIT_MS, LIVE_JOIN_SETTLE_WAIT_MS};
use crate::tables::versions::KeyedPartition;

/// One batch of a snapshot: its rows, its number (from 0), and whether more follow.
pub struct SnapshotBatch {
    pub rows: Vec<Map<String, Json>>,
    pub number: u64,
    pub has_more: bool,
    /// Log records read for it (the `strand_snapshot_rows_scanned_total` metric).
    pub scanned: u64,
}

/// A snapshot being delivered: the rows matching the plan as of `boundary`, batch by batch.
pub struct SnapshotCursor {
    partition: Arc<KeyedPartition>,
    snapshot: ReadSnapshot,
    /// The snapshot's last `_seq`: the versions it shows are the newest at or below it.
    as_of: Seq,
    /// What the ack reports (at least `as_of`, see [`SnapshotCursor::raise_boundary`]).
    boundary: Seq,
    reading: Reading,
    batches_sent: u64,
}

enum Reading {
    /// The filter pins the primary key to these (encoded) keys; the first batch finds their
    /// versions as of the snapshot.
    Keys(Vec<Vec<u8>>),
    /// The `_seq`s of the matching rows' versions, ascending; `next` is the first not sent.
    Listed { matching: Vec<Seq>, next: usize },
    /// A top-K or grouping subscription's rows, read once into its view (`live_view.rs`);
    /// `next` is the first not sent.
    Window {
        rows: Option<Vec<Map<String, Json>>>,
        next: usize,
    },
    /// A scan of the log that continues at `from`.
    Scan {
        from: Seq,
        /// Keyless rows removed as of the snapshot; `None` until the first batch.
        removed_keyless: Option<HashSet<Seq>>,
    },
}

impl SnapshotCursor {
    /// The partition as of its last committed `_seq`; reads no rows yet. Waits while a
    /// writer holds the partition (see [`KeyedPartition::indexed_snapshot`]).
    /// `as_of`: a past `_seq` to read the partition as of (AS OF), instead of its last.
    /// A time-relative subscription (`now()` in WHERE) without AS OF is read as of a fresh
    /// tick (`strand_log::Partition::tick`), so its rows are those of now, not of the
    /// partition's last write.
    pub fn open(
        partition: &Arc<KeyedPartition>,
        plan: &SubscriptionPlan,
        as_of: Option<Seq>,
    ) -> SnapshotCursor {
        // A join is read as of one `_seq` in all its partitions: a tick (`live_join.rs`).
        let wait = match plan.select().join() {
            Some(_) => LIVE_JOIN_SETTLE_WAIT_MS,
            None => LIVE_CLOCK_SETTLE_WAIT_MS,
        };
        let tick = match as_of {
            None if plan.snapshots_at_tick() => fresh_tick(partition, Duration::from_millis(wait))
                .ok()
                .flatten(),
            _ => None,
        };
        let snapshot = partition.indexed_snapshot();
        let mut cursor = SnapshotCursor::with(partition, plan, snapshot, as_of);
        if let Some(tick) = tick {
            cursor.as_of = tick;
            cursor.boundary = tick;
        }
        cursor
    }

    /// [`SnapshotCursor::open`] without waiting: `None` if a writer holds the partition.
    pub fn open_now(
        partition: &Arc<KeyedPartition>,
        plan: &SubscriptionPlan,
        as_of: Option<Seq>,
    ) -> Option<SnapshotCursor> {
        if plan.snapshots_at_tick() {
            // Its tick may wait for a commit round: that is `open`'s, on the blocking pool.
            return None;
        }
        let snapshot = partition.try_indexed_snapshot()?;
        Some(SnapshotCursor::with(partition, plan, snapshot, as_of))
    }

    fn with(
        partition: &Arc<KeyedPartition>,
        plan: &SubscriptionPlan,
        snapshot: ReadSnapshot,
        as_of: Option<Seq>,
    ) -> SnapshotCursor {
        // A `_seq` past the last one reads the last one.
        let as_of = as_of.map_or(snapshot.last_seq(), |at| at.min(snapshot.last_seq()));
        let key_values = plan.select().filter().key_values();
        let reading = match key_values {
            _ if plan.keeps_view() => Reading::Window {
                rows: None,
                next: 0,
            },
            Some(values) => Reading::Keys(
                values
                    .iter()
                    .filter_map(|value| encode_key(value.as_ref()))
                    .collect(),
            ),
            None => Reading::Scan {
                from: Seq::ZERO,
                removed_keyless: None,
            },
        };
        SnapshotCursor {
            partition: partition.clone(),
            snapshot,
            as_of,
            boundary: as_of,
            reading,
            batches_sent: 0,
        }
    }

    pub fn boundary(&self) -> Seq {
        self.boundary
    }

    pub fn partition(&self) -> &Arc<KeyedPartition> {
        &self.partition
    }

    /// Report at least `floor` as the boundary: for `SELECT *`, the `_seq` of the table's
    /// latest column change, so that a later resume from this boundary is known to hold rows
    /// with every column. No record of the partition lies between its last `_seq` and a
    /// catalog change already durable, so the snapshot is the same as of `floor`.
    pub fn raise_boundary(&mut self, floor: Seq) {
        self.boundary = self.boundary.max(floor);
    }

    /// The next batch of at most `batch_size` rows of `subscription`'s snapshot. May block
    /// (reading the log, waiting for a version being committed): call it on the blocking
    /// pool.
    pub fn next_batch(
        &mut self,
        subscription: &LiveSubscription,
        batch_size: usize,
    ) -> Result<SnapshotBatch, HistoryError> {
        let plan = &*subscription.plan;
        let batch_size = batch_size.max(1);
        let mut scanned = 0u64;
        if let (
            Reading::Window {
                rows: rows @ None, ..
            },
            Some(window),
        ) = (&mut self.reading, &subscription.view)
        {
            let mut window = window.lock();
            scanned += window.fill(self.as_of)?;
            *rows = Some(window.rows_json()?);
        }
        if let Reading::Keys(keys) = &self.reading {
            let matching = self.resolve_keys(keys, plan, &mut scanned)?;
            self.reading = Reading::Listed { matching, next: 0 };
        }
        let (rows, has_more) = match &mut self.reading {
            Reading::Keys(_) => (Vec::new(), false),
            Reading::Window { rows, next } => {
                let all = rows.as_deref().unwrap_or_default();
                let end = (*next + batch_size).min(all.len());
                let batch = all[*next..end].to_vec();
                *next = end;
                (batch, end < all.len())
            }
            Reading::Listed { matching, next } => {
                let end = (*next + batch_size).min(matching.len());
                let mut rows = Vec::with_capacity(end - *next);
                for &seq in &matching[*next..end] {
                    scanned += 1;
                    if let Some(record) = record_at(&self.snapshot, seq)? {
                        rows.push(plan.row_json(&decode(record.payload)?, record.seq));
                    }
                }
                *next = end;
                (rows, end < matching.len())
            }
            Reading::Scan {
                from,
                removed_keyless,
            } => {
                let removed = match removed_keyless {
                    Some(removed) => removed,
                    None => removed_keyless.insert(removed_keyless_rows(
                        &self.snapshot,
                        self.as_of,
                        plan,
                        &mut scanned,
                    )?),
                };
                let scan = Scan {
                    partition: &self.partition,
                    snapshot: &self.snapshot,
                    as_of: self.as_of,
                    plan,
                    removed,
                };
                let (rows, next) = scan.rows(*from, batch_size, &mut scanned)?;
                if let Some(next) = next {
                    *from = next;
                }
                (rows, next.is_some())
            }
        };
        let number = self.batches_sent;
        self.batches_sent += 1;
        Ok(SnapshotBatch {
            rows,
            number,
            has_more,
            scanned,
        })
    }

    /// The `_seq`s of the pinned keys' versions as of the snapshot that are live rows
    /// matching the filter, ascending.
    fn resolve_keys(
        &self,
        keys: &[Vec<u8>],
        plan: &SubscriptionPlan,
        scanned: &mut u64,
    ) -> Result<Vec<Seq>, HistoryError> {
        let mut matching = Vec::with_capacity(keys.len());
        for key in keys {
            // A damaged partition: as for a one-shot SELECT by key, a key whose newest version
            // may be in the damage is refused, never answered with an older version.
            let indexed = self.partition.version(key);
            if let Err(error) = self.partition.check_intact(indexed) {
                return Err(HistoryError::Damaged(ApiError::data_corrupt(error)));
            }
            let Some(seq) = self.partition.version_as_of(key, self.as_of, scanned)? else {
                continue;
            };
            *scanned += 1;
            let Some(record) = record_at(&self.snapshot, seq)? else {
                continue;
            };
            // STREAM rows past their TTL count until their expiry tombstone, as in a scan.
            if !record.flags.is_tombstone() && plan.matches(&decode(record.payload)?, seq) {
                matching.push(seq);
            }
        }
        matching.sort_unstable();
        Ok(matching)
    }
}

type Rows = Vec<Map<String, Json>>;

/// One batch's scan of the log.
struct Scan<'a> {
    partition: &'a KeyedPartition,
    snapshot: &'a ReadSnapshot,
    as_of: Seq,
    plan: &'a SubscriptionPlan,
    removed: &'a HashSet<Seq>,
}

impl Scan<'_> {
    /// Up to `limit` matching rows from `from` on, and the `_seq` of the next matching row
    /// after them, if there is one.
    fn rows(
        &self,
        from: Seq,
        limit: usize,
        scanned: &mut u64,
    ) -> Result<(Rows, Option<Seq>), HistoryError> {
        let mut rows = Vec::new();
        for record in self.snapshot.records(ReadFrom::Seq(from)) {
            let record = record?;
            if record.seq > self.as_of {
                break;
            }
            *scanned += 1;
            if !self.is_live(&record, scanned)? {
                continue;
            }
            let row = decode(record.payload)?;
            // STREAM rows past their TTL are in the snapshot until their expiry tombstone
            // (the query as of the boundary's `_seq`): the client then gets their `delete`
            // like any subscriber, instead of a delete for a row it was never sent.
            if !self.plan.matches(&row, record.seq) {
                continue;
            }
            if rows.len() == limit {
                return Ok((rows, Some(record.seq)));
            }
            rows.push(self.plan.row_json(&row, record.seq));
        }
        Ok((rows, None))
    }

    /// Whether `record` is a row's newest version as of the snapshot and not a delete.
    fn is_live(&self, record: &RecordView<'_>, read: &mut u64) -> Result<bool, HistoryError> {
        if record.flags.is_tombstone() {
            return Ok(false);
        }
        if record.key.is_empty() {
            return Ok(!self.removed.contains(&record.seq));
        }
        let as_of = self.partition.version_as_of(record.key, self.as_of, read)?;
        Ok(as_of == Some(record.seq))
    }
}

/// The `_seq`s of the keyless rows a tombstone at or below `as_of` removed; empty for a
/// table with a primary key (its rows all have keys).
fn removed_keyless_rows(
    snapshot: &ReadSnapshot,
    as_of: Seq,
    plan: &SubscriptionPlan,
    scanned: &mut u64,
) -> Result<HashSet<Seq>, HistoryError> {
    let mut removed = HashSet::new();
    if plan.select().table().primary_key().is_some() {
        return Ok(removed);
    }
    for record in snapshot.records(ReadFrom::Earliest) {
        let record = record?;
        if record.seq > as_of {
            break;
        }
        *scanned += 1;
        if record.key.is_empty()
            && record.flags.is_tombstone()
            && record.previous_version != Seq::ZERO
        {
            removed.insert(record.previous_version);
        }
    }
    Ok(removed)
}

/// Every row matching `plan` as of `as_of`, in the `_seq` order of its version, given to
/// `visit` with its version's `_seq` and stored bytes. `snapshot` is an indexed snapshot
/// (see [`KeyedPartition::indexed_snapshot`]) taken at or after `as_of`. A top-K window
/// fills itself this way.
pub(super) fn each_matching_row(
    partition: &KeyedPartition,
    snapshot: &ReadSnapshot,
    as_of: Seq,
    plan: &SubscriptionPlan,
    scanned: &mut u64,
    mut visit: impl FnMut(&strand_sql_view::RowView<'_>, Seq, &[u8]),
) -> Result<(), HistoryError> {
    each_live_row(
        partition,
        snapshot,
        as_of,
        plan,
        scanned,
        |row, seq, payload| {
            if plan.matches(row, seq) {
                visit(row, seq, payload);
            }
        },
    )
}

/// [`each_matching_row`] without the filter: every live row as of `as_of` (a time-relative
/// subscription decides itself which rows match when).
pub(super) fn each_live_row(
    partition: &KeyedPartition,
    snapshot: &ReadSnapshot,
    as_of: Seq,
    plan: &SubscriptionPlan,
    scanned: &mut u64,
    mut visit: impl FnMut(&strand_sql_view::RowView<'_>, Seq, &[u8]),
) -> Result<(), HistoryError> {
    let removed = removed_keyless_rows(snapshot, as_of, plan, scanned)?;
    let scan = Scan {
        partition,
        snapshot,
        as_of,
        plan,
        removed: &removed,
    };
    for record in snapshot.records(ReadFrom::Earliest) {
        let record = record?;
        if record.seq > as_of {
            break;
        }
        *scanned += 1;
        if !scan.is_live(&record, scanned)? {
            continue;
        }
        let row = decode(record.payload)?;
        visit(&row, record.seq, record.payload);
    }
    Ok(())
}
