//! [`CommitHooks`]: what happens after a batch of row versions is durable in a table
//! partition, whoever wrote it (a statement, or the STREAM expiry sweep): its realtime feed is
//! woken, the table-to-topic publisher is told when a topic has the table as a source, and a
//! STREAM partition is queued for expiry.

use std::sync::Arc;

use strand_log::PartitionId;
use strand_sql_view::TableKind;

use super::expiry::{now_unix_ms, ExpiryQueue};
use crate::catalog::{Catalog, CatalogTable};
use crate::realtime::Realtime;
use crate::tables::versions::KeyedPartition;
use crate::topics::SourcePump;

pub(crate) struct CommitHooks {
    pub catalog: Arc<Catalog>,
    pub realtime: Arc<Realtime>,
    pub sources: Arc<SourcePump>,
    pub expiry: Arc<ExpiryQueue>,
}

impl CommitHooks {
    /// A statement's rows are durable in `partition` (`id`) of `table`.
    pub fn rows_written(&self, table: &CatalogTable, id: PartitionId, partition: &KeyedPartition) {
        self.queue_expiry(table, &id);
        self.committed(table, &id, partition);
    }

    /// Rows were written to partition `id` of `table`: if it is a STREAM table, they expire
    /// a TTL from now.
    pub fn queue_expiry(&self, table: &CatalogTable, id: &PartitionId) {
        if let TableKind::Stream { ttl_seconds } = table.def.kind() {
            let due = now_unix_ms().saturating_add(ttl_seconds.saturating_mul(1000));
            self.expiry.written(id.clone(), table.def.name(), due);
        }
    }

    /// Row versions are durable in `partition` (`id`) of `table`: wake whoever reads them.
    pub fn committed(&self, table: &CatalogTable, id: &PartitionId, partition: &KeyedPartition) {
        self.realtime.committed(partition);
        if self.catalog.is_topic_source(table.def.name()) {
            self.sources.notify(table.def.name(), id.clone());
        }
    }
}
