//! `strand-bench restart`: how long a filled server takes to come back. A spawned server is
//! filled with a SHARED table of `--rows` rows (multi-row INSERTs over HTTP from a few
//! clients) and a topic of `--topic-bytes` bytes (produce batches over QUIC, one producer per
//! partition), then stopped with SIGTERM and started again on the same data directory
//! ([`crate::spawn::StrandProcess::restart`]). Measured: the time to the ready line
//! (`ready_ms`), one primary-key SELECT on the table (`first_query_ms`), one fetch from the
//! middle of a partition (`first_topic_read_ms`), and the data directory's size on disk
//! (`data_bytes`). The first reads also check that nothing was lost: the row is there with its
//! values, and every partition's last `_seq` is the one acknowledged before the restart.
//!
//! By default the data files are still in the OS page cache when the server starts again (a
//! warm restart, as after a deploy); `--cold` evicts them between the stop and the start
//! (`restart/sys.rs`), as after a reboot.
//!
//! A running server (`--url`) cannot be restarted by the tool: the workload needs `--spawn`.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use clap::Args;
use serde_json::json;

use crate::cli::Fsync;
use crate::http::HttpConnection;
use crate::report::{Figure, Measurement};
use crate::run::Bench;
use crate::sql::strand::StrandSystem;
use crate::sql::workload::{row_name, Statements};
use crate::target::{Target, ROUTE_SQL};

mod fill;
mod sys;

use fill::{fetch_middle, fill_table, fill_topic, TopicFill};

const WORKLOAD: &str = "restart";

/// Options of `restart`.
#[derive(Args, Debug, Clone)]
pub struct RestartArgs {
    /// Rows in the SHARED table, inserted over HTTP before the restart (rounded up to whole
    /// statements).
    #[arg(long, default_value_t = 2_000_000)]
    pub rows: u64,
    /// Rows per multi-row INSERT of the fill.
    #[arg(long, default_value_t = 1000)]
    pub batch_rows: usize,
    /// Bytes of record values written to the topic over QUIC before the restart (with the
    /// default table, about 10 GB of data in all: the restart goal's size).
    #[arg(long, default_value_t = 9_600_000_000)]
    pub topic_bytes: u64,
    /// Total data to restart with: the topic gets what the filled table leaves of it
    /// (replaces --topic-bytes).
    #[arg(long)]
    pub total_bytes: Option<u64>,
    /// Partitions of the topic (one producer each).
    #[arg(long, default_value_t = 4)]
    pub partitions: u32,
    /// Bytes of each record's value.
    #[arg(long, default_value_t = 1024)]
    pub value_bytes: usize,
    /// Records per produce request.
    #[arg(long, default_value_t = 256)]
    pub batch_records: usize,
    /// A cold start: between the stop and the start, write back and evict the data
    /// directory's files from the OS page cache, so the server reads them from the disk as
    /// after a reboot (default: a warm restart, its files still cached).
    #[arg(long)]
    pub cold: bool,
}

pub fn run(bench: &mut Bench, args: &RestartArgs) -> anyhow::Result<()> {
    if !bench.targets.spawns() {
        bail!("restart needs a server the tool starts itself (--spawn): it stops and starts it");
    }
    ensure!(
        args.batch_rows > 0 && args.batch_records > 0,
        "batch sizes must be at least 1"
    );
    ensure!(
        args.partitions > 0 && args.value_bytes > 0,
        "--partitions and --value-bytes must be at least 1"
    );
    let (rows, topic_bytes, total_bytes) = match bench.quick {
        true => (
            args.rows.min(20_000),
            args.topic_bytes.min(20_000_000),
            args.total_bytes.map(|t| t.min(40_000_000)),
        ),
        false => (args.rows, args.topic_bytes, args.total_bytes),
    };
    let policies = bench.targets.fsync_policies(&[Fsync::Interval]);
    for fsync in policies {
        let target = bench.targets.open(fsync, &[])?;
        let result = restart_one(bench, args, target, (rows, topic_bytes, total_bytes));
        bench.push(result?);
    }
    Ok(())
}

