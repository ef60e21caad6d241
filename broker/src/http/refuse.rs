//! Answering an HTTP connection the server will not serve (over a connection cap) with a 503
//! `too_many_connections` in the API's JSON error shape, then closing it, without handing it
//! to a shard or reading a request.
//!
//! Cheap by design, since refusals come in floods: the answer is a few hundred bytes written
//! at once. To let the client read it rather than see a reset (closing a socket with unread
//! input resets it), a refused connection lingers briefly, its input read and dropped; at most
//! [`LINGERING_REFUSALS_MAX`] at a time, past which the answer is written if the socket takes
//! it at once and the socket is closed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::connections::{ConnectionRefusal, TOO_MANY_CONNECTIONS};
use crate::limits::{LINGERING_REFUSALS_MAX, REFUSAL_LINGER_MS, REFUSAL_LINGER_READ_BYTES_MAX};

/// The refusals in progress.
pub struct Refusals {
    lingering: Arc<Semaphore>,
}

impl Default for Refusals {
    fn default() -> Self {
        Refusals::new()
    }
}

impl Refusals {
    pub fn new() -> Refusals {
        Refusals {
            lingering: Arc::new(Semaphore::new(LINGERING_REFUSALS_MAX)),
        }
    }

    /// Answer `stream` with a 503 saying why (`refusal`), then close it.
    pub fn refuse(&self, stream: TcpStream, peer: SocketAddr, refusal: &ConnectionRefusal) {
        tracing::debug!(%peer, %refusal, "HTTP connection refused");
        let answer = answer_503(&refusal.to_string());
        match self.lingering.clone().try_acquire_owned() {
            Ok(permit) => {
                tokio::spawn(async move {
                    let _permit = permit;
                    let linger = Duration::from_millis(REFUSAL_LINGER_MS);
                    let _ = tokio::time::timeout(linger, answer_and_drain(stream, &answer)).await;
                });
            }
            Err(_) => {
                let _ = stream.try_write(&answer);
            }
        }
    }
}

async fn answer_and_drain(mut stream: TcpStream, answer: &[u8]) {
    if stream.write_all(answer).await.is_err() {
        return;
    }
    let _ = stream.shutdown().await;
    let mut scratch = [0u8; 4096];
    let mut read = 0;
    while read < REFUSAL_LINGER_READ_BYTES_MAX {
        match stream.read(&mut scratch).await {
            Ok(0) | Err(_) => return,
            Ok(n) => read += n,
        }
    }
}

/// The whole HTTP/1.1 answer: status line, headers, JSON body.
fn answer_503(message: &str) -> Vec<u8> {
    let body = serde_json::json!({
        "status": "error",
        "error": {"code": TOO_MANY_CONNECTIONS, "message": message},
    })
    .to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_is_a_complete_503_with_the_json_error() {
        let answer = String::from_utf8(answer_503("full")).expect("text");
        let (head, body) = answer.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        let json: serde_json::Value = serde_json::from_str(body).expect("JSON body");
        assert_eq!(json["error"]["code"], TOO_MANY_CONNECTIONS);
        assert_eq!(json["error"]["message"], "full");
    }
}
