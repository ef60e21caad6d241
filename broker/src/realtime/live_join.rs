//! [`LiveJoinView`]: a join subscription (a USER or STREAM table looking up rows of SHARED
//! tables by primary key: `messages JOIN channels ON c.id = m.channel_id`) kept live over
//! several partitions. The state is `strand_sql_view::LiveJoin`; this reads the partitions.
//!
//! Writes to the partitions reach the view in one `_seq` order however their feeds are
//! dispatched: each time it is woken (a write to any of its tables, or on a cluster member
//! its settled tick moving), the view takes a tick (`tick.rs`), below which every record is
//! published, then reads every partition after its position up to the tick and applies the records
//! merged by `_seq`, one message per write that changed the result, stamped with that write's
//! `_seq`. So the client's copy at any `"seq"` is the join over all the tables as of it, and a
//! resume from it is exact.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value as Json};
use strand_log::{ReadFrom, ReadHold, Seq};
use strand_sql_view::{encode_key, live_join_row_key, JoinChange, LiveJoin, RowView, Value};
use strand_wire::ChangeType;

use super::history::{decode, snapshot_as_of, HistoryError, VersionPair};
use super::live_window::WindowChange;
use super::plan::SubscriptionPlan;
use super::snapshot::each_live_row;
use super::tick::{applied_through, settled_tick};
use crate::limits::LIVE_JOIN_SETTLE_WAIT_MS;
use crate::tables::versions::{versions_as_of, KeyedPartition};

pub struct LiveJoinView {
    plan: Arc<SubscriptionPlan>,
    /// The first table's partition, then each joined table's, in FROM order.
    partitions: Vec<Arc<KeyedPartition>>,
    state: LiveJoin,
    as_of: Option<Seq>,
    /// One per partition, at `as_of`: compaction keeps what the next `advance` reads.
    holds: Vec<ReadHold>,
}

impl LiveJoinView {
    /// The view for `plan` if it is a join; `joined` are the partitions of its tables after
    /// the first.
    pub fn new(
        plan: &Arc<SubscriptionPlan>,
        first: &Arc<KeyedPartition>,
        joined: &[Arc<KeyedPartition>],
    ) -> Option<Self> {
        let state = plan.select().live_join()?;
        let mut partitions = vec![first.clone()];
        partitions.extend(joined.iter().cloned());
        Some(LiveJoinView {
            plan: plan.clone(),
            partitions,
            state,
            as_of: None,
            holds: Vec::new(),
        })
    }

    pub fn as_of(&self) -> Option<Seq> {
        self.as_of
    }

    /// The lowest `_seq` a resume can start from: every table's history must be there.
    pub fn resume_floor(&self) -> Seq {
        self.partitions
            .iter()
            .map(|p| p.partition().lowest_resumable_seq())
            .max()
            .unwrap_or(Seq::ZERO)
    }

    /// Fill the view with every table as of `as_of`; returns the records read.
    pub fn fill(&mut self, as_of: Seq) -> Result<u64, HistoryError> {
        let Some(fresh) = self.plan.select().live_join() else {
            return Ok(0);
        };
        let wait = Duration::from_millis(LIVE_JOIN_SETTLE_WAIT_MS);
        if !applied_through(&self.partitions[0], as_of, wait) {
            return Err(HistoryError::NotApplied(as_of));
        }
        self.state = fresh;
        // Before the snapshots: `snapshot_as_of` then checks each floor with the hold in
        // place, so nothing after `as_of` can go unnoticed between now and `advance`.
        self.holds = self
            .partitions
            .iter()
            .map(|p| p.partition().hold_reads_after(as_of))
            .collect();
        let select = self.plan.select();
        let mut scanned = 0u64;
        let mut ignored = JoinChange::default();
        for (source, partition) in self.partitions.iter().enumerate().skip(1) {
            let snapshot = snapshot_as_of(partition, as_of)?;
            for record in versions_as_of(&snapshot, as_of)? {
                scanned += 1;
                if record.flags.is_tombstone() {
                    continue;
                }
                let row = decode(record.payload)?;
                let seq = seq_i64(record.seq);
                self.state
                    .apply_partner(select, source, record.key, Some((&row, seq)), &mut ignored)
                    .map_err(sql_error)?;
            }
        }
        let first = &self.partitions[0];
        let snapshot = snapshot_as_of(first, as_of)?;
        let mut rows = Vec::new();
        each_live_row(
            first,
            &snapshot,
            as_of,
            &self.plan,
            &mut scanned,
            |row, seq, payload| {
                rows.push((self.key_of(row, seq), Box::<[u8]>::from(payload), seq));
            },
        )?;
        for (key, payload, seq) in rows {
            let row = decode(&payload)?;
            self.state
                .apply_first(select, &key, Some((&row, seq_i64(seq))), &mut ignored)
                .map_err(sql_error)?;
        }
        self.as_of = Some(as_of);
        Ok(scanned)
    }

