//! `subscribe`'s memory cases, memory per idle subscription: on a fresh server with an empty table, the
//! server's `RssAnon` (anonymous resident memory, `/proc/<pid>/status`) before connecting,
//! after opening the connections (authenticated, nothing subscribed), after `n` idle
//! subscriptions with distinct filters `WHERE room = k` ([`SUBSCRIPTIONS_PER_CONNECTION`] per
//! connection), and after closing every connection. The all-in figure (connections included)
//! is `bytes_per_subscription`; `broken` is 1 when it cannot be a measurement.
//!
//! The figure is the kernel's, not the allocator's: the server runs on mimalloc, which as
//! built here counts no live bytes, and whose committed figure only grows on Linux. What makes
//! `RssAnon` a measurement of what the subscriptions hold:
//! - mimalloc returns freed pages to the system only at its next allocation after a purge
//!   delay (1 s), so an idle server keeps what it freed, e.g. the argon2 blocks of the bench's
//!   logins, resident: that memory was in "before" and gone by "after", and 10,000
//!   subscriptions measured 0 B. This server is spawned with `MIMALLOC_PURGE_DELAY=0` (freed pages
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
//!   several fresh servers (`--memory-reps`) and reports the median, with the lowest and
//!   highest;
//! - what closing every subscription gives back is shown (mimalloc keeps part of it, in
//!   pages other objects still use).

use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::runtime::Runtime;

use crate::cli::Fsync;
use crate::proc::rss_anon_and_threads;
use crate::realtime::setup::Server;
use crate::realtime::ws::{connect_many, subscribe_many, Ws};
use crate::report::{Figure, Measurement};
use crate::run::Bench;

/// Subscriptions per connection: the server's limit.
pub const SUBSCRIPTIONS_PER_CONNECTION: usize = 256;
/// Time between two readings while waiting for a steady `RssAnon` (quick runs: a fifth).
const SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// Steady: this many consecutive readings (1 s)...
const STEADY_READINGS: usize = 5;
/// ...spread over at most this many bytes.
const STEADY_SPREAD_BYTES_MAX: u64 = 256 * 1024;
/// A reading that has not become steady by then is reported as such (quick: 5 s).
const STEADY_TIMEOUT: Duration = Duration::from_secs(30);
/// At steady state the server's own heap figure and `/proc` agree within this.
const METRIC_DISAGREEMENT_BYTES_MAX: u64 = 1 << 20;
/// mimalloc's purge delay for the server of this workload: freed pages go back at once.
const PURGE_DELAY: (&str, &str) = ("MIMALLOC_PURGE_DELAY", "0");

/// `reps` fresh servers with `n` idle subscriptions each; pushes the measurement whose
/// all-in figure is the median, with the lowest and highest beside it. A figure no idle
/// subscription can have (or readings that never became steady) sets `broken`, and fails a
/// full run.
pub fn run(bench: &mut Bench, fsync: Option<Fsync>, n: usize, reps: usize) -> anyhow::Result<()> {
    if !bench.targets.spawns() {
        bench.note(format!(
            "subscribe memory{n}: skipped: it reads the server's /proc, so it needs a spawned server"
        ));
        return Ok(());
    }
    let mut measured = Vec::new();
    for _ in 0..reps.max(1) {
        let env = [(PURGE_DELAY.0.to_string(), PURGE_DELAY.1.to_string())];
        let target = bench.targets.open_with_env(fsync, &[], &env)?;
        let server = Server::on(target)?;
        let _bar = bench
            .progress
            .timed(&format!("memory{n}"), Duration::from_secs(12));
        let pace = Pace::new(bench.quick);
        let m = measure(&server, &bench.runtime, n, &pace).map_err(|e| server.explain(e))?;
        measured.push(m);
    }
    let all_in = |m: &Measurement| m.figure("bytes_per_subscription").unwrap_or(f64::NAN);
    let total = |name: &str| measured.iter().filter_map(|m| m.figure(name)).sum::<f64>();
    let (steady, readings) = (total("steady_readings"), total("readings"));
    measured.sort_by(|a, b| all_in(a).total_cmp(&all_in(b)));
    let (lowest, highest) = (all_in(&measured[0]), all_in(&measured[measured.len() - 1]));
    let without = measured[measured.len() / 2]
        .figure("bytes_per_subscription_without_connections")
        .unwrap_or(f64::NAN);
    let mut median = measured.swap_remove(measured.len() / 2);
    // Steadiness counts over every rep.
    for figure in &mut median.figures {
        match figure.name.as_str() {
            "steady_readings" => figure.value = steady,
            "readings" => figure.value = readings,
            _ => {}
        }
    }
    let broken = !(all_in(&median) > 0.0 && without > 0.0 && lowest > 0.0) || steady < readings;
    median.figures.extend([
        Figure::new("bytes_per_subscription_min", lowest, "B"),
        Figure::new("bytes_per_subscription_max", highest, "B"),
        Figure::new("broken", f64::from(u8::from(broken)), ""),
    ]);
    median = median.param("reps", reps.max(1));
    let summary = format!(
        "{:.0} B per subscription all-in (lowest of the reps {lowest:.0} B), {without:.0} B \
         without the connections, {steady:.0} of {readings:.0} readings steady",
        all_in(&median)
    );
    bench.push(median);
    // A quick run's few subscriptions are within what a reading moves by: only a figure.
    if broken && !bench.quick {
        anyhow::bail!("memory{n} BROKEN: {summary}: an idle subscription cannot cost nothing");
    }
    Ok(())
}

