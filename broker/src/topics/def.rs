//! [`TopicDef`]: a topic as the catalog stores it (JSON in `system/catalog`, key
//! `topic/<ns>.<topic>`): its partitions, retention and the tables that feed it.

use serde::{Deserialize, Serialize};
use strand_sql_view::{TableName, TopicName};

/// Partitions of a topic created without `PARTITIONS = n`.
pub const TOPIC_PARTITIONS_DEFAULT: u32 = 1;
/// Most partitions a topic may have (each is a log partition with its own files).
pub const TOPIC_PARTITIONS_MAX: u32 = 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicDef {
    pub name: TopicName,
    pub partitions: u32,
    /// Messages older than this are removed by retention; `None` keeps them.
    pub retention_seconds: Option<u64>,
    /// Tables whose committed changes are published to the topic.
    #[serde(default)]
    pub sources: Vec<TopicSource>,
}

/// `ALTER TOPIC t ADD SOURCE table ON ...`: which changes of `table` the topic receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicSource {
    pub table: TableName,
    pub on_insert: bool,
    pub on_update: bool,
    pub on_delete: bool,
}
