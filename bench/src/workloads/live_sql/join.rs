//! The join phase of `live-sql`: change-to-client latency of a live join subscription, for
//! writes to either side, beside a plain filter and a time-relative filter over the same USER
//! table, measured over the same writes, on the server of the first phase, after it.
//!
//! Tables (in the run's namespace):
//! - `items (id BIGINT PRIMARY KEY, cat BIGINT, v INT, created_at TIMESTAMP DEFAULT now())`,
//!   USER: `--join-rows` rows in the bench user's own partition (the subscriber is that user;
//!   a USER table's rows are the caller's own, so the writers write as that user too), `v = 0`,
//!   `created_at` in 2000;
//! - `cats (id BIGINT PRIMARY KEY, name TEXT)`, SHARED: `--lookup-rows` rows, `name = 'c<id>'`.
//!
//! `items.cat` names a `cats` row. The first half of the cats (*light*, ids `1..=L/2`) each have
//! exactly `--lookup-fanout` items (ids `1..=L/2 * fanout`); the other half (*heavy*) share the
//! rest. Writes never change `cat`, so a light cat keeps its fanout through the run.
//!
//! Subscriptions, each on its own WebSocket connection, as the bench user:
//! - `user_filter`: `SELECT id, cat, v FROM items WHERE v > 0` (every write to `items` enters
//!   it: the plain-filter baseline of this phase);
//! - `join`: `SELECT m.id, m.v, c.name FROM items m JOIN cats c ON c.id = m.cat` (every item);
//! - `time_window`: `SELECT id, v FROM items WHERE created_at > now() - INTERVAL '1 minute'`
//!   (empty at first: every write to `items` sets `created_at` to now and enters it).
//!
//! Write `k` (open loop, the schedule of `subscribe`) is one of:
//! - an UPDATE of an item, `SET v = k, created_at = now()`, each to an item not written before
//!   in the run (a stride through the ids) as long as there are such;
//! - an INSERT of a new item (`id` above `--join-rows`, a heavy cat, `v = k`, `created_at`
//!   by default now): [`INSERT_SHARE`] of the item writes;
//! - a lookup write (a `--lookup-share` of all): `UPDATE cats SET name = 'w<k>'` of a light cat,
//!   which changes its `--lookup-fanout` joined rows in one message.
//!
//! Every message names its write by content: an item write's row carries `v = k`; a lookup
//! write's rows carry `name = 'w<k>'`. A join `update` is told apart by comparing each row with
//! its old version: `v` changed (an item write) or `name` changed (a lookup write). Cases:
//! `user_filter`, `join_write` and `time_window` are timed over the item writes (the window
//! over those that enter it: all of them while updates find unwritten rows), `join_lookup` over
//! the lookup writes; each latency runs from the write's due time to the message's arrival.
//! Lost, duplicate, unexpected and unattributable messages, and join messages with the wrong
//! number of rows, are figures, and nonzero fails the run.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use tokio::sync::watch;

use super::join_receive::receive;
use super::{splitmix64, LiveSqlArgs, DRAIN_TIMEOUT, DUPLICATE_GRACE};
use crate::latency::LatencyHistogram;
use crate::proc::CpuMeter;
use crate::progress::Progress;
use crate::realtime::setup::Server;
use crate::realtime::tally::Schedule;
use crate::realtime::ws::{subscribe_all, Ws};
use crate::report::{Figure, Measurement};

/// Share of the item writes that INSERT a new item (the rest UPDATE one).
const INSERT_SHARE: f64 = 0.25;
/// Rows a join subscription may hold, its first table's and its lookup tables' together
/// (websocket.md, "Join subscriptions"; beyond it the subscription ends).
const JOIN_HELD_MAX: usize = 200_000;
/// `created_at` of the loaded items: long out of the time window.
const OLD_TIME: &str = "2000-01-01T00:00:00Z";
/// A prime above every `--join-rows` allowed: `j * STRIDE % rows` visits every id once.
const STRIDE: u64 = 1_000_003;
/// Snapshot batch size of the subscriptions (the join's snapshot is every item).
const SNAPSHOT_BATCH: u32 = 10_000;

