//! `strand-tests`: the harness for end-to-end tests. It starts the real `strand` binary on
//! port 0 with a temporary data directory, reads its ready line and talks to it over HTTP.
//! It owns no product code.
//!
//! The binary is found next to the test executable (`target/<profile>/strand`). Cargo does not
//! build another package's binaries for this one's tests, so the harness runs
//! `cargo build -p strand-broker --bin strand` (same profile) once per test process first (a
//! no-op when it is up to date), which also keeps a stale binary from being tested; the same
//! for the `strand-bench` load tool.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

pub mod adversary;
pub mod cluster;
pub mod cluster_groups;
pub mod cluster_tables;
pub mod cluster_topics;
pub mod kept_logs;
pub mod local_cluster;
pub mod sys;
pub mod ws;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;

/// How long a server may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a start that cannot bind its (fixed) address is tried again.
const BIND_RETRY_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a server may take to exit after SIGTERM.
const EXIT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one HTTP exchange may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// The `strand` binary of this workspace, built once per test process.
pub fn strand_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| build_binary("strand-broker", "strand"))
}

/// The `strand-bench` load tool of this workspace, built once per test process.
pub fn bench_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| build_binary("strand-bench", "strand-bench"))
}

fn build_binary(package: &str, bin: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps");
    let target_dir = profile_dir.parent().expect("target directory");
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut command = Command::new(cargo);
    command
        .args(["build", "--quiet", "-p", package, "--bin", bin])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir);
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        // `cargo test` builds with the `test` profile into target/debug: building the binary
        // with it too reuses every compiled dependency (and its opt-level, which argon2 needs).
        Some("debug") => {
            command.args(["--profile", "test"]);
        }
        Some("release") => {
            command.arg("--release");
        }
        Some(other) => {
            command.args(["--profile", other]);
        }
        None => panic!("unexpected target layout: {}", exe.display()),
    }
    // Cargo gives a test the variables of its own package; inherited, they would look like a
    // changed environment to build scripts (ring's) and rebuild dependencies on every run.
    for (name, _) in std::env::vars().filter(|(name, _)| set_by_cargo_for_tests(name)) {
        command.env_remove(name);
    }
    // Output only on failure: the build's warnings belong to the build, not to every test.
    let output = command.output().expect("run cargo build");
    assert!(
        output.status.success(),
        "cargo build of {bin} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let binary = profile_dir.join(bin);
    assert!(binary.exists(), "no binary at {}", binary.display());
    binary
}

fn set_by_cargo_for_tests(name: &str) -> bool {
    const PREFIXES: [&str; 4] = [
        "CARGO_PKG_",
        "CARGO_MANIFEST_",
        "CARGO_BIN_",
        "CARGO_CRATE_",
    ];
    PREFIXES.iter().any(|prefix| name.starts_with(prefix))
        || matches!(name, "CARGO_PRIMARY_PACKAGE" | "CARGO_TARGET_TMPDIR")
}

/// How to start a server.
#[derive(Clone, Debug, Default)]
pub struct ServerOptions {
    /// `STRAND_ADMIN_PASSWORD`; `None` leaves it unset (a password is generated).
    pub admin_password: Option<String>,
    /// More `strand serve` flags. `--quic-addr` among them replaces the default
    /// `127.0.0.1:0` (a cluster member needs an address its peers know before it starts).
    pub args: Vec<String>,
}

impl ServerOptions {
    pub fn with_admin_password(password: &str) -> ServerOptions {
        ServerOptions {
            admin_password: Some(password.to_string()),
            ..ServerOptions::default()
        }
    }
}

/// A running `strand serve`; killed on drop if still running.
pub struct StrandServer {
    child: Option<Child>,
    pub ready_line: String,
    pub http: SocketAddr,
    pub quic: SocketAddr,
    pub data_dir: PathBuf,
    stderr: tempfile::NamedTempFile,
}

impl StrandServer {
    /// A QUIC client authenticated as `user`, trusting the certificate this server wrote.
    pub async fn quic_client(
        &self,
        user: &str,
        password: &str,
    ) -> strand_wire::quic::client::Client {
        let ca = self.data_dir.join("tls/cert.pem");
        strand_wire::quic::client::Client::connect_password(self.quic, &ca, user, password)
            .await
            .unwrap_or_else(|e| panic!("QUIC connect as {user}: {e}"))
    }

