//! `http_sql`: what a client of `POST /v1/api/sql` sees, next to PostgreSQL running the same
//! statements on the same machine, in one run of `cargo bench -p strand-broker --bench
//! http_sql`. It prints every measurement, the two systems side by side and the targets of
//! issue 4 with MET / NOT MET, and writes one JSON line per result.
//!
//! Workloads (the same for both systems, into `bench.items (id BIGINT PRIMARY KEY, name TEXT,
//! qty INT)`, a SHARED table on Strand, preloaded with 2000 rows):
//! - durable (Strand `--fsync always`, PostgreSQL `synchronous_commit=on`): single-row INSERTs
//!   from one client, then from 8 concurrent clients; primary-key SELECTs from one client;
//! - relaxed (Strand `--fsync interval`, a second server; PostgreSQL `synchronous_commit=off`):
//!   single-row INSERTs from one client; INSERTs of 1000 rows per statement from 1 and 4
//!   clients (PostgreSQL also with `synchronous_commit=on`).
//!
//! Each workload runs in rounds that alternate between the systems (`http_sql/rounds.rs`),
//! because this machine's disk changes speed for seconds at a time. The single-row durable
//! INSERT rounds also time this process's own 128-byte write + `fdatasync` (`raw_disk.rs`):
//! the floor under any durable commit at that moment. A round in which PostgreSQL's commits
//! took over 5x that floor (a slow spell), or the floor itself was slower than a whole commit
//! beside it, is run again; if that outlasts the repeats, or shows over the whole run, the
//! comparison with PostgreSQL reads INCONCLUSIVE instead of MET.
//!
//! Strand is the release `strand` binary Cargo built for this bench, started on 127.0.0.1:0
//! with a fresh data directory; the bench logs in once and sends `Authorization: Bearer` over
//! keep-alive HTTP/1.1. PostgreSQL is a throwaway cluster from `/usr/lib/postgresql/<major>`
//! when one is installed ("PostgreSQL not installed: skipped" otherwise).
//!
//! Environment:
//! - `STRAND_BENCH_QUICK=1`: a smoke run of a few seconds (also what runs without `--bench`).
//! - `STRAND_BENCH_DIR`: scratch directory. Default `<target>/strand-bench`.
//! - `STRAND_BENCH_ONLY=<text>`: run only the cases whose key contains the text, e.g.
//!   `insert_row_c1_durable` or `batch` (for profiling one workload); setup still runs.
//! - `STRAND_BENCH_ROUNDS=<n>`: rounds per workload instead of 5 (2 when quick), e.g. for a
//!   longer profile.
//! - `STRAND_BENCH_BINARY=<path>`: measure this `strand` binary instead of the one Cargo built
//!   (to compare a change against the committed code in the same way).
//! - `STRAND_BENCH_JSON`: file for the JSON lines. Default `<scratch>/http_sql.jsonl`
//!   (`http_sql-quick.jsonl` for quick runs).

// Bench harness: a failed setup or measurement stops the run loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "http_sql/http.rs"]
mod http;
#[path = "http_sql/pg.rs"]
mod pg;
#[path = "http_sql/raw_disk.rs"]
mod raw_disk;
#[path = "http_sql/report.rs"]
mod report;
#[path = "http_sql/rounds.rs"]
mod rounds;
#[path = "http_sql/strand.rs"]
mod strand;
#[path = "http_sql/workload.rs"]
mod workload;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

use report::{Machine, Target};
use rounds::{Rounds, SpoiltRound, Subject, ROUND_REPEATS_MAX};
use strand::StrandServer;
use workload::{insert_batches, insert_rows, select_rows, Measurement, Outcome, Workload};

/// Rows per multi-row INSERT.
const BATCH_ROWS: usize = 1000;
/// Clients of the concurrent single-row INSERT run.
const CONCURRENT_CLIENTS: usize = 8;
/// The batched target of issue 4 (Strand, `--fsync interval`).
const BATCH_ROWS_PER_S_REQUIRED: f64 = 500_000.0;
/// A PostgreSQL commit this many times slower than the raw write+fdatasync means a slow spell
/// of the machine (seen on this VM: commits completing on the 4 ms timer tick).
const SLOW_SPELL_FACTOR: f64 = 5.0;
/// A raw write+fdatasync this many times slower than a whole commit beside it was measured in
/// a slower moment than that commit.
const FLOOR_MARGIN: f64 = 2.0;
/// Ids from here on are preloaded in every durable table ([`Plan::preloaded`]).
const PRELOAD_FIRST_ID: i64 = 1;
/// Each system then takes fresh ids from its own range of this size.
const IDS_PER_SYSTEM: i64 = 1_000_000_000_000;

