//! Workload 7, point subscriptions (issue 17, defect 10): a table of 200,000 rows (50,000 in
//! quick runs), then 256 subscriptions `WHERE id = k` (distinct k) over 16 connections at once,
//! each connection's subscribes pipelined; timed from the first `subscribe` until every
//! snapshot is `ready` (each holds its one row). Also the server's `RssAnon` before and after,
//! and `strand_snapshot_rows_scanned_total` when the server has it (the log records the
//! snapshots read). Before the fix each snapshot read the whole partition's history.

use std::time::Instant;

use anyhow::{ensure, Context};
use tokio::runtime::Runtime;

use crate::report::{thousands, Figure, Measurement};
use crate::setup::Bench;
use crate::ws::{connect_many, subscribe_many};

/// Connections the subscriptions are spread over, and subscriptions per connection.
const CONNECTIONS: usize = 16;
const PER_CONNECTION: usize = 16;

pub fn run(
    scratch: &std::path::Path,
    runtime: &Runtime,
    rows: usize,
) -> anyhow::Result<Measurement> {
    let bench = Bench::start(scratch, "points")?;
    let outcome = measure(&bench, runtime, rows);
    outcome.inspect_err(|_| bench.dump_stderr())
}

fn measure(bench: &Bench, runtime: &Runtime, rows: usize) -> anyhow::Result<Measurement> {
    eprintln!("loading {rows} rows into bench.points");
    bench.create_and_load("bench.points", rows, 1000)?;
    let (anon_before, _) = bench.rss_anon_and_threads()?;
    let scanned_before = scanned(bench)?;
    let total = CONNECTIONS * PER_CONNECTION;
    // Distinct ids spread over the table.
    let step = (rows / total).max(1);
    let lists: Vec<Vec<(String, String)>> = (0..CONNECTIONS)
        .map(|c| {
            (0..PER_CONNECTION)
                .map(|s| {
                    let id = ((c * PER_CONNECTION + s) * step) % rows + 1;
                    let sql = format!("SELECT id, room, v FROM bench.points WHERE id = {id}");
                    (format!("p{id}"), sql)
                })
                .collect()
        })
        .collect();
    let (took, received) = runtime.block_on(async {
        let sockets = connect_many(bench.server.http, &bench.token, CONNECTIONS).await?;
        let started = Instant::now();
        let (sockets, received) = subscribe_many(sockets, lists, None).await?;
        let took = started.elapsed();
        for ws in sockets {
            ws.close().await;
        }
        anyhow::Ok((took, received))
    })?;
    ensure!(
        received == total as u64,
        "{total} point snapshots sent {received} rows"
    );
    let (anon_after, _) = bench.rss_anon_and_threads()?;
    let mut figures = vec![
        Figure::ms("all ready", took),
        Figure::new(
            "per subscription",
            took.as_secs_f64() * 1e3 / total as f64,
            "ms",
        ),
        Figure::new(
            "RssAnon growth",
            anon_after.saturating_sub(anon_before) as f64 / (1 << 20) as f64,
            "MiB",
        ),
    ];
    if let (Some(before), Some(after)) = (scanned_before, scanned(bench)?) {
        figures.push(Figure::new(
            "records read each",
            after.saturating_sub(before) as f64 / total as f64,
            "",
        ));
    }
    Ok(Measurement {
        key: format!("point_subscribe_{rows}"),
        workload: "point subscriptions",
        case: format!(
            "{total} x WHERE id = k, {CONNECTIONS} connections, {} rows",
            thousands(rows as i64)
        ),
        figures,
    })
}

/// `strand_snapshot_rows_scanned_total`, if the server has it (older builds do not).
fn scanned(bench: &Bench) -> anyhow::Result<Option<u64>> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(bench.server.http).context("connect")?;
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")?;
    let mut text = String::new();
    stream.read_to_string(&mut text).context("read /metrics")?;
    let name = "strand_snapshot_rows_scanned_total ";
    Ok(text
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|value| value.trim().parse().ok()))
}
