//! Live subscription changes end to end (SPEC section 5, docs/realtime.md): changes follow
//! the filter (a row entering it is an `insert`, a row leaving it a `delete` carrying the
//! last-seen row with the deleting `_seq`), `unsubscribe` stops them and frees the id,
//! subscriptions of one connection are independent, and a USER table's subscription, live or
//! resumed, never carries another user's rows.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use strand_tests::ws::{WsClient, WsEnd};
use strand_tests::{bearer, rows, sql_ok, AdminServer};
use strand_wire::{
    ChangeType, ClientMessage, Row, SeqText, ServerMessage, SubscribeOptions, Subscription,
};

const QUIET: Duration = Duration::from_millis(300);
const TICKETS: &str =
    "CREATE TABLE app.tickets (id BIGINT PRIMARY KEY, title TEXT, status TEXT) WITH (TYPE = 'SHARED')";
const OPEN: &str = "SELECT id, title, status FROM app.tickets WHERE status = 'open'";

#[test]
fn live_changes_follow_the_filter() {
    let setup = start(TICKETS);
    exec(
        &setup,
        "INSERT INTO app.tickets (id, title, status) VALUES (1, 'a', 'open'), (2, 'b', 'closed')",
    );
    let mut client = admin_ws(&setup);
    let (end, snapshot) = snapshot(&mut client, "open", OPEN);
    assert_eq!(snapshot.keys().copied().collect::<Vec<_>>(), [1]);
    let mut seqs = vec![end];

    exec(
        &setup,
        "INSERT INTO app.tickets (id, title, status) VALUES (3, 'c', 'open')",
    );
    let inserted = expect_change(&mut client, "open", ChangeType::Insert);
    assert_eq!(fields(&inserted.row), (3, "c", "open"));
    seqs.push(seq(&inserted.row));

    exec(
        &setup,
        "INSERT INTO app.tickets (id, title, status) VALUES (4, 'd', 'closed')",
    );
    client.expect_silence(QUIET);

    exec(&setup, "UPDATE app.tickets SET title = 'c2' WHERE id = 3");
    let updated = expect_change(&mut client, "open", ChangeType::Update);
    assert_eq!(fields(&updated.row), (3, "c2", "open"));
    assert_eq!(
        updated.old.as_ref(),
        Some(&inserted.row),
        "old_rows is the previous version"
    );
    seqs.push(seq(&updated.row));

    exec(
        &setup,
        "UPDATE app.tickets SET status = 'closed' WHERE id = 3",
    );
    let left = expect_change(&mut client, "open", ChangeType::Delete);
    assert_eq!(
        fields(&left.row),
        (3, "c2", "open"),
        "a delete carries the last-seen row"
    );
    assert_eq!(
        seq(&left.row),
        current_seq(&setup, 3),
        "with the deleting change's _seq"
    );
    seqs.push(seq(&left.row));

    // A closed row that stays closed sends nothing: the next message is the re-opened row.
    exec(&setup, "UPDATE app.tickets SET title = 'b2' WHERE id = 2");
    exec(
        &setup,
        "UPDATE app.tickets SET status = 'open' WHERE id = 4",
    );
    let entered = expect_change(&mut client, "open", ChangeType::Insert);
    assert_eq!(fields(&entered.row), (4, "d", "open"));
    assert_eq!(seq(&entered.row), current_seq(&setup, 4));
    seqs.push(seq(&entered.row));

    exec(&setup, "DELETE FROM app.tickets WHERE id = 1");
    let deleted = expect_change(&mut client, "open", ChangeType::Delete);
    assert_eq!(fields(&deleted.row), (1, "a", "open"));
    seqs.push(seq(&deleted.row));
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "_seq not strictly increasing: {seqs:?}"
    );
    client.expect_silence(QUIET);
}
#[test]
fn unsubscribe_stops_changes_and_frees_the_id() {
    let setup = start(TICKETS);
    let mut client = admin_ws(&setup);
    let all = "SELECT id, title FROM app.tickets";
    snapshot(&mut client, "u", all);
    exec(
        &setup,
        "INSERT INTO app.tickets (id, title, status) VALUES (1, 'a', 'open')",
    );
    expect_change(&mut client, "u", ChangeType::Insert);
    client.send(&ClientMessage::Unsubscribe {
        subscription_id: "u".into(),
    });
    exec(
        &setup,
        "INSERT INTO app.tickets (id, title, status) VALUES (2, 'b', 'open')",
    );
    client.expect_silence(QUIET);

    let (_, again) = snapshot(&mut client, "u", all);
    assert_eq!(again.keys().copied().collect::<Vec<_>>(), [1, 2]);
    exec(
        &setup,
        "INSERT INTO app.tickets (id, title, status) VALUES (3, 'c', 'open')",
    );
    let change = expect_change(&mut client, "u", ChangeType::Insert);
    assert_eq!(id(&change.row), 3);
    client.expect_silence(QUIET);
}
#[test]
fn two_subscriptions_on_one_connection_get_their_own_changes() {
    let setup = start(TICKETS);
    let mut client = admin_ws(&setup);
    snapshot(&mut client, "open", OPEN);
    snapshot(&mut client, "closed", &OPEN.replace("'open'", "'closed'"));
    exec(
        &setup,
        "INSERT INTO app.tickets (id, title, status) VALUES (1, 'a', 'open')",
    );
    assert_eq!(
        fields(&expect_change(&mut client, "open", ChangeType::Insert).row),
        (1, "a", "open")
    );
    exec(
        &setup,
        "INSERT INTO app.tickets (id, title, status) VALUES (2, 'b', 'closed')",
    );
    assert_eq!(
        fields(&expect_change(&mut client, "closed", ChangeType::Insert).row),
        (2, "b", "closed")
    );

    exec(
        &setup,
        "UPDATE app.tickets SET status = 'closed' WHERE id = 1",
    );
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
        (both[0].0.as_str(), both[0].1, fields(&both[0].2)),
        ("closed", ChangeType::Insert, (1, "a", "closed"))
    );
    assert_eq!(
        (both[1].0.as_str(), both[1].1, fields(&both[1].2)),
        ("open", ChangeType::Delete, (1, "a", "open"))
    );
    assert_eq!(seq(&both[0].2), seq(&both[1].2), "one write, one _seq");
    client.expect_silence(QUIET);
}
#[test]
fn a_user_table_subscription_never_carries_another_users_rows() {
    let setup = start(
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
        (id(&change.row), &change.row["body"]),
        (4, &Value::from("a4"))
    );
    write(&bob, "DELETE FROM app.notes WHERE id = 2");
    client.expect_silence(QUIET);

    client.send(&subscribe("history", naming_bobs, None, Some(1)));
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
                        id(&row),
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

/// A change of one row.
struct Change {
    kind: ChangeType,
    row: Row,
    old: Option<Row>,
}

/// A server with namespace `app` and the tables (and users) of `ddl`.
fn start(ddl: &str) -> AdminServer {
    let setup = AdminServer::start();
    exec(&setup, &format!("CREATE NAMESPACE app; {ddl}"));
    setup
}

fn exec(setup: &AdminServer, text: &str) {
    sql_ok(&setup.server, &setup.admin, text, &[]);
}

/// The administrator's connection, authenticated by the upgrade's header.
fn admin_ws(setup: &AdminServer) -> WsClient {
    let mut client = WsClient::connect(&setup.server, Some(&setup.admin));
    match client.recv() {
        ServerMessage::AuthSuccess { .. } => client,
        other => panic!("expected auth_success, got {other:?}"),
    }
}

fn subscribe(id: &str, sql: &str, batch_size: Option<u32>, from: Option<u64>) -> ClientMessage {
    let options = SubscribeOptions {
        batch_size,
        from_seq_id: from.map(SeqText),
    };
    ClientMessage::Subscribe {
        subscription: Subscription {
            id: id.into(),
            sql: sql.into(),
            options,
        },
    }
}

fn next_batch(id: &str) -> ClientMessage {
    ClientMessage::NextBatch {
        subscription_id: id.into(),
    }
}

/// Subscribe and page through the snapshot: the ack's boundary and the rows by id.
fn snapshot(client: &mut WsClient, id: &str, sql: &str) -> (u64, BTreeMap<i64, Row>) {
    client.send(&subscribe(id, sql, Some(100), None));
    let end = expect_ack(client, id);
    let mut state = BTreeMap::new();
    loop {
        let (batch, control) = expect_batch(client, id);
        state.extend(batch.into_iter().map(|row| (self::id(&row), row)));
        if !control.has_more {
            return (end, state);
        }
        client.send(&next_batch(id));
    }
}

fn expect_ack(client: &mut WsClient, id: &str) -> u64 {
    match client.recv() {
        ServerMessage::SubscriptionAck {
            subscription_id,
            snapshot_end_seq,
            ..
        } if subscription_id == id => snapshot_end_seq.0,
        other => panic!("expected subscription_ack for {id}, got {other:?}"),
    }
}

fn expect_batch(client: &mut WsClient, id: &str) -> (Vec<Row>, strand_wire::BatchControl) {
    match client.recv() {
        ServerMessage::InitialDataBatch {
            subscription_id,
            rows,
            batch_control,
        } if subscription_id == id => (rows, batch_control),
        other => panic!("expected initial_data_batch for {id}, got {other:?}"),
    }
}

fn next_change(client: &mut WsClient, id: &str) -> Change {
    match client.recv() {
        ServerMessage::Change {
            subscription_id,
            change_type,
            mut rows,
            old_rows,
        } if subscription_id == id => {
            assert_eq!(rows.len(), 1, "one change message per row");
            let old = old_rows.map(|mut old| {
                assert_eq!(old.len(), 1, "one old row per change");
                old.remove(0)
            });
            assert_eq!(
                old.is_some(),
                change_type == ChangeType::Update,
                "old_rows exactly on updates"
            );
            Change {
                kind: change_type,
                row: rows.remove(0),
                old,
            }
        }
        other => panic!("expected a change for {id}, got {other:?}"),
    }
}

fn expect_change(client: &mut WsClient, id: &str, kind: ChangeType) -> Change {
    let change = next_change(client, id);
    assert_eq!(change.kind, kind, "row {:?}", change.row);
    change
}

fn current_seq(setup: &AdminServer, key: i64) -> u64 {
    let text = format!("SELECT _seq FROM app.tickets WHERE id = {key}");
    let found = rows(&setup.server, &setup.admin, &text, &[]);
    seq(row_of(found.first().expect("the row exists")))
}

fn row_of(value: &Value) -> &Row {
    value
        .as_object()
        .unwrap_or_else(|| panic!("row is not an object: {value}"))
}

/// `_seq` of a row, which must be a string of digits.
fn seq(row: &Row) -> u64 {
    match row.get("_seq") {
        Some(Value::String(text)) => text
            .parse()
            .unwrap_or_else(|_| panic!("bad _seq in {row:?}")),
        _ => panic!("row without a string _seq: {row:?}"),
    }
}

fn id(row: &Row) -> i64 {
    row.get("id")
        .and_then(Value::as_i64)
        .unwrap_or_else(|| panic!("row without id: {row:?}"))
}

fn fields(row: &Row) -> (i64, &str, &str) {
    let text = |name: &str| {
        row.get(name)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no {name} in {row:?}"))
    };
    (id(row), text("title"), text("status"))
}
