//! `realtime`: subscriptions over real WebSockets against the release `strand` binary, in one
//! run of `cargo bench -p strand-broker --bench realtime`. Every server runs with
//! `--fsync interval` on 127.0.0.1:0 with a fresh data directory (`http_sql`'s `StrandServer`);
//! tables are SHARED, `(id BIGINT PRIMARY KEY, room INT, v INT)`. Workloads:
//! 1. write-to-client latency at 1,000 writes/s with 1k and 10k subscribers (`latency.rs`);
//! 2. server memory per idle subscription at 10k and 100k (`memory.rs`);
//! 3. time for one write to reach 100k subscribers (`fanout.rs`);
//! 4. subscribe-to-ready of a 1,000-row table, 5. snapshot rows/s of 1M rows (`snapshot.rs`);
//! 6. resume of 100 missed changes with 10k and 1M rows in the table (`resume.rs`).
//!
//! It prints the machine, a results table, the targets with MET / NOT MET, and writes
//! JSON lines. A workload that fails (an error, a lost change, a timeout) is reported as
//! FAILED with the server's stderr; the others still run, and the run exits non-zero.
//!
//! Environment:
//! - `STRAND_BENCH_QUICK=1`: a smoke run with smaller N (also what runs without `--bench`).
//! - `STRAND_BENCH_ONLY=<text>`: only the cases whose key contains the text: `latency_1000`,
//!   `latency_10000`, `memory_10000`, `memory_100000`, `fanout`, `subscribe_ready`,
//!   `snapshot`, `resume` (quick runs use smaller numbers in the keys).
//! - `STRAND_BENCH_DIR` (scratch, default `<target>/strand-bench`), `STRAND_BENCH_JSON`
//!   (default `<scratch>/realtime.jsonl`, `realtime-quick.jsonl` when quick),
//!   `STRAND_BENCH_BINARY` (another `strand` to measure).

#[path = "realtime/fanout.rs"]
mod fanout;
#[allow(dead_code)]
#[path = "http_sql/http.rs"]
mod http;
#[allow(dead_code)]
#[path = "http_sql/report.rs"]
mod http_report;
#[path = "realtime/latency.rs"]
mod latency;
#[path = "realtime/memory.rs"]
mod memory;
#[path = "realtime/plan.rs"]
mod plan;
#[path = "realtime/report.rs"]
mod report;
#[path = "realtime/resume.rs"]
mod resume;
#[path = "realtime/setup.rs"]
mod setup;
#[path = "realtime/snapshot.rs"]
mod snapshot;
#[allow(dead_code)]
#[path = "http_sql/strand.rs"]
mod strand;
#[allow(dead_code)]
#[path = "http_sql/workload.rs"]
mod workload;
#[path = "realtime/ws.rs"]
mod ws;

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::json;

use plan::Plan;
use report::{Measurement, Target};
use setup::Bench;

fn main() -> anyhow::Result<()> {
    let plan = Plan::from_env();
    let root = plan::scratch_root();
    std::fs::create_dir_all(&root)?;
    let scratch = tempfile::Builder::new()
        .prefix("realtime-")
        .tempdir_in(&root)?;
    let machine = http_report::Machine::probe(scratch.path());
    print_header(&machine, scratch.path(), &plan);
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(plan::CLIENT_THREADS)
        .enable_all()
        .build()?;
    let mut results = Vec::new();
    let mut failures = Vec::new();
    let mut attempt = |name: &str, outcome: anyhow::Result<Vec<Measurement>>| match outcome {
        Ok(measured) => {
            for m in &measured {
                eprintln!(
                    "done: {} ({:.1} s so far)",
                    m.key,
                    started.elapsed().as_secs_f64()
                );
            }
            results.extend(measured);
        }
        Err(error) => {
            println!("FAILED: {name}: {error:#}");
            failures.push(format!("{name}: {error:#}"));
        }
    };
    if plan.wants_any(&plan.latency_keys()) {
        attempt("latency", run_latency(&plan, scratch.path(), &runtime));
    }
    for &n in &plan.memory_subscriptions {
        if plan.wants(&format!("memory_{n}")) {
            let outcome = memory::run(scratch.path(), &runtime, n).map(|m| vec![m]);
            attempt(&format!("memory_{n}"), outcome);
        }
    }
    if plan.wants(&format!("fanout_{}", plan.fanout_subscriptions)) {
        let outcome = fanout::run(
            scratch.path(),
            &runtime,
            plan.fanout_subscriptions,
            plan.fanout_writes,
        );
        attempt("fanout", outcome.map(|m| vec![m]));
    }
    if plan.wants_any(&["subscribe_ready", "snapshot", "resume"]) {
        attempt("data", run_data(&plan, scratch.path(), &runtime));
    }
    drop(runtime);
    println!();
    report::print_measurements(&results);
    println!();
    let (targets, notes) = targets(&plan, &results);
    report::print_targets(&targets, &notes);
    for failure in &failures {
        println!("FAILED: {failure}");
    }
    write_json(&plan, &machine, &root, &results, &targets)?;
    println!("total time: {:.1} s", started.elapsed().as_secs_f64());
    anyhow::ensure!(failures.is_empty(), "{} workload(s) failed", failures.len());
    Ok(())
}

