//! The retention sweeper: a background thread that, every `retention_interval`, removes the
//! expired history of STREAM tables and of topics with `RETENTION_SECONDS` from disk.
//!
//! For each [`RetentionTarget`] (a STREAM table with its TTL, a topic with its retention) it
//! takes the target's partitions on disk (ids under its prefix) and applies the log's age
//! retention: whole sealed segments whose newest record is older than the limit go, and the
//! partition's lowest resumable `_seq` is raised durably first, so a resume from below it gets
//! `resume_too_old` instead of silently missing changes. A topic reader asking for an offset
//! below it reads from the oldest retained message.
//!
//! It owns the thread and its schedule only. Expired rows are already hidden from queries and
//! snapshots by the TTL filter; this only reclaims their space. It leaves USER and SHARED
//! tables, active segments, and the partitions of dropped tables and topics (an older
//! incarnation) alone.
//! A sweep opens each STREAM partition through the store's bounded cache; the only locks a
//! writer may wait on are the short ones `Partition::apply_retention` takes itself.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use strand_log::{PartitionId, RetentionPolicy, Store};
use strand_sql_view::TableKind;

use crate::catalog::{Catalog, CatalogTable, CatalogTopic};
use crate::periodic::PeriodicThread;
use crate::tables::partition_prefix;

/// Partitions whose records expire: those whose id starts with `prefix`, after `max_age_ms`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionTarget {
    /// What the partitions belong to, for logs (`table app.t`, `topic app.events`).
    pub name: String,
    pub prefix: String,
    pub max_age_ms: u64,
}

impl RetentionTarget {
    /// What expires now: the catalog's STREAM tables and its topics with a retention.
    pub fn of_catalog(catalog: &Catalog) -> Vec<RetentionTarget> {
        let mut targets = RetentionTarget::of_tables(&catalog.entries());
        targets.extend(RetentionTarget::of_topics(&catalog.topics(None)));
        targets
    }

    /// The STREAM tables among `tables`, with their TTL.
    pub fn of_tables(tables: &[CatalogTable]) -> Vec<RetentionTarget> {
        tables
            .iter()
            .filter_map(|table| match table.def.kind() {
                TableKind::Stream { ttl_seconds } => Some(RetentionTarget {
                    name: format!("table {}", table.def.name()),
                    prefix: partition_prefix(table),
                    max_age_ms: ttl_seconds.saturating_mul(1000),
                }),
                TableKind::User | TableKind::Shared => None,
            })
            .collect()
    }

    /// The topics among `topics` that have a retention.
    pub fn of_topics(topics: &[CatalogTopic]) -> Vec<RetentionTarget> {
        topics
            .iter()
            .filter_map(|topic| {
                let seconds = topic.def.retention_seconds?;
                Some(RetentionTarget {
                    name: format!("topic {}", topic.def.name),
                    prefix: crate::topics::partition_prefix(topic),
                    max_age_ms: seconds.saturating_mul(1000),
                })
            })
            .collect()
    }
}

/// What one sweep did, summed over all partitions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// STREAM-table partitions looked at.
    pub partitions: usize,
    pub segments_removed: usize,
    pub bytes_removed: u64,
    /// Partitions (or the listing of partitions) that failed; each was logged.
    pub failures: usize,
}

/// The running sweeper thread; stops (and is joined) on [`RetentionSweeper::stop`] or drop.
pub struct RetentionSweeper {
    thread: PeriodicThread,
}

impl RetentionSweeper {
    /// Sweep `store` every `interval`, the first time one interval from now. `targets` lists
    /// what expires at the time of each sweep.
    pub fn start(
        store: Arc<Store>,
        targets: impl Fn() -> Vec<RetentionTarget> + Send + 'static,
        interval: Duration,
    ) -> std::io::Result<RetentionSweeper> {
        let thread = PeriodicThread::start("strand-retention", interval, move || {
            let report = sweep(&store, &targets(), now_unix_ms());
            tracing::debug!(?report, "retention sweep done");
        })?;
        Ok(RetentionSweeper { thread })
    }

    /// Stop the thread and wait for a sweep in progress to finish.
    pub fn stop(self) {
        self.thread.stop();
    }
}

