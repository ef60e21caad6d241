//! The table-to-topic pump over a real store in a temporary directory.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use strand_log::{FsyncPolicy, Seq, Store, StoreConfig};
use strand_sql_view::{
    encode_key, encode_row, parse_statements, Name, Statement, TopicName, Value,
};

use super::SourcePump;
use crate::catalog::{Catalog, CatalogChange, CatalogTable, CatalogTopic};
use crate::catalog::{TopicDef, TopicSource};
use crate::tables::versions::RowWrite;
use crate::tables::{partition_id, RowOwner, TableData};
use crate::topics::{FetchFrom, TopicData};

struct Node {
    store: Arc<Store>,
    catalog: Arc<Catalog>,
    topics: Arc<TopicData>,
    tables: TableData,
}

impl Node {
    fn open(dir: &Path) -> Node {
        let mut config = StoreConfig::default();
        config.partition.fsync = FsyncPolicy::Never;
        let store = Arc::new(Store::open(dir, config).expect("store"));
        Node {
            catalog: Arc::new(Catalog::open(&store).expect("catalog")),
            topics: Arc::new(TopicData::new(store.clone())),
            tables: TableData::new(store.clone()),
            store,
        }
    }

    fn pump(&self) -> SourcePump {
        SourcePump::start(
            self.store.clone(),
            self.catalog.clone(),
            self.topics.clone(),
        )
    }

    fn put(&self, change: CatalogChange) {
        self.catalog
            .change(|_| Ok::<_, ()>(Some(change)))
            .expect("catalog write")
            .expect("accepted");
    }

    /// `app.tickets` (SHARED, id BIGINT key, title TEXT) and topic `app.changes` fed by it
    /// from the beginning (start `_seq` 0).
    fn define(&self, partitions: u32, on: [bool; 3]) -> (CatalogTable, CatalogTopic) {
        self.define_from(partitions, on, Seq::ZERO)
    }

    /// [`Node::define`] with the source starting after `start`.
    fn define_from(
        &self,
        partitions: u32,
        on: [bool; 3],
        start: Seq,
    ) -> (CatalogTable, CatalogTopic) {
        let sql = "CREATE TABLE app.tickets (id BIGINT PRIMARY KEY, title TEXT) \
                   WITH (TYPE = 'SHARED')";
        let statements = parse_statements(sql).expect("parse");
        let Some(Statement::CreateTable { table, .. }) = statements.into_iter().next() else {
            panic!("not a CREATE TABLE");
        };
        let name = table.name().clone();
        self.put(CatalogChange::CreateNamespace(
            Name::new("app").expect("name"),
        ));
        self.put(CatalogChange::PutTable(table));
        let topic = TopicName {
            namespace: Name::new("app").expect("name"),
            topic: Name::new("changes").expect("name"),
        };
        self.put(CatalogChange::PutTopic(TopicDef {
            name: topic.clone(),
            partitions,
            retention_seconds: None,
            sources: vec![TopicSource {
                table: name.clone(),
                on_insert: on[0],
                on_update: on[1],
                on_delete: on[2],
                start_seq: start,
            }],
        }));
        let table = self.catalog.entry(&name).expect("table");
        (table, self.catalog.topic(&topic).expect("topic"))
    }

    /// One committed statement: `(id, Some(title))` upserts, `(id, None)` deletes. Tells
    /// `pump` (if any), as the engine does. Returns the `_seq`s.
    fn write(
        &self,
        table: &CatalogTable,
        rows: &[(i64, Option<&str>)],
        pump: Option<&SourcePump>,
    ) -> Vec<Seq> {
        let encoded: Vec<(Vec<u8>, Option<Vec<u8>>)> = rows
            .iter()
            .map(|(id, title)| {
                let key = encode_key(Value::BigInt(*id).as_ref()).expect("key");
                let row = title.map(|t| {
                    encode_row(&[Value::BigInt(*id), Value::Text(t.into())]).expect("row")
                });
                (key, row)
            })
            .collect();
        let writes: Vec<RowWrite<'_>> = encoded
            .iter()
            .map(|(key, row)| match row {
                Some(row) => RowWrite::Put { key, row },
                None => RowWrite::Delete { key },
            })
            .collect();
        let partition = self
            .tables
            .partition(table, RowOwner::Shared)
            .expect("partition");
        let seqs = partition
            .apply(&writes, |_| Ok::<_, ()>(()))
            .expect("write")
            .expect("accepted");
        if let Some(pump) = pump {
            let id = partition_id(table, RowOwner::Shared).expect("id");
            pump.notify(table.def.name(), id);
        }
        seqs
    }

