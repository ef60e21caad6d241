//! A `strand serve` child process on 127.0.0.1:0 with its own data directory, started by
//! `--spawn`: killed on drop, so a failed run leaves no server behind.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::cli::Fsync;

/// Names another `strand` binary to measure, e.g. a build of an experimental change.
pub const STRAND_BINARY_ENV: &str = "STRAND_BENCH_BINARY";
/// The admin password of spawned servers.
pub const ADMIN_PASSWORD: &str = "bench-admin-password";
/// How long a server may take to print its ready line (a restart of a large data directory
/// included).
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// A running `strand serve`.
pub struct StrandProcess {
    child: Child,
    binary: PathBuf,
    pub http: SocketAddr,
    pub quic: SocketAddr,
    /// The QUIC address asked for: port 0 (any) unless the server must be reachable at a
    /// known address, as a cluster member must; a restart asks for it again.
    quic_bind: SocketAddr,
    pub data_dir: PathBuf,
    pub fsync: Fsync,
    /// From spawn to the ready line.
    pub ready_after: Duration,
    extra_args: Vec<String>,
    /// Environment variables set for the server (kept by a restart).
    env: Vec<(String, String)>,
    stderr_path: PathBuf,
}

impl StrandProcess {
    /// Starts `binary` with `--fsync <fsync>` on `data_dir` (created when missing).
    pub fn start(
        binary: &Path,
        data_dir: &Path,
        fsync: Fsync,
        extra_args: &[String],
    ) -> anyhow::Result<StrandProcess> {
        StrandProcess::start_with_env(binary, data_dir, fsync, extra_args, &[])
    }

    /// [`StrandProcess::start`] with these environment variables set for the server (set
    /// after the developer's own `STRAND_*`/`MIMALLOC_*` are removed), e.g. the memory
    /// workload's `MIMALLOC_PURGE_DELAY=0`; a restart keeps them.
    pub fn start_with_env(
        binary: &Path,
        data_dir: &Path,
        fsync: Fsync,
        extra_args: &[String],
        env: &[(String, String)],
    ) -> anyhow::Result<StrandProcess> {
        let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
        StrandProcess::launch(binary, data_dir, fsync, any_port, extra_args, env)
    }

    /// [`StrandProcess::start`] with QUIC on `quic` (a cluster member: the others must know
    /// its address before it starts).
    pub fn start_at(
        binary: &Path,
        data_dir: &Path,
        fsync: Fsync,
        quic: SocketAddr,
        extra_args: &[String],
    ) -> anyhow::Result<StrandProcess> {
        StrandProcess::launch(binary, data_dir, fsync, quic, extra_args, &[])
    }

