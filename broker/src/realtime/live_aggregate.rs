//! [`LiveAggregate`]: a grouping subscription's groups (`strand_sql_view::LiveGroups`) over
//! stored rows. It fills itself by scanning the partition as of a `_seq`, then applies each
//! written record: the old version leaves its group, the new one joins its own, and each group
//! whose output row changed is sent, all of one write in one message stamped with its `_seq`
//! (the same shapes as a top-K window's, `live_window.rs`). A group row's `_seq` is the `_seq`
//! at which the client got it: the snapshot's boundary, or the write that changed it.

use std::sync::Arc;

use serde_json::{Map, Value as Json};
use strand_log::Seq;
use strand_sql_view::{GroupChange, LiveGroups, RowView, Value};
use strand_wire::ChangeType;

use super::history::{snapshot_as_of, HistoryError, VersionPair};
use super::live_window::WindowChange;
use super::plan::{system, SubscriptionPlan};
use super::snapshot::each_matching_row;
use crate::tables::versions::KeyedPartition;

pub struct LiveAggregate {
    plan: Arc<SubscriptionPlan>,
    partition: Arc<KeyedPartition>,
    groups: LiveGroups,
    as_of: Option<Seq>,
}

fn sql_error(error: strand_sql_view::SqlError) -> HistoryError {
    HistoryError::Row(error.to_string())
}

impl LiveAggregate {
    /// Empty groups for `plan`, or `None` if it does not group.
    pub fn new(plan: &Arc<SubscriptionPlan>, partition: &Arc<KeyedPartition>) -> Option<Self> {
        Some(LiveAggregate {
            groups: plan.select().live_groups()?,
            plan: plan.clone(),
            partition: partition.clone(),
            as_of: None,
        })
    }

    pub fn as_of(&self) -> Option<Seq> {
        self.as_of
    }

    /// The groups as of `as_of`, read from the log. Returns the records read.
    pub fn fill(&mut self, as_of: Seq) -> Result<u64, HistoryError> {
        let select = self.plan.select();
        let mut groups = select
            .live_groups()
            .ok_or_else(|| HistoryError::Row("not a grouping query".to_owned()))?;
        let snapshot = snapshot_as_of(&self.partition, as_of)?;
        let mut scanned = 0u64;
        let mut failed = None;
        each_matching_row(
            &self.partition,
            &snapshot,
            as_of,
            &self.plan,
            &mut scanned,
            |row, seq, _| {
                if failed.is_none() {
                    let added = groups.apply(select, None, Some((row, system(seq))));
                    failed = added.err();
                }
            },
        )?;
        if let Some(error) = failed {
            return Err(sql_error(error));
        }
        self.groups = groups;
        self.as_of = Some(as_of);
        Ok(scanned)
    }

    /// Every group's row, in group-key order, stamped with the fill's `_seq`.
    pub fn rows_json(&self) -> Result<Vec<Map<String, Json>>, HistoryError> {
        let stamp = self.as_of.unwrap_or(Seq::ZERO);
        let rows = self.groups.rows(self.plan.select()).map_err(sql_error)?;
        Ok(rows
            .iter()
            .map(|(_, values)| self.plan.values_json(values, stamp))
            .collect())
    }

    /// Apply one written record; the message for the client, if a group's row changed.
    pub fn apply(&mut self, pair: &VersionPair<'_>) -> Result<Option<WindowChange>, HistoryError> {
        if self.as_of.is_some_and(|at| pair.seq <= at) {
            return Ok(None);
        }
        let old = pair
            .old
            .as_ref()
            .filter(|v| self.plan.matches(&v.row, v.seq))
            .map(|v| (&v.row, system(v.seq)));
        let new = pair
            .new
            .as_ref()
            .filter(|v| self.plan.matches(&v.row, v.seq))
            .map(|v| (&v.row, system(v.seq)));
        let changes = self
            .groups
            .apply::<RowView<'_>>(self.plan.select(), old, new)
            .map_err(sql_error)?;
        self.as_of = Some(pair.seq);
        Ok(self.encode(&changes, pair.seq))
    }

    fn encode(&self, changes: &[GroupChange], seq: Seq) -> Option<WindowChange> {
        let json = |rows: Vec<&Vec<Value>>| {
            let array: Vec<Json> = rows
                .into_iter()
                .map(|values| Json::Object(self.plan.values_json(values, seq)))
                .collect();
            Json::Array(array).to_string()
        };
        let before: Vec<&Vec<Value>> = changes.iter().filter_map(|c| c.before.as_ref()).collect();
        let after: Vec<&Vec<Value>> = changes.iter().filter_map(|c| c.after.as_ref()).collect();
        Some(match (before.is_empty(), after.is_empty()) {
            (true, true) => return None,
            (false, true) => WindowChange {
                change_type: ChangeType::Delete,
                rows: json(before),
                old_rows: None,
            },
            (true, false) => WindowChange {
                change_type: ChangeType::Insert,
                rows: json(after),
                old_rows: None,
            },
            (false, false) => WindowChange {
                change_type: ChangeType::Update,
                rows: json(after),
                old_rows: Some(json(before)),
            },
        })
    }
}