    /// Start on port 0 with `data_dir` and wait for the ready line.
    pub fn start(data_dir: &Path, options: &ServerOptions) -> StrandServer {
        StrandServer::start_with(data_dir, options, |_| {})
    }

    /// [`StrandServer::start`] with the server's `RLIMIT_FSIZE` at `file_bytes_max`: a write
    /// that would make any file larger fails with EFBIG (SIGXFSZ is ignored, so the server is
    /// not killed), as a full disk fails a write with ENOSPC. Its stderr is limited too.
    pub fn start_with_file_size_limit(
        data_dir: &Path,
        options: &ServerOptions,
        file_bytes_max: u64,
    ) -> StrandServer {
        StrandServer::start_with(data_dir, options, |command| {
            sys::limit_child_file_size(command, file_bytes_max);
        })
    }

    /// Starts the server; a server restarted on its fixed cluster address (`--quic-addr`
    /// given) may find the port taken for a moment (by a client socket the kernel gave it
    /// meanwhile), so a start that fails to bind is tried again, for up to
    /// [`BIND_RETRY_TIMEOUT`].
    fn start_with(
        data_dir: &Path,
        options: &ServerOptions,
        configure: impl Fn(&mut Command),
    ) -> StrandServer {
        let deadline = Instant::now() + BIND_RETRY_TIMEOUT;
        loop {
            match StrandServer::try_start(data_dir, options, &configure) {
                Ok(server) => return server,
                Err(log) if log.contains("Address already in use") && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(log) => {
                    panic!("strand serve printed no ready line within {READY_TIMEOUT:?}:\n{log}")
                }
            }
        }
    }

    /// One start: the server, or its stderr if it printed no ready line.
    fn try_start(
        data_dir: &Path,
        options: &ServerOptions,
        configure: &impl Fn(&mut Command),
    ) -> Result<StrandServer, String> {
        let stderr = tempfile::NamedTempFile::new().expect("stderr file");
        let mut command = Command::new(strand_binary());
        command
            .args(["serve", "--http-addr", "127.0.0.1:0"])
            .args(
                (!options.args.iter().any(|a| a == "--quic-addr"))
                    .then_some(["--quic-addr", "127.0.0.1:0"])
                    .into_iter()
                    .flatten(),
            )
            .arg("--data-dir")
            .arg(data_dir)
            .args(&options.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr.reopen().expect("stderr handle"));
        // The developer's own settings must not leak into a test server.
        for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("STRAND_")) {
            command.env_remove(name);
        }
        if let Some(password) = &options.admin_password {
            command.env("STRAND_ADMIN_PASSWORD", password);
        }
        configure(&mut command);
        let mut child = command.spawn().expect("spawn strand serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let ready_line = match first_line(stdout) {
            Some(line) => line,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(std::fs::read_to_string(stderr.path()).unwrap_or_default());
            }
        };
        let ready: Value = serde_json::from_str(&ready_line).expect("ready line is JSON");
        let addr = |key: &str| -> SocketAddr {
            let text = ready[key].as_str().expect("address is a string");
            text.parse().expect("address parses")
        };
        Ok(StrandServer {
            http: addr("http"),
            quic: addr("quic"),
            data_dir: PathBuf::from(ready["data_dir"].as_str().expect("data_dir")),
            ready_line,
            child: Some(child),
            stderr,
        })
    }

    /// `http://ADDR<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    /// The server's process id (to read its memory from `/proc`, or to signal it).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Everything the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr.path()).unwrap_or_default()
    }

    /// Send `signal` (e.g. `libc::SIGTERM`) and wait for the exit.
    pub fn stop_with(mut self, signal: i32) -> ExitStatus {
        let mut child = self.child.take().expect("server still running");
        let pid = i32::try_from(child.id()).expect("pid fits i32");
        // `pid` is our own child, not yet reaped.
        let rc = sys::send_signal(pid, signal);
        assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
        let deadline = Instant::now() + EXIT_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("wait for strand") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "strand did not exit within {EXIT_TIMEOUT:?}:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM and wait.
    pub fn terminate(self) -> ExitStatus {
        self.stop_with(libc::SIGTERM)
    }
}

