//! Over real QUIC: `tail` pushes what is there, then each new record, without polling, and
//! ends when the client cancels; `sql` answers the HTTP API's JSON body; `produce_table`
//! inserts rows as one batch and acks their `_seq` range; a produce by key hash puts each
//! key in its own partition, in order; bad table rows get a clear error.
//!
//! "Without polling" is bounded in time (issue 16: it used to wait up to 10 s for the push, so
//! a server that polled for new records every few seconds passed); see [`WAKE_BOUND`].

use std::time::{Duration, Instant};

use serde_json::Value;
use strand_tests::{bearer, rows, sql_ok, ServerOptions, StrandServer};
use strand_wire::quic::client::Responses;
use strand_wire::quic::{
    codes, BatchSequence, Fetch, Frame, Idempotence, Message, PartitionIndex, Partitioning,
    ProduceRecord, ProduceTable, ProduceTopic, ProducerId, ReadFrom, Records, Sql,
};

fn produce(topic: &str, partitioning: Partitioning, records: &[(&str, &str)]) -> Message {
    Message::ProduceTopic(ProduceTopic {
        topic: topic.to_string(),
        partitioning,
        idempotence: None,
        records: records
            .iter()
            .map(|(key, value)| ProduceRecord {
                key: key.as_bytes().to_vec().into(),
                value: value.as_bytes().to_vec().into(),
            })
            .collect(),
    })
}

/// How soon a waiting tail must be pushed a new record after the produce is sent. A server
/// woken by the commit pushes within milliseconds (tens under load; the bound leaves a slow,
/// busy 2-core CI machine a wide margin). A server that polls instead pushes at its next poll:
/// one polling every `P` >= 2 s misses this bound on each wake with probability >= 1/2 (the
/// produce falls at a random point of its period; at a fixed point, e.g. a timer started with
/// the tail, it misses every time), so it survives the [`WAKE_PAUSES`] wakes with probability
/// at most 2^-8.
const WAKE_BOUND: Duration = Duration::from_secs(1);
/// Pauses before each timed produce (ms): uneven, so the produces fall at different phases of
/// any polling period.
const WAKE_PAUSES: [u64; 8] = [37, 211, 89, 331, 149, 263, 71, 193];

fn values(records: &Records) -> Vec<String> {
    records
        .records
        .iter()
        .map(|r| String::from_utf8_lossy(&r.value).into_owned())
        .collect()
}

async fn next_push(pushes: &mut Responses) -> Records {
    let wait = tokio::time::timeout(Duration::from_secs(10), pushes.next());
    match wait.await.expect("a push within 10 s").expect("read") {
        Some(Frame {
            message: Message::TailPush(records),
            ..
        }) => records,
        other => panic!("expected tail_push, got {other:?}"),
    }
}

