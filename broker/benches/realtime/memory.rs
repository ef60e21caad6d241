//! Workload 2, memory per idle subscription: on a fresh server with an empty table, the
//! server's `RssAnon` (anonymous resident memory, `/proc/<pid>/status`) before connecting,
//! after opening the connections (authenticated, nothing subscribed), after `n` idle
//! subscriptions with distinct filters `WHERE room = k` ([`SUBSCRIPTIONS_PER_CONNECTION`] per
//! connection), and after closing every connection. The all-in figure (connections included)
//! is the one held to the target: met when every rep meets it.
//!
//! The figure is the kernel's, not the allocator's: the server runs on mimalloc, which as
//! built here counts no live bytes, and whose committed figure only grows on Linux. What makes
//! `RssAnon` a measurement of what the subscriptions hold:
//! - mimalloc returns freed pages to the system only at its next allocation after a purge
//!   delay (1 s), so an idle server keeps what it freed, e.g. the argon2 blocks of the bench's
//!   logins, resident: that memory was in "before" and gone by "after", and 10,000
//!   subscriptions measured 0 B. This server runs with `MIMALLOC_PURGE_DELAY=0` (freed pages
//!   go back at once): what is resident is what is held;
//! - a warm-up batch (a tenth of `n`) is subscribed first and kept, so that one-time costs
//!   (each server thread's first heap pages, the feed's tables, the plan cache) are not
//!   charged to the measured subscriptions. Kept, not closed: mimalloc keeps the holes that
//!   freed objects leave in pages still in use, and the measured subscriptions would fill them
//!   unseen (a closed warm-up batch of 1,000 made 10,000 subscriptions measure 351 B each);
//! - the `n` subscriptions are added in two halves, each read at steady state: a cost that is
//!   really per subscription is about the same in both;
//! - every reading waits until `RssAnon` has stopped moving and the server's thread count with
//!   it, and the server's own heap figure (`strand_heap_in_use_bytes`) must then agree with
//!   `/proc`;
//! - still, a reading moves by a few MB with the threads the server starts and ends while
//!   connections come (a few hundred bytes per subscription at 10,000): each case runs on
//!   several fresh servers and reports the median, with the lowest and highest;
//! - what closing every subscription gives back is shown (mimalloc keeps part of it, in
//!   pages other objects still use).

use std::path::Path;
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;

use crate::report::{thousands, Figure, Measurement};
use crate::setup::{create_table_sql, Bench};
use crate::ws::{connect_many, subscribe_many, Ws};

/// Subscriptions per connection: the server's limit.
pub const SUBSCRIPTIONS_PER_CONNECTION: usize = 256;
/// Time between two readings while waiting for a steady `RssAnon`.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// Steady: this many consecutive readings (1 s)...
const STEADY_READINGS: usize = 5;
/// ...spread over at most this many bytes.
const STEADY_SPREAD_BYTES_MAX: u64 = 256 * 1024;
/// A reading that has not become steady by then is reported as such (and the target BROKEN).
const STEADY_TIMEOUT: Duration = Duration::from_secs(30);
/// At steady state the server's own heap figure and `/proc` agree within this.
const METRIC_DISAGREEMENT_BYTES_MAX: u64 = 1 << 20;
/// mimalloc's purge delay for the server of this workload: freed pages go back at once.
const SERVER_ENV: [(&str, &str); 1] = [("MIMALLOC_PURGE_DELAY", "0")];

