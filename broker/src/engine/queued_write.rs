//! A brief INSERT split in two for the HTTP shards: the statement's work now, on the shard's
//! thread (compile, key check, queue and index the batch), and its commit awaited without a
//! thread ([`PendingCommit`]). Before this, every durable INSERT with others in flight went to
//! the blocking pool and waited there on the commit condvar, and on two cores the context
//! switches, not the fsync, capped throughput.
//!
//! Only a request of one INSERT into a partition whose key index is built is split; anything
//! else is declined and runs as before. An INSERT that finds its partition's lock held (an
//! UPDATE waiting for its fsync under it) is declined too, rather than blocking the shard.

use strand_sql_view::ast::Insert;
use strand_sql_view::{Statement, Value};

use super::errors;
use super::write::{affected, as_writes, no_live_duplicate, EncodedInsert};
use super::{Caller, Engine};
use crate::error::ApiError;
use crate::sql::{BriefWrite, PendingCommit, PreparedSql, RunCost};
use crate::tables::partition_id;
use crate::tables::versions::VersionError;

impl Engine {
    /// [`crate::sql::SqlEngine::queue_brief_write`] for the engine.
    pub(super) fn queue_brief_write(&self, prepared: PreparedSql) -> Result<BriefWrite, ApiError> {
        let [Statement::Insert(insert)] = prepared.statements.as_slice() else {
            return Ok(BriefWrite::Declined(prepared));
        };
        if prepared.cost != RunCost::BriefWrite {
            return Ok(BriefWrite::Declined(prepared));
        }
        let caller = self.caller(&prepared.session)?;
        match self.queue_insert(&caller, insert, &prepared.params)? {
            Some(pending) => Ok(BriefWrite::Queued(pending)),
            None => Ok(BriefWrite::Declined(prepared)),
        }
    }

    /// Queue `insert`'s rows without waiting for the partition's lock or the commit; `None`
    /// if the lock is held.
    fn queue_insert(
        &self,
        caller: &Caller,
        insert: &Insert,
        params: &[Value],
    ) -> Result<Option<PendingCommit>, ApiError> {
        let EncodedInsert { table, owner, rows } = self.encode_insert(caller, insert, params)?;
        let Ok(id) = partition_id(&table, owner) else {
            return Ok(None);
        };
        let partition = self
            .tables
            .partition(&table, owner)
            .map_err(errors::from_versions)?;
        let queued = partition
            .try_queue(&as_writes(&rows), |lookup| {
                no_live_duplicate(&table, &rows, lookup)
            })
            .map_err(errors::from_versions)?;
        let batch = match queued {
            None => return Ok(None),
            Some(checked) => checked?,
        };
        let (hooks, metrics) = (self.hooks.clone(), self.metrics.clone());
        let finish = async move {
            let mut batch = batch;
            match batch.committed().await {
                Ok(()) => {
                    hooks.rows_written(&table, id, &partition);
                    metrics.add_rows_written(rows.len() as u64);
                    Ok(vec![affected(rows.len(), "inserted")])
                }
                // Undoing the indexing waits for the partition's lock, which an UPDATE may
                // hold across its own fsync: not on the shard's thread.
                Err(error) => tokio::task::spawn_blocking(move || {
                    batch.undo(&partition, &as_writes(&rows));
                    Err(errors::from_versions(VersionError::Log(error)))
                })
                .await
                .unwrap_or_else(|join_error| Err(ApiError::internal(&join_error))),
            }
        };
        Ok(Some(PendingCommit::new(finish)))
    }
}
