//! [`AppliedRouter`]: on a cluster member, tells each part of the broker of the records its
//! Raft groups applied to the local store, by partition: the catalog, the user directory and
//! the group offsets read their new records, topics wake their tailing readers, tables index
//! the new versions and wake their feeds.

use std::sync::Arc;

use strand_log::{PartitionId, Seq};

use crate::catalog::Catalog;
use crate::cluster::groups::GroupMap;
use crate::cluster::state_machine::AppliedListener;
use crate::engine::Engine;
use crate::limits::CLUSTER_DATA_GROUPS;
use crate::tables::TABLE_PARTITIONS_PREFIX as TABLE_PARTITIONS;
use crate::topics::{GroupOffsets, TopicData, TOPIC_PARTITIONS_PREFIX as TOPIC_PARTITIONS};
use crate::users::UserDirectory;

/// Which group replicates which partition: table and topic partitions are spread over the
/// data groups, everything else is the meta group's.
pub(super) fn group_map() -> GroupMap {
    GroupMap::new(
        CLUSTER_DATA_GROUPS,
        vec![TABLE_PARTITIONS, TOPIC_PARTITIONS],
    )
}

/// Routes applied records to the catalog, users, topics, group offsets and tables.
pub(super) struct AppliedRouter {
    pub(super) catalog: Arc<Catalog>,
    pub(super) topics: Arc<TopicData>,
    pub(super) offsets: Arc<GroupOffsets>,
    pub(super) engine: Arc<Engine>,
    pub(super) users: Arc<UserDirectory>,
}

impl AppliedListener for AppliedRouter {
    fn applied(&self, partition: &str, last: Seq) {
        let Ok(id) = PartitionId::new(partition) else {
            return;
        };
        if Catalog::is_catalog_partition(&id) {
            if let Err(error) = self.catalog.catch_up() {
                tracing::error!(%error, seq = last.0, "cannot apply replicated catalog records");
            }
        } else if UserDirectory::is_users_partition(&id) {
            if let Err(error) = self.users.catch_up() {
                tracing::error!(%error, seq = last.0, "cannot apply replicated user records");
            }
        } else if partition.starts_with(TOPIC_PARTITIONS) {
            self.topics.replicated(&id, last);
        } else if partition.starts_with(TABLE_PARTITIONS) {
            self.engine.rows_replicated(&id);
        } else if GroupOffsets::is_offsets_partition(&id) {
            if let Err(error) = self.offsets.catch_up() {
                tracing::error!(%error, seq = last.0, "cannot apply replicated group offsets");
            }
        }
    }

    fn ticked(&self) {
        self.engine.ticked();
    }

    fn replicates(&self, partition: &str) -> bool {
        partition.starts_with(TOPIC_PARTITIONS)
            || partition.starts_with(TABLE_PARTITIONS)
            || PartitionId::new(partition).is_ok_and(|id| {
                Catalog::is_catalog_partition(&id)
                    || UserDirectory::is_users_partition(&id)
                    || GroupOffsets::is_offsets_partition(&id)
            })
    }
}