/// How many requests and how long.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// A smoke run of a few seconds (`STRAND_BENCH_QUICK`, or no `--bench`); marked in results.
    pub quick: bool,
    /// Every workload runs this many rounds on each system.
    pub rounds: usize,
    /// Single-row INSERTs or primary-key SELECTs per round, one client.
    pub sequential_per_round: usize,
    /// Single-row INSERTs per client per round, [`CONCURRENT_CLIENTS`] clients.
    pub concurrent_per_client_per_round: usize,
    /// Length of one round of multi-row INSERTs...
    pub batch_round: Duration,
    /// ...which stops early after this many statements per client.
    pub batches_per_client_max: usize,
    /// Rows in the durable tables before measuring (the keys the SELECTs look up).
    pub preload_rows: usize,
    /// Requests of each kind before measuring (first use of a table, connection, caches).
    pub warm_up_requests: usize,
}

impl Plan {
    fn full() -> Plan {
        Plan {
            quick: false,
            rounds: 5,
            sequential_per_round: 400,
            concurrent_per_client_per_round: 100,
            batch_round: Duration::from_millis(400),
            batches_per_client_max: 1000,
            preload_rows: 2000,
            warm_up_requests: 100,
        }
    }

    fn quick() -> Plan {
        Plan {
            quick: true,
            rounds: 2,
            sequential_per_round: 100,
            concurrent_per_client_per_round: 25,
            batch_round: Duration::from_millis(150),
            batches_per_client_max: 1000,
            preload_rows: 1000,
            warm_up_requests: 20,
        }
    }

    /// The ids every durable table holds before measuring.
    fn preloaded(&self) -> std::ops::Range<i64> {
        PRELOAD_FIRST_ID..PRELOAD_FIRST_ID + self.preload_rows as i64
    }

    fn from_env() -> Plan {
        let quick_env =
            std::env::var("STRAND_BENCH_QUICK").is_ok_and(|v| v != "0" && !v.is_empty());
        let benching = std::env::args().any(|arg| arg == "--bench");
        let mut plan = if quick_env || !benching {
            Plan::quick()
        } else {
            Plan::full()
        };
        if let Ok(rounds) = std::env::var("STRAND_BENCH_ROUNDS") {
            plan.rounds = rounds.parse().expect("STRAND_BENCH_ROUNDS is a number");
        }
        plan
    }
}

fn scratch_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("STRAND_BENCH_DIR") {
        return PathBuf::from(dir);
    }
    // The binary is `<target>/<profile>/deps/http_sql-<hash>`.
    let exe = std::env::current_exe().expect("path of the bench binary");
    match exe.ancestors().nth(3) {
        Some(target) if target.file_name().is_some() => target.join("strand-bench"),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/strand-bench"),
    }
}

