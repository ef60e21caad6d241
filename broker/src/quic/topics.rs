//! [`TopicService`]: `produce_topic` and `fetch` over QUIC, served from [`TopicData`]. Who may
//! use a topic: administrators, and users granted INSERT (produce) or SELECT (fetch) on it
//! (`GRANT ... ON ns.topic`). Durable appends run on the blocking pool; a fetch with nothing
//! to return waits up to its `wait_ms` for the next message (long poll, no busy polling).
//! A produce by key hash sends each keyed record to its key's partition. Each acknowledged
//! batch and each answer sent is counted in its topic's `/metrics` counters.

use std::sync::{Arc, OnceLock};
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
use crate::cluster::forward::SqlForwarder;
use crate::cluster::writer::ReplicationError;
use crate::limits::FETCH_WAIT_MS_MAX;
use crate::metrics::Metrics;
use crate::session::Session;
use crate::topics::{FetchFrom, PartitionChoice, ProducerBatch, TopicData, TopicError};
use crate::users::UserDirectory;

pub struct TopicService {
    access: TopicAccess,
    topics: Arc<TopicData>,
    metrics: Arc<Metrics>,
    /// On a cluster member: sends a produce refused with `not_leader` to the leader.
    forwarder: OnceLock<Arc<SqlForwarder>>,
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
            forwarder: OnceLock::new(),
        }
    }

    /// From now on, send produces refused with `not_leader` to the leader (set once).
    pub fn forward_through(&self, forwarder: Arc<SqlForwarder>) {
        let _ = self.forwarder.set(forwarder);
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
    /// Answers `request`: here, or on a cluster member that does not lead, by the leader
    /// (`frame_forward.rs`).
    pub(crate) async fn produce_topic(
        &self,
        session: &Session,
        request: ProduceTopic,
        reply: &mut Responder,
    ) -> Result<(), ReplyError> {
        let request = Arc::new(request);
        let answer = self.produce_answer(session, request.clone()).await;
        let messages = match (self.forwarder.get(), answer.forwardable) {
            (Some(forwarder), true) => {
                let here = answer.messages;
                let message = Message::ProduceTopic(ProduceTopic::clone(&request));
                super::frame_forward::forwarded_frame(forwarder, session, message, here).await
            }
            _ => answer.messages,
        };
        for message in messages {
            reply.send(message).await?;
        }
        Ok(())
    }

    /// What this node answers `request`: a `produce_ack` per partition written, or one
    /// `error`.
    pub(crate) async fn produce_answer(
        &self,
        session: &Session,
        request: Arc<ProduceTopic>,
    ) -> ProduceAnswer {
        let topic = match self.topic(session, &request.topic, Privilege::Insert) {
            Ok(topic) => topic,
            Err(refusal) => return ProduceAnswer::refused(refusal),
        };
        if let Some(refusal) = oversized_key(&request) {
            return ProduceAnswer::refused(refusal);
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
        let records = request.clone();
        let written = tokio::task::spawn_blocking(move || {
            let messages: Vec<(&[u8], &[u8])> = records
                .records
                .iter()
                .map(|r| (&r.key[..], &r.value[..]))
                .collect();
            produce_split(&topics, &topic, choice, &messages, producer)
        })
        .await;
        match written {
            Ok(Ok(acks)) => {
                let mut messages = Vec::with_capacity(acks.len());
                for (ack, bytes) in acks {
                    if !ack.duplicate {
                        counters.produced(u64::from(ack.count), bytes as u64);
                    }
                    tracing::debug!(user = %session.user(), topic = %request.topic,
                            partition = ack.partition, first = ack.first.0, count = ack.count,
                            "produced");
                    messages.push(Message::ProduceAck(ProduceAck {
                        partition: PartitionIndex(ack.partition),
                        first: strand_wire::quic::Seq(ack.first.0),
                        last: strand_wire::quic::Seq(ack.last.0),
                        count: ack.count,
                        duplicate: ack.duplicate,
                    }));
                }
                ProduceAnswer {
                    messages,
                    forwardable: false,
                }
            }
            Ok(Err(failed)) => {
                let not_leader = matches!(
                    &failed.error,
                    TopicError::Replication(ReplicationError::NotLeader { .. })
                );
                ProduceAnswer {
                    forwardable: not_leader && !failed.wrote_some,
                    ..ProduceAnswer::refused(refusal(&failed.error))
                }
            }
            Err(error) => ProduceAnswer::refused((codes::STORAGE_ERROR, error.to_string())),
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
) -> Result<Vec<(crate::topics::ProduceAck, usize)>, SplitFailed> {
    let keyed = messages.iter().any(|(key, _)| !key.is_empty());
    if choice != PartitionChoice::ByKey || !keyed {
        let ack = topics
            .produce(topic, choice, messages, producer)
            .map_err(|error| SplitFailed {
                error,
                wrote_some: false,
            })?;
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
        let ack = topics
            .produce(topic, explicit, &batch, producer)
            .map_err(|error| SplitFailed {
                error,
                wrote_some: !acks.is_empty(),
            })?;
        acks.push((ack, message_bytes(&batch)));
    }
    Ok(acks)
}

/// A produce that failed at one of its partitions.
struct SplitFailed {
    error: TopicError,
    /// An earlier partition's records were written (the request cannot run again whole).
    wrote_some: bool,
}

/// What a produce answers, and whether a cluster member that does not lead may send it on to
/// the leader: refused with `not_leader` before anything was written.
pub(crate) struct ProduceAnswer {
    /// `produce_ack`s, or one `error`.
    pub(crate) messages: Vec<Message>,
    pub(crate) forwardable: bool,
}

impl ProduceAnswer {
    /// `messages`, which nobody forwards.
    pub(crate) fn answered(messages: Vec<Message>) -> ProduceAnswer {
        ProduceAnswer {
            messages,
            forwardable: false,
        }
    }

    /// One `error` frame, which nobody forwards.
    pub(crate) fn refused((code, text): Refusal) -> ProduceAnswer {
        ProduceAnswer {
            messages: vec![error_message(code, text)],
            forwardable: false,
        }
    }
}

/// An `error` frame's message.
pub(crate) fn error_message(code: &str, text: impl Into<String>) -> Message {
    Message::Error(strand_wire::quic::ErrorReply {
        code: code.to_string(),
        message: text.into(),
    })
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
