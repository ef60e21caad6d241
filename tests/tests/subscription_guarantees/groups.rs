//! Grouping queries in the model of `subscription_guarantees` (docs/websocket.md, "Grouping
//! subscriptions"; docs/sql.md, "Aggregates"): `SELECT <keys>, <aggregates> FROM t [WHERE ...]
//! [GROUP BY <keys>] [HAVING COUNT(*) > k]` holds one row per group that HAVING keeps; without
//! GROUP BY exactly one group (of every matching row, COUNT 0 over none) unless HAVING drops it.
//!
//! The model computes the groups over a table state ([`Grouping::groups`], which
//! `Query::ordered` calls), so the top-K machinery (`History::window_results`) knows the groups
//! before and after every write, and so which writes changed them: exactly those must arrive,
//! one message each, stamped with the write's `_seq`. A subscriber applies each message to its
//! copy (keyed by [`Grouping::key_of`], an integer that orders as the group keys do), checks
//! it in itself ([`View::apply_groups`]) and keeps the copy after it for the session's check.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use strand_wire::{ChangeType, Row};

use super::{seq_of, Received, Rng, View};

/// The share of the random histories' queries that are grouping queries.
pub const GROUPING_PERCENT: u64 = 20;

/// A GROUP BY key: the low-cardinality column `grp`, or `qty % n` (selected `AS m`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyColumn {
    Grp,
    QtyMod(i64),
}

/// A key column's rank for NULL: larger than every value (NULLs form one group, ordered as
/// ORDER BY orders NULL). Ranks are below `RADIX`.
const NULL_RANK: i64 = 999;
const RADIX: i64 = 1000;
/// `qty % n` ranks as its value plus this (a negative `qty` gives a negative remainder).
const MOD_OFFSET: i64 = 500;

impl KeyColumn {
    fn select(self) -> String {
        match self {
            KeyColumn::Grp => "grp".into(),
            KeyColumn::QtyMod(n) => format!("qty % {n} AS m"),
        }
    }

    fn group_by(self) -> String {
        match self {
            KeyColumn::Grp => "grp".into(),
            KeyColumn::QtyMod(n) => format!("qty % {n}"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            KeyColumn::Grp => "grp",
            KeyColumn::QtyMod(_) => "m",
        }
    }

    /// The key's value for a full row (`id`, `grp`, `qty`).
    fn value(self, row: &Row) -> Value {
        match self {
            KeyColumn::Grp => row.get("grp").cloned().unwrap_or(Value::Null),
            KeyColumn::QtyMod(n) => match row.get("qty").and_then(Value::as_i64) {
                Some(qty) => Value::from(qty % n),
                None => Value::Null,
            },
        }
    }

    /// The value's rank in group-key order.
    fn rank(self, value: &Value) -> Result<i64, String> {
        let rank = match (self, value) {
            (_, Value::Null) => Some(NULL_RANK),
            // The writers' groups and the barrier row's `z`: one ASCII character each.
            (KeyColumn::Grp, Value::String(text)) => match text.as_bytes() {
                [byte] if byte.is_ascii() => Some(i64::from(*byte)),
                _ => None,
            },
            (KeyColumn::QtyMod(_), Value::Number(n)) => n.as_i64().map(|m| m + MOD_OFFSET),
            _ => None,
        };
        match rank {
            Some(rank) if (0..RADIX).contains(&rank) => Ok(rank),
            _ => Err(format!(
                "group key {} = {value} is none the model makes",
                self.name()
            )),
        }
    }
}

/// An aggregate the generator uses, over `qty` (INT, never NULL as written).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Aggregate {
    Count,
    CountQty,
    Sum,
    Min,
    Max,
}

const AGGREGATES: [Aggregate; 5] = [
    Aggregate::Count,
    Aggregate::CountQty,
    Aggregate::Sum,
    Aggregate::Min,
    Aggregate::Max,
];

impl Aggregate {
    fn sql(self) -> String {
        let call = match self {
            Aggregate::Count => "COUNT(*)",
            Aggregate::CountQty => "COUNT(qty)",
            Aggregate::Sum => "SUM(qty)",
            Aggregate::Min => "MIN(qty)",
            Aggregate::Max => "MAX(qty)",
        };
        format!("{call} AS {}", self.name())
    }

