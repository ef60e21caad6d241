//! Issue 16, defect 5: STREAM TTL and live results disagreed.
//!
//! The bug: when a STREAM row's TTL passed, live subscribers got nothing (their copy kept the
//! row forever), and a resume replayed rows that had already expired as inserts, so the
//! client's result no longer equalled the query. The fix: expiry writes a real delete (a
//! tombstone with its own `_seq`) for each row whose TTL passed, within the expiry sweep's
//! period (`--ttl-sweep-interval-ms`); subscribers receive it as a `delete`, a resume replays
//! the insert and then the delete, and a new snapshot no longer holds the row. Rows without a
//! primary key expire one by one the same way.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use strand_tests::ws::{expect_ack, expect_batch, row_seq, subscribe_message, WsClient};
use strand_tests::{bearer, rows, sql_ok, ServerOptions, StrandServer, ADMIN_PASSWORD};
use strand_wire::{ChangeType, Row, ServerMessage};

/// How long a delete may take after the TTL: the sweep period plus a slow CI machine.
const EXPIRY_DEADLINE: Duration = Duration::from_secs(10);

fn server(dir: &std::path::Path) -> (StrandServer, String) {
    let options = ServerOptions {
        admin_password: Some(ADMIN_PASSWORD.to_owned()),
        args: vec!["--ttl-sweep-interval-ms".into(), "100".into()],
    };
    let server = StrandServer::start(dir, &options);
    let admin = bearer(&server, "admin", ADMIN_PASSWORD);
    sql_ok(
        &server,
        &admin,
        "CREATE NAMESPACE app; \
         CREATE TABLE app.typing (id BIGINT PRIMARY KEY, who TEXT) \
             WITH (TYPE = 'STREAM', TTL_SECONDS = 1); \
         CREATE TABLE app.pings (who TEXT) WITH (TYPE = 'STREAM', TTL_SECONDS = 1)",
        &[],
    );
    (server, admin)
}

/// A client's copy of a result, keyed by the row's `_seq` of insertion (keyless tables have
/// nothing else), kept by applying changes; checks each change against the copy.
#[derive(Default)]
struct Copy {
    rows: BTreeMap<String, Row>,
    last_seq: u64,
}

impl Copy {
    fn apply(&mut self, kind: ChangeType, row: &Row, key: &str) {
        let seq = row_seq(row);
        assert!(
            seq > self.last_seq,
            "_seq strictly increases: {seq} after {}",
            self.last_seq
        );
        self.last_seq = seq;
        match kind {
            ChangeType::Insert => assert!(self.rows.insert(key.to_owned(), row.clone()).is_none()),
            ChangeType::Update => panic!("no updates here: {row:?}"),
            ChangeType::Delete => assert!(self.rows.remove(key).is_some(), "delete of {row:?}"),
        }
    }
}

/// The next change for `id`: (kind, row).
fn next_change(client: &mut WsClient, id: &str) -> (ChangeType, Row) {
    match client.recv() {
        ServerMessage::Change {
            subscription_id,
            change_type,
            mut rows,
            ..
        } if subscription_id == id && rows.len() == 1 => (change_type, rows.remove(0)),
        other => panic!("expected one change for {id}, got {other:?}"),
    }
}

fn who(row: &Row) -> String {
    row.get("who")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn expired_rows_leave_live_results_and_resumes_as_deletes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, admin) = server(dir.path());
    let mut client = WsClient::connect(&server, Some(&admin));
    client.recv_json(); // auth_success
    client.send(&subscribe_message(
        "typing",
        "SELECT id, who FROM app.typing",
        None,
        None,
    ));
    let boundary = expect_ack(&mut client, "typing");
    assert!(expect_batch(&mut client, "typing").0.is_empty());
    client.send(&subscribe_message(
        "pings",
        "SELECT who FROM app.pings",
        None,
        None,
    ));
    expect_ack(&mut client, "pings");
    expect_batch(&mut client, "pings");

    let written = Instant::now();
    sql_ok(
        &server,
        &admin,
        "INSERT INTO app.typing (id, who) VALUES (1, 'ann'), (2, 'bob'); \
         INSERT INTO app.pings (who) VALUES ('x'), ('y')",
        &[],
    );
    let (mut typing, mut pings) = (Copy::default(), Copy::default());
    // Two inserts each, then (after the TTL) two deletes each, in any interleaving of the
    // two subscriptions but in _seq order within each.
    for _ in 0..8 {
        let message = client
            .next_within(EXPIRY_DEADLINE)
            .unwrap_or_else(|end| panic!("a change within {EXPIRY_DEADLINE:?}, got {end:?}"));
        let ServerMessage::Change {
            subscription_id,
            change_type,
            rows,
            ..
        } = message
        else {
            panic!("expected a change, got {message:?}");
        };
        if change_type == ChangeType::Delete {
            assert!(
                written.elapsed() >= Duration::from_millis(900),
                "no row leaves before its TTL"
            );
        }
        let row = &rows[0];
        match subscription_id.as_str() {
            "typing" => typing.apply(change_type, row, &row["id"].to_string()),
            _ => pings.apply(change_type, row, &who(row)),
        }
    }
    assert!(
        typing.rows.is_empty() && pings.rows.is_empty(),
        "every row left"
    );
    client.expect_silence(Duration::from_millis(300));

    // The query agrees, and so does a new snapshot.
    assert!(rows(&server, &admin, "SELECT id FROM app.typing", &[]).is_empty());
    client.send(&subscribe_message(
        "again",
        "SELECT id, who FROM app.typing",
        None,
        None,
    ));
    expect_ack(&mut client, "again");
    assert!(expect_batch(&mut client, "again").0.is_empty());

    // A resume from before the inserts replays each insert and its delete: nothing
    // resurrected.
    client.send(&subscribe_message(
        "resumed",
        "SELECT id, who FROM app.typing",
        None,
        Some(boundary),
    ));
    expect_ack(&mut client, "resumed");
    let mut resumed = Copy {
        last_seq: boundary,
        ..Copy::default()
    };
    for _ in 0..4 {
        let (kind, row) = next_change(&mut client, "resumed");
        resumed.apply(kind, &row, &row["id"].to_string());
    }
    assert!(
        resumed.rows.is_empty(),
        "the resume ends with no row: {:?}",
        resumed.rows
    );
    assert_eq!(
        resumed.last_seq, typing.last_seq,
        "the same history as the live copy"
    );
    client.expect_silence(Duration::from_millis(300));
}
