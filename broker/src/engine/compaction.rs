//! The compaction schedule of USER and SHARED tables: every `compaction_interval`, each of
//! their partitions on disk whose uncompacted sealed history is large enough
//! (`compaction_min_bytes`) or old enough (`compaction_max_age`) is compacted by the log
//! (`strand_log::Partition::compact`): the newest version of every key stays, older ones go,
//! tombstones stay for `tombstone_retention`. The log raises the partition's resume floors
//! before it removes anything, so a resume from below them gets a keyed catch-up or
//! `resume_too_old`, never a silent gap (`realtime/keyed.rs`).
//!
//! STREAM tables are left to expiry and retention; the system partitions (catalog, users,
//! offsets) are never compacted: their replay at start relies on every record (a table's
//! incarnation is the `_seq` of the record that created it).

use std::sync::Arc;

use strand_log::{CompactionBacklog, CompactionPolicy, PartitionId, Store};
use strand_sql_view::TableKind;

use super::expiry::now_unix_ms;
use crate::catalog::Catalog;
use crate::config::MaintenanceConfig;
use crate::periodic::PeriodicThread;
use crate::tables::partition_prefix;

/// The running compaction thread; stops (and is joined) when dropped.
pub(crate) struct CompactionSchedule {
    _thread: PeriodicThread,
}

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CompactionPass {
    pub partitions_due: usize,
    pub records_removed: u64,
    pub failures: usize,
}

impl CompactionSchedule {
    pub fn start(
        store: Arc<Store>,
        catalog: Arc<Catalog>,
        config: MaintenanceConfig,
    ) -> std::io::Result<CompactionSchedule> {
        let thread = PeriodicThread::start("strand-compaction", config.compaction_interval, {
            move || {
                let pass = compact_due(&store, &catalog, &config, now_unix_ms());
                tracing::debug!(?pass, "compaction pass done");
            }
        })?;
        Ok(CompactionSchedule { _thread: thread })
    }
}

/// Whether a partition with this backlog is due at `now_unix_ms`.
fn is_due(backlog: &CompactionBacklog, config: &MaintenanceConfig, now_unix_ms: u64) -> bool {
    if backlog.sealed_segments == 0 {
        return false;
    }
    let max_age_ms = u64::try_from(config.compaction_max_age.as_millis()).unwrap_or(u64::MAX);
    let old = backlog
        .oldest_uncompacted_unix_ms
        .is_some_and(|began| began.saturating_add(max_age_ms) <= now_unix_ms);
    old || backlog.sealed_bytes >= config.compaction_min_bytes
}

/// Compact every USER and SHARED partition that is due. Failures are logged and counted: one
/// bad partition must not stop the others.
pub(crate) fn compact_due(
    store: &Store,
    catalog: &Catalog,
    config: &MaintenanceConfig,
    now_unix_ms: u64,
) -> CompactionPass {
    let mut pass = CompactionPass::default();
    let prefixes: Vec<String> = catalog
        .entries()
        .iter()
        .filter(|t| matches!(t.def.kind(), TableKind::User | TableKind::Shared))
        .map(partition_prefix)
        .collect();
    if prefixes.is_empty() {
        return pass;
    }
    let ids = match store.partition_ids() {
        Ok(ids) => ids,
        Err(error) => {
            tracing::warn!(%error, "compaction: cannot list the partitions on disk");
            pass.failures += 1;
            return pass;
        }
    };
    let tombstone_retention_ms =
        u64::try_from(config.tombstone_retention.as_millis()).unwrap_or(u64::MAX);
    let policy = CompactionPolicy {
        tombstone_retention_ms,
    };
    for id in ids
        .iter()
        .filter(|id| prefixes.iter().any(|p| id.as_str().starts_with(p.as_str())))
    {
        compact_one(store, id, config, &policy, now_unix_ms, &mut pass);
    }
    pass
}

fn compact_one(
    store: &Store,
    id: &PartitionId,
    config: &MaintenanceConfig,
    policy: &CompactionPolicy,
    now_unix_ms: u64,
    pass: &mut CompactionPass,
) {
    let partition = match store.partition(id) {
        Ok(partition) => partition,
        Err(error) => {
            pass.failures += 1;
            tracing::warn!(partition = id.as_str(), %error, "compaction cannot open a partition");
            return;
        }
    };
    if !is_due(&partition.compaction_backlog(), config, now_unix_ms) {
        return;
    }
    pass.partitions_due += 1;
    match partition.compact(policy, now_unix_ms) {
        Ok(outcome) => pass.records_removed += outcome.records_removed,
        Err(error) => {
            pass.failures += 1;
            tracing::warn!(partition = id.as_str(), %error,
                "compaction failed for a partition; the next pass tries again");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_partition_is_due_by_size_or_by_age_and_never_without_sealed_segments() {
        let config = MaintenanceConfig {
            compaction_min_bytes: 1000,
            compaction_max_age: Duration::from_secs(60),
            ..MaintenanceConfig::default()
        };
        let backlog = |segments, bytes, oldest| CompactionBacklog {
            sealed_segments: segments,
            sealed_bytes: bytes,
            oldest_uncompacted_unix_ms: oldest,
        };
        let now = 1_000_000;
        assert!(!is_due(&backlog(0, 5000, Some(0)), &config, now));
        assert!(
            is_due(&backlog(1, 1000, Some(now)), &config, now),
            "big enough"
        );
        assert!(
            !is_due(&backlog(1, 999, Some(now)), &config, now),
            "small and young"
        );
        assert!(
            is_due(&backlog(1, 1, Some(now - 60_000)), &config, now),
            "old enough"
        );
        assert!(!is_due(&backlog(1, 1, Some(now - 59_999)), &config, now));
    }
}
