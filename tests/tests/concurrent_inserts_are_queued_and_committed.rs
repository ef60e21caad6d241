//! Concurrent single-row INSERTs over HTTP, end to end. With other SQL requests in flight, a
//! brief INSERT is queued on its HTTP shard's thread and its commit awaited without a thread
//! (`broker/src/engine/queued_write.rs`); its commit hooks (the realtime feed, topic
//! sources) run once the commit is known. This file shows, against the real server:
//! - 16 clients inserting 50 rows each into one SHARED table at once: every INSERT answers
//!   success with `row_count` 1, and afterwards the table holds exactly the 800 rows;
//! - a WebSocket subscriber on the table meanwhile receives each of the 800 inserts exactly
//!   once, in `_seq` order (the commit hooks ran for every queued write, none twice);
//! - 16 clients racing to insert the same primary key: exactly one succeeds, the others get
//!   `duplicate_key` (the key check runs on the shard's thread before the commit, and a row
//!   queued but not yet committed counts), the table and the subscriber hold the winner's
//!   row only.
//!
//! That the queued path was taken at all is checked through the server's threads: the log
//! starts its `strand-log-commit` thread only for a write whose commit is awaited that way.
//! No assertion depends on timing; every wait is bounded.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Barrier;
use std::time::Duration;

use serde_json::Value;
use strand_tests::ws::{admin_ws, row_id, row_seq, snapshot, WsClient};
use strand_tests::{
    assert_client_error, bearer, rows, sql, sql_ok, AdminServer, ServerOptions, StrandServer,
    ADMIN_PASSWORD,
};
use strand_wire::{ChangeType, Row, ServerMessage};

const CLIENTS: usize = 16;
const ROWS_PER_CLIENT: usize = 50;
const TABLE: &str = "CREATE TABLE app.events (id BIGINT PRIMARY KEY, client BIGINT, n BIGINT) \
    WITH (TYPE = 'SHARED')";
const SUBSCRIPTION: &str = "all";
/// How long a subscriber must stay quiet after the last expected change.
const QUIET: Duration = Duration::from_millis(300);

/// A server under `--fsync always` (stated, not left to the default: under the other
/// policies a queued write's commit may be led on the shard's thread, and no commit thread
/// is started) with `app.events`, its partition open (one row, id 0, so that INSERTs into it
/// count as brief writes), and an admin WebSocket subscribed to the whole table.
fn start() -> (AdminServer, WsClient) {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = ServerOptions {
        args: vec!["--fsync".into(), "always".into()],
        ..ServerOptions::with_admin_password(ADMIN_PASSWORD)
    };
    let server = StrandServer::start(dir.path(), &options);
    let admin = bearer(&server, "admin", ADMIN_PASSWORD);
    let setup = AdminServer { server, admin, dir };
    setup.exec(&format!("CREATE NAMESPACE app; {TABLE}"));
    setup.exec("INSERT INTO app.events (id, client, n) VALUES (0, -1, -1)");
    let mut client = admin_ws(&setup);
    let (_, initial) = snapshot(&mut client, SUBSCRIPTION, "SELECT * FROM app.events");
    assert_eq!(initial.keys().copied().collect::<Vec<_>>(), [0]);
    (setup, client)
}

/// INSERT one row; it must succeed with `row_count` 1.
fn insert_ok(server: &StrandServer, admin: &str, id: i64, client: i64, n: i64) {
    let text = format!("INSERT INTO app.events (id, client, n) VALUES ({id}, {client}, {n})");
    let results = sql_ok(server, admin, &text, &[]);
    assert_eq!(results.len(), 1, "{text}\n-> {results:?}");
    assert_eq!(results[0]["row_count"], 1, "{text}\n-> {results:?}");
}

/// Insert changes for the subscription until `count` rows arrived: each row once, `_seq`
/// strictly increasing; then nothing more within [`QUIET`]. Returns the rows by id.
fn inserted_rows(client: &mut WsClient, count: usize) -> BTreeMap<i64, Row> {
    let mut seen = BTreeMap::new();
    let mut last_seq = 0;
    while seen.len() < count {
        match client.recv() {
            ServerMessage::Change {
                subscription_id,
                change_type,
                rows,
                old_rows,
                ..
            } => {
                assert_eq!(subscription_id, SUBSCRIPTION);
                assert_eq!(change_type, ChangeType::Insert, "{rows:?}");
                assert!(old_rows.is_none(), "an insert has no old rows");
                for row in rows {
                    let seq = row_seq(&row);
                    assert!(
                        seq > last_seq,
                        "change _seq {seq} after {last_seq}: out of order or repeated"
                    );
                    last_seq = seq;
                    let id = row_id(&row);
                    let twice = seen.insert(id, row);
                    assert!(twice.is_none(), "the insert of id {id} arrived twice");
                }
            }
            other => panic!("expected a change, got {other:?}"),
        }
    }
    client.expect_silence(QUIET);
    seen
}

/// `(client, n)` of a row, as numbers.
fn client_and_n(row: &serde_json::Map<String, Value>) -> (i64, i64) {
    let number = |name: &str| {
        row.get(name)
            .and_then(Value::as_i64)
            .unwrap_or_else(|| panic!("no integer {name} in {row:?}"))
    };
    (number("client"), number("n"))
}

