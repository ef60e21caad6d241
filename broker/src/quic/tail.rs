//! `tail`: push a partition's records from a starting point, then every new one, until the
//! client stops reading the stream. Between pushes the handler sleeps on the partition's
//! commit watch (no busy polling); QUIC flow control holds it back when the client reads
//! slowly, so a slow tail costs the server one parked task and the stream's window.
//!
//! A tail ends with `permission_revoked` or `user_dropped` as soon as its user loses SELECT
//! on the topic or is dropped: it wakes on every user or grant change and re-checks, and it
//! checks again before every push.

use std::time::Duration;
use strand_sql_view::Privilege;

use strand_log::Seq;
use strand_wire::quic::{
    Fetch, PartitionIndex, ReadFrom, RecordsFrameKind, RecordsFrameWriter, RequestId,
};

use super::access::{refusal, Refusal, TopicAccess};
use super::responder::{ReplyError, Responder};
use crate::catalog::CatalogTopic;
use crate::limits::{TAIL_LINGER_MS_MAX, TAIL_WAKE_INTERVAL_MS};
use crate::metrics::Metrics;
use crate::session::Session;
use crate::topics::{FetchFrom, TopicData, TopicError};

pub(crate) async fn tail(
    access: &TopicAccess,
    topics: &TopicData,
    metrics: &Metrics,
    session: &Session,
    request: Fetch,
    reply: &mut Responder,
) -> Result<(), ReplyError> {
    // Subscribed before the check, so a change committed after it is seen.
    let mut changes = access.changes();
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
    let wake = Duration::from_millis(TAIL_WAKE_INTERVAL_MS);
    tracing::debug!(user = %session.user(), topic = %request.topic, partition = index,
        after = after.map(|s| s.0), "tail started");
    let (request_id, limits) = (reply.request_id(), (records_max, bytes_max));
    let kind = RecordsFrameKind::TailPush;
    let read = |from| read_records_frame(topics, &topic, index, from, limits, kind, request_id);
    loop {
        let from = after.map_or(FetchFrom::Earliest, FetchFrom::After);
        let mut push = match read(from) {
            Ok(push) => push,
            Err(error) => return send_refusal(reply, refusal(&error)).await,
        };
        if push.records == 0 {
            let waited = tokio::select! {
                waited = topics.wait_after(&topic, index, after.unwrap_or(Seq::ZERO),
                    wake) => waited,
                () = reply.stopped() => return Ok(()),
                Ok(()) = changes.changed() => match access.still_readable(session, &request.topic) {
                    Ok(()) => continue,
                    Err(refused) => return send_refusal(reply, refused).await,
                },
            };
            if let Err(error) = waited {
                return send_refusal(reply, refusal(&error)).await;
            }
            continue;
        }
        if push.records < records_max && !linger.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(linger) => {}
                () = reply.stopped() => return Ok(()),
            }
            push = match read(from) {
                Ok(push) => push,
                Err(error) => return send_refusal(reply, refusal(&error)).await,
            };
        }
        if let Err(refused) = access.still_readable(session, &request.topic) {
            return send_refusal(reply, refused).await;
        }
        after = push.last.or(after);
        let (records, bytes) = (push.records as u64, push.bytes as u64);
        // Waits on the client's flow-control window; fails once the client stops the stream.
        reply.send_encoded(push.frame).await?;
        let counters = metrics.topic_counters(topic.incarnation);
        counters.fetched(records, bytes);
    }
}

async fn send_refusal(reply: &mut Responder, (code, text): Refusal) -> Result<(), ReplyError> {
    reply.error(code, text).await
}

/// Records read from a partition, already encoded as one response frame.
pub(crate) struct FrameRead {
    pub frame: Vec<u8>,
    pub records: usize,
    /// Key and value bytes of those records.
    pub bytes: usize,
    /// The `_seq` of the last record in the frame.
    pub last: Option<Seq>,
}

/// Reads up to `records_max` records (about `bytes_max` bytes) of partition `index` after
/// `from` straight from the log into one `kind` frame for `request_id`: no copy or allocation
/// per record.
pub(crate) fn read_records_frame(
    topics: &TopicData,
    topic: &CatalogTopic,
    index: u32,
    from: FetchFrom,
    (records_max, bytes_max): (usize, usize),
    kind: RecordsFrameKind,
    request_id: RequestId,
) -> Result<FrameRead, TopicError> {
    let (writer, last, bytes) =
        topics.read_with(topic, index, from, records_max, bytes_max, |messages| {
            let bytes = messages
                .iter()
                .map(|m| RecordsFrameWriter::record_bytes(m.key.len(), m.value.len()))
                .sum();
            let mut writer =
                RecordsFrameWriter::new(kind, request_id, PartitionIndex(index), bytes);
            let (mut last, mut bytes) = (None, 0);
            for m in messages {
                let seq = strand_wire::quic::Seq(m.seq.0);
                if !writer.push(seq, m.timestamp_unix_ms, m.key, m.value) {
                    break;
                }
                last = Some(m.seq);
                bytes += m.key.len() + m.value.len();
            }
            // A first message too large for any frame would otherwise be an empty answer,
            // forever (and a tail would spin on it).
            match messages.first() {
                Some(first) if last.is_none() => {
                    Err(TopicError::TooLargeForFrame { seq: first.seq })
                }
                _ => Ok((writer, last, bytes)),
            }
        })??;
    // After the read, so it is at least the last record's `_seq`.
    let high = topics.last_seq(topic, index)?;
    let records = writer.records();
    let frame = writer.finish(strand_wire::quic::Seq(high.0));
    Ok(FrameRead {
        frame,
        records,
        bytes,
        last,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use strand_log::{FsyncPolicy, Store, StoreConfig};
    use strand_sql_view::{Name, TopicName};
    use strand_wire::quic::FRAME_BYTES_MAX;

    use super::*;
    use crate::catalog::TopicDef;
    use crate::topics::PartitionChoice;

    #[test]
    fn a_message_too_large_for_any_frame_is_an_error_not_an_empty_answer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = StoreConfig::default();
        config.partition.fsync = FsyncPolicy::Never;
        let topics = TopicData::new(Arc::new(Store::open(dir.path(), config).expect("store")));
        let topic = CatalogTopic {
            def: Arc::new(TopicDef {
                name: TopicName {
                    namespace: Name::new("app").expect("name"),
                    topic: Name::new("big").expect("name"),
                },
                partitions: 1,
                retention_seconds: None,
                sources: Vec::new(),
            }),
            incarnation: Seq(1),
        };
        let small = topics
            .produce(&topic, PartitionChoice::Explicit(0), &[(b"", b"a")], None)
            .expect("small");
        // Storable (the log takes 16 MiB payloads) but over a frame with its record header.
        let big = vec![7u8; FRAME_BYTES_MAX - 8];
        let large = topics
            .produce(&topic, PartitionChoice::Explicit(0), &[(b"", &big)], None)
            .expect("large");
        let limits = (100, usize::MAX);
        let kind = RecordsFrameKind::FetchResponse;
        let read = |from| read_records_frame(&topics, &topic, 0, from, limits, kind, RequestId(1));
        let first = read(FetchFrom::Earliest).expect("the small one");
        assert_eq!((first.records, first.last), (1, Some(small.first)));
        match read(FetchFrom::After(small.first)) {
            Err(TopicError::TooLargeForFrame { seq }) => assert_eq!(seq, large.first),
            Err(other) => panic!("unexpected error {other}"),
            Ok(read) => panic!("{} records instead of an error", read.records),
        }
    }
}
