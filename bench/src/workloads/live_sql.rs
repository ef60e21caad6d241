//! `strand-bench live-sql`: change-to-client latency of live SQL (issue 21), a top-K window and
//! a live GROUP BY beside a plain filter, in one run, on one server, over one pre-filled SHARED
//! table `(id, room, v)` of `--rows` rows (`room = id % --rooms`, `v = 0`).
//!
//! Three subscriptions, each on its own WebSocket connection (so one's traffic does not queue
//! behind another's), measured over the same writes:
//! - `filter`: `SELECT id, room, v FROM <t> WHERE room = 7` (a change per write to room 7);
//! - `top100`: `SELECT id, room, v FROM <t> ORDER BY v DESC LIMIT 100`;
//! - `group_by`: `SELECT room, COUNT(*) AS n, SUM(v) AS s FROM <t> GROUP BY room` (every write
//!   changes its room's SUM: one change per write).
//!
//! The writes are single-row `UPDATE <t> SET v = <v> WHERE id = <id>` over keep-alive HTTP from
//! `--writers` threads on the open-loop schedule of `subscribe` ([`Schedule`]); each latency is
//! from the write's due time to the change's arrival (no coordinated omission). Write `k` is
//! either *hot* (a `--top-share` of them): `v = HOT_BASE + k`, above every value so far, so it
//! enters the top 100 (pushing the 100th out), or *cold*: `v = k`, below every value in the
//! window (seeded at [`HOT_BASE`] before subscribing), on a row that is never in the window, so
//! it leaves the top 100 alone. The top-K figures are over the hot writes only (the writes that
//! change that subscription); a window that only saw writes that miss it would measure nothing.
//!
//! Matching a change to its write is exact, by `_seq`: a top-K or grouping change carries the
//! write's `_seq` as its top-level `"seq"`, a filter change its row's `_seq`. The writer cannot
//! learn a write's `_seq` (UPDATE has no RETURNING), so a fourth subscription, the *index*
//! `SELECT id, v FROM <t> WHERE v > 0` on its own connection, receives every write's new row
//! with its `_seq`; `v` is unique per write and names it (`k` or `HOT_BASE + k`). After the run
//! each receipt's `_seq` is looked up there. Filter and top-K changes also carry the written row,
//! whose `v` must name the same write (checked). The index subscription costs the server one
//! more change per write, the same for all three figures.
//!
//! Every receipt is counted per write: a write that should have changed a subscription and did
//! not (`lost`), a second change for one write (`duplicate`) and a change for a write that should
//! not have touched it (`unexpected`) are figures, and nonzero fails the run.
//!
//! Then, on the same server, the join phase ([`join`], skipped with `--join-rows 0`): a live
//! join of a USER table (`--join-rows` rows of the bench user's own) to a SHARED lookup table
//! (`--lookup-rows`), timed for writes to either side, beside a plain filter and a
//! time-relative filter over the same USER table and the same writes.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use clap::Args;
use serde::Deserialize;
use strand_wire::SeqText;
use tokio::sync::watch;

use crate::cli::Fsync;
use crate::latency::LatencyHistogram;
use crate::proc::CpuMeter;
use crate::realtime::setup::Server;
use crate::realtime::tally::Schedule;
use crate::realtime::ws::{clip, subscribe_all, Ws};
use crate::report::{Figure, Measurement};
use crate::run::Bench;

mod join;
mod join_receive;

