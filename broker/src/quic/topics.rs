//! [`TopicService`]: `produce_topic` and `fetch` over QUIC, served from [`TopicData`]. Who may
//! use a topic: administrators, and users granted INSERT (produce) or SELECT (fetch) on it
//! (`GRANT ... ON ns.topic`). Durable appends run on the blocking pool; a fetch with nothing
//! to return waits up to its `wait_ms` for the next message (long poll, no busy polling).
//!
//! Tails and consumer groups are not served yet (they answer `unsupported`).

use std::sync::Arc;
use std::time::Duration;

use strand_log::Seq;
use strand_sql_view::{Name, TopicName};
use strand_wire::quic::{
    codes, Fetch, Message, PartitionIndex, Partitioning, ProduceAck, ProduceTopic, ReadFrom,
    Record, Records,
};

use super::service::{Handled, QuicService, Responder};
use crate::session::Session;
use crate::tables::catalog::{Catalog, CatalogTopic};
use crate::topics::{FetchFrom, PartitionChoice, ProducerBatch, TopicData, TopicError};
use crate::users::{Privilege, UserDirectory};

/// The longest long poll a fetch may ask for.
const FETCH_WAIT_MS_MAX: u32 = 60_000;

pub struct TopicService {
    catalog: Arc<Catalog>,
    topics: Arc<TopicData>,
    users: Arc<UserDirectory>,
}

/// Why a request is refused: a protocol error code and a message.
type Refusal = (&'static str, String);

impl TopicService {
    pub fn new(
        catalog: Arc<Catalog>,
        topics: Arc<TopicData>,
        users: Arc<UserDirectory>,
    ) -> TopicService {
        TopicService {
            catalog,
            topics,
            users,
        }
    }

    /// The topic `name` (`ns.topic`), if it exists and the session may use it so.
    fn topic(
        &self,
        session: &Session,
        name: &str,
        privilege: Privilege,
    ) -> Result<CatalogTopic, Refusal> {
        let unknown = || (codes::UNKNOWN_TOPIC, format!("topic {name} does not exist"));
        let (namespace, topic) = name.split_once('.').ok_or_else(unknown)?;
        let (Ok(namespace), Ok(topic)) = (Name::new(namespace), Name::new(topic)) else {
            return Err(unknown());
        };
        // Grants name topics like tables (`GRANT ... ON ns.topic`).
        let granted_object = crate::users::TableName::new(format!("{namespace}.{topic}"));
        let found = self
            .catalog
            .topic(&TopicName { namespace, topic })
            .ok_or_else(unknown)?;
        let granted = granted_object
            .is_ok_and(|object| self.users.has_privilege(session.user(), &object, privilege));
        if session.role().is_admin() || granted {
            return Ok(found);
        }
        let text = format!(
            "{} has no {} privilege on topic {name}",
            session.user(),
            privilege.as_str()
        );
        Err((codes::FORBIDDEN, text))
    }
}

impl QuicService for TopicService {
    fn produce_topic<'a>(
        &'a self,
        session: &'a Session,
        request: ProduceTopic,
        reply: &'a mut Responder,
    ) -> Handled<'a> {
        Box::pin(async move {
            let topic = match self.topic(session, &request.topic, Privilege::Insert) {
                Ok(topic) => topic,
                Err((code, text)) => return reply.error(code, text).await,
            };
            let choice = match request.partitioning {
                Partitioning::ByKeyHash => PartitionChoice::ByKey,
                Partitioning::Explicit(index) => PartitionChoice::Explicit(index.0),
            };
            let producer = request.idempotence.map(|i| ProducerBatch {
                producer_id: i.producer.0,
                batch_seq: i.batch.0,
            });
            let topics = self.topics.clone();
            let written = tokio::task::spawn_blocking(move || {
                let messages: Vec<(&[u8], &[u8])> = request
                    .records
                    .iter()
                    .map(|r| (r.key.as_slice(), r.value.as_slice()))
                    .collect();
                topics.produce(&topic, choice, &messages, producer)
            })
            .await;
            match written {
                Ok(Ok(ack)) => {
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
                    reply.send(Message::ProduceAck(ack)).await
                }
                Ok(Err(error)) => {
                    let (code, text) = refusal(&error);
                    reply.error(code, text).await
                }
                Err(error) => reply.error(codes::STORAGE_ERROR, error.to_string()).await,
            }
        })
    }

    fn fetch<'a>(
        &'a self,
        session: &'a Session,
        request: Fetch,
        reply: &'a mut Responder,
    ) -> Handled<'a> {
        Box::pin(async move {
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
            let mut read = self
                .topics
                .fetch(&topic, index, from, records_max, bytes_max);
            let wait = request.wait_ms.min(FETCH_WAIT_MS_MAX);
            if matches!(&read, Ok(found) if found.is_empty()) && wait > 0 {
                let after = match from {
                    FetchFrom::After(seq) => seq,
                    _ => Seq::ZERO,
                };
                let timeout = Duration::from_millis(u64::from(wait));
                if let Ok(true) = self.topics.wait_after(&topic, index, after, timeout).await {
                    read = self
                        .topics
                        .fetch(&topic, index, from, records_max, bytes_max);
                }
            }
            let high = self.topics.last_seq(&topic, index).unwrap_or(Seq::ZERO);
            match read {
                Ok(found) => {
                    let records = found
                        .into_iter()
                        .map(|m| Record {
                            seq: strand_wire::quic::Seq(m.seq.0),
                            timestamp_ms: m.timestamp_unix_ms,
                            key: m.key,
                            value: m.value,
                        })
                        .collect();
                    let records = Records {
                        partition: PartitionIndex(index),
                        high_seq: strand_wire::quic::Seq(high.0),
                        records,
                    };
                    reply.send(Message::FetchResponse(records)).await
                }
                Err(error) => {
                    let (code, text) = refusal(&error);
                    reply.error(code, text).await
                }
            }
        })
    }
}

fn refusal(error: &TopicError) -> Refusal {
    let code = match error {
        TopicError::NoSuchPartition { .. } => codes::UNKNOWN_PARTITION,
        TopicError::OutOfOrder { .. } => codes::OUT_OF_ORDER,
        TopicError::EmptyBatch => codes::LIMIT_EXCEEDED,
        TopicError::Log(_) | TopicError::Corrupt(_) => codes::STORAGE_ERROR,
    };
    (code, error.to_string())
}
