//! Join subscriptions in the model of `subscription_guarantees` (docs/websocket.md, "Join
//! subscriptions"; docs/sql.md, "Joins"): the STREAM table `app.events` (`e`, keys 1..=24)
//! looks up the SHARED table `app.items` (`i`, keys 1..=40) by its primary key, from `e.id` or
//! from `e.qty` (0..=100, so a partner is found often and missed sometimes), `[INNER]` or
//! `LEFT [OUTER]`, with a random WHERE over both tables' columns (three-valued: in a LEFT join
//! every `i` column of a row without a partner is NULL, and `at` may be NULL on either side).
//!
//! Each `e` row gives at most one joined row, keyed by `e.id`; its `_seq` is the newest
//! `_seq` of its parts. The result at a `_seq` S is the join over both tables as of S: the
//! STREAM table's history (with the server's expiry deletes, which have their own `_seq`) and
//! the observer's history of the `app.items` generation the subscription was made on. A write
//! to either table changes the result when the result after it differs from the one before
//! (a row's new `_seq` counts: a rewritten `e` row, or a rewritten partner, always changes the
//! joined rows it is part of); exactly those writes owe the subscriber one message each
//! ([`join_results`]).

use std::collections::BTreeMap;

use serde_json::Value;
use strand_wire::Row;

use super::clock::at_of;
use super::{int, seq_of, History, Rng, KEYS, QTY_MAX};

/// The share of the random histories' queries that are joins (drawn first).
pub const JOIN_PERCENT: u64 = 12;

/// A table of the join: `e` (`app.events`, the first table) or `i` (`app.items`, looked up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    E,
    I,
}

impl Side {
    fn alias(self) -> &'static str {
        match self {
            Side::E => "e",
            Side::I => "i",
        }
    }
}

