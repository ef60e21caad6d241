//! Workload 3, one write to many subscribers: `n` subscriptions of the unfiltered
//! `SELECT id, room, v FROM bench.fanout`, 256 per connection, on a fresh server; then single-row
//! INSERTs one at a time. For each, the time from sending it until every subscription has
//! received its change (each connection reports when its last one arrived), and until the
//! INSERT's HTTP answer. Afterwards all connections close at once, and the bench reports how
//! long the server stays busy removing the subscriptions (and the CPU time that takes).

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use tokio::runtime::Runtime;

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
    let tasks: Vec<_> = sockets
        .into_iter()
        .zip(counts)
        .map(|(ws, count)| runtime.spawn(count_changes(ws, count, writes, done.clone())))
        .collect();
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
            let (report_id, at) = reports
                .recv_timeout(MESSAGE_TIMEOUT)
                .with_context(|| format!("not every subscriber received write {id}"))?;
            ensure!(
                report_id == id,
                "connection reported id {report_id} during write {id}"
            );
            last = last.max(at);
        }
        to_all.push((last - sent).as_nanos() as u64);
        eprintln!("fanout write {id}: all received after {:?}", last - sent);
        std::thread::sleep(PAUSE);
    }
    let (client_cpu, server_cpu) = cpu.percent(bench);
    let mut sockets = Vec::new();
    for task in tasks {
        let ws = runtime
            .block_on(task)
            .context("a counting task panicked")?
            .context("a subscriber connection failed")?;
        sockets.push(ws);
    }
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
            Figure::new("deliveries", (n * writes) as f64, ""),
            Figure::new("client cpu", client_cpu, "%"),
            Figure::new("server cpu", server_cpu, "%"),
            Figure::new("subscribe all", subscribe_time.as_secs_f64(), "s"),
            Figure::new("close all: server busy", teardown.as_secs_f64(), "s"),
            Figure::new("its cpu", teardown_cpu.as_secs_f64(), "s"),
        ],
    })
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

/// Count the changes of ids `1..=writes` on one connection of `subscriptions`; report
/// `(id, instant)` when the last subscription got that id's change. The socket stays open.
async fn count_changes(
    mut ws: Ws,
    subscriptions: usize,
    writes: usize,
    done: mpsc::Sender<(i64, Instant)>,
) -> anyhow::Result<Ws> {
    let mut counts = vec![0usize; writes];
    let mut finished = 0;
    while finished < writes {
        let text = ws.recv_text().await?;
        let lite = Lite::parse(&text)?;
        ensure!(
            lite.kind == "change",
            "expected a change: {}",
            crate::ws::clip(&text)
        );
        let id = lite.change_id()?;
        let slot = usize::try_from(id - 1)
            .ok()
            .and_then(|i| counts.get_mut(i))
            .with_context(|| format!("a change for id {id}, never written"))?;
        *slot += 1;
        ensure!(
            *slot <= subscriptions,
            "more changes for id {id} than subscriptions"
        );
        if *slot == subscriptions {
            finished += 1;
            let _ = done.send((id, Instant::now()));
        }
    }
    Ok(ws)
}
