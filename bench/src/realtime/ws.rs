//! The subscribers' WebSocket client: one `GET /v1/ws` connection (tokio-tungstenite,
//! `TCP_NODELAY`) authenticated by `Authorization: Bearer` on the upgrade, sending
//! `ClientMessage`s and reading the server's text frames.
//!
//! Hot paths (changes at 10k/s, a burst of 100k changes, 10k-row batches) read frames with
//! [`Lite`], a borrowed decode that keeps only the message type, the subscription id, the rows'
//! `id` and `_seq` and the batch control, so the client spends little of the two CPUs it shares
//! with the server. Anything unexpected is decoded in full with `ServerMessage::decode`.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use strand_wire::{ClientMessage, SeqText, ServerMessage, SubscribeOptions, Subscription};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::target::ROUTE_WS;

/// How long the bench waits for any one expected message before calling it lost.
pub const MESSAGE_TIMEOUT: Duration = Duration::from_secs(60);

/// An authenticated WebSocket connection.
pub struct Ws {
    stream: WebSocketStream<TcpStream>,
}

impl Ws {
    /// Connect, upgrade with the Bearer token and read `auth_success`.
    pub async fn connect(addr: SocketAddr, token: &str) -> anyhow::Result<Ws> {
        let tcp = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connect to {addr}"))?;
        tcp.set_nodelay(true)?;
        let mut request = format!("ws://{addr}{ROUTE_WS}").into_client_request()?;
        let bearer = HeaderValue::from_str(&format!("Bearer {token}"))?;
        request.headers_mut().insert("authorization", bearer);
        let (stream, _) = tokio_tungstenite::client_async(request, tcp)
            .await
            .context("WebSocket upgrade")?;
        let mut ws = Ws { stream };
        match ws.recv().await? {
            ServerMessage::AuthSuccess { .. } => Ok(ws),
            other => bail!("expected auth_success, got {other:?}"),
        }
    }

    /// Queue a message without flushing (many subscribes go out in few writes).
    pub async fn feed(&mut self, message: &ClientMessage) -> anyhow::Result<()> {
        let text = message.encode();
        self.stream.feed(Message::text(text)).await.context("send")
    }

    pub async fn flush(&mut self) -> anyhow::Result<()> {
        self.stream.flush().await.context("flush")
    }

    pub async fn send(&mut self, message: &ClientMessage) -> anyhow::Result<()> {
        self.feed(message).await?;
        self.flush().await
    }

    /// The next text frame, within [`MESSAGE_TIMEOUT`]; a close or an error is an error.
    pub async fn recv_text(&mut self) -> anyhow::Result<String> {
        loop {
            let next = tokio::time::timeout(MESSAGE_TIMEOUT, self.stream.next())
                .await
                .context("no message from the server within the timeout")?;
            match next {
                Some(Ok(Message::Text(text))) => return Ok(text.as_str().to_owned()),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Binary(_))) => bail!("binary frame from the server"),
                Some(Ok(Message::Close(frame))) => bail!("server closed the connection: {frame:?}"),
                Some(Err(error)) => return Err(error).context("WebSocket read"),
                None => bail!("connection ended"),
            }
        }
    }

    /// The next message, decoded in full.
    pub async fn recv(&mut self) -> anyhow::Result<ServerMessage> {
        let text = self.recv_text().await?;
        ServerMessage::decode(&text).with_context(|| format!("undecodable message: {text}"))
    }

    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}

/// `subscribe` for `sql` with the given options.
pub fn subscribe(id: &str, sql: &str, batch_size: Option<u32>, from: Option<u64>) -> ClientMessage {
    ClientMessage::Subscribe {
        subscription: Subscription {
            id: id.to_string(),
            sql: sql.to_string(),
            options: SubscribeOptions {
                batch_size,
                from_seq_id: from.map(SeqText),
                bigint: None,
                params: Vec::new(),
                as_of_seq: None,
            },
        },
    }
}

pub fn next_batch(id: &str) -> ClientMessage {
    ClientMessage::NextBatch {
        subscription_id: Some(id.to_string()),
    }
}

pub fn unsubscribe(id: &str) -> ClientMessage {
    ClientMessage::Unsubscribe {
        subscription_id: id.to_string(),
    }
}

/// The parts of a server message the hot paths look at; unknown fields are skipped.
#[derive(Deserialize)]
pub struct Lite<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(default, borrow)]
    pub subscription_id: Option<Cow<'a, str>>,
    #[serde(default)]
    pub rows: Vec<LiteRow>,
    #[serde(default)]
    pub batch_control: Option<LiteControl>,
}

