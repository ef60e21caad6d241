//! Table to topic over real QUIC: with `ALTER TOPIC ... ADD SOURCE`, every committed change of
//! the table (inserts, updates, deletes, multi-row statements) appears on the topic exactly
//! once, each topic partition in `_seq` order, and the changes in `_seq` order are the
//! statements in the order they ran. `strand produce` and `strand consume` move lines through
//! a topic.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use strand_tests::{bearer, rows, sql_ok, strand_binary, ServerOptions, StrandServer};
use strand_wire::quic::client::Client;
use strand_wire::quic::{Fetch, Message, PartitionIndex, ReadFrom};

const TOPIC_PARTITIONS: u32 = 3;

/// Every message of the topic, per partition, waiting until `count` are there (or 15 s).
async fn read_topic(client: &Client, count: usize) -> BTreeMap<u32, Vec<Value>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let mut all = BTreeMap::new();
        for partition in 0..TOPIC_PARTITIONS {
            let fetch = Fetch {
                topic: "app.ticket_changes".into(),
                partition: PartitionIndex(partition),
                from: ReadFrom::Earliest,
                records_max: 10_000,
                bytes_max: 16 << 20,
                wait_ms: 0,
            };
            let frames = client.request(Message::Fetch(fetch)).await.expect("fetch");
            let Some(Message::FetchResponse(records)) =
                frames.into_iter().next().map(|f| f.message)
            else {
                panic!("fetch_response expected");
            };
            let values: Vec<Value> = records
                .records
                .iter()
                .map(|r| serde_json::from_slice(&r.value).expect("message value is JSON"))
                .collect();
            all.insert(partition, values);
        }
        let total: usize = all.values().map(Vec::len).sum();
        if total >= count || tokio::time::Instant::now() > deadline {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn seq_of(value: &Value) -> u64 {
    value["_seq"]
        .as_str()
        .expect("_seq text")
        .parse()
        .expect("_seq number")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_committed_change_appears_on_the_topic_in_seq_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = StrandServer::start(
        &dir.path().join("data"),
        &ServerOptions::with_admin_password("pw"),
    );
    let admin = bearer(&server, "admin", "pw");
    sql_ok(
        &server,
        &admin,
        &format!(
            "CREATE NAMESPACE app;
             CREATE TABLE app.tickets (id BIGINT PRIMARY KEY, title TEXT) WITH (TYPE = 'SHARED');
             CREATE TOPIC app.ticket_changes WITH (PARTITIONS = {TOPIC_PARTITIONS});
             ALTER TOPIC app.ticket_changes ADD SOURCE app.tickets ON INSERT, UPDATE, DELETE"
        ),
        &[],
    );
    let statements = [
        "INSERT INTO app.tickets (id, title) VALUES (1, 'one'), (2, 'two'), (3, 'three')",
        "UPDATE app.tickets SET title = 'TWO' WHERE id = 2",
        "DELETE FROM app.tickets WHERE id = 1",
        "INSERT INTO app.tickets (id, title) VALUES (4, 'four')",
        "UPDATE app.tickets SET title = 'x' WHERE id >= 3",
        "DELETE FROM app.tickets WHERE id = 4",
    ];
    for statement in statements {
        sql_ok(&server, &admin, statement, &[]);
    }
    let expected = [
        ("insert", 1),
        ("insert", 2),
        ("insert", 3),
        ("update", 2),
        ("delete", 1),
        ("insert", 4),
        ("update", 3),
        ("update", 4),
        ("delete", 4),
    ];

    let client = server.quic_client("admin", "pw").await;
    let by_partition = read_topic(&client, expected.len()).await;
    for (partition, values) in &by_partition {
        let seqs: Vec<u64> = values.iter().map(seq_of).collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "partition {partition} in _seq order: {seqs:?}"
        );
    }
    let mut changes: Vec<Value> = by_partition.into_values().flatten().collect();
    changes.sort_by_key(seq_of);
    let seen: Vec<(String, i64)> = changes
        .iter()
        .map(|c| {
            assert_eq!(c["table"], "app.tickets", "{c}");
            let kind = c["change_type"].as_str().expect("change_type").to_string();
            (kind, c["row"]["id"].as_i64().expect("row id"))
        })
        .collect();
    let expected: Vec<(String, i64)> = expected
        .iter()
        .map(|(kind, id)| (kind.to_string(), *id))
        .collect();
    assert_eq!(seen, expected, "each committed change once, in _seq order");

    // The changes carry the versions the table holds.
    let live = rows(
        &server,
        &admin,
        "SELECT id, title, _seq FROM app.tickets",
        &[],
    );
    for row in live {
        let last_change = changes
            .iter()
            .rev()
            .find(|c| c["row"]["id"] == row["id"])
            .expect("a change of each live row");
        assert_eq!(last_change["row"]["_seq"], row["_seq"], "{row}");
        assert_eq!(last_change["row"]["title"], row["title"], "{row}");
    }
}

#[test]
fn cli_produce_then_consume() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = StrandServer::start(
        &dir.path().join("data"),
        &ServerOptions::with_admin_password("pw"),
    );
    let admin = bearer(&server, "admin", "pw");
    sql_ok(
        &server,
        &admin,
        "CREATE NAMESPACE app; CREATE TOPIC app.lines WITH (PARTITIONS = 2)",
        &[],
    );
    let ca = server.data_dir.join("tls/cert.pem");
    let cli = |args: &[&str]| {
        let mut command = Command::new(strand_binary());
        command
            .args(args)
            .args(["--server", &server.quic.to_string(), "--password", "pw"])
            .arg("--ca-cert")
            .arg(&ca)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("STRAND_")) {
            command.env_remove(name);
        }
        command
    };
    let mut produce = cli(&["produce", "--topic", "app.lines", "--key-field", "user"])
        .spawn()
        .expect("spawn produce");
    let input: String = (0..20)
        .map(|i| format!("{{\"user\":\"u{}\",\"n\":{i}}}\n", i % 4))
        .collect();
    produce
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    let produced = produce.wait_with_output().expect("produce exits");
    assert!(produced.status.success(), "{produced:?}");
    let summary: Value = serde_json::from_slice(&produced.stdout).expect("summary JSON");
    assert_eq!(summary["produced"], 20, "{summary}");

    let consumed = cli(&["consume", "--topic", "app.lines", "--count", "20"])
        .output()
        .expect("consume exits");
    assert!(consumed.status.success(), "{consumed:?}");
    let lines: Vec<Value> = String::from_utf8_lossy(&consumed.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 20);
    // Each key in one partition, its values in the order produced.
    let mut per_key: BTreeMap<String, (u64, Vec<i64>)> = BTreeMap::new();
    for line in &lines {
        let value: Value = serde_json::from_str(line["value"].as_str().expect("value text"))
            .expect("value is the produced line");
        let key = line["key"].as_str().expect("key").to_string();
        assert_eq!(value["user"], key.as_str());
        let partition = line["partition"].as_u64().expect("partition");
        let entry = per_key.entry(key).or_insert((partition, Vec::new()));
        assert_eq!(entry.0, partition, "one partition per key");
        entry.1.push(value["n"].as_i64().expect("n"));
    }
    for (key, (_, ns)) in per_key {
        assert!(ns.windows(2).all(|w| w[0] < w[1]), "{key}: {ns:?}");
        assert_eq!(ns.len(), 5);
    }
}