fn main() -> anyhow::Result<()> {
    let plan = Plan::from_env();
    let root = scratch_root();
    std::fs::create_dir_all(&root)?;
    let scratch = tempfile::Builder::new().prefix("run-").tempdir_in(&root)?;
    let machine = Machine::probe(scratch.path());
    print_header(&machine, scratch.path(), &plan);
    let started = Instant::now();
    // Every server lives until the end of `main` (dropped, hence stopped, even on an error).
    let always = StrandServer::start(&scratch.path().join("strand-always"), "always")?;
    let interval = StrandServer::start(&scratch.path().join("strand-interval"), "interval")?;
    for server in [&always, &interval] {
        eprintln!("strand --fsync {}: pid {}", server.fsync, server.pid());
    }
    let (strand_durable, strand_relaxed) = (always.system()?, interval.system()?);
    strand_durable.create_table()?;
    strand_relaxed.create_table()?;
    let cluster = match pg::PgInstall::find() {
        Some(install) => Some(install.start(&root)?),
        None => {
            println!("PostgreSQL not installed: skipped");
            None
        }
    };
    let postgres = match &cluster {
        Some(cluster) => {
            let facts = cluster.describe()?;
            println!(
                "postgres: {facts}, data in {}",
                cluster.data_dir().display()
            );
            cluster.create_table()?;
            Some(facts)
        }
        None => None,
    };
    let (pg_on, pg_off) = (
        cluster.as_ref().map(|c| c.system(true)),
        cluster.as_ref().map(|c| c.system(false)),
    );
    let disk = raw_disk::DiskSystem::create(&scratch.path().join("disk-baseline"))?;
    let subjects = Subjects {
        disk: Subject::new(&disk, 0),
        strand_always: Subject::new(&strand_durable, IDS_PER_SYSTEM),
        strand_interval: Subject::new(&strand_relaxed, 2 * IDS_PER_SYSTEM),
        pg_on: pg_on.as_ref().map(|s| Subject::new(s, 3 * IDS_PER_SYSTEM)),
        pg_off: pg_off.as_ref().map(|s| Subject::new(s, 4 * IDS_PER_SYSTEM)),
    };
    let rounds = Rounds {
        rounds: plan.rounds,
        device: machine.device.as_deref(),
        only: std::env::var("STRAND_BENCH_ONLY").unwrap_or_default(),
        spoilt: RefCell::new(Vec::new()),
    };
    let results = measure(&plan, &subjects, &rounds).inspect_err(|_| {
        eprintln!("strand stderr:\n{}\n{}", always.stderr(), interval.stderr());
    })?;
    let spoilt = rounds.spoilt.take();
    report(&plan, &machine, &root, postgres, &results, &spoilt)?;
    println!("total time: {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn print_header(machine: &Machine, scratch: &Path, plan: &Plan) {
    let quick = if plan.quick { " (QUICK smoke run)" } else { "" };
    println!("strand-broker http_sql{quick}");
    println!(
        "machine: {} cpus, {}, {:.1} GiB RAM, kernel {}",
        machine.cpus, machine.cpu_model, machine.ram_gib, machine.kernel
    );
    println!("scratch: {} on {}", scratch.display(), machine.file_system);
    println!("strand: {}", strand::strand_binary().display());
    println!(
        "client: this process, one thread and one keep-alive connection per client; \
         {} rounds per workload, alternating systems",
        plan.rounds
    );
}

/// The systems under test; the PostgreSQL ones when it is installed.
struct Subjects<'a> {
    /// The raw write+fdatasync baseline, beside the durable single-row INSERTs.
    disk: Subject<'a>,
    strand_always: Subject<'a>,
    strand_interval: Subject<'a>,
    pg_on: Option<Subject<'a>>,
    pg_off: Option<Subject<'a>>,
}

impl<'a> Subjects<'a> {
    fn durable(&self) -> Vec<&Subject<'a>> {
        [Some(&self.strand_always), self.pg_on.as_ref()]
            .into_iter()
            .flatten()
            .collect()
    }

    fn relaxed(&self) -> Vec<&Subject<'a>> {
        [Some(&self.strand_interval), self.pg_off.as_ref()]
            .into_iter()
            .flatten()
            .collect()
    }

    fn batched(&self) -> Vec<&Subject<'a>> {
        let mut subjects = self.relaxed();
        subjects.extend(self.pg_on.as_ref());
        subjects
    }
}

/// Preload the durable tables (the keys the SELECTs look up) and warm every system up: first
/// use of a table, of a connection, of the caches.
fn prepare(plan: &Plan, subjects: &Subjects<'_>) -> anyhow::Result<()> {
    let statements = plan.preload_rows / BATCH_ROWS;
    let hour = Duration::from_secs(3600);
    for subject in subjects.durable() {
        let system = subject.system;
        insert_batches(system, 1, BATCH_ROWS, hour, statements, PRELOAD_FIRST_ID)?;
    }
    let warm_up = plan.warm_up_requests;
    for subject in subjects.durable().into_iter().chain(subjects.relaxed()) {
        insert_rows(subject.system, 1, warm_up, subject.take_ids(warm_up))?;
    }
    for subject in subjects.durable() {
        select_rows(subject.system, warm_up, plan.preloaded(), u64::MAX)?;
    }
    Ok(())
}

