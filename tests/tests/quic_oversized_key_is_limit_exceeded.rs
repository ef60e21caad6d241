//! Issue 17, defect 13 (item 2): a QUIC produce with a key over 65,535 bytes (the log's
//! `KEY_BYTES_MAX`) was answered `storage_error`, as if the server had failed to write, though
//! the request itself was over a limit. It is `limit_exceeded` now, naming the message and the
//! limit; nothing of the batch is written, and the topic keeps working.

use strand_tests::{ServerOptions, StrandServer};
use strand_wire::quic::{
    codes, Frame, Message, PartitionIndex, Partitioning, ProduceRecord, ProduceTopic,
};

const KEY_BYTES_MAX: usize = 65_535;

fn produce(keys: &[usize]) -> Message {
    Message::ProduceTopic(ProduceTopic {
        topic: "app.events".into(),
        partitioning: Partitioning::Explicit(PartitionIndex(0)),
        idempotence: None,
        records: keys
            .iter()
            .map(|&key_bytes| ProduceRecord {
                key: vec![b'k'; key_bytes].into(),
                value: b"v".to_vec().into(),
            })
            .collect(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_oversized_key_is_limit_exceeded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = StrandServer::start(dir.path(), &ServerOptions::with_admin_password("pw"));
    let client = server.quic_client("admin", "pw").await;
    let ddl = Message::Sql(strand_wire::quic::Sql {
        sql: "CREATE NAMESPACE app; CREATE TOPIC app.events WITH (PARTITIONS = 1)".into(),
        params_json: "[]".into(),
    });
    client.request(ddl).await.expect("DDL");

    for keys in [vec![KEY_BYTES_MAX + 1], vec![10, 70_000, 10]] {
        let frames = client.request(produce(&keys)).await.expect("answered");
        match frames.as_slice() {
            [Frame {
                message: Message::Error(error),
                ..
            }] => {
                assert_eq!(error.code, codes::LIMIT_EXCEEDED, "{error:?}");
                assert!(error.message.contains("65535"), "{error:?}");
            }
            other => panic!("expected limit_exceeded for keys {keys:?}, got {other:?}"),
        }
    }

    // A key of exactly the limit is stored.
    let frames = client
        .request(produce(&[KEY_BYTES_MAX]))
        .await
        .expect("answered");
    match frames.as_slice() {
        [Frame {
            message: Message::ProduceAck(ack),
            ..
        }] => assert_eq!(ack.count, 1),
        other => panic!("expected produce_ack, got {other:?}"),
    }
}