/// `reps` fresh servers; the measurement whose all-in figure is the median, with the lowest
/// and highest beside it.
pub fn run(
    scratch: &Path,
    runtime: &Runtime,
    n: usize,
    reps: usize,
) -> anyhow::Result<Measurement> {
    let mut measured = Vec::new();
    for rep in 0..reps.max(1) {
        let bench = Bench::start_with_env(scratch, &format!("memory-{n}-{rep}"), &SERVER_ENV)?;
        measured.push(measure(&bench, runtime, n).inspect_err(|_| bench.dump_stderr())?);
    }
    let all_in = |m: &Measurement| m.figure("per sub all-in").unwrap_or(f64::NAN);
    let total = |name: &str| measured.iter().filter_map(|m| m.figure(name)).sum::<f64>();
    let (steady, readings) = (total("steady readings"), total("of"));
    measured.sort_by(|a, b| all_in(a).total_cmp(&all_in(b)));
    let (lowest, highest) = (all_in(&measured[0]), all_in(&measured[measured.len() - 1]));
    let mut median = measured.swap_remove(measured.len() / 2);
    // Steadiness counts over every rep.
    for figure in &mut median.figures {
        match figure.name {
            "steady readings" => figure.value = steady,
            "of" => figure.value = readings,
            _ => {}
        }
    }
    median.figures.extend([
        Figure::count("reps", reps.max(1) as u64),
        Figure::new("all-in min", lowest, "B"),
        Figure::new("all-in max", highest, "B"),
    ]);
    Ok(median)
}

/// A steady `RssAnon`, and whether it did become steady before the timeout.
#[derive(Clone, Copy)]
struct Reading {
    bytes: u64,
    steady: bool,
}

/// Wait for `RssAnon` to stop moving ([`STEADY_READINGS`] within [`STEADY_SPREAD_BYTES_MAX`],
/// and no thread started or ended meanwhile: a thread's stack and heap pages move it by
/// megabytes); then the server's own heap figure must agree with `/proc`, else it waits on.
/// Names the server's allocator.
fn steady_rss_anon(bench: &Bench, allocator: &mut String) -> anyhow::Result<Reading> {
    let started = Instant::now();
    let mut window: Vec<(u64, u64)> = Vec::new();
    let mut disagreement = None;
    loop {
        std::thread::sleep(SAMPLE_EVERY);
        window.push(bench.rss_anon_and_threads()?);
        if window.len() > STEADY_READINGS {
            window.remove(0);
        }
        let bytes = window.iter().map(|(bytes, _)| *bytes);
        let spread = bytes.clone().max().unwrap_or(0) - bytes.min().unwrap_or(0);
        let threads_changed = window.windows(2).any(|pair| pair[0].1 != pair[1].1);
        if window.len() == STEADY_READINGS && spread <= STEADY_SPREAD_BYTES_MAX && !threads_changed
        {
            let (name, metric) = bench.heap_metric()?;
            let (bytes, _) = bench.rss_anon_and_threads()?;
            *allocator = name;
            if bytes.abs_diff(metric) <= METRIC_DISAGREEMENT_BYTES_MAX {
                return Ok(Reading {
                    bytes,
                    steady: true,
                });
            }
            // It moved between the two reads: not steady after all.
            disagreement = Some(format!(
                "strand_heap_in_use_bytes said {metric} B, /proc RssAnon {bytes} B"
            ));
            window.clear();
        }
        if started.elapsed() > STEADY_TIMEOUT {
            eprintln!(
                "RssAnon not steady after {STEADY_TIMEOUT:?}: last (bytes, threads) {window:?}; \
                 {}",
                disagreement.as_deref().unwrap_or("")
            );
            let bytes = window.last().map_or(0, |(bytes, _)| *bytes);
            return Ok(Reading {
                bytes,
                steady: false,
            });
        }
    }
}

/// `count` subscription lists of distinct rooms from `first_room` on, one list per connection.
fn room_lists(table: &str, first_room: usize, count: usize) -> Vec<Vec<(String, String)>> {
    let rooms: Vec<usize> = (first_room..first_room + count).collect();
    rooms
        .chunks(SUBSCRIPTIONS_PER_CONNECTION)
        .map(|chunk| {
            chunk
                .iter()
                .map(|k| {
                    let sql = format!("SELECT id, room, v FROM {table} WHERE room = {k}");
                    (format!("m{k}"), sql)
                })
                .collect()
        })
        .collect()
}

fn close_all(runtime: &Runtime, sockets: Vec<Ws>) {
    runtime.block_on(async {
        for ws in sockets {
            ws.close().await;
        }
    });
}