/// Names of the server process's threads (Linux truncates them to 15 bytes).
fn thread_names(server: &StrandServer) -> Vec<String> {
    let tasks = format!("/proc/{}/task", server.pid());
    let entries = std::fs::read_dir(&tasks).unwrap_or_else(|e| panic!("{tasks}: {e}"));
    entries
        .filter_map(|entry| std::fs::read_to_string(entry.ok()?.path().join("comm")).ok())
        .map(|name| name.trim_end().to_string())
        .collect()
}

#[test]
fn concurrent_single_row_inserts_all_commit_and_reach_a_subscriber() {
    let (setup, mut subscriber) = start();
    let (server, admin) = (&setup.server, setup.admin.as_str());
    let barrier = Barrier::new(CLIENTS);
    let changes = std::thread::scope(|scope| {
        for c in 0..CLIENTS {
            let barrier = &barrier;
            scope.spawn(move || {
                barrier.wait();
                for n in 0..ROWS_PER_CLIENT {
                    let id = 1 + c * ROWS_PER_CLIENT + n;
                    insert_ok(server, admin, id as i64, c as i64, n as i64);
                }
            });
        }
        // Read while the clients write: the subscriber's queue never fills.
        inserted_rows(&mut subscriber, CLIENTS * ROWS_PER_CLIENT)
    });

    let expected_ids: BTreeSet<i64> = (1..=(CLIENTS * ROWS_PER_CLIENT) as i64).collect();
    let changed_ids: BTreeSet<i64> = changes.keys().copied().collect();
    assert_eq!(
        changed_ids, expected_ids,
        "every insert reached the subscriber"
    );
    for (id, row) in &changes {
        let (c, n) = client_and_n(row);
        assert_eq!(1 + c * ROWS_PER_CLIENT as i64 + n, *id, "{row:?}");
    }

    let stored = rows(server, admin, "SELECT id, client, n FROM app.events", &[]);
    assert_eq!(stored.len(), 1 + CLIENTS * ROWS_PER_CLIENT);
    let mut stored_ids = BTreeSet::new();
    for row in &stored {
        let row = row.as_object().expect("a row is an object");
        let id = row["id"].as_i64().expect("integer id");
        assert!(stored_ids.insert(id), "id {id} stored twice");
        if id > 0 {
            let (c, n) = client_and_n(row);
            assert_eq!(1 + c * ROWS_PER_CLIENT as i64 + n, id, "{row:?}");
        }
    }
    assert_eq!(stored_ids.len(), expected_ids.len() + 1);
    assert!(stored_ids.iter().skip(1).eq(expected_ids.iter()));

    // The queued path ran: only a commit awaited without a thread starts this thread.
    let threads = thread_names(server);
    assert!(
        threads.iter().any(|name| name == "strand-log-comm"),
        "no strand-log-commit thread in the server: no INSERT took the queued path \
         ({threads:?})"
    );
}

#[test]
fn racing_inserts_of_one_key_admit_exactly_one() {
    const KEYS: i64 = 5;
    let (setup, mut subscriber) = start();
    let (server, admin) = (&setup.server, setup.admin.as_str());
    let mut winners = BTreeMap::new();
    for key in 1..=KEYS {
        let barrier = Barrier::new(CLIENTS);
        let answers: Vec<_> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..CLIENTS)
                .map(|c| {
                    let barrier = &barrier;
                    scope.spawn(move || {
                        barrier.wait();
                        let text = format!(
                            "INSERT INTO app.events (id, client, n) VALUES ({key}, {c}, {key})"
                        );
                        sql(server, admin, &text, &[])
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|t| t.join().expect("client thread"))
                .collect()
        });
        let mut won = Vec::new();
        for (c, answer) in answers.iter().enumerate() {
            if answer.status == 200 {
                let body = answer.json();
                assert_eq!(body["status"], "success", "{body}");
                assert_eq!(body["results"][0]["row_count"], 1, "{body}");
                won.push(c as i64);
            } else {
                let error = assert_client_error(answer, "duplicate_key");
                let message = error["message"].as_str().unwrap_or_default();
                assert!(message.contains("app.events"), "{error}");
            }
        }
        assert_eq!(
            won.len(),
            1,
            "key {key}: {} of {CLIENTS} INSERTs won",
            won.len()
        );
        winners.insert(key, won[0]);
    }

    let stored = rows(
        server,
        admin,
        "SELECT id, client FROM app.events WHERE id > 0",
        &[],
    );
    assert_eq!(stored.len(), KEYS as usize, "one row per key: {stored:?}");
    let stored: BTreeMap<i64, i64> = stored
        .iter()
        .map(|row| {
            let id = row["id"].as_i64().expect("integer id");
            let client = row["client"].as_i64().expect("integer client");
            (id, client)
        })
        .collect();
    assert_eq!(stored, winners, "one row per key, the winner's");

    // The subscriber saw one insert per key, the winner's, and nothing of the losers.
    let changes = inserted_rows(&mut subscriber, KEYS as usize);
    let changed: BTreeMap<i64, i64> = changes
        .iter()
        .map(|(id, row)| (*id, client_and_n(row).0))
        .collect();
    assert_eq!(changed, winners, "one change per key, the winner's");
}
