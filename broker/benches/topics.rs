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

// Bench harness: a failed setup or measurement stops the run loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

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
#[path = "topics/tables.rs"]
mod tables;
#[allow(dead_code)]
#[path = "http_sql/workload.rs"]
mod workload;

use std::path::Path;
use std::time::Instant;

use common::{ConsumeRun, LatencyRun, Throughput};
use jetstream::NatsServer;
use plan::{Plan, BATCH, CONSUMERS_PARALLEL};
use report::{Figure, Measurement};
use strand_side::Strand;
use tables::{
    print_comparison, print_consume, print_header, print_latency, print_produce, targets,
    write_json, Row,
};

const STRAND: &str = "strand";
const JETSTREAM: &str = "jetstream";
const JETSTREAM_DURABILITY: &str = "default (sync/2min)";
const FSYNC_POLICIES: [&str; 2] = ["never", "always"];

/// One measured case, with what the tables need besides its figures.
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
