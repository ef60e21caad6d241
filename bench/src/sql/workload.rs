//! The SQL workloads, written once against [`System`] so that Strand, PostgreSQL and the raw
//! disk get exactly the same statements, keys and client counts. Each client is a thread with
//! its own connection (blocking I/O: the client does as little as it can); all clients start
//! together at a barrier and the clock runs from the barrier to the last client's last answer.
//! Every request is timed on its own into a [`LatencyHistogram`].
//!
//! The clients are closed loops: each sends its next request when the previous one is
//! answered. With a rate per client ([`Pace`]) each waits for its next due time first, and a
//! request slower than the interval also stands for those it held back
//! ([`LatencyHistogram::record_corrected`]).
//!
//! Rows are `(id, 'item-<id>', id % 1000)` in `<schema>.items (id BIGINT PRIMARY KEY, name
//! TEXT, qty INT)`. Each run writes its own range of ids, so no insert hits a duplicate.

use std::fmt::Write as _;
use std::ops::Range;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use anyhow::ensure;

use crate::latency::LatencyHistogram;

pub const CREATE_TABLE_COLUMNS: &str = "(id BIGINT PRIMARY KEY, name TEXT, qty INT)";

/// The statements of one table, `<schema>.items` (the same text for every system).
#[derive(Clone, Debug)]
pub struct Statements {
    pub table: String,
    pub insert_row: String,
    pub select_by_id: String,
}

impl Statements {
    pub fn new(schema: &str) -> Statements {
        let table = format!("{schema}.items");
        Statements {
            insert_row: format!("INSERT INTO {table} (id, name, qty) VALUES ($1, $2, $3)"),
            select_by_id: format!("SELECT * FROM {table} WHERE id = $1"),
            table,
        }
    }

    /// The multi-row INSERT of `ids`, values as literals.
    pub fn insert_batch(&self, ids: Range<i64>) -> String {
        let mut sql = String::with_capacity(64 + 32 * ids.clone().count());
        let _ = write!(sql, "INSERT INTO {} (id, name, qty) VALUES ", self.table);
        for (i, id) in ids.enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            let _ = write!(sql, "({id}, '{}', {})", row_name(id), row_qty(id));
        }
        sql
    }
}

/// What the server said about one request.
#[derive(Clone, Copy, Debug)]
pub struct Reply {
    /// Rows inserted or returned.
    pub rows: u64,
    /// Time the server itself reports for the request (Strand's `took_ms`), if any.
    pub server: Option<Duration>,
}

/// One client's connection to a system under test.
pub trait Connection {
    /// The single-row INSERT with parameters `$1, $2, $3`.
    fn insert_row(&mut self, id: i64) -> anyhow::Result<Reply>;
    /// One `INSERT ... VALUES (...), (...), ...` statement with the rows as literals.
    fn insert_rows(&mut self, statement: &str) -> anyhow::Result<Reply>;
    /// The primary-key SELECT with `$1 = id`.
    fn select_row(&mut self, id: i64) -> anyhow::Result<Reply>;
}

/// A server under test, with one durability setting.
pub trait System: Sync {
    /// `strand`, `postgres` or `disk` (the report's system).
    fn name(&self) -> &'static str;
    /// `fsync=always`, `synchronous_commit=on`, ...
    fn durability(&self) -> &str;
    /// `durable` (an answered write is on disk), `relaxed`, or `server` (a running server
    /// whose policy the tool does not know): the case key's suffix.
    fn class(&self) -> &'static str;
    fn connect(&self) -> anyhow::Result<Box<dyn Connection + '_>>;
    /// CPU time the server has used so far, all threads, when the bench can see it.
    fn cpu_ns(&self) -> Option<u64> {
        None
    }
}

pub fn row_name(id: i64) -> String {
    format!("item-{id}")
}

pub fn row_qty(id: i64) -> i32 {
    (id % 1000) as i32
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    InsertRow,
    InsertBatch { rows: usize },
    SelectRow,
}

impl Workload {
    pub fn key(&self) -> String {
        match self {
            Workload::InsertRow => "insert_row".into(),
            Workload::InsertBatch { rows } => format!("insert_batch{rows}"),
            Workload::SelectRow => "select_pk".into(),
        }
    }

    pub fn label(&self) -> String {
        match self {
            Workload::InsertRow => "INSERT 1 row".into(),
            Workload::InsertBatch { rows } => format!("INSERT {rows} rows/stmt"),
            Workload::SelectRow => "SELECT by primary key".into(),
        }
    }
}

