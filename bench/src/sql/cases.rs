//! The cases of `sql-insert` on the systems under test, in interleaved rounds: the preload
//! and warm-up, then single-row INSERTs (durable, per client count, the 1-client case beside
//! the raw disk and judged), primary-key SELECTs, relaxed single-row INSERTs and batched
//! INSERTs.

use std::ops::Range;
use std::time::Duration;

use crate::sql::rounds::{CaseResult, Rounds, Subject};
use crate::sql::workload::{insert_batches, insert_rows, select_rows, Outcome, Pace};
use crate::sql::workload::{Statements, Workload};

/// A PostgreSQL commit this many times slower than the raw write+fdatasync means a slow spell
/// of the machine (seen on a VM: commits completing on the 4 ms timer tick).
pub const SLOW_SPELL_FACTOR: f64 = 5.0;
/// A raw write+fdatasync this many times slower than a whole commit beside it was measured in
/// a slower moment than that commit.
pub const FLOOR_MARGIN: f64 = 2.0;

/// How much each case runs.
pub struct Sizes {
    /// Durable single-row INSERT client counts.
    pub clients: Vec<usize>,
    pub batch_clients: Vec<usize>,
    pub batch_rows: usize,
    /// Requests per round of the 1-client cases.
    pub requests: usize,
    pub requests_per_client: usize,
    pub batch_window: Duration,
    pub batches_per_client_max: usize,
    /// The ids every table holds before measuring.
    pub preloaded: Range<i64>,
    pub warm_up: usize,
    /// `--rate`: requests per second per client of the single-row INSERTs.
    pub rate: Option<f64>,
    pub pace: Option<Pace>,
}

/// The systems under test: Strand's servers (one per fsync policy), PostgreSQL's sessions
/// when it runs, the raw disk.
pub struct Subjects<'a> {
    pub strands: Vec<Subject<'a>>,
    pub disk: Subject<'a>,
    pub pg_on: Option<Subject<'a>>,
    pub pg_off: Option<Subject<'a>>,
}

impl<'a> Subjects<'a> {
    fn strands_of(&self, classes: &'static [&'static str]) -> Vec<&Subject<'a>> {
        let of_class = |s: &&Subject<'a>| classes.contains(&s.system.class());
        self.strands.iter().filter(of_class).collect()
    }

    /// Durable cases: Strand with fsync=always (or a running server, whose policy the tool
    /// does not know), PostgreSQL with synchronous commit.
    fn durable(&self) -> Vec<&Subject<'a>> {
        let mut subjects = self.strands_of(&["durable", "server"]);
        if !subjects.is_empty() {
            subjects.extend(self.pg_on.as_ref());
        }
        subjects
    }

    /// The relaxed single-row case: Strand with fsync=interval or never, PostgreSQL without
    /// synchronous commit (a running server already ran the durable one).
    fn relaxed(&self) -> Vec<&Subject<'a>> {
        let mut subjects = self.strands_of(&["relaxed"]);
        if !subjects.is_empty() {
            subjects.extend(self.pg_off.as_ref());
        }
        subjects
    }

    /// Batched INSERTs: relaxed Strand (or a running server), PostgreSQL with and without
    /// synchronous commit.
    fn batched(&self) -> Vec<&Subject<'a>> {
        let mut subjects = self.strands_of(&["relaxed", "server"]);
        if !subjects.is_empty() {
            subjects.extend(self.pg_off.as_ref());
            subjects.extend(self.pg_on.as_ref());
        }
        subjects
    }

    /// The class in the durable cases' keys.
    fn durable_class(&self) -> &'static str {
        match self.strands_of(&["server"]).is_empty() {
            true => "durable",
            false => "server",
        }
    }

    fn all(&self) -> Vec<&Subject<'a>> {
        let mut subjects: Vec<_> = self.strands.iter().collect();
        subjects.extend(self.pg_on.as_ref());
        subjects.extend(self.pg_off.as_ref());
        subjects
    }
}

/// Preloads every table (the keys the SELECTs look up) and warms every system up: first use
/// of a table, of a connection, of the caches.
fn prepare(sizes: &Sizes, statements: &Statements, subjects: &Subjects<'_>) -> anyhow::Result<()> {
    let rows = sizes.batch_rows;
    let preload = (sizes.preloaded.end - sizes.preloaded.start) as usize;
    let statements_needed = preload.div_ceil(rows);
    let hour = Duration::from_secs(3600);
    // PostgreSQL's two sessions share one table: preload it once.
    let mut tables: Vec<&Subject<'_>> = subjects.strands.iter().collect();
    tables.extend(subjects.pg_on.as_ref());
    for subject in tables {
        let first = sizes.preloaded.start;
        let batches = (hour, statements_needed);
        insert_batches(subject.system, statements, (1, rows), batches, first)?;
    }
    let warm_up = sizes.warm_up;
    for subject in subjects.all() {
        let first = subject.take_ids(warm_up);
        insert_rows(subject.system, statements, (1, warm_up), first, None)?;
        let preloaded = sizes.preloaded.clone();
        select_rows(subject.system, statements, warm_up, preloaded, u64::MAX)?;
    }
    Ok(())
}

