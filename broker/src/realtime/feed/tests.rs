use std::sync::Arc;

use strand_log::{FsyncPolicy, Partition, PartitionConfig};
use strand_sql_view::{
    encode_key, encode_row, parse_statement, BigIntJson, ColumnDef, DataType, Name, SelectPlan,
    Statement, TableDef, TableKind, TableName, Value,
};

use super::*;
use crate::realtime::Outbox;
use crate::storage::SyncCounters;
use crate::tables::versions::RowWrite;

fn table() -> TableDef {
    let column = |name: &str, data_type| ColumnDef {
        name: Name::new(name).expect("name"),
        data_type,
        not_null: false,
        default: None,
    };
    let name = TableName {
        namespace: Name::new("app").expect("name"),
        table: Name::new("ticks").expect("name"),
    };
    let columns = vec![
        column("id", DataType::BigInt),
        column("room", DataType::Int),
    ];
    TableDef::new(name, TableKind::Shared, columns, Some(0)).expect("table")
}

fn plan(table: &TableDef, sql: &str) -> Arc<SubscriptionPlan> {
    let Ok(Statement::Select(select)) = parse_statement(sql) else {
        panic!("{sql} is a SELECT");
    };
    let plan = SelectPlan::compile(&select, table, &[]).expect("compiles");
    Arc::new(SubscriptionPlan::new(plan, false, BigIntJson::Number))
}

/// A feed over a fresh keyed partition (in the returned directory).
fn feed_in_temp_dir() -> (tempfile::TempDir, Arc<KeyedPartition>, PartitionFeed) {
    feed_over_segments_of(PartitionConfig::default().segment_bytes_max)
}

/// [`feed_in_temp_dir`] with segments of `segment_bytes_max` bytes.
fn feed_over_segments_of(
    segment_bytes_max: u64,
) -> (tempfile::TempDir, Arc<KeyedPartition>, PartitionFeed) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = PartitionConfig {
        fsync: FsyncPolicy::Never,
        segment_bytes_max,
        ..PartitionConfig::default()
    };
    let partition = Partition::open(dir.path(), config).expect("partition");
    let partition = Arc::new(KeyedPartition::open(partition).expect("keyed"));
    let feed = PartitionFeed::new(partition.clone());
    (dir, partition, feed)
}

/// A subscription `key` of `plan`, joined to `feed` as having read up to `upto`; its outbox.
fn join(
    feed: &PartitionFeed,
    partition: &Arc<KeyedPartition>,
    ended: &tokio::sync::mpsc::UnboundedSender<u64>,
    key: u64,
    plan: Arc<SubscriptionPlan>,
    upto: Seq,
) -> crate::realtime::OutboxReceiver {
    let (outbox, receiver) = Outbox::new(1 << 20);
    let id: Arc<str> = Arc::from(format!("s{key}"));
    let live = LiveSubscription::new(key, id, plan, partition.clone(), outbox, ended.clone(), &[]);
    assert!(matches!(feed.join(&Arc::new(live), upto), Join::Joined));
    receiver
}

/// Row `id` in `room`, written (and durable) as one batch.
fn write_row(partition: &KeyedPartition, id: i64, room: i32) {
    let row = encode_row(&[Value::BigInt(id), Value::Int(room)]).expect("row");
    let key = encode_key(Value::BigInt(id).as_ref()).expect("key");
    let writes = [RowWrite::Put {
        key: &key,
        row: &row,
    }];
    partition
        .writer()
        .expect("writer")
        .append(&writes)
        .expect("append");
}