/// Options of `live-sql`.
#[derive(Args, Debug, Clone)]
pub struct LiveSqlArgs {
    /// Rows of the pre-filled table (quick: 10,000). Issue 21 asks for 1,000,000.
    #[arg(long, default_value_t = 100_000)]
    pub rows: usize,
    /// Rooms (`room = id % rooms`): groups of the GROUP BY; the filter sees 1 write in `rooms`.
    #[arg(long, default_value_t = 10)]
    pub rooms: usize,
    /// Writes per second (open loop: each write is due at start + i / rate).
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Writer threads sharing that schedule, one connection each.
    #[arg(long, default_value_t = 4)]
    pub writers: usize,
    /// Seconds of timed writes (quick: 1).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of writes before the timed ones, delivered and counted but not timed
    /// (quick: 0.3).
    #[arg(long, default_value_t = 1.0)]
    pub warm_up: f64,
    /// Share of writes that enter the top 100 (the rest miss it).
    #[arg(long, default_value_t = 0.2)]
    pub top_share: f64,
    /// Join phase: rows of the USER table (the bench user's own partition) joined to the
    /// lookup table (quick: 10,000); 0 skips the phase. A join subscription holds at most
    /// 200,000 rows, these, the rows inserted during the run and the lookup rows together.
    #[arg(long, default_value_t = 100_000)]
    pub join_rows: usize,
    /// Join phase: rows of the SHARED lookup table, looked up by primary key.
    #[arg(long, default_value_t = 1000)]
    pub lookup_rows: usize,
    /// Join phase: joined rows each lookup write changes (the USER rows of each of half the
    /// lookup rows; the other half share the rest).
    #[arg(long, default_value_t = 5)]
    pub lookup_fanout: usize,
    /// Join phase: share of writes that UPDATE a lookup row (the rest write the USER table).
    #[arg(long, default_value_t = 0.2)]
    pub lookup_share: f64,
}

/// Rows of a quick run's table.
const QUICK_ROWS: usize = 10_000;
/// The window of the top-K subscription.
const TOP_K: usize = 100;
/// The room of the filter subscription.
const FILTER_ROOM: i64 = 7;
/// `v` of the seeded window (ids `1..=TOP_K`) and the base of hot writes' values: cold writes
/// (`v = k`) stay below it, hot ones (`v = HOT_BASE + k`) above every value before them. An
/// INT, like `v`.
const HOT_BASE: i64 = 1_000_000_000;
/// How long after the last write every expected change must have arrived.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the receivers keep reading once every expected change arrived (late duplicates).
const DUPLICATE_GRACE: Duration = Duration::from_millis(200);

/// The subscriptions measured, in report order: case, label, SQL (`{t}` is the table).
const KINDS: [(&str, &str, &str); 3] = [
    (
        "filter",
        "plain filter WHERE room = 7",
        "SELECT id, room, v FROM {t} WHERE room = 7",
    ),
    (
        "top100",
        "top-K ORDER BY v DESC LIMIT 100",
        "SELECT id, room, v FROM {t} ORDER BY v DESC LIMIT 100",
    ),
    (
        "group_by",
        "live GROUP BY room (COUNT, SUM)",
        "SELECT room, COUNT(*) AS n, SUM(v) AS s FROM {t} GROUP BY room",
    ),
];
const FILTER: usize = 0;
const TOP: usize = 1;
const GROUP: usize = 2;
/// The index subscription: every write's new row with its `_seq` (see the module doc).
const INDEX_SQL: &str = "SELECT id, v FROM {t} WHERE v > 0";

pub fn run(bench: &mut Bench, args: &LiveSqlArgs) -> anyhow::Result<()> {
    let mut args = args.clone();
    if bench.quick {
        args.rows = args.rows.min(QUICK_ROWS);
        args.join_rows = args.join_rows.min(QUICK_ROWS);
        args.duration = 1.0;
        args.warm_up = 0.3;
    }
    ensure!(
        args.rooms as i64 > FILTER_ROOM,
        "--rooms must be above {FILTER_ROOM} (the filter watches room {FILTER_ROOM})"
    );
    ensure!(
        args.rows >= 4 * (TOP_K + args.rooms),
        "--rows must be at least {}",
        4 * (TOP_K + args.rooms)
    );
    ensure!(
        (0.0..=1.0).contains(&args.top_share) && args.rate > 0.0,
        "--top-share must be within 0..=1 and --rate positive"
    );
    join::check_args(&args)?;
    for fsync in bench.targets.fsync_policies(&[Fsync::Interval]) {
        let server = Server::open(bench, fsync)?;
        let mut failures = Vec::new();
        let table = server.table("live");
        let loading = bench.progress.counted("load", args.rows as u64);
        let fill = server
            .create_and_load(&table, args.rows, args.rooms as i64, &loading)
            .map_err(|e| server.explain(e))?;
        loading.finish_and_clear();
        let window = Duration::from_secs_f64(args.warm_up + args.duration);
        let bar = bench.progress.timed("live-sql", window);
        let outcome = measure(&server, &bench.runtime, &table, &args, fill);
        drop(bar);
        let (measurements, failure) = outcome.map_err(|e| server.explain(e))?;
        for m in measurements {
            bench.push(m);
        }
        failures.extend(failure);
        if args.join_rows > 0 {
            let (measurements, failure) =
                join::run(&server, &bench.runtime, &bench.progress, &args)
                    .map_err(|e| server.explain(e))?;
            for m in measurements {
                bench.push(m);
            }
            failures.extend(failure);
        }
        if !failures.is_empty() {
            bail!("{}", failures.join("; "));
        }
    }
    Ok(())
}

