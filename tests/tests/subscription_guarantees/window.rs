//! Top-K windows in the model of `subscription_guarantees` (docs/websocket.md, "Top-K
//! subscriptions"): a query with `[ORDER BY ...] LIMIT n [OFFSET m]` holds rows m+1..m+n of its
//! ordered result. The order is total: the ORDER BY keys (NULL larger than every value, so last
//! ascending and first descending), then `id` ascending; without ORDER BY, `id` alone.
//!
//! The model computes the window over the observer's history before and after every write, so
//! it knows which writes changed it (exactly those must arrive, one message each, stamped with
//! the write's `_seq`), and the window after each. A subscriber applies each message to its
//! copy as the docs say, checks the message in itself, and keeps the copy after each message
//! ([`Received`]) until the session compares them all with the model's (`session_window.rs`).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde_json::Value;
use strand_wire::{ChangeType, Row};

use super::{key_of, seq_of, History, Query, Rng, View};

/// The share of the random histories' queries that are top-K windows.
pub const WINDOW_PERCENT: u64 = 33;

/// An ORDER BY key the generator uses: columns (also ones a projection leaves out), the
/// system column `_seq` (the most recently written rows first, like a chat's newest messages),
/// and an expression with many ties (so the primary key decides often).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sort {
    Qty,
    Grp,
    Id,
    Seq,
    QtyMod(i64),
}

/// `qty` twice: the column a leaderboard would sort by, and the one writers change most.
const SORTS: [Sort; 6] = [
    Sort::Qty,
    Sort::Qty,
    Sort::Grp,
    Sort::Id,
    Sort::Seq,
    Sort::QtyMod(7),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// No keyword: ascending.
    Default,
    Asc,
    Desc,
}

/// A sort key's value: an integer or a text (one `Sort` gives one kind); `None` is NULL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Key<'a> {
    Int(i128),
    Text(&'a str),
}

impl Sort {
    fn sql(self) -> String {
        match self {
            Sort::Qty => "qty".into(),
            Sort::Grp => "grp".into(),
            Sort::Id => "id".into(),
            Sort::Seq => "_seq".into(),
            Sort::QtyMod(n) => format!("qty % {n}"),
        }
    }

    /// The key of a full row (`id`, `grp`, `qty`, `_seq`); `None` for NULL (writers never
    /// write one, but the rule is the server's, so the model has it too).
    fn value(self, row: &Row) -> Option<Key<'_>> {
        let int = |column: &str| match row.get(column) {
            Some(Value::Number(n)) => n.as_i64().map(i128::from),
            _ => None,
        };
        match self {
            Sort::Qty => int("qty").map(Key::Int),
            Sort::Grp => row.get("grp").and_then(Value::as_str).map(Key::Text),
            Sort::Id => int("id").map(Key::Int),
            Sort::Seq => seq_of(row).ok().map(|seq| Key::Int(i128::from(seq))),
            // SQL's `%` takes the dividend's sign, as Rust's does.
            Sort::QtyMod(n) => int("qty").map(|qty| Key::Int(qty % i128::from(n))),
        }
    }
}

/// NULL sorts as larger than every value.
fn nulls_last(a: Option<Key<'_>>, b: Option<Key<'_>>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(a), Some(b)) => a.cmp(&b),
    }
}

/// A query's `[ORDER BY ...] LIMIT n [OFFSET m]`.
#[derive(Clone, Debug)]
pub struct Window {
    order: Vec<(Sort, Direction)>,
    limit: usize,
    offset: Option<usize>,
}

