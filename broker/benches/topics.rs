//! `topics`: topics over QUIC against the release `strand` binary, in one run of
//! `cargo bench -p strand-broker --bench topics`, beside NATS JetStream when `nats-server` is
//! on PATH. Workloads (each Strand configuration on its own server: `--fsync <policy>`,
//! 127.0.0.1:0, fresh data directory):
//! 1. produce throughput: 100 B and 1 KiB values, batches of 1000 records per produce
//!    request, `--fsync never` and `always`, 1/4/16/64 producers (tasks, one QUIC connection
//!    each, one request in flight each) over a topic of 8 partitions (producer i writes
//!    partition i % 8); records acknowledged in a counted window after a warm-up;
//! 2. consume throughput: a topic of 8 partitions pre-filled (4M x 100 B, 1M x 1 KiB), read
//!    with `fetch` (10,000 records / 4 MiB per fetch) by one consumer going through the
//!    partitions in turn, and by 8 consumers (one per partition, own connections);
//! 3. produce-to-consume latency: one record per produce at 1,000/s for 10.5 s, a consumer
//!    long-polling on another connection; send time in the value, same clock.
//!
//! JetStream gets the same workloads (`topics/jetstream.rs`: file storage, publish acks,
//! pull consumers); its 2.9 server has no per-message fsync option, so it runs once, with its
//! default (data synced every 2 minutes), and is compared with Strand's `--fsync never`.
//! Client and servers share the machine's CPUs. It prints the results, the comparison, the
//! issue's targets with MET / NOT MET and writes JSON lines.
//!
//! Environment:
//! - `STRAND_BENCH_QUICK=1`: a smoke run (every workload, short windows, little data; also
//!   what runs without `--bench`).
//! - `STRAND_BENCH_ONLY=<text>`: only cases whose key contains the text, e.g. `produce_strand`,
//!   `never_100B`, `consume`, `latency`, `jetstream`.
//! - `STRAND_BENCH_DIR` (scratch, default `<target>/strand-bench`), `STRAND_BENCH_JSON`
//!   (default `<scratch>/topics.jsonl`, `topics-quick.jsonl` when quick),
//!   `STRAND_BENCH_BINARY` (another `strand` to measure).

#[path = "topics/common.rs"]
mod common;
#[allow(dead_code)]
#[path = "http_sql/http.rs"]
mod http;
#[allow(dead_code)]
#[path = "http_sql/report.rs"]
mod http_report;
#[path = "topics/jetstream.rs"]
mod jetstream;
#[path = "topics/plan.rs"]
mod plan;
#[allow(dead_code)]
#[path = "realtime/report.rs"]
mod report;
#[allow(dead_code)]
#[path = "http_sql/strand.rs"]
mod strand;
#[path = "topics/strand_side.rs"]
mod strand_side;
#[allow(dead_code)]
#[path = "http_sql/workload.rs"]
mod workload;

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::json;

use common::{ConsumeRun, LatencyRun, Throughput};
use jetstream::NatsServer;
use plan::{Plan, BATCH, CONSUMERS_PARALLEL, PARTITIONS};
use report::{Figure, Measurement, Target};
use strand_side::Strand;

const STRAND: &str = "strand";
const JETSTREAM: &str = "jetstream";
const JETSTREAM_DURABILITY: &str = "default (sync/2min)";
const FSYNC_POLICIES: [&str; 2] = ["never", "always"];

/// One measured case, with what the tables need besides its figures.
struct Row {
    system: &'static str,
    durability: String,
    workload: &'static str,
    value_bytes: usize,
    /// Producers or consumers; 1 for latency.
    clients: usize,
    measurement: Measurement,
}

impl Row {
    fn figure(&self, name: &str) -> Option<f64> {
        self.measurement.figure(name)
    }
}