/// 100 subscriptions pinned to one room each, one unpinned, one room-range filter
/// (unpinned too): a write to room 7 is offered to three of them and reaches exactly the
/// matching ones; a write moving a row from room 7 to room 8 reaches rooms 7 and 8.
#[test]
fn a_write_is_offered_only_to_subscriptions_that_can_match_it() {
    let (_dir, partition, feed) = feed_in_temp_dir();
    let table = table();
    let mut receivers = Vec::new();
    let (ended, _ended_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut subscribe = |key: u64, sql: &str| {
        let receiver = join(&feed, &partition, &ended, key, plan(&table, sql), Seq::ZERO);
        receivers.push((key, receiver));
    };
    for room in 0..100 {
        subscribe(
            room,
            &format!("SELECT id FROM app.ticks WHERE room = {room}"),
        );
    }
    subscribe(100, "SELECT id FROM app.ticks");
    subscribe(101, "SELECT id FROM app.ticks WHERE room > 50");
    let write = |id: i64, room: i32| write_row(&partition, id, room);
    let metrics = Metrics::new(Arc::new(SyncCounters::default()));
    let mut candidates = Vec::new();

    write(1, 7);
    {
        let state = feed.lock();
        let snapshot = partition.snapshot();
        let record = snapshot
            .records(ReadFrom::Earliest)
            .next()
            .expect("a record")
            .expect("ok");
        let pair = VersionPair::of(&snapshot, &record).expect("pair");
        state.candidates(&pair, &mut candidates);
    }
    assert_eq!(
        candidates,
        [7, 100, 101],
        "room 7's subscription and the unpinned ones"
    );
    feed.dispatch(&metrics);
    let got: Vec<u64> = receivers
        .iter_mut()
        .filter_map(|(key, receiver)| receiver.try_recv().ok().map(|_| *key))
        .collect();
    assert_eq!(got, [7, 100], "room > 50 does not match room 7");

    write(1, 8);
    feed.dispatch(&metrics);
    let mut got: Vec<(u64, String)> = receivers
        .iter_mut()
        .filter_map(|(key, receiver)| receiver.try_recv().ok().map(|text| (*key, text)))
        .collect();
    got.sort();
    let kinds: Vec<(u64, &str)> = got
        .iter()
        .map(|(key, text)| {
            let kind = ["insert", "update", "delete"]
                .into_iter()
                .find(|k| text.contains(&format!("\"change_type\":\"{k}\"")))
                .unwrap_or("?");
            (*key, kind)
        })
        .collect();
    assert_eq!(kinds, [(7, "delete"), (8, "insert"), (100, "update")]);
}

/// The committing thread offers a change itself only while it is cheap: with few
/// candidates it delivers everything; with more unpinned subscriptions than the inline
/// budget it delivers nothing and leaves the record (position unchanged) to `dispatch`,
/// which then delivers it exactly once; a feed being dispatched elsewhere is left alone.
#[test]
fn inline_dispatch_stays_within_its_budget_and_leaves_the_rest() {
    let (_dir, partition, feed) = feed_in_temp_dir();
    let table = table();
    let (ended, _ended_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut receivers = Vec::new();
    // Each joins having read everything committed so far.
    let subscribe = |key: u64, sql: &str| {
        let upto = partition.snapshot().last_seq();
        join(&feed, &partition, &ended, key, plan(&table, sql), upto)
    };
    let write = |id: i64| write_row(&partition, id, 1);
    let metrics = Metrics::new(Arc::new(SyncCounters::default()));
    let received = |receivers: &mut Vec<_>| -> usize {
        receivers
            .iter_mut()
            .map(|r: &mut crate::realtime::OutboxReceiver| {
                std::iter::from_fn(|| r.try_recv().ok()).count()
            })
            .sum()
    };

    for key in 0..3 {
        receivers.push(subscribe(key, "SELECT id FROM app.ticks"));
    }
    write(1);
    assert!(feed.try_dispatch_inline(&metrics), "3 candidates fit");
    assert_eq!(received(&mut receivers), 3);

    {
        let _dispatching = feed.lock();
        write(2);
        assert!(
            !feed.try_dispatch_inline(&metrics),
            "a feed being dispatched elsewhere is left to it"
        );
    }
    feed.dispatch(&metrics);
    assert_eq!(received(&mut receivers), 3);

    for key in 3..=INLINE_FANOUT_CANDIDATES_MAX as u64 {
        receivers.push(subscribe(key, "SELECT id FROM app.ticks"));
    }
    let subscribers = INLINE_FANOUT_CANDIDATES_MAX + 1;
    write(3);
    assert!(
        !feed.try_dispatch_inline(&metrics),
        "{subscribers} candidates are over the inline budget"
    );
    assert_eq!(received(&mut receivers), 0, "nothing offered inline");
    feed.dispatch(&metrics);
    assert_eq!(received(&mut receivers), subscribers, "each once");
    feed.dispatch(&metrics);
    assert_eq!(received(&mut receivers), 0, "no duplicate");
}

/// The change types (and row ids) a subscription received so far.
fn changes(receiver: &mut crate::realtime::OutboxReceiver) -> Vec<(String, i64)> {
    let mut seen = Vec::new();
    while let Ok(text) = receiver.try_recv() {
        let message: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        let kind = message["change_type"]
            .as_str()
            .expect("a change")
            .to_owned();
        for row in message["rows"].as_array().expect("rows") {
            seen.push((kind.clone(), row["id"].as_i64().expect("id")));
        }
    }
    seen
}

/// Regression (issue 21, found by a 10,000-history guarantee run on a loaded machine).
/// Bug: compaction removed versions the feed had not offered yet; a feed lagging behind then
/// read an update whose previous version was gone (an insert to it: a subscriber whose filter
/// the row left kept it) and an insert after a delete that was gone (a second insert of a
/// key the subscriber held). Fix: the feed holds the history after its position
/// (`strand_log::ReadHold`); compaction waits for it.
#[test]
fn compaction_keeps_what_the_feed_has_not_offered() {
    let (_dir, partition, feed) = feed_over_segments_of(4096);
    let table = table();
    let (ended, _ended_rx) = tokio::sync::mpsc::unbounded_channel();
    let sql = "SELECT id FROM app.ticks WHERE room = 1";
    let mut room_1 = join(&feed, &partition, &ended, 1, plan(&table, sql), Seq::ZERO);
    let sql = "SELECT id, room FROM app.ticks";
    let mut all = join(&feed, &partition, &ended, 2, plan(&table, sql), Seq::ZERO);
    let metrics = Metrics::new(Arc::new(SyncCounters::default()));
    write_row(&partition, 1, 1);
    write_row(&partition, 2, 1);
    feed.dispatch(&metrics);
    assert_eq!(
        changes(&mut room_1),
        [("insert".into(), 1), ("insert".into(), 2)]
    );
    assert_eq!(changes(&mut all).len(), 2);

    // The feed lags: row 1 moves out of room 1, row 2 is deleted and comes back, and enough
    // is written after them that they lie in sealed segments; then compaction runs with
    // tombstones expiring at once.
    write_row(&partition, 1, 2);
    let key = encode_key(Value::BigInt(2).as_ref()).expect("key");
    let delete = [RowWrite::Delete { key: &key }];
    partition
        .writer()
        .expect("writer")
        .append(&delete)
        .expect("delete");
    write_row(&partition, 2, 1);
    for id in 1000..1400 {
        write_row(&partition, id, 9);
    }
    let log = partition.partition();
    assert!(log.compaction_backlog().sealed_segments >= 2);
    let policy = strand_log::CompactionPolicy {
        tombstone_retention_ms: 0,
    };
    // A minute on: every tombstone has expired, and the feed's hold (a few ms old) binds.
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    let later = since_epoch.as_millis() as u64 + 60_000;
    log.compact(&policy, later).expect("compaction");

    feed.dispatch(&metrics);
    assert_eq!(
        changes(&mut room_1),
        [
            ("delete".into(), 1),
            ("delete".into(), 2),
            ("insert".into(), 2)
        ],
        "row 1 left room 1; row 2 was deleted, then came back"
    );
    let seen = changes(&mut all);
    assert_eq!(
        seen[..3],
        [
            ("update".into(), 1),
            ("delete".into(), 2),
            ("insert".into(), 2)
        ]
    );
    assert_eq!(seen.len(), 3 + 400);

    // Offered, the history is the compaction's again.
    let outcome = log.compact(&policy, later).expect("compaction");
    assert_eq!(
        outcome.records_removed, 3,
        "the versions row 1 and row 2 had, and the delete"
    );
}