impl Drop for StrandServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        kept_logs::keep(self.stderr.path(), &self.data_dir);
    }
}

/// The first line of `stdout` within `READY_TIMEOUT`; the rest is drained in the background
/// so the server never blocks on a full pipe.
fn first_line(stdout: std::process::ChildStdout) -> Option<String> {
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

/// An HTTP answer: status and body (parsed as JSON when it is JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| {
            panic!("HTTP {} body is not JSON ({e}): {}", self.status, self.text)
        })
    }

    /// Assert the API's error shape (docs/http.md, "Errors") with this status and code; returns the message.
    pub fn assert_error(&self, status: u16, code: &str) -> String {
        assert_eq!(self.status, status, "body: {}", self.text);
        assert!(
            self.content_type.starts_with("application/json"),
            "{self:?}"
        );
        let body = self.json();
        assert_eq!(body["status"], "error", "{body}");
        assert_eq!(body["error"]["code"], code, "{body}");
        let message = body["error"]["message"]
            .as_str()
            .expect("message is a string");
        assert!(!message.is_empty(), "{body}");
        message.to_string()
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(HTTP_TIMEOUT))
        .build()
        .into()
}

fn answer(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Answer {
    let mut response = response.expect("HTTP exchange");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let text = response.body_mut().read_to_string().expect("body");
    Answer {
        status,
        content_type,
        text,
    }
}

/// `GET url`.
pub fn get(url: &str) -> Answer {
    answer(agent().get(url).call())
}

/// `DELETE url` with an optional `Authorization` value.
pub fn delete(url: &str, authorization: Option<&str>) -> Answer {
    let mut request = agent().delete(url);
    if let Some(value) = authorization {
        request = request.header("Authorization", value);
    }
    answer(request.call())
}

/// `POST url` with raw bytes, an optional content type and `Authorization` value.
pub fn post(
    url: &str,
    content_type: Option<&str>,
    authorization: Option<&str>,
    body: &[u8],
) -> Answer {
    let mut request = agent().post(url);
    if let Some(value) = content_type {
        request = request.header("Content-Type", value);
    }
    if let Some(value) = authorization {
        request = request.header("Authorization", value);
    }
    answer(request.send(body))
}

/// `POST url` with a JSON body.
pub fn post_json(url: &str, authorization: Option<&str>, body: &Value) -> Answer {
    post(
        url,
        Some("application/json"),
        authorization,
        body.to_string().as_bytes(),
    )
}

/// Send `head` (request line and headers, without the blank line) and then `body` over a raw
/// connection, and read the whole answer (`Connection: close` is added). For requests a
/// well-behaved client cannot make, such as a body larger than the server takes: the server
/// may answer before reading it all, so only part of the body needs to be sent.
pub fn raw_request(addr: SocketAddr, head: &str, body: &[u8]) -> Answer {
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(HTTP_TIMEOUT))
        .expect("timeout");
    let request = format!("{head}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("write head");
    // The server may close early; what it answered is still readable.
    let _ = stream.write_all(body);
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    let content_type = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-type")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_default();
    Answer {
        status,
        content_type,
        text: body.to_string(),
    }
}

/// `Basic base64(user:password)`.
pub fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

/// Log in; the answer's body.
pub fn login(server: &StrandServer, user: &str, password: &str) -> Answer {
    let body = serde_json::json!({"username": user, "password": password});
    post_json(&server.url("/v1/api/auth/login"), None, &body)
}

/// `Bearer <token>` for `user`: one login (one argon2 verification), where `Basic` costs one
/// verification per request.
pub fn bearer(server: &StrandServer, user: &str, password: &str) -> String {
    let answer = login(server, user, password);
    assert_eq!(answer.status, 200, "login as {user}: {}", answer.text);
    let token = answer.json()["token"].as_str().map(str::to_string);
    format!("Bearer {}", token.expect("token is a string"))
}

/// `POST /v1/api/sql` with `{"sql": text, "params": params}`.
pub fn sql(server: &StrandServer, authorization: &str, text: &str, params: &[Value]) -> Answer {
    let body = serde_json::json!({"sql": text, "params": params});
    post_json(&server.url("/v1/api/sql"), Some(authorization), &body)
}

/// [`sql`] that must succeed: the `results` array (one item per statement).
pub fn sql_ok(
    server: &StrandServer,
    authorization: &str,
    text: &str,
    params: &[Value],
) -> Vec<Value> {
    let answer = sql(server, authorization, text, params);
    assert_eq!(answer.status, 200, "{text}\n-> {}", answer.text);
    let body = answer.json();
    assert_eq!(body["status"], "success", "{text}\n-> {body}");
    match &body["results"] {
        Value::Array(results) => results.clone(),
        other => panic!("{text}\n-> results is not an array: {other}"),
    }
}

/// [`sql_ok`] for one statement that returns rows: the rows.
pub fn rows(
    server: &StrandServer,
    authorization: &str,
    text: &str,
    params: &[Value],
) -> Vec<Value> {
    let results = sql_ok(server, authorization, text, params);
    assert_eq!(results.len(), 1, "{text}\n-> {results:?}");
    match &results[0]["rows"] {
        Value::Array(rows) => rows.clone(),
        other => panic!("{text}\n-> rows is not an array: {other}"),
    }
}

/// [`sql`], or `None` when the HTTP exchange itself fails (refused or cut connection), for
/// tests that stop the server while requests are in flight.
pub fn try_sql(
    server_http: SocketAddr,
    authorization: &str,
    text: &str,
    params: &[Value],
) -> Option<Answer> {
    let body = serde_json::json!({"sql": text, "params": params}).to_string();
    let response = agent()
        .post(format!("http://{server_http}/v1/api/sql"))
        .header("Content-Type", "application/json")
        .header("Authorization", authorization)
        .send(body.as_bytes());
    match response {
        Ok(response) => {
            let mut response = response;
            let status = response.status().as_u16();
            let text = response.body_mut().read_to_string().ok()?;
            Some(Answer {
                status,
                content_type: "application/json".to_string(),
                text,
            })
        }
        Err(_) => None,
    }
}

/// Assert an error answer with a 4xx status (docs/http.md gives the exact one for each kind of
/// error), the error shape and `code`; returns the `error` object.
pub fn assert_client_error(answer: &Answer, code: &str) -> Value {
    assert!(
        (400..500).contains(&answer.status),
        "expected a 4xx {code}, got {}: {}",
        answer.status,
        answer.text
    );
    answer.assert_error(answer.status, code);
    answer.json()["error"].clone()
}

/// The `{"line", "column"}` of an error object, as numbers.
pub fn error_position(error: &Value) -> (u64, u64) {
    let position = &error["position"];
    let number = |key: &str| position[key].as_u64();
    match (number("line"), number("column")) {
        (Some(line), Some(column)) => (line, column),
        _ => panic!("error has no position {{line, column}}: {error}"),
    }
}

/// The administrator password the test servers start with.
pub const ADMIN_PASSWORD: &str = "admin-pw";

/// A server on a fresh data directory, and the `Authorization` value of its administrator.
/// Fields drop in order: the server stops before its data directory is removed.
pub struct AdminServer {
    pub server: StrandServer,
    pub admin: String,
    pub dir: tempfile::TempDir,
}

impl AdminServer {
    /// A server with namespace `app` and whatever `ddl` creates in it.
    pub fn with_app(ddl: &str) -> AdminServer {
        let setup = AdminServer::start();
        setup.exec(&format!("CREATE NAMESPACE app; {ddl}"));
        setup
    }

    /// Run SQL as the administrator; it must succeed.
    pub fn exec(&self, text: &str) {
        sql_ok(&self.server, &self.admin, text, &[]);
    }

    pub fn start() -> AdminServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = StrandServer::start(
            dir.path(),
            &ServerOptions::with_admin_password(ADMIN_PASSWORD),
        );
        let admin = bearer(&server, "admin", ADMIN_PASSWORD);
        AdminServer { server, admin, dir }
    }
}
