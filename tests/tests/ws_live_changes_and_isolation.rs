//! Live subscription changes end to end (SPEC section 5, docs/realtime.md): changes follow
//! the filter (a row entering it is an `insert`, a row leaving it a `delete` carrying the
//! last-seen row with the deleting `_seq`), `unsubscribe` stops them and frees the id,
//! subscriptions of one connection are independent, and a USER table's subscription, live or
//! resumed, never carries another user's rows.

use std::time::Duration;

use serde_json::Value;
use strand_tests::ws::*;
use strand_tests::{bearer, rows, sql_ok, AdminServer};
use strand_wire::{ChangeType, ClientMessage, Row, ServerMessage};

const QUIET: Duration = Duration::from_millis(300);
const TICKETS: &str =
    "CREATE TABLE app.tickets (id BIGINT PRIMARY KEY, title TEXT, status TEXT) WITH (TYPE = 'SHARED')";
const OPEN: &str = "SELECT id, title, status FROM app.tickets WHERE status = 'open'";

#[test]
fn live_changes_follow_the_filter() {
    let setup = AdminServer::with_app(TICKETS);
    setup.exec(
        "INSERT INTO app.tickets (id, title, status) VALUES (1, 'a', 'open'), (2, 'b', 'closed')",
    );
    let mut client = admin_ws(&setup);
    let (end, snapshot) = snapshot(&mut client, "open", OPEN);
    assert_eq!(snapshot.keys().copied().collect::<Vec<_>>(), [1]);
    let mut seqs = vec![end];

    setup.exec("INSERT INTO app.tickets (id, title, status) VALUES (3, 'c', 'open')");
    let inserted = expect_change(&mut client, "open", ChangeType::Insert);
    assert_eq!(ticket_fields(&inserted.row), (3, "c", "open"));
    seqs.push(row_seq(&inserted.row));

    setup.exec("INSERT INTO app.tickets (id, title, status) VALUES (4, 'd', 'closed')");
    client.expect_silence(QUIET);

    setup.exec("UPDATE app.tickets SET title = 'c2' WHERE id = 3");
    let updated = expect_change(&mut client, "open", ChangeType::Update);
    assert_eq!(ticket_fields(&updated.row), (3, "c2", "open"));
    assert_eq!(
        updated.old.as_ref(),
        Some(&inserted.row),
        "old_rows is the previous version"
    );
    seqs.push(row_seq(&updated.row));

    setup.exec("UPDATE app.tickets SET status = 'closed' WHERE id = 3");
    let left = expect_change(&mut client, "open", ChangeType::Delete);
    assert_eq!(
        ticket_fields(&left.row),
        (3, "c2", "open"),
        "a delete carries the last-seen row"
    );
    assert_eq!(
        row_seq(&left.row),
        current_seq(&setup, 3),
        "with the deleting change's _seq"
    );
    seqs.push(row_seq(&left.row));

    // A closed row that stays closed sends nothing: the next message is the re-opened row.
    setup.exec("UPDATE app.tickets SET title = 'b2' WHERE id = 2");
    setup.exec("UPDATE app.tickets SET status = 'open' WHERE id = 4");
    let entered = expect_change(&mut client, "open", ChangeType::Insert);
    assert_eq!(ticket_fields(&entered.row), (4, "d", "open"));
    assert_eq!(row_seq(&entered.row), current_seq(&setup, 4));
    seqs.push(row_seq(&entered.row));

    setup.exec("DELETE FROM app.tickets WHERE id = 1");
    let deleted = expect_change(&mut client, "open", ChangeType::Delete);
    assert_eq!(ticket_fields(&deleted.row), (1, "a", "open"));
    seqs.push(row_seq(&deleted.row));
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "_seq not strictly increasing: {seqs:?}"
    );
    client.expect_silence(QUIET);
}

#[test]
fn unsubscribe_stops_changes_and_frees_the_id() {
    let setup = AdminServer::with_app(TICKETS);
    let mut client = admin_ws(&setup);
    let all = "SELECT id, title FROM app.tickets";
    snapshot(&mut client, "u", all);
    setup.exec("INSERT INTO app.tickets (id, title, status) VALUES (1, 'a', 'open')");
    expect_change(&mut client, "u", ChangeType::Insert);
    client.send(&ClientMessage::Unsubscribe {
        subscription_id: "u".into(),
    });
    setup.exec("INSERT INTO app.tickets (id, title, status) VALUES (2, 'b', 'open')");
    client.expect_silence(QUIET);

    let (_, again) = snapshot(&mut client, "u", all);
    assert_eq!(again.keys().copied().collect::<Vec<_>>(), [1, 2]);
    setup.exec("INSERT INTO app.tickets (id, title, status) VALUES (3, 'c', 'open')");
    let change = expect_change(&mut client, "u", ChangeType::Insert);
    assert_eq!(row_id(&change.row), 3);
    client.expect_silence(QUIET);
}

