//! The server a workload measures: one the tool spawned (per fsync policy) or the user's own
//! (`--url`, `--server`), with the credentials to log in and the clients to reach it.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use serde_json::json;
use strand_wire::quic::client::Client;

use crate::cli::{Fsync, TargetArgs};
use crate::http::HttpConnection;
use crate::spawn::{self, StrandProcess, ADMIN_PASSWORD};

/// How long a QUIC connection (handshake and auth) may take.
const QUIC_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The SQL endpoint, the login and the metrics of SPEC.md section 4.
pub const ROUTE_SQL: &str = "/v1/api/sql";
const ROUTE_LOGIN: &str = "/v1/api/auth/login";
const ROUTE_METRICS: &str = "/metrics";
/// The WebSocket gateway.
pub const ROUTE_WS: &str = "/v1/ws";

/// One Strand server to measure.
pub struct Target {
    /// The fsync policy, when the tool chose it.
    pub fsync: Option<Fsync>,
    pub http: SocketAddr,
    pub quic: Option<SocketAddr>,
    pub ca_cert: Option<PathBuf>,
    pub user: String,
    pub password: String,
    /// The child process when spawned (its pid for CPU figures, restart).
    pub process: Option<StrandProcess>,
}

impl Target {
    /// `fsync=<policy>` or `fsync=server's`.
    pub fn durability(&self) -> String {
        match self.fsync {
            Some(fsync) => format!("fsync={}", fsync.as_str()),
            None => "fsync=server's".to_string(),
        }
    }

    pub fn server_pid(&self) -> Option<u32> {
        self.process.as_ref().map(StrandProcess::pid)
    }

    /// Logs in once; the token serves every later request (an HMAC check instead of an
    /// argon2 verification per request).
    pub fn login(&self) -> anyhow::Result<String> {
        let mut connection = HttpConnection::connect(self.http, None)?;
        let body = json!({"username": self.user, "password": self.password}).to_string();
        let (status, answer) = connection.post_json(ROUTE_LOGIN, body.as_bytes())?;
        let answer: serde_json::Value = serde_json::from_slice(answer)?;
        ensure!(
            status == 200,
            "login as {} failed ({status}): {answer}",
            self.user
        );
        let token = answer["token"]
            .as_str()
            .context("login answer has no token")?;
        Ok(token.to_string())
    }

    /// An HTTP connection carrying `Authorization: Bearer <token>`.
    pub fn http_connection(&self, token: &str) -> anyhow::Result<HttpConnection> {
        HttpConnection::connect(self.http, Some(&format!("Bearer {token}")))
    }

    /// Runs `sql` (setup statements) and fails on anything but success.
    pub fn sql(&self, token: &str, sql: &str) -> anyhow::Result<serde_json::Value> {
        let mut connection = self.http_connection(token)?;
        let body = json!({ "sql": sql }).to_string();
        let (status, answer) = connection.post_json(ROUTE_SQL, body.as_bytes())?;
        let answer: serde_json::Value = serde_json::from_slice(answer)
            .with_context(|| format!("answer to {sql:?} is not JSON"))?;
        ensure!(status == 200, "{sql:?} failed ({status}): {answer}");
        Ok(answer)
    }

    /// The Prometheus text of `/metrics`.
    pub fn metrics(&self, token: &str) -> anyhow::Result<String> {
        let mut connection = self.http_connection(token)?;
        let (status, body) = connection.get(ROUTE_METRICS)?;
        ensure!(status == 200, "GET /metrics answered {status}");
        Ok(String::from_utf8_lossy(body).into_owned())
    }

    /// A QUIC connection authenticated with `token`.
    pub async fn quic_client(&self, token: &str) -> anyhow::Result<Client> {
        let (Some(quic), Some(ca_cert)) = (self.quic, self.ca_cert.as_ref()) else {
            bail!("this workload needs QUIC: give --server and --ca-cert (or --spawn)");
        };
        let connect = Client::connect_token(quic, ca_cert, token);
        tokio::time::timeout(QUIC_CONNECT_TIMEOUT, connect)
            .await
            .context("QUIC connect: no connection within 10 s")?
            .context("QUIC connect")
    }
}

/// Opens [`Target`]s as the command line says: a fresh spawned server per call, or the
/// running one.
pub struct Targets {
    args: TargetArgs,
    scratch: PathBuf,
    spawned: usize,
}