fn main() -> anyhow::Result<()> {
    let plan = Plan::from_env();
    let root = plan::scratch_root();
    std::fs::create_dir_all(&root)?;
    let scratch = tempfile::Builder::new()
        .prefix("topics-")
        .tempdir_in(&root)?;
    let machine = http_report::Machine::probe(scratch.path());
    let nats_version = jetstream::installed_version();
    print_header(&machine, scratch.path(), &plan, nats_version.as_deref());
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(plan::CLIENT_THREADS)
        .enable_all()
        .build()?;
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    let mut attempt = |name: &str, outcome: anyhow::Result<Vec<Row>>| match outcome {
        Ok(measured) => {
            for row in &measured {
                eprintln!(
                    "done: {} ({:.1} s so far)",
                    row.measurement.key,
                    started.elapsed().as_secs_f64()
                );
            }
            rows.extend(measured);
        }
        Err(error) => {
            println!("FAILED: {name}: {error:#}");
            failures.push(format!("{name}: {error:#}"));
        }
    };
    for fsync in FSYNC_POLICIES {
        for &size in &plan.value_sizes {
            let prefix = format!("produce_strand_{fsync}_{size}B");
            if plan.wants(&prefix)
                || plan
                    .producers
                    .iter()
                    .any(|p| plan.wants(&format!("{prefix}_p{p}")))
            {
                attempt(
                    &prefix,
                    strand_produce(&plan, scratch.path(), &runtime, fsync, size),
                );
            }
        }
    }
    if plan
        .consume_records
        .iter()
        .any(|&(size, _)| plan.wants(&format!("consume_strand_{size}B")))
    {
        attempt(
            "consume_strand",
            strand_consume(&plan, scratch.path(), &runtime),
        );
    }
    for fsync in FSYNC_POLICIES {
        let key = format!("latency_strand_{fsync}");
        if plan.wants(&key) {
            attempt(&key, strand_latency(&plan, scratch.path(), &runtime, fsync));
        }
    }
    if nats_version.is_some() {
        for &size in &plan.value_sizes {
            let prefix = format!("produce_jetstream_{size}B");
            if plan.wants(&prefix)
                || plan
                    .producers
                    .iter()
                    .any(|p| plan.wants(&format!("{prefix}_p{p}")))
            {
                attempt(&prefix, js_produce(&plan, scratch.path(), &runtime, size));
            }
        }
        if plan
            .consume_records
            .iter()
            .any(|&(size, _)| plan.wants(&format!("consume_jetstream_{size}B")))
        {
            attempt(
                "consume_jetstream",
                js_consume(&plan, scratch.path(), &runtime),
            );
        }
        if plan.wants("latency_jetstream") {
            attempt(
                "latency_jetstream",
                js_latency(&plan, scratch.path(), &runtime),
            );
        }
    } else {
        println!("nats-server not installed: JetStream skipped (apt-get install nats-server)");
    }
    drop(runtime);
    println!();
    print_produce(&rows);
    println!();
    print_consume(&rows);
    println!();
    print_latency(&rows);
    println!();
    print_comparison(&rows);
    println!();
    let (targets, notes) = targets(&plan, &rows);
    report::print_targets(&targets, &notes);
    for failure in &failures {
        println!("FAILED: {failure}");
    }
    write_json(
        &plan,
        &machine,
        nats_version.as_deref(),
        &root,
        &rows,
        &targets,
    )?;
    println!("total time: {:.1} s", started.elapsed().as_secs_f64());
    anyhow::ensure!(failures.is_empty(), "{} workload(s) failed", failures.len());
    Ok(())
}

fn print_header(machine: &http_report::Machine, scratch: &Path, plan: &Plan, nats: Option<&str>) {
    let quick = match plan.quick {
        true => " (QUICK smoke run: short windows, little data)",
        false => "",
    };
    println!("strand-broker topics{quick}");
    println!(
        "machine: {} cpus, {}, {:.1} GiB RAM, kernel {}",
        machine.cpus, machine.cpu_model, machine.ram_gib, machine.kernel
    );
    println!("scratch: {} on {}", scratch.display(), machine.file_system);
    println!(
        "strand: {} serve --fsync never|always, 127.0.0.1, fresh data dir per produce case and for consume",
        strand::strand_binary().display()
    );
    match nats {
        Some(version) => println!(
            "jetstream: {version}, file storage, default sync (every 2 min; this version has \
             no per-message fsync option), fresh store per produce case and for consume"
        ),
        None => println!("jetstream: nats-server not installed"),
    }
    println!(
        "client: this process on the same {} cpus as the servers (they compete for them), \
         tokio with {} worker threads; one connection per producer/consumer",
        machine.cpus,
        plan::CLIENT_THREADS
    );
    println!(
        "produce: batches of {BATCH} records, one request in flight per producer, {PARTITIONS} \
         partitions (JetStream: {PARTITIONS} streams), warm-up {:.1} s, counted {:.1} s",
        plan.warm_up.as_secs_f64(),
        plan.measure.as_secs_f64()
    );
}