#[test]
fn two_subscriptions_on_one_connection_get_their_own_changes() {
    let setup = AdminServer::with_app(TICKETS);
    let mut client = admin_ws(&setup);
    snapshot(&mut client, "open", OPEN);
    snapshot(&mut client, "closed", &OPEN.replace("'open'", "'closed'"));
    setup.exec("INSERT INTO app.tickets (id, title, status) VALUES (1, 'a', 'open')");
    assert_eq!(
        ticket_fields(&expect_change(&mut client, "open", ChangeType::Insert).row),
        (1, "a", "open")
    );
    setup.exec("INSERT INTO app.tickets (id, title, status) VALUES (2, 'b', 'closed')");
    assert_eq!(
        ticket_fields(&expect_change(&mut client, "closed", ChangeType::Insert).row),
        (2, "b", "closed")
    );

    setup.exec("UPDATE app.tickets SET status = 'closed' WHERE id = 1");
    let mut both: Vec<(String, ChangeType, Row)> = (0..2)
        .map(|_| match client.recv() {
            ServerMessage::Change {
                subscription_id,
                change_type,
                mut rows,
                ..
            } => (subscription_id, change_type, rows.pop().expect("a row")),
            other => panic!("expected a change, got {other:?}"),
        })
        .collect();
    both.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        (both[0].0.as_str(), both[0].1, ticket_fields(&both[0].2)),
        ("closed", ChangeType::Insert, (1, "a", "closed"))
    );
    assert_eq!(
        (both[1].0.as_str(), both[1].1, ticket_fields(&both[1].2)),
        ("open", ChangeType::Delete, (1, "a", "open"))
    );
    assert_eq!(
        row_seq(&both[0].2),
        row_seq(&both[1].2),
        "one write, one _seq"
    );
    client.expect_silence(QUIET);
    // The gateway's metrics count this connection, its two subscriptions and four changes.
    let metrics = strand_tests::get(&setup.server.url("/metrics")).text;
    let value = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
    };
    assert_eq!(value("strand_ws_connections"), 1);
    assert_eq!(value("strand_subscriptions"), 2);
    assert_eq!(value("strand_changes_delivered_total"), 4);
    assert!(metrics.contains("strand_write_to_send_seconds_count{route=\"/v1/ws\"} 4"));
}

#[test]
fn a_user_table_subscription_never_carries_another_users_rows() {
    let setup = AdminServer::with_app(
        "CREATE TABLE app.notes (id BIGINT PRIMARY KEY, body TEXT) WITH (TYPE = 'USER');
         CREATE USER 'alice' WITH PASSWORD 'alice-pw' ROLE user;
         CREATE USER 'bob' WITH PASSWORD 'bob-pw' ROLE user",
    );
    let alice = bearer(&setup.server, "alice", "alice-pw");
    let bob = bearer(&setup.server, "bob", "bob-pw");
    let write = |auth: &str, text: &str| {
        sql_ok(&setup.server, auth, text, &[]);
    };
    write(
        &alice,
        "INSERT INTO app.notes (id, body) VALUES (1, 'a1'), (2, 'a2'), (3, 'a3')",
    );
    write(
        &bob,
        "INSERT INTO app.notes (id, body) VALUES (1, 'b1'), (2, 'b2'), (3, 'b3'), (4, 'b4')",
    );

    let mut client = WsClient::connect(&setup.server, Some(&alice));
    assert!(matches!(client.recv(), ServerMessage::AuthSuccess { .. }));
    let naming_bobs = "SELECT id, body FROM app.notes WHERE id IN (1, 2, 3, 4, 5)";
    let (_, snapshot) = snapshot(&mut client, "mine", naming_bobs);
    let bodies: Vec<&str> = snapshot
        .values()
        .map(|row| row["body"].as_str().expect("body"))
        .collect();
    assert_eq!(bodies, ["a1", "a2", "a3"]);

    write(&bob, "INSERT INTO app.notes (id, body) VALUES (5, 'b5')");
    write(&bob, "UPDATE app.notes SET body = 'b1x' WHERE id = 1");
    write(&alice, "INSERT INTO app.notes (id, body) VALUES (4, 'a4')");
    let change = expect_change(&mut client, "mine", ChangeType::Insert);
    assert_eq!(
        (row_id(&change.row), &change.row["body"]),
        (4, &Value::from("a4"))
    );
    write(&bob, "DELETE FROM app.notes WHERE id = 2");
    client.expect_silence(QUIET);

    client.send(&subscribe_message("history", naming_bobs, None, Some(1)));
    expect_ack(&mut client, "history");
    let mut replayed = Vec::new();
    loop {
        match client.next_within(QUIET) {
            Ok(ServerMessage::Change {
                subscription_id,
                change_type,
                rows,
                ..
            }) => {
                assert_eq!(subscription_id, "history");
                for row in rows {
                    replayed.push((
                        change_type,
                        row_id(&row),
                        row["body"].as_str().unwrap_or("?").to_string(),
                    ));
                }
            }
            Err(WsEnd::TimedOut) => break,
            other => panic!("expected alice's history, got {other:?}"),
        }
    }
    let insert = |n: i64, body: &str| (ChangeType::Insert, n, body.to_string());
    assert_eq!(
        replayed,
        [
            insert(1, "a1"),
            insert(2, "a2"),
            insert(3, "a3"),
            insert(4, "a4")
        ]
    );
}
// ---- helpers ----

fn current_seq(setup: &AdminServer, key: i64) -> u64 {
    let text = format!("SELECT _seq FROM app.tickets WHERE id = {key}");
    let found = rows(&setup.server, &setup.admin, &text, &[]);
    row_seq(json_row(found.first().expect("the row exists")))
}