/// How readings wait for steadiness (quick runs sample faster and give up sooner).
struct Pace {
    sample_every: Duration,
    timeout: Duration,
}

impl Pace {
    fn new(quick: bool) -> Pace {
        match quick {
            true => Pace {
                sample_every: SAMPLE_EVERY / 5,
                timeout: STEADY_TIMEOUT / 6,
            },
            false => Pace {
                sample_every: SAMPLE_EVERY,
                timeout: STEADY_TIMEOUT,
            },
        }
    }
}

/// A steady `RssAnon`, and whether it did become steady before the timeout.
#[derive(Clone, Copy)]
struct Reading {
    bytes: u64,
    steady: bool,
}

/// Waits for `RssAnon` to stop moving ([`STEADY_READINGS`] within
/// [`STEADY_SPREAD_BYTES_MAX`], and no thread started or ended meanwhile: a thread's stack and
/// heap pages move it by megabytes); then the server's own heap figure must agree with
/// `/proc`, else it waits on. Names the server's allocator.
fn steady_rss_anon(
    server: &Server,
    pace: &Pace,
    allocator: &mut String,
) -> anyhow::Result<Reading> {
    let pid = server.target.server_pid().context("no server pid")?;
    let started = Instant::now();
    let mut window: Vec<(u64, u64)> = Vec::new();
    loop {
        std::thread::sleep(pace.sample_every);
        window.push(rss_anon_and_threads(pid)?);
        if window.len() > STEADY_READINGS {
            window.remove(0);
        }
        let bytes = window.iter().map(|(bytes, _)| *bytes);
        let spread = bytes.clone().max().unwrap_or(0) - bytes.min().unwrap_or(0);
        let threads_changed = window.windows(2).any(|pair| pair[0].1 != pair[1].1);
        if window.len() == STEADY_READINGS && spread <= STEADY_SPREAD_BYTES_MAX && !threads_changed
        {
            let (name, metric) = heap_metric(server)?;
            let (bytes, _) = rss_anon_and_threads(pid)?;
            *allocator = name;
            if bytes.abs_diff(metric) <= METRIC_DISAGREEMENT_BYTES_MAX {
                return Ok(Reading {
                    bytes,
                    steady: true,
                });
            }
            // It moved between the two reads: not steady after all.
            window.clear();
        }
        if started.elapsed() > pace.timeout {
            let bytes = window.last().map_or(0, |(bytes, _)| *bytes);
            return Ok(Reading {
                bytes,
                steady: false,
            });
        }
    }
}

