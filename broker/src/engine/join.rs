//! One-shot joins: the tables after the first are read into the plan's hash tables, then the
//! first table's rows (only those the WHERE pins by key, when it does) are joined and fed to
//! the collector. Every table is read as the caller may read it: a SHARED table needs a
//! SELECT grant, a USER or STREAM table gives the caller's own partition.
//!
//! All tables are read as of one `_seq`: a tick of the log (`strand_log::Partition::tick`)
//! taken once every record below it is published, so a join is one consistent state of
//! several partitions without holding any lock across them.

use std::time::Duration;

use strand_log::Seq;
use strand_sql_view::{JoinPlan, JoinedRow, Privilege, SelectPlan, Value};

use super::query::for_each_live_row;
use super::{errors, Caller, Engine};
use crate::error::ApiError;
use crate::limits::JOIN_SNAPSHOT_WAIT_MS;
use crate::realtime::fresh_tick;
use crate::tables::versions::KeyedPartition;

impl Engine {
    /// The joined rows of `plan`, through its collector.
    pub(super) fn select_join(
        &self,
        caller: &Caller,
        plan: &SelectPlan,
        join: &JoinPlan,
    ) -> Result<Vec<Vec<Value>>, ApiError> {
        // Every table is checked before any is read.
        let mut tables = Vec::with_capacity(join.sources().len());
        for source in join.sources() {
            let table = self.table(source.table().name())?;
            let owner = self.owner_of(caller, &table, Privilege::Select)?;
            let partition = self
                .tables
                .partition(&table, owner)
                .map_err(errors::from_versions)?;
            tables.push((table, partition));
        }
        // Each table is read from its own snapshot as of the tick: compaction must not remove
        // a version that is the newest as of the tick but was replaced after it.
        let _holds: Vec<_> = tables
            .iter()
            .map(|(_, partition)| partition.partition().hold_reads_from_now().0)
            .collect();
        let as_of = match tables.first() {
            Some((_, partition)) => consistent_point(partition)?,
            None => Seq::MAX,
        };
        let mut build = join.start();
        for (index, (table, partition)) in tables.iter().enumerate().skip(1) {
            for_each_live_row(partition, &table.def, None, as_of, |row, system| {
                build
                    .add(index, row, system.seq)
                    .map_err(errors::from_sql)?;
                Ok(true)
            })?;
        }
        let Some((first, partition)) = tables.first() else {
            return Ok(Vec::new());
        };
        let mut collector = plan.collector();
        let mut offered = 0usize;
        let keys = plan.filter().key_values();
        for_each_live_row(partition, &first.def, keys, as_of, |row, system| {
            offered += 1;
            let mut emit = |joined: &JoinedRow<'_>, system| {
                collector.push(joined, system)?;
                Ok(!collector.is_full())
            };
            build
                .probe(row, system.seq, &mut emit)
                .map_err(errors::from_sql)
        })?;
        let rows = collector.finish().map_err(errors::from_sql)?;
        tracing::debug!(user = %caller.user, table = %first.def.name(), tables = tables.len(),
            offered, rows = rows.len(), "select join");
        Ok(rows)
    }
}

/// A `_seq` every table of the store is complete up to: a settled tick.
fn consistent_point(partition: &KeyedPartition) -> Result<Seq, ApiError> {
    let wait = Duration::from_millis(JOIN_SNAPSHOT_WAIT_MS);
    match fresh_tick(partition, wait) {
        Ok(Some(tick)) => Ok(tick),
        Ok(None) => Err(ApiError::internal(
            &"the log did not commit within the join's wait",
        )),
        Err(error) => Err(ApiError::from_log(&error)),
    }
}