/// Fills `target`, restarts it and measures; the measurement of this policy.
fn restart_one(
    bench: &mut Bench,
    args: &RestartArgs,
    mut target: Target,
    (rows, topic_bytes, total_bytes): (u64, u64, Option<u64>),
) -> anyhow::Result<Measurement> {
    let schema = format!("bench_restart_{}", std::process::id());
    let topic = format!("{schema}.events");
    let token = target.login()?;
    let strand = StrandSystem::new(&target, &schema)?;
    let statements = Statements::new(&schema);
    strand.create_table(&schema)?;
    let table_started = Instant::now();
    let rows = fill_table(bench, &strand, &statements, rows, args.batch_rows)?;
    let table_fill = table_started.elapsed();
    let data_dir = target
        .process
        .as_ref()
        .map(|p| p.data_dir.clone())
        .context("spawned")?;
    let topic_bytes = match total_bytes {
        Some(total) => total.saturating_sub(dir_bytes(&data_dir)),
        None => topic_bytes,
    };
    let records_per_partition = topic_bytes
        .div_ceil(args.value_bytes as u64 * u64::from(args.partitions))
        .max(1);
    target.sql(
        &token,
        &format!(
            "CREATE TOPIC {topic} WITH (PARTITIONS = {})",
            args.partitions
        ),
    )?;
    let fill = TopicFill {
        topic: topic.clone(),
        partitions: args.partitions,
        records_per_partition,
        value_bytes: args.value_bytes,
        batch_records: args.batch_records,
    };
    let topic_started = Instant::now();
    let middles = fill_topic(bench, &target, &token, &fill)?;
    let topic_fill = topic_started.elapsed();
    let process = target.process.take().context("a spawned server")?;
    let stopping = Instant::now();
    let mut evict = Duration::ZERO;
    let process = match args.cold {
        true => process.restart_with(|dir| {
            let _bar = bench.progress.timed("evict cache", Duration::from_secs(10));
            let started = Instant::now();
            sys::evict_from_page_cache(dir)?;
            evict = started.elapsed();
            Ok(())
        }),
        false => process.restart(),
    };
    let process = process.context("restart the filled server")?;
    let restart_total = stopping.elapsed();
    let ready = process.ready_after;
    target.http = process.http;
    target.quic = Some(process.quic);
    target.process = Some(process);

    // The first query: log in (the token of before may have expired), then one SELECT.
    let login_started = Instant::now();
    let token = target.login()?;
    let login = login_started.elapsed();
    let id = (rows / 2).max(1) as i64;
    let mut connection = target.http_connection(&token)?;
    let query_started = Instant::now();
    first_query(&mut connection, &statements, id)?;
    let first_query = query_started.elapsed();

    let (first_read, connect) = bench.runtime.block_on(async {
        let connect_started = Instant::now();
        let client = target.quic_client(&token).await?;
        let connect = connect_started.elapsed();
        let read_started = Instant::now();
        fetch_middle(&client, &topic, 0, middles[0]).await?;
        let first_read = read_started.elapsed();
        // The other partitions, checked (not timed).
        for (partition, &middle) in middles.iter().enumerate().skip(1) {
            fetch_middle(&client, &topic, partition as u32, middle).await?;
        }
        anyhow::Ok((first_read, connect))
    })?;
    let data_bytes = dir_bytes(&data_dir);
    let case = "table_and_topic";
    let label = "restart with a table and a topic";
    let mut m = Measurement::new(WORKLOAD, "strand", case, label)
        .durability(target.durability())
        .param("rows", rows)
        .param(
            "topic_bytes",
            records_per_partition * u64::from(args.partitions) * args.value_bytes as u64,
        )
        .param("partitions", args.partitions)
        .param("cold", args.cold)
        .param("value_bytes", args.value_bytes);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let figures = [
        ("ready_ms", ms(ready), "ms"),
        ("first_query_ms", ms(first_query), "ms"),
        ("first_topic_read_ms", ms(first_read), "ms"),
        ("data_bytes", data_bytes as f64, "B"),
        (
            "stop_ms",
            ms(restart_total.saturating_sub(ready + evict)),
            "ms",
        ),
        ("login_ms", ms(login), "ms"),
        ("quic_connect_ms", ms(connect), "ms"),
        (
            "table_fill_rows_per_s",
            rows as f64 / table_fill.as_secs_f64().max(1e-9),
            "rows/s",
        ),
        (
            "topic_fill_mb_per_s",
            fill.bytes() as f64 / 1e6 / topic_fill.as_secs_f64().max(1e-9),
            "MB/s",
        ),
    ];
    for (name, value, unit) in figures {
        m.figures.push(Figure::new(name, value, unit));
    }
    Ok(m)
}

/// One `SELECT * FROM <table> WHERE id = $1`: the row must be there with its name.
fn first_query(
    connection: &mut HttpConnection,
    statements: &Statements,
    id: i64,
) -> anyhow::Result<()> {
    let body = json!({"sql": statements.select_by_id, "params": [id]}).to_string();
    let (status, answer) = connection.post_json(ROUTE_SQL, body.as_bytes())?;
    let answer: serde_json::Value =
        serde_json::from_slice(answer).context("first query's answer")?;
    ensure!(
        status == 200,
        "first query after the restart failed ({status}): {answer}"
    );
    let text = answer.to_string();
    ensure!(
        text.contains(&format!("\"{}\"", row_name(id))),
        "row {id} LOST after the restart: {answer}"
    );
    Ok(())
}

/// Bytes the files under `dir` take on disk (allocated blocks, as `du`).
fn dir_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => dir_bytes(&entry.path()),
            Ok(meta) => meta.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}
