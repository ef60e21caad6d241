//! `strand-bench fanout`: time for one write to reach every one of N subscribers.
//!
//! N subscriptions of the unfiltered `SELECT id, room, v FROM <table>`, 256 per WebSocket
//! connection, on a fresh server; then `--writes` single-row INSERTs one at a time, a pause
//! between them so each fan-out is timed alone. For each write: the time from sending it until
//! every subscription has received its change (each connection reports when its last one
//! arrived) and until the INSERT's HTTP answer; every delivery's own time goes into the
//! latency histogram (over subscribers and writes). Every change is counted per subscription
//! and id: a second delivery fails the case (DUPLICATE), so does one that never comes (LOST).
//! Afterwards all connections close at once, and the run reports how long the server stays
//! busy removing the subscriptions, and the CPU time that takes (spawned servers).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use clap::Args;
use tokio::sync::watch;

use crate::cli::Fsync;
use crate::latency::LatencyHistogram;
use crate::proc::CpuMeter;
use crate::realtime::memory::SUBSCRIPTIONS_PER_CONNECTION;
use crate::realtime::setup::Server;
use crate::realtime::ws::{clip, connect_many, subscribe_many, Lite, Ws, MESSAGE_TIMEOUT};
use crate::report::{Figure, Measurement};
use crate::run::Bench;

/// Options of `fanout`.
#[derive(Args, Debug, Clone)]
pub struct FanoutArgs {
    /// Subscriptions that every write reaches (quick: 1,000).
    #[arg(long, default_value_t = 100_000)]
    pub subscribers: usize,
    /// Writes, one at a time, each timed alone (quick: 3).
    #[arg(long, default_value_t = 5)]
    pub writes: usize,
}

/// Pause between two writes, so that each one's fan-out is timed alone (also the time a late
/// duplicate would have to arrive).
const PAUSE: Duration = Duration::from_millis(300);

pub fn run(bench: &mut Bench, args: &FanoutArgs) -> anyhow::Result<()> {
    let (n, writes) = match bench.quick {
        true => (args.subscribers.min(1000), args.writes.min(3)),
        false => (args.subscribers, args.writes),
    };
    for fsync in bench.targets.fsync_policies(&[Fsync::Interval]) {
        let server = Server::open(bench, fsync)?;
        let _bar = bench
            .progress
            .timed(&format!("fanout {n}"), PAUSE * writes as u32 * 4);
        let m = measure(&server, &bench.runtime, n, writes).map_err(|e| server.explain(e))?;
        drop(_bar);
        bench.push(m);
    }
    Ok(())
}

fn measure(
    server: &Server,
    runtime: &tokio::runtime::Runtime,
    n: usize,
    writes: usize,
) -> anyhow::Result<Measurement> {
    let table = server.table("fanout");
    server.create_table(&table)?;
    let connections = n.div_ceil(SUBSCRIPTIONS_PER_CONNECTION);
    let subscribing = Instant::now();
    let sockets = runtime.block_on(connect_many(server.target.http, &server.token, connections))?;
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

    let base = Instant::now();
    let sent_ns: Arc<Vec<AtomicU64>> = Arc::new((0..writes).map(|_| AtomicU64::new(0)).collect());
    let (done, reports) = mpsc::channel();
    let (stop, stopped) = watch::channel(false);
    let mut tasks = Vec::new();
    let mut first = 0;
    for (ws, &count) in sockets.into_iter().zip(&counts) {
        let counter = Counter {
            first,
            counts: vec![vec![0; writes]; count],
            base,
            sent_ns: sent_ns.clone(),
            histogram: LatencyHistogram::new(),
        };
        tasks.push(runtime.spawn(count_changes(ws, counter, done.clone(), stopped.clone())));
        first += count;
    }
    let cpu = CpuMeter::start(server.target.server_pid());
    let (mut to_all, mut to_answer) = (LatencyHistogram::new(), LatencyHistogram::new());
    let mut session = server.session()?;
    for id in 1..=writes as i64 {
        let sent = Instant::now();
        sent_ns[id as usize - 1].store(
            sent.duration_since(base).as_nanos().max(1) as u64,
            Ordering::Release,
        );
        let rows = session.execute(&format!(
            "INSERT INTO {table} (id, room, v) VALUES ({id}, 0, 0)"
        ))?;
        ensure!(rows == 1, "INSERT of id {id} wrote {rows} rows");
        to_answer.record(sent.elapsed());
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
        to_all.record(last - sent);
        std::thread::sleep(PAUSE);
    }
    let mut figures = Vec::new();
    cpu.figures(&mut figures);
    let _ = stop.send(true);
    let (mut sockets, mut deliveries, mut per_delivery) = (Vec::new(), 0, LatencyHistogram::new());
    for task in tasks {
        let (ws, counter, received) = runtime
            .block_on(task)
            .context("a counting task panicked")?
            .context("a subscriber connection failed")?;
        sockets.push(ws);
        deliveries += received;
        per_delivery.merge(&counter.histogram);
    }
    let expected = (n * writes) as u64;
    ensure!(
        deliveries == expected,
        "LOST: {deliveries} deliveries counted, {expected} expected"
    );
    let (to_all, to_answer) = (
        to_all.summary().context("no write")?,
        to_answer.summary().context("no write")?,
    );
    figures.extend([
        Figure::new("all_received_p50", to_all.p50_ms, "ms"),
        Figure::new("all_received_max", to_all.max_ms, "ms"),
        Figure::new("insert_answered_p50", to_answer.p50_ms, "ms"),
        Figure::new("deliveries", deliveries as f64, ""),
        Figure::new("lost", 0.0, ""),
        Figure::new("duplicate", 0.0, ""),
        Figure::new("subscribe_all", subscribe_time.as_secs_f64(), "s"),
    ]);
    if let Some((busy, busy_cpu)) = close_all(server, runtime, sockets) {
        figures.push(Figure::new(
            "close_all_server_busy",
            busy.as_secs_f64(),
            "s",
        ));
        figures.push(Figure::new(
            "close_all_server_cpu",
            busy_cpu.as_secs_f64(),
            "s",
        ));
    }
    let mut m = Measurement::new(
        "fanout",
        "strand",
        &format!("subs{n}"),
        &format!("1 write to {n} unfiltered subscriptions"),
    )
    .durability(server.target.durability())
    .param("subscribers", n)
    .param("connections", connections)
    .param("writes", writes);
    m.latency = per_delivery.summary();
    m.figures = figures;
    Ok(m)
}

