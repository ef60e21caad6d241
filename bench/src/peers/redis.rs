//! `redis-server` as a peer for the topics workloads (Redis Streams): a throwaway server on
//! 127.0.0.1 at a free port, its directory under the run's scratch directory, no RDB
//! snapshots (`--save ''`), in one of two configurations ([`RedisConfig`]): an append-only
//! file synced on every write (`appendonly yes`, `appendfsync always`) or no persistence at
//! all. Killed and its directory removed on drop.
//!
//! The client is a small hand-written RESP2 one over a tokio `TcpStream` rather than the
//! `redis` crate: the workloads need four commands (`XADD`, `XRANGE`, `XREAD`, `PING`),
//! explicit pipelining (write a whole batch, then read its replies) and nothing of a
//! connection manager, and a new dependency tree would cost every build.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// How long the server may take to answer a first `PING`.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest bulk string a reply may hold (a bench value is at most a few KiB).
const BULK_BYTES_MAX: usize = 64 << 20;

/// `redis-server --version`'s first words (e.g. `Redis server v=7.0.15`), `None` when it is
/// not installed.
pub fn installed_version() -> Option<String> {
    let output = Command::new("redis-server")
        .arg("--version")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let version = text.split_whitespace().find(|w| w.starts_with("v="))?;
    output
        .status
        .success()
        .then(|| format!("redis-server {version}"))
}

/// How durable a Redis server's acknowledgement is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedisConfig {
    /// `appendonly yes`, `appendfsync always`: the append-only file is synced before the
    /// reply (per event-loop round, so a pipeline shares one fsync), as Strand's
    /// `fsync=always` syncs before its ack.
    AppendfsyncAlways,
    /// `appendonly no`: memory only.
    NoPersistence,
}

impl RedisConfig {
    /// Both, the durable one first.
    pub const DURABLE_AND_NOT: [RedisConfig; 2] =
        [RedisConfig::AppendfsyncAlways, RedisConfig::NoPersistence];

    /// The durability label of its measurements.
    pub fn durability(self) -> &'static str {
        match self {
            RedisConfig::AppendfsyncAlways => "appendfsync=always",
            RedisConfig::NoPersistence => "no persistence",
        }
    }

    /// A name for directories.
    pub fn name(self) -> &'static str {
        match self {
            RedisConfig::AppendfsyncAlways => "aof-always",
            RedisConfig::NoPersistence => "memory",
        }
    }

    fn args(self) -> &'static [&'static str] {
        match self {
            RedisConfig::AppendfsyncAlways => &["--appendonly", "yes", "--appendfsync", "always"],
            RedisConfig::NoPersistence => &["--appendonly", "no"],
        }
    }
}

/// A running `redis-server` (killed on drop).
pub struct RedisServer {
    child: Child,
    pub addr: SocketAddr,
    dir: PathBuf,
}

