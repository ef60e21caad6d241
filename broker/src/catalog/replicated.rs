//! The catalog on a cluster member: a change is replicated through the Raft group
//! ([`BlockingWriter`]) as one record of `system/catalog`, which every member appends with
//! the same `_seq` (so a table's or topic's incarnation, and the names of its partitions, are
//! the same on every member). Each member then reads the records it has not applied yet into
//! its in-memory state ([`Catalog::catch_up`]).

use strand_log::PartitionId;

use super::{Catalog, CatalogError, CATALOG_PARTITION};
use crate::cluster::writer::BlockingWriter;

impl Catalog {
    /// From now on, changes are replicated through `writer` (a cluster member).
    pub fn replicate_through(&self, writer: BlockingWriter) {
        let _ = self.replication.set(writer);
    }

    /// Whether `id` is the catalog's partition.
    pub fn is_catalog_partition(id: &PartitionId) -> bool {
        id.as_str() == CATALOG_PARTITION
    }

    pub(super) fn partition_id(&self) -> &PartitionId {
        &self.partition_id
    }

    /// Applies the catalog records appended since the state was last brought up to date
    /// (records a cluster member applied from its Raft group).
    pub fn catch_up(&self) -> Result<(), CatalogError> {
        self.state.write().replay(&self.partition)
    }
}