/// Every workload in interleaved rounds.
fn measure(
    plan: &Plan,
    subjects: &Subjects<'_>,
    rounds: &Rounds<'_>,
) -> anyhow::Result<Vec<Measurement>> {
    prepare(plan, subjects)?;
    let preloaded = plan.preloaded();
    let n = plan.sequential_per_round;
    let k = plan.concurrent_per_client_per_round;
    let c = CONCURRENT_CLIENTS;
    let (durable, relaxed, batched) = (subjects.durable(), subjects.relaxed(), subjects.batched());
    let mut results = Vec::new();
    let with_disk: Vec<_> = durable.iter().copied().chain([&subjects.disk]).collect();
    // Strand, PostgreSQL (when there), the disk: a round in which PostgreSQL or the disk met
    // a slow spell that the others did not compares unlike with unlike.
    let judge = |outcomes: &[Outcome]| match (subjects.pg_on.is_some(), outcomes) {
        (true, [strand, postgres, disk]) => unreliable_round(strand, postgres, disk),
        _ => None,
    };
    results.extend(rounds.run_judged(
        &with_disk,
        (Workload::InsertRow, 1, true),
        judge,
        |s, _| insert_rows(s.system, 1, n, s.take_ids(n)),
    )?);
    results.extend(
        rounds.run(&durable, (Workload::InsertRow, c, true), |s, _| {
            insert_rows(s.system, c, k, s.take_ids(c * k))
        })?,
    );
    results.extend(
        rounds.run(&durable, (Workload::SelectRow, 1, true), |s, r| {
            select_rows(s.system, n, preloaded.clone(), r as u64)
        })?,
    );
    results.extend(
        rounds.run(&relaxed, (Workload::InsertRow, 1, false), |s, _| {
            insert_rows(s.system, 1, n, s.take_ids(n))
        })?,
    );
    let batch = Workload::InsertBatch { rows: BATCH_ROWS };
    let max = plan.batches_per_client_max;
    for clients in [1, 4] {
        results.extend(rounds.run(&batched, (batch, clients, false), |s, _| {
            let first_id = s.take_ids(clients * max * BATCH_ROWS);
            insert_batches(
                s.system,
                clients,
                BATCH_ROWS,
                plan.batch_round,
                max,
                first_id,
            )
        })?);
    }
    Ok(results)
}

/// Why a round (or the run) of durable single-row INSERTs cannot compare Strand with
/// PostgreSQL, from the p50s of Strand, PostgreSQL and the raw disk measured beside them:
/// PostgreSQL's commits over [`SLOW_SPELL_FACTOR`]x the disk's floor (PostgreSQL caught in a slow
/// spell), or the floor itself over [`FLOOR_MARGIN`]x a whole commit of either system (each
/// commit includes an fdatasync, so the disk was in a slower moment than a system it is beside:
/// the machine changed speed within the round).
fn unreliable_baseline(strand: f64, postgres: f64, disk: f64) -> Option<String> {
    if postgres > SLOW_SPELL_FACTOR * disk {
        return Some(format!(
            "postgres commits took {postgres:.0} us at p50, over {SLOW_SPELL_FACTOR}x the \
             disk's {disk:.0} us beside them (a slow spell of this machine)"
        ));
    }
    let fastest = strand.min(postgres);
    (disk > FLOOR_MARGIN * fastest).then(|| {
        format!(
            "the raw disk's write+fdatasync took {disk:.0} us at p50, over {FLOOR_MARGIN}x a \
             whole commit ({fastest:.0} us) beside it: the machine changed speed within the round"
        )
    })
}

/// [`unreliable_baseline`] of one round's outcomes.
fn unreliable_round(strand: &Outcome, postgres: &Outcome, disk: &Outcome) -> Option<String> {
    let p50 = |outcome: &Outcome| outcome.latency().map(|l| l.p50_us);
    unreliable_baseline(p50(strand)?, p50(postgres)?, p50(disk)?)
}