fn push_cpu(figures: &mut Vec<Figure>, cpu: common::CpuUse) {
    figures.push(Figure::new("server cpu", cpu.server, "%"));
    figures.push(Figure::new("client cpu", cpu.client, "%"));
    figures.push(Figure::new("other cpu", cpu.other, "%"));
    figures.push(Figure::count("udp drops", cpu.udp_drops));
}

fn produce_row(
    system: &'static str,
    durability: &str,
    key: String,
    size: usize,
    producers: usize,
    run: &Throughput,
) -> Row {
    let rate = run.per_s();
    let mut figures = vec![
        Figure::new("rate", rate, "rec/s"),
        Figure::new("throughput", rate * size as f64 / 1e6, "MB/s"),
    ];
    if let Some(request) = &run.request {
        figures.push(Figure::ms("request p50", request.p50));
        figures.push(Figure::ms("request p99", request.p99));
    }
    push_cpu(&mut figures, run.cpu);
    figures.push(Figure::count("records", run.records));
    Row {
        system,
        durability: durability.to_string(),
        workload: "produce",
        value_bytes: size,
        clients: producers,
        measurement: Measurement {
            key,
            workload: "produce",
            case: format!("{system} {durability}, {size} B values, {producers} producer(s), batches of {BATCH}"),
            figures,
        },
    }
}

fn consume_row(
    system: &'static str,
    key: String,
    size: usize,
    consumers: usize,
    run: &ConsumeRun,
    fill_per_s: f64,
) -> Row {
    let rate = run.per_s();
    let mut figures = vec![
        Figure::new("rate", rate, "rec/s"),
        Figure::new("throughput", rate * size as f64 / 1e6, "MB/s"),
        Figure::new("elapsed", run.elapsed.as_secs_f64(), "s"),
        Figure::count("records", run.records),
        Figure::new("fill rate", fill_per_s, "rec/s"),
    ];
    push_cpu(&mut figures, run.cpu);
    Row {
        system,
        durability: "-".into(),
        workload: "consume",
        value_bytes: size,
        clients: consumers,
        measurement: Measurement {
            key,
            workload: "consume",
            case: format!("{system}, {size} B values, {consumers} consumer(s)"),
            figures,
        },
    }
}

fn latency_row(
    system: &'static str,
    durability: &str,
    key: String,
    rate: u32,
    run: &LatencyRun,
) -> Row {
    let mut figures = run.stats.figures(true);
    figures.push(Figure::count("received", run.received as u64));
    figures.push(Figure::count("sent", run.sent as u64));
    figures.push(Figure::ms("max send lag", run.max_send_lag));
    push_cpu(&mut figures, run.cpu);
    Row {
        system,
        durability: durability.to_string(),
        workload: "latency",
        value_bytes: plan::LATENCY_VALUE_BYTES,
        clients: 1,
        measurement: Measurement {
            key,
            workload: "latency",
            case: format!("{system} {durability}, 1 record per produce at {rate}/s"),
            figures,
        },
    }
}

fn strand_produce(
    plan: &Plan,
    scratch: &Path,
    runtime: &tokio::runtime::Runtime,
    fsync: &str,
    size: usize,
) -> anyhow::Result<Vec<Row>> {
    let durability = format!("fsync={fsync}");
    let mut rows = Vec::new();
    for &producers in &plan.producers {
        let key = format!("produce_strand_{fsync}_{size}B_p{producers}");
        if !plan.wants(&key) {
            continue;
        }
        // A fresh server and data directory per case: see `js_produce`.
        let name = format!("produce-{fsync}-{size}-p{producers}");
        let strand = Strand::start(scratch, &name, fsync)?;
        let topic = format!("bench.p{producers}");
        let run = strand_side::produce(
            &strand,
            runtime,
            &topic,
            size,
            producers,
            BATCH,
            plan.warm_up,
            plan.measure,
        )
        .inspect_err(|_| eprintln!("strand stderr:\n{}", strand.stderr()))?;
        rows.push(produce_row(STRAND, &durability, key, size, producers, &run));
    }
    Ok(rows)
}

