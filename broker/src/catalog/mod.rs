//! `Catalog`: namespaces and table definitions, durable in the system partition
//! `system/catalog` and rebuilt from it at start.
//!
//! Each change is one log record: key `ns/<namespace>` (empty payload),
//! `table/<namespace>.<table>` (payload: the `TableDef` as JSON) or `topic/<namespace>.<topic>`
//! (payload: the `TopicDef` as JSON), with a tombstone for a drop.
//! The newest record per key wins on replay, so `ALTER TABLE ... ADD COLUMN` simply writes the
//! new definition. A table's *incarnation* is the `_seq` of the record that created it; it
//! names the table's data partitions, so a table dropped and created again starts empty. Reads come from an in-memory map behind a `RwLock`; writes are serialised and
//! acknowledged only once the record is durable.
//!
//! It does not own table rows (`tables/`), topic messages (`topics/`) or permissions (`users/`).

use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use strand_log::{LogError, NewRecord, Partition, PartitionId, ReadFrom, Seq, Store};
use strand_sql_view::{CatalogView, Name, TableDef, TableName, TopicName};

use crate::cluster::writer::BlockingWriter;

mod replicated;
mod topic;

pub use topic::{TopicDef, TopicSource};

const CATALOG_PARTITION: &str = "system/catalog";

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("catalog record {key:?} is unreadable: {reason}")]
    BadRecord { key: String, reason: String },
    /// A cluster member could not get the change acknowledged by its group.
    #[error(transparent)]
    Replication(#[from] crate::cluster::writer::ReplicationError),
}

/// A table as the catalog knows it.
#[derive(Debug, Clone)]
pub struct CatalogTable {
    pub def: Arc<TableDef>,
    /// `_seq` of the record that created the table (not changed by ADD COLUMN).
    pub incarnation: Seq,
    /// `_seq` of the record that last changed the table's columns (its creation, or the
    /// latest ADD COLUMN): a `SELECT *` client that has seen nothing after it lacks a column.
    pub columns_changed: Seq,
    /// `_seq` of the record that first created a table of this name (an earlier incarnation
    /// if it was dropped and created again): between it and `incarnation`, a `_seq` belongs to
    /// a dropped namesake.
    pub name_first_created: Seq,
}

/// A topic as the catalog knows it.
#[derive(Debug, Clone)]
pub struct CatalogTopic {
    pub def: Arc<TopicDef>,
    /// `_seq` of the record that created the topic; names its partitions.
    pub incarnation: Seq,
}

#[derive(Debug, Default)]
struct CatalogState {
    namespaces: BTreeSet<Name>,
    tables: BTreeMap<TableName, CatalogTable>,
    /// When a table of each name was first created, kept across drops.
    names_first_created: BTreeMap<TableName, Seq>,
    topics: BTreeMap<TopicName, CatalogTopic>,
    /// `_seq` of the last catalog record applied to this state.
    applied_through: Seq,
}

pub struct Catalog {
    partition_id: PartitionId,
    partition: Arc<Partition>,
    state: RwLock<CatalogState>,
    write_lock: Mutex<()>,
    /// Set on a cluster member: changes go through its Raft group (`replicated.rs`).
    replication: OnceLock<BlockingWriter>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("state", &self.state)
            .field("replicated", &self.replication.get().is_some())
            .finish_non_exhaustive()
    }
}

fn namespace_key(name: &Name) -> String {
    format!("ns/{name}")
}

fn table_key(name: &TableName) -> String {
    format!("table/{}.{}", name.namespace, name.table)
}

fn topic_key(name: &TopicName) -> String {
    format!("topic/{}.{}", name.namespace, name.topic)
}

impl Catalog {
    /// Open the catalog partition of `store` and replay it.
    pub fn open(store: &Store) -> Result<Catalog, CatalogError> {
        let id = PartitionId::new(CATALOG_PARTITION)?;
        let partition = store.partition(&id)?;
        let mut state = CatalogState::default();
        state.replay(&partition)?;
        tracing::info!(
            namespaces = state.namespaces.len(),
            tables = state.tables.len(),
            "catalog loaded"
        );
        Ok(Catalog {
            partition_id: id,
            partition,
            state: RwLock::new(state),
            write_lock: Mutex::new(()),
            replication: OnceLock::new(),
        })
    }