fn only(frames: Vec<Frame>) -> Message {
    assert_eq!(frames.len(), 1, "one answer frame: {frames:?}");
    frames.into_iter().next().expect("one frame").message
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_pushes_existing_then_new_records_until_cancelled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = StrandServer::start(
        &dir.path().join("data"),
        &ServerOptions::with_admin_password("pw"),
    );
    let admin = bearer(&server, "admin", "pw");
    sql_ok(
        &server,
        &admin,
        "CREATE NAMESPACE app; CREATE TOPIC app.events WITH (PARTITIONS = 2)",
        &[],
    );
    let client = server.quic_client("admin", "pw").await;
    let explicit = Partitioning::Explicit(PartitionIndex(0));
    client
        .request(produce("app.events", explicit, &[("", "a"), ("", "b")]))
        .await
        .expect("produce");

    let tail = Fetch {
        topic: "app.events".into(),
        partition: PartitionIndex(0),
        from: ReadFrom::Earliest,
        records_max: 100,
        bytes_max: 1 << 20,
        wait_ms: 0,
    };
    let mut pushes = client.send(Message::Tail(tail)).await.expect("tail");
    let first = next_push(&mut pushes).await;
    assert_eq!(values(&first), ["a", "b"]);

    // Nothing more is pushed until a produce; then exactly the new record, at once (woken by
    // the commit, not found by a poll: WAKE_BOUND).
    let idle = tokio::time::timeout(Duration::from_millis(300), pushes.next()).await;
    assert!(idle.is_err(), "no push without new records: {idle:?}");
    let mut last_seq = first.records[1].seq;
    let mut woken = Vec::new();
    for (n, pause) in WAKE_PAUSES.iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(*pause)).await;
        let value = format!("c{n}");
        let sent = Instant::now();
        client
            .request(produce("app.events", explicit, &[("", &value)]))
            .await
            .expect("produce");
        let pushed = next_push(&mut pushes).await;
        woken.push(sent.elapsed());
        assert_eq!(values(&pushed), [value]);
        assert!(pushed.records[0].seq > last_seq);
        assert_eq!(pushed.high_seq, pushed.records[0].seq);
        last_seq = pushed.records[0].seq;
    }
    assert!(
        woken.iter().all(|wake| *wake < WAKE_BOUND),
        "a tail is woken by the commit, not by polling: pushes came {woken:?} after the \
         produce (bound {WAKE_BOUND:?})"
    );
    pushes.cancel();

    // A tail from `latest` sees only what comes after it; one of an unknown topic is refused.
    let latest = Fetch {
        topic: "app.events".into(),
        partition: PartitionIndex(0),
        from: ReadFrom::Latest,
        records_max: 100,
        bytes_max: 1 << 20,
        wait_ms: 0,
    };
    let mut pushes = client
        .send(Message::Tail(latest.clone()))
        .await
        .expect("tail");
    tokio::time::sleep(Duration::from_millis(200)).await;
    client
        .request(produce("app.events", explicit, &[("", "d")]))
        .await
        .expect("produce");
    assert_eq!(values(&next_push(&mut pushes).await), ["d"]);
    pushes.cancel();
    let unknown = Fetch {
        topic: "app.nope".into(),
        ..latest
    };
    let answer = only(client.request(Message::Tail(unknown)).await.expect("tail"));
    assert!(
        matches!(&answer, Message::Error(e) if e.code == codes::UNKNOWN_TOPIC),
        "{answer:?}"
    );

    // The connection still serves requests after the cancelled tails.
    let fetched = client
        .request(Message::Fetch(Fetch {
            topic: "app.events".into(),
            partition: PartitionIndex(0),
            from: ReadFrom::Earliest,
            records_max: 100,
            bytes_max: 1 << 20,
            wait_ms: 0,
        }))
        .await
        .expect("fetch");
    let Message::FetchResponse(all) = only(fetched) else {
        panic!("fetch_response expected");
    };
    let produced = (0..WAKE_PAUSES.len()).map(|n| format!("c{n}"));
    let expected: Vec<String> = ["a", "b"]
        .map(String::from)
        .into_iter()
        .chain(produced)
        .chain(["d".to_string()])
        .collect();
    assert_eq!(values(&all), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_hash_produce_keeps_each_key_in_one_partition_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = StrandServer::start(
        &dir.path().join("data"),
        &ServerOptions::with_admin_password("pw"),
    );
    let admin = bearer(&server, "admin", "pw");
    sql_ok(
        &server,
        &admin,
        "CREATE NAMESPACE app; CREATE TOPIC app.events WITH (PARTITIONS = 4)",
        &[],
    );
    let client = server.quic_client("admin", "pw").await;
    let keys = ["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"];
    let mut sent = Vec::new();
    for round in 0..3 {
        let batch: Vec<(String, String)> = keys
            .iter()
            .map(|k| (k.to_string(), format!("{k}-{round}")))
            .collect();
        let borrowed: Vec<(&str, &str)> = batch
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let frames = client
            .request(produce("app.events", Partitioning::ByKeyHash, &borrowed))
            .await
            .expect("produce");
        let acked: u32 = frames
            .iter()
            .map(|f| match &f.message {
                Message::ProduceAck(ack) => ack.count,
                other => panic!("expected produce_ack, got {other:?}"),
            })
            .sum();
        assert_eq!(acked as usize, keys.len(), "every record acked once");
        assert!(frames.len() > 1, "8 keys over 4 partitions use several");
        sent.extend(batch);
    }
    // Each key lives in exactly one partition, with its values in produce order.
    let mut partitions_of_key = std::collections::BTreeMap::<String, Vec<u32>>::new();
    let mut values_of_key = std::collections::BTreeMap::<String, Vec<String>>::new();
    for partition in 0..4 {
        let fetched = client
            .request(Message::Fetch(Fetch {
                topic: "app.events".into(),
                partition: PartitionIndex(partition),
                from: ReadFrom::Earliest,
                records_max: 1000,
                bytes_max: 1 << 20,
                wait_ms: 0,
            }))
            .await
            .expect("fetch");
        let Message::FetchResponse(records) = only(fetched) else {
            panic!("fetch_response expected");
        };
        for record in &records.records {
            let key = String::from_utf8_lossy(&record.key).into_owned();
            let entry = partitions_of_key.entry(key.clone()).or_default();
            if !entry.contains(&partition) {
                entry.push(partition);
            }
            let value = String::from_utf8_lossy(&record.value).into_owned();
            values_of_key.entry(key).or_default().push(value);
        }
    }
    for key in keys {
        assert_eq!(partitions_of_key[key].len(), 1, "{key} in one partition");
        let expected: Vec<String> = (0..3).map(|r| format!("{key}-{r}")).collect();
        assert_eq!(values_of_key[key], expected, "{key} in order");
    }
    assert_eq!(sent.len(), 24);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_and_produce_table_over_quic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = StrandServer::start(
        &dir.path().join("data"),
        &ServerOptions::with_admin_password("pw"),
    );
    let admin = bearer(&server, "admin", "pw");
    sql_ok(
        &server,
        &admin,
        "CREATE NAMESPACE app;
         CREATE TABLE app.tickets (id BIGINT PRIMARY KEY, title TEXT NOT NULL) WITH (TYPE = 'SHARED')",
        &[],
    );
    let client = server.quic_client("admin", "pw").await;

    // `sql`: the HTTP body, success and error alike.
    let sql = |text: &str, params: &str| {
        Message::Sql(Sql {
            sql: text.to_string(),
            params_json: params.to_string(),
        })
    };
    let answer = only(
        client
            .request(sql(
                "INSERT INTO app.tickets (id, title) VALUES ($1, $2)",
                "[1, \"one\"]",
            ))
            .await
            .expect("sql"),
    );
    let Message::SqlResult(result) = answer else {
        panic!("sql_result expected, got {answer:?}");
    };
    let body: Value = serde_json::from_str(&result.body_json).expect("JSON body");
    assert_eq!(body["status"], "success", "{body}");
    assert_eq!(body["results"][0]["row_count"], 1);
    let answer = only(client.request(sql("SELEC 1", "[]")).await.expect("sql"));
    let Message::SqlResult(result) = answer else {
        panic!("sql_result expected");
    };
    let body: Value = serde_json::from_str(&result.body_json).expect("JSON body");
    assert_eq!(body["status"], "error", "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    let answer = only(
        client
            .request(sql("SELECT 1", "{not json"))
            .await
            .expect("sql"),
    );
    let Message::SqlResult(result) = answer else {
        panic!("sql_result expected");
    };
    let body: Value = serde_json::from_str(&result.body_json).expect("JSON body");
    assert_eq!(body["error"]["code"], "invalid_json", "{body}");

    // `produce_table`: one batch, acked with its `_seq` range, visible to SQL.
    let rows_json = vec![
        r#"{"id": 2, "title": "two"}"#.to_string(),
        r#"{"id": 3, "title": "three"}"#.to_string(),
    ];
    let produce = |rows_json: Vec<String>, idempotence: Option<Idempotence>| {
        Message::ProduceTable(ProduceTable {
            table: "app.tickets".into(),
            idempotence,
            rows_json,
        })
    };
    let answer = only(
        client
            .request(produce(rows_json, None))
            .await
            .expect("produce"),
    );
    let Message::ProduceAck(ack) = answer else {
        panic!("produce_ack expected, got {answer:?}");
    };
    assert_eq!(ack.count, 2);
    assert!(ack.first < ack.last);
    let found = rows(
        &server,
        &admin,
        "SELECT id, title, _seq FROM app.tickets WHERE id >= 2",
        &[],
    );
    let seqs: Vec<String> = found
        .iter()
        .map(|row| row["_seq"].as_str().expect("_seq text").to_string())
        .collect();
    assert_eq!(
        seqs,
        [ack.first.0.to_string(), ack.last.0.to_string()],
        "the acked range is the rows' _seq"
    );

    // Bad rows: a clear error, nothing written.
    let refused = |answer: Message, code: &str| match answer {
        Message::Error(error) => {
            assert_eq!(error.code, code, "{error:?}");
            assert!(!error.message.is_empty());
        }
        other => panic!("expected error {code}, got {other:?}"),
    };
    let bad = vec![
        r#"{"id": 4, "title": "four"}"#.to_string(),
        "[1]".to_string(),
    ];
    refused(
        only(client.request(produce(bad, None)).await.expect("r")),
        codes::INVALID_ROW,
    );
    let mismatched = vec![
        r#"{"id": 5, "title": "five"}"#.to_string(),
        r#"{"id": 6}"#.to_string(),
    ];
    let answer = only(client.request(produce(mismatched, None)).await.expect("r"));
    assert!(matches!(answer, Message::Error(_)), "{answer:?}");
    let duplicate = vec![r#"{"id": 2, "title": "again"}"#.to_string()];
    let answer = only(client.request(produce(duplicate, None)).await.expect("r"));
    assert!(
        matches!(&answer, Message::Error(e) if e.message.contains("primary key")),
        "{answer:?}"
    );
    let unknown = Message::ProduceTable(ProduceTable {
        table: "app.nope".into(),
        idempotence: None,
        rows_json: vec![r#"{"id": 7}"#.to_string()],
    });
    refused(
        only(client.request(unknown).await.expect("r")),
        codes::UNKNOWN_TABLE,
    );
    let idempotent = Some(Idempotence {
        producer: ProducerId(1),
        batch: BatchSequence(1),
    });
    let keyed = vec![r#"{"id": 8, "title": "eight"}"#.to_string()];
    refused(
        only(client.request(produce(keyed, idempotent)).await.expect("r")),
        codes::UNSUPPORTED,
    );
    let count = rows(&server, &admin, "SELECT id FROM app.tickets", &[]);
    assert_eq!(count.len(), 3, "only ids 1, 2 and 3: {count:?}");
}
