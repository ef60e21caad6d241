//! A consumer group's committed offsets are durable: after a server restart a new member
//! of the group gets them with its assignment and reads only what came after them.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use strand_tests::{bearer, sql_ok, ServerOptions, StrandServer};
use strand_wire::quic::client::Client;
use strand_wire::quic::consumer::{ConsumerConfig, GroupConsumer};
use strand_wire::quic::{
    Message, PartitionIndex, Partitioning, ProduceRecord, ProduceTopic, Records,
};

async fn connect(server: &StrandServer) -> Arc<Client> {
    Arc::new(server.quic_client("admin", "pw").await)
}

async fn produce(client: &Client, partition: u32, values: &[&str]) {
    let request = ProduceTopic {
        topic: "app.orders".into(),
        partitioning: Partitioning::Explicit(PartitionIndex(partition)),
        idempotence: None,
        records: values
            .iter()
            .map(|v| ProduceRecord {
                key: Default::default(),
                value: v.as_bytes().to_vec().into(),
            })
            .collect(),
    };
    let frames = client
        .request(Message::ProduceTopic(request))
        .await
        .expect("produce");
    assert!(
        matches!(
            frames.first().map(|f| &f.message),
            Some(Message::ProduceAck(_))
        ),
        "{frames:?}"
    );
}

fn config() -> ConsumerConfig {
    let mut config = ConsumerConfig::new("billing", "app.orders");
    config.session_timeout_ms = 2_000;
    config
}

/// Polls until `count` values arrived (or 10 s), returning them in arrival order.
async fn read(consumer: &mut GroupConsumer, count: usize) -> Vec<String> {
    let mut values = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while values.len() < count && tokio::time::Instant::now() < deadline {
        let found: Vec<Records> = consumer
            .poll(Duration::from_millis(200))
            .await
            .expect("poll");
        for records in found {
            for record in records.records {
                values.push(String::from_utf8_lossy(&record.value).into_owned());
            }
        }
    }
    values
}

fn start(dir: &Path) -> StrandServer {
    StrandServer::start(dir, &ServerOptions::with_admin_password("pw"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = start(&data);
    let admin = bearer(&server, "admin", "pw");
    sql_ok(
        &server,
        &admin,
        "CREATE NAMESPACE app; CREATE TOPIC app.orders WITH (PARTITIONS = 2)",
        &[],
    );
    let client = connect(&server).await;
    produce(&client, 0, &["a0", "a1", "a2"]).await;
    produce(&client, 1, &["b0", "b1"]).await;

    let mut consumer = GroupConsumer::join(client.clone(), config())
        .await
        .expect("join");
    let mut first = read(&mut consumer, 5).await;
    first.sort();
    assert_eq!(first, ["a0", "a1", "a2", "b0", "b1"]);
    assert!(consumer.commit().await.expect("commit"), "commit accepted");
    // Read but not committed: must come again after the restart (at least once).
    produce(&client, 1, &["b2"]).await;
    assert_eq!(read(&mut consumer, 1).await, ["b2"]);
    drop(consumer);
    drop(client);
    assert!(server.terminate().success());

    let server = start(&data);
    let client = connect(&server).await;
    let mut consumer = GroupConsumer::join(client.clone(), config())
        .await
        .expect("join after restart");
    assert_eq!(
        consumer.assignment().partitions,
        [PartitionIndex(0), PartitionIndex(1)]
    );
    assert_eq!(
        read(&mut consumer, 1).await,
        ["b2"],
        "only what was not committed"
    );
    produce(&client, 0, &["a3"]).await;
    assert_eq!(read(&mut consumer, 1).await, ["a3"]);
    assert!(consumer.commit().await.expect("commit"));
    let extra = consumer
        .poll(Duration::from_millis(300))
        .await
        .expect("poll");
    assert!(extra.is_empty(), "nothing else: {extra:?}");
    consumer.leave().await.expect("leave");
}
