//! `strand-bench sql-insert`: what a client of `POST /v1/api/sql` sees, next to PostgreSQL
//! running the same statements on the same machine (`--peers`), and next to the raw disk's
//! 128-byte write + fdatasync (system `disk`, the floor under any durable commit).
//!
//! Cases (the same for every system, into `<schema>.items (id BIGINT PRIMARY KEY, name TEXT,
//! qty INT)`, a SHARED table on Strand, preloaded with `--preload-rows` rows):
//! - durable (Strand `--fsync always`, PostgreSQL `synchronous_commit=on`): single-row INSERTs
//!   from each count of `--clients` (1 client also beside the raw disk); primary-key SELECTs
//!   from one client;
//! - relaxed (Strand `--fsync interval`, a second server; PostgreSQL `synchronous_commit=off`):
//!   single-row INSERTs from one client; INSERTs of `--batch-rows` rows per statement from each
//!   count of `--batch-clients` (PostgreSQL also with `synchronous_commit=on`).
//!
//! Against a running server (`--url`) every case runs on it, keyed `..._server`.
//!
//! Each case runs in `--rounds` rounds that alternate between the systems (`sql/rounds.rs`).
//! A round of 1-client durable INSERTs in which PostgreSQL's commits took over 5x the raw
//! disk's floor (a slow spell), or the floor itself was over 2x a whole commit beside it, is
//! run again (3 times at most); the figure `baseline_unreliable` (1) says when the comparison
//! could not be trusted in the end (`sql/cases.rs`).

use std::cell::RefCell;
use std::time::Duration;

use clap::Args;

use crate::cli::Fsync;
use crate::peers::postgres::Postgres;
use crate::report::{Figure, Measurement, SeriesPoint, Throughput};
use crate::run::Bench;
use crate::sql::cases::{measure, unreliable_baseline, Sizes, Subjects};
use crate::sql::postgres::{self as pg, PgSystem};
use crate::sql::raw_disk::DiskSystem;
use crate::sql::rounds::ROUND_REPEATS_MAX;
use crate::sql::rounds::{block_device, CaseResult, Rounds, SpoiltRound, Subject};
use crate::sql::strand::StrandSystem;
use crate::sql::workload::{Pace, Statements, System, Workload};

const WORKLOAD: &str = "sql-insert";
/// Ids from here on are preloaded in every table (the keys the SELECTs look up).
const PRELOAD_FIRST_ID: i64 = 1;
/// Each system then takes fresh ids from its own range of this size.
const IDS_PER_SYSTEM: i64 = 1_000_000_000_000;
/// The case the raw disk runs beside and the rounds are judged on.
const JUDGED_CASE: &str = "insert_row_c1_durable";

/// Options of `sql-insert`.
#[derive(Args, Debug, Clone)]
pub struct SqlInsertArgs {
    /// Concurrent clients of the durable single-row INSERT case, one keep-alive connection
    /// and thread each, comma-separated (the 1-client case also runs the raw disk floor).
    #[arg(long, value_delimiter = ',', default_value = "1,8,16")]
    pub clients: Vec<usize>,
    /// Concurrent clients of the batched INSERT case (relaxed durability), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,4")]
    pub batch_clients: Vec<usize>,
    /// Rows per multi-row INSERT statement.
    #[arg(long, default_value_t = 1000)]
    pub batch_rows: usize,
    /// Rounds per case; each round runs the case once on every system, in alternating order.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Single-row INSERTs or primary-key SELECTs per round of the 1-client cases.
    #[arg(long, default_value_t = 400)]
    pub requests: usize,
    /// Single-row INSERTs per client per round of the multi-client cases.
    #[arg(long, default_value_t = 100)]
    pub requests_per_client: usize,
    /// Length of one round of multi-row INSERTs, in milliseconds (each client stops at its
    /// first answer after it).
    #[arg(long, default_value_t = 400)]
    pub batch_window_ms: u64,
    /// Rows in every table before measuring (the keys the SELECTs look up).
    #[arg(long, default_value_t = 2000)]
    pub preload_rows: usize,
    /// Requests per second per client of the single-row INSERTs (closed-loop clients that
    /// wait for their next due time; latencies corrected for the requests a slow answer held
    /// back). Default: each client sends as soon as its previous answer came.
    #[arg(long, value_name = "PER_S")]
    pub rate: Option<f64>,
    /// Run only the cases whose key contains this text, e.g. `insert_row_c16` or `batch`.
    #[arg(long, default_value = "")]
    pub only: String,
}

