//! [`SubscriptionPlan`]: a subscription's SELECT compiled once, with what realtime needs
//! around it: the schema it announces (`_seq` always included), the rows as JSON, and the
//! column whose values pin the filter (for the fan-out index).

use serde_json::{Map, Value as Json};
use strand_log::Seq;
use strand_sql_view::{column_json, seq_json, BigIntJson};
use strand_sql_view::{decode_key, encode_key, RowView, SelectPlan, SystemColumns, SEQ_COLUMN};
use strand_wire::ColumnSchema;

use super::history::VersionPair;
use crate::tables::IndexKey;

/// The values of one column outside of which the filter cannot match, encoded as keys.
#[derive(Clone, Debug)]
pub struct PinnedColumn {
    pub column: usize,
    pub keys: Vec<IndexKey>,
}

/// Kept small: an idle subscription is mostly this (see BENCHMARKS.md, memory per idle
/// subscription); the schema is derived when the ack is sent, not stored.
#[derive(Debug)]
pub struct SubscriptionPlan {
    select: SelectPlan,
    /// `_seq` is not among the selected columns and is appended to every row.
    appends_seq: bool,
    pinned: Option<PinnedColumn>,
    /// The SELECT list has `*`: new columns of the table would change its rows.
    expands_wildcard: bool,
    /// How the rows' BIGINT values are written, as the subscriber asked.
    bigint: BigIntJson,
}

impl SubscriptionPlan {
    /// Wrap a compiled SELECT (`expands_wildcard`: its SELECT list has `*`). The caller has
    /// refused ORDER BY and OFFSET without LIMIT.
    pub fn new(select: SelectPlan, expands_wildcard: bool, bigint: BigIntJson) -> SubscriptionPlan {
        let appends_seq = !select.columns().iter().any(|c| c.name == SEQ_COLUMN);
        let pinned = pinned_column(&select);
        SubscriptionPlan {
            select,
            appends_seq,
            pinned,
            expands_wildcard,
            bigint,
        }
    }

    /// Whether rows of this plan and `other` are the same JSON text: the same SELECT list,
    /// written the same way (the fan-out encodes a change once for all such subscriptions).
    pub fn same_rows_json(&self, other: &SubscriptionPlan) -> bool {
        self.bigint == other.bigint && self.select.same_projection(other.select())
    }

    /// Whether `pair` writes a row with more columns than this `SELECT *` plan knows: the
    /// table gained columns, and the subscription must end (`schema_changed`).
    pub fn outdated_by(&self, pair: &VersionPair<'_>) -> bool {
        self.expands_wildcard
            && pair
                .new
                .as_ref()
                .is_some_and(|v| v.row.len() > self.select.table().columns().len())
    }

    /// Whether the SELECT list has `*` (so the subscription breaks when columns are added).
    pub fn expands_wildcard(&self) -> bool {
        self.expands_wildcard
    }

    /// The columns the subscription's rows carry: the selected ones, then `_seq` if the
    /// query did not select it.
    pub fn schema(&self) -> Vec<ColumnSchema> {
        let mut schema: Vec<ColumnSchema> = self
            .select
            .columns()
            .iter()
            .map(|c| ColumnSchema {
                name: c.name.clone(),
                data_type: c.data_type.to_string(),
            })
            .collect();
        if self.appends_seq {
            schema.push(ColumnSchema {
                name: SEQ_COLUMN.to_owned(),
                data_type: "BIGINT".to_owned(),
            });
        }
        schema
    }

    pub fn select(&self) -> &SelectPlan {
        &self.select
    }

    /// A grouping subscription's output row (`values` in SELECT-list order) as the client
    /// sees it, with `_seq` = `seq`.
    pub fn values_json(&self, values: &[strand_sql_view::Value], seq: Seq) -> Map<String, Json> {
        let columns = self.select.columns();
        let mut object = Map::with_capacity(columns.len() + 1);
        for (column, value) in columns.iter().zip(values) {
            object.insert(
                column.name.clone(),
                column_json(&column.name, value, self.bigint),
            );
        }
        if self.appends_seq {
            object.insert(SEQ_COLUMN.to_owned(), seq_json(seq.0));
        }
        object
    }

    /// Whether the subscription keeps a `LiveView` (top-K, grouping, time-relative, join): its
    /// state is rebuilt as of a `_seq`, so a resume needs the exact history, never a keyed
    /// catch-up.
    pub fn keeps_view(&self) -> bool {
        self.window().is_some() || self.select.is_grouped() || self.snapshots_at_tick()
    }

