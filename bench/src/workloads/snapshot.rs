//! `strand-bench snapshot`: how fast a subscription's initial snapshot arrives.
//!
//! Three cases on one server per fsync policy:
//! - `rows<N>` (snapshot rows/s): one subscription of a bulk-loaded table of `--rows` rows with
//!   batch_size 10,000, paged through with `next_batch` (sent as soon as a batch says
//!   `has_more`, before the client reads its rows) until `ready`; every id must arrive once
//!   (the id sum is checked). `--runs` runs on new connections; the median run's throughput,
//!   with rows/s over each tenth of that run as its series.
//! - `ready<N>` (subscribe-to-ready): on one connection, again and again, the time from
//!   sending `subscribe` (batch_size 1000) of a `--ready-rows` table to its last batch, then
//!   `unsubscribe`; a latency histogram over the repetitions (after a warm-up).
//! - `points256` (point subscriptions): 256 subscriptions `WHERE id = k` (distinct k) over 16
//!   connections at once on a `--point-rows` table, timed until every snapshot is ready
//!   (`realtime/points.rs`).

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use clap::Args;

use crate::cli::Fsync;
use crate::latency::LatencyHistogram;
use crate::realtime::points;
use crate::realtime::setup::Server;
use crate::realtime::ws::{clip, next_batch, subscribe, unsubscribe, Lite, Ws};
use crate::report::{Figure, Measurement, SeriesPoint, Throughput};
use crate::run::Bench;

/// Options of `snapshot`.
#[derive(Args, Debug, Clone)]
pub struct SnapshotArgs {
    /// Rows of the large table whose snapshot is timed (quick: 10,000).
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: usize,
    /// Snapshots of the large table, each on a new connection; the median is reported
    /// (quick: 1).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Rows of the subscribe-to-ready table.
    #[arg(long, default_value_t = 1000)]
    pub ready_rows: usize,
    /// Subscribe-to-ready repetitions after a warm-up of 10 (quick: 20).
    #[arg(long, default_value_t = 200)]
    pub ready_reps: usize,
    /// Rows of the point-subscriptions table (quick: 5,000).
    #[arg(long, default_value_t = 200_000)]
    pub point_rows: usize,
}

/// Subscribes before measuring (first use of the table, the connection, the caches).
const READY_WARM_UP: usize = 10;
/// Rows per batch of the large snapshot (the server's maximum).
const LARGE_BATCH_ROWS: u32 = 10_000;
/// Rows per batch of the subscribe-to-ready snapshot.
const READY_BATCH_ROWS: u32 = 1000;
/// Intervals of a snapshot run's series.
const SERIES_POINTS: usize = 10;

pub fn run(bench: &mut Bench, args: &SnapshotArgs) -> anyhow::Result<()> {
    let mut args = args.clone();
    if bench.quick {
        args.rows = args.rows.min(10_000);
        args.runs = 1;
        args.ready_reps = args.ready_reps.min(20);
        args.point_rows = args.point_rows.min(5_000);
    }
    for fsync in bench.targets.fsync_policies(&[Fsync::Interval]) {
        let server = Server::open(bench, fsync)?;
        cases(bench, &server, &args).map_err(|e| server.explain(e))?;
    }
    Ok(())
}

fn cases(bench: &mut Bench, server: &Server, args: &SnapshotArgs) -> anyhow::Result<()> {
    let ready_table = server.table("ready");
    let hidden = indicatif::ProgressBar::hidden();
    server.create_and_load(&ready_table, args.ready_rows, 100, &hidden)?;
    let bar = bench
        .progress
        .counted("ready", (READY_WARM_UP + args.ready_reps) as u64);
    let m = subscribe_ready(
        bench,
        server,
        &ready_table,
        args.ready_rows,
        args.ready_reps,
    );
    bar.finish_and_clear();
    bench.push(m?);

    let big = server.table("big");
    let loading = bench.progress.counted("load", args.rows as u64);
    let load_time = server.create_and_load(&big, args.rows, 1000, &loading)?;
    loading.finish_and_clear();
    let _bar = bench.progress.counted("snapshot", args.runs as u64);
    let m = snapshot_rows(bench, server, &big, args.rows, load_time, args.runs)?;
    drop(_bar);
    bench.push(m);

    let points_table = server.table("points");
    let loading = bench.progress.counted("load", args.point_rows as u64);
    server.create_and_load(&points_table, args.point_rows, 1000, &loading)?;
    loading.finish_and_clear();
    let m = points::measure(server, &bench.runtime, &points_table, args.point_rows)?;
    bench.push(m);
    Ok(())
}

/// A snapshot as the client received it.
struct Snapshot {
    rows: u64,
    id_sum: i64,
    batches: u64,
    bytes: u64,
    /// When each batch arrived (since the subscribe was sent) and its rows.
    arrivals: Vec<(Duration, u64)>,
}