    fn launch(
        binary: &Path,
        data_dir: &Path,
        fsync: Fsync,
        quic_bind: SocketAddr,
        extra_args: &[String],
        env: &[(String, String)],
    ) -> anyhow::Result<StrandProcess> {
        std::fs::create_dir_all(data_dir)?;
        let stderr_path = data_dir.with_extension("stderr");
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&stderr_path)?;
        let mut command = Command::new(binary);
        command
            .args(["serve", "--http-addr", "127.0.0.1:0"])
            .arg("--quic-addr")
            .arg(quic_bind.to_string())
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--fsync", fsync.as_str(), "--log-level", "warn"])
            .args(extra_args)
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
        command.envs(env.iter().map(|(name, value)| (name, value)));
        let started = Instant::now();
        let mut child = command
            .spawn()
            .with_context(|| format!("spawn {}", binary.display()))?;
        let stdout = child.stdout.take().context("piped stdout")?;
        let mut server = StrandProcess {
            child,
            binary: binary.to_path_buf(),
            http: SocketAddr::from(([127, 0, 0, 1], 0)),
            quic: SocketAddr::from(([127, 0, 0, 1], 0)),
            quic_bind,
            data_dir: data_dir.to_path_buf(),
            fsync,
            ready_after: Duration::ZERO,
            extra_args: extra_args.to_vec(),
            env: env.to_vec(),
            stderr_path,
        };
        let Some(line) = ready_line(stdout) else {
            bail!("strand printed no ready line:\n{}", server.stderr());
        };
        server.ready_after = started.elapsed();
        let ready: serde_json::Value = serde_json::from_str(&line)
            .with_context(|| format!("ready line is not JSON: {line}"))?;
        let address = |name: &str| {
            ready[name]
                .as_str()
                .and_then(|text| text.parse().ok())
                .with_context(|| format!("no {name} address in the ready line: {line}"))
        };
        server.http = address("http")?;
        server.quic = address("quic")?;
        Ok(server)
    }

    /// Stops this server (SIGTERM, then SIGKILL after 30 s) and starts the same binary on the
    /// same data directory again; the new process gets a new HTTP port (and a new QUIC port
    /// unless it was started at a fixed one).
    pub fn restart(self) -> anyhow::Result<StrandProcess> {
        self.restart_with(|_| Ok(()))
    }

    /// [`StrandProcess::restart`] with `between(data_dir)` run after the server stopped and
    /// before it starts again (e.g. to evict its files from the page cache for a cold start).
    pub fn restart_with(
        self,
        between: impl FnOnce(&Path) -> anyhow::Result<()>,
    ) -> anyhow::Result<StrandProcess> {
        let again = self.relaunch();
        self.stop()?;
        between(&again.data_dir)?;
        again.start()
    }

    /// SIGKILL and wait: the server gets no chance to flush or say goodbye (a crash). The
    /// answer starts it again on the same data directory, QUIC address and arguments.
    pub fn kill(mut self) -> anyhow::Result<Relaunch> {
        let again = self.relaunch();
        self.child.kill().context("SIGKILL")?;
        self.child.wait()?;
        Ok(again)
    }

    fn relaunch(&self) -> Relaunch {
        Relaunch {
            binary: self.binary.clone(),
            data_dir: self.data_dir.clone(),
            fsync: self.fsync,
            quic_bind: self.quic_bind,
            extra_args: self.extra_args.clone(),
            env: self.env.clone(),
        }
    }

    /// SIGTERM and wait (SIGKILL after 30 s).
    pub fn stop(mut self) -> anyhow::Result<()> {
        let pid = libc::pid_t::try_from(self.child.id()).context("pid out of range")?;
        terminate(pid);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server wrote to stderr so far (for failure reports).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// The server's CA certificate for QUIC clients.
    pub fn ca_cert(&self) -> PathBuf {
        self.data_dir.join("tls").join("cert.pem")
    }
}

/// How a stopped server is started again ([`StrandProcess::kill`]).
pub struct Relaunch {
    binary: PathBuf,
    pub data_dir: PathBuf,
    fsync: Fsync,
    quic_bind: SocketAddr,
    extra_args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Relaunch {
    pub fn start(&self) -> anyhow::Result<StrandProcess> {
        let Relaunch {
            binary,
            data_dir,
            fsync,
            quic_bind,
            extra_args,
            env,
        } = self;
        StrandProcess::launch(binary, data_dir, *fsync, *quic_bind, extra_args, env)
    }
}

impl Drop for StrandProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SIGTERM to `pid`.
fn terminate(pid: libc::pid_t) {
    crate::sys::signal_terminate(pid);
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

/// The `strand` binary --spawn starts: `explicit`, else [`STRAND_BINARY_ENV`], else `strand`
/// next to this executable (`cargo build --release` puts both in `target/release`), else
/// `strand` on PATH.
pub fn strand_binary(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    if let Some(path) = std::env::var_os(STRAND_BINARY_ENV) {
        return Ok(PathBuf::from(path));
    }
    let sibling = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("strand")));
    if let Some(sibling) = sibling.filter(|p| p.is_file()) {
        return Ok(sibling);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("strand"))
            .find(|p| p.is_file())
    });
    on_path.context(
        "no `strand` binary to spawn: build it beside this tool \
         (`cargo build --release --bin strand --bin strand-bench`), set STRAND_BENCH_BINARY \
         or pass --strand-bin",
    )
}
