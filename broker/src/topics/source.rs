//! [`SourcePump`]: table to topic. `ALTER TOPIC t ADD SOURCE app.tickets ON INSERT, UPDATE,
//! DELETE` makes every change of the table committed from then on a message of the topic;
//! `ALTER TOPIC t DROP SOURCE app.tickets` stops that.
//!
//! After each committed write to a table that some topic sources, the engine calls
//! [`SourcePump::notify`] (a lock and a queue push; never waits). The `strand-source` thread
//! then reads that table partition's records after the position it has published up to, from
//! a fresh snapshot, classifies each with its previous version (`realtime`'s `VersionPair`:
//! insert when no live previous version, update, delete for a tombstone) and, for every topic
//! whose source lists that change kind, produces one message per change (docs/topics.md,
//! "Table sources"):
//!
//! - value: `{"_seq":"<change>","change_type":"insert|update|delete","table":"ns.t",
//!   "owner":"<user>"|null,"row":{<column>: <value>, ..., "_seq":"<version>"}}`, fields in
//!   this order, columns in table order, values as the HTTP API renders them. `owner` is the
//!   user whose partition the row is in (USER and STREAM tables), `null` in a SHARED table.
//!   For a delete, `row` is the last version of the row (with that version's `_seq`).
//! - key: in a USER or STREAM table the JSON array text `["<owner>",<primary key as JSON>]`
//!   (`["alice",1]`, `["bob","k-7"]`), so one primary key of two users is two keys; in a SHARED
//!   table the primary key as text (a string as it is, another value as its JSON text). Rows
//!   of a table without a primary key have an empty key.
//!
//! A message goes to the topic partition its key hashes to (what `PartitionChoice::ByKey`
//! picks; keyless rows go round-robin), so all changes of one key are in one partition in
//! `_seq` order. Across keys, each topic partition keeps `_seq` order: changes are produced
//! in `_seq` order, consecutive changes for one partition as one batch.
//!
//! **Where a source starts.** `ADD SOURCE` records the store's last issued `_seq` in the
//! source (`TopicSource::start_seq`, in the topic definition): changes with a greater `_seq`
//! are published (everything committed after the ALTER returned), none at or below it (the
//! table's earlier history is never published). Being part of the definition, the start is
//! the same after a restart and for every partition, whether or not it is written again:
//! once the source is in the catalog the engine queues every partition of the table
//! ([`SourcePump::notify_source_added`]), which publishes what a write committed while the
//! ALTER was being applied left behind. `ADD SOURCE` of a table that is already a source
//! only changes the change kinds; the start stays. A source stored before start `_seq`s
//! existed starts at 0 (the table's retained history, as such sources were added to publish).
//!
//! **Where a source stops.** `DROP SOURCE` removes it from the definition. The pump takes its
//! snapshot of a partition *before* it reads the catalog's sources, so every record it
//! publishes was committed before the sources were read: a change committed after a `DROP
//! SOURCE` returned is never published. Added again, the source starts anew.
//!
//! **Exactly once, also across restarts**, without a position file: each (topic, table
//! partition) pair is an idempotent producer of [`TopicData`] whose id is derived from the
//! pair (FNV-1a of the topic's name and incarnation and the table partition id) and whose
//! batch sequence is the `_seq` of the batch's last source record. Batches are produced one at
//! a time, each durable before the next, in `_seq` order, so the highest batch sequence found
//! in the topic's partitions (rebuilt from the log at open) is the published position: every
//! change up to it is on the topic, none after it. A pair publishes after the greater of that
//! position and the source's start. A restarted pump continues there; a batch produced again
//! anyway is acknowledged as a duplicate and not written. The pump keeps the position in
//! memory once recovered. Caveat: if topic retention (`RETENTION_SECONDS`) removes every
//! segment holding a pair's last batch (possible only when the pair published nothing for
//! longer than the retention and the segment rolled), a restarted pump no longer finds its
//! position and publishes again what the table still holds after the source's start.
//!
//! At start the thread catches up every existing partition of every source table, so changes
//! committed while it was not running are published without waiting for the next write.

mod message;

use parking_lot::{Condvar, Mutex};
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use strand_log::{LogError, PartitionId, ReadFrom, ReadSnapshot, Seq, Store};
use strand_sql_view::{TableDef, TableName};