fn report(
    plan: &Plan,
    machine: &Machine,
    root: &Path,
    postgres: Option<String>,
    results: &[Measurement],
    spoilt: &[SpoiltRound],
) -> anyhow::Result<()> {
    println!();
    report::print_measurements(results);
    println!();
    if postgres.is_some() {
        report::print_side_by_side(results);
        println!();
    }
    let (targets, notes) = targets(results, spoilt);
    report::print_targets(&targets, &notes);
    let json_path = std::env::var_os("STRAND_BENCH_JSON")
        .map(PathBuf::from)
        .unwrap_or_else(|| match plan.quick {
            true => root.join("http_sql-quick.jsonl"),
            false => root.join("http_sql.jsonl"),
        });
    let run = json!({
        "kind": "run",
        "quick": plan.quick,
        "rounds": plan.rounds,
        "cpus": machine.cpus,
        "cpu_model": machine.cpu_model,
        "ram_gib": machine.ram_gib,
        "kernel": machine.kernel,
        "file_system": machine.file_system,
        "postgres": postgres,
    });
    report::write_json(&json_path, run, results, &targets)?;
    println!("\nJSON lines: {}", json_path.display());
    Ok(())
}

fn find<'a>(results: &'a [Measurement], id: &str) -> Option<&'a Measurement> {
    results.iter().find(|m| m.id() == id)
}

/// The targets of issue 4, from this run's figures; notes for those that could not be checked.
///
/// Strand's single-row p50 is compared with PostgreSQL's measured in the same rounds. When the
/// baseline was unreliable ([`unreliable_baseline`]: in a round kept after
/// [`ROUND_REPEATS_MAX`] repeats, or over the whole run), a MET reads INCONCLUSIVE: a
/// PostgreSQL slowed by the machine flatters Strand. A NOT MET stands.
fn targets(results: &[Measurement], spoilt: &[SpoiltRound]) -> (Vec<Target>, Vec<String>) {
    let mut targets = Vec::new();
    let mut notes = Vec::new();
    let strand = find(results, "strand_insert_row_c1_durable");
    let postgres = find(results, "postgres_insert_row_c1_durable");
    let disk = find(results, "disk_insert_row_c1_durable");
    let case = "insert_row_c1_durable";
    let repeated = spoilt.iter().filter(|s| s.case == case && !s.kept).count();
    if repeated > 0 {
        notes.push(format!(
            "{repeated} round(s) of INSERT 1 row, 1 cl, durable run again: an unreliable \
             baseline (see stderr)"
        ));
    }
    let mut inconclusive: Vec<String> = spoilt
        .iter()
        .filter(|s| s.case == case && s.kept)
        .map(|s| {
            format!(
                "a round kept after {ROUND_REPEATS_MAX} repeats: {}",
                s.reason
            )
        })
        .collect();
    if let (Some(strand), Some(postgres), Some(disk)) = (strand, postgres, disk) {
        let p50 = |m: &Measurement| m.latency.p50_us;
        if let Some(reason) = unreliable_baseline(p50(strand), p50(postgres), p50(disk)) {
            inconclusive.push(format!("over the run, {reason}"));
        }
    }
    match (strand, postgres) {
        (Some(strand), Some(postgres)) => targets.push(Target {
            label: "INSERT 1 row p50: strand fsync=always <= postgres sync commit".into(),
            measured: strand.latency.p50_us,
            required: postgres.latency.p50_us,
            unit: "us",
            at_most: true,
            inconclusive: (!inconclusive.is_empty()).then(|| inconclusive.join("; ")),
        }),
        _ => notes.push("INSERT 1 row p50 vs PostgreSQL: not checked (no PostgreSQL)".into()),
    }
    for clients in [1, 4] {
        let id = format!("strand_insert_batch{BATCH_ROWS}_c{clients}_relaxed");
        if let Some(m) = find(results, &id) {
            targets.push(Target {
                label: format!("INSERT {BATCH_ROWS} rows/stmt, {clients} cl, fsync=interval"),
                measured: m.rows_per_s(),
                required: BATCH_ROWS_PER_S_REQUIRED,
                unit: "rows/s",
                at_most: false,
                inconclusive: None,
            });
        }
    }
    (targets, notes)
}
