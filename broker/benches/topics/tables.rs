//! The topics bench's report: the result row, the printed tables (produce, consume,
//! latency, the Strand-to-JetStream comparison), the targets and the JSON lines.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::plan::{self, Plan, BATCH, CONSUMERS_PARALLEL, PARTITIONS};
use crate::report::{self, Measurement, Target};
use crate::{http_report, jetstream, strand, JETSTREAM};

pub(crate) struct Row {
    pub(crate) system: &'static str,
    pub(crate) durability: String,
    pub(crate) workload: &'static str,
    pub(crate) value_bytes: usize,
    /// Producers or consumers; 1 for latency.
    pub(crate) clients: usize,
    pub(crate) measurement: Measurement,
}

impl Row {
    fn figure(&self, name: &str) -> Option<f64> {
        self.measurement.figure(name)
    }
}

pub(crate) fn print_header(
    machine: &http_report::Machine,
    scratch: &Path,
    plan: &Plan,
    nats: Option<&str>,
) {
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

fn text(value: Option<f64>, decimals: usize) -> String {
    value.map_or("-".into(), |v| match decimals {
        0 => report::thousands(v.round() as i64),
        d => format!("{v:.d$}"),
    })
}

pub(crate) fn print_produce(rows: &[Row]) {
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

pub(crate) fn print_consume(rows: &[Row]) {
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

pub(crate) fn print_latency(rows: &[Row]) {
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

pub(crate) fn print_comparison(rows: &[Row]) {
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
pub(crate) fn targets(plan: &Plan, rows: &[Row]) -> (Vec<Target>, Vec<String>) {
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
            ..Default::default()
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
            ..Default::default()
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
                    ..Default::default()
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
                    ..Default::default()
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

pub(crate) fn write_json(
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