/// Closes every connection (only after the last write: closes while changes are being sent
/// slow their delivery down); how long the server stays busy afterwards, and its CPU time
/// (`None` when the server is not this tool's child).
fn close_all(
    server: &Server,
    runtime: &tokio::runtime::Runtime,
    sockets: Vec<Ws>,
) -> Option<(Duration, Duration)> {
    let (started, cpu_before) = (Instant::now(), server.cpu_ns());
    runtime.block_on(async {
        for ws in sockets {
            ws.close().await;
        }
    });
    let cpu_before = cpu_before?;
    // Busy until its CPU time grows by less than 5 ms per 100 ms, three times in a row.
    let (mut last, mut busy_until, mut quiet) = (server.cpu_ns()?, Instant::now(), 0);
    while quiet < 3 && started.elapsed() < MESSAGE_TIMEOUT {
        std::thread::sleep(Duration::from_millis(100));
        let now = server.cpu_ns()?;
        if now.saturating_sub(last) < 5_000_000 {
            quiet += 1;
        } else {
            (quiet, busy_until) = (0, Instant::now());
        }
        last = now;
    }
    Some((
        busy_until - started,
        Duration::from_nanos(last.saturating_sub(cpu_before)),
    ))
}

/// How many times each subscription of one connection (ids `f<first>`, `f<first + 1>`, ...)
/// received each id, and each delivery's time from its INSERT being sent.
struct Counter {
    first: usize,
    /// `counts[k - first][id - 1]`.
    counts: Vec<Vec<u8>>,
    base: Instant,
    /// Send time of write `id` in ns since `base`.
    sent_ns: Arc<Vec<AtomicU64>>,
    histogram: LatencyHistogram,
}

/// Counts the changes of ids `1..=writes` on one connection, per subscription, until told to
/// stop; reports `(id, instant)` when its last subscription got that id. A second delivery of
/// an id to a subscription is an error. The socket stays open; returns it, the counter and
/// the count.
async fn count_changes(
    mut ws: Ws,
    mut counter: Counter,
    done: mpsc::Sender<(i64, Instant)>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<(Ws, Counter, u64)> {
    let writes = counter.counts.first().map_or(0, Vec::len);
    let mut complete = vec![0usize; writes];
    let mut received = 0u64;
    loop {
        let text = tokio::select! {
            biased;
            _ = stop.changed() => break,
            text = ws.recv_text() => text?,
        };
        let now = Instant::now();
        let lite = Lite::parse(&text)?;
        ensure!(lite.kind == "change", "expected a change: {}", clip(&text));
        let id = lite.change_id()?;
        let subscription = lite.subscription_id.as_deref().unwrap_or_default();
        let first = counter.first;
        let count = subscription
            .strip_prefix('f')
            .and_then(|k| k.parse::<usize>().ok())
            .and_then(|k| k.checked_sub(first))
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
        let sent = counter.sent_ns[(id - 1) as usize].load(Ordering::Acquire);
        let latency = now.duration_since(counter.base).as_nanos() as u64;
        counter
            .histogram
            .record(Duration::from_nanos(latency.saturating_sub(sent)));
        let finished = &mut complete[(id - 1) as usize];
        *finished += 1;
        if *finished == counter.counts.len() {
            let _ = done.send((id, now));
        }
    }
    Ok((ws, counter, received))
}
