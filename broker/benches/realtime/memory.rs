//! Workload 2, memory per idle subscription: on a fresh server with an empty table, the
//! server's `RssAnon` (anonymous resident memory, `/proc/<pid>/status`) before connecting,
//! after opening the connections (authenticated, nothing subscribed) and after `n` idle
//! subscriptions with distinct filters `WHERE room = k`, [`SUBSCRIPTIONS_PER_CONNECTION`] per
//! connection. The all-in figure (connections included) is the one held to the target.

use std::path::Path;
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;

use crate::report::{thousands, Figure, Measurement};
use crate::setup::{create_table_sql, Bench};
use crate::ws::{connect_many, subscribe_many};

/// Subscriptions per connection: the server's limit.
pub const SUBSCRIPTIONS_PER_CONNECTION: usize = 256;
/// Pause before each reading, for the server's threads to finish what they were doing.
const SETTLE: Duration = Duration::from_millis(500);

pub fn run(scratch: &Path, runtime: &Runtime, n: usize) -> anyhow::Result<Measurement> {
    let bench = Bench::start(scratch, &format!("memory-{n}"))?;
    measure(&bench, runtime, n).inspect_err(|_| bench.dump_stderr())
}

fn measure(bench: &Bench, runtime: &Runtime, n: usize) -> anyhow::Result<Measurement> {
    let table = "bench.idle";
    bench.sql(&create_table_sql(table))?;
    let connections = n.div_ceil(SUBSCRIPTIONS_PER_CONNECTION);
    std::thread::sleep(SETTLE);
    let before = bench.rss_anon_bytes()?;
    let heap_before = bench.heap_in_use_bytes()?;
    let sockets = runtime.block_on(connect_many(bench.server.http, &bench.token, connections))?;
    std::thread::sleep(SETTLE);
    let connected = bench.rss_anon_bytes()?;
    let heap_connected = bench.heap_in_use_bytes()?;
    let lists: Vec<Vec<(String, String)>> = (0..connections)
        .map(|c| {
            let first = c * SUBSCRIPTIONS_PER_CONNECTION;
            let last = (first + SUBSCRIPTIONS_PER_CONNECTION).min(n);
            (first..last)
                .map(|k| {
                    let sql = format!("SELECT id, room, v FROM {table} WHERE room = {k}");
                    (format!("m{k}"), sql)
                })
                .collect()
        })
        .collect();
    let subscribing = Instant::now();
    let (sockets, _) = runtime.block_on(subscribe_many(sockets, lists, None))?;
    let subscribe_time = subscribing.elapsed();
    std::thread::sleep(SETTLE);
    let after = bench.rss_anon_bytes()?;
    let heap_after = bench.heap_in_use_bytes()?;
    runtime.block_on(async {
        for ws in sockets {
            ws.close().await;
        }
    });
    let per = |bytes: u64, count: usize| bytes as f64 / count.max(1) as f64;
    Ok(Measurement {
        key: format!("memory_{n}"),
        workload: "memory per idle sub",
        case: format!(
            "{} subs, {connections} conns x {SUBSCRIPTIONS_PER_CONNECTION}",
            thousands(n as i64)
        ),
        figures: vec![
            Figure::new("per sub all-in", per(after.saturating_sub(before), n), "B"),
            Figure::new(
                "heap per sub all-in",
                per(heap_after.saturating_sub(heap_before), n),
                "B",
            ),
            Figure::new(
                "heap per sub w/o conns",
                per(heap_after.saturating_sub(heap_connected), n),
                "B",
            ),
            Figure::new(
                "heap per conn",
                per(heap_connected.saturating_sub(heap_before), connections),
                "B",
            ),
            Figure::new(
                "per sub w/o conns",
                per(after.saturating_sub(connected), n),
                "B",
            ),
            Figure::new(
                "per conn",
                per(connected.saturating_sub(before), connections),
                "B",
            ),
            Figure::new("RssAnon before", before as f64 / 1024.0, "KiB"),
            Figure::new("RssAnon after", after as f64 / 1024.0, "KiB"),
            Figure::new(
                "subscribe",
                n as f64 / subscribe_time.as_secs_f64(),
                "subs/s",
            ),
        ],
    })
}