/// `<workload>_c<clients>_<class>`, e.g. `insert_row_c16_durable`: the same for every system
/// (ratios pair on it).
pub fn case_key(workload: Workload, clients: usize, class: &str) -> String {
    format!("{}_c{clients}_{class}", workload.key())
}

/// A rate per client: each client sends at most this many requests per second.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    pub interval: Duration,
}

impl Pace {
    pub fn per_second(rate: Option<f64>) -> Option<Pace> {
        rate.filter(|r| *r > 0.0).map(|r| Pace {
            interval: Duration::from_secs_f64(1.0 / r),
        })
    }
}

/// What one client did.
struct ClientLog {
    latency: LatencyHistogram,
    server: LatencyHistogram,
    rows: u64,
    bytes: u64,
    pace: Option<Pace>,
    started: Instant,
    sent: u32,
    finished: Option<Instant>,
}

impl ClientLog {
    fn new(pace: Option<Pace>) -> ClientLog {
        ClientLog {
            latency: LatencyHistogram::new(),
            server: LatencyHistogram::new(),
            rows: 0,
            bytes: 0,
            pace,
            started: Instant::now(),
            sent: 0,
            finished: None,
        }
    }

    /// Times one request of `bytes` bytes of SQL text and values (waiting for its due time
    /// first when paced).
    fn time(
        &mut self,
        bytes: usize,
        request: impl FnOnce() -> anyhow::Result<Reply>,
    ) -> anyhow::Result<()> {
        if let Some(pace) = self.pace {
            let due = self.started + pace.interval * self.sent;
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        self.sent += 1;
        let started = Instant::now();
        let reply = request()?;
        let latency = started.elapsed();
        match self.pace {
            Some(pace) => self.latency.record_corrected(latency, pace.interval),
            None => self.latency.record(latency),
        }
        if let Some(server) = reply.server {
            self.server.record(server);
        }
        self.rows += reply.rows;
        self.bytes += bytes as u64;
        Ok(())
    }
}

/// What one or more runs of a workload on one system did.
#[derive(Clone, Default)]
pub struct Outcome {
    pub elapsed: Duration,
    pub clients: usize,
    pub requests: u64,
    pub rows: u64,
    /// Bytes of SQL text and parameter values sent.
    pub bytes: u64,
    pub latency: LatencyHistogram,
    /// What the server reports it spent per request, when it reports it.
    pub server: LatencyHistogram,
    /// Cache flushes the disk completed meanwhile (any process), when known.
    pub flushes: Option<u64>,
    /// CPU time the server used meanwhile, when known.
    pub server_cpu: Option<Duration>,
    /// Rows (or requests) per second of each run, in order: the series of the report.
    pub per_run: Vec<(Duration, f64)>,
}

impl Outcome {
    /// The p50 of the requests so far, in milliseconds.
    pub fn p50_ms(&self) -> Option<f64> {
        self.latency.summary().map(|s| s.p50_ms)
    }

    /// Adds a later run of the same workload (another round).
    pub fn absorb(&mut self, other: Outcome) {
        self.elapsed += other.elapsed;
        self.clients = other.clients;
        self.requests += other.requests;
        self.rows += other.rows;
        self.bytes += other.bytes;
        self.latency.merge(&other.latency);
        self.server.merge(&other.server);
        self.flushes = sum(self.flushes, other.flushes);
        self.server_cpu = sum(self.server_cpu, other.server_cpu);
        self.per_run.extend(other.per_run);
    }
}

fn sum<T: std::ops::Add<Output = T>>(a: Option<T>, b: Option<T>) -> Option<T> {
    Some(a? + b?)
}

/// Runs `work(connection, client_index, log)` on `clients` threads started together.
fn run_clients<F>(
    system: &dyn System,
    clients: usize,
    pace: Option<Pace>,
    work: F,
) -> anyhow::Result<Outcome>
where
    F: Fn(&mut dyn Connection, usize, &mut ClientLog) -> anyhow::Result<()> + Sync,
{
    let barrier = Barrier::new(clients + 1);
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..clients)
            .map(|client| {
                let (barrier, work) = (&barrier, &work);
                scope.spawn(move || -> anyhow::Result<ClientLog> {
                    let connection = system.connect();
                    // Every thread reaches the barrier, even one that could not connect:
                    // otherwise the others would wait for it forever.
                    barrier.wait();
                    let mut log = ClientLog::new(pace);
                    work(connection?.as_mut(), client, &mut log)?;
                    log.finished = Some(Instant::now());
                    Ok(log)
                })
            })
            .collect();
        barrier.wait();
        let started = Instant::now();
        let mut outcome = Outcome {
            clients,
            ..Outcome::default()
        };
        let mut finished = started;
        let mut first_error = None;
        for thread in threads {
            match thread.join().expect("client thread panicked") {
                Ok(log) => {
                    finished = finished.max(log.finished.unwrap_or(started));
                    outcome.requests += u64::from(log.sent);
                    outcome.latency.merge(&log.latency);
                    outcome.server.merge(&log.server);
                    outcome.rows += log.rows;
                    outcome.bytes += log.bytes;
                }
                Err(error) => first_error = first_error.or(Some(error)),
            }
        }
        if let Some(error) = first_error {
            return Err(error.context(format!("{} client", system.name())));
        }
        outcome.elapsed = finished - started;
        Ok(outcome)
    })
}