    pub fn namespaces(&self) -> Vec<Name> {
        self.read().namespaces.iter().cloned().collect()
    }

    pub fn has_namespace(&self, name: &Name) -> bool {
        self.read().namespaces.contains(name)
    }

    /// Tables, optionally of one namespace, in name order.
    pub fn tables(&self, namespace: Option<&Name>) -> Vec<Arc<TableDef>> {
        let state = self.read();
        let in_namespace = |name: &TableName| namespace.is_none_or(|ns| &name.namespace == ns);
        state
            .tables
            .iter()
            .filter(|(name, _)| in_namespace(name))
            .map(|(_, table)| table.def.clone())
            .collect()
    }

    /// Every table with its incarnation, in name order.
    pub fn entries(&self) -> Vec<CatalogTable> {
        self.read().tables.values().cloned().collect()
    }

    /// The table and its incarnation.
    pub fn topic(&self, name: &TopicName) -> Option<CatalogTopic> {
        self.read().topics.get(name).cloned()
    }

    /// Topics, of one namespace or all, in name order.
    pub fn topics(&self, namespace: Option<&Name>) -> Vec<CatalogTopic> {
        let state = self.read();
        state
            .topics
            .values()
            .filter(|t| namespace.is_none_or(|ns| &t.def.name.namespace == ns))
            .cloned()
            .collect()
    }

    /// Whether some topic has `table` among its sources: a lock and a walk over the topics,
    /// nothing cloned (the engine asks after every write).
    pub fn is_topic_source(&self, table: &TableName) -> bool {
        let state = self.read();
        state
            .topics
            .values()
            .any(|t| t.def.sources.iter().any(|s| &s.table == table))
    }

    pub fn entry(&self, name: &TableName) -> Option<CatalogTable> {
        self.read().tables.get(name).cloned()
    }

    /// Apply a change durably, after `check` approves it against the current state (checked
    /// and written under one lock, so two CREATEs of one name cannot both pass). `check` may
    /// decide there is nothing to do (`Ok(None)`, e.g. `IF NOT EXISTS` met).
    pub fn change<E>(
        &self,
        check: impl FnOnce(&Catalog) -> Result<Option<CatalogChange>, E>,
    ) -> Result<Result<(), E>, CatalogError> {
        let _writer = self.write_lock.lock();
        let mut term = 0;
        if let Some(writer) = self.replication.get() {
            // A new leader checks against every change made before it led.
            term = writer.ready_to_lead()?;
            self.catch_up()?;
        }
        let change = match check(self) {
            Ok(Some(change)) => change,
            answer => {
                // An answer from this member's catalog alone: on a cluster, only once a
                // majority confirms this node still leads (`PartitionWriter::
                // confirm_unwritten` says why).
                if let Some(writer) = self.replication.get() {
                    writer.confirm_leading(term)?;
                }
                return Ok(answer.map(drop));
            }
        };
        let (key, payload, tombstone) = change.record()?;
        let record = if tombstone {
            NewRecord::tombstone(key.as_bytes())
        } else {
            NewRecord::new(key.as_bytes(), &payload)
        };
        if let Some(writer) = self.replication.get() {
            // Every member, this one included, applies the record as it applies the entry
            // (`Catalog::catch_up`); it has by the time the write is acknowledged.
            writer.append_in(self.partition_id(), &[record], term)?;
            self.catch_up()?;
            return Ok(Ok(()));
        }
        let range = self.partition.append(&[record])?;
        let mut state = self.state.write();
        apply_record(&mut state, range.first, key.as_bytes(), &payload, tombstone)?;
        state.applied_through = range.first;
        Ok(Ok(()))
    }

    fn read(&self) -> parking_lot::RwLockReadGuard<'_, CatalogState> {
        self.state.read()
    }
}

impl CatalogView for Catalog {
    fn table(&self, name: &TableName) -> Option<Arc<TableDef>> {
        self.read().tables.get(name).map(|t| t.def.clone())
    }
}

