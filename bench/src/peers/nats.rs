//! `nats-server` as a peer: a throwaway server (`nats-server -js`, JetStream with file storage
//! in a directory under the run's scratch directory, 127.0.0.1 on a free port), killed and its
//! store removed on drop. The JetStream workloads (`peers/jetstream.rs`) and NATS core pub/sub
//! both start it with [`NatsServer::start`] and connect to [`NatsServer::url`].

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// How long the server may take to listen.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(15);

/// `nats-server --version` (e.g. `nats-server: v2.9.10`), `None` when it is not installed.
pub fn installed_version() -> Option<String> {
    let output = Command::new("nats-server").arg("--version").output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// A running `nats-server` (killed on drop).
pub struct NatsServer {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
    stderr_path: PathBuf,
}

impl NatsServer {
    /// Starts `nats-server -js` on 127.0.0.1 at a free port, its JetStream store in
    /// `<dir>/jetstream` (created), and waits until it listens.
    pub fn start(dir: &Path) -> anyhow::Result<NatsServer> {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        // A port the kernel just handed out and released: free unless another program takes
        // it in the few milliseconds before the server binds it.
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let stderr_path = dir.join("nats.stderr");
        let stderr = std::fs::File::create(&stderr_path)
            .with_context(|| format!("create {}", stderr_path.display()))?;
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(dir.join("jetstream"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .context("spawn nats-server")?;
        let mut server = NatsServer {
            child,
            addr,
            dir: dir.to_path_buf(),
            stderr_path,
        };
        let started = Instant::now();
        while TcpStream::connect(addr).is_err() {
            if let Some(status) = server.child.try_wait()? {
                bail!("nats-server exited ({status}):\n{}", server.stderr());
            }
            if started.elapsed() > LISTEN_TIMEOUT {
                bail!(
                    "nats-server did not listen within 15 s:\n{}",
                    server.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    /// `nats://127.0.0.1:<port>`, for `async_nats::connect`.
    pub fn url(&self) -> String {
        format!("nats://{}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server wrote to stderr so far (for failure reports).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// A client connection (core NATS; `async_nats::jetstream::new` wraps it for JetStream).
    pub async fn connect(&self) -> anyhow::Result<async_nats::Client> {
        async_nats::connect(self.url())
            .await
            .with_context(|| format!("NATS connect to {}", self.url()))
    }
}

impl Drop for NatsServer {
    /// Stops the server and removes its store: a later case must not pay for this one's
    /// page cache and writeback.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