fn strand_consume(
    plan: &Plan,
    scratch: &Path,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<Vec<Row>> {
    let strand = Strand::start(scratch, "consume", "never")?;
    let mut rows = Vec::new();
    for &(size, records) in &plan.consume_records {
        if !plan.wants(&format!("consume_strand_{size}B")) {
            continue;
        }
        let topic = format!("bench.c{size}");
        let fill = strand_side::fill(&strand, runtime, &topic, size, records)
            .inspect_err(|_| eprintln!("strand stderr:\n{}", strand.stderr()))?;
        let fill_per_s = records as f64 / fill.as_secs_f64();
        for consumers in [1, CONSUMERS_PARALLEL] {
            let key = format!("consume_strand_{size}B_c{consumers}");
            let run = strand_side::consume(&strand, runtime, &topic, records, consumers)?;
            rows.push(consume_row(STRAND, key, size, consumers, &run, fill_per_s));
        }
    }
    Ok(rows)
}

fn strand_latency(
    plan: &Plan,
    scratch: &Path,
    runtime: &tokio::runtime::Runtime,
    fsync: &str,
) -> anyhow::Result<Vec<Row>> {
    let strand = Strand::start(scratch, &format!("latency-{fsync}"), fsync)?;
    let run = strand_side::latency(
        &strand,
        runtime,
        "bench.latency",
        plan.latency_rate,
        plan.latency_warm_up,
        plan.latency_measure,
    )
    .inspect_err(|_| eprintln!("strand stderr:\n{}", strand.stderr()))?;
    let key = format!("latency_strand_{fsync}");
    let durability = format!("fsync={fsync}");
    Ok(vec![latency_row(
        STRAND,
        &durability,
        key,
        plan.latency_rate,
        &run,
    )])
}

fn js_produce(
    plan: &Plan,
    scratch: &Path,
    runtime: &tokio::runtime::Runtime,
    size: usize,
) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for &producers in &plan.producers {
        let key = format!("produce_jetstream_{size}B_p{producers}");
        if !plan.wants(&key) {
            continue;
        }
        // A fresh server and store per case (both systems): a case must not inherit the
        // gigabytes of page cache the previous cases wrote. Measured on the 2-vCPU VM: run
        // after three other cases, Strand's 64-producer 1 KiB case spent 39 % of the CPU in
        // the kernel copying into new page-cache pages (5 % when run first) at half the rate.
        let dir = scratch.join(format!("jetstream-produce-{size}-p{producers}"));
        let nats = NatsServer::start(&dir)?;
        let prefix = format!("P{producers}");
        let run = jetstream::produce(
            &nats,
            runtime,
            &prefix,
            size,
            producers,
            BATCH,
            plan.warm_up,
            plan.measure,
        )
        .inspect_err(|_| eprintln!("nats-server stderr:\n{}", nats.stderr()))?;
        rows.push(produce_row(
            JETSTREAM,
            JETSTREAM_DURABILITY,
            key,
            size,
            producers,
            &run,
        ));
    }
    Ok(rows)
}

