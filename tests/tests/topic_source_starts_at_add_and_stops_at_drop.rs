//! Which table changes a topic source publishes: `ALTER TOPIC ... ADD SOURCE` starts at the
//! table's current `_seq` (rows written before it are never published, in any partition,
//! also after a restart; every change after it is, also in a partition not written again),
//! and `ALTER TOPIC ... DROP SOURCE` stops publishing (a write after it reaches no topic).
//!
//! Regression (issue 16, defect 4). The bug: a source added to a table that already had rows
//! published a partition's past rows at that partition's next write, and those of every other
//! partition only at the next server start; there was no way to remove a source. Impact: what a
//! topic received depended on which users happened to write again and on restarts (bob's old
//! rows appeared after a restart, long after alice's); a table once a source fed the topic for
//! ever. The fix: the source records its start `_seq` in the topic definition (changes after
//! it are published, none before), the pump catches every partition of the table up to it
//! when the source is added, and `DROP SOURCE` removes the source.

use std::time::Duration;

use serde_json::{json, Value};
use strand_tests::{
    assert_client_error, bearer, rows, sql, sql_ok, AdminServer, ServerOptions, StrandServer,
    ADMIN_PASSWORD,
};
use strand_wire::quic::{Fetch, Message, PartitionIndex, ReadFrom};

const PARTITIONS: u32 = 2;
/// How long to watch for a message that must not come.
const QUIET: Duration = Duration::from_millis(1_500);

/// Every message of `app.feed`, in `_seq` order of the changes, as
/// `(table, owner, change_type, id, value)`.
async fn feed(server: &StrandServer) -> Vec<(String, Value, String, i64, Value)> {
    let client = server.quic_client("admin", ADMIN_PASSWORD).await;
    let mut all = Vec::new();
    for partition in 0..PARTITIONS {
        let fetch = Fetch {
            topic: "app.feed".into(),
            partition: PartitionIndex(partition),
            from: ReadFrom::Earliest,
            records_max: 10_000,
            bytes_max: 16 << 20,
            wait_ms: 0,
        };
        let frames = client.request(Message::Fetch(fetch)).await.expect("fetch");
        let Some(Message::FetchResponse(records)) = frames.into_iter().next().map(|f| f.message)
        else {
            panic!("fetch_response expected");
        };
        for record in &records.records {
            let value: Value = serde_json::from_slice(&record.value).expect("JSON value");
            all.push(value);
        }
    }
    client.close().await;
    all.sort_by_key(|value| seq_of(&value["_seq"]));
    all.into_iter()
        .map(|value| {
            (
                value["table"].as_str().expect("table").to_string(),
                value["owner"].clone(),
                value["change_type"].as_str().expect("type").to_string(),
                value["row"]["id"].as_i64().expect("id"),
                value,
            )
        })
        .collect()
}

fn seq_of(text: &Value) -> u64 {
    text.as_str().expect("_seq text").parse().expect("_seq")
}

/// The feed once it holds `count` messages (or after 15 s), then after a quiet spell in which
/// nothing more may arrive: `(table, owner, change_type, id)` of each.
async fn settled(server: &StrandServer, count: usize) -> Vec<(String, Value, String, i64)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while feed(server).await.len() < count && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(QUIET).await;
    feed(server)
        .await
        .into_iter()
        .map(|(table, owner, kind, id, _)| (table, owner, kind, id))
        .collect()
}