impl Targets {
    pub fn new(args: TargetArgs, scratch: PathBuf) -> Targets {
        Targets {
            args,
            scratch,
            spawned: 0,
        }
    }

    /// Whether the tool starts its own servers.
    pub fn spawns(&self) -> bool {
        self.args.url.is_none() && self.args.server.is_none()
    }

    /// Whether `--peers` was given.
    pub fn peers(&self) -> bool {
        self.args.peers
    }

    /// The `strand` binary spawned servers run (for workloads that start their own, as
    /// `cluster` does).
    pub fn strand_binary(&self) -> anyhow::Result<PathBuf> {
        spawn::strand_binary(self.args.strand_bin.as_deref())
    }

    /// The scratch directory of this run.
    pub fn scratch(&self) -> &std::path::Path {
        &self.scratch
    }

    /// The policies a workload runs: `--fsync` when given, else `defaults`; one pass (the
    /// server's own policy) against a running server.
    pub fn fsync_policies(&self, defaults: &[Fsync]) -> Vec<Option<Fsync>> {
        if !self.spawns() {
            return vec![None];
        }
        let chosen = if self.args.fsync.is_empty() {
            defaults
        } else {
            &self.args.fsync
        };
        chosen.iter().copied().map(Some).collect()
    }

    /// A server to measure: a new spawned one with `fsync` (and `extra_args` for `strand
    /// serve`), or the running one.
    pub fn open(&mut self, fsync: Option<Fsync>, extra_args: &[String]) -> anyhow::Result<Target> {
        self.open_with_env(fsync, extra_args, &[])
    }

    /// [`Targets::open`] with environment variables for a spawned server (ignored for the
    /// running one).
    pub fn open_with_env(
        &mut self,
        fsync: Option<Fsync>,
        extra_args: &[String],
        env: &[(String, String)],
    ) -> anyhow::Result<Target> {
        if !self.spawns() {
            return self.remote();
        }
        let fsync = fsync.unwrap_or(Fsync::Interval);
        // What an earlier workload left dirty in the page cache (gigabytes after a produce
        // run without fsync) would otherwise be written back during this one's window, and
        // its fdatasyncs would wait behind it.
        crate::sys::sync_file_systems();
        let binary = spawn::strand_binary(self.args.strand_bin.as_deref())?;
        self.spawned += 1;
        let dir = self
            .scratch
            .join(format!("strand-{}-{}", self.spawned, fsync.as_str()));
        let process = match env {
            [] => StrandProcess::start(&binary, &dir, fsync, extra_args)?,
            env => StrandProcess::start_with_env(&binary, &dir, fsync, extra_args, env)?,
        };
        Ok(Target {
            fsync: Some(fsync),
            http: process.http,
            quic: Some(process.quic),
            ca_cert: Some(process.ca_cert()),
            user: "admin".to_string(),
            password: ADMIN_PASSWORD.to_string(),
            process: Some(process),
        })
    }

    fn remote(&self) -> anyhow::Result<Target> {
        let Some(password) = self.args.password.clone() else {
            bail!("a running server needs --password (or STRAND_BENCH_PASSWORD) for --user");
        };
        let http = match &self.args.url {
            Some(url) => resolve(strip_scheme(url)?)?,
            None => bail!("--server (QUIC) needs --url too (setup runs over HTTP)"),
        };
        let quic = self.args.server.as_deref().map(resolve).transpose()?;
        Ok(Target {
            fsync: None,
            http,
            quic,
            ca_cert: self.args.ca_cert.clone(),
            user: self.args.user.clone(),
            password,
            process: None,
        })
    }
}

/// `http://host:port[/]` to `host:port` (TLS is not spoken by this tool yet).
fn strip_scheme(url: &str) -> anyhow::Result<&str> {
    if url.starts_with("https://") {
        bail!("--url: https is not supported by strand-bench yet; give the http:// address");
    }
    let rest = url.strip_prefix("http://").unwrap_or(url);
    Ok(rest.trim_end_matches('/'))
}

fn resolve(address: &str) -> anyhow::Result<SocketAddr> {
    address
        .to_socket_addrs()
        .with_context(|| format!("resolve {address}"))?
        .next()
        .with_context(|| format!("{address} resolves to no address"))
}