use super::data::{fnv1a, PartitionChoice, ProducerBatch, TopicData, TopicError};
use crate::catalog::TopicSource;
use crate::catalog::{Catalog, CatalogTable, CatalogTopic};
use crate::limits::{TOPIC_SOURCE_BATCH_BYTES_MAX, TOPIC_SOURCE_BATCH_MESSAGES_MAX};
use crate::realtime::{classify, HistoryError, VersionPair};
use crate::tables::partition_prefix;
use message::{message, wants};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Topic(#[from] TopicError),
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error("partition {0} is not a table partition this build knows (no owner in its name)")]
    UnknownPartition(String),
}

/// The table-to-topic publisher: a queue of table partitions with new commits and the thread
/// that publishes them. Dropping it stops the thread (after its current batch).
pub struct SourcePump {
    store: Arc<Store>,
    queue: Arc<PumpQueue>,
    worker: Option<JoinHandle<()>>,
}

impl SourcePump {
    /// Start the `strand-source` thread; it first catches up every source table partition.
    pub fn start(store: Arc<Store>, catalog: Arc<Catalog>, topics: Arc<TopicData>) -> SourcePump {
        let queue = Arc::new(PumpQueue::default());
        let worker = Worker {
            store: store.clone(),
            catalog,
            topics,
            positions: HashMap::new(),
            queue: queue.clone(),
        };
        let spawned = std::thread::Builder::new()
            .name("strand-source".into())
            .spawn(move || worker.run());
        let worker = match spawned {
            Ok(handle) => Some(handle),
            Err(error) => {
                tracing::error!(%error, "the table-to-topic thread did not start");
                None
            }
        };
        SourcePump {
            store,
            queue,
            worker,
        }
    }

    /// A write to `partition` of `table` committed: publish its new records soon. Cheap; a
    /// partition already waiting is not queued twice.
    pub fn notify(&self, table: &TableName, partition: PartitionId) {
        self.queue.push(Job::Partition(table.clone(), partition));
    }

    /// The start `_seq` of a source added now ([`TopicSource::start_seq`]): the store's last
    /// issued `_seq`. Every change committed after this call has a greater one.
    pub fn start_seq_now(&self) -> Seq {
        self.store.last_issued_seq()
    }

    /// `table` became a source (the catalog holds it): publish every partition of the table
    /// soon, so a change committed while the source was being added (whose writer did not
    /// see it yet, so did not notify) goes out without waiting for the partition's next write.
    pub fn notify_source_added(&self, table: &TableName) {
        self.queue.push(Job::Table(table.clone()));
    }
}

impl Drop for SourcePump {
    fn drop(&mut self) {
        self.queue.stop.store(true, Ordering::Release);
        self.queue.wake.notify_all();
        if let Some(worker) = self.worker.take() {
            if worker.join().is_err() {
                tracing::error!("the table-to-topic thread panicked");
            }
        }
    }
}

/// What the thread has to publish.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Job {
    /// The new records of one table partition.
    Partition(TableName, PartitionId),
    /// The new records of every partition of a table.
    Table(TableName),
}

#[derive(Default)]
struct PumpQueue {
    pending: Mutex<Pending>,
    wake: Condvar,
    stop: AtomicBool,
}

#[derive(Default)]
struct Pending {
    order: VecDeque<Job>,
    queued: HashSet<Job>,
}

impl PumpQueue {
    fn push(&self, job: Job) {
        let mut pending = self.pending.lock();
        if pending.queued.insert(job.clone()) {
            pending.order.push_back(job);
            drop(pending);
            self.wake.notify_one();
        }
    }

    /// The next job; `None` once stopped.
    fn pop(&self) -> Option<Job> {
        let mut pending = self.pending.lock();
        loop {
            if self.stopping() {
                return None;
            }
            if let Some(job) = pending.order.pop_front() {
                // Unmarked before reading: a commit from now on queues it again.
                pending.queued.remove(&job);
                return Some(job);
            }
            self.wake.wait(&mut pending);
        }
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }
}

/// The thread's state: where each (topic, table partition) producer has published up to.
struct Worker {
    store: Arc<Store>,
    catalog: Arc<Catalog>,
    topics: Arc<TopicData>,
    positions: HashMap<u64, Seq>,
    queue: Arc<PumpQueue>,
}

/// Consecutive messages for one topic partition, produced as one batch.
#[derive(Default)]
struct Batch {
    partition: u32,
    messages: Vec<(Vec<u8>, Vec<u8>)>,
    bytes: usize,
    /// `_seq` of the last source record in the batch: its batch sequence.
    last: Seq,
}