/// The subscriptions, in connection order: label, SQL (`{items}`, `{cats}` are the tables).
const SUBSCRIPTIONS: [(&str, &str); 3] = [
    (
        "plain filter WHERE v > 0 (USER table)",
        "SELECT id, cat, v FROM {items} WHERE v > 0",
    ),
    (
        "join USER table to SHARED lookup by primary key",
        "SELECT m.id, m.v, c.name FROM {items} m JOIN {cats} c ON c.id = m.cat",
    ),
    (
        "time-relative WHERE created_at > now() - INTERVAL '1 minute'",
        "SELECT id, v FROM {items} WHERE created_at > now() - INTERVAL '1 minute'",
    ),
];
const USER_FILTER: usize = 0;
pub(super) const JOIN: usize = 1;
pub(super) const WINDOW: usize = 2;

/// One write of the plan.
#[derive(Clone, Copy)]
enum Op {
    /// `UPDATE items SET v = k, created_at = now() WHERE id = id`; `enters`: the first write
    /// to that item in the run (it enters the filter and the time window).
    Update { id: i64, enters: bool },
    /// `INSERT INTO items (id, cat, v) VALUES (id, cat, k)`.
    Insert { id: i64, cat: i64 },
    /// `UPDATE cats SET name = 'w<k>' WHERE id = cat` (a light cat).
    Lookup { cat: i64 },
}

impl Op {
    fn is_item(&self) -> bool {
        !matches!(self, Op::Lookup { .. })
    }
}

/// The layout of the two tables.
#[derive(Clone, Copy)]
struct Layout {
    items: i64,
    cats: i64,
    light: i64,
    fanout: i64,
}

impl Layout {
    fn of(args: &LiveSqlArgs) -> Layout {
        Layout {
            items: args.join_rows as i64,
            cats: args.lookup_rows as i64,
            light: args.lookup_rows as i64 / 2,
            fanout: args.lookup_fanout as i64,
        }
    }

    /// The cat of item `id` (loaded or inserted).
    fn cat_of(&self, id: i64) -> i64 {
        if id <= self.light * self.fanout {
            (id - 1) % self.light + 1
        } else {
            self.light + 1 + (id - 1) % (self.cats - self.light)
        }
    }
}

/// Checks the join phase's options (before anything runs).
pub(super) fn check_args(args: &LiveSqlArgs) -> anyhow::Result<()> {
    if args.join_rows == 0 {
        return Ok(());
    }
    let layout = Layout::of(args);
    ensure!(
        args.lookup_rows >= 2 && args.lookup_fanout >= 1,
        "--lookup-rows must be at least 2 and --lookup-fanout at least 1"
    );
    let needed = layout.light * layout.fanout + (layout.cats - layout.light);
    ensure!(
        layout.items >= needed,
        "--join-rows must be at least {needed} (--lookup-rows / 2 light lookup rows of \
         --lookup-fanout items each, and one item per other lookup row)"
    );
    ensure!(
        (args.join_rows as u64) < STRIDE,
        "--join-rows must be below {STRIDE}"
    );
    ensure!(
        (0.0..1.0).contains(&args.lookup_share),
        "--lookup-share must be within 0..1"
    );
    Ok(())
}

/// Write `k`'s plan (deterministic). `updates` counts the updates planned so far.
fn plan(k: i64, layout: &Layout, share: f64, updates: &mut u64, inserts: &mut i64) -> Op {
    let random = splitmix64(k as u64 ^ 0x6a6f_696e);
    let fraction = |bits: u64| (bits % 1_000_000) as f64 / 1e6;
    if fraction(random) < share {
        Op::Lookup {
            cat: ((random >> 40) % layout.light as u64) as i64 + 1,
        }
    } else if fraction(random >> 20) < INSERT_SHARE {
        *inserts += 1;
        let id = layout.items + *inserts;
        Op::Insert {
            id,
            cat: layout.cat_of(id),
        }
    } else {
        let j = *updates;
        *updates += 1;
        let rows = layout.items as u64;
        Op::Update {
            id: ((j % rows) * STRIDE % rows) as i64 + 1,
            enters: j < rows,
        }
    }
}