    fn name(self) -> &'static str {
        match self {
            Aggregate::Count => "n",
            Aggregate::CountQty => "nq",
            Aggregate::Sum => "s",
            Aggregate::Min => "lo",
            Aggregate::Max => "hi",
        }
    }

    /// The aggregate over a group's rows: COUNT(*) counts rows, the others skip NULLs, and
    /// SUM (BIGINT), MIN and MAX are NULL over no values.
    fn value(self, rows: &[&Row]) -> Value {
        let values: Vec<i64> = rows
            .iter()
            .filter_map(|row| row.get("qty").and_then(Value::as_i64))
            .collect();
        match self {
            Aggregate::Count => Value::from(rows.len() as i64),
            Aggregate::CountQty => Value::from(values.len() as i64),
            _ if values.is_empty() => Value::Null,
            Aggregate::Sum => Value::from(values.iter().sum::<i64>()),
            Aggregate::Min => Value::from(*values.iter().min().unwrap_or(&0)),
            Aggregate::Max => Value::from(*values.iter().max().unwrap_or(&0)),
        }
    }
}

/// A query's grouping: its GROUP BY keys (none: one group), its aggregates, where the keys
/// come in the SELECT list, and `HAVING COUNT(*) > k`.
#[derive(Clone, Debug)]
pub struct Grouping {
    keys: Vec<KeyColumn>,
    aggregates: Vec<Aggregate>,
    keys_first: bool,
    having: Option<i64>,
}

impl Grouping {
    /// GROUP BY `grp` mostly, now and then `qty % 4` or both `grp` and `qty % 2`, and one time
    /// in five no GROUP BY (a count badge); one to four aggregates; HAVING a third of the time,
    /// with a bound that keeps groups going in and out.
    pub fn random(rng: &mut Rng) -> Grouping {
        let keys = match rng.below(20) {
            0..=10 => vec![KeyColumn::Grp],
            11..=13 => vec![KeyColumn::QtyMod(4)],
            14 | 15 => vec![KeyColumn::Grp, KeyColumn::QtyMod(2)],
            _ => Vec::new(),
        };
        let mut aggregates = Vec::new();
        for _ in 0..1 + rng.below(4) {
            let aggregate = rng.pick(&AGGREGATES);
            if !aggregates.contains(&aggregate) {
                aggregates.push(aggregate);
            }
        }
        let bound = if keys.is_empty() { 25 } else { 8 };
        let having = rng.percent(33).then(|| rng.range(0, bound));
        Grouping {
            keys,
            aggregates,
            keys_first: rng.percent(80),
            having,
        }
    }

    /// The SELECT list's items in order.
    fn items(&self) -> Vec<(&'static str, String)> {
        let keys = self.keys.iter().map(|k| (k.name(), k.select()));
        let aggregates = self.aggregates.iter().map(|a| (a.name(), a.sql()));
        match self.keys_first {
            true => keys.chain(aggregates).collect(),
            false => aggregates.chain(keys).collect(),
        }
    }

    pub fn select_list(&self) -> String {
        let items: Vec<String> = self.items().into_iter().map(|(_, sql)| sql).collect();
        items.join(", ")
    }

    /// The output columns' names in order (without `_seq`).
    pub fn columns(&self) -> Vec<String> {
        self.items()
            .into_iter()
            .map(|(name, _)| name.into())
            .collect()
    }

    /// The clauses after WHERE, with a leading space.
    pub fn sql(&self) -> String {
        let mut text = String::new();
        if !self.keys.is_empty() {
            let keys: Vec<String> = self.keys.iter().map(|k| k.group_by()).collect();
            text.push_str(&format!(" GROUP BY {}", keys.join(", ")));
        }
        if let Some(k) = self.having {
            text.push_str(&format!(" HAVING COUNT(*) > {k}"));
        }
        text
    }

    /// Whether the query has no GROUP BY (exactly one group).
    pub fn single(&self) -> bool {
        self.keys.is_empty()
    }

    /// A group row's key (from its group-key columns): an integer in group-key order; 0
    /// without GROUP BY.
    pub fn key_of(&self, row: &Row) -> Result<i64, String> {
        let mut key = 0;
        for column in &self.keys {
            let value = row.get(column.name()).ok_or_else(|| {
                format!(
                    "a group row without its key column {}: {row:?}",
                    column.name()
                )
            })?;
            key = key * RADIX + column.rank(value)?;
        }
        Ok(key)
    }

