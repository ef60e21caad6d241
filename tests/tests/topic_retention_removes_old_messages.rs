//! `RETENTION_SECONDS` of a topic is applied: once its messages are older than that, the
//! retention sweep removes their segments, and a fetch from the earliest reads from the oldest
//! message still kept; the newest messages (the active segment) stay. A topic without a
//! retention keeps everything.

use std::time::Duration;

use strand_tests::{bearer, sql_ok, ServerOptions, StrandServer};
use strand_wire::quic::client::Client;
use strand_wire::quic::{
    Fetch, Message, PartitionIndex, Partitioning, ProduceRecord, ProduceTopic, ReadFrom, Records,
};

async fn produce(client: &Client, topic: &str, count: usize) -> Vec<u64> {
    let mut seqs = Vec::new();
    for n in 0..count {
        let request = ProduceTopic {
            topic: topic.into(),
            partitioning: Partitioning::Explicit(PartitionIndex(0)),
            idempotence: None,
            records: vec![ProduceRecord {
                key: Default::default(),
                value: vec![b'x'; 1000 + n].into(),
            }],
        };
        let frames = client
            .request(Message::ProduceTopic(request))
            .await
            .expect("produce");
        match frames.first().map(|f| &f.message) {
            Some(Message::ProduceAck(ack)) => seqs.push(ack.first.0),
            other => panic!("expected produce_ack, got {other:?}"),
        }
    }
    seqs
}

async fn earliest(client: &Client, topic: &str) -> Records {
    let fetch = Fetch {
        topic: topic.into(),
        partition: PartitionIndex(0),
        from: ReadFrom::Earliest,
        records_max: 10_000,
        bytes_max: 64 << 20,
        wait_ms: 0,
    };
    let frames = client.request(Message::Fetch(fetch)).await.expect("fetch");
    match frames.into_iter().next().map(|f| f.message) {
        Some(Message::FetchResponse(records)) => records,
        other => panic!("expected fetch_response, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_topic_messages_are_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = ServerOptions {
        args: ["--segment-bytes", "4096", "--retention-interval-ms", "200"]
            .map(String::from)
            .to_vec(),
        ..ServerOptions::with_admin_password("pw")
    };
    let server = StrandServer::start(&dir.path().join("data"), &options);
    let admin = bearer(&server, "admin", "pw");
    sql_ok(
        &server,
        &admin,
        "CREATE NAMESPACE app;
         CREATE TOPIC app.short WITH (PARTITIONS = 1, RETENTION_SECONDS = 1);
         CREATE TOPIC app.kept WITH (PARTITIONS = 1)",
        &[],
    );
    let client = server.quic_client("admin", "pw").await;
    let short = produce(&client, "app.short", 30).await;
    let kept = produce(&client, "app.kept", 30).await;
    assert_eq!(earliest(&client, "app.short").await.records.len(), 30);

    // Past the retention (1 s) and a few sweeps.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let remaining = loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let records = earliest(&client, "app.short").await;
        if records.records.len() < 30 || tokio::time::Instant::now() > deadline {
            break records;
        }
    };
    let first = remaining
        .records
        .first()
        .expect("the newest messages stay")
        .seq
        .0;
    assert!(first > short[0], "the oldest messages were removed");
    let last = remaining.records.last().expect("newest").seq.0;
    assert_eq!(
        last,
        *short.last().expect("produced"),
        "the newest message stays"
    );
    let seqs: Vec<u64> = remaining.records.iter().map(|r| r.seq.0).collect();
    let position = short
        .iter()
        .position(|&s| s == first)
        .expect("a produced _seq");
    assert_eq!(seqs, short[position..], "what stays is a suffix, in order");

    let all_kept = earliest(&client, "app.kept").await;
    let kept_seqs: Vec<u64> = all_kept.records.iter().map(|r| r.seq.0).collect();
    assert_eq!(kept_seqs, kept, "no retention, nothing removed");
}
