//! The QUIC attackers: connections that start a frame declaring almost 16 MiB, send 15 MiB of
//! it and never the rest (the server must not buffer them all), and a flood of consumer-group
//! joins with new names from one user (the server must bound the groups it keeps).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use strand_wire::quic::client::Client;
use strand_wire::quic::{Frame, GroupJoin, MemberId, Message, RequestId};

use crate::attack::attackers::{add, AttackStats, AttackTarget};

/// Bytes the unfinished QUIC frame declares, and how much of its payload the attacker sends.
const UNFINISHED_FRAME_DECLARED: u32 = 16 * 1024 * 1024 - 16;
const UNFINISHED_FRAME_SENT: usize = 15 * 1024 * 1024;
const UNFINISHED_CHUNK: usize = 64 * 1024;

/// A QUIC connection that starts a frame declaring almost 16 MiB, sends 15 MiB of it and
/// never the rest; reopened when the server closes it.
pub async fn hold_unfinished_frame(
    target: &AttackTarget,
    authenticated: bool,
    stop: &AtomicBool,
    stats: &AttackStats,
) {
    let header = unfinished_header();
    let chunk = vec![0u8; UNFINISHED_CHUNK];
    while !stop.load(Ordering::Relaxed) {
        let client = if authenticated {
            Client::connect_token(target.quic, &target.cert, &target.token).await
        } else {
            Client::open(target.quic, &target.cert).await
        };
        let Ok(client) = client else {
            add(&stats.quic_failed, 1);
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        add(&stats.quic_opened, 1);
        let Ok((mut send, _receive)) = client.connection().open_bi().await else {
            add(&stats.quic_failed, 1);
            continue;
        };
        if send.write_all(&header).await.is_err() {
            continue;
        }
        let mut sent = 0;
        while sent < UNFINISHED_FRAME_SENT && !stop.load(Ordering::Relaxed) {
            if send.write_all(&chunk).await.is_err() {
                break;
            }
            sent += chunk.len();
            add(&stats.quic_payload_bytes_sent, chunk.len() as u64);
        }
        // Hold the stream (or wait for the server to close the connection).
        let closed = client.connection().closed();
        tokio::select! {
            _ = closed => {}
            _ = wait_for_stop(stop) => return,
        }
    }
}

async fn wait_for_stop(stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A real frame header (a group join's type) with its payload length raised to
/// [`UNFINISHED_FRAME_DECLARED`].
fn unfinished_header() -> Vec<u8> {
    let frame = Frame {
        request_id: RequestId(1),
        message: Message::GroupJoin(GroupJoin {
            group: "g".into(),
            topic: "t".into(),
            member: MemberId(String::new()),
            session_timeout_ms: 10_000,
        }),
    };
    let mut bytes = Vec::new();
    if frame.encode(&mut bytes).is_err() {
        return Vec::new();
    }
    bytes.truncate(16);
    bytes[12..16].copy_from_slice(&UNFINISHED_FRAME_DECLARED.to_le_bytes());
    bytes
}

/// Joins groups with new names as fast as the server answers.
pub async fn flood_groups(
    target: &AttackTarget,
    worker: usize,
    stop: &AtomicBool,
    stats: &AttackStats,
) {
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let Ok(client) =
            Client::connect_token(target.quic, &target.cert, &target.group_token).await
        else {
            add(&stats.groups_failed, 1);
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            let join = Message::GroupJoin(GroupJoin {
                group: format!("junk-{worker}-{n}"),
                topic: target.topic.clone(),
                member: MemberId(String::new()),
                session_timeout_ms: 6_000,
            });
            match client.request(join).await {
                Ok(frames) => match frames.first().map(|f| &f.message) {
                    Some(Message::GroupJoinResponse(_)) => add(&stats.groups_joined, 1),
                    _ => add(&stats.groups_refused, 1),
                },
                Err(_) => {
                    add(&stats.groups_failed, 1);
                    break;
                }
            }
        }
    }
}
