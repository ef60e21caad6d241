//! Hostile clients for tests and load runs (issue 17): idle TCP sockets that never send a
//! request, QUIC streams holding unfinished frames, and what the server's process shows of
//! them (`/proc/<pid>/status` memory, `/proc/<pid>/limits`). Each piece is small and returns
//! what happened, so a test asserts on it and a benchmark reports it.

use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use strand_wire::quic::client::Client;
use strand_wire::quic::{Frame, FrameDecoder, Message, HEADER_BYTES};

/// Opens `n` TCP connections to `addr` that send nothing. Connections the kernel refuses
/// (e.g. the test process's own descriptor limit) are left out; the count says how many.
pub fn open_idle_sockets(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok())
        .collect()
}

/// What the server did with an idle socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdleOutcome {
    /// An HTTP answer arrived (e.g. a 503 refusal or a 408), then the close. Its text.
    Answered(String),
    /// Closed (or reset) without an answer.
    Closed,
    /// Still open at the deadline.
    Open,
}

/// Waits until `deadline` for the server to answer or close `stream`, reading what it sends.
pub fn idle_outcome(stream: &mut TcpStream, deadline: Instant) -> IdleOutcome {
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return IdleOutcome::Open;
        }
        if stream.set_read_timeout(Some(left)).is_err() {
            return IdleOutcome::Closed;
        }
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return IdleOutcome::Open
            }
            Err(_) => break,
        }
    }
    if answer.is_empty() {
        IdleOutcome::Closed
    } else {
        IdleOutcome::Answered(String::from_utf8_lossy(&answer).into_owned())
    }
}

/// The 16-byte header of a request frame of `frame_type` declaring `payload_bytes`.
pub fn frame_header(frame_type: u16, request_id: u64, payload_bytes: u32) -> [u8; HEADER_BYTES] {
    let mut header = [0u8; HEADER_BYTES];
    header[0] = strand_wire::quic::PROTOCOL_VERSION;
    header[2..4].copy_from_slice(&frame_type.to_le_bytes());
    header[4..12].copy_from_slice(&request_id.to_le_bytes());
    header[12..16].copy_from_slice(&payload_bytes.to_le_bytes());
    header
}

/// A stream that was sent the start of a frame and never its end.
pub struct UnfinishedFrame {
    /// Kept open: the frame stays unfinished while this lives.
    pub send: quinn::SendStream,
    pub recv: quinn::RecvStream,
    /// Payload bytes the server accepted (all of `sent` unless it stopped the stream).
    pub sent: usize,
    /// Whether the server stopped the stream (refused the frame) while it was written.
    pub stopped: bool,
}

impl UnfinishedFrame {
    /// The server's answer on this stream, if it sent one within `wait` (a refusal's `error`).
    pub async fn answer(&mut self, wait: Duration) -> Option<Frame> {
        let mut decoder = FrameDecoder::new();
        let read = async {
            loop {
                match self.recv.read_chunk(64 * 1024, true).await {
                    Ok(Some(chunk)) => decoder.handle_bytes(&chunk.bytes),
                    Ok(None) | Err(_) => return None,
                }
                if let Ok(Some(frame)) = decoder.poll_frame() {
                    return Some(frame);
                }
            }
        };
        tokio::time::timeout(wait, read).await.ok().flatten()
    }

    /// The code of the `error` frame the server answered with, if any, within `wait`.
    pub async fn error_code(&mut self, wait: Duration) -> Option<String> {
        match self.answer(wait).await?.message {
            Message::Error(error) => Some(error.code),
            _ => None,
        }
    }
}

/// Opens a stream on `client`, sends a header of `frame_type` declaring `declared` payload
/// bytes, then up to `payload` bytes of it (zeros, from one shared buffer), and leaves the
/// frame unfinished. Gives up writing after `write_timeout` (a server that stops reading).
pub async fn send_unfinished_frame(
    client: &Client,
    frame_type: u16,
    declared: u32,
    payload: usize,
    write_timeout: Duration,
) -> Result<UnfinishedFrame, quinn::ConnectionError> {
    static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
    let (mut send, recv) = client.connection().open_bi().await?;
    let header = frame_header(frame_type, 1, declared);
    let mut sent = 0usize;
    let mut stopped = false;
    let write = async {
        if send.write_all(&header).await.is_err() {
            return true;
        }
        while sent < payload {
            let piece = (payload - sent).min(ZEROS.len());
            if send.write_all(&ZEROS[..piece]).await.is_err() {
                return true;
            }
            sent += piece;
        }
        false
    };
    if let Ok(refused) = tokio::time::timeout(write_timeout, write).await {
        stopped = refused;
    }
    Ok(UnfinishedFrame {
        send,
        recv,
        sent,
        stopped,
    })
}

/// A `/proc/<pid>/status` field in bytes (`VmRSS`, `RssAnon`, ...), if the process exists.
pub fn proc_status_bytes(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?;
    let kib: u64 = line.split_whitespace().next()?.parse().ok()?;
    Some(kib * 1024)
}

/// The anonymous resident memory of process `pid` (its heap, not mapped files).
pub fn rss_anon_bytes(pid: u32) -> u64 {
    proc_status_bytes(pid, "RssAnon").unwrap_or_else(|| panic!("no RssAnon for pid {pid}"))
}

/// The soft and hard open-files limits of process `pid` (`u64::MAX` for "unlimited").
pub fn open_files_limits(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files line");
    let mut values = line["Max open files".len()..].split_whitespace().map(|v| {
        if v == "unlimited" {
            u64::MAX
        } else {
            v.parse().expect("a number")
        }
    });
    let soft = values.next().expect("soft");
    let hard = values.next().expect("hard");
    (soft, hard)
}

/// Open descriptors of process `pid`.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |dir| dir.count())
}
