//! [`LiveWindow`]: a top-K subscription's window (`window.rs`) over stored rows. It keys each
//! row version by its ORDER BY values and primary key (the total order: ties are broken by
//! the key, or by `_seq` for keyless STREAM rows), fills itself by scanning the partition as of
//! a `_seq`, applies each written record, reads the table again when the window runs dry, and
//! encodes what changed for the client as one message per write.
//!
//! One write is one message, stamped with the write's `_seq` (`"seq"`), however many rows it
//! moves: a client that has it has all of it, so resuming from that `_seq` is exact. A row
//! leaving alone is a `delete` (stamped with the write's `_seq`, like a filter's delete); rows
//! entering alone an `insert`; anything else an `update` whose `old_rows` are the rows that
//! left or changed, as the client held them, and whose `rows` the rows that entered or
//! changed: the client removes the first and then sets the second.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value as Json};
use strand_log::Seq;
use strand_sql_view::{sort_order, RowView, Value};
use strand_wire::{encode_change_at, ChangeType};

use super::history::{decode, snapshot_as_of, HistoryError, VersionPair};
use super::plan::SubscriptionPlan;
use super::snapshot::each_matching_row;
use super::window::{Delta, TopKWindow, WindowKey, WindowRow};
use crate::limits::{LIVE_WINDOW_SPARE_ROWS_MAX, LIVE_WINDOW_SPARE_ROWS_MIN};
use crate::tables::versions::KeyedPartition;

/// A row version's place in the result's total order.
#[derive(Clone, Debug)]
pub struct RowKey {
    sort: Box<[Value]>,
    /// The primary key's value (the version's `_seq` for keyless rows).
    tie: Value,
    plan: Arc<SubscriptionPlan>,
}

impl Ord for RowKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.plan
            .select()
            .compare_sort_keys(&self.sort, &other.sort)
            .then_with(|| sort_order(self.tie.as_ref(), other.tie.as_ref()))
    }
}

impl PartialOrd for RowKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for RowKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for RowKey {}

impl WindowKey for RowKey {
    fn same_row(&self, other: &Self) -> bool {
        sort_order(self.tie.as_ref(), other.tie.as_ref()) == Ordering::Equal
    }
}

type Stored = Box<[u8]>;

/// One change message's parts: its type, `rows` and `old_rows` as JSON text.
pub struct WindowChange {
    pub change_type: ChangeType,
    pub rows: String,
    pub old_rows: Option<String>,
}

impl WindowChange {
    /// The change message for subscription `id`, for the write at `seq`.
    pub fn encode(&self, id: &str, seq: Seq) -> String {
        let old_rows = self.old_rows.as_deref();
        encode_change_at(id, self.change_type, &self.rows, old_rows, seq.0)
    }
}

/// A top-K subscription's live window (see the module documentation).
pub struct LiveWindow {
    plan: Arc<SubscriptionPlan>,
    partition: Arc<KeyedPartition>,
    window: TopKWindow<RowKey, Stored>,
    /// The `_seq` the window is as of, once filled.
    as_of: Option<Seq>,
}

impl LiveWindow {
    /// An empty window for `plan`, or `None` if the plan has no LIMIT.
    pub fn new(plan: &Arc<SubscriptionPlan>, partition: &Arc<KeyedPartition>) -> Option<Self> {
        let (offset, limit) = plan.window()?;
        let spare = limit.clamp(LIVE_WINDOW_SPARE_ROWS_MIN, LIVE_WINDOW_SPARE_ROWS_MAX);
        Some(LiveWindow {
            plan: plan.clone(),
            partition: partition.clone(),
            window: TopKWindow::new(offset, limit, spare),
            as_of: None,
        })
    }

    /// Where the window is, once filled: every write up to it has been applied.
    pub fn as_of(&self) -> Option<Seq> {
        self.as_of
    }

    /// Fill the window with the result as of `as_of`, read from an indexed snapshot taken
    /// at or after it. Returns the records read.
    pub fn fill(&mut self, as_of: Seq) -> Result<u64, HistoryError> {
        let mut delta = Delta::new();
        let scanned = self.read_table(as_of, &mut delta)?;
        self.as_of = Some(as_of);
        Ok(scanned)
    }

    /// The visible rows, in result order, each with its version's `_seq`.
    pub fn rows_json(&self) -> Result<Vec<Map<String, Json>>, HistoryError> {
        self.window
            .visible()
            .map(|(_, row)| Ok(self.plan.row_json(&decode(&row.payload)?, Seq(row.seq))))
            .collect()
    }

