//! The Strand side: a `strand serve` child process on 127.0.0.1:0 with its own data directory
//! (killed on drop, so a failing run leaves no server behind), one login for a Bearer token,
//! and [`Connection`]s that speak `POST /v1/api/sql` over keep-alive HTTP/1.1.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use serde::Deserialize;
use serde_json::json;

use crate::http::HttpConnection;
use crate::workload::{row_name, row_qty, Connection, Reply, System, INSERT_ROW};
use crate::workload::{CREATE_TABLE_COLUMNS, SELECT_BY_ID};

/// The binary Cargo built for this package (`cargo bench` builds it with the bench profile).
const STRAND_BINARY: &str = env!("CARGO_BIN_EXE_strand");
/// Names another `strand` binary to measure instead, e.g. a build of an experimental change.
const STRAND_BINARY_ENV: &str = "STRAND_BENCH_BINARY";
pub const ADMIN_PASSWORD: &str = "bench-admin-password";
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const ROUTE_SQL: &str = "/v1/api/sql";

/// A running `strand serve`.
pub struct StrandServer {
    child: Child,
    pub http: SocketAddr,
    /// The QUIC address of the ready line (read by the `topics` bench).
    #[allow(dead_code)]
    pub quic: SocketAddr,
    /// The data directory (the `topics` bench reads `<data-dir>/tls/cert.pem`).
    #[allow(dead_code)]
    pub data_dir: PathBuf,
    pub fsync: String,
    stderr_path: PathBuf,
}

impl StrandServer {
    /// Start with `--fsync <fsync>` on a new data directory `data_dir`.
    pub fn start(data_dir: &Path, fsync: &str) -> anyhow::Result<StrandServer> {
        StrandServer::start_with_env(data_dir, fsync, &[])
    }

    /// [`StrandServer::start`] with these environment variables set for the server.
    pub fn start_with_env(
        data_dir: &Path,
        fsync: &str,
        env: &[(&str, &str)],
    ) -> anyhow::Result<StrandServer> {
        std::fs::create_dir_all(data_dir)?;
        let stderr_path = data_dir.with_extension("stderr");
        let stderr = std::fs::File::create(&stderr_path)?;
        let binary = strand_binary();
        let mut command = Command::new(&binary);
        command
            .args([
                "serve",
                "--http-addr",
                "127.0.0.1:0",
                "--quic-addr",
                "127.0.0.1:0",
            ])
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--fsync", fsync, "--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        // The developer's own settings (Strand's, its allocator's) must not change what is
        // measured.
        let theirs = |name: &str| name.starts_with("STRAND_") || name.starts_with("MIMALLOC_");
        for (name, _) in std::env::vars().filter(|(name, _)| theirs(name)) {
            command.env_remove(name);
        }
        command.env("STRAND_ADMIN_PASSWORD", ADMIN_PASSWORD);
        command.envs(env.iter().copied());
        let mut child = command
            .spawn()
            .with_context(|| format!("spawn {}", binary.display()))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let mut server = StrandServer {
            child,
            http: SocketAddr::from(([127, 0, 0, 1], 0)),
            quic: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.to_path_buf(),
            fsync: fsync.to_string(),
            stderr_path,
        };
        let Some(line) = ready_line(stdout) else {
            bail!("strand printed no ready line:\n{}", server.stderr());
        };
        let ready: serde_json::Value = serde_json::from_str(&line)
            .with_context(|| format!("ready line is not JSON: {line}"))?;
        server.http = ready["http"]
            .as_str()
            .and_then(|text| text.parse().ok())
            .with_context(|| format!("no http address in the ready line: {line}"))?;
        server.quic = ready["quic"]
            .as_str()
            .and_then(|text| text.parse().ok())
            .with_context(|| format!("no quic address in the ready line: {line}"))?;
        Ok(server)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Log in as `admin` once: every request then carries the token (an HMAC check) instead of
    /// Basic credentials (an argon2 verification per request).
    pub fn system(&self) -> anyhow::Result<StrandSystem> {
        let mut connection = HttpConnection::connect(self.http, None)?;
        let body = json!({"username": "admin", "password": ADMIN_PASSWORD}).to_string();
        let (status, answer) = connection.post_json("/v1/api/auth/login", body.as_bytes())?;
        let answer: serde_json::Value = serde_json::from_slice(answer)?;
        ensure!(status == 200, "login failed ({status}): {answer}");
        let token = answer["token"]
            .as_str()
            .context("login answer has no token")?;
        Ok(StrandSystem {
            pid: self.pid(),
            http: self.http,
            authorization: format!("Bearer {token}"),
            durability: format!("fsync={}", self.fsync),
        })
    }
}

/// [`STRAND_BINARY`], unless [`STRAND_BINARY_ENV`] names another.
pub fn strand_binary() -> PathBuf {
    std::env::var_os(STRAND_BINARY_ENV).map_or_else(|| PathBuf::from(STRAND_BINARY), PathBuf::from)
}

impl Drop for StrandServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first stdout line within [`READY_TIMEOUT`]; the rest is drained in the background.
fn ready_line(stdout: std::process::ChildStdout) -> Option<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(line)) = lines.next() {
            let _ = sender.send(line);
        }
        for _ in lines {}
    });
    receiver.recv_timeout(READY_TIMEOUT).ok()
}