impl RedisServer {
    /// Starts `redis-server` in `dir` (created) with `config` and waits for its `PONG`.
    pub fn start(dir: &Path, config: RedisConfig) -> anyhow::Result<RedisServer> {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--daemonize", "no", "--protected-mode", "no"])
            .args(config.args())
            .arg("--dir")
            .arg(dir)
            .arg("--logfile")
            .arg(dir.join("redis.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("spawn redis-server")?;
        let mut server = RedisServer {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir: dir.to_path_buf(),
        };
        let started = Instant::now();
        loop {
            if let Some(status) = server.child.try_wait()? {
                bail!("redis-server exited ({status}):\n{}", server.log());
            }
            if ping_blocking(server.addr) {
                return Ok(server);
            }
            if started.elapsed() > START_TIMEOUT {
                bail!("redis-server did not answer within 15 s:\n{}", server.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's log so far (for failure reports).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }

    pub async fn connect(&self) -> anyhow::Result<Resp> {
        Resp::connect(self.addr).await
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether a server at `addr` answers `PING` with `+PONG` (a loading server answers an
/// error).
fn ping_blocking(addr: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut answer = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut answer).is_ok()
        && &answer == b"+PONG\r\n"
}

/// A RESP2 reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Integer(i64),
    /// `None`: the null bulk string.
    Bulk(Option<Vec<u8>>),
    /// `None`: the null array (e.g. `XREAD BLOCK` that timed out).
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The elements of an array reply (none for the null array).
    pub fn into_array(self) -> anyhow::Result<Vec<Reply>> {
        match self {
            Reply::Array(items) => Ok(items.unwrap_or_default()),
            Reply::Error(error) => bail!("redis: {error}"),
            other => bail!("expected an array, got {other:?}"),
        }
    }

    pub fn into_bulk(self) -> anyhow::Result<Vec<u8>> {
        match self {
            Reply::Bulk(Some(bytes)) => Ok(bytes),
            Reply::Error(error) => bail!("redis: {error}"),
            other => bail!("expected a bulk string, got {other:?}"),
        }
    }
}

/// One connection: commands are appended to a buffer ([`Resp::push`]) and written together
/// ([`Resp::flush`]), replies read one by one in order ([`Resp::read`]).
pub struct Resp {
    pub replies: RespReader,
    writer: OwnedWriteHalf,
    out: Vec<u8>,
}

impl Resp {
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Resp> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connect to redis at {addr}"))?;
        stream.set_nodelay(true)?;
        let (read, write) = stream.into_split();
        Ok(Resp {
            replies: RespReader {
                reader: BufReader::with_capacity(256 << 10, read),
                line: Vec::new(),
            },
            writer: write,
            out: Vec::new(),
        })
    }

    /// The writing half and the reading half, for a pipelining writer and its reply reader
    /// in two tasks.
    pub fn split(self) -> (OwnedWriteHalf, RespReader) {
        (self.writer, self.replies)
    }

    /// Appends `args` as a RESP array of bulk strings to the pending commands.
    pub fn push(&mut self, args: &[&[u8]]) {
        encode(&mut self.out, args);
    }

    /// Writes the pending commands.
    pub async fn flush(&mut self) -> anyhow::Result<()> {
        self.writer
            .write_all(&self.out)
            .await
            .context("write to redis")?;
        self.out.clear();
        Ok(())
    }

    /// Writes `bytes` (commands encoded once with [`encode`], sent many times).
    pub async fn write_raw(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.writer.write_all(bytes).await.context("write to redis")
    }

    /// The next reply.
    pub async fn read(&mut self) -> anyhow::Result<Reply> {
        self.replies.read().await
    }

    /// One command and its reply.
    pub async fn command(&mut self, args: &[&[u8]]) -> anyhow::Result<Reply> {
        self.push(args);
        self.flush().await?;
        self.read().await
    }
}

/// The reading half of a connection: replies in order.
pub struct RespReader {
    reader: BufReader<OwnedReadHalf>,
    line: Vec<u8>,
}

impl RespReader {
    /// The next reply. Arrays are assembled on an explicit stack rather than by recursion: a
    /// 10,000-entry `XRANGE` answer is 50,000 replies, and the client's cost per reply is part
    /// of what the consume workload measures.
    pub async fn read(&mut self) -> anyhow::Result<Reply> {
        // Arrays being filled: their items so far and their length.
        let mut open: Vec<(Vec<Reply>, usize)> = Vec::new();
        loop {
            let mut reply = match self.read_one().await? {
                Step::Reply(reply) => reply,
                Step::Array(count) => {
                    open.push((Vec::with_capacity(count.min(1 << 16)), count));
                    continue;
                }
            };
            // Hand the reply to the arrays it completes, innermost first.
            loop {
                let Some((items, count)) = open.last_mut() else {
                    return Ok(reply);
                };
                items.push(reply);
                if items.len() < *count {
                    break;
                }
                let (items, _) = open.pop().expect("an open array was just seen");
                reply = Reply::Array(Some(items));
            }
        }
    }

    /// One reply that is not a non-empty array, or the length of one.
    async fn read_one(&mut self) -> anyhow::Result<Step> {
        self.line.clear();
        let n = self.reader.read_until(b'\n', &mut self.line).await?;
        if n < 3 || !self.line.ends_with(b"\r\n") {
            bail!("redis closed the connection or sent a malformed line");
        }
        let body = &self.line[1..n - 2];
        let text = || String::from_utf8_lossy(body).into_owned();
        let number = || -> anyhow::Result<i64> {
            let digits = std::str::from_utf8(body).context("reply line")?;
            digits
                .parse()
                .with_context(|| format!("not a number: {digits:?}"))
        };
        Ok(Step::Reply(match self.line[0] {
            b'+' => Reply::Simple(text()),
            b'-' => Reply::Error(text()),
            b':' => Reply::Integer(number()?),
            b'$' => {
                let Ok(length) = usize::try_from(number()?) else {
                    return Ok(Step::Reply(Reply::Bulk(None)));
                };
                anyhow::ensure!(length <= BULK_BYTES_MAX, "bulk string of {length} bytes");
                let mut bulk = vec![0; length + 2];
                self.reader
                    .read_exact(&mut bulk)
                    .await
                    .context("read bulk string")?;
                bulk.truncate(length);
                Reply::Bulk(Some(bulk))
            }
            b'*' => match usize::try_from(number()?) {
                Ok(0) => Reply::Array(Some(Vec::new())),
                Ok(count) => return Ok(Step::Array(count)),
                Err(_) => Reply::Array(None),
            },
            other => bail!("unknown RESP type byte {other:#x}"),
        }))
    }
}

/// What one line of a reply starts.
enum Step {
    Reply(Reply),
    /// A non-empty array of this many replies.
    Array(usize),
}

/// Appends `args` as a RESP array of bulk strings to `out`.
pub fn encode(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}