fn js_consume(
    plan: &Plan,
    scratch: &Path,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<Vec<Row>> {
    let nats = NatsServer::start(&scratch.join("jetstream-consume"))?;
    let mut rows = Vec::new();
    for &(size, records) in &plan.consume_records {
        if !plan.wants(&format!("consume_jetstream_{size}B")) {
            continue;
        }
        let prefix = format!("C{size}");
        let fill = jetstream::fill(&nats, runtime, &prefix, size, records)
            .inspect_err(|_| eprintln!("nats-server stderr:\n{}", nats.stderr()))?;
        let fill_per_s = records as f64 / fill.as_secs_f64();
        for consumers in [1, CONSUMERS_PARALLEL] {
            let key = format!("consume_jetstream_{size}B_c{consumers}");
            let run = jetstream::consume(&nats, runtime, &prefix, records, consumers)?;
            rows.push(consume_row(
                JETSTREAM, key, size, consumers, &run, fill_per_s,
            ));
        }
    }
    Ok(rows)
}

fn js_latency(
    plan: &Plan,
    scratch: &Path,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<Vec<Row>> {
    let nats = NatsServer::start(&scratch.join("jetstream-latency"))?;
    let run = jetstream::latency(
        &nats,
        runtime,
        "L",
        plan.latency_rate,
        plan.latency_warm_up,
        plan.latency_measure,
    )
    .inspect_err(|_| eprintln!("nats-server stderr:\n{}", nats.stderr()))?;
    let key = "latency_jetstream".to_string();
    Ok(vec![latency_row(
        JETSTREAM,
        JETSTREAM_DURABILITY,
        key,
        plan.latency_rate,
        &run,
    )])
}

fn text(value: Option<f64>, decimals: usize) -> String {
    value.map_or("-".into(), |v| match decimals {
        0 => report::thousands(v.round() as i64),
        d => format!("{v:.d$}"),
    })
}

fn print_produce(rows: &[Row]) {
    println!(
        "{:<10}{:<21}{:>7}{:>6}{:>12}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}{:>8}",
        "system",
        "durability",
        "value",
        "prod",
        "rec/s",
        "MB/s",
        "req p50",
        "req p99",
        "srv cpu",
        "cli cpu",
        "oth cpu",
        "drops"
    );
    println!("{}", "-".repeat(118));
    for row in rows.iter().filter(|r| r.workload == "produce") {
        println!(
            "{:<10}{:<21}{:>5} B{:>6}{:>12}{:>9}{:>9}{:>9}{:>7} %{:>7} %{:>7} %{:>8}",
            row.system,
            row.durability,
            row.value_bytes,
            row.clients,
            text(row.figure("rate"), 0),
            text(row.figure("throughput"), 1),
            text(row.figure("request p50"), 2),
            text(row.figure("request p99"), 2),
            text(row.figure("server cpu"), 0),
            text(row.figure("client cpu"), 0),
            text(row.figure("other cpu"), 0),
            text(row.figure("udp drops"), 0),
        );
    }
    println!(
        "(prod: producers, one connection each; req p50/p99: ms per produce request of {BATCH} \
         records, JetStream: per window of {BATCH} publishes\n until its last ack; MB/s: value \
         bytes only, 10^6; cpu: percent of one core over the counted window, oth: the rest \
         of the machine;\n drops: UDP datagrams dropped on full socket receive buffers in the window, \
         machine-wide)"
    );
}

fn print_consume(rows: &[Row]) {
    println!(
        "{:<10}{:>7}{:>6}{:>12}{:>9}{:>9}{:>9}{:>9}{:>9}{:>8}{:>12}",
        "system",
        "value",
        "cons",
        "rec/s",
        "MB/s",
        "secs",
        "srv cpu",
        "cli cpu",
        "oth cpu",
        "drops",
        "fill rec/s"
    );
    println!("{}", "-".repeat(100));
    for row in rows.iter().filter(|r| r.workload == "consume") {
        println!(
            "{:<10}{:>5} B{:>6}{:>12}{:>9}{:>9}{:>7} %{:>7} %{:>7} %{:>8}{:>12}",
            row.system,
            row.value_bytes,
            row.clients,
            text(row.figure("rate"), 0),
            text(row.figure("throughput"), 1),
            text(row.figure("elapsed"), 2),
            text(row.figure("server cpu"), 0),
            text(row.figure("client cpu"), 0),
            text(row.figure("other cpu"), 0),
            text(row.figure("udp drops"), 0),
            text(row.figure("fill rate"), 0),
        );
    }
    println!(
        "(cons: 1 = one consumer reading the {PARTITIONS} partitions/streams in turn; \
         {CONSUMERS_PARALLEL} = one per partition/stream, own connections; Strand fetches \
         {} records / {} MiB at most,\n JetStream pulls {} messages per request; the data \
         is in the page cache)",
        plan::FETCH_RECORDS_MAX,
        plan::FETCH_BYTES_MAX >> 20,
        jetstream::PULL_BATCH
    );
}

fn print_latency(rows: &[Row]) {
    println!(
        "{:<10}{:<21}{:>9}{:>9}{:>9}{:>9}{:>10}{:>10}{:>9}{:>9}{:>9}",
        "system",
        "durability",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms",
        "received",
        "lag ms",
        "srv cpu",
        "cli cpu",
        "oth cpu"
    );
    println!("{}", "-".repeat(114));
    for row in rows.iter().filter(|r| r.workload == "latency") {
        println!(
            "{:<10}{:<21}{:>9}{:>9}{:>9}{:>9}{:>10}{:>10}{:>7} %{:>7} %{:>7} %",
            row.system,
            row.durability,
            text(row.figure("p50"), 2),
            text(row.figure("p99"), 2),
            text(row.figure("p99.9"), 2),
            text(row.figure("max"), 2),
            text(row.figure("received"), 0),
            text(row.figure("max send lag"), 2),
            text(row.figure("server cpu"), 0),
            text(row.figure("client cpu"), 0),
            text(row.figure("other cpu"), 0),
        );
    }
    println!(
        "(one {} B record per produce / publish at a fixed rate; latency: consumer receipt - \
         send time, records sent after the warm-up; lag: the producer's worst delay behind \
         its schedule)",
        plan::LATENCY_VALUE_BYTES
    );
}

fn find<'a>(rows: &'a [Row], key: &str) -> Option<&'a Row> {
    rows.iter().find(|r| r.measurement.key == key)
}