/// One write of the plan: the row, its new `v`, and whether it enters the top 100.
#[derive(Clone, Copy)]
struct Write {
    id: i64,
    v: i64,
    hot: bool,
}

/// Write `k`'s target and value (deterministic: the same `--rows`, `--rooms` and `--top-share`
/// give the same writes). Ids are `block * rooms + r`, `r` in `1..=rooms`: hot writes go to even
/// blocks, cold ones to odd blocks above the seeded ids, so a cold write never touches a row
/// that is in the window (the window only ever holds seeded ids and hot-written ones).
fn plan_write(k: i64, args: &LiveSqlArgs) -> Write {
    let rooms = args.rooms as u64;
    let blocks = args.rows as u64 / rooms;
    let random = splitmix64(k as u64);
    let hot = (random % 1_000_000) as f64 / 1e6 < args.top_share;
    let r = (random >> 20) % rooms + 1;
    let block = if hot {
        // Even blocks 0, 2, ... below `blocks`.
        ((random >> 40) % blocks.div_ceil(2)) * 2
    } else {
        // Odd blocks from the first whose ids are all above the seeded ones.
        let first = (TOP_K as u64 / rooms + 1) | 1;
        let odd = (blocks.saturating_sub(first)).div_ceil(2).max(1);
        first + ((random >> 40) % odd) * 2
    };
    let id = (block * rooms + r) as i64;
    let v = if hot { HOT_BASE + k } else { k };
    Write { id, v, hot }
}

/// The write a `v` names (see [`plan_write`]); 0 for a seeded row.
fn write_of(v: i64) -> i64 {
    if v > HOT_BASE {
        v - HOT_BASE
    } else if v == HOT_BASE {
        0
    } else {
        v
    }
}

/// SplitMix64: a fixed, well-mixed sequence without a dependency.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What one subscription's receiver saw: each change's `_seq`, arrival, and the write its row's
/// `v` names (filter and top-K; 0 when not checked).
#[derive(Default)]
struct Seen {
    receipts: Vec<(u64, Instant, i64)>,
    /// The index subscription's `_seq` -> write.
    index: Vec<(u64, i64)>,
}

