//! One server under test for the realtime workloads: a [`Target`] (spawned or the user's),
//! logged in once (the token authenticates every WebSocket upgrade and every HTTP write), a
//! namespace of its own (named after this process and a counter, so two runs against the same
//! server never collide), its tables `(id BIGINT PRIMARY KEY, room INT, v INT)` SHARED, bulk
//! loads, and writers: SQL over keep-alive HTTP. On a running server the namespace and its
//! tables are dropped again at the end (a spawned server is thrown away with them).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use serde::Deserialize;
use serde_json::json;

use crate::cli::Fsync;
use crate::http::HttpConnection;
use crate::proc;
use crate::run::Bench;
use crate::target::{Target, ROUTE_SQL};

/// Rows per multi-row INSERT of a bulk load (about 100 KB of SQL, under the 1 MiB body limit).
pub const LOAD_ROWS_PER_STATEMENT: usize = 5000;
/// Parallel HTTP connections of a bulk load.
const LOAD_CLIENTS: usize = 2;

/// Namespaces made by this process so far (the next one's suffix).
static NAMESPACES: AtomicUsize = AtomicUsize::new(0);

/// A server with a namespace of this run and a token.
pub struct Server {
    pub target: Target,
    /// A JWT for `Authorization: Bearer` on HTTP requests and WebSocket upgrades.
    pub token: String,
    /// `bench_rt_<pid>_<n>`.
    pub namespace: String,
    /// Tables created so far, dropped with the namespace on a running server.
    tables: Mutex<Vec<String>>,
}

impl Server {
    /// Opens a server (a fresh spawned one with `fsync`, or the running one) and creates this
    /// run's namespace on it.
    pub fn open(bench: &mut Bench, fsync: Option<Fsync>) -> anyhow::Result<Server> {
        let target = bench.targets.open(fsync, &[])?;
        Server::on(target)
    }

    /// Logs in to `target` and creates a namespace of this run there.
    pub fn on(target: Target) -> anyhow::Result<Server> {
        let token = target.login()?;
        let n = NAMESPACES.fetch_add(1, Ordering::Relaxed);
        let namespace = format!("bench_rt_{}_{n}", std::process::id());
        target.sql(&token, &format!("CREATE NAMESPACE {namespace}"))?;
        Ok(Server {
            target,
            token,
            namespace,
            tables: Mutex::new(Vec::new()),
        })
    }

    /// `<namespace>.<name>`.
    pub fn table(&self, name: &str) -> String {
        format!("{}.{name}", self.namespace)
    }

    /// Creates `table` (a name from [`Server::table`]) with the bench's columns.
    pub fn create_table(&self, table: &str) -> anyhow::Result<()> {
        self.create_table_sql(table, &create_table_sql(table))
    }

    /// Creates `table` (a name from [`Server::table`]) with `sql`, its CREATE TABLE.
    pub fn create_table_sql(&self, table: &str, sql: &str) -> anyhow::Result<()> {
        self.target.sql(&self.token, sql)?;
        if let Ok(mut tables) = self.tables.lock() {
            tables.push(table.to_string());
        }
        Ok(())
    }

    /// A keep-alive HTTP SQL connection.
    pub fn session(&self) -> anyhow::Result<SqlSession> {
        Ok(SqlSession {
            http: self.target.http_connection(&self.token)?,
        })
    }

    /// Creates `table` and fills it with `rows` rows, ids `1..=rows`, `room = id % rooms`,
    /// `v = 0`, in multi-row INSERTs of literals, counting the rows on `bar`. Returns the
    /// load time.
    pub fn create_and_load(
        &self,
        table: &str,
        rows: usize,
        rooms: i64,
        bar: &indicatif::ProgressBar,
    ) -> anyhow::Result<Duration> {
        self.create_table(table)?;
        self.load(table, "id, room, v", rows, bar, |sql, id| {
            let _ = write!(sql, "({id}, {}, 0)", id % rooms);
        })
    }