    /// Every message of `topic` (all partitions), as JSON, in `_seq` order of the changes.
    fn messages(&self, topic: &CatalogTopic) -> Vec<(String, Json)> {
        let mut all = Vec::new();
        for partition in 0..topic.def.partitions {
            let fetched = self
                .topics
                .fetch(topic, partition, FetchFrom::Earliest, 10_000, usize::MAX)
                .expect("fetch");
            for message in fetched {
                let key = String::from_utf8(message.key).expect("utf-8 key");
                let value: Json = serde_json::from_slice(&message.value).expect("JSON value");
                all.push((key, value));
            }
        }
        all.sort_by_key(|(_, value)| change_seq(value));
        all
    }

    /// The messages once there are `count`, or whatever arrived within 10 s.
    fn wait_for(&self, topic: &CatalogTopic, count: usize) -> Vec<(String, Json)> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let messages = self.messages(topic);
            if messages.len() >= count || Instant::now() > deadline {
                return messages;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn change_seq(value: &Json) -> u64 {
    value["_seq"]
        .as_str()
        .expect("_seq")
        .parse()
        .expect("decimal")
}

/// (key, change type, change `_seq`, row title, row `_seq`) of each message.
fn summary(messages: &[(String, Json)]) -> Vec<(String, String, u64, String, u64)> {
    messages
        .iter()
        .map(|(key, value)| {
            assert_eq!(value["table"], "app.tickets");
            assert_eq!(
                value["owner"],
                Json::Null,
                "a SHARED table's rows have no owner"
            );
            let row = &value["row"];
            assert_eq!(
                row["id"].as_i64().map(|id| id.to_string()),
                Some(key.clone())
            );
            (
                key.clone(),
                value["change_type"].as_str().expect("type").to_owned(),
                change_seq(value),
                row["title"].as_str().expect("title").to_owned(),
                change_seq(row),
            )
        })
        .collect()
}

fn expected(
    key: &str,
    kind: &str,
    seq: Seq,
    title: &str,
    row_seq: Seq,
) -> (String, String, u64, String, u64) {
    (key.into(), kind.into(), seq.0, title.into(), row_seq.0)
}

#[test]
fn inserts_an_update_and_a_delete_arrive_in_seq_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::open(dir.path());
    let (table, topic) = node.define(1, [true, true, true]);
    let pump = node.pump();
    let inserted = node.write(&table, &[(1, Some("a")), (2, Some("b"))], Some(&pump));
    let updated = node.write(&table, &[(1, Some("a2"))], Some(&pump));
    let deleted = node.write(&table, &[(2, None)], Some(&pump));
    let messages = node.wait_for(&topic, 4);
    assert_eq!(
        summary(&messages),
        vec![
            expected("1", "insert", inserted[0], "a", inserted[0]),
            expected("2", "insert", inserted[1], "b", inserted[1]),
            expected("1", "update", updated[0], "a2", updated[0]),
            // A delete carries the last version of the row.
            expected("2", "delete", deleted[0], "b", inserted[1]),
        ]
    );
}

#[test]
fn a_change_kind_the_source_does_not_list_is_not_published() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::open(dir.path());
    let (table, topic) = node.define(1, [true, false, true]);
    let pump = node.pump();
    let inserted = node.write(&table, &[(1, Some("a"))], Some(&pump));
    let updated = node.write(&table, &[(1, Some("a2"))], Some(&pump));
    let deleted = node.write(&table, &[(1, None)], Some(&pump));
    // The delete is published after the update was looked at: nothing else can follow.
    let messages = node.wait_for(&topic, 2);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(node.messages(&topic).len(), 2);
    assert_eq!(
        summary(&messages),
        vec![
            expected("1", "insert", inserted[0], "a", inserted[0]),
            expected("1", "delete", deleted[0], "a2", updated[0]),
        ]
    );
}

