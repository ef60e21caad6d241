//! Workloads 4 and 5, snapshots. Subscribe-to-ready: on one connection, again and again, the
//! time from sending `subscribe` (batch_size 1000) of a 1,000-row table to its `ready` batch,
//! then `unsubscribe`. Snapshot rows/s: one subscription of a large table with batch_size
//! 10,000, paged through with `next_batch` (sent as soon as a batch says `has_more`, before the
//! client reads its rows) until `ready`; every id must arrive once.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use tokio::runtime::Runtime;

use crate::report::{thousands, Figure, Measurement, Stats};
use crate::setup::Bench;
use crate::ws::{clip, next_batch, subscribe, unsubscribe, Lite, Ws};

/// Subscribes before measuring (first use of the table, the connection, the caches).
const READY_WARM_UP: usize = 10;
/// Rows per batch of the large snapshot (the server's maximum).
const LARGE_BATCH_ROWS: u32 = 10_000;

/// A snapshot as the client received it.
struct Snapshot {
    rows: u64,
    id_sum: i64,
    batches: u64,
    bytes: u64,
}

/// Subscribe `id` to `sql` and page through its snapshot until `ready`.
async fn take_snapshot(ws: &mut Ws, id: &str, sql: &str, batch: u32) -> anyhow::Result<Snapshot> {
    ws.send(&subscribe(id, sql, Some(batch), None)).await?;
    let mut got = Snapshot {
        rows: 0,
        id_sum: 0,
        batches: 0,
        bytes: 0,
    };
    loop {
        let text = ws.recv_text().await?;
        got.bytes += text.len() as u64;
        // Ask for the next batch first: the server reads it while this one is decoded.
        let tail = &text[text.len().saturating_sub(200)..];
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
        got.id_sum += lite.rows.iter().map(|r| r.id.unwrap_or(0)).sum::<i64>();
        if !more {
            return Ok(got);
        }
    }
}

/// The sum of ids `1..=rows`: what a complete snapshot of a bulk-loaded table adds up to.
fn id_sum(rows: usize) -> i64 {
    let rows = rows as i64;
    rows * (rows + 1) / 2
}

pub fn subscribe_ready(
    bench: &Bench,
    runtime: &Runtime,
    table: &str,
    rows: usize,
    reps: usize,
) -> anyhow::Result<Measurement> {
    let sql = format!("SELECT id, room, v FROM {table}");
    let (samples, batches) = runtime.block_on(async {
        let mut ws = Ws::connect(bench.server.http, &bench.token).await?;
        let (mut samples, mut batches) = (Vec::new(), 0);
        for rep in 0..READY_WARM_UP + reps {
            let id = format!("ready{rep}");
            let started = Instant::now();
            let got = take_snapshot(&mut ws, &id, &sql, 1000).await?;
            let took = started.elapsed();
            ensure!(
                got.rows == rows as u64 && got.id_sum == id_sum(rows),
                "snapshot {id}: {} rows, expected {rows}",
                got.rows
            );
            ws.send(&unsubscribe(&id)).await?;
            if rep >= READY_WARM_UP {
                samples.push(took.as_nanos() as u64);
                batches += got.batches;
            }
        }
        ws.close().await;
        anyhow::Ok((samples, batches))
    })?;
    let stats = Stats::of(samples).context("no subscribe")?;
    let mut figures = stats.figures(false);
    figures.push(Figure::count("subscribes", stats.count as u64));
    figures.push(Figure::new(
        "batches each",
        batches as f64 / stats.count as f64,
        "",
    ));
    Ok(Measurement {
        key: "subscribe_ready_1000rows".into(),
        workload: "subscribe to ready",
        case: format!("{} rows, batch_size 1000", thousands(rows as i64)),
        figures,
    })
}

pub fn snapshot_rows(
    bench: &Bench,
    runtime: &Runtime,
    table: &str,
    rows: usize,
    load_time: Duration,
    runs: usize,
) -> anyhow::Result<Measurement> {
    let sql = format!("SELECT id, room, v FROM {table}");
    let mut rates = Vec::new();
    let mut last = None;
    for run in 0..runs {
        let (took, got) = runtime.block_on(async {
            let mut ws = Ws::connect(bench.server.http, &bench.token).await?;
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
        rates.push(rows as f64 / took.as_secs_f64());
        last = Some((took, got));
    }
    let (took, got) = last.context("no run")?;
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    Ok(Measurement {
        key: format!("snapshot_{rows}"),
        workload: "snapshot rows/s",
        case: format!(
            "{} rows, batch_size {}, {runs} run(s)",
            thousands(rows as i64),
            thousands(LARGE_BATCH_ROWS.into())
        ),
        figures: vec![
            Figure::new("median", median, "rows/s"),
            Figure::new("best", rates[rates.len() - 1], "rows/s"),
            Figure::ms("last run", took),
            Figure::count("batches", got.batches),
            Figure::new("received", got.bytes as f64 / (1 << 20) as f64, "MiB"),
            Figure::new("bulk load", rows as f64 / load_time.as_secs_f64(), "rows/s"),
        ],
    })
}