#[derive(Deserialize)]
pub struct LiteRow {
    #[serde(default)]
    pub id: Option<i64>,
    #[serde(rename = "_seq", default)]
    pub seq: Option<SeqText>,
}

#[derive(Deserialize)]
pub struct LiteControl {
    pub has_more: bool,
    pub snapshot_end_seq: SeqText,
}

impl<'a> Lite<'a> {
    /// Decode `text`; an `error` message (or anything undecodable) becomes an error naming it.
    pub fn parse(text: &'a str) -> anyhow::Result<Lite<'a>> {
        let lite: Lite<'a> = serde_json::from_str(text)
            .with_context(|| format!("undecodable message: {}", clip(text)))?;
        if lite.kind == "error" {
            bail!("server error: {}", clip(text));
        }
        Ok(lite)
    }

    /// The single row's `id` of a `change`.
    pub fn change_id(&self) -> anyhow::Result<i64> {
        match self.rows.as_slice() {
            [LiteRow { id: Some(id), .. }] => Ok(*id),
            _ => bail!("a change without exactly one row with an id"),
        }
    }
}

/// At most 300 characters of a message, for error texts.
pub fn clip(text: &str) -> &str {
    match text.char_indices().nth(300) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// Subscribe to every `(id, sql)` on `ws` (pipelined) and read until each one's snapshot is
/// `ready`, asking for further batches as needed. Returns the rows received and the largest
/// `snapshot_end_seq`.
pub async fn subscribe_all(
    ws: &mut Ws,
    subscriptions: &[(String, String)],
    batch_size: Option<u32>,
) -> anyhow::Result<(u64, u64)> {
    for (id, sql) in subscriptions {
        ws.feed(&subscribe(id, sql, batch_size, None)).await?;
    }
    ws.flush().await?;
    let (mut ready, mut rows, mut end) = (0, 0, 0);
    while ready < subscriptions.len() {
        let text = ws.recv_text().await?;
        let lite = Lite::parse(&text)?;
        match lite.kind.as_ref() {
            "subscription_ack" => {}
            "initial_data_batch" => {
                rows += lite.rows.len() as u64;
                let control = lite
                    .batch_control
                    .context("a batch without batch_control")?;
                end = end.max(control.snapshot_end_seq.0);
                if control.has_more {
                    let id = lite.subscription_id.context("a batch without id")?;
                    ws.send(&next_batch(&id)).await?;
                } else {
                    ready += 1;
                }
            }
            other => bail!("unexpected {other} while subscribing: {}", clip(&text)),
        }
    }
    Ok((rows, end))
}

/// Open `count` authenticated connections, at most [`CONNECTS_AT_ONCE`] at a time.
pub async fn connect_many(addr: SocketAddr, token: &str, count: usize) -> anyhow::Result<Vec<Ws>> {
    let mut sockets = Vec::with_capacity(count);
    while sockets.len() < count {
        let wave = (count - sockets.len()).min(CONNECTS_AT_ONCE);
        let tasks: Vec<_> = (0..wave)
            .map(|_| {
                let token = token.to_string();
                tokio::spawn(async move { Ws::connect(addr, &token).await })
            })
            .collect();
        for task in tasks {
            sockets.push(task.await.context("a connect task panicked")??);
        }
    }
    Ok(sockets)
}

/// Connections opened at once by [`connect_many`].
const CONNECTS_AT_ONCE: usize = 64;

/// On each socket, in parallel, [`subscribe_all`] of its list; the sockets back, every
/// snapshot ready, and the rows received.
pub async fn subscribe_many(
    sockets: Vec<Ws>,
    lists: Vec<Vec<(String, String)>>,
    batch_size: Option<u32>,
) -> anyhow::Result<(Vec<Ws>, u64)> {
    let tasks: Vec<_> = sockets
        .into_iter()
        .zip(lists)
        .map(|(mut ws, list)| {
            tokio::spawn(async move {
                let (rows, _) = subscribe_all(&mut ws, &list, batch_size).await?;
                anyhow::Ok((ws, rows))
            })
        })
        .collect();
    let (mut sockets, mut rows) = (Vec::new(), 0);
    for task in tasks {
        let (ws, n) = task.await.context("a subscribe task panicked")??;
        sockets.push(ws);
        rows += n;
    }
    Ok((sockets, rows))
}
