use std::sync::Arc;
use std::time::Duration;

use strand_log::{FsyncPolicy, StoreConfig};
use strand_sql_view::{Name, TopicName};

use super::*;
use crate::catalog::TopicDef;

fn topic(partitions: u32) -> CatalogTopic {
    CatalogTopic {
        def: Arc::new(TopicDef {
            name: TopicName {
                namespace: Name::new("app").expect("name"),
                topic: Name::new("events").expect("name"),
            },
            partitions,
            retention_seconds: None,
            sources: Vec::new(),
        }),
        incarnation: Seq(7),
    }
}

fn open(dir: &std::path::Path) -> TopicData {
    let mut config = StoreConfig::default();
    config.partition.fsync = FsyncPolicy::Never;
    TopicData::new(Arc::new(Store::open(dir, config).expect("store")))
}

fn values(messages: &[TopicMessage]) -> Vec<&[u8]> {
    messages.iter().map(|m| m.value.as_slice()).collect()
}

#[test]
fn produce_then_fetch_from_earliest_after_and_latest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = open(dir.path());
    let topic = topic(2);
    let one = data
        .produce(
            &topic,
            PartitionChoice::Explicit(1),
            &[(b"k", b"a"), (b"k", b"b")],
            None,
        )
        .expect("produce");
    assert_eq!((one.partition, one.count, one.duplicate), (1, 2, false));
    assert!(one.first < one.last);
    let all = data
        .fetch(&topic, 1, FetchFrom::Earliest, 100, 1 << 20)
        .expect("fetch");
    assert_eq!(values(&all), [b"a".as_slice(), b"b"]);
    assert_eq!((all[0].seq, all[1].seq), (one.first, one.last));
    let after = data
        .fetch(&topic, 1, FetchFrom::After(one.first), 100, 1 << 20)
        .expect("fetch");
    assert_eq!(values(&after), [b"b".as_slice()]);
    let latest = data
        .fetch(&topic, 1, FetchFrom::Latest, 100, 1 << 20)
        .expect("fetch");
    assert!(latest.is_empty());
    let limited = data
        .fetch(&topic, 1, FetchFrom::Earliest, 1, 1 << 20)
        .expect("fetch");
    assert_eq!(limited.len(), 1);
    assert!(data
        .fetch(&topic, 0, FetchFrom::Earliest, 10, 1 << 20)
        .expect("fetch")
        .is_empty());
    assert!(matches!(
        data.fetch(&topic, 2, FetchFrom::Earliest, 10, 1 << 20),
        Err(TopicError::NoSuchPartition { .. })
    ));
}

#[test]
fn keyed_batches_always_go_to_the_same_partition() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = open(dir.path());
    let topic = topic(8);
    let first = data.produce(&topic, PartitionChoice::ByKey, &[(b"user-42", b"x")], None);
    let again = data.produce(&topic, PartitionChoice::ByKey, &[(b"user-42", b"y")], None);
    let (first, again) = (first.expect("produce"), again.expect("produce"));
    assert_eq!(first.partition, again.partition);
    assert_eq!(first.partition, (fnv1a(b"user-42") % 8) as u32);
}