/// Runs the writes with the four subscriptions open; the three measurements, and the reason
/// the run fails (lost, duplicate or unexpected changes) after they are reported.
fn measure(
    server: &Server,
    runtime: &tokio::runtime::Runtime,
    table: &str,
    args: &LiveSqlArgs,
    fill: Duration,
) -> anyhow::Result<(Vec<Measurement>, Option<String>)> {
    // The window starts full of seeded rows at HOT_BASE, above every cold write.
    let seeded = server.session()?.execute(&format!(
        "UPDATE {table} SET v = {HOT_BASE} WHERE id <= {TOP_K}"
    ))?;
    ensure!(
        seeded == TOP_K as u64,
        "seeding the window updated {seeded} rows"
    );

    let mut schedule = Schedule::new(
        KINDS.len() + 1,
        args.rooms,
        args.rate,
        Duration::from_secs_f64(args.warm_up),
        Duration::from_secs_f64(args.duration),
    );
    schedule.writers = args.writers.max(1);
    let total = schedule.total_writes();
    let writes: Vec<Write> = (1..=total as i64).map(|k| plan_write(k, args)).collect();
    let room_of = |w: &Write| w.id % args.rooms as i64;
    let expected = [
        writes.iter().filter(|w| room_of(w) == FILTER_ROOM).count(),
        writes.iter().filter(|w| w.hot).count(),
        total,
        total,
    ];

    let mut sqls: Vec<String> = KINDS.iter().map(|(_, _, sql)| sql.to_string()).collect();
    sqls.push(INDEX_SQL.to_string());
    let subscribing = Instant::now();
    let sockets = runtime.block_on(async {
        let mut sockets = Vec::new();
        for (i, sql) in sqls.iter().enumerate() {
            let mut ws = Ws::connect(server.target.http, &server.token).await?;
            let sql = sql.replace("{t}", table);
            subscribe_all(&mut ws, &[(format!("q{i}"), sql)], None)
                .await
                .with_context(|| format!("subscribing q{i}"))?;
            sockets.push(ws);
        }
        anyhow::Ok(sockets)
    })?;
    let subscribe_time = subscribing.elapsed();

    let counts: Arc<Vec<AtomicU64>> =
        Arc::new((0..sqls.len()).map(|_| AtomicU64::new(0)).collect());
    let (stop, stopped) = watch::channel(false);
    let receivers: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(i, ws)| runtime.spawn(receive(ws, i, counts.clone(), stopped.clone())))
        .collect();

    let cpu = CpuMeter::start(server.target.server_pid());
    let written = schedule.write_paced(
        |_| server.session(),
        |session, k, _| {
            let w = writes[k as usize - 1];
            let sql = format!("UPDATE {table} SET v = {} WHERE id = {}", w.v, w.id);
            let rows = session.execute(&sql)?;
            ensure!(rows == 1, "UPDATE of id {} wrote {rows} rows", w.id);
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

    // `_seq` -> write, from the index subscription.
    let index = &seen[KINDS.len()].index;
    let mut write_by_seq: HashMap<u64, i64> = HashMap::with_capacity(index.len());
    for &(seq, k) in index {
        ensure!(
            (1..=total as i64).contains(&k),
            "the index subscription got v naming write {k}, never sent"
        );
        ensure!(
            write_by_seq.insert(seq, k).is_none(),
            "two rows with _seq {seq} in the index subscription"
        );
    }
    let indexed = write_by_seq.len();

    let mut measurements = Vec::new();
    let mut failures = Vec::new();
    let mut p50_p99 = Vec::new();
    for (i, (case, label, sql)) in KINDS.iter().enumerate() {
        let should = |w: &Write| match i {
            FILTER => room_of(w) == FILTER_ROOM,
            TOP => w.hot,
            _ => true,
        };
        let mut per_write = vec![0u32; total];
        let (mut unmatched, mut mismatched) = (0u64, 0u64);
        let mut histogram = LatencyHistogram::new();
        for &(seq, at, named) in &seen[i].receipts {
            let Some(&k) = write_by_seq.get(&seq) else {
                unmatched += 1;
                continue;
            };
            if i != GROUP && named != k {
                mismatched += 1;
            }
            let slot = &mut per_write[k as usize - 1];
            *slot += 1;
            if *slot == 1 && schedule.is_timed(k) {
                if let Some(due) = schedule.due(k) {
                    histogram.record(at.saturating_duration_since(due));
                }
            }
        }
        let (mut lost, mut duplicate, mut unexpected, mut timed_expected) =
            (0u64, 0u64, 0u64, 0u64);
        for (slot, w) in per_write.iter().zip(&writes) {
            match (should(w), *slot) {
                (true, 0) => lost += 1,
                (true, n) => duplicate += u64::from(n - 1),
                (false, 0) => {}
                (false, n) => unexpected += u64::from(n),
            }
        }
        for (k, w) in (1..).zip(&writes) {
            timed_expected += u64::from(should(w) && schedule.is_timed(k));
        }
        if lost + duplicate + unexpected + unmatched + mismatched > 0 {
            failures.push(format!(
                "{case}: {lost} LOST, {duplicate} DUPLICATE, {unexpected} unexpected changes, \
                 {unmatched} with a _seq no write had, {mismatched} whose row named another write"
            ));
        }
        let mut m = Measurement::new("live-sql", "strand", case, label)
            .durability(server.target.durability())
            .param("sql", sql.replace("{t}", "<table>"))
            .param("rows", args.rows)
            .param("rooms", args.rooms)
            .param("rate_per_s", args.rate)
            .param("writers", args.writers.max(1))
            .param("warm_up_s", args.warm_up)
            .param("duration_s", args.duration)
            .param("top_share", args.top_share);
        m.latency = histogram.summary();
        if let Some(l) = &m.latency {
            p50_p99.push((l.p50_ms, l.p99_ms));
        }
        m.figures = vec![
            Figure::new("timed", histogram.count() as f64, ""),
            Figure::new("timed_expected", timed_expected as f64, ""),
            Figure::new("lost", lost as f64, ""),
            Figure::new("duplicate", duplicate as f64, ""),
            Figure::new("unexpected", unexpected as f64, ""),
            Figure::new("writes", total as f64, ""),
            Figure::new("write_rate", write_rate, "/s"),
            Figure::new("max_send_lag", max_lag.as_secs_f64() * 1e3, "ms"),
        ];
        if i == FILTER {
            m.figures.extend([
                Figure::new("fill", fill.as_secs_f64(), "s"),
                Figure::new("subscribe_all", subscribe_time.as_secs_f64(), "s"),
                Figure::new("indexed_writes", indexed as f64, ""),
            ]);
            m.figures.extend(cpu_figures.iter().cloned());
        }
        measurements.push(m);
    }
    // Each live query's percentiles over the filter's: issue 21 wants both within 2x.
    if let Some(&(filter_p50, filter_p99)) = p50_p99.first() {
        for m in measurements.iter_mut().skip(1) {
            if let Some(l) = &m.latency {
                let (p50, p99) = (l.p50_ms / filter_p50, l.p99_ms / filter_p99);
                m.figures.push(Figure::new("p50_over_filter", p50, "x"));
                m.figures.push(Figure::new("p99_over_filter", p99, "x"));
            }
        }
    }
    if indexed != total {
        failures.push(format!(
            "the index subscription saw {indexed} of {total} writes"
        ));
    }
    let failure = (!failures.is_empty()).then(|| failures.join("; "));
    Ok((measurements, failure))
}

/// The parts of a message this workload reads; unknown fields are skipped.
#[derive(Deserialize)]
struct Message<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    /// A top-K or grouping change's write `_seq`.
    #[serde(default)]
    seq: Option<SeqText>,
    #[serde(default)]
    rows: Vec<Row>,
}

