//! [`TopicService`]: `produce_topic` and `fetch` over QUIC, served from [`TopicData`]. Who may
//! use a topic: administrators, and users granted INSERT (produce) or SELECT (fetch) on it
//! (`GRANT ... ON ns.topic`). Durable appends run on the blocking pool; a fetch with nothing
//! to return waits up to its `wait_ms` for the next message (long poll, no busy polling).
//! A produce by key hash sends each keyed record to its key's partition. Each acknowledged
//! batch and each answer sent is counted in its topic's `/metrics` counters.

use std::sync::Arc;
use std::time::Duration;
use strand_sql_view::Privilege;

use strand_log::Seq;
use strand_wire::quic::{
    codes, Fetch, Message, PartitionIndex, Partitioning, ProduceAck, ProduceTopic, ReadFrom,
    RecordsFrameKind,
};

use super::access::{refusal, Refusal, TopicAccess};
use super::responder::{ReplyError, Responder};
use super::tail::read_records_frame;
use crate::catalog::{Catalog, CatalogTopic};
use crate::limits::FETCH_WAIT_MS_MAX;
use crate::metrics::Metrics;
use crate::session::Session;
use crate::topics::{FetchFrom, PartitionChoice, ProducerBatch, TopicData, TopicError};
use crate::users::UserDirectory;

pub struct TopicService {
    access: TopicAccess,
    topics: Arc<TopicData>,
    metrics: Arc<Metrics>,
}

impl TopicService {
    pub fn new(
        catalog: Arc<Catalog>,
        topics: Arc<TopicData>,
        users: Arc<UserDirectory>,
        metrics: Arc<Metrics>,
    ) -> TopicService {
        TopicService {
            access: TopicAccess::new(catalog, users),
            topics,
            metrics,
        }
    }

    /// The topic `name` (`ns.topic`), if it exists and the session may use it so.
    fn topic(
        &self,
        session: &Session,
        name: &str,
        privilege: Privilege,
    ) -> Result<CatalogTopic, Refusal> {
        self.access.topic(session, name, privilege)
    }
}

impl TopicService {
    pub(crate) async fn produce_topic(
        &self,
        session: &Session,
        request: ProduceTopic,
        reply: &mut Responder,
    ) -> Result<(), ReplyError> {
        let topic = match self.topic(session, &request.topic, Privilege::Insert) {
            Ok(topic) => topic,
            Err((code, text)) => return reply.error(code, text).await,
        };
        if let Some((code, text)) = oversized_key(&request) {
            return reply.error(code, text).await;
        }
        let choice = match request.partitioning {
            Partitioning::ByKeyHash => PartitionChoice::ByKey,
            Partitioning::Explicit(index) => PartitionChoice::Explicit(index.0),
        };
        let producer = request.idempotence.map(|i| ProducerBatch {
            producer_id: i.producer.0,
            batch_seq: i.batch.0,
        });
        let topics = self.topics.clone();
        let counters = self.metrics.topic_counters(topic.incarnation);
        let written = tokio::task::spawn_blocking(move || {
            let messages: Vec<(&[u8], &[u8])> = request
                .records
                .iter()
                .map(|r| (&r.key[..], &r.value[..]))
                .collect();
            produce_split(&topics, &topic, choice, &messages, producer)
        })
        .await;
        match written {
            Ok(Ok(acks)) => {
                for (ack, bytes) in acks {
                    if !ack.duplicate {
                        counters.produced(u64::from(ack.count), bytes as u64);
                    }
                    tracing::debug!(user = %session.user(), topic = %request.topic,
                            partition = ack.partition, first = ack.first.0, count = ack.count,
                            "produced");
                    let ack = ProduceAck {
                        partition: PartitionIndex(ack.partition),
                        first: strand_wire::quic::Seq(ack.first.0),
                        last: strand_wire::quic::Seq(ack.last.0),
                        count: ack.count,
                        duplicate: ack.duplicate,
                    };
                    reply.send(Message::ProduceAck(ack)).await?;
                }
                Ok(())
            }
            Ok(Err(error)) => {
                let (code, text) = refusal(&error);
                reply.error(code, text).await
            }
            Err(error) => reply.error(codes::STORAGE_ERROR, error.to_string()).await,
        }
    }

