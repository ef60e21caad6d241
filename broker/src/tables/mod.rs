//! Table data: which log partition holds which rows, and the open [`KeyedPartition`]s.
//!
//! A USER or STREAM table has one partition per (table, user): `t/<ns>.<table>.<incarnation>/
//! u/<hex of the user name>.<user incarnation>` (`u/<hex of the user name>` for users created
//! by builds before user incarnations); a SHARED table has one:
//! `t/<ns>.<table>.<incarnation>/shared`. The table's incarnation (see `catalog.rs`) keeps a
//! re-created table apart from a dropped one, the user's a re-created user apart from a
//! dropped one. So a user's reads, writes and replays only ever open that user's partition.
//!
//! It does not know SQL or permissions; the engine decides whose partition a statement uses.

pub mod expiry;
mod key;
pub use key::IndexKey;
pub mod versions;

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::{Arc, Weak};

use strand_log::{PartitionId, Store};
use strand_sql_view::TableKind;

use crate::catalog::CatalogTable;
use crate::cluster::writer::BlockingWriter;
use crate::limits::KEYED_PARTITIONS_CACHED_MAX;
use crate::users::UserIncarnation;
use versions::{KeyedPartition, SharedWriter, VersionError};

/// Whose rows: a user's (USER and STREAM tables) or everyone's (SHARED).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowOwner<'a> {
    /// A user's rows; `incarnation` is `None` for a user whose rows are stored by name alone.
    User {
        name: &'a str,
        incarnation: Option<UserIncarnation>,
    },
    Shared,
}

pub fn partition_id(
    table: &CatalogTable,
    owner: RowOwner<'_>,
) -> Result<PartitionId, VersionError> {
    let base = partition_prefix(table);
    let id = match (table.def.kind(), owner) {
        (TableKind::Shared, _) | (_, RowOwner::Shared) => format!("{base}shared"),
        (_, RowOwner::User { name, incarnation }) => match incarnation {
            Some(incarnation) => format!("{base}u/{}.{}", hex(name.as_bytes()), incarnation.0),
            None => format!("{base}u/{}", hex(name.as_bytes())),
        },
    };
    Ok(PartitionId::new(id)?)
}

/// What every table partition's id starts with.
pub const TABLE_PARTITIONS_PREFIX: &str = "t/";

// Every name maps to a path the file system takes: asserted in `limits.rs`.

/// What every partition id of `table` (this incarnation) starts with:
/// `t/<ns>.<table>.<incarnation>/`. The trailing `/` keeps `app.t` apart from `app.t2`.
pub fn partition_prefix(table: &CatalogTable) -> String {
    let name = table.def.name();
    format!(
        "{TABLE_PARTITIONS_PREFIX}{}.{}.{}/",
        name.namespace, name.table, table.incarnation.0
    )
}

/// The `<ns>.<table>` of a [`partition_prefix`] (names hold no `.`), for messages.
pub fn table_name_of_prefix(prefix: &str) -> &str {
    let inner = prefix
        .strip_prefix(TABLE_PARTITIONS_PREFIX)
        .unwrap_or(prefix);
    let inner = inner.strip_suffix('/').unwrap_or(inner);
    inner
        .rsplit_once('.')
        .map_or(inner, |(name, _incarnation)| name)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, Default)]
struct OpenPartitions {
    cached: HashMap<PartitionId, Arc<KeyedPartition>>,
    /// Every keyed partition still alive, so one log partition never gets two key indexes.
    alive: HashMap<PartitionId, Weak<KeyedPartition>>,
}

/// The open keyed partitions of all tables, bounded.
#[derive(Debug)]
pub struct TableData {
    store: Arc<Store>,
    open: Mutex<OpenPartitions>,
    /// On a cluster member: the writer every partition's writes go through, once set.
    replication: Option<SharedWriter>,
}

impl TableData {
    pub fn new(store: Arc<Store>) -> TableData {
        TableData {
            store,
            open: Mutex::new(OpenPartitions::default()),
            replication: None,
        }
    }

    /// [`TableData::new`] for a cluster member: every write is replicated, and refused until
    /// [`TableData::replicate_through`] names the writer.
    pub fn clustered(store: Arc<Store>) -> TableData {
        TableData {
            replication: Some(SharedWriter::default()),
            ..TableData::new(store)
        }
    }

    /// Whether this is a cluster member's (writes are replicated).
    pub fn is_clustered(&self) -> bool {
        self.replication.is_some()
    }

    /// From now on, a cluster member's table writes go through `writer`.
    pub fn replicate_through(&self, writer: BlockingWriter) {
        if let Some(shared) = &self.replication {
            let _ = shared.set(writer);
        }
    }

    /// The keyed partition `id` if something holds it open: a member that applied records to
    /// a partition nobody reads has nothing to update (opening indexes it from the log).
    pub fn open_by_id(&self, id: &PartitionId) -> Option<Arc<KeyedPartition>> {
        let open = self.open.lock();
        open.cached
            .get(id)
            .cloned()
            .or_else(|| open.alive.get(id).and_then(Weak::upgrade))
    }

    /// `count` fresh Snowflake ids from the store's `_seq` generator (`SNOWFLAKE_ID()`).
    pub fn issue_ids(&self, count: usize) -> strand_log::Result<Vec<strand_log::Seq>> {
        self.store.issue_ids(count)
    }

    /// The keyed partition holding `owner`'s rows of `table`, opened (and indexed) on first use.
    /// Whether the partition is open with its key index built, so that using it costs no scan.
    pub fn is_cached(&self, table: &CatalogTable, owner: RowOwner<'_>) -> bool {
        let Ok(id) = partition_id(table, owner) else {
            return false;
        };
        let open = self.open.lock();
        open.cached.contains_key(&id)
    }

    /// Whether a commit round is in progress in the store (see `Store::commit_in_progress`).
    pub fn commit_in_progress(&self) -> bool {
        self.store.commit_in_progress()
    }

    pub fn partition(
        &self,
        table: &CatalogTable,
        owner: RowOwner<'_>,
    ) -> Result<Arc<KeyedPartition>, VersionError> {
        self.partition_by_id(&partition_id(table, owner)?)
    }

    /// The keyed partition with log partition `id` (background work that found it on disk).
    pub fn partition_by_id(&self, id: &PartitionId) -> Result<Arc<KeyedPartition>, VersionError> {
        let id = id.clone();
        let mut open = self.open.lock();
        if let Some(partition) = open.cached.get(&id) {
            return Ok(partition.clone());
        }
        let partition = match open.alive.get(&id).and_then(Weak::upgrade) {
            Some(partition) => partition,
            None => {
                let log = self.store.partition(&id)?;
                Arc::new(match &self.replication {
                    Some(writer) => {
                        KeyedPartition::open_replicated(log, id.clone(), writer.clone())?
                    }
                    None => KeyedPartition::open(log)?,
                })
            }
        };
        if open.cached.len() >= KEYED_PARTITIONS_CACHED_MAX {
            let victim = open.cached.keys().next().cloned();
            if let Some(victim) = victim {
                open.cached.remove(&victim);
            }
            open.alive.retain(|_, weak| weak.strong_count() > 0);
        }
        open.alive.insert(id.clone(), Arc::downgrade(&partition));
        open.cached.insert(id, partition.clone());
        Ok(partition)
    }
}