/// Each client inserts `per_client` rows one request at a time, ids from
/// `first_id + client * per_client`.
pub fn insert_rows(
    system: &dyn System,
    statements: &Statements,
    (clients, per_client): (usize, usize),
    first_id: i64,
    pace: Option<Pace>,
) -> anyhow::Result<Outcome> {
    let outcome = run_clients(system, clients, pace, |connection, client, log| {
        let base = first_id + (client * per_client) as i64;
        for id in base..base + per_client as i64 {
            let bytes = statements.insert_row.len() + 24 + row_name(id).len();
            log.time(bytes, || connection.insert_row(id))?;
        }
        Ok(())
    })?;
    let sent = (clients * per_client) as u64;
    ensure!(
        outcome.rows == sent,
        "{}: {} rows inserted, {sent} sent",
        system.name(),
        outcome.rows
    );
    Ok(with_rate(outcome, |o| o.rows))
}

/// Each client sends multi-row INSERTs of `rows` rows until `duration` has passed (at least
/// one, at most `batches_max`), ids from `first_id + client * rows * batches_max`. The
/// statement text is built before each request's clock starts.
pub fn insert_batches(
    system: &dyn System,
    statements: &Statements,
    (clients, rows): (usize, usize),
    (duration, batches_max): (Duration, usize),
    first_id: i64,
) -> anyhow::Result<Outcome> {
    let outcome = run_clients(system, clients, None, |connection, client, log| {
        let deadline = Instant::now() + duration;
        let base = first_id + (client * rows * batches_max) as i64;
        for batch in 0..batches_max {
            let start = base + (batch * rows) as i64;
            let statement = statements.insert_batch(start..start + rows as i64);
            log.time(statement.len(), || connection.insert_rows(&statement))?;
            if Instant::now() >= deadline {
                break;
            }
        }
        Ok(())
    })?;
    ensure!(
        outcome.rows == outcome.requests * rows as u64,
        "{}: {} rows inserted by {} statements of {rows}",
        system.name(),
        outcome.rows,
        outcome.requests
    );
    Ok(with_rate(outcome, |o| o.rows))
}

/// One client selects `count` rows by primary key, ids spread pseudo-randomly over `ids`
/// (which must all exist), starting from the sequence position `seed`.
pub fn select_rows(
    system: &dyn System,
    statements: &Statements,
    count: usize,
    ids: Range<i64>,
    seed: u64,
) -> anyhow::Result<Outcome> {
    let outcome = run_clients(system, 1, None, |connection, _, log| {
        let span = (ids.end - ids.start).max(1) as u64;
        let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ seed;
        for _ in 0..count {
            // xorshift64: the same keys on every run and for every system.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let id = ids.start + (state % span) as i64;
            log.time(statements.select_by_id.len() + 20, || {
                connection.select_row(id)
            })?;
        }
        Ok(())
    })?;
    ensure!(
        outcome.rows == count as u64,
        "{}: {} rows found by {count} primary-key SELECTs",
        system.name(),
        outcome.rows
    );
    Ok(with_rate(outcome, |o| o.requests))
}

/// Records the run's own rate (of `records`) as its one point of the series.
fn with_rate(mut outcome: Outcome, records: impl Fn(&Outcome) -> u64) -> Outcome {
    let rate = records(&outcome) as f64 / outcome.elapsed.as_secs_f64().max(1e-9);
    outcome.per_run = vec![(outcome.elapsed, rate)];
    outcome
}
