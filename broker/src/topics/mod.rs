//! Topics: Kafka-style logs of messages, split into partitions, written by producers and read
//! by consumers and consumer groups (SPEC section 6). This module owns topic definitions
//! (`def.rs`; stored by the catalog) and, with the QUIC issue, produce/fetch over the log and
//! the group coordinator; not the wire protocol (`strand-wire`) nor SQL DDL parsing.

mod data;
mod def;
mod envelope;
pub mod group;
mod offsets;

pub use data::{
    FetchFrom, PartitionChoice, ProduceAck, ProducerBatch, TopicData, TopicError, TopicMessage,
};
pub use def::{TopicDef, TopicSource, TOPIC_PARTITIONS_DEFAULT, TOPIC_PARTITIONS_MAX};
pub use offsets::{GroupOffsets, OffsetsError};