    /// The groups of the matching full rows, keyed and ordered by group key: each group's
    /// output row (without `_seq`), for the groups HAVING keeps.
    pub fn groups<'r>(&self, rows: impl Iterator<Item = &'r Row>) -> Vec<(i64, Row)> {
        let mut groups: BTreeMap<i64, (Row, Vec<&Row>)> = BTreeMap::new();
        if self.single() {
            groups.insert(0, (Map::new(), Vec::new()));
        }
        for row in rows {
            let mut keys = Map::new();
            for column in &self.keys {
                keys.insert(column.name().into(), column.value(row));
            }
            let key = self.key_of(&keys).expect("the model's own group key");
            groups.entry(key).or_insert((keys, Vec::new())).1.push(row);
        }
        let mut result = Vec::new();
        for (key, (mut output, members)) in groups {
            if self.having.is_some_and(|k| members.len() as i64 <= k) {
                continue;
            }
            for aggregate in &self.aggregates {
                output.insert(aggregate.name().into(), aggregate.value(&members));
            }
            result.push((key, output));
        }
        result
    }
}

fn strip(row: &Row) -> Row {
    let mut row = row.clone();
    row.remove("_seq");
    row
}

impl View {
    /// A grouping snapshot batch's rows: each stamped with the boundary, no group twice.
    pub fn load_groups(
        &mut self,
        rows: &[Row],
        boundary: u64,
        grouping: &Grouping,
    ) -> Result<(), String> {
        for row in rows {
            let key = grouping.key_of(row)?;
            if seq_of(row)? != boundary {
                return Err(format!(
                    "a snapshot group row not stamped with the boundary {boundary}: {row:?}"
                ));
            }
            self.loaded.push(key);
            if let Some(earlier) = self.rows.insert(key, row.clone()) {
                return Err(format!("snapshot sent a group twice: {earlier:?}, {row:?}"));
            }
        }
        Ok(())
    }

    /// A grouping `change` (docs/websocket.md, "Applying changes"), checked in itself: a
    /// `"seq"` strictly above everything received; `rows` stamped with it; `delete` of groups
    /// held with the same values; `insert` of groups not held; `update` whose `old_rows` are
    /// groups held with the same values and whose `rows` are groups named there or not held;
    /// no group twice; at most one group without GROUP BY; and some group's values changed
    /// (a message for a write that changed no group is one too many).
    pub fn apply_groups(
        &mut self,
        kind: ChangeType,
        seq: Option<u64>,
        rows: &[Row],
        old_rows: Option<&[Row]>,
        grouping: &Grouping,
    ) -> Result<(), String> {
        let seq = seq.ok_or("a grouping change without a top-level \"seq\"")?;
        if seq <= self.last {
            return Err(format!(
                "seq {seq} does not increase (last received {}): gap/duplicate/reorder",
                self.last
            ));
        }
        for row in rows {
            if seq_of(row)? != seq {
                return Err(format!(
                    "a group row not stamped with the seq {seq}: {row:?}"
                ));
            }
        }
        for row in old_rows.into_iter().flatten() {
            if seq_of(row)? > seq {
                return Err(format!("an old_rows _seq above the seq {seq}: {row:?}"));
            }
        }
        let before: BTreeMap<i64, Row> = self.rows.iter().map(|(k, r)| (*k, strip(r))).collect();
        let mut remove = |row: &Row, what: &str| -> Result<(), String> {
            let held = self.rows.remove(&grouping.key_of(row)?);
            match held.as_ref().map(strip) == Some(strip(row)) {
                true => Ok(()),
                false => Err(format!("{what} has {row:?} while holding {held:?}")),
            }
        };
        match (kind, old_rows) {
            (ChangeType::Delete, None) if !rows.is_empty() => {
                for row in rows {
                    remove(row, "delete")?;
                }
            }
            (ChangeType::Update, Some(old_rows)) if !rows.is_empty() && !old_rows.is_empty() => {
                for old in old_rows {
                    remove(old, "update old_rows")?;
                }
            }
            (ChangeType::Insert, None) if !rows.is_empty() => {}
            _ => {
                return Err(format!(
                    "a malformed grouping {kind:?}: rows {rows:?}, old_rows {old_rows:?}"
                ))
            }
        }
        if kind != ChangeType::Delete {
            for row in rows {
                if let Some(held) = self.rows.insert(grouping.key_of(row)?, row.clone()) {
                    return Err(format!(
                        "{kind:?} rows has {row:?} while holding {held:?}, which old_rows \
                         does not name (or rows names it twice)"
                    ));
                }
            }
        }
        if grouping.single() && self.rows.len() > 1 {
            return Err("more than one group held without GROUP BY".into());
        }
        if self.rows.iter().map(|(k, r)| (*k, strip(r))).eq(before) {
            return Err("a grouping change that changes no group's values".into());
        }
        self.last = seq;
        self.received.push(Received {
            seq,
            rows: self.rows.clone(),
            order: None,
        });
        Ok(())
    }
}
