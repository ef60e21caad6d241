//! One server under test: the release `strand` started by `http_sql`'s `StrandServer` (fresh
//! data directory, 127.0.0.1:0, `--fsync interval`), a `bench` namespace, a `dba` user whose
//! token authenticates every WebSocket upgrade, SQL over keep-alive HTTP, bulk loads, and the
//! server's anonymous resident memory and CPU time read from `/proc`.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use serde_json::json;

use crate::http::HttpConnection;
use crate::strand::{StrandServer, StrandSystem};
use crate::workload::{Connection, System};

/// Every server of this bench runs with this fsync policy.
pub const FSYNC: &str = "interval";
/// The user the WebSocket clients log in as (role `dba`: may read every SHARED table).
const BENCH_USER: &str = "bench";
const BENCH_PASSWORD: &str = "bench-realtime-password";
/// Rows per multi-row INSERT of a bulk load (about 100 KB of SQL, under the 1 MiB body limit).
pub const LOAD_ROWS_PER_STATEMENT: usize = 5000;
/// Parallel HTTP connections of a bulk load.
const LOAD_CLIENTS: usize = 2;

/// The columns of every bench table: `(id BIGINT PRIMARY KEY, room INT, v INT)`, SHARED.
pub fn create_table_sql(table: &str) -> String {
    format!("CREATE TABLE {table} (id BIGINT PRIMARY KEY, room INT, v INT) WITH (TYPE = 'SHARED')")
}

/// A running server, logged in twice: as `admin` over HTTP and as `bench` for WebSockets.
pub struct Bench {
    pub server: StrandServer,
    pub system: StrandSystem,
    /// A JWT of the `bench` user, for `Authorization: Bearer` on the WebSocket upgrade.
    pub token: String,
}

impl Bench {
    /// Start a server in `<scratch>/<name>` with the `bench` namespace and user.
    pub fn start(scratch: &Path, name: &str) -> anyhow::Result<Bench> {
        Bench::start_with_env(scratch, name, &[])
    }

    /// [`Bench::start`] with these environment variables set for the server.
    pub fn start_with_env(
        scratch: &Path,
        name: &str,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Bench> {
        let server = StrandServer::start_with_env(&scratch.join(name), FSYNC, env)?;
        let system = server.system()?;
        let bench = Bench {
            token: String::new(),
            server,
            system,
        };
        bench.sql("CREATE NAMESPACE bench")?;
        bench.sql(&format!(
            "CREATE USER '{BENCH_USER}' WITH PASSWORD '{BENCH_PASSWORD}' ROLE dba"
        ))?;
        let token = bench.login()?;
        eprintln!(
            "strand --fsync {FSYNC} ({name}): pid {}",
            bench.server.pid()
        );
        Ok(Bench { token, ..bench })
    }

    fn login(&self) -> anyhow::Result<String> {
        let mut http = HttpConnection::connect(self.server.http, None)?;
        let body = json!({"username": BENCH_USER, "password": BENCH_PASSWORD}).to_string();
        let (status, answer) = http.post_json("/v1/api/auth/login", body.as_bytes())?;
        let answer: serde_json::Value = serde_json::from_slice(answer)?;
        ensure!(
            status == 200,
            "login of {BENCH_USER} failed ({status}): {answer}"
        );
        Ok(answer["token"]
            .as_str()
            .context("login answer has no token")?
            .to_string())
    }

    /// A keep-alive HTTP SQL connection as `admin`.
    pub fn session(&self) -> anyhow::Result<Box<dyn Connection + '_>> {
        self.system.connect()
    }

    /// Run one request's statements; the row count of the last.
    pub fn sql(&self, sql: &str) -> anyhow::Result<u64> {
        let reply = self
            .session()?
            .insert_rows(sql)
            .with_context(|| format!("SQL {}", crate::ws::clip(sql)))?;
        Ok(reply.rows)
    }