fn change(table: &str, owner: Value, kind: &str, id: i64) -> (String, Value, String, i64) {
    (table.to_string(), owner, kind.to_string(), id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_source_publishes_only_later_changes_in_every_partition_across_a_restart() {
    let AdminServer { server, admin, dir } = AdminServer::with_app(&format!(
        "CREATE TABLE app.notes (id BIGINT PRIMARY KEY, body TEXT) WITH (TYPE = 'USER');
         CREATE TOPIC app.feed WITH (PARTITIONS = {PARTITIONS});
         CREATE USER 'alice' WITH PASSWORD 'alice-pw' ROLE user;
         CREATE USER 'bob' WITH PASSWORD 'bob-pw' ROLE user"
    ));
    let alice = bearer(&server, "alice", "alice-pw");
    let bob = bearer(&server, "bob", "bob-pw");
    let insert = "INSERT INTO app.notes (id, body) VALUES ($1, 'before')";
    sql_ok(&server, &alice, insert, &[json!(1)]);
    sql_ok(&server, &bob, insert, &[json!(1)]);
    sql_ok(&server, &bob, insert, &[json!(2)]);

    sql_ok(
        &server,
        &admin,
        "ALTER TOPIC app.feed ADD SOURCE app.notes",
        &[],
    );
    // Alice's partition is written again, bob's never.
    let update = "UPDATE app.notes SET body = 'after' WHERE id = 1";
    sql_ok(&server, &alice, update, &[]);
    let alice_update = change("app.notes", json!("alice"), "update", 1);
    assert_eq!(
        settled(&server, 1).await,
        vec![alice_update.clone()],
        "only the change after ADD SOURCE, none of the rows before it"
    );

    // A restart publishes nothing again and nothing from before the source.
    assert_eq!(server.terminate().code(), Some(0));
    let options = ServerOptions::with_admin_password(ADMIN_PASSWORD);
    let server = StrandServer::start(dir.path(), &options);
    assert_eq!(settled(&server, 1).await, vec![alice_update.clone()]);
    // The source is still there: a change after the restart is published, once.
    let bob = bearer(&server, "bob", "bob-pw");
    sql_ok(&server, &bob, "DELETE FROM app.notes WHERE id = 2", &[]);
    assert_eq!(
        settled(&server, 2).await,
        vec![alice_update, change("app.notes", json!("bob"), "delete", 2)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_source_stops_publishing_and_a_new_add_starts_again() {
    let setup = AdminServer::with_app(&format!(
        "CREATE TABLE app.tickets (id BIGINT PRIMARY KEY, title TEXT) WITH (TYPE = 'SHARED');
         CREATE TABLE app.marks (id BIGINT PRIMARY KEY) WITH (TYPE = 'SHARED');
         CREATE TOPIC app.feed WITH (PARTITIONS = {PARTITIONS});
         ALTER TOPIC app.feed ADD SOURCE app.tickets;
         ALTER TOPIC app.feed ADD SOURCE app.marks ON INSERT"
    ));
    let server = &setup.server;
    setup.exec("INSERT INTO app.tickets (id, title) VALUES (1, 'published')");
    let first = change("app.tickets", Value::Null, "insert", 1);
    assert_eq!(settled(server, 1).await, vec![first.clone()]);

    setup.exec("ALTER TOPIC app.feed DROP SOURCE app.tickets");
    // A write after the drop reaches no topic; the other source goes on.
    setup.exec("INSERT INTO app.tickets (id, title) VALUES (2, 'not published')");
    setup.exec("UPDATE app.tickets SET title = 'not published' WHERE id = 1");
    setup.exec("INSERT INTO app.marks (id) VALUES (1)");
    let mark = change("app.marks", Value::Null, "insert", 1);
    assert_eq!(settled(server, 2).await, vec![first.clone(), mark.clone()]);

    // Dropping a source the topic does not have is an error, unless IF EXISTS.
    let again = sql(
        server,
        &setup.admin,
        "ALTER TOPIC app.feed DROP SOURCE app.tickets",
        &[],
    );
    let error = assert_client_error(&again, "not_found");
    let message = error["message"].as_str().expect("message");
    assert!(message.contains("app.tickets"), "{message}");
    setup.exec("ALTER TOPIC app.feed DROP SOURCE IF EXISTS app.tickets");
    let no_topic = sql(
        server,
        &setup.admin,
        "ALTER TOPIC app.nope DROP SOURCE app.tickets",
        &[],
    );
    assert_client_error(&no_topic, "not_found");
    let listed = rows(server, &setup.admin, "SHOW TOPICS", &[]);
    assert_eq!(listed[0]["sources"], "app.marks", "{listed:?}");

    // Added again, it starts at that moment: the writes while it was dropped stay unpublished.
    setup.exec("ALTER TOPIC app.feed ADD SOURCE app.tickets");
    setup.exec("DELETE FROM app.tickets WHERE id = 2");
    assert_eq!(
        settled(server, 3).await,
        vec![first, mark, change("app.tickets", Value::Null, "delete", 2)]
    );
}