/// Creates and fills the two tables, runs the writes with the three subscriptions open, and
/// returns the four measurements and the reason the phase fails (after they are reported).
pub(super) fn run(
    server: &Server,
    runtime: &tokio::runtime::Runtime,
    progress: &Progress,
    args: &LiveSqlArgs,
) -> anyhow::Result<(Vec<Measurement>, Option<String>)> {
    let layout = Layout::of(args);
    let items = server.table("items");
    let cats = server.table("cats");
    server.create_table_sql(
        &items,
        &format!(
            "CREATE TABLE {items} (id BIGINT PRIMARY KEY, cat BIGINT, v INT, \
             created_at TIMESTAMP NOT NULL DEFAULT now()) WITH (TYPE = 'USER')"
        ),
    )?;
    server.create_table_sql(
        &cats,
        &format!("CREATE TABLE {cats} (id BIGINT PRIMARY KEY, name TEXT) WITH (TYPE = 'SHARED')"),
    )?;
    let bar = progress.counted("load lookup", layout.cats as u64);
    let fill_cats = server.load(&cats, "id, name", layout.cats as usize, &bar, |sql, id| {
        let _ = write!(sql, "({id}, 'c{id}')");
    })?;
    bar.finish_and_clear();
    let bar = progress.counted("load user table", layout.items as u64);
    let fill_items = server.load(
        &items,
        "id, cat, v, created_at",
        layout.items as usize,
        &bar,
        |sql, id| {
            let _ = write!(sql, "({id}, {}, 0, '{OLD_TIME}')", layout.cat_of(id));
        },
    )?;
    bar.finish_and_clear();

    let mut schedule = Schedule::new(
        SUBSCRIPTIONS.len(),
        1,
        args.rate,
        Duration::from_secs_f64(args.warm_up),
        Duration::from_secs_f64(args.duration),
    );
    schedule.writers = args.writers.max(1);
    let total = schedule.total_writes();
    let (mut updates, mut inserts) = (0, 0);
    let ops: Vec<Op> = (1..=total as i64)
        .map(|k| plan(k, &layout, args.lookup_share, &mut updates, &mut inserts))
        .collect();
    ensure!(
        args.join_rows + inserts as usize + args.lookup_rows <= JOIN_HELD_MAX,
        "the join would hold {} rows, above the server's {JOIN_HELD_MAX}: lower --join-rows",
        args.join_rows + inserts as usize + args.lookup_rows
    );
    let item_writes = ops.iter().filter(|op| op.is_item()).count();
    let expected = [item_writes, total, item_writes];

    let subscribing = Instant::now();
    let sockets = runtime.block_on(async {
        let mut sockets = Vec::new();
        for (i, (_, sql)) in SUBSCRIPTIONS.iter().enumerate() {
            let mut ws = Ws::connect(server.target.http, &server.token).await?;
            let sql = sql.replace("{items}", &items).replace("{cats}", &cats);
            subscribe_all(&mut ws, &[(format!("j{i}"), sql)], Some(SNAPSHOT_BATCH))
                .await
                .with_context(|| format!("subscribing {}", SUBSCRIPTIONS[i].0))?;
            sockets.push(ws);
        }
        anyhow::Ok(sockets)
    })?;
    let subscribe_time = subscribing.elapsed();

    let counts: Arc<Vec<AtomicU64>> = Arc::new(
        (0..SUBSCRIPTIONS.len())
            .map(|_| AtomicU64::new(0))
            .collect(),
    );
    let (stop, stopped) = watch::channel(false);
    let receivers: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(i, ws)| runtime.spawn(receive(ws, i, counts.clone(), stopped.clone())))
        .collect();

    let window = Duration::from_secs_f64(args.warm_up + args.duration);
    let bar = progress.timed("live-sql join", window);
    let cpu = CpuMeter::start(server.target.server_pid());
    let written = schedule.write_paced(
        |_| server.session(),
        |session, k, _| {
            let sql = match ops[k as usize - 1] {
                Op::Update { id, .. } => {
                    format!("UPDATE {items} SET v = {k}, created_at = now() WHERE id = {id}")
                }
                Op::Insert { id, cat } => {
                    format!("INSERT INTO {items} (id, cat, v) VALUES ({id}, {cat}, {k})")
                }
                Op::Lookup { cat } => format!("UPDATE {cats} SET name = 'w{k}' WHERE id = {cat}"),
            };
            let rows = session.execute(&sql)?;
            ensure!(rows == 1, "{sql} wrote {rows} rows");
            Ok(())
        },
    );
    if written.is_ok() {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        let done =
            || (0..expected.len()).all(|i| counts[i].load(Ordering::Acquire) >= expected[i] as u64);
        while !done() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(DUPLICATE_GRACE);
    }
    let mut cpu_figures = Vec::new();
    cpu.figures(&mut cpu_figures);
    drop(bar);
    let _ = stop.send(true);
    let mut seen = Vec::new();
    for receiver in receivers {
        seen.push(
            runtime
                .block_on(receiver)
                .context("a receiver task panicked")?
                .context("a subscriber connection failed")?,
        );
    }
    let (write_rate, max_lag) = written?;

    // Case, label, subscription, which writes it times, which writes must change it.
    type Pick = fn(&Op) -> bool;
    let lookup_label = format!("join: lookup row UPDATE ({} joined rows)", layout.fanout);
    let cases: [(&str, &str, usize, Pick, Pick); 4] = [
        (
            "user_filter",
            SUBSCRIPTIONS[USER_FILTER].0,
            USER_FILTER,
            Op::is_item,
            Op::is_item,
        ),
        (
            "join_write",
            "join: write to the USER table (1 joined row)",
            JOIN,
            Op::is_item,
            |_| true,
        ),
        (
            "join_lookup",
            &lookup_label,
            JOIN,
            |op| !op.is_item(),
            |_| true,
        ),
        (
            "time_window",
            "time-relative window: a write entering it",
            WINDOW,
            |op| match op {
                Op::Update { enters, .. } => *enters,
                Op::Insert { .. } => true,
                Op::Lookup { .. } => false,
            },
            Op::is_item,
        ),
    ];
    let mut measurements = Vec::new();
    let mut failures = Vec::new();
    let mut baseline = None;
    for (case, label, sub, timed, should) in cases {
        let mut per_write = vec![0u32; total];
        let (mut unattributed, mut wrong_rows) = (0u64, 0u64);
        let mut histogram = LatencyHistogram::new();
        for receipt in &seen[sub].receipts {
            let Some(k) = receipt.write.filter(|k| (1..=total as i64).contains(k)) else {
                unattributed += 1;
                continue;
            };
            let op = &ops[k as usize - 1];
            // The join's receipts belong to one of its two cases by the write's kind.
            if !timed_kind(case, op) {
                continue;
            }
            if receipt.by_name == op.is_item() {
                unattributed += 1;
                continue;
            }
            let rows = if op.is_item() { 1 } else { layout.fanout };
            if sub == JOIN && receipt.rows != rows as usize {
                wrong_rows += 1;
            }
            let slot = &mut per_write[k as usize - 1];
            *slot += 1;
            if *slot == 1 && schedule.is_timed(k) && timed(op) {
                if let Some(due) = schedule.due(k) {
                    histogram.record(receipt.at.saturating_duration_since(due));
                }
            }
        }
        // The join's unattributed receipts are counted once, under `join_write`.
        if case == "join_lookup" {
            unattributed = 0;
        }
        let (mut lost, mut duplicate, mut unexpected, mut timed_expected, mut writes) =
            (0u64, 0u64, 0u64, 0u64, 0u64);
        for (k, (slot, op)) in (1..).zip(per_write.iter().zip(&ops)) {
            if !timed_kind(case, op) {
                continue;
            }
            writes += u64::from(should(op));
            match (should(op), *slot) {
                (true, 0) => lost += 1,
                (true, n) => duplicate += u64::from(n - 1),
                (false, 0) => {}
                (false, n) => unexpected += u64::from(n),
            }
            timed_expected += u64::from(should(op) && timed(op) && schedule.is_timed(k));
        }
        if lost + duplicate + unexpected + unattributed + wrong_rows > 0 {
            failures.push(format!(
                "{case}: {lost} LOST, {duplicate} DUPLICATE, {unexpected} unexpected changes, \
                 {unattributed} naming no write of the run, {wrong_rows} with the wrong number \
                 of rows"
            ));
        }
        let (_, sql) = SUBSCRIPTIONS[sub];
        let mut m = Measurement::new("live-sql", "strand", case, label)
            .durability(server.target.durability())
            .param(
                "sql",
                sql.replace("{items}", "<items>")
                    .replace("{cats}", "<cats>"),
            )
            .param("join_rows", args.join_rows)
            .param("lookup_rows", args.lookup_rows)
            .param("lookup_fanout", args.lookup_fanout)
            .param("lookup_share", args.lookup_share)
            .param("insert_share", INSERT_SHARE)
            .param("rate_per_s", args.rate)
            .param("writers", args.writers.max(1))
            .param("warm_up_s", args.warm_up)
            .param("duration_s", args.duration);
        m.latency = histogram.summary();
        m.figures = vec![
            Figure::new("timed", histogram.count() as f64, ""),
            Figure::new("timed_expected", timed_expected as f64, ""),
            Figure::new("lost", lost as f64, ""),
            Figure::new("duplicate", duplicate as f64, ""),
            Figure::new("unexpected", unexpected as f64, ""),
            Figure::new("writes", writes as f64, ""),
            Figure::new("write_rate", write_rate, "/s"),
            Figure::new("max_send_lag", max_lag.as_secs_f64() * 1e3, "ms"),
        ];
        match case {
            "user_filter" => {
                m.figures.extend([
                    Figure::new("fill_user_table", fill_items.as_secs_f64(), "s"),
                    Figure::new("fill_lookup", fill_cats.as_secs_f64(), "s"),
                    Figure::new("subscribe_all", subscribe_time.as_secs_f64(), "s"),
                    Figure::new("all_writes", total as f64, ""),
                ]);
                m.figures.extend(cpu_figures.iter().cloned());
                baseline = m.latency.as_ref().map(|l| (l.p50_ms, l.p99_ms));
            }
            "time_window" => m.figures.push(Figure::new(
                "clock_changes",
                seen[WINDOW].clock_changes as f64,
                "",
            )),
            _ => {}
        }
        if let (Some((p50, p99)), Some(l), false) = (baseline, &m.latency, case == "user_filter") {
            m.figures.extend([
                Figure::new("p50_over_user_filter", l.p50_ms / p50, "x"),
                Figure::new("p99_over_user_filter", l.p99_ms / p99, "x"),
            ]);
        }
        measurements.push(m);
    }
    let failure = (!failures.is_empty()).then(|| failures.join("; "));
    Ok((measurements, failure))
}