fn print_header(machine: &http_report::Machine, scratch: &Path, plan: &Plan) {
    let quick = if plan.quick {
        " (QUICK smoke run: smaller N)"
    } else {
        ""
    };
    println!("strand-broker realtime{quick}");
    println!(
        "machine: {} cpus, {}, {:.1} GiB RAM, kernel {}",
        machine.cpus, machine.cpu_model, machine.ram_gib, machine.kernel
    );
    println!("scratch: {} on {}", scratch.display(), machine.file_system);
    println!(
        "strand: {} serve --fsync {} (every server), 127.0.0.1, fresh data dir",
        strand::strand_binary().display(),
        setup::FSYNC
    );
    println!(
        "client: this process on the same {} cpus as the server (they compete for them); \
         WebSockets: tokio-tungstenite on {} runtime threads, Bearer token on the upgrade; \
         writes: HTTP keep-alive threads",
        machine.cpus,
        plan::CLIENT_THREADS
    );
}

/// Workload 1 on one server, a table per subscriber count.
fn run_latency(
    plan: &Plan,
    scratch: &Path,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<Vec<Measurement>> {
    let bench = Bench::start(scratch, "latency")?;
    let mut results = Vec::new();
    for &n in &plan.latency_subscribers {
        if plan.wants(&format!("latency_{n}")) {
            let measured = latency::run(&bench, runtime, n, &plan.latency);
            results.push(measured.inspect_err(|_| bench.dump_stderr())?);
        }
    }
    Ok(results)
}

/// Workloads 4-6 on one server: a 1,000-row table, a large table (snapshot; the large side
/// of resume) and a small one (the small side of resume).
fn run_data(
    plan: &Plan,
    scratch: &Path,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<Vec<Measurement>> {
    let bench = Bench::start(scratch, "data")?;
    let outcome = data_workloads(plan, &bench, runtime);
    outcome.inspect_err(|_| bench.dump_stderr())
}

fn data_workloads(
    plan: &Plan,
    bench: &Bench,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<Vec<Measurement>> {
    let mut results = Vec::new();
    if plan.wants("subscribe_ready") {
        bench.create_and_load("bench.ready", plan.ready_rows, 100)?;
        let reps = plan.ready_reps;
        let m = snapshot::subscribe_ready(bench, runtime, "bench.ready", plan.ready_rows, reps)?;
        results.push(m);
    }
    if !plan.wants_any(&["snapshot", "resume"]) {
        return Ok(results);
    }
    let big = plan.big_rows;
    eprintln!("loading {big} rows into bench.big");
    let load_time = bench.create_and_load("bench.big", big, 1000)?;
    if plan.wants("snapshot") {
        let runs = plan.snapshot_runs;
        results.push(snapshot::snapshot_rows(
            bench,
            runtime,
            "bench.big",
            big,
            load_time,
            runs,
        )?);
    }
    if plan.wants("resume") {
        let small = plan.resume_small_rows;
        bench.create_and_load("bench.small", small, 1000)?;
        let tables = [
            resume::Sized {
                table: "bench.small".into(),
                rows: small,
            },
            resume::Sized {
                table: "bench.big".into(),
                rows: big,
            },
        ];
        results.extend(resume::run(bench, runtime, &tables, plan.resume_reps)?);
    }
    Ok(results)
}

fn find<'a>(results: &'a [Measurement], key: &str) -> Option<&'a Measurement> {
    results.iter().find(|m| m.key == key)
}

/// The targets, from this run's figures; notes for those not checked.
fn targets(plan: &Plan, results: &[Measurement]) -> (Vec<Target>, Vec<String>) {
    let (mut targets, mut notes) = (Vec::new(), Vec::new());
    let thousands = |n: usize| report::thousands(n as i64);
    let n = plan.latency_subscribers.last().copied().unwrap_or(0);
    match find(results, &format!("latency_{n}")).and_then(|m| m.figure("p99")) {
        Some(p99) => targets.push(Target {
            label: format!(
                "write->client p99 at {} subscribers, 1,000 writes/s",
                thousands(n)
            ),
            measured: p99,
            required: 5.0,
            unit: "ms",
            at_most: true,
        }),
        None => notes.push(format!(
            "latency at {} subscribers: not measured",
            thousands(n)
        )),
    }
    for &n in &plan.memory_subscriptions {
        match find(results, &format!("memory_{n}")).and_then(|m| m.figure("per sub all-in")) {
            Some(bytes) => targets.push(Target {
                label: format!("RssAnon per idle subscription at {} (all-in)", thousands(n)),
                measured: bytes,
                required: 1024.0,
                unit: "B",
                at_most: true,
            }),
            None => notes.push(format!("memory at {}: not measured", thousands(n))),
        }
    }
    let small = find(results, &format!("resume_{}", plan.resume_small_rows));
    let big = find(results, &format!("resume_{}", plan.big_rows));
    match (
        small.and_then(|m| m.figure("p50")),
        big.and_then(|m| m.figure("p50")),
    ) {
        (Some(small), Some(big)) => targets.push(Target {
            label: format!(
                "resume p50 at {} rows / at {} rows (flat)",
                thousands(plan.big_rows),
                thousands(plan.resume_small_rows)
            ),
            measured: big / small,
            required: 2.0,
            unit: "x",
            at_most: true,
        }),
        _ => notes.push("resume flatness: not measured".into()),
    }
    notes.push(
        "flat: the median resume time (subscribe with from_seq_id -> 100th change) with the \
         large table is at most 2x the median with the small one; the two alternate each rep."
            .into(),
    );
    notes.push(
        "memory all-in: (RssAnon after the subscriptions - RssAnon before connecting) / N; \
         'w/o conns' in the results subtracts the connections' share."
            .into(),
    );
    if plan.quick {
        notes
            .push("QUICK run: smaller N than the issue's; the targets are indicative only.".into());
    }
    (targets, notes)
}

fn write_json(
    plan: &Plan,
    machine: &http_report::Machine,
    root: &Path,
    results: &[Measurement],
    targets: &[Target],
) -> anyhow::Result<()> {
    let path = std::env::var_os("STRAND_BENCH_JSON")
        .map(PathBuf::from)
        .unwrap_or_else(|| match plan.quick {
            true => root.join("realtime-quick.jsonl"),
            false => root.join("realtime.jsonl"),
        });
    let run = json!({
        "kind": "run",
        "quick": plan.quick,
        "fsync": setup::FSYNC,
        "cpus": machine.cpus,
        "cpu_model": machine.cpu_model,
        "ram_gib": machine.ram_gib,
        "kernel": machine.kernel,
        "file_system": machine.file_system,
        "client_shares_cpus_with_server": true,
        "only": std::env::var("STRAND_BENCH_ONLY").unwrap_or_default(),
    });
    report::write_json(&path, run, results, targets)?;
    println!("\nJSON lines: {}", path.display());
    Ok(())
}