/// One table partition being published: the table, whose rows it holds and a snapshot.
struct SourcePartition<'a> {
    def: &'a TableDef,
    id: &'a PartitionId,
    /// The user whose rows these are (USER and STREAM tables); `None` for SHARED.
    owner: Option<String>,
    snapshot: ReadSnapshot,
}

impl Worker {
    fn run(mut self) {
        self.catch_up();
        while let Some(job) = self.queue.pop() {
            match job {
                Job::Partition(table, partition) => self.publish_partition(&table, &partition),
                Job::Table(table) => self.publish_tables(BTreeSet::from([table])),
            }
        }
    }

    /// Publish what every existing partition of every source table has not published yet.
    fn catch_up(&mut self) {
        let tables: BTreeSet<TableName> = self
            .catalog
            .topics(None)
            .iter()
            .flat_map(|topic| topic.def.sources.iter().map(|s| s.table.clone()))
            .collect();
        self.publish_tables(tables);
    }

    /// Publish what every existing partition of `tables` has not published yet.
    fn publish_tables(&mut self, tables: BTreeSet<TableName>) {
        if tables.is_empty() {
            return;
        }
        let ids = match self.store.partition_ids() {
            Ok(ids) => ids,
            Err(error) => {
                tracing::warn!(%error, "listing table partitions to publish to topics failed");
                return;
            }
        };
        for table in tables {
            let Some(entry) = self.catalog.entry(&table) else {
                continue;
            };
            let prefix = partition_prefix(&entry);
            for id in ids.iter().filter(|id| id.as_str().starts_with(&prefix)) {
                if self.queue.stopping() {
                    return;
                }
                self.publish_partition(&table, id);
            }
        }
    }

    fn publish_partition(&mut self, table: &TableName, id: &PartitionId) {
        let Some(entry) = self.catalog.entry(table) else {
            return;
        };
        if !id.as_str().starts_with(&partition_prefix(&entry)) {
            return; // a partition of a dropped incarnation of the table
        }
        if !self.catalog.is_topic_source(table) {
            return; // cheap: no snapshot for a table no topic sources any more
        }
        let owner = match partition_owner(&entry, id) {
            Ok(owner) => owner,
            Err(error) => {
                tracing::warn!(%table, %error, "not publishing a table partition to topics");
                return;
            }
        };
        // The snapshot first, then the sources: every record published was committed before
        // the sources were read, so nothing committed after a DROP SOURCE is published.
        let snapshot = match self.store.partition(id) {
            Ok(log) => log.snapshot(),
            Err(error) => {
                tracing::warn!(%table, partition = id.as_str(), %error, "opening a source table partition failed");
                return;
            }
        };
        let sources: Vec<(CatalogTopic, TopicSource)> = self
            .catalog
            .topics(None)
            .into_iter()
            .filter_map(|topic| {
                let source = topic.def.sources.iter().find(|s| &s.table == table)?;
                let source = source.clone();
                Some((topic, source))
            })
            .collect();
        let partition = SourcePartition {
            def: &entry.def,
            id,
            owner,
            snapshot,
        };
        for (topic, source) in &sources {
            if let Err(error) = self.publish_to(&partition, topic, source) {
                tracing::warn!(
                    %table,
                    topic = %topic.def.name,
                    partition = id.as_str(),
                    %error,
                    "publishing table changes to a topic failed; retried at the next write"
                );
            }
        }
    }

