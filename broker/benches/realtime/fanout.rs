//! Workload 3, one write to many subscribers: `n` subscriptions of the unfiltered
//! `SELECT id, room, v FROM bench.fanout`, 256 per connection, on a fresh server; then single-row
//! INSERTs one at a time. For each, the time from sending it until every subscription has
//! received its change (each connection reports when its last one arrived), and until the
//! INSERT's HTTP answer. Every change is counted per subscription and id: a subscription that
//! gets a change twice fails the workload (DUPLICATE), one that never gets it too (LOST), and
//! `deliveries` is the count received. Afterwards all connections close at once, and the bench
//! reports how long the server stays busy removing the subscriptions (and the CPU time that
//! takes).

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use tokio::runtime::Runtime;
use tokio::sync::watch;

use crate::memory::SUBSCRIPTIONS_PER_CONNECTION;
use crate::report::{thousands, Figure, Measurement, Stats};
use crate::setup::{create_table_sql, Bench, CpuMeter};
use crate::ws::{connect_many, subscribe_many, Lite, Ws, MESSAGE_TIMEOUT};

/// Pause between two writes, so that each one's fan-out is timed alone.
const PAUSE: Duration = Duration::from_millis(300);

pub fn run(
    scratch: &Path,
    runtime: &Runtime,
    n: usize,
    writes: usize,
) -> anyhow::Result<Measurement> {
    let bench = Bench::start(scratch, "fanout")?;
    measure(&bench, runtime, n, writes).inspect_err(|_| bench.dump_stderr())
}

fn measure(
    bench: &Bench,
    runtime: &Runtime,
    n: usize,
    writes: usize,
) -> anyhow::Result<Measurement> {
    let table = "bench.fanout";
    bench.sql(&create_table_sql(table))?;
    let connections = n.div_ceil(SUBSCRIPTIONS_PER_CONNECTION);
    let subscribing = Instant::now();
    let sockets = runtime.block_on(connect_many(bench.server.http, &bench.token, connections))?;
    let lists: Vec<Vec<(String, String)>> = (0..connections)
        .map(|c| {
            let first = c * SUBSCRIPTIONS_PER_CONNECTION;
            let last = (first + SUBSCRIPTIONS_PER_CONNECTION).min(n);
            let sql = format!("SELECT id, room, v FROM {table}");
            (first..last)
                .map(|k| (format!("f{k}"), sql.clone()))
                .collect()
        })
        .collect();
    let counts: Vec<usize> = lists.iter().map(Vec::len).collect();
    let (sockets, _) = runtime.block_on(subscribe_many(sockets, lists, None))?;
    let subscribe_time = subscribing.elapsed();

    let (done, reports) = mpsc::channel();
    let (stop, stopped) = watch::channel(false);
    let tasks = spawn_counters(runtime, sockets, &counts, writes, &done, &stopped);
    let cpu = CpuMeter::start(bench);
    let (mut to_all, mut to_answer) = (Vec::new(), Vec::new());
    for id in 1..=writes as i64 {
        let sent = Instant::now();
        let rows = bench.sql(&format!(
            "INSERT INTO {table} (id, room, v) VALUES ({id}, 0, 0)"
        ))?;
        ensure!(rows == 1, "INSERT of id {id} wrote {rows} rows");
        to_answer.push(sent.elapsed().as_nanos() as u64);
        let mut last = sent;
        for _ in 0..connections {
            let (report_id, at) = reports.recv_timeout(MESSAGE_TIMEOUT).with_context(|| {
                format!("LOST: not every subscription received write {id} within the timeout")
            })?;
            ensure!(
                report_id == id,
                "connection reported id {report_id} during write {id}"
            );
            last = last.max(at);
        }
        to_all.push((last - sent).as_nanos() as u64);
        eprintln!("fanout write {id}: all received after {:?}", last - sent);
        // Also the time a late duplicate would have to arrive.
        std::thread::sleep(PAUSE);
    }
    let (client_cpu, server_cpu) = cpu.percent(bench);
    let _ = stop.send(true);
    let (mut sockets, mut deliveries) = (Vec::new(), 0);
    for task in tasks {
        let (ws, received) = runtime
            .block_on(task)
            .context("a counting task panicked")?
            .context("a subscriber connection failed")?;
        sockets.push(ws);
        deliveries += received;
    }
    let expected = (n * writes) as u64;
    ensure!(
        deliveries == expected,
        "LOST: {deliveries} deliveries counted, {expected} expected"
    );
    let (teardown, teardown_cpu) = close_all(bench, runtime, sockets);
    let all = Stats::of(to_all).context("no write")?;
    let answer = Stats::of(to_answer).context("no write")?;
    Ok(Measurement {
        key: format!("fanout_{n}"),
        workload: "one write to all subs",
        case: format!(
            "{} subs, no filter, {connections} conns, {writes} writes",
            thousands(n as i64)
        ),
        figures: vec![
            Figure::ms("all received p50", all.p50),
            Figure::ms("max", all.max),
            Figure::ms("INSERT answered p50", answer.p50),
            Figure::count("deliveries", deliveries),
            Figure::new("client cpu", client_cpu, "%"),
            Figure::new("server cpu", server_cpu, "%"),
            Figure::new("subscribe all", subscribe_time.as_secs_f64(), "s"),
            Figure::new("close all: server busy", teardown.as_secs_f64(), "s"),
            Figure::new("its cpu", teardown_cpu.as_secs_f64(), "s"),
        ],
    })
}

