//! The workloads, written once against [`System`] so that Strand and PostgreSQL get exactly
//! the same statements, keys and client counts. Each client is a thread with its own
//! connection; all clients start together at a barrier and the clock runs from the barrier to
//! the last client's last answer. Every request is timed on its own.
//!
//! Rows are `(id, 'item-<id>', id % 1000)` in `bench.items (id BIGINT PRIMARY KEY, name TEXT,
//! qty INT)`. Each workload writes its own range of ids, so no insert ever hits a duplicate.

use std::fmt::Write as _;
use std::ops::Range;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use anyhow::ensure;

pub const CREATE_TABLE_COLUMNS: &str = "(id BIGINT PRIMARY KEY, name TEXT, qty INT)";
pub const INSERT_PREFIX: &str = "INSERT INTO bench.items (id, name, qty) VALUES ";
pub const INSERT_ROW: &str = "INSERT INTO bench.items (id, name, qty) VALUES ($1, $2, $3)";
pub const SELECT_BY_ID: &str = "SELECT * FROM bench.items WHERE id = $1";

/// What the server said about one request.
#[derive(Clone, Copy, Debug)]
pub struct Reply {
    /// Rows inserted or returned.
    pub rows: u64,
    /// Time the server itself reports for the request (Strand's `took_ms`), if any.
    pub server_ns: Option<u64>,
}

/// One client's connection to a system under test.
pub trait Connection {
    /// `INSERT` of one row with parameters `$1, $2, $3`.
    fn insert_row(&mut self, id: i64) -> anyhow::Result<Reply>;
    /// One `INSERT ... VALUES (...), (...), ...` statement with the rows as literals.
    fn insert_rows(&mut self, statement: &str) -> anyhow::Result<Reply>;
    /// [`SELECT_BY_ID`] with `$1 = id`.
    fn select_row(&mut self, id: i64) -> anyhow::Result<Reply>;
}

/// A server under test, with one durability setting.
pub trait System: Sync {
    /// `strand` or `postgres`.
    fn name(&self) -> &'static str;
    /// `fsync=always`, `synchronous_commit=on`, ...
    fn durability(&self) -> &str;
    /// Whether an answered write is on disk (`fsync=always`, `synchronous_commit=on`).
    fn durable(&self) -> bool;
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

/// The multi-row INSERT of `ids`, values as literals (the same text for both systems).
pub fn insert_statement(ids: Range<i64>) -> String {
    let mut sql = String::with_capacity(INSERT_PREFIX.len() + 32 * ids.clone().count());
    sql.push_str(INSERT_PREFIX);
    for (i, id) in ids.enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        let _ = write!(sql, "({id}, '{}', {})", row_name(id), row_qty(id));
    }
    sql
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

/// `<workload>_c<clients>_<durable|relaxed>`, e.g. `insert_row_c8_durable`.
pub fn case_key(workload: Workload, clients: usize, durable: bool) -> String {
    let durability = if durable { "durable" } else { "relaxed" };
    format!("{}_c{clients}_{durability}", workload.key())
}

/// Latency percentiles of a set of requests, in microseconds (nearest rank).
#[derive(Clone, Copy, Debug, Default)]
pub struct Latency {
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
}

impl Latency {
    pub fn of(mut samples_ns: Vec<u64>) -> Option<Latency> {
        if samples_ns.is_empty() {
            return None;
        }
        samples_ns.sort_unstable();
        let n = samples_ns.len();
        let at = |q: f64| {
            let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
            samples_ns[rank - 1] as f64 / 1e3
        };
        Some(Latency {
            p50_us: at(0.50),
            p90_us: at(0.90),
            p99_us: at(0.99),
            max_us: at(1.0),
        })
    }
}

/// One measured workload on one system.
#[derive(Debug)]
pub struct Measurement {
    pub system: &'static str,
    pub durability: String,
    pub durable: bool,
    pub workload: Workload,
    pub clients: usize,
    pub requests: u64,
    pub rows: u64,
    pub elapsed: Duration,
    /// Cache flushes the disk completed during the measured runs (any process).
    pub flushes: Option<u64>,
    /// CPU time the server used during the measured runs.
    pub server_cpu: Option<Duration>,
    pub latency: Latency,
    /// What the server reports it spent, when it reports it.
    pub server: Option<Latency>,
}

impl Measurement {
    /// Stable key, the same for both systems: `insert_row_c8_durable`.
    pub fn case(&self) -> String {
        case_key(self.workload, self.clients, self.durable)
    }

    pub fn id(&self) -> String {
        format!("{}_{}", self.system, self.case())
    }