    /// Produce the changes of the partition's snapshot that `source` asks for, after the
    /// pair's position and the source's start.
    fn publish_to(
        &mut self,
        partition: &SourcePartition<'_>,
        topic: &CatalogTopic,
        source: &TopicSource,
    ) -> Result<(), SourceError> {
        let SourcePartition {
            def, id, snapshot, ..
        } = partition;
        let producer_id = producer_id(topic, id);
        let published = match self.positions.get(&producer_id) {
            Some(&seq) => seq,
            None => {
                let last = self.topics.producer_last_batch(topic, producer_id)?;
                last.map_or(Seq::ZERO, Seq)
            }
        };
        let after = published.max(source.start_seq);
        let owner = partition.owner.as_deref();
        let mut batch = Batch::default();
        for record in snapshot.records(ReadFrom::After(after)) {
            let record = record?;
            let pair = VersionPair::of(snapshot, &record)?;
            let Some(kind) = classify(pair.old.as_ref(), pair.new.as_ref(), |_| true) else {
                continue;
            };
            if !wants(source, kind) {
                continue;
            }
            let Some((key, value)) = message(def, owner, &pair, kind) else {
                continue;
            };
            let partition = self.topics.partition_for_key(topic, &key);
            let full = batch.messages.len() >= TOPIC_SOURCE_BATCH_MESSAGES_MAX
                || batch.bytes >= TOPIC_SOURCE_BATCH_BYTES_MAX;
            if !batch.messages.is_empty() && (batch.partition != partition || full) {
                self.flush(def.name(), topic, producer_id, &mut batch)?;
                if self.queue.stopping() {
                    return Ok(());
                }
            }
            batch.partition = partition;
            batch.bytes += key.len() + value.len();
            batch.messages.push((key, value));
            batch.last = record.seq;
        }
        self.flush(def.name(), topic, producer_id, &mut batch)?;
        // Changes the source does not ask for count as published too. The position is what
        // this snapshot held, never the source's start: a start beyond the log (a source that
        // publishes nothing yet) would otherwise stick to the pair after the source is
        // redefined with an earlier start, and its changes would never go out.
        self.positions
            .insert(producer_id, published.max(snapshot.last_seq()));
        Ok(())
    }

    fn flush(
        &mut self,
        table: &TableName,
        topic: &CatalogTopic,
        producer_id: u64,
        batch: &mut Batch,
    ) -> Result<(), SourceError> {
        if batch.messages.is_empty() {
            return Ok(());
        }
        let messages: Vec<(&[u8], &[u8])> = batch
            .messages
            .iter()
            .map(|(key, value)| (key.as_slice(), value.as_slice()))
            .collect();
        let identity = ProducerBatch {
            producer_id,
            batch_seq: batch.last.0,
        };
        let choice = PartitionChoice::Explicit(batch.partition);
        let ack = match self
            .topics
            .produce(topic, choice, &messages, Some(identity))
        {
            Ok(ack) => ack,
            Err(error) => {
                // Unknown what reached the log: recover the position from it next time.
                self.positions.remove(&producer_id);
                return Err(error.into());
            }
        };
        tracing::debug!(
            %table,
            topic = %topic.def.name,
            _seq = batch.last.0,
            partition = ack.partition,
            count = ack.count,
            duplicate = ack.duplicate,
            "published table changes"
        );
        self.positions.insert(producer_id, batch.last);
        batch.messages.clear();
        batch.bytes = 0;
        Ok(())
    }
}

/// The idempotent producer id of the (topic, table partition) pair: stable across restarts,
/// distinct per topic and table incarnation.
fn producer_id(topic: &CatalogTopic, partition: &PartitionId) -> u64 {
    let name = &topic.def.name;
    let pair = format!(
        "source/{}.{}.{}/{}",
        name.namespace,
        name.topic,
        topic.incarnation.0,
        partition.as_str()
    );
    fnv1a(pair.as_bytes())
}

/// Whose rows a partition of `table` holds: the user of a `u/<hex of the user name>` or
/// `u/<hex of the user name>.<user incarnation>` partition, `None` for the `shared` one (the
/// layout `tables::partition_id` writes).
fn partition_owner(table: &CatalogTable, id: &PartitionId) -> Result<Option<String>, SourceError> {
    let unknown = || SourceError::UnknownPartition(id.as_str().to_owned());
    let prefix = partition_prefix(table);
    let suffix = id.as_str().strip_prefix(&prefix).ok_or_else(unknown)?;
    if suffix == "shared" {
        return Ok(None);
    }
    let owner = suffix.strip_prefix("u/").ok_or_else(unknown)?;
    let hex = owner
        .split_once('.')
        .map_or(owner, |(hex, _incarnation)| hex);
    let bytes = unhex(hex).ok_or_else(unknown)?;
    String::from_utf8(bytes).map(Some).map_err(|_| unknown())
}

/// Bytes from lower-case hex digits; `None` for anything else.
fn unhex(text: &str) -> Option<Vec<u8>> {
    let digits = text.as_bytes();
    if digits.len() % 2 != 0 {
        return None;
    }
    let digit = |d: u8| match d {
        b'0'..=b'9' => Some(d - b'0'),
        b'a'..=b'f' => Some(d - b'a' + 10),
        _ => None,
    };
    digits
        .chunks_exact(2)
        .map(|pair| match pair {
            [high, low] => Some(digit(*high)? << 4 | digit(*low)?),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests;