fn rate_of(rows: &[Row], key: &str) -> Option<f64> {
    find(rows, key).and_then(|r| r.figure("rate"))
}

fn print_comparison(rows: &[Row]) {
    println!(
        "{:<28}{:>14}{:>14}{:>14}{:>11}{:>11}",
        "case (rec/s)", "strand never", "strand always", "jetstream", "never/js", "always/js"
    );
    println!("{}", "-".repeat(92));
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2} x", a / b),
        _ => "-".into(),
    };
    let mut cases: Vec<(usize, usize)> = rows
        .iter()
        .filter(|r| r.workload == "produce")
        .map(|r| (r.value_bytes, r.clients))
        .collect();
    cases.sort_unstable();
    cases.dedup();
    for (size, producers) in cases {
        let never = rate_of(rows, &format!("produce_strand_never_{size}B_p{producers}"));
        let always = rate_of(rows, &format!("produce_strand_always_{size}B_p{producers}"));
        let js = rate_of(rows, &format!("produce_jetstream_{size}B_p{producers}"));
        println!(
            "{:<28}{:>14}{:>14}{:>14}{:>11}{:>11}",
            format!("produce {size} B, {producers} prod"),
            text(never, 0),
            text(always, 0),
            text(js, 0),
            ratio(never, js),
            ratio(always, js)
        );
    }
    let mut consumes: Vec<(usize, usize)> = rows
        .iter()
        .filter(|r| r.workload == "consume")
        .map(|r| (r.value_bytes, r.clients))
        .collect();
    consumes.sort_unstable();
    consumes.dedup();
    for (size, consumers) in consumes {
        let strand = rate_of(rows, &format!("consume_strand_{size}B_c{consumers}"));
        let js = rate_of(rows, &format!("consume_jetstream_{size}B_c{consumers}"));
        println!(
            "{:<28}{:>14}{:>14}{:>14}{:>11}{:>11}",
            format!("consume {size} B, {consumers} cons"),
            text(strand, 0),
            "",
            text(js, 0),
            ratio(strand, js),
            ""
        );
    }
    println!(
        "(JetStream 2.9 syncs its files every 2 minutes and cannot be asked to sync each \
         write: its comparable Strand column is fsync=never)"
    );
}