    /// Apply one written record (records come in `_seq` order, each once); the message for
    /// the client, if its result changed.
    pub fn apply(&mut self, pair: &VersionPair<'_>) -> Result<Option<WindowChange>, HistoryError> {
        if self.as_of.is_some_and(|at| pair.seq <= at) {
            return Ok(None);
        }
        let mut delta = Delta::new();
        if let Some(old) = &pair.old {
            if self.plan.matches(&old.row, old.seq) {
                if let Some(key) = self.key_of(&old.row, old.seq) {
                    self.window.remove(&key, &mut delta);
                }
            }
        }
        if let Some(new) = &pair.new {
            if self.plan.matches(&new.row, new.seq) {
                if let Some(key) = self.key_of(&new.row, new.seq) {
                    let row = WindowRow {
                        seq: new.seq.0,
                        payload: Stored::from(new.payload),
                    };
                    self.window.insert(key, row, &mut delta);
                }
            }
        }
        if self.window.needs_refill() {
            self.read_table(pair.seq, &mut delta)?;
        }
        self.as_of = Some(pair.seq);
        delta.settle();
        self.encode(&delta, pair.seq)
    }

    fn key_of(&self, row: &RowView<'_>, seq: Seq) -> Option<RowKey> {
        let sort = self.plan.sort_key(row, seq)?;
        let tie = match self.plan.select().table().primary_key() {
            Some(column) => row.field(column).to_value(),
            None => Value::BigInt(i64::try_from(seq.0).unwrap_or(i64::MAX)),
        };
        Some(RowKey {
            sort: sort.into_boxed_slice(),
            tie,
            plan: self.plan.clone(),
        })
    }

    /// Replace the window with the result's first rows as of `as_of`, read from the log.
    fn read_table(
        &mut self,
        as_of: Seq,
        delta: &mut Delta<RowKey, Stored>,
    ) -> Result<u64, HistoryError> {
        let capacity = self.window.capacity();
        let snapshot = snapshot_as_of(&self.partition, as_of)?;
        let mut first: BTreeMap<RowKey, WindowRow<Stored>> = BTreeMap::new();
        let (mut matching, mut scanned) = (0usize, 0u64);
        let plan = self.plan.clone();
        each_matching_row(
            &self.partition,
            &snapshot,
            as_of,
            &plan,
            &mut scanned,
            |row, seq, payload| {
                let Some(key) = self.key_of(row, seq) else {
                    return;
                };
                matching += 1;
                if first.len() >= capacity && first.last_key_value().is_none_or(|(l, _)| key > *l) {
                    return;
                }
                let row = WindowRow {
                    seq: seq.0,
                    payload: Stored::from(payload),
                };
                first.insert(key, row);
                if first.len() > capacity {
                    first.pop_last();
                }
            },
        )?;
        tracing::debug!(table = %plan.select().table().name(), as_of = as_of.0, scanned,
            matching, "top-K window read its table");
        self.window.refill(first, matching <= capacity, delta);
        Ok(scanned)
    }

    fn encode(
        &self,
        delta: &Delta<RowKey, Stored>,
        seq: Seq,
    ) -> Result<Option<WindowChange>, HistoryError> {
        if delta.is_empty() {
            return Ok(None);
        }
        let mut entered: Vec<(&RowKey, &WindowRow<Stored>)> = Vec::new();
        let mut left: Vec<(&RowKey, &WindowRow<Stored>)> = Vec::new();
        for entry in &delta.entries {
            if let Some((key, row)) = &entry.entered {
                entered.push((key, row));
            }
            if let Some((key, row)) = &entry.left {
                left.push((key, row));
            }
        }
        entered.sort_by(|a, b| a.0.cmp(b.0));
        left.sort_by(|a, b| a.0.cmp(b.0));
        let json = |rows: &[(&RowKey, &WindowRow<Stored>)], stamp: Option<Seq>| {
            let mut array = Vec::with_capacity(rows.len());
            for (_, row) in rows {
                let stamp = stamp.unwrap_or(Seq(row.seq));
                let object = self.plan.row_json(&decode(&row.payload)?, stamp);
                array.push(Json::Object(object));
            }
            Ok::<_, HistoryError>(Json::Array(array).to_string())
        };
        let change = if entered.is_empty() {
            WindowChange {
                change_type: ChangeType::Delete,
                rows: json(&left, Some(seq))?,
                old_rows: None,
            }
        } else if left.is_empty() {
            WindowChange {
                change_type: ChangeType::Insert,
                rows: json(&entered, None)?,
                old_rows: None,
            }
        } else {
            WindowChange {
                change_type: ChangeType::Update,
                rows: json(&entered, None)?,
                old_rows: Some(json(&left, None)?),
            }
        };
        Ok(Some(change))
    }
}