impl Window {
    /// Small windows over the small key space, so rows move in and out all the time: LIMIT
    /// 1..=8, OFFSET 0..=4 half the time, one ORDER BY key mostly, two now and then, none
    /// (LIMIT alone: by primary key) one time in five.
    pub fn random(rng: &mut Rng) -> Window {
        let keys = match rng.below(10) {
            0 | 1 => 0,
            2 => 2,
            _ => 1,
        };
        let directions = [Direction::Default, Direction::Asc, Direction::Desc];
        let order = (0..keys)
            .map(|_| (rng.pick(&SORTS), rng.pick(&directions)))
            .collect();
        let limit = rng.range(1, 8) as usize;
        let offset = rng.percent(50).then(|| rng.range(0, 4) as usize);
        Window {
            order,
            limit,
            offset,
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The clauses after WHERE, with a leading space.
    pub fn sql(&self) -> String {
        let mut text = String::new();
        for (n, (sort, direction)) in self.order.iter().enumerate() {
            text.push_str(if n == 0 { " ORDER BY " } else { ", " });
            text.push_str(&sort.sql());
            text.push_str(match direction {
                Direction::Default => "",
                Direction::Asc => " ASC",
                Direction::Desc => " DESC",
            });
        }
        text.push_str(&format!(" LIMIT {}", self.limit));
        if let Some(offset) = self.offset {
            text.push_str(&format!(" OFFSET {offset}"));
        }
        text
    }

    /// The total order of two full rows: the ORDER BY keys, then `id`.
    fn compare(&self, a: &Row, b: &Row) -> Ordering {
        for (sort, direction) in &self.order {
            let order = nulls_last(sort.value(a), sort.value(b));
            let order = match direction {
                Direction::Desc => order.reverse(),
                Direction::Default | Direction::Asc => order,
            };
            if order != Ordering::Equal {
                return order;
            }
        }
        Ordering::Equal
    }

    /// The matching rows `(id, full row)` put in the result's order, then cut to the window.
    pub fn arrange(&self, rows: &mut Vec<(i64, &Row)>) {
        rows.sort_by(|a, b| self.compare(a.1, b.1).then(a.0.cmp(&b.0)));
        rows.drain(..self.offset.unwrap_or(0).min(rows.len()));
        rows.truncate(self.limit);
    }
}

/// A window's rows in order: `(id, row as the subscriber holds it)`.
pub type Ordered = Vec<(i64, Row)>;

/// What the model says a window subscriber must see from `from` on.
pub struct WindowResults {
    /// The window as of `from`.
    pub initial: Ordered,
    /// Each write in `(from, to]` that changed the window: its `_seq` and the window after.
    pub changes: Vec<(u64, Ordered)>,
}

impl History {
    /// Every event in `(from, to]`, in `_seq` order: (`_seq`, key, the key's row after it).
    pub(super) fn events_between(&self, from: u64, to: u64) -> Vec<(u64, i64, Option<&Row>)> {
        let mut events = Vec::new();
        for (key, versions) in &self.versions {
            let start = versions.partition_point(|(seq, _)| *seq <= from);
            for (seq, row) in versions[start..].iter().take_while(|(seq, _)| *seq <= to) {
                events.push((*seq, *key, row.as_ref()));
            }
        }
        events.sort_by_key(|(seq, _, _)| *seq);
        events
    }

    /// The window of `query` (made when the table had `added` added columns) as of `from`,
    /// and after each write in `(from, to]` that changed it. A write changes it when the
    /// window after differs from the window before (a row's new version has a new `_seq`, so
    /// any write to a held row does); a write whose row matches the filter neither before nor
    /// after cannot, and is skipped without computing the window.
    pub fn window_results(&self, query: &Query, added: usize, from: u64, to: u64) -> WindowResults {
        let mut state = self.state_at(from);
        let initial = query.ordered(&state, added, from);
        let mut last = initial.clone();
        let mut changes = Vec::new();
        for (seq, key, row) in self.events_between(from, to) {
            let matched = state
                .get(&key)
                .is_some_and(|before| query.matches(before, seq));
            let matches = row.is_some_and(|after| query.matches(after, seq));
            match row {
                Some(row) => state.insert(key, row.clone()),
                None => state.remove(&key),
            };
            if !matched && !matches {
                continue;
            }
            let now = query.ordered(&state, added, seq);
            if now != last {
                changes.push((seq, now.clone()));
                last = now;
            }
        }
        WindowResults { initial, changes }
    }

    /// The last `_seq` in `(from, upto]` of a write that changed `query`'s window, or `from`
    /// if none did: a window subscriber at `from` that misses nothing must reach it (the
    /// window counterpart of [`History::last_relevant`]).
    pub fn last_window_change(&self, query: &Query, added: usize, from: u64, upto: u64) -> u64 {
        let results = self.window_results(query, added, from, upto);
        results.changes.last().map_or(from, |(seq, _)| *seq)
    }
}

/// A window subscriber's copy after one message (or a snapshot, with the order its rows came
/// in), kept until the session checks it against the model at `seq`.
#[derive(Clone, Debug)]
pub struct Received {
    pub seq: u64,
    pub rows: BTreeMap<i64, Row>,
    /// A snapshot's row `id`s in the order of its batches.
    pub order: Option<Vec<i64>>,
}

impl View {
    /// The snapshot is complete (its rows loaded, `last` its boundary): keep it for the check.
    pub fn loaded_window(&mut self) {
        let order = std::mem::take(&mut self.loaded);
        self.received.push(Received {
            seq: self.last,
            rows: self.rows.clone(),
            order: Some(order),
        });
    }

    /// A window's `change` (docs/websocket.md, "Applying changes"), checked in itself: a
    /// `"seq"` strictly above everything received; no row `_seq` above it; `delete` of held
    /// rows, stamped with the write's `_seq`; `insert` of rows not held; `update` whose
    /// `old_rows` are exactly rows held and whose `rows` are rows named there or not held;
    /// no key twice; at most `limit` rows held after it, and not the same rows as before (a
    /// message for a write that did not change the window is one too many). A time-relative
    /// subscription's messages are the same (`limit`: none), stamped with a write's `_seq` or
    /// a tick.
    pub fn apply_window(
        &mut self,
        kind: ChangeType,
        seq: Option<u64>,
        rows: &[Row],
        old_rows: Option<&[Row]>,
        limit: usize,
    ) -> Result<(), String> {
        let seq = seq.ok_or("a top-K or time-relative change without a top-level \"seq\"")?;
        if seq <= self.last {
            return Err(format!(
                "seq {seq} does not increase (last received {}): gap/duplicate/reorder",
                self.last
            ));
        }
        for row in rows.iter().chain(old_rows.into_iter().flatten()) {
            if seq_of(row)? > seq {
                return Err(format!(
                    "a row's _seq is above the change's seq {seq}: {row:?}"
                ));
            }
        }
        let before = self.rows.clone();
        match (kind, old_rows) {
            (ChangeType::Delete, None) if !rows.is_empty() => {
                let strip = |row: &Row| {
                    let mut row = row.clone();
                    row.remove("_seq");
                    row
                };
                for row in rows {
                    let key = key_of(row)?;
                    let held = self.rows.remove(&key);
                    if held.as_ref().map(strip) != Some(strip(row)) || seq_of(row)? != seq {
                        return Err(format!(
                            "delete of {row:?} (stamped with the write's _seq {seq}) while \
                             holding {held:?}"
                        ));
                    }
                }
            }
            (ChangeType::Insert, None) if !rows.is_empty() => {
                for row in rows {
                    if let Some(held) = self.rows.insert(key_of(row)?, row.clone()) {
                        return Err(format!("insert of {row:?} while holding {held:?}"));
                    }
                }
            }
            (ChangeType::Update, Some(old_rows)) if !rows.is_empty() && !old_rows.is_empty() => {
                for old in old_rows {
                    let held = self.rows.remove(&key_of(old)?);
                    if held.as_ref() != Some(old) {
                        return Err(format!("update old_rows has {old:?}, held row {held:?}"));
                    }
                }
                for row in rows {
                    if let Some(held) = self.rows.insert(key_of(row)?, row.clone()) {
                        return Err(format!(
                            "update rows has {row:?} while holding {held:?}, which old_rows \
                             does not name (or rows names it twice)"
                        ));
                    }
                }
            }
            _ => {
                return Err(format!(
                "a malformed top-K or time-relative {kind:?}: rows {rows:?}, old_rows {old_rows:?}"
            ))
            }
        }
        if self.rows.len() > limit {
            return Err(format!(
                "{} rows held after the change, above LIMIT {limit}",
                self.rows.len()
            ));
        }
        if self.rows == before {
            return Err(
                "a top-K or time-relative change that changes none of the rows held".into(),
            );
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