    /// Create `table` and fill it with `rows` rows, ids `1..=rows`, `room = id % rooms`,
    /// `v = 0`, in multi-row INSERTs of literals. Returns the load time.
    pub fn create_and_load(
        &self,
        table: &str,
        rows: usize,
        rooms: i64,
    ) -> anyhow::Result<Duration> {
        self.sql(&create_table_sql(table))?;
        let started = Instant::now();
        let statements = rows.div_ceil(LOAD_ROWS_PER_STATEMENT);
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..LOAD_CLIENTS)
                .map(|client| {
                    scope.spawn(move || -> anyhow::Result<()> {
                        let mut session = self.session()?;
                        for statement in (client..statements).step_by(LOAD_CLIENTS) {
                            let first = statement * LOAD_ROWS_PER_STATEMENT + 1;
                            let last = ((statement + 1) * LOAD_ROWS_PER_STATEMENT).min(rows);
                            let sql = insert_sql(table, first as i64..=last as i64, rooms);
                            let written = session.insert_rows(&sql)?.rows;
                            ensure!(written as usize == last + 1 - first, "short insert");
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

    /// The server's `RssAnon` (anonymous resident memory) in bytes and its number of threads,
    /// from one read of `/proc/<pid>/status`.
    pub fn rss_anon_and_threads(&self) -> anyhow::Result<(u64, u64)> {
        let path = format!("/proc/{}/status", self.server.pid());
        let status = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
        let field = |name: &str| -> anyhow::Result<u64> {
            let Some(line) = status.lines().find_map(|l| l.strip_prefix(name)) else {
                bail!("no {name} in {path}");
            };
            line.split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .with_context(|| format!("bad line {name} {line:?}"))
        };
        Ok((field("RssAnon:")? * 1024, field("Threads:")?))
    }

    /// The server's own heap figure (`strand_heap_in_use_bytes{allocator="..."}` of
    /// `GET /metrics`): the allocator's name and the bytes.
    pub fn heap_metric(&self) -> anyhow::Result<(String, u64)> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(self.server.http).context("connect")?;
        stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")?;
        let mut text = String::new();
        stream.read_to_string(&mut text).context("read /metrics")?;
        let line = text
            .lines()
            .find_map(|line| line.strip_prefix("strand_heap_in_use_bytes{allocator=\""))
            .context("no strand_heap_in_use_bytes{allocator=...} in /metrics")?;
        let (allocator, rest) = line.split_once("\"}").context("bad heap metric line")?;
        let bytes = rest.trim().parse().context("bad heap metric value")?;
        Ok((allocator.to_string(), bytes))
    }

    /// CPU time the server has used so far, all threads.
    pub fn cpu_ns(&self) -> u64 {
        self.system.cpu_ns().unwrap_or(0)
    }

    /// Print the server's stderr (after a failure).
    pub fn dump_stderr(&self) {
        eprintln!(
            "strand (pid {}) stderr:\n{}",
            self.server.pid(),
            self.server.stderr()
        );
    }
}

/// `INSERT INTO <table> (id, room, v) VALUES (...), ...` for `ids`.
pub fn insert_sql(table: &str, ids: std::ops::RangeInclusive<i64>, rooms: i64) -> String {
    let mut sql = format!("INSERT INTO {table} (id, room, v) VALUES ");
    for (i, id) in ids.enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        let _ = write!(sql, "({id}, {}, 0)", id % rooms);
    }
    sql
}

/// CPU time this process has used so far, all threads (from each thread's schedstat).
pub fn own_cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|text| text.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// CPU use of this process and of the server over a stretch of wall time.
pub struct CpuMeter {
    started: Instant,
    client_ns: u64,
    server_ns: u64,
}

impl CpuMeter {
    pub fn start(bench: &Bench) -> CpuMeter {
        CpuMeter {
            started: Instant::now(),
            client_ns: own_cpu_ns(),
            server_ns: bench.cpu_ns(),
        }
    }

    /// (client, server) CPU in percent of one core since [`CpuMeter::start`].
    pub fn percent(&self, bench: &Bench) -> (f64, f64) {
        let wall = self.started.elapsed().as_nanos().max(1) as f64;
        let client = own_cpu_ns().saturating_sub(self.client_ns) as f64;
        let server = bench.cpu_ns().saturating_sub(self.server_ns) as f64;
        (100.0 * client / wall, 100.0 * server / wall)
    }
}