/// The targets, from this run's figures; notes for those not checked.
fn targets(plan: &Plan, rows: &[Row]) -> (Vec<Target>, Vec<String>) {
    let (mut targets, mut notes) = (Vec::new(), Vec::new());
    let best = |prefix: &str, suffixes: Vec<String>| {
        suffixes
            .iter()
            .filter_map(|s| rate_of(rows, &format!("{prefix}{s}")).map(|r| (r, s.clone())))
            .max_by(|a, b| a.0.total_cmp(&b.0))
    };
    let producer_suffixes: Vec<String> = plan.producers.iter().map(|p| format!("_p{p}")).collect();
    match best("produce_strand_never_100B", producer_suffixes.clone()) {
        Some((rate, which)) => targets.push(Target {
            label: format!(
                "produce 100 B, fsync=never (best: {})",
                which.trim_start_matches('_')
            ),
            measured: rate / 1e6,
            required: 1.0,
            unit: "M rec/s",
            at_most: false,
        }),
        None => notes.push("produce 100 B fsync=never: not measured".into()),
    }
    let consumer_suffixes = vec!["_c1".to_string(), format!("_c{CONSUMERS_PARALLEL}")];
    match best("consume_strand_100B", consumer_suffixes.clone()) {
        Some((rate, which)) => targets.push(Target {
            label: format!("consume 100 B (best: {})", which.trim_start_matches('_')),
            measured: rate / 1e6,
            required: 2.0,
            unit: "M rec/s",
            at_most: false,
        }),
        None => notes.push("consume 100 B: not measured".into()),
    }
    for &size in &plan.value_sizes {
        for suffix in &producer_suffixes {
            let strand = rate_of(rows, &format!("produce_strand_never_{size}B{suffix}"));
            let js = rate_of(rows, &format!("produce_jetstream_{size}B{suffix}"));
            if let (Some(strand), Some(js)) = (strand, js) {
                targets.push(Target {
                    label: format!(
                        "produce {size} B {}: strand never / jetstream",
                        suffix.trim_start_matches('_')
                    ),
                    measured: strand / js,
                    required: 2.0,
                    unit: "x",
                    at_most: false,
                });
            }
        }
    }
    for &(size, _) in &plan.consume_records {
        for suffix in &consumer_suffixes {
            let strand = rate_of(rows, &format!("consume_strand_{size}B{suffix}"));
            let js = rate_of(rows, &format!("consume_jetstream_{size}B{suffix}"));
            if let (Some(strand), Some(js)) = (strand, js) {
                targets.push(Target {
                    label: format!(
                        "consume {size} B {}: strand / jetstream",
                        suffix.trim_start_matches('_')
                    ),
                    measured: strand / js,
                    required: 2.0,
                    unit: "x",
                    at_most: false,
                });
            }
        }
    }
    if !rows.iter().any(|r| r.system == JETSTREAM) {
        notes.push("JetStream comparison: not measured (nats-server missing or failed)".into());
    }
    notes.push(
        "comparable durability: JetStream 2.9's file store (fsync every 2 min, not \
         configurable in 2.9) against Strand --fsync never; Strand --fsync always is shown \
         beside it"
            .into(),
    );
    if plan.quick {
        notes.push(
            "QUICK run: short windows and little data; the targets are indicative only.".into(),
        );
    }
    (targets, notes)
}

fn write_json(
    plan: &Plan,
    machine: &http_report::Machine,
    nats_version: Option<&str>,
    root: &Path,
    rows: &[Row],
    targets: &[Target],
) -> anyhow::Result<()> {
    let path = std::env::var_os("STRAND_BENCH_JSON")
        .map(PathBuf::from)
        .unwrap_or_else(|| match plan.quick {
            true => root.join("topics-quick.jsonl"),
            false => root.join("topics.jsonl"),
        });
    let run = json!({
        "kind": "run",
        "quick": plan.quick,
        "cpus": machine.cpus,
        "cpu_model": machine.cpu_model,
        "ram_gib": machine.ram_gib,
        "kernel": machine.kernel,
        "file_system": machine.file_system,
        "client_shares_cpus_with_server": true,
        "batch_records": BATCH,
        "partitions": PARTITIONS,
        "nats_server": nats_version,
        "only": std::env::var("STRAND_BENCH_ONLY").unwrap_or_default(),
    });
    let measurements: Vec<Measurement> = rows.iter().map(|r| r.measurement.clone()).collect();
    report::write_json_of("topics", &path, run, &measurements, targets)?;
    println!("\nJSON lines: {}", path.display());
    Ok(())
}