/// One durable change to the catalog.
#[derive(Debug, Clone)]
pub enum CatalogChange {
    CreateNamespace(Name),
    DropNamespace(Name),
    /// Create or replace (after ADD COLUMN) a table definition.
    PutTable(TableDef),
    DropTable(TableName),
    /// Create or replace (after ADD SOURCE) a topic definition.
    PutTopic(TopicDef),
    DropTopic(TopicName),
}

impl CatalogChange {
    fn record(&self) -> Result<(String, Vec<u8>, bool), CatalogError> {
        Ok(match self {
            CatalogChange::CreateNamespace(name) => (namespace_key(name), Vec::new(), false),
            CatalogChange::DropNamespace(name) => (namespace_key(name), Vec::new(), true),
            CatalogChange::PutTable(table) => {
                let key = table_key(table.name());
                let payload = serde_json::to_vec(table).map_err(|e| CatalogError::BadRecord {
                    key: key.clone(),
                    reason: e.to_string(),
                })?;
                (key, payload, false)
            }
            CatalogChange::DropTable(name) => (table_key(name), Vec::new(), true),
            CatalogChange::PutTopic(topic) => {
                let key = topic_key(&topic.name);
                let payload = serde_json::to_vec(topic).map_err(|e| CatalogError::BadRecord {
                    key: key.clone(),
                    reason: e.to_string(),
                })?;
                (key, payload, false)
            }
            CatalogChange::DropTopic(name) => (topic_key(name), Vec::new(), true),
        })
    }
}

impl CatalogState {
    /// Applies the partition's records after `applied_through`: all of them at open, those a
    /// cluster member applied from its Raft group afterwards.
    fn replay(&mut self, partition: &Partition) -> Result<(), CatalogError> {
        let snapshot = partition.snapshot();
        let from = match self.applied_through {
            Seq::ZERO => ReadFrom::Earliest,
            seq => ReadFrom::After(seq),
        };
        for record in snapshot.records(from) {
            let record = record?;
            let tombstone = record.flags.is_tombstone();
            apply_record(self, record.seq, record.key, record.payload, tombstone)?;
            self.applied_through = record.seq;
        }
        Ok(())
    }
}

fn apply_record(
    state: &mut CatalogState,
    seq: Seq,
    key: &[u8],
    payload: &[u8],
    tombstone: bool,
) -> Result<(), CatalogError> {
    let key = String::from_utf8_lossy(key).into_owned();
    let bad = |reason: String| CatalogError::BadRecord {
        key: key.clone(),
        reason,
    };
    if let Some(namespace) = key.strip_prefix("ns/") {
        let name = Name::new(namespace).map_err(|e| bad(e.to_string()))?;
        if tombstone {
            state.namespaces.remove(&name);
        } else {
            state.namespaces.insert(name);
        }
        return Ok(());
    }
    if let Some(qualified) = key.strip_prefix("table/") {
        if tombstone {
            state
                .tables
                .retain(|name, _| format!("{}.{}", name.namespace, name.table) != qualified);
            return Ok(());
        }
        let table: TableDef = serde_json::from_slice(payload).map_err(|e| bad(e.to_string()))?;
        let name = table.name().clone();
        let (incarnation, columns_changed) = match state.tables.get(&name) {
            Some(old) if old.def.columns().len() == table.columns().len() => {
                (old.incarnation, old.columns_changed)
            }
            Some(old) => (old.incarnation, seq),
            None => (seq, seq),
        };
        let name_first_created = *state.names_first_created.entry(name.clone()).or_insert(seq);
        let def = Arc::new(table);
        let entry = CatalogTable {
            def,
            incarnation,
            columns_changed,
            name_first_created,
        };
        state.tables.insert(name, entry);
        return Ok(());
    }
    if let Some(qualified) = key.strip_prefix("topic/") {
        if tombstone {
            state
                .topics
                .retain(|name, _| format!("{}.{}", name.namespace, name.topic) != qualified);
            return Ok(());
        }
        let topic: TopicDef = serde_json::from_slice(payload).map_err(|e| bad(e.to_string()))?;
        let name = topic.name.clone();
        let incarnation = state.topics.get(&name).map_or(seq, |t| t.incarnation);
        let def = Arc::new(topic);
        state.topics.insert(name, CatalogTopic { def, incarnation });
        return Ok(());
    }
    Err(bad("unknown record kind".into()))
}