type CountingTask = tokio::task::JoinHandle<anyhow::Result<(Ws, u64)>>;

/// One [`count_changes`] task per connection; `counts[c]` subscriptions on connection `c`.
fn spawn_counters(
    runtime: &Runtime,
    sockets: Vec<Ws>,
    counts: &[usize],
    writes: usize,
    done: &mpsc::Sender<(i64, Instant)>,
    stopped: &watch::Receiver<bool>,
) -> Vec<CountingTask> {
    let mut first = 0;
    let mut tasks = Vec::new();
    for (ws, &count) in sockets.into_iter().zip(counts) {
        let counter = Counter {
            first,
            counts: vec![vec![0; writes]; count],
        };
        let task = count_changes(ws, counter, done.clone(), stopped.clone());
        tasks.push(runtime.spawn(task));
        first += count;
    }
    tasks
}

/// Close every connection (only after the last write: closes while changes are being sent
/// slow their delivery down); how long the server stays busy afterwards, and its CPU time.
fn close_all(bench: &Bench, runtime: &Runtime, sockets: Vec<Ws>) -> (Duration, Duration) {
    let (started, cpu_before) = (Instant::now(), bench.cpu_ns());
    runtime.block_on(async {
        for ws in sockets {
            ws.close().await;
        }
    });
    // Busy until its CPU time grows by less than 5 ms per 100 ms, three times in a row.
    let (mut last, mut busy_until, mut quiet) = (bench.cpu_ns(), Instant::now(), 0);
    while quiet < 3 && started.elapsed() < MESSAGE_TIMEOUT {
        std::thread::sleep(Duration::from_millis(100));
        let now = bench.cpu_ns();
        if now.saturating_sub(last) < 5_000_000 {
            quiet += 1;
        } else {
            (quiet, busy_until) = (0, Instant::now());
        }
        last = now;
    }
    let cpu = Duration::from_nanos(last.saturating_sub(cpu_before));
    (busy_until - started, cpu)
}

/// How many times each subscription of one connection (ids `f<first>`, `f<first + 1>`, ...)
/// received each id.
struct Counter {
    first: usize,
    /// `counts[k - first][id - 1]`.
    counts: Vec<Vec<u8>>,
}

/// Count the changes of ids `1..=writes` on one connection, per subscription, until told to
/// stop; report `(id, instant)` when its last subscription got that id. A second delivery of
/// an id to a subscription is an error. The socket stays open; returns it and the count.
async fn count_changes(
    mut ws: Ws,
    mut counter: Counter,
    done: mpsc::Sender<(i64, Instant)>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<(Ws, u64)> {
    let writes = counter.counts.first().map_or(0, Vec::len);
    let mut complete = vec![0usize; writes];
    let mut received = 0u64;
    loop {
        let text = tokio::select! {
            biased;
            _ = stop.changed() => break,
            text = ws.recv_text() => text?,
        };
        let lite = Lite::parse(&text)?;
        ensure!(
            lite.kind == "change",
            "expected a change: {}",
            crate::ws::clip(&text)
        );
        let id = lite.change_id()?;
        let subscription = lite.subscription_id.as_deref().unwrap_or_default();
        let count = subscription
            .strip_prefix('f')
            .and_then(|k| k.parse::<usize>().ok())
            .and_then(|k| k.checked_sub(counter.first))
            .and_then(|k| counter.counts.get_mut(k))
            .context("a change for a subscription of another connection")?;
        let slot = usize::try_from(id - 1)
            .ok()
            .and_then(|i| count.get_mut(i))
            .with_context(|| format!("a change for id {id}, never written"))?;
        *slot += 1;
        received += 1;
        if *slot > 1 {
            bail!("DUPLICATE: subscription {subscription} received id {id} twice");
        }
        let finished = &mut complete[(id - 1) as usize];
        *finished += 1;
        if *finished == counter.counts.len() {
            let _ = done.send((id, Instant::now()));
        }
    }
    Ok((ws, received))
}