#[test]
fn a_restart_neither_repeats_nor_skips() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (table, topic, mut seqs) = {
        let node = Node::open(dir.path());
        let (table, topic) = node.define(2, [true, true, true]);
        let pump = node.pump();
        let mut seqs = node.write(&table, &[(1, Some("a")), (2, Some("b"))], Some(&pump));
        seqs.extend(node.write(&table, &[(3, Some("c"))], Some(&pump)));
        assert_eq!(node.wait_for(&topic, 3).len(), 3);
        drop(pump);
        // Committed while no pump runs: published by the next pump's catch-up.
        seqs.extend(node.write(&table, &[(2, Some("b2"))], None));
        (table, topic, seqs)
    };
    let node = Node::open(dir.path());
    let pump = node.pump();
    assert_eq!(node.wait_for(&topic, 4).len(), 4);
    seqs.extend(node.write(&table, &[(3, None)], Some(&pump)));
    let messages = node.wait_for(&topic, 5);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(node.messages(&topic).len(), 5, "nothing published twice");
    let changes: Vec<(String, String, u64)> = summary(&messages)
        .into_iter()
        .map(|(key, kind, seq, _, _)| (key, kind, seq))
        .collect();
    let kinds = ["insert", "insert", "insert", "update", "delete"];
    let keys = ["1", "2", "3", "2", "3"];
    let wanted: Vec<(String, String, u64)> = (0..5)
        .map(|n| (keys[n].to_owned(), kinds[n].to_owned(), seqs[n].0))
        .collect();
    assert_eq!(changes, wanted);
}

#[test]
fn a_source_publishes_only_after_its_start_also_without_a_later_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::open(dir.path());
    // The table exists with a row before the source: that row is never published.
    let (table, _) = node.define_from(1, [true, true, true], Seq::MAX);
    let before = node.write(&table, &[(1, Some("before"))], None);
    let pump = node.pump();
    let start = pump.start_seq_now();
    assert!(start >= before[0]);
    let (table, topic) = node.define_from(1, [true, true, true], start);
    // Committed after the start by a writer that did not see the source yet (no notify):
    // published once the source is announced, without another write.
    let after = node.write(&table, &[(1, Some("after")), (2, Some("new"))], None);
    pump.notify_source_added(table.def.name());
    let messages = node.wait_for(&topic, 2);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(node.messages(&topic).len(), 2);
    assert_eq!(
        summary(&messages),
        vec![
            expected("1", "update", after[0], "after", after[0]),
            expected("2", "insert", after[1], "new", after[1]),
        ]
    );
}

#[test]
fn an_owned_partition_names_its_owner_and_a_foreign_one_none() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::open(dir.path());
    let (table, _) = node.define(1, [true, true, true]);
    let prefix = crate::tables::partition_prefix(&table);
    let id = |suffix: &str| strand_log::PartitionId::new(format!("{prefix}{suffix}")).expect("id");
    assert_eq!(
        super::partition_owner(&table, &id("shared")).ok(),
        Some(None)
    );
    let alice = super::partition_owner(&table, &id("u/616c696365")).ok();
    assert_eq!(alice, Some(Some("alice".to_owned())));
    // A user with an incarnation: `<hex of the name>.<incarnation>`.
    let incarnated = super::partition_owner(&table, &id("u/616c696365.387293037790756864")).ok();
    assert_eq!(incarnated, Some(Some("alice".to_owned())));
    for bad in ["u/61x", "u/616", "u/ff", "other"] {
        assert!(super::partition_owner(&table, &id(bad)).is_err(), "{bad}");
    }
    let other = strand_log::PartitionId::new("t/app.other.1/shared").expect("id");
    assert!(super::partition_owner(&table, &other).is_err());
}

#[test]
fn the_value_is_the_documented_envelope_byte_for_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::open(dir.path());
    let (table, topic) = node.define(1, [true, true, true]);
    let pump = node.pump();
    let seqs = node.write(&table, &[(7, Some("a \"title\""))], Some(&pump));
    assert_eq!(node.wait_for(&topic, 1).len(), 1);
    let fetched = node
        .topics
        .fetch(&topic, 0, FetchFrom::Earliest, 10, usize::MAX)
        .expect("fetch");
    let seq = seqs[0].0;
    let value = format!(
        r#"{{"_seq":"{seq}","change_type":"insert","table":"app.tickets","owner":null,"row":{{"id":7,"title":"a \"title\"","_seq":"{seq}"}}}}"#
    );
    assert_eq!(String::from_utf8_lossy(&fetched[0].value), value);
    assert_eq!(fetched[0].key, b"7");
}
