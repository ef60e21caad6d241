//! A QUIC `produce_topic` or `produce_table` sent to a member that does not lead is forwarded
//! to the leader (issue 22: "a write sent to any node is forwarded to its group's leader"):
//! the follower answers the leader's `produce_ack`s, the records are on every member at the
//! same `_seq`s, an idempotent producer's retry through another follower is answered as a
//! duplicate of the forwarded original, and the leader's refusals (a batch out of order, a
//! duplicate key) come back with their code.

use strand_tests::cluster::{agreed_leader, caught_up, free_quic_addrs, member_options};
use strand_tests::{basic, rows, sql_ok, StrandServer, ADMIN_PASSWORD};
use strand_wire::quic::client::Client;
use strand_wire::quic::{
    BatchSequence, Fetch, Idempotence, Message, PartitionIndex, Partitioning, ProduceAck,
    ProduceRecord, ProduceTable, ProduceTopic, ProducerId, ReadFrom,
};

const TOPIC: &str = "app.events";
const PARTITIONS: u32 = 3;

fn produce(
    partitioning: Partitioning,
    records: &[(&str, &str)],
    idempotence: Option<(u64, u64)>,
) -> Message {
    Message::ProduceTopic(ProduceTopic {
        topic: TOPIC.to_string(),
        partitioning,
        idempotence: idempotence.map(|(producer, batch)| Idempotence {
            producer: ProducerId(producer),
            batch: BatchSequence(batch),
        }),
        records: records
            .iter()
            .map(|(key, value)| ProduceRecord {
                key: key.as_bytes().to_vec().into(),
                value: value.as_bytes().to_vec().into(),
            })
            .collect(),
    })
}

/// The answer's acks, or its error code.
async fn send(client: &Client, request: Message) -> Result<Vec<ProduceAck>, String> {
    let frames = client.request(request).await.map_err(|e| e.to_string())?;
    let mut acks = Vec::new();
    for frame in frames {
        match frame.message {
            Message::ProduceAck(ack) => acks.push(ack),
            Message::Error(error) => return Err(error.code),
            other => panic!("unexpected answer {other:?}"),
        }
    }
    Ok(acks)
}

/// Every record of every partition on `node`: (partition, `_seq`, key, value).
async fn records(node: &StrandServer) -> Vec<(u32, u64, String, String)> {
    let client = node.quic_client("admin", ADMIN_PASSWORD).await;
    let mut all = Vec::new();
    for partition in 0..PARTITIONS {
        let fetch = Message::Fetch(Fetch {
            topic: TOPIC.to_string(),
            partition: PartitionIndex(partition),
            from: ReadFrom::Earliest,
            records_max: 1000,
            bytes_max: 1 << 20,
            wait_ms: 0,
        });
        let frames = client.request(fetch).await.unwrap();
        let Message::FetchResponse(records) = &frames[0].message else {
            panic!("expected records, got {frames:?}");
        };
        for record in &records.records {
            let text = |bytes: &[u8]| String::from_utf8(bytes.to_vec()).unwrap();
            all.push((
                partition,
                record.seq.0,
                text(&record.key),
                text(&record.value),
            ));
        }
    }
    all
}

