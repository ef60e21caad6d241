//! The attackers, all at once against one server: idle unauthenticated TCP connections (some
//! silent, some stuck half-way through a request head, some upgraded to a WebSocket that never
//! authenticates), authenticated clients sending oversized SQL, QUIC connections with an
//! unfinished 16 MiB frame, and a flood of junk consumer-group joins. Each keeps its pressure up:
//! whatever the server closes or refuses is opened again.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::json;
use tokio::runtime::Runtime;

use crate::attack::quic::{flood_groups, hold_unfinished_frame};
use crate::http::HttpConnection;
use crate::target::ROUTE_SQL;
/// How long one idle-socket connect may take before the attacker moves on.
const IDLE_CONNECT_TIMEOUT: Duration = Duration::from_millis(200);
/// New idle sockets per pass at most, and passes a second: a steady reconnect pressure, not a
/// SYN flood that measures the kernel.
const IDLE_CONNECTS_PER_PASS: usize = 500;
const IDLE_PASS_PERIOD: Duration = Duration::from_millis(250);
/// A request head that never ends (the "slowloris" client).
const PARTIAL_HEAD: &[u8] =
    b"POST /v1/api/sql HTTP/1.1\r\nHost: strand\r\nContent-Type: application/json\r\n";
/// A WebSocket upgrade without credentials: the connection then has to `authenticate`.
const WS_UPGRADE: &[u8] = b"GET /v1/ws HTTP/1.1\r\nHost: strand\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
/// Junk group joins in flight at once.
const GROUP_FLOOD_CONCURRENCY: usize = 8;

/// What the attackers did, counted as they go.
#[derive(Default)]
pub struct AttackStats {
    /// Idle sockets open at the last pass, and the most seen open at once.
    pub idle_held: AtomicU64,
    pub idle_held_max: AtomicU64,
    pub idle_opened: AtomicU64,
    pub idle_closed_by_server: AtomicU64,
    pub idle_connect_failed: AtomicU64,
    /// Oversized SQL requests answered, by outcome.
    pub sql_refused_4xx: AtomicU64,
    pub sql_other_status: AtomicU64,
    pub sql_connection_errors: AtomicU64,
    /// QUIC connections that held an unfinished frame, payload bytes the server took in.
    pub quic_opened: AtomicU64,
    pub quic_failed: AtomicU64,
    pub quic_payload_bytes_sent: AtomicU64,
    /// Junk group joins, by outcome.
    pub groups_joined: AtomicU64,
    pub groups_refused: AtomicU64,
    pub groups_failed: AtomicU64,
}

pub fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// Where and as whom the attackers connect.
#[derive(Clone)]
pub struct AttackTarget {
    pub http: SocketAddr,
    pub quic: SocketAddr,
    pub cert: PathBuf,
    /// A JWT of the attacking user (role `user`, SELECT on the topic): the unfinished QUIC
    /// frames.
    pub token: String,
    /// One JWT per oversized-SQL client, each of its own user, so that no attacker is slowed
    /// down by another's refusals.
    pub sql_tokens: Vec<String>,
    /// The junk-group flood's user, also on its own.
    pub group_token: String,
    /// The topic the junk groups name.
    pub topic: String,
    /// The table the oversized SQL names.
    pub table: String,
}

/// How much of each attack to run.
#[derive(Clone, Copy, Debug)]
pub struct Pressure {
    pub idle_sockets: usize,
    pub oversized_sql_clients: usize,
    pub oversized_sql_bytes: usize,
    pub unfinished_quic_frames: usize,
    /// Of `unfinished_quic_frames`, how many come from authenticated connections.
    pub unfinished_quic_authenticated: usize,
    pub group_flood: bool,
}

impl Pressure {
    /// Only the attackers `names` lists (`idle`, `sql`, `quic`, `groups`, comma-separated);
    /// all of them when it is `None`.
    pub fn only(self, names: Option<&str>) -> Pressure {
        let Some(names) = names else { return self };
        let on = |name: &str| names.split(',').any(|n| n.trim() == name);
        Pressure {
            idle_sockets: if on("idle") { self.idle_sockets } else { 0 },
            oversized_sql_clients: if on("sql") {
                self.oversized_sql_clients
            } else {
                0
            },
            unfinished_quic_frames: if on("quic") {
                self.unfinished_quic_frames
            } else {
                0
            },
            group_flood: self.group_flood && on("groups"),
            ..self
        }
    }
}

/// The running attack; [`Attack::stop`] ends it.
pub struct Attack {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    pub stats: Arc<AttackStats>,
}