/// The table and column an output shows (`None`: `e.qty + i.qty`).
type Shows = Option<(Side, &'static str)>;

/// A selected column besides `e.id`: its SQL, its output name (`AS` where the names of the
/// two tables would collide), and what it shows.
const OUTPUTS: [(&str, &str, Shows); 8] = [
    ("e.grp", "grp", Some((Side::E, "grp"))),
    ("e.qty", "qty", Some((Side::E, "qty"))),
    ("e.at", "at", Some((Side::E, "at"))),
    ("i.id AS iid", "iid", Some((Side::I, "id"))),
    ("i.grp AS igrp", "igrp", Some((Side::I, "grp"))),
    ("i.qty AS iqty", "iqty", Some((Side::I, "qty"))),
    ("i.at AS iat", "iat", Some((Side::I, "at"))),
    ("e.qty + i.qty AS total", "total", None),
];

/// A WHERE over both tables; a row matches when it is true (SQL's three-valued logic).
#[derive(Clone, Debug)]
pub enum JoinCond {
    QtyGt(Side, i64),
    QtyLe(Side, i64),
    GrpEq(Side, &'static str),
    GrpIn(Side, Vec<&'static str>),
    IdBetween(Side, i64, i64),
    /// `<side>.<column> IS NULL` (true) or `IS NOT NULL` (false).
    IsNull(Side, &'static str, bool),
    /// `e.grp = i.grp`.
    SameGrp,
    /// `e.qty < i.qty`.
    QtyBelow,
    Not(Box<JoinCond>),
    And(Box<JoinCond>, Box<JoinCond>),
    Or(Box<JoinCond>, Box<JoinCond>),
}

impl JoinCond {
    fn random(rng: &mut Rng, depth: u32) -> JoinCond {
        if depth > 0 {
            let sub = |rng: &mut Rng| Box::new(JoinCond::random(rng, depth - 1));
            match rng.below(10) {
                0 | 1 => return JoinCond::And(sub(rng), sub(rng)),
                2 | 3 => return JoinCond::Or(sub(rng), sub(rng)),
                4 => return JoinCond::Not(sub(rng)),
                _ => {}
            }
        }
        let side = rng.pick(&[Side::E, Side::I]);
        match rng.below(9) {
            0 => JoinCond::QtyGt(side, rng.range(0, QTY_MAX)),
            1 => JoinCond::QtyLe(side, rng.range(0, QTY_MAX)),
            2 => JoinCond::GrpEq(side, rng.group()),
            3 => JoinCond::GrpIn(side, (0..2).map(|_| rng.group()).collect()),
            4 => {
                let (a, b) = (rng.range(1, KEYS), rng.range(1, KEYS));
                JoinCond::IdBetween(side, a.min(b), a.max(b))
            }
            5 | 6 => {
                // Mostly the lookup side: NULL there is a LEFT join's missing partner.
                let side = if rng.percent(75) { Side::I } else { side };
                let column = rng.pick(&["id", "grp", "qty", "at"]);
                JoinCond::IsNull(side, column, rng.percent(50))
            }
            7 => JoinCond::SameGrp,
            _ => JoinCond::QtyBelow,
        }
    }

    fn sql(&self) -> String {
        match self {
            JoinCond::QtyGt(side, n) => format!("{}.qty > {n}", side.alias()),
            JoinCond::QtyLe(side, n) => format!("{}.qty <= {n}", side.alias()),
            JoinCond::GrpEq(side, g) => format!("{}.grp = '{g}'", side.alias()),
            JoinCond::GrpIn(side, groups) => {
                let list: Vec<String> = groups.iter().map(|g| format!("'{g}'")).collect();
                format!("{}.grp IN ({})", side.alias(), list.join(", "))
            }
            JoinCond::IdBetween(side, lo, hi) => {
                format!("{}.id BETWEEN {lo} AND {hi}", side.alias())
            }
            JoinCond::IsNull(side, column, true) => format!("{}.{column} IS NULL", side.alias()),
            JoinCond::IsNull(side, column, false) => {
                format!("{}.{column} IS NOT NULL", side.alias())
            }
            JoinCond::SameGrp => "e.grp = i.grp".into(),
            JoinCond::QtyBelow => "e.qty < i.qty".into(),
            JoinCond::Not(a) => format!("NOT ({})", a.sql()),
            JoinCond::And(a, b) => format!("({}) AND ({})", a.sql(), b.sql()),
            JoinCond::Or(a, b) => format!("({}) OR ({})", a.sql(), b.sql()),
        }
    }

    /// The truth value over an `e` row and its partner (`None`: no partner, every `i` column
    /// NULL); `None` is unknown.
    fn truth(&self, e: &Row, i: Option<&Row>) -> Option<bool> {
        let row = |side: Side| match side {
            Side::E => Some(e),
            Side::I => i,
        };
        let number = |side: Side, column: &str| {
            row(side).and_then(|r| Some(int(r, column)).filter(|n| *n != i64::MIN))
        };
        let text = |side: Side| row(side).and_then(|r| r.get("grp")).and_then(Value::as_str);
        Some(match self {
            JoinCond::QtyGt(side, n) => number(*side, "qty")? > *n,
            JoinCond::QtyLe(side, n) => number(*side, "qty")? <= *n,
            JoinCond::GrpEq(side, g) => text(*side)? == *g,
            JoinCond::GrpIn(side, groups) => groups.contains(&text(*side)?),
            JoinCond::IdBetween(side, lo, hi) => (*lo..=*hi).contains(&number(*side, "id")?),
            JoinCond::IsNull(side, column, null) => {
                let value = match *column {
                    "at" => row(*side).and_then(|r| at_of(r).ok().flatten()).map(|_| ()),
                    "grp" => text(*side).map(|_| ()),
                    other => number(*side, other).map(|_| ()),
                };
                value.is_none() == *null
            }
            JoinCond::SameGrp => text(Side::E)? == text(Side::I)?,
            JoinCond::QtyBelow => number(Side::E, "qty")? < number(Side::I, "qty")?,
            JoinCond::Not(a) => !a.truth(e, i)?,
            JoinCond::And(a, b) => match (a.truth(e, i), b.truth(e, i)) {
                (Some(false), _) | (_, Some(false)) => false,
                (Some(true), Some(true)) => true,
                _ => return None,
            },
            JoinCond::Or(a, b) => match (a.truth(e, i), b.truth(e, i)) {
                (Some(true), _) | (_, Some(true)) => true,
                (Some(false), Some(false)) => false,
                _ => return None,
            },
        })
    }
}

/// A join subscription's query (see the module's doc).
#[derive(Clone, Debug)]
pub struct Join {
    left: bool,
    /// The join keyword as written: `JOIN`, `INNER JOIN`, `LEFT JOIN`, `LEFT OUTER JOIN`.
    keyword: &'static str,
    /// The lookup is from `e.qty` (else `e.id`).
    by_qty: bool,
    /// `ON e.<column> = i.id` rather than `ON i.id = e.<column>`.
    reversed: bool,
    /// Indexes into [`OUTPUTS`].
    outputs: Vec<usize>,
    filter: Option<JoinCond>,
}

impl Join {
    pub fn random(rng: &mut Rng) -> Join {
        let left = rng.percent(50);
        let keyword = match (left, rng.percent(50)) {
            (false, false) => "JOIN",
            (false, true) => "INNER JOIN",
            (true, false) => "LEFT JOIN",
            (true, true) => "LEFT OUTER JOIN",
        };
        Join {
            left,
            keyword,
            by_qty: rng.percent(50),
            reversed: rng.percent(30),
            outputs: (0..OUTPUTS.len()).filter(|_| rng.percent(45)).collect(),
            filter: (!rng.percent(15)).then(|| JoinCond::random(rng, 2)),
        }
    }

    pub fn sql(&self) -> String {
        let mut columns = vec!["e.id"];
        columns.extend(self.outputs.iter().map(|n| OUTPUTS[*n].0));
        let probe = if self.by_qty { "e.qty" } else { "e.id" };
        let on = match self.reversed {
            true => format!("{probe} = i.id"),
            false => format!("i.id = {probe}"),
        };
        let mut text = format!(
            "SELECT {} FROM app.events e {} app.items i ON {on}",
            columns.join(", "),
            self.keyword
        );
        if let Some(filter) = &self.filter {
            text.push_str(" WHERE ");
            text.push_str(&filter.sql());
        }
        text
    }

    /// The output columns as `subscription_ack` lists them (without `_seq`).
    pub fn columns(&self) -> Vec<String> {
        let names = self.outputs.iter().map(|n| OUTPUTS[*n].1.to_owned());
        std::iter::once("id".to_owned()).chain(names).collect()
    }

    /// The `app.items` key an `e` row looks up (`None`: its `qty` is not a number).
    pub fn partner_key(&self, e: &Row) -> Option<i64> {
        let key = int(e, if self.by_qty { "qty" } else { "id" });
        (key != i64::MIN).then_some(key)
    }

    /// The joined row of one `e` row over the items table, if it is in the result.
    fn row(&self, e: &Row, items: &BTreeMap<i64, Row>) -> Option<Row> {
        let i = self.partner_key(e).and_then(|key| items.get(&key));
        if i.is_none() && !self.left {
            return None;
        }
        if let Some(filter) = &self.filter {
            if filter.truth(e, i) != Some(true) {
                return None;
            }
        }
        let column = |row: Option<&Row>, name: &str| {
            row.and_then(|r| r.get(name))
                .cloned()
                .unwrap_or(Value::Null)
        };
        let mut out = Row::new();
        out.insert("id".into(), column(Some(e), "id"));
        for n in &self.outputs {
            let (_, name, shows) = OUTPUTS[*n];
            let value = match shows {
                Some((Side::E, source)) => column(Some(e), source),
                Some((Side::I, source)) => column(i, source),
                None => match (int(e, "qty"), i.map(|i| int(i, "qty"))) {
                    (a, Some(b)) if a != i64::MIN && b != i64::MIN => Value::from(a + b),
                    _ => Value::Null,
                },
            };
            out.insert(name.into(), value);
        }
        let seqs = [Some(e), i]
            .into_iter()
            .flatten()
            .map(|r| seq_of(r).unwrap_or(0));
        let seq = seqs.max().unwrap_or(0);
        out.insert("_seq".into(), Value::String(seq.to_string()));
        Some(out)
    }

    /// The join over both tables' states, keyed by `e.id`.
    pub fn result(
        &self,
        events: &BTreeMap<i64, Row>,
        items: &BTreeMap<i64, Row>,
    ) -> BTreeMap<i64, Row> {
        events
            .iter()
            .filter_map(|(key, e)| Some((*key, self.row(e, items)?)))
            .collect()
    }
}

/// Which table a write was to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Events,
    Items,
}

/// What the model says a join subscriber must see from `from` on.
pub struct JoinResults {
    /// The result as of `from`.
    pub initial: BTreeMap<i64, Row>,
    /// Each write in `(from, to]` that changed the result: its `_seq`, its table, and the
    /// result after it.
    pub changes: Vec<(u64, Source, BTreeMap<i64, Row>)>,
}

/// The result of `join` at `from` and after each write in `(from, to]` (of either table,
/// merged by `_seq`) that changed it.
pub fn join_results(
    join: &Join,
    events: &History,
    items: &History,
    from: u64,
    to: u64,
) -> JoinResults {
    let (mut e, mut i) = (events.state_at(from), items.state_at(from));
    let initial = join.result(&e, &i);
    let mut writes: Vec<_> = (events.events_between(from, to).into_iter())
        .map(|(seq, key, row)| (seq, Source::Events, key, row))
        .chain(
            (items.events_between(from, to).into_iter())
                .map(|(seq, key, row)| (seq, Source::Items, key, row)),
        )
        .collect();
    writes.sort_by_key(|(seq, _, _, _)| *seq);
    let mut last = initial.clone();
    let mut changes = Vec::new();
    for (seq, source, key, row) in writes {
        let table = match source {
            Source::Events => &mut e,
            Source::Items => &mut i,
        };
        match row {
            Some(row) => table.insert(key, row.clone()),
            None => table.remove(&key),
        };
        let now = join.result(&e, &i);
        if now != last {
            changes.push((seq, source, now.clone()));
            last = now;
        }
    }
    JoinResults { initial, changes }
}