#[test]
fn produces_sent_to_a_follower_are_written_by_the_leader() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), "the produce forwarding test's secret").unwrap();
    let quic = free_quic_addrs(3);
    let nodes: Vec<StrandServer> = (1..=3)
        .map(|id| {
            let options = member_options(id, &quic, secret.path());
            StrandServer::start(dirs[id - 1].path(), &options)
        })
        .collect();
    let all: Vec<&StrandServer> = nodes.iter().collect();
    let (leader, _) = agreed_leader(&all);
    let leader_at = usize::try_from(leader).unwrap() - 1;
    let followers = [all[(leader_at + 1) % 3], all[(leader_at + 2) % 3]];
    let admin = basic("admin", ADMIN_PASSWORD);
    for ddl in [
        "CREATE NAMESPACE app",
        &format!("CREATE TOPIC {TOPIC} WITH (PARTITIONS = {PARTITIONS})"),
        "CREATE USER bob WITH PASSWORD 'bob has a long password'",
        &format!("GRANT INSERT ON {TOPIC} TO bob"),
        "CREATE TABLE app.items (id BIGINT PRIMARY KEY, v BIGINT)",
        "GRANT INSERT ON app.items TO bob",
    ] {
        sql_ok(all[leader_at], &admin, ddl, &[]);
    }
    caught_up(&all);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (first, second) = runtime.block_on(async {
        (
            followers[0]
                .quic_client("bob", "bob has a long password")
                .await,
            followers[1]
                .quic_client("bob", "bob has a long password")
                .await,
        )
    });

    // One partition, named.
    let explicit = produce(
        Partitioning::Explicit(PartitionIndex(1)),
        &[("", "one"), ("", "two")],
        None,
    );
    let acks = runtime.block_on(send(&first, explicit)).expect("acked");
    assert_eq!(acks.len(), 1, "{acks:?}");
    assert_eq!((acks[0].partition.0, acks[0].count), (1, 2));

    // By key: several partitions, one ack each.
    let keys: Vec<String> = (0..12).map(|i| format!("key-{i}")).collect();
    let keyed: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), "keyed")).collect();
    let acks = runtime
        .block_on(send(&first, produce(Partitioning::ByKeyHash, &keyed, None)))
        .expect("acked");
    assert!(acks.len() > 1, "12 keys in one partition: {acks:?}");
    assert_eq!(acks.iter().map(|a| a.count).sum::<u32>(), 12);

    // An idempotent batch through one follower, retried through the other.
    let batch = || {
        produce(
            Partitioning::Explicit(PartitionIndex(0)),
            &[("", "once")],
            Some((77, 1)),
        )
    };
    let original = runtime.block_on(send(&first, batch())).expect("acked");
    let retry = runtime.block_on(send(&second, batch())).expect("acked");
    assert!(!original[0].duplicate);
    assert!(retry[0].duplicate, "{retry:?}");
    assert_eq!(
        (retry[0].first, retry[0].last),
        (original[0].first, original[0].last)
    );

    // The producer's next batch; then the first again, which only the leader can judge (a
    // member that does not lead reads no producer state): out of order, from the leader.
    let next = produce(
        Partitioning::Explicit(PartitionIndex(0)),
        &[("", "next")],
        Some((77, 2)),
    );
    runtime.block_on(send(&first, next)).expect("acked");
    let refused = runtime.block_on(send(&second, batch()));
    assert_eq!(refused, Err("out_of_order".to_string()));

    // Rows into a table, through a follower; then one of them again: the leader's refusal.
    let table_rows = |ids: &[i64]| {
        Message::ProduceTable(ProduceTable {
            table: "app.items".to_string(),
            idempotence: None,
            rows_json: ids
                .iter()
                .map(|id| format!(r#"{{"id": {id}, "v": 1}}"#))
                .collect(),
        })
    };
    let acks = runtime
        .block_on(send(&first, table_rows(&[1, 2, 3])))
        .expect("acked");
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].count, 3);
    let again = runtime.block_on(send(&second, table_rows(&[3])));
    assert_eq!(again, Err("invalid_row".to_string()));

    caught_up(&all);
    let select = "SELECT id, _seq FROM app.items ORDER BY id";
    let table_on_leader = rows(all[leader_at], &admin, select, &[]);
    assert_eq!(table_on_leader.len(), 3, "{table_on_leader:?}");
    for node in &all {
        assert_eq!(rows(node, &admin, select, &[]), table_on_leader);
    }
    let on_leader = runtime.block_on(records(all[leader_at]));
    assert_eq!(on_leader.len(), 2 + 12 + 1 + 1, "{on_leader:?}");
    assert_eq!(
        on_leader
            .iter()
            .filter(|(_, _, _, value)| value == "once")
            .count(),
        1
    );
    for node in &all {
        assert_eq!(
            runtime.block_on(records(node)),
            on_leader,
            "every member holds the same records at the same _seqs ({})",
            node.http
        );
    }
}