#[derive(Deserialize)]
struct Row {
    #[serde(default)]
    v: Option<i64>,
    #[serde(rename = "_seq", default)]
    seq: Option<SeqText>,
}

/// Reads subscription `i`'s changes until told to stop, noting each one's `_seq` and arrival.
async fn receive(
    mut ws: Ws,
    i: usize,
    counts: Arc<Vec<AtomicU64>>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Seen> {
    let mut seen = Seen::default();
    loop {
        let text = tokio::select! {
            biased;
            _ = stop.changed() => break,
            text = ws.recv_text() => text?,
        };
        let now = Instant::now();
        let message: Message = serde_json::from_str(&text)
            .with_context(|| format!("undecodable message: {}", clip(&text)))?;
        ensure!(
            message.kind == "change",
            "expected a change, got {}",
            clip(&text)
        );
        match i {
            FILTER => {
                let [Row {
                    v: Some(v),
                    seq: Some(seq),
                }] = message.rows.as_slice()
                else {
                    bail!(
                        "a filter change without one row with v and _seq: {}",
                        clip(&text)
                    );
                };
                seen.receipts.push((seq.0, now, write_of(*v)));
            }
            TOP | GROUP => {
                let seq = message
                    .seq
                    .with_context(|| format!("a change without \"seq\": {}", clip(&text)))?;
                // The written row entered or changed: the row with the newest value in `rows`.
                let named = match i {
                    TOP => message
                        .rows
                        .iter()
                        .filter_map(|r| r.v.map(write_of))
                        .max()
                        .unwrap_or(0),
                    _ => 0,
                };
                seen.receipts.push((seq.0, now, named));
            }
            _ => {
                for row in &message.rows {
                    let (Some(v), Some(seq)) = (row.v, row.seq) else {
                        bail!("an index row without v and _seq: {}", clip(&text));
                    };
                    seen.index.push((seq.0, write_of(v)));
                }
            }
        }
        counts[i].fetch_add(1, Ordering::Release);
    }
    ws.close().await;
    Ok(seen)
}