    /// The joined rows, for the snapshot.
    pub fn rows_json(&self) -> Result<Vec<Map<String, Json>>, HistoryError> {
        let mut rows: Vec<(&[Value], i64)> = self
            .state
            .outputs()
            .map(|(_, values, seq)| (values, seq))
            .collect();
        rows.sort_by_key(|(_, seq)| *seq);
        Ok(rows
            .into_iter()
            .map(|(values, seq)| self.plan.values_json(values, Seq(seq.max(0) as u64)))
            .collect())
    }

    /// Bring the view up to now: the messages of the writes since its position, each with its
    /// `_seq`, in order.
    pub fn advance(&mut self) -> Result<Vec<(Seq, WindowChange)>, HistoryError> {
        let Some(as_of) = self.as_of else {
            return Ok(Vec::new());
        };
        let wait = Duration::from_millis(LIVE_JOIN_SETTLE_WAIT_MS);
        let Some(tick) = settled_tick(&self.partitions[0], wait)? else {
            // The next write (or the next wake-up) tries again; nothing is skipped.
            return Ok(Vec::new());
        };
        if tick <= as_of {
            // A cluster member's settled tick has not passed the view's position yet.
            return Ok(Vec::new());
        }
        let snapshots: Vec<_> = self.partitions.iter().map(|p| p.snapshot()).collect();
        // The holds keep what is after `as_of` unless the view fell too far behind
        // (`strand_log::limits::READ_HOLD_AGE_MAX_MS`): then the floors say so, never a gap.
        let lowest = self.resume_floor();
        if lowest > as_of {
            return Err(HistoryError::TooOld(lowest));
        }
        let mut records = Vec::new();
        for (source, snapshot) in snapshots.iter().enumerate() {
            for record in snapshot.records(ReadFrom::After(as_of)) {
                let record = record?;
                if record.seq >= tick {
                    break;
                }
                records.push((source, VersionPair::of(snapshot, &record)?, record.key));
            }
        }
        records.sort_by_key(|(_, pair, _)| pair.seq);
        let select = self.plan.select();
        let mut messages = Vec::new();
        for (source, pair, key) in records {
            let mut change = JoinChange::default();
            let new = pair.new.as_ref().map(|v| (&v.row, seq_i64(v.seq)));
            if source == 0 {
                // A keyless row is named by its version's `_seq`; its delete names that one.
                let version = pair.old.as_ref().map_or(pair.seq, |old| old.seq);
                let named = if pair.new.is_some() {
                    pair.seq
                } else {
                    version
                };
                let key = live_join_row_key(key, seq_i64(named));
                self.state
                    .apply_first(select, &key, new, &mut change)
                    .map_err(sql_error)?;
            } else {
                self.state
                    .apply_partner(select, source, key, new, &mut change)
                    .map_err(sql_error)?;
            }
            if let Some(message) = self.encode(change, pair.seq) {
                messages.push((pair.seq, message));
            }
        }
        self.as_of = Some(tick);
        for hold in &self.holds {
            hold.advance(tick);
        }
        Ok(messages)
    }

    fn key_of(&self, row: &RowView<'_>, seq: Seq) -> Vec<u8> {
        let table = self.plan.select().table();
        let key = table.primary_key().and_then(|pk| encode_key(row.field(pk)));
        key.unwrap_or_else(|| live_join_row_key(&[], seq_i64(seq)))
    }

    /// One message for a write: `delete` or `insert` when it goes one way, else an `update`
    /// whose `old_rows` the client removes before it sets `rows`.
    fn encode(&self, change: JoinChange, seq: Seq) -> Option<WindowChange> {
        let json = |rows: &[(Vec<u8>, Vec<Value>, i64)], stamp: Option<Seq>| {
            let rows: Vec<Json> = rows
                .iter()
                .map(|(_, values, own)| {
                    let seq = stamp.unwrap_or(Seq((*own).max(0) as u64));
                    Json::Object(self.plan.values_json(values, seq))
                })
                .collect();
            Json::Array(rows).to_string()
        };
        match (change.left.is_empty(), change.entered.is_empty()) {
            (true, true) => None,
            // A row leaving shows as last seen, stamped with the change's `_seq`.
            (false, true) => Some(WindowChange {
                change_type: ChangeType::Delete,
                rows: json(&change.left, Some(seq)),
                old_rows: None,
            }),
            (true, false) => Some(WindowChange {
                change_type: ChangeType::Insert,
                rows: json(&change.entered, None),
                old_rows: None,
            }),
            (false, false) => Some(WindowChange {
                change_type: ChangeType::Update,
                rows: json(&change.entered, None),
                old_rows: Some(json(&change.left, None)),
            }),
        }
    }
}

fn seq_i64(seq: Seq) -> i64 {
    i64::try_from(seq.0).unwrap_or(i64::MAX)
}

/// A row that cannot be evaluated (an arithmetic error in the join's projection): the
/// subscription ends and the client resumes, as for an unreadable row.
fn sql_error(error: strand_sql_view::SqlError) -> HistoryError {
    HistoryError::Row(error.to_string())
}