impl SqlInsertArgs {
    /// The sizes of each case; `--quick` runs every case once, short.
    fn sizes(&self, quick: bool) -> Sizes {
        let scale = |full: usize, quick_max: usize| if quick { full.min(quick_max) } else { full };
        let window_ms = if quick {
            self.batch_window_ms.min(100)
        } else {
            self.batch_window_ms
        };
        Sizes {
            clients: self.clients.clone(),
            batch_clients: self.batch_clients.clone(),
            batch_rows: self.batch_rows,
            requests: scale(self.requests, 50),
            requests_per_client: scale(self.requests_per_client, 10),
            batch_window: Duration::from_millis(window_ms),
            batches_per_client_max: 1000,
            preloaded: PRELOAD_FIRST_ID..PRELOAD_FIRST_ID + scale(self.preload_rows, 1000) as i64,
            warm_up: scale(100, 10),
            rate: self.rate,
            pace: Pace::per_second(self.rate),
        }
    }
}

pub fn run(bench: &mut Bench, args: &SqlInsertArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.batch_rows > 0, "--batch-rows must be at least 1");
    anyhow::ensure!(
        args.clients
            .iter()
            .chain(&args.batch_clients)
            .all(|&c| c > 0),
        "client counts must be at least 1"
    );
    let sizes = args.sizes(bench.quick);
    // Unique per run: two runs against one server do not collide.
    let schema = format!("bench_sql_{}", std::process::id());
    let statements = Statements::new(&schema);
    let mut targets = Vec::new();
    for fsync in bench
        .targets
        .fsync_policies(&[Fsync::Always, Fsync::Interval])
    {
        targets.push(bench.targets.open(fsync, &[])?);
    }
    let mut strands = Vec::new();
    for target in &targets {
        let system = StrandSystem::new(target, &schema)?;
        system.create_table(&schema)?;
        strands.push(system);
    }
    let cluster = match bench.targets.peers() {
        true => Postgres::start(bench.targets.scratch(), "postgres-sql")?,
        false => None,
    };
    if bench.targets.peers() && cluster.is_none() {
        bench.note("postgres not installed: skipped in sql-insert");
    }
    if let Some(cluster) = &cluster {
        let facts = cluster.describe()?;
        bench.note(format!(
            "postgres (sql-insert) on port {}: {facts}",
            cluster.port()
        ));
        pg::create_table(cluster, &schema)?;
    }
    let pg_on = cluster.as_ref().map(|c| PgSystem::new(c, &schema, true));
    let pg_off = cluster.as_ref().map(|c| PgSystem::new(c, &schema, false));
    let disk = DiskSystem::create(&bench.targets.scratch().join("sql-disk-floor"))?;
    // Every system writes its own range of ids (PostgreSQL's two sessions share a table).
    let mut ranges = 1..;
    let mut subject = |system| Subject::new(system, ranges.next().unwrap_or(0) * IDS_PER_SYSTEM);
    let subjects = Subjects {
        strands: strands.iter().map(|s| subject(s as &dyn System)).collect(),
        disk: subject(&disk),
        pg_on: pg_on.as_ref().map(|s| subject(s)),
        pg_off: pg_off.as_ref().map(|s| subject(s)),
    };
    let rounds = Rounds {
        // A quick run runs every case once.
        rounds: if bench.quick { 1 } else { args.rounds.max(1) },
        device: block_device(bench.targets.scratch()),
        only: args.only.clone(),
        spoilt: RefCell::new(Vec::new()),
        progress: bench.progress,
    };
    let results = measure(&sizes, &statements, &subjects, &rounds);
    if !bench.targets.spawns() {
        // A running server keeps what the run made.
        for strand in &strands {
            if let Err(error) = strand.drop_table(&schema) {
                bench.note(format!(
                    "sql-insert: clean-up on the server failed: {error:#}"
                ));
            }
        }
    }
    let results = results.map_err(|error| {
        let stderr: Vec<String> = targets
            .iter()
            .filter_map(|t| Some(t.process.as_ref()?.stderr()))
            .collect();
        error.context(format!("strand stderr:\n{}", stderr.join("\n")))
    })?;
    let spoilt = rounds.spoilt.take();
    for result in &results {
        let mut measurement = measurement(result, &sizes);
        if result.case == JUDGED_CASE && result.system.name() == "strand" {
            judge_run(bench, &mut measurement, &results, &spoilt);
        }
        bench.push(measurement);
    }
    drop(subjects);
    if let Some(cluster) = cluster {
        cluster.stop()?;
    }
    Ok(())
}

