//! `snapshot`'s case `points256`, point subscriptions (issue 17, defect 10): on a loaded
//! table, 256 subscriptions `WHERE id = k` (distinct k) over 16 connections at once, each
//! connection's subscribes pipelined; timed from the first `subscribe` until every snapshot is
//! `ready` (each holds its one row). Also the server's `RssAnon` growth (spawned servers) and
//! `strand_snapshot_rows_scanned_total` per subscription when the server has it. Before the
//! fix each snapshot read the whole partition's history.

use std::time::Instant;

use anyhow::ensure;
use tokio::runtime::Runtime;

use crate::proc::rss_anon_and_threads;
use crate::realtime::setup::Server;
use crate::realtime::ws::{connect_many, subscribe_many};
use crate::report::{Figure, Measurement};

/// Connections the subscriptions are spread over, and subscriptions per connection.
const CONNECTIONS: usize = 16;
const PER_CONNECTION: usize = 16;

/// Times the 256 point subscriptions on `table` (`rows` rows, ids `1..=rows`).
pub fn measure(
    server: &Server,
    runtime: &Runtime,
    table: &str,
    rows: usize,
) -> anyhow::Result<Measurement> {
    let pid = server.target.server_pid();
    let anon_before = pid.map(rss_anon_and_threads).transpose()?;
    let scanned_before = scanned(server)?;
    let total = CONNECTIONS * PER_CONNECTION;
    // Distinct ids spread over the table.
    let step = (rows / total).max(1);
    let lists: Vec<Vec<(String, String)>> = (0..CONNECTIONS)
        .map(|c| {
            (0..PER_CONNECTION)
                .map(|s| {
                    let id = ((c * PER_CONNECTION + s) * step) % rows.max(1) + 1;
                    let sql = format!("SELECT id, room, v FROM {table} WHERE id = {id}");
                    (format!("p{id}"), sql)
                })
                .collect()
        })
        .collect();
    let (took, received) = runtime.block_on(async {
        let sockets = connect_many(server.target.http, &server.token, CONNECTIONS).await?;
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
    let mut m = Measurement::new(
        "snapshot",
        "strand",
        &format!("points{total}"),
        &format!("{total} point subscriptions, {rows} rows"),
    )
    .durability(server.target.durability())
    .param("subscriptions", total)
    .param("connections", CONNECTIONS)
    .param("rows", rows);
    m.figures = vec![
        Figure::new("all_ready", took.as_secs_f64() * 1e3, "ms"),
        Figure::new(
            "per_subscription",
            took.as_secs_f64() * 1e3 / total as f64,
            "ms",
        ),
    ];
    if let (Some(pid), Some((before, _))) = (pid, anon_before) {
        let (after, _) = rss_anon_and_threads(pid)?;
        let growth = after.saturating_sub(before) as f64 / (1 << 20) as f64;
        m.figures
            .push(Figure::new("rss_anon_growth", growth, "MiB"));
    }
    if let (Some(before), Some(after)) = (scanned_before, scanned(server)?) {
        let each = after.saturating_sub(before) as f64 / total as f64;
        m.figures.push(Figure::new("records_read_each", each, ""));
    }
    Ok(m)
}

/// `strand_snapshot_rows_scanned_total`, if the server has it (older builds do not).
fn scanned(server: &Server) -> anyhow::Result<Option<u64>> {
    let text = server.target.metrics(&server.token)?;
    let name = "strand_snapshot_rows_scanned_total ";
    Ok(text
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|value| value.trim().parse().ok()))
}