    pub fn requests_per_s(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn rows_per_s(&self) -> f64 {
        self.rows as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The rate that matters for the workload: rows/s for batches, requests/s otherwise.
    pub fn rate(&self) -> f64 {
        match self.workload {
            Workload::InsertBatch { .. } => self.rows_per_s(),
            _ => self.requests_per_s(),
        }
    }

    pub fn rate_unit(&self) -> &'static str {
        match self.workload {
            Workload::InsertBatch { .. } => "rows/s",
            _ => "req/s",
        }
    }
}

/// What one client did.
#[derive(Debug, Default)]
struct ClientLog {
    latencies_ns: Vec<u64>,
    server_ns: Vec<u64>,
    rows: u64,
    finished: Option<Instant>,
}

impl ClientLog {
    fn time(&mut self, request: impl FnOnce() -> anyhow::Result<Reply>) -> anyhow::Result<()> {
        let started = Instant::now();
        let reply = request()?;
        self.latencies_ns.push(started.elapsed().as_nanos() as u64);
        self.server_ns.extend(reply.server_ns);
        self.rows += reply.rows;
        Ok(())
    }
}

/// What one or more runs of a workload on one system did, before percentiles are taken.
#[derive(Debug, Default)]
pub struct Outcome {
    pub elapsed: Duration,
    pub clients: usize,
    latencies_ns: Vec<u64>,
    server_ns: Vec<u64>,
    pub rows: u64,
    /// Cache flushes the disk completed meanwhile (any process), when known.
    pub flushes: Option<u64>,
    /// CPU time the server used meanwhile, when known.
    pub server_cpu: Option<Duration>,
}

impl Outcome {
    pub fn requests(&self) -> u64 {
        self.latencies_ns.len() as u64
    }

    /// The percentiles of the requests so far.
    pub fn latency(&self) -> Option<Latency> {
        Latency::of(self.latencies_ns.clone())
    }

    /// Add a later run of the same workload (another round).
    pub fn absorb(&mut self, other: Outcome) {
        self.elapsed += other.elapsed;
        self.clients = other.clients;
        self.latencies_ns.extend(other.latencies_ns);
        self.server_ns.extend(other.server_ns);
        self.rows += other.rows;
        self.flushes = match (self.flushes, other.flushes) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        self.server_cpu = match (self.server_cpu, other.server_cpu) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
    }

    pub fn measurement(self, system: &dyn System, workload: Workload) -> Measurement {
        Measurement {
            system: system.name(),
            durability: system.durability().to_string(),
            durable: system.durable(),
            workload,
            clients: self.clients,
            requests: self.requests(),
            rows: self.rows,
            elapsed: self.elapsed,
            flushes: self.flushes,
            server_cpu: self.server_cpu,
            latency: Latency::of(self.latencies_ns).unwrap_or_default(),
            server: Latency::of(self.server_ns),
        }
    }
}

/// Run `work(connection, client_index, log)` on `clients` threads started together.
fn run_clients<F>(system: &dyn System, clients: usize, work: F) -> anyhow::Result<Outcome>
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
                    barrier.wait();
                    let mut log = ClientLog::default();
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
        for thread in threads {
            let log = thread.join().expect("client thread panicked")?;
            finished = finished.max(log.finished.unwrap_or(started));
            outcome.latencies_ns.extend(log.latencies_ns);
            outcome.server_ns.extend(log.server_ns);
            outcome.rows += log.rows;
        }
        outcome.elapsed = finished - started;
        Ok(outcome)
    })
}

/// Each client inserts `per_client` rows one request at a time, ids from
/// `first_id + client * per_client`.
pub fn insert_rows(
    system: &dyn System,
    clients: usize,
    per_client: usize,
    first_id: i64,
) -> anyhow::Result<Outcome> {
    let outcome = run_clients(system, clients, |connection, client, log| {
        let base = first_id + (client * per_client) as i64;
        for id in base..base + per_client as i64 {
            log.time(|| connection.insert_row(id))?;
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
    Ok(outcome)
}

/// Each client sends multi-row INSERTs of `rows` rows until `duration` has passed (at least
/// one, at most `batches_max`), ids from `first_id + client * rows * batches_max`. The
/// statement text is built before each request's clock starts.
pub fn insert_batches(
    system: &dyn System,
    clients: usize,
    rows: usize,
    duration: Duration,
    batches_max: usize,
    first_id: i64,
) -> anyhow::Result<Outcome> {
    let outcome = run_clients(system, clients, |connection, client, log| {
        let deadline = Instant::now() + duration;
        let base = first_id + (client * rows * batches_max) as i64;
        for batch in 0..batches_max {
            let start = base + (batch * rows) as i64;
            let statement = insert_statement(start..start + rows as i64);
            log.time(|| connection.insert_rows(&statement))?;
            if Instant::now() >= deadline {
                break;
            }
        }
        Ok(())
    })?;
    ensure!(
        outcome.rows == outcome.requests() * rows as u64,
        "{}: {} rows inserted by {} statements of {rows}",
        system.name(),
        outcome.rows,
        outcome.requests()
    );
    Ok(outcome)
}

/// One client selects `count` rows by primary key, ids spread pseudo-randomly over `ids`
/// (which must all exist), starting from the sequence position `seed`.
pub fn select_rows(
    system: &dyn System,
    count: usize,
    ids: Range<i64>,
    seed: u64,
) -> anyhow::Result<Outcome> {
    let outcome = run_clients(system, 1, |connection, _, log| {
        let span = (ids.end - ids.start) as u64;
        let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ seed;
        for _ in 0..count {
            // xorshift64: the same keys on every run and for every system.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let id = ids.start + (state % span) as i64;
            log.time(|| connection.select_row(id))?;
        }
        Ok(())
    })?;
    ensure!(
        outcome.rows == count as u64,
        "{}: {} rows found by {count} primary-key SELECTs",
        system.name(),
        outcome.rows
    );
    Ok(outcome)
}
