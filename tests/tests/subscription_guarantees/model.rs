//! The reference side of `subscription_guarantees`: a seeded RNG, a small query grammar the
//! test writes as SQL and also evaluates in Rust (conditions: `cond.rs`; top-K windows:
//! `window.rs`; grouping queries: `groups.rs`; time-relative conditions: `clock.rs`; joins:
//! `join.rs`), the table's full history as the observer saw it; a subscriber's copy with the
//! checks each change passes is `view.rs`.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::Value;
use strand_wire::Row;

#[path = "clock.rs"]
mod clock;
#[path = "cond.rs"]
mod cond;
#[path = "groups.rs"]
mod groups;
#[path = "join.rs"]
mod join;
#[path = "view.rs"]
mod view;
#[path = "window.rs"]
mod window;
use clock::CLOCK_PERCENT;
pub use clock::{at_of, at_sql, random_at, seq_at_ms, time_of, wall_ms};
pub use cond::Cond;
pub use groups::Grouping;
use groups::GROUPING_PERCENT;
use join::JOIN_PERCENT;
pub use join::{join_results, Join, JoinResults, Source};
pub use view::{diff, Applied, Keyed, View};
use window::WINDOW_PERCENT;
pub use window::{Received, Window};

/// Keys 1..=KEYS: small, so updates, deletes and re-inserts of one key are frequent.
pub const KEYS: i64 = 40;
pub const GROUPS: [&str; 4] = ["a", "b", "c", "d"];
/// `qty` is drawn from 0..=QTY_MAX (bulk updates may push it a little higher).
pub const QTY_MAX: i64 = 100;

/// xorshift64, seeded through splitmix64 so that neighbouring seeds give unrelated streams.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in 0..n.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in lo..=hi.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }

    /// True with probability `p` percent.
    pub fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    pub fn key(&mut self) -> i64 {
        self.range(1, KEYS)
    }

    pub fn group(&mut self) -> &'static str {
        self.pick(&GROUPS)
    }
}

/// Projections a subscription may use; every one keeps `id`, the key the test tracks rows by.
const PROJECTIONS: [&[&str]; 6] = [
    &["*"],
    &["id", "grp", "qty"],
    &["id", "qty"],
    &["grp", "id"],
    &["id", "qty", "_seq"],
    &["at", "id"],
];
/// The observers' projection: every column the writers write.
const OBSERVED: &[&str] = &["id", "grp", "qty", "at"];

/// The histories' tables, both `(id BIGINT PRIMARY KEY, grp TEXT, qty INT, at TIMESTAMP)`:
/// `app.items` (SHARED, under DDL and compaction) and `app.events` (STREAM, rows expire after
/// a second).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableName {
    Items,
    Events,
}

impl TableName {
    pub fn sql(self) -> &'static str {
        match self {
            TableName::Items => "app.items",
            TableName::Events => "app.events",
        }
    }
}

/// A subscription's query: a table, a projection, an optional filter and, for a top-K
/// subscription, a window (`[ORDER BY ...] LIMIT n [OFFSET m]`); for a grouping subscription,
/// its groups and aggregates (which replace the projection); for a join subscription, the
/// join (which replaces the rest; its `table` is `app.items`, the one whose DDL ends it and
/// whose generation it reads: `app.events` has no DDL).
#[derive(Clone, Debug)]
pub struct Query {
    table: TableName,
    join: Option<Join>,
    columns: &'static [&'static str],
    filter: Option<Cond>,
    window: Option<Window>,
    grouping: Option<Grouping>,
}

/// The name of the `n`th column `ALTER TABLE ... ADD COLUMN` added (from 1); writers never
/// set them, so they are NULL in every row.
pub fn added_column(n: usize) -> String {
    format!("c{n}")
}

impl Query {
    /// `SELECT id, grp, qty, at FROM <table>`: an observer's query. It names its columns, so
    /// `ADD COLUMN` does not end it.
    pub fn observer(table: TableName) -> Query {
        Query {
            table,
            join: None,
            columns: OBSERVED,
            filter: None,
            window: None,
            grouping: None,
        }
    }