/// One case on one system as the report has it.
fn measurement(result: &CaseResult<'_>, sizes: &Sizes) -> Measurement {
    let outcome = &result.outcome;
    let system = result.system;
    let clients = outcome.clients;
    let label = format!(
        "{}, {clients} client{}, {}",
        result.workload.label(),
        if clients == 1 { "" } else { "s" },
        system.class()
    );
    let mut m = Measurement::new(WORKLOAD, system.name(), &result.case, &label)
        .durability(system.durability())
        .param("clients", clients)
        .param("rounds", outcome.per_run.len());
    let records = match result.workload {
        Workload::InsertBatch { rows } => {
            m = m.param("rows_per_statement", rows);
            outcome.rows
        }
        Workload::InsertRow => {
            if let (Some(rate), Some(_)) = (sizes.rate, sizes.pace) {
                m = m.param("rate_per_client", rate);
            }
            outcome.rows
        }
        Workload::SelectRow => outcome.requests,
    };
    m.throughput = Some(Throughput::of(records, outcome.bytes, outcome.elapsed));
    m.latency = outcome.latency.summary();
    let mut t_s = 0.0;
    for (elapsed, rate) in &outcome.per_run {
        t_s += elapsed.as_secs_f64();
        m.series.push(SeriesPoint {
            t_s,
            records_per_s: *rate,
        });
    }
    let requests = outcome.requests.max(1) as f64;
    m.figures
        .push(Figure::new("requests", outcome.requests as f64, ""));
    if let Some(cpu) = outcome.server_cpu {
        let seconds = cpu.as_secs_f64();
        let pct = 100.0 * seconds / outcome.elapsed.as_secs_f64().max(1e-9);
        m.figures.push(Figure::new("server_cpu_s", seconds, "s"));
        m.figures.push(Figure::new("server_cpu_pct", pct, "%"));
        let per_request = seconds * 1e6 / requests;
        m.figures
            .push(Figure::new("server_cpu_per_request_us", per_request, "us"));
    }
    if let Some(flushes) = outcome.flushes {
        let per_request = flushes as f64 / requests;
        m.figures
            .push(Figure::new("disk_flushes_per_request", per_request, ""));
    }
    // The server's own took_ms: handler start to result, without HTTP.
    if let Some(server) = outcome.server.summary() {
        m.figures
            .push(Figure::new("server_p50_ms", server.p50_ms, "ms"));
        m.figures
            .push(Figure::new("server_p99_ms", server.p99_ms, "ms"));
    }
    m
}

/// Whether the 1-client durable comparison with PostgreSQL can be trusted: a round kept after
/// every repeat, or the whole run's p50s, may show an unreliable baseline ([`unreliable_baseline`]).
/// Figures `rounds_repeated` and `baseline_unreliable` (0 or 1) on Strand's measurement, and a
/// note with the reasons.
fn judge_run(
    bench: &mut Bench,
    strand: &mut Measurement,
    results: &[CaseResult<'_>],
    spoilt: &[SpoiltRound],
) {
    let in_case = spoilt.iter().filter(|s| s.case == JUDGED_CASE);
    let repeated = in_case.clone().filter(|s| !s.kept).count();
    let mut reasons: Vec<String> = in_case
        .filter(|s| s.kept)
        .map(|s| {
            format!(
                "a round kept after {ROUND_REPEATS_MAX} repeats: {}",
                s.reason
            )
        })
        .collect();
    let p50 = |system: &str| {
        results
            .iter()
            .find(|r| r.case == JUDGED_CASE && r.system.name() == system)
            .and_then(|r| r.outcome.p50_ms())
    };
    let (Some(postgres), Some(disk)) = (p50("postgres"), p50("disk")) else {
        return;
    };
    let strand_p50 = strand.latency.as_ref().map_or(f64::NAN, |l| l.p50_ms);
    if let Some(reason) = unreliable_baseline(strand_p50, postgres, disk) {
        reasons.push(format!("over the run, {reason}"));
    }
    strand
        .figures
        .push(Figure::new("rounds_repeated", repeated as f64, ""));
    let unreliable = if reasons.is_empty() { 0.0 } else { 1.0 };
    strand
        .figures
        .push(Figure::new("baseline_unreliable", unreliable, ""));
    if !reasons.is_empty() {
        bench.note(format!(
            "sql-insert {JUDGED_CASE}: the comparison with PostgreSQL is inconclusive: {}",
            reasons.join("; ")
        ));
    }
}