/// Subscribes `id` to `sql` and pages through its snapshot until `ready`.
async fn take_snapshot(ws: &mut Ws, id: &str, sql: &str, batch: u32) -> anyhow::Result<Snapshot> {
    let started = Instant::now();
    ws.send(&subscribe(id, sql, Some(batch), None)).await?;
    let mut got = Snapshot {
        rows: 0,
        id_sum: 0,
        batches: 0,
        bytes: 0,
        arrivals: Vec::new(),
    };
    loop {
        let text = ws.recv_text().await?;
        got.bytes += text.len() as u64;
        // Ask for the next batch first: the server reads it while this one is decoded.
        let mut tail_start = text.len().saturating_sub(200);
        while !text.is_char_boundary(tail_start) {
            tail_start += 1;
        }
        let tail = &text[tail_start..];
        let more = tail.contains(r#""has_more":true"#);
        if more {
            ws.send(&next_batch(id)).await?;
        }
        let lite = Lite::parse(&text)?;
        match lite.kind.as_ref() {
            "subscription_ack" => continue,
            "initial_data_batch" => {}
            other => bail!("unexpected {other} during a snapshot: {}", clip(&text)),
        }
        let control = lite
            .batch_control
            .context("a batch without batch_control")?;
        ensure!(
            control.has_more == more,
            "misread has_more in {}",
            clip(tail)
        );
        got.batches += 1;
        got.rows += lite.rows.len() as u64;
        got.arrivals
            .push((started.elapsed(), lite.rows.len() as u64));
        got.id_sum += lite.rows.iter().map(|r| r.id.unwrap_or(0)).sum::<i64>();
        if !more {
            return Ok(got);
        }
    }
}

/// Rows/s over each of [`SERIES_POINTS`] equal intervals of a run lasting `took`.
fn series(arrivals: &[(Duration, u64)], took: Duration) -> Vec<SeriesPoint> {
    let width = took.as_secs_f64().max(1e-9) / SERIES_POINTS as f64;
    let mut rows = [0u64; SERIES_POINTS];
    for (at, n) in arrivals {
        let slot = ((at.as_secs_f64() / width) as usize).min(SERIES_POINTS - 1);
        rows[slot] += n;
    }
    rows.iter()
        .enumerate()
        .map(|(i, &n)| SeriesPoint {
            t_s: width * (i + 1) as f64,
            records_per_s: n as f64 / width,
        })
        .collect()
}

/// The sum of ids `1..=rows`: what a complete snapshot of a bulk-loaded table adds up to.
fn id_sum(rows: usize) -> i64 {
    let rows = rows as i64;
    rows * (rows + 1) / 2
}

fn subscribe_ready(
    bench: &Bench,
    server: &Server,
    table: &str,
    rows: usize,
    reps: usize,
) -> anyhow::Result<Measurement> {
    let sql = format!("SELECT id, room, v FROM {table}");
    let (histogram, batches) = bench.runtime.block_on(async {
        let mut ws = Ws::connect(server.target.http, &server.token).await?;
        let (mut histogram, mut batches) = (LatencyHistogram::new(), 0);
        for rep in 0..READY_WARM_UP + reps {
            let id = format!("ready{rep}");
            let started = Instant::now();
            let got = take_snapshot(&mut ws, &id, &sql, READY_BATCH_ROWS).await?;
            let took = started.elapsed();
            ensure!(
                got.rows == rows as u64 && got.id_sum == id_sum(rows),
                "snapshot {id}: {} rows, expected {rows}",
                got.rows
            );
            ws.send(&unsubscribe(&id)).await?;
            if rep >= READY_WARM_UP {
                histogram.record(took);
                batches += got.batches;
            }
        }
        ws.close().await;
        anyhow::Ok((histogram, batches))
    })?;
    let count = histogram.count().max(1);
    let mut m = Measurement::new(
        "snapshot",
        "strand",
        &format!("ready{rows}"),
        &format!("subscribe to ready, {rows} rows"),
    )
    .durability(server.target.durability())
    .param("rows", rows)
    .param("batch_size", READY_BATCH_ROWS)
    .param("subscribes", reps)
    .param("warm_up_subscribes", READY_WARM_UP);
    m.latency = histogram.summary();
    m.figures.push(Figure::new(
        "batches_each",
        batches as f64 / count as f64,
        "",
    ));
    Ok(m)
}

fn snapshot_rows(
    bench: &Bench,
    server: &Server,
    table: &str,
    rows: usize,
    load_time: Duration,
    runs: usize,
) -> anyhow::Result<Measurement> {
    let sql = format!("SELECT id, room, v FROM {table}");
    let mut measured = Vec::new();
    for run in 0..runs.max(1) {
        let (took, got) = bench.runtime.block_on(async {
            let mut ws = Ws::connect(server.target.http, &server.token).await?;
            let started = Instant::now();
            let got = take_snapshot(&mut ws, &format!("big{run}"), &sql, LARGE_BATCH_ROWS).await?;
            let took = started.elapsed();
            ws.close().await;
            anyhow::Ok((took, got))
        })?;
        ensure!(
            got.rows == rows as u64 && got.id_sum == id_sum(rows),
            "snapshot of {table}: {} rows (id sum {}), expected {rows} (id sum {})",
            got.rows,
            got.id_sum,
            id_sum(rows)
        );
        measured.push((took, got));
    }
    measured.sort_by_key(|(took, _)| std::cmp::Reverse(*took));
    let best = rows as f64 / measured[measured.len() - 1].0.as_secs_f64().max(1e-9);
    let (took, got) = &measured[measured.len() / 2];
    let mut m = Measurement::new(
        "snapshot",
        "strand",
        &format!("rows{rows}"),
        &format!("snapshot of {rows} rows"),
    )
    .durability(server.target.durability())
    .param("rows", rows)
    .param("batch_size", LARGE_BATCH_ROWS)
    .param("runs", runs.max(1));
    m.throughput = Some(Throughput::of(rows as u64, got.bytes, *took));
    m.series = series(&got.arrivals, *took);
    m.figures = vec![
        Figure::new(
            "median_rows_per_s",
            rows as f64 / took.as_secs_f64().max(1e-9),
            "rows/s",
        ),
        Figure::new("best_rows_per_s", best, "rows/s"),
        Figure::new("median_run", took.as_secs_f64() * 1e3, "ms"),
        Figure::new("batches", got.batches as f64, ""),
        Figure::new(
            "bulk_load_rows_per_s",
            rows as f64 / load_time.as_secs_f64().max(1e-9),
            "rows/s",
        ),
    ];
    Ok(m)
}