    /// A query of `app.items` with these columns and filter (the DDL canaries').
    pub fn new(columns: &'static [&'static str], filter: Option<Cond>) -> Query {
        Query {
            table: TableName::Items,
            join: None,
            columns,
            filter,
            window: None,
            grouping: None,
        }
    }

    pub fn table(&self) -> TableName {
        self.table
    }

    /// `SELECT *`: ended by `ADD COLUMN` (`schema_changed`), and its rows carry added columns.
    pub fn is_star(&self) -> bool {
        self.columns == ["*"]
    }

    pub fn is_filtered(&self) -> bool {
        self.filter.is_some()
    }

    /// A top-K subscription (docs/websocket.md, "Top-K subscriptions").
    pub fn window(&self) -> Option<&Window> {
        self.window.as_ref()
    }

    /// A grouping subscription (docs/websocket.md, "Grouping subscriptions").
    pub fn grouping(&self) -> Option<&Grouping> {
        self.grouping.as_ref()
    }

    /// A top-K or grouping subscription: one message per write that changed its result, with
    /// the write's `_seq` as its `"seq"`; resumes are exact or `resume_too_old`.
    pub fn per_write(&self) -> bool {
        self.window.is_some() || self.grouping.is_some()
    }

    /// A time-relative subscription (docs/websocket.md, "Time-relative subscriptions"): its
    /// WHERE reads `now()`.
    pub fn clock(&self) -> bool {
        self.filter.as_ref().is_some_and(Cond::reads_clock)
    }

    /// A join subscription (docs/websocket.md, "Join subscriptions").
    pub fn join(&self) -> Option<&Join> {
        self.join.as_ref()
    }

    /// Its messages carry a top-level `"seq"` and may carry several rows: top-K, grouping,
    /// time-relative and join subscriptions.
    pub fn stamped(&self) -> bool {
        self.per_write() || self.clock() || self.join.is_some()
    }

    /// Rows as the model compares them: a grouping subscription's without `_seq` (a group
    /// row's `_seq` is when the client got it, checked as each message is applied).
    pub fn comparable(&self, rows: &BTreeMap<i64, Row>) -> BTreeMap<i64, Row> {
        let mut rows = rows.clone();
        if self.grouping.is_some() {
            for row in rows.values_mut() {
                row.remove("_seq");
            }
        }
        rows
    }

    /// The filter holds for a full row in the state at `seq` (`now()` is its time; no filter:
    /// every row).
    pub fn matches(&self, row: &Row, seq: u64) -> bool {
        self.filter
            .as_ref()
            .is_none_or(|f| f.eval(row, time_of(seq)))
    }

    /// A random query. An eighth are joins (`join.rs`). Of the others, one in four reads the
    /// STREAM table; a sixth are time-relative (a
    /// filter reading `now()`, no window or grouping: docs/websocket.md refuses those; two in
    /// five of them read the STREAM table, whose rows are rewritten less often, so more of
    /// them live to enter or leave by time); of the others a fifth are grouping queries, a
    /// third of the rest top-K windows (windows and groups more often without a filter than
    /// the others: over the whole table the most rows go in and out).
    pub fn random(rng: &mut Rng) -> Query {
        if rng.percent(JOIN_PERCENT) {
            return Query {
                table: TableName::Items,
                join: Some(Join::random(rng)),
                columns: PROJECTIONS[1],
                filter: None,
                window: None,
                grouping: None,
            };
        }
        let table = match rng.percent(25) {
            true => TableName::Events,
            false => TableName::Items,
        };
        if rng.percent(CLOCK_PERCENT) {
            let table = match rng.percent(40) {
                true => TableName::Events,
                false => TableName::Items,
            };
            return Query {
                table,
                join: None,
                columns: rng.pick(&PROJECTIONS),
                filter: Some(Cond::random_clock(rng)),
                window: None,
                grouping: None,
            };
        }
        let grouping = rng.percent(GROUPING_PERCENT).then(|| Grouping::random(rng));
        let windowed = grouping.is_none() && rng.percent(WINDOW_PERCENT);
        let window = windowed.then(|| Window::random(rng));
        let unfiltered = if window.is_some() || grouping.is_some() {
            30
        } else {
            10
        };
        Query {
            table,
            join: None,
            // A grouping query's SELECT list is its own (`columns` is not `*`: DDL's rules).
            columns: match grouping {
                Some(_) => PROJECTIONS[1],
                None => rng.pick(&PROJECTIONS),
            },
            filter: (!rng.percent(unfiltered)).then(|| Cond::random(rng, 2)),
            window,
            grouping,
        }
    }

    /// The column names `subscription_ack` must list when the table has `added` added
    /// columns: the projection (`*`: the table's columns), then `_seq` if absent.
    pub fn schema(&self, added: usize) -> Vec<String> {
        let mut names: Vec<String> = if let Some(join) = &self.join {
            join.columns()
        } else if let Some(grouping) = &self.grouping {
            grouping.columns()
        } else if self.is_star() {
            let base = OBSERVED.iter().map(|c| c.to_string());
            base.chain((1..=added).map(added_column)).collect()
        } else {
            self.columns.iter().map(|c| c.to_string()).collect()
        };
        if !names.iter().any(|n| n == "_seq") {
            names.push("_seq".into());
        }
        names
    }

    pub fn sql(&self) -> String {
        if let Some(join) = &self.join {
            return join.sql();
        }
        let columns = match &self.grouping {
            Some(grouping) => grouping.select_list(),
            None => self.columns.join(", "),
        };
        let mut text = format!("SELECT {columns} FROM {}", self.table.sql());
        if let Some(filter) = &self.filter {
            text.push_str(" WHERE ");
            text.push_str(&filter.sql());
        }
        if let Some(window) = &self.window {
            text.push_str(&window.sql());
        }
        if let Some(grouping) = &self.grouping {
            text.push_str(&grouping.sql());
        }
        text
    }

    /// The query's result over a table state of full rows (the table as of `seq`, whose time
    /// `now()` is), keyed by `id`, for a subscription made when the table had `added` added
    /// columns (NULL in every row).
    pub fn result(&self, table: &BTreeMap<i64, Row>, added: usize, seq: u64) -> BTreeMap<i64, Row> {
        self.ordered(table, added, seq).into_iter().collect()
    }

    /// [`Query::result`] in the result's order (a window's; otherwise by `id`). A grouping
    /// query's rows are its groups' (without `_seq`), keyed and ordered by the group key.
    pub fn ordered(&self, table: &BTreeMap<i64, Row>, added: usize, seq: u64) -> Vec<(i64, Row)> {
        let mut rows: Vec<(i64, &Row)> = table
            .iter()
            .filter(|(_, row)| self.matches(row, seq))
            .map(|(key, row)| (*key, row))
            .collect();
        if let Some(grouping) = &self.grouping {
            return grouping.groups(rows.into_iter().map(|(_, row)| row));
        }
        if let Some(window) = &self.window {
            window.arrange(&mut rows);
        }
        rows.into_iter()
            .map(|(key, row)| {
                let mut row = row.clone();
                if self.is_star() {
                    row.extend((1..=added).map(|n| (added_column(n), Value::Null)));
                } else {
                    row.retain(|name, _| name == "_seq" || self.columns.contains(&name.as_str()));
                }
                (key, row)
            })
            .collect()
    }
}