    /// Whether its snapshot is taken at a fresh settled tick (time-relative and join
    /// subscriptions: the state at a `_seq` no record has, or across several partitions).
    pub fn snapshots_at_tick(&self) -> bool {
        self.select.clock().is_some() || self.select.join().is_some()
    }

    /// For a top-K subscription (one with LIMIT): its window's OFFSET and LIMIT.
    pub fn window(&self) -> Option<(usize, usize)> {
        let limit = usize::try_from(self.select.limit()?).ok()?;
        Some((usize::try_from(self.select.offset()).ok()?, limit))
    }

    /// The row version's ORDER BY values; `None` if one fails to evaluate (the row then
    /// counts as not matching, like a row whose filter fails).
    pub fn sort_key(&self, row: &RowView<'_>, seq: Seq) -> Option<Vec<strand_sql_view::Value>> {
        self.select.sort_key(row, system(seq)).ok()
    }

    pub fn pinned(&self) -> Option<&PinnedColumn> {
        self.pinned.as_ref()
    }

    /// Whether the row version matches the filter. A filter that fails to evaluate on a row
    /// (e.g. a division by zero) does not match it, as in a one-shot query's WHERE.
    pub fn matches(&self, row: &RowView<'_>, seq: Seq) -> bool {
        self.select.matches(row, system(seq)).unwrap_or(false)
    }

    /// [`SubscriptionPlan::matches`] with the system columns given, `now` among them (for a
    /// WHERE that reads the clock).
    pub fn matches_at(&self, row: &RowView<'_>, system: SystemColumns) -> bool {
        self.select.matches(row, system).unwrap_or(false)
    }

    /// The row as the subscription shows it, with `_seq` = `seq`.
    pub fn row_json(&self, row: &RowView<'_>, seq: Seq) -> Map<String, Json> {
        let values = self.select.project(row, system(seq)).unwrap_or_default();
        let columns = self.select.columns();
        let mut object = Map::with_capacity(columns.len() + 1);
        for (column, value) in columns.iter().zip(values) {
            object.insert(
                column.name.clone(),
                column_json(&column.name, &value, self.bigint),
            );
        }
        if self.appends_seq {
            object.insert(SEQ_COLUMN.to_owned(), seq_json(seq.0));
        }
        object
    }
}

impl SubscriptionPlan {
    /// Where the table's primary key is in the SELECT list, if it is there as a plain column:
    /// then a row can be named by its key alone (a keyed catch-up's deletes).
    pub fn key_output(&self) -> Option<usize> {
        let table = self.select.table();
        self.select.output_of_column(table.primary_key()?)
    }

    /// The row a keyed catch-up's `delete` carries for the row with log key `key`: its
    /// primary key under its output name, and `_seq` = `seq`. `None` if the SELECT list has
    /// no primary key or the key does not decode.
    pub fn key_row_json(&self, key: &[u8], seq: Seq) -> Option<Map<String, Json>> {
        let table = self.select.table();
        let pk = table.primary_key()?;
        let output = self.key_output()?;
        let value = decode_key(key, table.columns()[pk].data_type)?;
        let name = &self.select.columns()[output].name;
        let mut object = Map::with_capacity(2);
        object.insert(name.clone(), column_json(name, &value, self.bigint));
        object.insert(SEQ_COLUMN.to_owned(), seq_json(seq.0));
        Some(object)
    }
}

/// The system columns of a row version with `_seq` = `seq`.
pub(super) fn system(seq: Seq) -> SystemColumns {
    SystemColumns {
        seq: i64::try_from(seq.0).unwrap_or(i64::MAX),
        deleted: false,
        now: 0,
    }
}

/// The column with the fewest pinned values (the primary key wins ties), if any.
fn pinned_column(select: &SelectPlan) -> Option<PinnedColumn> {
    let table = select.table();
    let mut best: Option<PinnedColumn> = None;
    let primary = table.primary_key();
    let order = primary
        .into_iter()
        .chain((0..table.columns().len()).filter(|c| Some(*c) != primary));
    for column in order {
        let data_type = table.columns()[column].data_type;
        let Some(values) = select.filter().pinned_values(column, data_type) else {
            continue;
        };
        let keys: Vec<IndexKey> = values
            .iter()
            .filter_map(|v| encode_key(v.as_ref()))
            .map(|key| IndexKey::new(&key))
            .collect();
        if best.as_ref().is_none_or(|b| keys.len() < b.keys.len()) {
            best = Some(PinnedColumn { column, keys });
        }
    }
    best
}
