//! `strand subscribe`: one realtime subscription over the WebSocket gateway (`GET /v1/ws`,
//! docs/websocket.md), printed on stdout as JSON lines, one object per line, flushed per line.
//!
//! It connects (blocking `tungstenite`), authenticates with `basic`, subscribes, asks for
//! every further snapshot batch with `next_batch`, and turns server messages into lines (the
//! format is [`Line`], described in the command's `--help`). Server errors, refused logins and
//! closed connections go to stderr with exit code 1; `--count` and `--timeout-ms` end it with 0.

use std::io::{ErrorKind, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde::Serialize;
use serde_json::Value;
use tungstenite::client::IntoClientRequest;
use tungstenite::error::ProtocolError;
use tungstenite::protocol::CloseFrame;
use tungstenite::{HandshakeError, Message, WebSocket};

use strand_broker::limits::CLI_REQUEST_TIMEOUT_MS;
use strand_wire::{
    AuthMethod, ChangeType, ClientMessage, ColumnSchema, ResumeMode, Row, SeqText, ServerMessage,
    SubscribeOptions, Subscription,
};

use super::ConnectArgs;

/// The output format, shown by `strand subscribe --help`.
const FORMAT_HELP: &str = "\
Output: one JSON object per line on stdout, flushed per line, in this order:
  {\"kind\":\"subscribed\",\"id\":\"cli\",\"schema\":[{\"name\":\"id\",\"type\":\"BIGINT\"}],\"snapshot_end_seq\":\"41\"}
  {\"kind\":\"snapshot\",\"row\":{\"id\":1,\"_seq\":\"40\"}}    (one per row of the snapshot)
  {\"kind\":\"ready\",\"snapshot_end_seq\":\"41\"}             (the snapshot is complete)
  {\"kind\":\"change\",\"change_type\":\"update\",\"_seq\":\"42\",\"row\":{...},\"old_row\":{...}}
change_type is insert, update or delete; old_row is null except for updates. A top-K
(ORDER BY ... LIMIT) or grouping (GROUP BY) subscription's change is one line per write:
  {\"kind\":\"change\",\"change_type\":\"update\",\"_seq\":\"42\",\"rows\":[...],\"old_rows\":[...]}
(remove the rows named in old_rows, then set those of rows). With --from-seq
there are no snapshot lines: `ready` follows `subscribed` at once. Errors go to stderr (exit 1).";

/// `strand subscribe`.
#[derive(Debug, clap::Args)]
#[command(after_help = FORMAT_HELP)]
pub struct SubscribeArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// The query: one SELECT of one table, with an optional WHERE
    #[arg(value_name = "SQL")]
    pub sql: String,
    /// Subscription id sent to the server
    #[arg(long, default_value = "cli")]
    pub id: String,
    /// Rows per snapshot batch (server default when omitted)
    #[arg(long, value_name = "N")]
    pub batch_size: Option<u32>,
    /// Resume: no snapshot, every change with a _seq greater than SEQ
    #[arg(long, value_name = "SEQ")]
    pub from_seq: Option<u64>,
    /// The value of the next `$n` in SQL (repeat for $1, $2, ...): JSON (`7`, `"7"`, `true`,
    /// `null`), or text when it is not JSON
    #[arg(long = "param", value_name = "VALUE")]
    pub params: Vec<String>,
    /// Exit 0 after N change lines (0: right after `ready`)
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Exit 0 when no message arrives for MS milliseconds after `ready` (before it: exit 1)
    #[arg(long, value_name = "MS")]
    pub timeout_ms: Option<u64>,
}

/// One line of output.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Line<'a> {
    Subscribed {
        id: &'a str,
        schema: &'a [ColumnSchema],
        snapshot_end_seq: SeqText,
        /// `keyed` for a keyed resume (docs/websocket.md, "Keyed resume").
        #[serde(skip_serializing_if = "Option::is_none")]
        resume: Option<ResumeMode>,
    },
    Snapshot {
        row: &'a Row,
    },
    Ready {
        snapshot_end_seq: SeqText,
    },
    Change {
        change_type: ChangeType,
        #[serde(rename = "_seq")]
        seq: Option<&'a Value>,
        row: &'a Row,
        old_row: Option<&'a Row>,
    },
    /// A top-K or grouping subscription's change: all its rows in one line.
    #[serde(rename = "change")]
    Rows {
        change_type: ChangeType,
        #[serde(rename = "_seq")]
        seq: SeqText,
        rows: &'a [Row],
        old_rows: &'a [Row],
    },
}

/// Stdout was closed by its reader (`| head`): a normal end, not an error.
#[derive(Debug, thiserror::Error)]
#[error("stdout closed")]
struct StdoutClosed;

pub fn run(args: &SubscribeArgs) -> anyhow::Result<ExitCode> {
    match subscribe(args) {
        Err(error) if error.downcast_ref::<StdoutClosed>().is_some() => Ok(ExitCode::SUCCESS),
        other => other.map(|()| ExitCode::SUCCESS),
    }
}

fn subscribe(args: &SubscribeArgs) -> anyhow::Result<()> {
    let password = args.connect.password()?;
    let url = ws_url(&args.connect.url)?;
    let setup_wait = Duration::from_millis(CLI_REQUEST_TIMEOUT_MS);
    let quiet = args.timeout_ms.map(Duration::from_millis);
    let mut socket = connect(&url, setup_wait)?;
    send(
        &mut socket,
        &ClientMessage::Authenticate {
            method: AuthMethod::Basic,
            username: Some(args.connect.user.clone()),
            password: Some(password),
            token: None,
        },
    )?;
    let mut out = std::io::stdout().lock();
    let mut ready = false;
    let mut changes = 0u64;
    loop {
        if ready && args.count.is_some_and(|count| changes >= count) {
            return close(socket);
        }
        let wait = if ready {
            quiet
        } else {
            Some(quiet.unwrap_or(setup_wait))
        };
        let Some(message) = receive(&mut socket, wait)? else {
            if ready {
                return close(socket);
            }
            let waited = wait.unwrap_or_default().as_millis();
            bail!("no answer from {url} within {waited} ms");
        };
        match message {
            ServerMessage::AuthSuccess { .. } => {
                let (batch_size, from_seq_id) = (args.batch_size, args.from_seq.map(SeqText));
                let options = SubscribeOptions {
                    batch_size,
                    from_seq_id,
                    bigint: None,
                    params: args.params.iter().map(|text| param_value(text)).collect(),
                    as_of_seq: None,
                };
                let (id, sql) = (args.id.clone(), args.sql.clone());
                let subscription = Subscription { id, sql, options };
                send(&mut socket, &ClientMessage::Subscribe { subscription })?;
            }
            ServerMessage::AuthError { message } => {
                bail!("authentication as {} failed: {message}", args.connect.user)
            }
            ServerMessage::SubscriptionAck {
                subscription_id,
                schema,
                snapshot_end_seq,
                resume,
            } => {
                let line = Line::Subscribed {
                    id: &subscription_id,
                    schema: &schema,
                    snapshot_end_seq,
                    resume,
                };
                emit(&mut out, &line)?;
                if args.from_seq.is_some() {
                    emit(&mut out, &Line::Ready { snapshot_end_seq })?;
                    ready = true;
                }
            }
            ServerMessage::InitialDataBatch {
                subscription_id,
                rows,
                batch_control,
            } => {
                for row in &rows {
                    emit(&mut out, &Line::Snapshot { row })?;
                }
                if batch_control.has_more {
                    let subscription_id = Some(subscription_id);
                    send(&mut socket, &ClientMessage::NextBatch { subscription_id })?;
                } else {
                    let snapshot_end_seq = batch_control.snapshot_end_seq;
                    emit(&mut out, &Line::Ready { snapshot_end_seq })?;
                    ready = true;
                }
            }
            ServerMessage::Change {
                change_type,
                rows,
                old_rows,
                seq: Some(seq),
                ..
            } => {
                let line = Line::Rows {
                    change_type,
                    seq,
                    rows: &rows,
                    old_rows: old_rows.as_deref().unwrap_or_default(),
                };
                emit(&mut out, &line)?;
                changes += 1;
            }
            ServerMessage::Change {
                change_type,
                rows,
                old_rows,
                ..
            } => {
                for (index, row) in rows.iter().enumerate() {
                    let old_row = old_rows.as_ref().and_then(|old| old.get(index));
                    let seq = row.get("_seq");
                    let line = Line::Change {
                        change_type,
                        seq,
                        row,
                        old_row,
                    };
                    emit(&mut out, &line)?;
                    changes += 1;
                }
            }
            ServerMessage::Error {
                code,
                message,
                lowest_seq,
                ..
            } => {
                let lowest = lowest_seq.map(|seq| format!(" (lowest_seq {seq})"));
                bail!("error {code}: {message}{}", lowest.unwrap_or_default())
            }
            ServerMessage::Pong => {}
        }
    }
}

/// `http://HOST:PORT[/]` (or `ws://`) to `ws://HOST:PORT/v1/ws`.
fn ws_url(url: &str) -> anyhow::Result<String> {
    let base = url.trim_end_matches('/');
    let rest = match base.split_once("://") {
        Some(("http" | "ws", rest)) if !rest.is_empty() => rest,
        Some(("https" | "wss", _)) => bail!("--url {url}: TLS is not supported, use http://"),
        _ => bail!("--url {url}: expected http://HOST:PORT"),
    };
    Ok(format!("ws://{rest}/v1/ws"))
}

/// TCP connection and WebSocket upgrade (bounded by `wait`).
fn connect(url: &str, wait: Duration) -> anyhow::Result<WebSocket<TcpStream>> {
    let request = url
        .into_client_request()
        .with_context(|| format!("bad WebSocket URL {url}"))?;
    let uri = request.uri();
    let host = uri.host().ok_or_else(|| anyhow!("no host in {url}"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(80);
    let stream = TcpStream::connect((host, port)).with_context(|| format!("cannot reach {url}"))?;
    stream
        .set_nodelay(true)
        .and_then(|()| stream.set_read_timeout(Some(wait)))
        .and_then(|()| stream.set_write_timeout(Some(wait)))
        .context("configuring the TCP connection")?;
    match tungstenite::client(request, stream) {
        Ok((socket, _response)) => Ok(socket),
        Err(HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            let body = response.body().as_deref().unwrap_or_default();
            let body = String::from_utf8_lossy(body);
            let status = response.status().as_u16();
            bail!("{url} refused the WebSocket upgrade: HTTP {status} {body:.300}")
        }
        Err(HandshakeError::Failure(error)) => {
            Err(error).with_context(|| format!("WebSocket upgrade of {url}"))
        }
        Err(HandshakeError::Interrupted(_)) => {
            bail!(
                "WebSocket upgrade of {url}: no answer within {} ms",
                wait.as_millis()
            )
        }
    }
}

fn send(socket: &mut WebSocket<TcpStream>, message: &ClientMessage) -> anyhow::Result<()> {
    socket
        .send(Message::text(message.encode()))
        .context("sending to the server")
}

/// The next server message; `None` when none arrives within `wait` (`None`: wait forever).
/// A close by the server, a broken connection or an undecodable message is an error.
fn receive(
    socket: &mut WebSocket<TcpStream>,
    wait: Option<Duration>,
) -> anyhow::Result<Option<ServerMessage>> {
    let deadline = wait.map(|wait| Instant::now() + wait);
    loop {
        let left = match deadline {
            Some(deadline) => match deadline.saturating_duration_since(Instant::now()) {
                left if left.is_zero() => return Ok(None),
                left => Some(left),
            },
            None => None,
        };
        socket
            .get_mut()
            .set_read_timeout(left)
            .context("setting the read timeout")?;
        match socket.read() {
            Ok(Message::Text(text)) => {
                let text = text.as_str();
                return ServerMessage::decode(text)
                    .map(Some)
                    .with_context(|| format!("undecodable server message: {text:.300}"));
            }
            Ok(Message::Close(frame)) => bail!("the server closed the connection{}", reason(frame)),
            Ok(Message::Binary(_)) => bail!("the server sent a binary frame"),
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
            Err(tungstenite::Error::Io(error))
                if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                bail!("the server closed the connection")
            }
            Err(tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake)) => {
                bail!("the connection was cut without a close frame")
            }
            Err(error) => return Err(error).context("reading from the server"),
        }
    }
}

fn reason(frame: Option<CloseFrame>) -> String {
    match frame {
        Some(frame) if frame.reason.is_empty() => format!(" (code {})", frame.code),
        Some(frame) => format!(" (code {}, reason {})", frame.code, frame.reason.as_str()),
        None => String::new(),
    }
}

/// A polite close once we are done; the exit does not depend on the server's answer.
fn close(mut socket: WebSocket<TcpStream>) -> anyhow::Result<()> {
    let _ = socket.close(None);
    let _ = socket.flush();
    Ok(())
}

/// One line on stdout, flushed so a pipe sees it at once.
fn emit(out: &mut impl Write, line: &Line<'_>) -> anyhow::Result<()> {
    let text = serde_json::to_string(line).context("encoding an output line")?;
    let written = writeln!(out, "{text}").and_then(|()| out.flush());
    match written {
        Err(error) if error.kind() == ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        other => other.context("writing to stdout"),
    }
}

/// A `--param` as JSON: the text parsed as JSON when it is, else the text as a string (so
/// `--param alice` needs no quotes).
fn param_value(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_owned()))
}