/// Whether `op` is a write of `case`'s kind: the join's two cases split its receipts.
fn timed_kind(case: &str, op: &Op) -> bool {
    match case {
        "join_lookup" => !op.is_item(),
        "join_write" => op.is_item(),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn args(join_rows: usize) -> LiveSqlArgs {
        LiveSqlArgs {
            rows: 1000,
            rooms: 10,
            rate: 1000.0,
            writers: 4,
            duration: 1.0,
            warm_up: 0.0,
            top_share: 0.2,
            join_rows,
            lookup_rows: 1000,
            lookup_fanout: 5,
            lookup_share: 0.2,
        }
    }

    #[test]
    fn light_cats_have_exactly_the_fanout_and_updates_visit_each_item_once() {
        let args = args(10_000);
        check_args(&args).unwrap();
        let layout = Layout::of(&args);
        let mut per_cat = vec![0; layout.cats as usize + 1];
        for id in 1..=layout.items {
            per_cat[layout.cat_of(id) as usize] += 1;
        }
        assert!(per_cat[1..=layout.light as usize]
            .iter()
            .all(|&n| n == layout.fanout));
        assert!(per_cat[layout.light as usize + 1..].iter().all(|&n| n > 0));
        let (mut updates, mut inserts) = (0, 0);
        let mut updated = HashSet::new();
        for k in 1..=20_000 {
            match plan(k, &layout, args.lookup_share, &mut updates, &mut inserts) {
                Op::Update { id, enters } => {
                    assert!((1..=layout.items).contains(&id));
                    assert_eq!(updated.insert(id), enters, "write {k} to {id}");
                }
                Op::Insert { id, cat } => {
                    assert!(id > layout.items && cat > layout.light);
                }
                Op::Lookup { cat } => assert!((1..=layout.light).contains(&cat)),
            }
        }
        assert!(
            updates > layout.items as u64,
            "the test covers a second round"
        );
    }

    #[test]
    fn too_few_rows_for_the_layout_are_refused() {
        assert!(check_args(&args(2_000)).is_err());
        assert!(check_args(&args(0)).is_ok());
    }
}