/// Every case in interleaved rounds.
pub fn measure<'a>(
    sizes: &Sizes,
    statements: &Statements,
    subjects: &Subjects<'a>,
    rounds: &Rounds,
) -> anyhow::Result<Vec<CaseResult<'a>>> {
    prepare(sizes, statements, subjects)?;
    let (n, k, pace) = (sizes.requests, sizes.requests_per_client, sizes.pace);
    let durable = subjects.durable();
    let class = subjects.durable_class();
    let mut results = Vec::new();
    for &c in &sizes.clients {
        if c == 1 {
            let mut with_disk = durable.clone();
            with_disk.push(&subjects.disk);
            // Strand(s), PostgreSQL (when there), the disk: a round in which PostgreSQL or
            // the disk met a slow spell that the others did not compares unlike with unlike.
            let judge = |outcomes: &[Outcome]| match subjects.pg_on.is_some() {
                true => unreliable_round(outcomes),
                false => None,
            };
            results.extend(rounds.run_judged(
                &with_disk,
                (Workload::InsertRow, 1, class),
                judge,
                |s, _| insert_rows(s.system, statements, (1, n), s.take_ids(n), pace),
            )?);
        } else {
            results.extend(
                rounds.run(&durable, (Workload::InsertRow, c, class), |s, _| {
                    insert_rows(s.system, statements, (c, k), s.take_ids(c * k), pace)
                })?,
            );
        }
    }
    let preloaded = sizes.preloaded.clone();
    results.extend(
        rounds.run(&durable, (Workload::SelectRow, 1, class), |s, r| {
            select_rows(s.system, statements, n, preloaded.clone(), r as u64)
        })?,
    );
    results.extend(rounds.run(
        &subjects.relaxed(),
        (Workload::InsertRow, 1, "relaxed"),
        |s, _| insert_rows(s.system, statements, (1, n), s.take_ids(n), pace),
    )?);
    let rows = sizes.batch_rows;
    let batch = Workload::InsertBatch { rows };
    let max = sizes.batches_per_client_max;
    let batched = subjects.batched();
    let batch_class = match class {
        "server" => "server",
        _ => "relaxed",
    };
    for &clients in &sizes.batch_clients {
        results.extend(rounds.run(&batched, (batch, clients, batch_class), |s, _| {
            let first_id = s.take_ids(clients * max * rows);
            let window = (sizes.batch_window, max);
            insert_batches(s.system, statements, (clients, rows), window, first_id)
        })?);
    }
    Ok(results)
}

/// Why a round (or the run) of durable single-row INSERTs cannot compare Strand with
/// PostgreSQL, from the p50s of Strand, PostgreSQL and the raw disk measured beside them:
/// PostgreSQL's commits over [`SLOW_SPELL_FACTOR`]x the disk's floor (PostgreSQL caught in a
/// slow spell), or the floor itself over [`FLOOR_MARGIN`]x a whole commit of either system
/// (each commit includes an fdatasync, so the disk was in a slower moment than a system it is
/// beside: the machine changed speed within the round).
pub fn unreliable_baseline(strand: f64, postgres: f64, disk: f64) -> Option<String> {
    if postgres > SLOW_SPELL_FACTOR * disk {
        return Some(format!(
            "postgres commits took {postgres:.3} ms at p50, over {SLOW_SPELL_FACTOR}x the \
             disk's {disk:.3} ms beside them (a slow spell of this machine)"
        ));
    }
    let fastest = strand.min(postgres);
    (disk > FLOOR_MARGIN * fastest).then(|| {
        format!(
            "the raw disk's write+fdatasync took {disk:.3} ms at p50, over {FLOOR_MARGIN}x a \
             whole commit ({fastest:.3} ms) beside it: the machine changed speed within the \
             round"
        )
    })
}

/// [`unreliable_baseline`] of one round's outcomes: Strand's server(s) first, then
/// PostgreSQL, then the disk.
fn unreliable_round(outcomes: &[Outcome]) -> Option<String> {
    let [strands @ .., postgres, disk] = outcomes else {
        return None;
    };
    let strand = strands
        .iter()
        .filter_map(Outcome::p50_ms)
        .min_by(f64::total_cmp)?;
    unreliable_baseline(strand, postgres.p50_ms()?, disk.p50_ms()?)
}
