//! Table records a cluster member applied: the leader's statements reach every member as log
//! records (`tables/versions/replicated.rs`), and this tells the member's readers of them,
//! as a local statement's commit would (`hooks.rs`).

use strand_log::PartitionId;
use strand_sql_view::{Name, TableName};

use super::Engine;
use crate::catalog::CatalogTable;
use crate::tables::{partition_prefix, TABLE_PARTITIONS_PREFIX};

impl Engine {
    /// Records were applied to the table partition `id` on this member: index them and wake
    /// its feeds and the table's topic sources (if something holds the partition open:
    /// opening it indexes the log anyway), and queue STREAM rows for expiry.
    pub fn rows_replicated(&self, id: &PartitionId) {
        let table = self.table_of(id);
        // STREAM rows are queued for expiry on every member, so a new leader expires them.
        if let Some(table) = &table {
            self.hooks.queue_expiry(table, id);
        }
        let Some(partition) = self.tables.open_by_id(id) else {
            return;
        };
        if let Err(error) = partition.catch_up_index() {
            tracing::error!(partition = id.as_str(), %error, "cannot index replicated rows");
        }
        match table {
            Some(table) => self.hooks.committed(&table, id, &partition),
            // A table dropped since: its feeds still wake and find it gone.
            None => self.realtime.committed(&partition),
        }
    }

    /// This member's settled tick moved (`cluster/ticks.rs`): joins read on to it.
    pub fn ticked(&self) {
        self.realtime.wake_joins();
    }

    /// The catalog table (this incarnation) whose partition `id` is.
    fn table_of(&self, id: &PartitionId) -> Option<CatalogTable> {
        let inner = id.as_str().strip_prefix(TABLE_PARTITIONS_PREFIX)?;
        let (qualified, _) = inner.split_once('/')?;
        let (name, _incarnation) = qualified.rsplit_once('.')?;
        let (namespace, table) = name.split_once('.')?;
        let name = TableName {
            namespace: Name::new(namespace).ok()?,
            table: Name::new(table).ok()?,
        };
        let table = self.catalog.entry(&name)?;
        id.as_str()
            .starts_with(&partition_prefix(&table))
            .then_some(table)
    }
}