    pub(crate) async fn fetch(
        &self,
        session: &Session,
        request: Fetch,
        reply: &mut Responder,
    ) -> Result<(), ReplyError> {
        let topic = match self.topic(session, &request.topic, Privilege::Select) {
            Ok(topic) => topic,
            Err((code, text)) => return reply.error(code, text).await,
        };
        let index = request.partition.0;
        let from = match request.from {
            ReadFrom::Earliest => FetchFrom::Earliest,
            ReadFrom::After(seq) => FetchFrom::After(Seq(seq.0)),
            // "Latest" means what arrives after the request: pin it to the current end.
            ReadFrom::Latest => match self.topics.last_seq(&topic, index) {
                Ok(last) => FetchFrom::After(last),
                Err(error) => {
                    let (code, text) = refusal(&error);
                    return reply.error(code, text).await;
                }
            },
        };
        let records_max = request.records_max.max(1) as usize;
        let bytes_max = request.bytes_max.max(1) as usize;
        let limits = (records_max, bytes_max);
        let topics = &self.topics;
        let request_id = reply.request_id();
        let kind = RecordsFrameKind::FetchResponse;
        let read = |from| read_records_frame(topics, &topic, index, from, limits, kind, request_id);
        let mut answer = read(from);
        let wait = request.wait_ms.min(FETCH_WAIT_MS_MAX);
        if matches!(&answer, Ok(found) if found.records == 0) && wait > 0 {
            let after = match from {
                FetchFrom::After(seq) => seq,
                _ => Seq::ZERO,
            };
            let timeout = Duration::from_millis(u64::from(wait));
            if let Ok(true) = topics.wait_after(&topic, index, after, timeout).await {
                answer = read(from);
            }
        }
        match answer {
            Ok(found) => {
                let (records, bytes) = (found.records as u64, found.bytes as u64);
                reply.send_encoded(found.frame).await?;
                if records > 0 {
                    let counters = self.metrics.topic_counters(topic.incarnation);
                    counters.fetched(records, bytes);
                }
                Ok(())
            }
            Err(error) => {
                let (code, text) = refusal(&error);
                reply.error(code, text).await
            }
        }
    }
}

/// A message to write: its key and value.
type KeyValue<'a> = (&'a [u8], &'a [u8]);

/// Key and value bytes of `messages` (what `/metrics` counts as a topic's bytes).
fn message_bytes(messages: &[KeyValue<'_>]) -> usize {
    messages
        .iter()
        .map(|(key, value)| key.len() + value.len())
        .sum()
}

/// Writes a produce: with key hashing, each keyed record goes to its key's partition (one
/// batch per partition, each with the producer's batch identity: idempotence is kept per
/// partition); a batch without keys goes to one partition, round-robin. Stops at the first
/// failure; a retry of the same batch then writes only the partitions not yet written.
/// Each ack comes with its batch's key and value bytes.
fn produce_split(
    topics: &TopicData,
    topic: &CatalogTopic,
    choice: PartitionChoice,
    messages: &[KeyValue<'_>],
    producer: Option<ProducerBatch>,
) -> Result<Vec<(crate::topics::ProduceAck, usize)>, TopicError> {
    let keyed = messages.iter().any(|(key, _)| !key.is_empty());
    if choice != PartitionChoice::ByKey || !keyed {
        let ack = topics.produce(topic, choice, messages, producer)?;
        return Ok(vec![(ack, message_bytes(messages))]);
    }
    let mut by_partition: std::collections::BTreeMap<u32, Vec<KeyValue<'_>>> =
        std::collections::BTreeMap::new();
    for &(key, value) in messages {
        let partition = topics.partition_for_key(topic, key);
        by_partition
            .entry(partition)
            .or_default()
            .push((key, value));
    }
    let mut acks = Vec::with_capacity(by_partition.len());
    for (partition, batch) in by_partition {
        let explicit = PartitionChoice::Explicit(partition);
        let ack = topics.produce(topic, explicit, &batch, producer)?;
        acks.push((ack, message_bytes(&batch)));
    }
    Ok(acks)
}

/// A message whose key the log cannot store (keys are at most `KEY_BYTES_MAX` bytes) refuses
/// the whole batch with `limit_exceeded`, before anything is written.
fn oversized_key(request: &ProduceTopic) -> Option<Refusal> {
    let max = strand_log::limits::KEY_BYTES_MAX;
    let (index, record) = request
        .records
        .iter()
        .enumerate()
        .find(|(_, record)| record.key.len() > max)?;
    let text = format!(
        "message {index} has a key of {} bytes; keys are at most {max} bytes",
        record.key.len()
    );
    Some((codes::LIMIT_EXCEEDED, text))
}