#[test]
fn a_retried_batch_is_written_once_also_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let topic = topic(1);
    let batch = ProducerBatch {
        producer_id: 9,
        batch_seq: 1,
    };
    let messages: [(&[u8], &[u8]); 3] = [(b"", b"1"), (b"", b"2"), (b"", b"3")];
    let original = {
        let data = open(dir.path());
        let original = data
            .produce(&topic, PartitionChoice::Explicit(0), &messages, Some(batch))
            .expect("produce");
        let retry = data
            .produce(&topic, PartitionChoice::Explicit(0), &messages, Some(batch))
            .expect("retry");
        assert!(retry.duplicate);
        assert_eq!((retry.first, retry.last), (original.first, original.last));
        original
    };
    let data = open(dir.path());
    // Fetches and plain produces after the restart leave the producers' markers unread (a
    // scan of the whole partition); the first idempotent produce reads them.
    let fetched = data
        .fetch(&topic, 0, FetchFrom::Earliest, 100, 1 << 20)
        .expect("fetch after restart");
    assert_eq!(fetched.len(), 3);
    data.produce(
        &topic,
        PartitionChoice::Explicit(0),
        &[(b"", b"plain")],
        None,
    )
    .expect("plain produce");
    let partition = data.partition(&topic, 0).expect("partition");
    assert!(!partition.producers_loaded.load(Ordering::Acquire));
    let retry = data
        .produce(&topic, PartitionChoice::Explicit(0), &messages, Some(batch))
        .expect("retry after restart");
    assert!(partition.producers_loaded.load(Ordering::Acquire));
    assert!(retry.duplicate, "the restarted server knows the batch");
    assert_eq!(
        (retry.first, retry.last, retry.count),
        (original.first, original.last, 3)
    );
    let stale = ProducerBatch {
        batch_seq: 0,
        ..batch
    };
    assert!(matches!(
        data.produce(&topic, PartitionChoice::Explicit(0), &messages, Some(stale)),
        Err(TopicError::OutOfOrder { .. })
    ));
    let next = ProducerBatch {
        batch_seq: 2,
        ..batch
    };
    let written = data
        .produce(&topic, PartitionChoice::Explicit(0), &messages, Some(next))
        .expect("next batch");
    assert!(!written.duplicate);
    let all = data
        .fetch(&topic, 0, FetchFrom::Earliest, 100, 1 << 20)
        .expect("fetch");
    assert_eq!(
        all.len(),
        7,
        "two batches of three and one plain message, the retries written once"
    );
}

#[tokio::test]
async fn a_reader_waits_for_the_next_message_without_polling() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = Arc::new(open(dir.path()));
    let topic = topic(1);
    let last = data.last_seq(&topic, 0).expect("last");
    let short = Duration::from_millis(50);
    assert!(!data.wait_after(&topic, 0, last, short).await.expect("wait"));
    let writer = {
        let (data, topic) = (data.clone(), topic.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            data.produce(&topic, PartitionChoice::Explicit(0), &[(b"", b"v")], None)
        })
    };
    let long = Duration::from_secs(10);
    assert!(data.wait_after(&topic, 0, last, long).await.expect("wait"));
    assert!(writer.await.expect("joined").is_ok());
}

/// Produces no longer hold the producers lock through the fsync: concurrent retries of one
/// batch (under `always`, so the original is pending for a while) and concurrent producers
/// must still see one write per batch, one range per batch, and every ack only once durable.
#[test]
fn concurrent_retries_and_producers_share_commit_rounds_and_write_each_batch_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = StoreConfig::default();
    config.partition.fsync = FsyncPolicy::Always;
    let data = Arc::new(TopicData::new(Arc::new(
        Store::open(dir.path(), config).expect("store"),
    )));
    let topic = topic(1);
    let messages: [(&[u8], &[u8]); 2] = [(b"", b"a"), (b"", b"b")];
    let acks: Vec<ProduceAck> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..16u64)
            .map(|i| {
                let (data, topic) = (&data, &topic);
                scope.spawn(move || {
                    // Threads 0..8 send the same idempotent batch; 8..16 plain batches.
                    let producer = (i < 8).then_some(ProducerBatch {
                        producer_id: 42,
                        batch_seq: 1,
                    });
                    let ack = data
                        .produce(topic, PartitionChoice::Explicit(0), &messages, producer)
                        .expect("produce");
                    // Acknowledged means durable and visible.
                    let seen = data
                        .fetch(topic, 0, FetchFrom::Earliest, 1000, usize::MAX)
                        .expect("fetch");
                    assert!(
                        seen.iter().any(|m| m.seq == ack.last),
                        "acked but not visible"
                    );
                    ack
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("worker"))
            .collect()
    });
    let (retried, plain) = acks.split_at(8);
    assert_eq!(retried.iter().filter(|a| !a.duplicate).count(), 1);
    assert!(retried
        .iter()
        .all(|a| (a.first, a.last) == (retried[0].first, retried[0].last)));
    assert!(plain.iter().all(|a| !a.duplicate));
    let all = data
        .fetch(&topic, 0, FetchFrom::Earliest, 1000, usize::MAX)
        .expect("fetch");
    assert_eq!(
        all.len(),
        2 * 9,
        "the idempotent batch once, the 8 plain ones"
    );
    let mut firsts: Vec<Seq> = acks.iter().map(|a| a.first).collect();
    firsts.sort_unstable();
    firsts.dedup();
    assert_eq!(firsts.len(), 9);
}