/// The server's own heap figure (`strand_heap_in_use_bytes{allocator="..."}` of
/// `GET /metrics`): the allocator's name and the bytes.
fn heap_metric(server: &Server) -> anyhow::Result<(String, u64)> {
    let text = server.target.metrics(&server.token)?;
    let line = text
        .lines()
        .find_map(|line| line.strip_prefix("strand_heap_in_use_bytes{allocator=\""))
        .context("no strand_heap_in_use_bytes{allocator=...} in /metrics")?;
    let (allocator, rest) = line.split_once("\"}").context("bad heap metric line")?;
    let bytes = rest.trim().parse().context("bad heap metric value")?;
    Ok((allocator.to_string(), bytes))
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

/// Subscribes every list on a new connection; the sockets and the time the subscribes took.
fn subscribe_idle(
    server: &Server,
    runtime: &Runtime,
    lists: Vec<Vec<(String, String)>>,
) -> anyhow::Result<(Vec<Ws>, Duration)> {
    let (addr, token) = (server.target.http, &server.token);
    let sockets = runtime.block_on(connect_many(addr, token, lists.len()))?;
    let started = Instant::now();
    let (sockets, _) = runtime.block_on(subscribe_many(sockets, lists, None))?;
    Ok((sockets, started.elapsed()))
}

fn measure(
    server: &Server,
    runtime: &Runtime,
    n: usize,
    pace: &Pace,
) -> anyhow::Result<Measurement> {
    let table = server.table("idle");
    server.create_table(&table)?;
    let mut allocator = String::new();
    let warm_up = (n / 10).max(SUBSCRIPTIONS_PER_CONNECTION);
    let (warm_sockets, _) = subscribe_idle(server, runtime, room_lists(&table, n, warm_up))?;

    let before = steady_rss_anon(server, pace, &mut allocator)?;
    let lists = room_lists(&table, 0, n);
    let connections = lists.len();
    let (addr, token) = (server.target.http, &server.token);
    let mut sockets = runtime.block_on(connect_many(addr, token, connections))?;
    let connected = steady_rss_anon(server, pace, &mut allocator)?;
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
    let halfway = steady_rss_anon(server, pace, &mut allocator)?;
    let subscribing = Instant::now();
    let (second_sockets, _) =
        runtime.block_on(subscribe_many(second_sockets, second_lists, None))?;
    subscribe_time += subscribing.elapsed();
    let after = steady_rss_anon(server, pace, &mut allocator)?;
    sockets.extend(second_sockets);
    sockets.extend(warm_sockets);
    close_all(runtime, sockets);
    let closed = steady_rss_anon(server, pace, &mut allocator)?;
    let readings = [before, connected, halfway, after, closed];

    // Signed: RssAnon falling while subscriptions were added must show as a negative figure
    // (and be refused), not be clamped to 0.
    let per = |from: Reading, to: Reading, count: usize| {
        (to.bytes as f64 - from.bytes as f64) / count.max(1) as f64
    };
    let steady = readings.iter().filter(|r| r.steady).count();
    let mut m = Measurement::new(
        "subscribe",
        "strand",
        &format!("memory{n}"),
        &format!("memory of {n} idle subscriptions"),
    )
    .durability(server.target.durability())
    .param("subscriptions", n)
    .param("connections", connections)
    .param("allocator", allocator)
    .param("warm_up_subscriptions_kept", warm_up);
    m.figures = vec![
        Figure::new("bytes_per_subscription", per(before, after, n), "B"),
        Figure::new(
            "bytes_per_subscription_without_connections",
            per(connected, after, n),
            "B",
        ),
        Figure::new(
            "first_half_bytes_per_subscription",
            per(connected, halfway, first_count),
            "B",
        ),
        Figure::new(
            "second_half_bytes_per_subscription",
            per(halfway, after, n - first_count),
            "B",
        ),
        Figure::new(
            "bytes_per_connection",
            per(before, connected, connections),
            "B",
        ),
        Figure::new(
            "given_back_on_close_per_subscription",
            per(closed, after, n + warm_up),
            "B",
        ),
        Figure::new("rss_anon_before", before.bytes as f64 / 1024.0, "KiB"),
        Figure::new("rss_anon_after", after.bytes as f64 / 1024.0, "KiB"),
        Figure::new("steady_readings", steady as f64, ""),
        Figure::new("readings", readings.len() as f64, ""),
        Figure::new(
            "subscribes_per_s",
            n as f64 / subscribe_time.as_secs_f64().max(1e-9),
            "subs/s",
        ),
    ];
    Ok(m)
}