    /// Fills the existing `table` with `rows` rows, ids `1..=rows`, in multi-row
    /// `INSERT INTO <table> (<columns>) VALUES ...` of [`LOAD_ROWS_PER_STATEMENT`] rows from
    /// [`LOAD_CLIENTS`] connections, counting the rows on `bar`; `row(sql, id)` appends row
    /// `id`'s parenthesized values. Returns the load time.
    pub fn load(
        &self,
        table: &str,
        columns: &str,
        rows: usize,
        bar: &indicatif::ProgressBar,
        row: impl Fn(&mut String, i64) + Sync,
    ) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let statements = rows.div_ceil(LOAD_ROWS_PER_STATEMENT);
        let row = &row;
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..LOAD_CLIENTS)
                .map(|client| {
                    scope.spawn(move || -> anyhow::Result<()> {
                        let mut session = self.session()?;
                        for statement in (client..statements).step_by(LOAD_CLIENTS) {
                            let first = statement * LOAD_ROWS_PER_STATEMENT + 1;
                            let last = ((statement + 1) * LOAD_ROWS_PER_STATEMENT).min(rows);
                            let mut sql = format!("INSERT INTO {table} ({columns}) VALUES ");
                            for id in first..=last {
                                if id > first {
                                    sql.push_str(", ");
                                }
                                row(&mut sql, id as i64);
                            }
                            let written = session.execute(&sql)?;
                            ensure!(written as usize == last + 1 - first, "short insert");
                            bar.inc(written);
                        }
                        Ok(())
                    })
                })
                .collect();
            for worker in workers {
                worker.join().expect("a load thread panicked")?;
            }
            anyhow::Ok(())
        })?;
        Ok(started.elapsed())
    }

    /// CPU time the server has used so far (all threads), when it is a spawned child.
    pub fn cpu_ns(&self) -> Option<u64> {
        self.target.server_pid().map(proc::cpu_ns)
    }

    /// The server's stderr so far, when spawned (for failure reports).
    pub fn stderr(&self) -> String {
        self.target
            .process
            .as_ref()
            .map(|p| p.stderr())
            .unwrap_or_default()
    }

    /// `error` with the spawned server's stderr appended, when it said anything.
    pub fn explain(&self, error: anyhow::Error) -> anyhow::Error {
        let stderr = self.stderr();
        if stderr.trim().is_empty() {
            error
        } else {
            error.context(format!("server stderr:\n{}", tail(&stderr, 4000)))
        }
    }
}

impl Drop for Server {
    /// Drops this run's tables and namespace from a running server (best effort: a server
    /// that failed keeps them, named after this process).
    fn drop(&mut self) {
        if self.target.process.is_some() {
            return;
        }
        let tables = self.tables.lock().map(|t| t.clone()).unwrap_or_default();
        for table in tables {
            let _ = self.target.sql(&self.token, &format!("DROP TABLE {table}"));
        }
        let _ = self
            .target
            .sql(&self.token, &format!("DROP NAMESPACE {}", self.namespace));
    }
}

/// The last `bytes` (about) of `text`.
fn tail(text: &str, bytes: usize) -> &str {
    let mut start = text.len().saturating_sub(bytes);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// The columns of every realtime table: `(id BIGINT PRIMARY KEY, room INT, v INT)`, SHARED.
pub fn create_table_sql(table: &str) -> String {
    format!("CREATE TABLE {table} (id BIGINT PRIMARY KEY, room INT, v INT) WITH (TYPE = 'SHARED')")
}

/// One writer's keep-alive HTTP connection.
pub struct SqlSession {
    http: HttpConnection,
}

/// The parts of a success answer the bench checks.
#[derive(Deserialize)]
struct SqlAnswer {
    results: Vec<StatementAnswer>,
}

#[derive(Deserialize)]
struct StatementAnswer {
    #[serde(default)]
    row_count: u64,
}

impl SqlSession {
    /// Runs `sql`; the row count of its last statement. Anything but 200 is an error.
    pub fn execute(&mut self, sql: &str) -> anyhow::Result<u64> {
        let body = json!({ "sql": sql }).to_string();
        let (status, answer) = self.http.post_json(ROUTE_SQL, body.as_bytes())?;
        ensure!(
            status == 200,
            "{} failed ({status}): {}",
            crate::realtime::ws::clip(sql),
            String::from_utf8_lossy(answer)
        );
        let answer: SqlAnswer = serde_json::from_slice(answer)
            .with_context(|| format!("answer to {} is not JSON", crate::realtime::ws::clip(sql)))?;
        Ok(answer.results.last().map_or(0, |r| r.row_count))
    }
}
