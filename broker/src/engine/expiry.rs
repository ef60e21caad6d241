//! The STREAM expiry sweep: every `ttl_sweep_interval`, rows of STREAM tables whose TTL has
//! passed are deleted by real tombstones (`tables/expiry.rs`), so subscribers see them leave
//! and a resume never brings them back. A row leaves within about one interval of its
//! expiry (the tolerance documented in docs/sql.md).
//!
//! [`ExpiryQueue`] keeps only partitions with rows still to expire, and when the first is
//! due: a write to a STREAM partition queues it (one map update), a sweep that leaves nothing
//! to expire drops it. At start every STREAM partition on disk is queued once, so rows that
//! expired while the server was down are deleted too. The sweep reads each due partition from
//! where its last sweep stopped (the cursor lives in the open `KeyedPartition`; a reopened
//! one scans its retained records once more, finding expired rows already deleted).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use strand_log::{PartitionId, Store};
use strand_sql_view::{TableKind, TableName};

use super::hooks::CommitHooks;
use crate::catalog::{Catalog, CatalogTable};
use crate::periodic::PeriodicThread;
use crate::tables::expiry::{expire, scan};
use crate::tables::{partition_prefix, TableData};

/// STREAM partitions with rows still to expire, by when the first one is due.
#[derive(Default)]
pub(crate) struct ExpiryQueue {
    due: Mutex<HashMap<PartitionId, Due>>,
}

#[derive(Clone, Debug)]
struct Due {
    table: TableName,
    unix_ms: u64,
}

impl ExpiryQueue {
    /// A STREAM partition received rows that expire at `unix_ms` (or later).
    pub fn written(&self, partition: PartitionId, table: &TableName, unix_ms: u64) {
        let mut due = self.due.lock();
        due.entry(partition)
            .and_modify(|d| d.unix_ms = d.unix_ms.min(unix_ms))
            .or_insert_with(|| Due {
                table: table.clone(),
                unix_ms,
            });
    }

    /// Take the partitions due at `now_unix_ms`.
    fn take_due(&self, now_unix_ms: u64) -> Vec<(PartitionId, TableName)> {
        let mut due = self.due.lock();
        let ready: Vec<PartitionId> = due
            .iter()
            .filter(|(_, d)| d.unix_ms <= now_unix_ms)
            .map(|(id, _)| id.clone())
            .collect();
        ready
            .into_iter()
            .filter_map(|id| due.remove(&id).map(|d| (id, d.table)))
            .collect()
    }
}

/// What a sweep works with.
pub(crate) struct ExpiryContext {
    pub store: Arc<Store>,
    pub catalog: Arc<Catalog>,
    pub tables: Arc<TableData>,
    pub hooks: Arc<CommitHooks>,
    pub queue: Arc<ExpiryQueue>,
}

/// The running sweep thread; stops (and is joined) when dropped.
pub(crate) struct ExpirySweeper {
    _thread: PeriodicThread,
}

impl ExpirySweeper {
    pub fn start(context: ExpiryContext, interval: Duration) -> std::io::Result<ExpirySweeper> {
        queue_every_stream_partition(&context);
        let thread = PeriodicThread::start("strand-expiry", interval, move || {
            sweep(&context, now_unix_ms());
        })?;
        Ok(ExpirySweeper { _thread: thread })
    }
}

/// Queue every STREAM partition on disk, due now.
fn queue_every_stream_partition(context: &ExpiryContext) {
    let streams: Vec<CatalogTable> = context
        .catalog
        .entries()
        .into_iter()
        .filter(|t| matches!(t.def.kind(), TableKind::Stream { .. }))
        .collect();
    if streams.is_empty() {
        return;
    }
    let ids = match context.store.partition_ids() {
        Ok(ids) => ids,
        Err(error) => {
            tracing::warn!(%error, "expiry: cannot list the partitions on disk");
            return;
        }
    };
    for table in &streams {
        let prefix = partition_prefix(table);
        for id in ids.iter().filter(|id| id.as_str().starts_with(&prefix)) {
            context.queue.written(id.clone(), table.def.name(), 0);
        }
    }
}

/// Expire what is due at `now_unix_ms` in every queued partition. Failures are logged, and
/// the partition is tried again at the next sweep.
fn sweep(context: &ExpiryContext, now_unix_ms: u64) {
    for (id, name) in context.queue.take_due(now_unix_ms) {
        // A dropped table (or one created again: another incarnation) expires nothing more.
        let Some(table) = context.catalog.entry(&name) else {
            continue;
        };
        if !id.as_str().starts_with(&partition_prefix(&table)) {
            continue;
        }
        let TableKind::Stream { ttl_seconds } = table.def.kind() else {
            continue;
        };
        let ttl_ms = ttl_seconds.saturating_mul(1000);
        match sweep_partition(context, &table, &id, ttl_ms, now_unix_ms) {
            Ok(Some(next)) => context.queue.written(id, &name, next),
            Ok(None) => {}
            // A cluster member that does not lead leaves expiry to the leader, whose deletes
            // reach it as replicated records; it looks again a TTL later, in case it leads
            // by then.
            Err(crate::tables::versions::VersionError::Replication(error)) => {
                tracing::debug!(table = %name, partition = id.as_str(), %error,
                    "expiry waits for this node to lead");
                context
                    .queue
                    .written(id, &name, now_unix_ms.saturating_add(ttl_ms));
            }
            Err(error) => {
                tracing::warn!(table = %name, partition = id.as_str(), %error,
                    "expiry failed for a partition; the next sweep tries again");
                context.queue.written(id, &name, now_unix_ms);
            }
        }
    }
}

/// Expire one partition's due rows; returns when its next row is due, if any.
fn sweep_partition(
    context: &ExpiryContext,
    table: &CatalogTable,
    id: &PartitionId,
    ttl_ms: u64,
    now_unix_ms: u64,
) -> Result<Option<u64>, crate::tables::versions::VersionError> {
    let partition = context.tables.partition_by_id(id)?;
    let found = scan(&partition, partition.expiry_cursor(), ttl_ms, now_unix_ms)?;
    let deleted = expire(&partition, &found.expired)?;
    partition.set_expiry_cursor(found.scanned_to);
    if deleted > 0 {
        tracing::debug!(table = %table.def.name(), partition = id.as_str(), rows = deleted,
            "expired rows deleted");
        context.hooks.committed(table, id, &partition);
    }
    Ok(found.next_due_unix_ms)
}

/// Wall-clock milliseconds, the clock record timestamps are taken from.
pub(crate) fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