/// Subscribe every list on a new connection; the sockets and the time the subscribes took.
fn subscribe_idle(
    bench: &Bench,
    runtime: &Runtime,
    lists: Vec<Vec<(String, String)>>,
) -> anyhow::Result<(Vec<Ws>, Duration)> {
    let sockets = runtime.block_on(connect_many(bench.server.http, &bench.token, lists.len()))?;
    let started = Instant::now();
    let (sockets, _) = runtime.block_on(subscribe_many(sockets, lists, None))?;
    Ok((sockets, started.elapsed()))
}

fn measure(bench: &Bench, runtime: &Runtime, n: usize) -> anyhow::Result<Measurement> {
    let table = "bench.idle";
    bench.sql(&create_table_sql(table))?;
    let mut allocator = String::new();
    let warm_up = (n / 10).max(SUBSCRIPTIONS_PER_CONNECTION);
    let (warm_sockets, _) = subscribe_idle(bench, runtime, room_lists(table, n, warm_up))?;

    let before = steady_rss_anon(bench, &mut allocator)?;
    let lists = room_lists(table, 0, n);
    let connections = lists.len();
    let mut sockets =
        runtime.block_on(connect_many(bench.server.http, &bench.token, connections))?;
    let connected = steady_rss_anon(bench, &mut allocator)?;
    // In two halves, each read at steady state: a cost that is really per subscription is
    // about the same in both.
    let half = connections / 2;
    let second_sockets = sockets.split_off(half);
    let mut first_lists = lists;
    let second_lists = first_lists.split_off(half);
    let first_count: usize = first_lists.iter().map(Vec::len).sum();
    let subscribing = Instant::now();
    let (mut sockets, _) = runtime.block_on(subscribe_many(sockets, first_lists, None))?;
    let mut subscribe_time = subscribing.elapsed();
    let halfway = steady_rss_anon(bench, &mut allocator)?;
    let subscribing = Instant::now();
    let (second_sockets, _) =
        runtime.block_on(subscribe_many(second_sockets, second_lists, None))?;
    subscribe_time += subscribing.elapsed();
    let after = steady_rss_anon(bench, &mut allocator)?;
    sockets.extend(second_sockets);
    sockets.extend(warm_sockets);
    close_all(runtime, sockets);
    let closed = steady_rss_anon(bench, &mut allocator)?;
    let readings = [before, connected, halfway, after, closed];

    // Signed: RssAnon falling while subscriptions were added must show as a negative figure
    // (and be refused), not be clamped to 0.
    let per = |from: Reading, to: Reading, count: usize| {
        (to.bytes as f64 - from.bytes as f64) / count.max(1) as f64
    };
    let steady = readings.iter().filter(|r| r.steady).count();
    Ok(Measurement {
        key: format!("memory_{n}"),
        workload: "memory per idle sub",
        case: format!(
            "{} subs, {connections} conns x {SUBSCRIPTIONS_PER_CONNECTION}, {allocator}",
            thousands(n as i64)
        ),
        figures: vec![
            Figure::new("per sub all-in", per(before, after, n), "B"),
            Figure::new("per sub w/o conns", per(connected, after, n), "B"),
            Figure::new("1st half", per(connected, halfway, first_count), "B"),
            Figure::new("2nd half", per(halfway, after, n - first_count), "B"),
            Figure::new("per conn", per(before, connected, connections), "B"),
            Figure::new(
                "given back on close per sub",
                per(closed, after, n + warm_up),
                "B",
            ),
            Figure::new("RssAnon before", before.bytes as f64 / 1024.0, "KiB"),
            Figure::new("RssAnon after", after.bytes as f64 / 1024.0, "KiB"),
            Figure::count("steady readings", steady as u64),
            Figure::count("of", readings.len() as u64),
            Figure::count("warm-up subs kept", warm_up as u64),
            Figure::new(
                "subscribe",
                n as f64 / subscribe_time.as_secs_f64(),
                "subs/s",
            ),
        ],
    })
}