/// Apply each target's age limit to its partitions as of `now_unix_ms`. Failures are logged
/// and counted, never raised: one bad partition must not stop retention of the others.
pub fn sweep(store: &Store, targets: &[RetentionTarget], now_unix_ms: u64) -> SweepReport {
    let mut report = SweepReport::default();
    if targets.is_empty() {
        // Skip the directory walk when nothing expires.
        return report;
    }
    let ids = match store.partition_ids() {
        Ok(ids) => ids,
        Err(error) => {
            tracing::warn!(%error, "retention: cannot list the partitions on disk");
            report.failures += 1;
            return report;
        }
    };
    for target in targets {
        let policy = RetentionPolicy {
            max_age_ms: Some(target.max_age_ms),
            max_bytes: None,
        };
        for id in ids
            .iter()
            .filter(|id| id.as_str().starts_with(&target.prefix))
        {
            report.partitions += 1;
            sweep_partition(store, target, id, &policy, now_unix_ms, &mut report);
        }
    }
    report
}

fn sweep_partition(
    store: &Store,
    target: &RetentionTarget,
    id: &PartitionId,
    policy: &RetentionPolicy,
    now_unix_ms: u64,
    report: &mut SweepReport,
) {
    let outcome = store
        .partition(id)
        .and_then(|partition| partition.apply_retention(policy, now_unix_ms));
    match outcome {
        Ok(outcome) if outcome.segments_removed > 0 => {
            report.segments_removed += outcome.segments_removed;
            report.bytes_removed += outcome.bytes_removed;
            tracing::info!(target = %target.name, partition = id.as_str(),
                segments = outcome.segments_removed, bytes = outcome.bytes_removed,
                "retention removed expired records");
        }
        Ok(_) => {}
        Err(error) => {
            report.failures += 1;
            tracing::warn!(target = %target.name, partition = id.as_str(), %error,
                "retention failed for a partition; the next sweep tries again");
        }
    }
}

/// Wall-clock milliseconds, the clock record timestamps are taken from.
fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::{partition_id, RowOwner};
    use strand_log::{FsyncPolicy, NewRecord, Seq, StoreConfig};
    use strand_sql_view::{ColumnDef, DataType, Name, TableDef, TableName};

    fn table(name: &str, kind: TableKind, incarnation: u64) -> CatalogTable {
        let name = TableName {
            namespace: Name::new("app").unwrap(),
            table: Name::new(name).unwrap(),
        };
        let column = ColumnDef {
            name: Name::new("id").unwrap(),
            data_type: DataType::BigInt,
            not_null: true,
            default: None,
        };
        let def = TableDef::new(name, kind, vec![column], Some(0)).unwrap();
        CatalogTable {
            def: Arc::new(def),
            incarnation: Seq(incarnation),
            columns_changed: Seq(incarnation),
            name_first_created: Seq(incarnation),
        }
    }

    /// Fills `id` with records enough for several 4 KiB segments; returns the last `_seq`.
    fn fill(store: &Store, id: &PartitionId) -> Seq {
        let payload = [7u8; 1000];
        let mut last = Seq::ZERO;
        for key in 0..20u32 {
            let key = key.to_be_bytes();
            last = store
                .append(id, &[NewRecord::new(&key, &payload)])
                .unwrap()
                .last;
        }
        last
    }

    #[test]
    fn sweep_removes_old_segments_of_stream_tables_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = StoreConfig::default();
        config.partition.segment_bytes_max = 4096;
        config.partition.fsync = FsyncPolicy::Never;
        let store = Store::open(dir.path(), config).unwrap();
        let stream = table("typing", TableKind::Stream { ttl_seconds: 1 }, 5);
        // The same name in another incarnation (a dropped table) is not this table's.
        let other_incarnation = table("typing", TableKind::Stream { ttl_seconds: 1 }, 55);
        let user = table("notes", TableKind::User, 6);
        let ids: Vec<PartitionId> = [&stream, &other_incarnation, &user]
            .iter()
            .map(|t| {
                partition_id(
                    t,
                    RowOwner::User {
                        name: "alice",
                        incarnation: None,
                    },
                )
                .unwrap()
            })
            .collect();
        let lasts: Vec<Seq> = ids.iter().map(|id| fill(&store, id)).collect();
        let targets = RetentionTarget::of_tables(&[stream, user]);

        let report = sweep(&store, &targets, now_unix_ms());
        assert_eq!(report.segments_removed, 0, "nothing is older than 1 s yet");
        assert_eq!((report.partitions, report.failures), (1, 0));

        let report = sweep(&store, &targets, now_unix_ms() + 60_000);
        assert!(report.segments_removed >= 3, "{report:?}");
        assert_eq!(report.failures, 0);
        let lowest = store.partition(&ids[0]).unwrap().lowest_resumable_seq();
        assert!(
            lowest > Seq::ZERO && lowest < lasts[0],
            "active segment stays"
        );
        for other in &ids[1..] {
            let partition = store.partition(other).unwrap();
            assert_eq!(partition.lowest_resumable_seq(), Seq::ZERO, "{other:?}");
        }
    }
}
