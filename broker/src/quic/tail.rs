//! `tail`: push a partition's records from a starting point, then every new one, until the
//! client stops reading the stream. Between pushes the handler sleeps on the partition's
//! commit watch (no busy polling); QUIC flow control holds it back when the client reads
//! slowly, so a slow tail costs the server one parked task and the stream's window.

use std::time::Duration;

use strand_log::Seq;
use strand_wire::quic::{Fetch, Message, PartitionIndex, ReadFrom, Record, Records};

use super::access::{Refusal, TopicAccess};
use super::service::{ReplyError, Responder};
use super::topics::refusal;
use crate::session::Session;
use crate::topics::{FetchFrom, TopicData, TopicMessage};
use crate::users::Privilege;

/// How long one wait for new records lasts before the tail re-checks its stream; bounds how
/// long a tail of a dropped topic lingers.
const TAIL_WAKE_INTERVAL: Duration = Duration::from_secs(5);
/// The longest linger a tail may ask for (`wait_ms`: gather records before a push not full).
const TAIL_LINGER_MS_MAX: u32 = 1_000;

pub(crate) async fn tail(
    access: &TopicAccess,
    topics: &TopicData,
    session: &Session,
    request: Fetch,
    reply: &mut Responder,
) -> Result<(), ReplyError> {
    let topic = match access.topic(session, &request.topic, Privilege::Select) {
        Ok(topic) => topic,
        Err((code, text)) => return reply.error(code, text).await,
    };
    let index = request.partition.0;
    let mut after = match request.from {
        ReadFrom::Earliest => None,
        ReadFrom::After(seq) => Some(Seq(seq.0)),
        ReadFrom::Latest => match topics.last_seq(&topic, index) {
            Ok(last) => Some(last),
            Err(error) => return send_refusal(reply, refusal(&error)).await,
        },
    };
    let records_max = request.records_max.max(1) as usize;
    let bytes_max = request.bytes_max.max(1) as usize;
    let linger = Duration::from_millis(u64::from(request.wait_ms.min(TAIL_LINGER_MS_MAX)));
    tracing::debug!(user = %session.user(), topic = %request.topic, partition = index,
        after = after.map(|s| s.0), "tail started");
    loop {
        let from = after.map_or(FetchFrom::Earliest, FetchFrom::After);
        let mut read = match topics.fetch(&topic, index, from, records_max, bytes_max) {
            Ok(read) => read,
            Err(error) => return send_refusal(reply, refusal(&error)).await,
        };
        if read.is_empty() {
            let waited = tokio::select! {
                waited = topics.wait_after(&topic, index, after.unwrap_or(Seq::ZERO),
                    TAIL_WAKE_INTERVAL) => waited,
                () = reply.stopped() => return Ok(()),
            };
            if let Err(error) = waited {
                return send_refusal(reply, refusal(&error)).await;
            }
            continue;
        }
        if read.len() < records_max && !linger.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(linger) => {}
                () = reply.stopped() => return Ok(()),
            }
            read = match topics.fetch(&topic, index, from, records_max, bytes_max) {
                Ok(read) => read,
                Err(error) => return send_refusal(reply, refusal(&error)).await,
            };
        }
        after = read.last().map(|m| m.seq).or(after);
        let high = topics.last_seq(&topic, index).unwrap_or(Seq::ZERO);
        let push = records_of(index, high, read);
        // Waits on the client's flow-control window; fails once the client stops the stream.
        reply.send(Message::TailPush(push)).await?;
    }
}

async fn send_refusal(reply: &mut Responder, (code, text): Refusal) -> Result<(), ReplyError> {
    reply.error(code, text).await
}

/// The wire form of records read from partition `index`, whose last `_seq` is `high`.
pub(crate) fn records_of(index: u32, high: Seq, messages: Vec<TopicMessage>) -> Records {
    let records = messages
        .into_iter()
        .map(|m| Record {
            seq: strand_wire::quic::Seq(m.seq.0),
            timestamp_ms: m.timestamp_unix_ms,
            key: m.key,
            value: m.value,
        })
        .collect();
    Records {
        partition: PartitionIndex(index),
        high_seq: strand_wire::quic::Seq(high.0),
        records,
    }
}