/// A logged-in Strand server.
pub struct StrandSystem {
    pid: u32,
    http: SocketAddr,
    authorization: String,
    durability: String,
}

impl StrandSystem {
    /// `CREATE NAMESPACE bench` and the SHARED table `bench.items`.
    pub fn create_table(&self) -> anyhow::Result<()> {
        let mut connection = self.open()?;
        let sql = format!(
            "CREATE NAMESPACE bench; CREATE TABLE bench.items {CREATE_TABLE_COLUMNS} \
             WITH (TYPE = 'SHARED')"
        );
        connection.run(&sql, &[])?;
        Ok(())
    }

    fn open(&self) -> anyhow::Result<StrandConnection> {
        Ok(StrandConnection {
            http: HttpConnection::connect(self.http, Some(&self.authorization))?,
        })
    }
}

impl System for StrandSystem {
    fn name(&self) -> &'static str {
        "strand"
    }

    fn durability(&self) -> &str {
        &self.durability
    }

    fn durable(&self) -> bool {
        self.durability == "fsync=always"
    }

    fn connect(&self) -> anyhow::Result<Box<dyn Connection + '_>> {
        Ok(Box::new(self.open()?))
    }

    /// The sum over the server's threads of `/proc/<pid>/task/<tid>/schedstat` (its first
    /// field is the time on a CPU, in nanoseconds).
    fn cpu_ns(&self) -> Option<u64> {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.pid)).ok()?;
        let mut total = 0;
        for task in tasks.filter_map(Result::ok) {
            // A thread that ended meanwhile has no file any more: its time is lost (small).
            let text = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            let on_cpu_ns = text
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok());
            total += on_cpu_ns.unwrap_or(0);
        }
        Some(total)
    }
}

struct StrandConnection {
    http: HttpConnection,
}

/// The parts of a success answer the bench checks; `rows` and `columns` are skipped.
#[derive(Deserialize)]
struct SqlAnswer {
    status: String,
    results: Vec<StatementAnswer>,
    took_ms: f64,
}

#[derive(Deserialize)]
struct StatementAnswer {
    row_count: u64,
}

impl StrandConnection {
    /// `POST /v1/api/sql`; the row count of the last statement and the server's `took_ms`.
    fn run(&mut self, sql: &str, params: &[serde_json::Value]) -> anyhow::Result<Reply> {
        let body = json!({"sql": sql, "params": params}).to_string();
        let (status, answer) = self.http.post_json(ROUTE_SQL, body.as_bytes())?;
        if status != 200 {
            bail!("HTTP {status}: {}", String::from_utf8_lossy(answer));
        }
        let answer: SqlAnswer = serde_json::from_slice(answer)?;
        ensure!(answer.status == "success", "status {}", answer.status);
        Ok(Reply {
            rows: answer.results.last().map_or(0, |r| r.row_count),
            server_ns: Some((answer.took_ms * 1e6) as u64),
        })
    }
}

impl Connection for StrandConnection {
    fn insert_row(&mut self, id: i64) -> anyhow::Result<Reply> {
        let params = [json!(id), json!(row_name(id)), json!(row_qty(id))];
        self.run(INSERT_ROW, &params)
    }

    fn insert_rows(&mut self, statement: &str) -> anyhow::Result<Reply> {
        self.run(statement, &[])
    }

    fn select_row(&mut self, id: i64) -> anyhow::Result<Reply> {
        self.run(SELECT_BY_ID, &[json!(id)])
    }
}