impl Attack {
    pub fn start(runtime: &Runtime, target: &AttackTarget, pressure: Pressure) -> Attack {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(AttackStats::default());
        let mut threads = Vec::new();
        let mut tasks = Vec::new();
        if pressure.idle_sockets > 0 {
            let (addr, n) = (target.http, pressure.idle_sockets);
            let (stop, stats) = (Arc::clone(&stop), Arc::clone(&stats));
            threads.push(std::thread::spawn(move || {
                hold_idle_sockets(addr, n, &stop, &stats)
            }));
        }
        let sql = oversized_sql(&target.table, pressure.oversized_sql_bytes);
        for client in 0..pressure.oversized_sql_clients {
            let (target, sql) = (target.clone(), sql.clone());
            let (stop, stats) = (Arc::clone(&stop), Arc::clone(&stats));
            threads.push(std::thread::spawn(move || {
                let token = &target.sql_tokens[client % target.sql_tokens.len()];
                send_oversized_sql(&target, token, &sql, &stop, &stats)
            }));
        }
        for i in 0..pressure.unfinished_quic_frames {
            let authenticated = i < pressure.unfinished_quic_authenticated;
            let (target, stop, stats) = (target.clone(), Arc::clone(&stop), Arc::clone(&stats));
            tasks.push(runtime.spawn(async move {
                hold_unfinished_frame(&target, authenticated, &stop, &stats).await
            }));
        }
        if pressure.group_flood {
            for worker in 0..GROUP_FLOOD_CONCURRENCY {
                let (target, stop, stats) = (target.clone(), Arc::clone(&stop), Arc::clone(&stats));
                tasks.push(
                    runtime
                        .spawn(async move { flood_groups(&target, worker, &stop, &stats).await }),
                );
            }
        }
        Attack {
            stop,
            threads,
            tasks,
            stats,
        }
    }

    pub fn stop(self, runtime: &Runtime) -> Arc<AttackStats> {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            let _ = thread.join();
        }
        for task in self.tasks {
            task.abort();
            let _ = runtime.block_on(task);
        }
        self.stats
    }
}

/// One idle socket: silent, half a request head, or a WebSocket that never authenticates.
fn open_idle_socket(addr: SocketAddr, kind: usize) -> std::io::Result<TcpStream> {
    let mut stream = TcpStream::connect_timeout(&addr, IDLE_CONNECT_TIMEOUT)?;
    match kind % 3 {
        1 => stream.write_all(PARTIAL_HEAD)?,
        2 => {
            stream.write_all(WS_UPGRADE)?;
            // The 101 answer (or a refusal) is read off so that only the server's later
            // closing shows on the socket.
            stream.set_read_timeout(Some(Duration::from_secs(1)))?;
            let mut head = [0u8; 512];
            let read = stream.read(&mut head)?;
            if !head[..read].starts_with(b"HTTP/1.1 101") {
                return Err(std::io::Error::other("upgrade refused"));
            }
        }
        _ => {}
    }
    stream.set_nonblocking(true)?;
    Ok(stream)
}

/// Whether the server still holds the socket: anything it sent (a timeout answer, a close
/// frame) or an end of stream counts as closed.
fn still_open(stream: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(stream.peek(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

fn hold_idle_sockets(addr: SocketAddr, n: usize, stop: &AtomicBool, stats: &AttackStats) {
    let mut slots: Vec<Option<TcpStream>> = (0..n).map(|_| None).collect();
    while !stop.load(Ordering::Relaxed) {
        let mut held = 0u64;
        let mut opened = 0;
        let mut failures_in_a_row = 0;
        for (i, slot) in slots.iter_mut().enumerate() {
            if let Some(stream) = slot {
                if still_open(stream) {
                    held += 1;
                    continue;
                }
                *slot = None;
                add(&stats.idle_closed_by_server, 1);
            }
            // A server that stopped accepting makes every connect wait out its timeout: give
            // up on this pass after a few, so the pass stays short.
            if opened >= IDLE_CONNECTS_PER_PASS || failures_in_a_row >= 8 {
                continue;
            }
            opened += 1;
            match open_idle_socket(addr, i) {
                Ok(stream) => {
                    failures_in_a_row = 0;
                    *slot = Some(stream);
                    held += 1;
                    add(&stats.idle_opened, 1);
                }
                Err(_) => {
                    failures_in_a_row += 1;
                    add(&stats.idle_connect_failed, 1);
                }
            }
        }
        stats.idle_held.store(held, Ordering::Relaxed);
        stats.idle_held_max.fetch_max(held, Ordering::Relaxed);
        std::thread::sleep(IDLE_PASS_PERIOD);
    }
}

/// `SELECT ... WHERE id IN (1,1,...)` of about `bytes` bytes: under the body limit, far over
/// the SQL limits.
fn oversized_sql(table: &str, bytes: usize) -> Arc<Vec<u8>> {
    let mut sql = String::with_capacity(bytes + 64);
    sql.push_str(&format!("SELECT id FROM {table} WHERE id IN (1"));
    while sql.len() < bytes {
        sql.push_str(",1");
    }
    sql.push(')');
    Arc::new(json!({ "sql": sql }).to_string().into_bytes())
}

fn send_oversized_sql(
    target: &AttackTarget,
    token: &str,
    body: &[u8],
    stop: &AtomicBool,
    stats: &AttackStats,
) {
    let authorization = format!("Bearer {token}");
    let mut connection = None;
    while !stop.load(Ordering::Relaxed) {
        let http = match &mut connection {
            Some(http) => http,
            None => match HttpConnection::connect(target.http, Some(&authorization)) {
                Ok(http) => connection.insert(http),
                Err(_) => {
                    add(&stats.sql_connection_errors, 1);
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            },
        };
        match http.post_json(ROUTE_SQL, body) {
            Ok((status, _)) if (400..500).contains(&status) => add(&stats.sql_refused_4xx, 1),
            Ok(_) => add(&stats.sql_other_status, 1),
            Err(_) => {
                add(&stats.sql_connection_errors, 1);
                connection = None;
            }
        }
    }
}