fn int(row: &Row, column: &str) -> i64 {
    match row.get(column) {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(i64::MIN),
        Some(Value::String(s)) => s.parse().unwrap_or(i64::MIN),
        _ => i64::MIN,
    }
}

/// A row's `_seq`, which must be a string of decimal digits.
pub fn seq_of(row: &Row) -> Result<u64, String> {
    match row.get("_seq") {
        Some(Value::String(text))
            if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) =>
        {
            text.parse().map_err(|e| format!("_seq {text}: {e}"))
        }
        other => Err(format!(
            "row without a decimal-string _seq ({other:?}): {row:?}"
        )),
    }
}

pub fn key_of(row: &Row) -> Result<i64, String> {
    match int(row, "id") {
        i64::MIN => Err(format!("row without a numeric id: {row:?}")),
        key => Ok(key),
    }
}

/// The full table history: every version of every key, in `_seq` order (a delete is `None`).
#[derive(Default)]
pub struct History {
    versions: BTreeMap<i64, Vec<(u64, Option<Row>)>>,
    /// When the observer received each `_seq` (to check that STREAM rows expire no earlier
    /// than their TTL).
    pub observed_at: BTreeMap<u64, Instant>,
    pub last_seq: u64,
    pub events: u64,
}

impl History {
    pub fn record(&mut self, seq: u64, key: i64, row: Option<Row>) {
        assert!(
            seq > self.last_seq,
            "history out of order: {seq} after {}",
            self.last_seq
        );
        self.versions.entry(key).or_default().push((seq, row));
        self.observed_at.insert(seq, Instant::now());
        self.last_seq = seq;
        self.events += 1;
    }

    /// The last `_seq` at or below `upto` of a write that sends `query`'s subscribers a
    /// change: a write whose key matched the filter before it or matches after it (see
    /// docs/websocket.md, "Changes"). A subscriber that missed nothing up to `upto` has
    /// received exactly this `_seq` last (or its snapshot boundary, if that is higher).
    pub fn last_relevant(&self, query: &Query, upto: u64) -> u64 {
        let matches =
            |row: &Option<Row>, seq: u64| row.as_ref().is_some_and(|row| query.matches(row, seq));
        let mut last = 0;
        for versions in self.versions.values() {
            let mut before = &None;
            for (seq, row) in versions {
                if *seq > upto {
                    break;
                }
                if matches(before, *seq) || matches(row, *seq) {
                    last = last.max(*seq);
                }
                before = row;
            }
        }
        last
    }

    /// Every event in `_seq` order: (`_seq`, key, the key's row after it, `None` = deleted).
    pub fn events(&self) -> Vec<(u64, i64, Option<&Row>)> {
        let mut events: Vec<_> = self
            .versions
            .iter()
            .flat_map(|(key, versions)| {
                versions.iter().map(|(seq, row)| (*seq, *key, row.as_ref()))
            })
            .collect();
        events.sort_by_key(|(seq, _, _)| *seq);
        events
    }

    /// The table (full rows) as of `seq`: the latest version of each key with `_seq <= seq`.
    pub fn state_at(&self, seq: u64) -> BTreeMap<i64, Row> {
        let mut table = BTreeMap::new();
        for (key, versions) in &self.versions {
            let n = versions.partition_point(|(s, _)| *s <= seq);
            if let Some((_, Some(row))) = n.checked_sub(1).map(|i| &versions[i]) {
                table.insert(*key, row.clone());
            }
        }
        table
    }
}
