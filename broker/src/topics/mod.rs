//! Topics: Kafka-style logs of messages, split into partitions, written by producers and read
//! by consumers and consumer groups (docs/topics.md). This module owns topic definitions
//! (`def.rs`; stored by the catalog), produce/fetch over the log (`data.rs`), group offsets
//! and the group coordinator, publishing table changes to topics (`source.rs`), and what
//! `/metrics` reads of topics and groups (`series.rs`); not the wire protocol
//! (`strand-wire`) nor SQL DDL parsing.

mod data;
mod envelope;
pub mod group;
mod offsets;
mod series;
mod source;

pub(crate) use data::replication_code;
pub use data::{FetchFrom, PartitionChoice, ProduceAck, ProducerBatch, TopicData, TopicError};
pub use offsets::{GroupOffsets, OffsetsError};
pub use series::TopicSeriesSource;
pub use source::SourcePump;

use crate::catalog::CatalogTopic;

/// The start of every topic partition's log partition id.
pub const TOPIC_PARTITIONS_PREFIX: &str = "tp/";

/// The start of the log partition ids of `topic`'s partitions (`tp/<ns>.<topic>.<incarnation>/`);
/// partition `p` is this followed by `p`.
pub fn partition_prefix(topic: &CatalogTopic) -> String {
    let name = &topic.def.name;
    format!(
        "{TOPIC_PARTITIONS_PREFIX}{}.{}.{}/",
        name.namespace, name.topic, topic.incarnation.0
    )
}
