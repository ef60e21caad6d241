//! A `subscribe` the server cannot serve gets `{"type":"error"}` with the subscription's id and
//! the code docs/realtime.md names (the SQL codes of the HTTP API, `unknown_table`, `forbidden`,
//! `duplicate_subscription`, `unsupported`, `limit_exceeded`), and `next_batch` or
//! `unsubscribe` for an id the connection does not have gets `unknown_subscription`. None of
//! these closes the connection or disturbs the subscriptions that work.

use strand_tests::ws::WsClient;
use strand_tests::{sql_ok, AdminServer};
use strand_wire::{codes, ClientMessage, ServerMessage, SubscribeOptions, Subscription};

#[test]
fn bad_sql_is_a_syntax_error_naming_the_position() {
    let (_setup, mut client) = start();
    let message = expect_sub_error(&mut client, "s1", "SELEC id FROM app.rooms", "syntax_error");
    assert!(!message.is_empty());
    // The second `=` is at column 37.
    let text = "SELECT id FROM app.rooms WHERE id = = 3";
    let message = expect_sub_error(&mut client, "s2", text, "syntax_error");
    assert!(message.contains("37"), "no position in {message:?}");
    expect_works(&mut client, "s1");
}

#[test]
fn unknown_table_is_unknown_table() {
    // docs/realtime.md, "Subscribe": the HTTP API's `unknown_table`.
    let (_setup, mut client) = start();
    let message = expect_sub_error(&mut client, "t", "SELECT id FROM app.nope", "unknown_table");
    assert!(message.contains("app.nope"), "{message:?}");
    expect_sub_error(
        &mut client,
        "t",
        "SELECT id FROM nowhere.t",
        "unknown_table",
    );
    expect_works(&mut client, "t");
}

#[test]
fn unknown_column_keeps_the_sql_code_of_the_http_api() {
    let (_setup, mut client) = start();
    let message = expect_sub_error(
        &mut client,
        "c",
        "SELECT id, nope FROM app.rooms",
        "unknown_column",
    );
    assert!(message.contains("nope"), "{message:?}");
    let text = "SELECT id FROM app.rooms WHERE missing = 1";
    let message = expect_sub_error(&mut client, "c", text, "unknown_column");
    assert!(message.contains("missing"), "{message:?}");
    let text = "SELECT id FROM app.rooms WHERE name = 1 +";
    expect_sub_error(&mut client, "c", text, "syntax_error");
    expect_works(&mut client, "c");
}

#[test]
fn a_user_subscribes_to_a_shared_table_only_with_a_select_grant() {
    let (setup, _admin_client) = start();
    let mut alice = WsClient::authenticated(&setup.server, "alice", "alice-pw");
    let text = "SELECT id, name FROM app.rooms";
    let message = expect_sub_error(&mut alice, "rooms", text, "forbidden");
    assert!(message.contains("app.rooms"), "{message:?}");
    ping_pong(&mut alice);

    let grant = "GRANT SELECT ON app.rooms TO 'alice'";
    sql_ok(&setup.server, &setup.admin, grant, &[]);
    alice.send(&subscribe("rooms", text, None));
    let ack = alice.recv();
    assert!(
        matches!(&ack, ServerMessage::SubscriptionAck { subscription_id, .. } if subscription_id == "rooms"),
        "expected subscription_ack after the grant, got {ack:?}"
    );
    match alice.recv() {
        ServerMessage::InitialDataBatch {
            subscription_id,
            rows,
            ..
        } => {
            assert_eq!(subscription_id, "rooms");
            let mut names: Vec<_> = rows.iter().map(|r| r["name"].clone()).collect();
            names.sort_by_key(|name| name.to_string());
            assert_eq!(names, ["attic", "lobby"]);
        }
        other => panic!("expected the snapshot of app.rooms, got {other:?}"),
    }
}

#[test]
fn a_second_subscription_with_an_active_id_is_refused_and_the_first_keeps_working() {
    let (setup, mut client) = start();
    expect_works(&mut client, "dup");
    let text = "SELECT id FROM app.rooms WHERE id = 1";
    expect_sub_error(&mut client, "dup", text, codes::DUPLICATE_SUBSCRIPTION);
    // The first subscription (all rooms) still gets its changes.
    let insert = "INSERT INTO app.rooms (id, name) VALUES (3, 'cellar')";
    sql_ok(&setup.server, &setup.admin, insert, &[]);
    match client.recv() {
        ServerMessage::Change {
            subscription_id,
            rows,
            ..
        } => {
            assert_eq!(subscription_id, "dup");
            assert_eq!(rows[0]["name"], "cellar");
        }
        other => panic!("expected the first subscription's change, got {other:?}"),
    }
}

#[test]
fn order_by_or_offset_without_limit_and_oversized_windows_are_unsupported() {
    // With LIMIT they make a top-K window (tests/tests/live_top_k_windows.rs).
    let (_setup, mut client) = start();
    for text in [
        "SELECT id, name FROM app.rooms ORDER BY id",
        "SELECT id, name FROM app.rooms OFFSET 1",
        "SELECT id, name FROM app.rooms WHERE id > 0 ORDER BY name DESC LIMIT 10001",
        "SELECT id, name FROM app.rooms ORDER BY name LIMIT 9999 OFFSET 2",
    ] {
        expect_sub_error(&mut client, "o", text, codes::UNSUPPORTED);
    }
    expect_works(&mut client, "o");
}

#[test]
fn batch_size_outside_1_to_10000_is_limit_exceeded() {
    let (_setup, mut client) = start();
    let text = "SELECT id FROM app.rooms";
    for size in [0, 10_001, u32::MAX] {
        client.send(&subscribe("b", text, Some(size)));
        expect_error(&mut client, Some("b"), codes::LIMIT_EXCEEDED);
    }
    client.send(&subscribe("b", text, Some(10_000)));
    let ack = client.recv();
    assert!(
        matches!(ack, ServerMessage::SubscriptionAck { .. }),
        "batch_size 10000 is allowed, got {ack:?}"
    );
    expect_batch(&mut client, "b");
    expect_works(&mut client, "b2");
}

#[test]
fn more_than_256_subscriptions_on_one_connection_is_limit_exceeded() {
    let (_setup, mut client) = start();
    let text = "SELECT id FROM app.empty";
    for n in 0..256 {
        let id = format!("s{n}");
        client.send(&subscribe(&id, text, None));
        match client.recv() {
            ServerMessage::SubscriptionAck { .. } => {}
            other => panic!("subscription {n}: expected an ack, got {other:?}"),
        }
        expect_batch(&mut client, &id);
    }
    client.send(&subscribe("one-too-many", text, None));
    expect_error(&mut client, Some("one-too-many"), codes::LIMIT_EXCEEDED);
    // Unsubscribing one makes room again.
    client.send(&ClientMessage::Unsubscribe {
        subscription_id: "s0".to_string(),
    });
    client.send(&subscribe("one-too-many", text, None));
    let ack = client.recv();
    assert!(
        matches!(&ack, ServerMessage::SubscriptionAck { subscription_id, .. } if subscription_id == "one-too-many"),
        "after an unsubscribe, expected an ack, got {ack:?}"
    );
}

#[test]
fn next_batch_and_unsubscribe_for_an_unknown_id_are_unknown_subscription() {
    let (_setup, mut client) = start();
    client.send(&ClientMessage::NextBatch {
        subscription_id: Some("ghost".to_string()),
    });
    expect_error(&mut client, Some("ghost"), codes::UNKNOWN_SUBSCRIPTION);
    client.send(&ClientMessage::Unsubscribe {
        subscription_id: "ghost".to_string(),
    });
    expect_error(&mut client, Some("ghost"), codes::UNKNOWN_SUBSCRIPTION);
    // An id that failed to subscribe is not a subscription either.
    expect_sub_error(&mut client, "bad", "SELECT id FROM", "syntax_error");
    client.send(&ClientMessage::Unsubscribe {
        subscription_id: "bad".to_string(),
    });
    expect_error(&mut client, Some("bad"), codes::UNKNOWN_SUBSCRIPTION);
    // Unsubscribing twice: the second is unknown.
    expect_works(&mut client, "real");
    for expect_unknown in [false, true] {
        client.send(&ClientMessage::Unsubscribe {
            subscription_id: "real".to_string(),
        });
        if expect_unknown {
            expect_error(&mut client, Some("real"), codes::UNKNOWN_SUBSCRIPTION);
        }
    }
    ping_pong(&mut client);
}

// ---- helpers ----

/// A server with `app.rooms` (SHARED, two rows), `app.empty` (SHARED), alice (role `user`),
/// and an administrator's authenticated connection.
fn start() -> (AdminServer, WsClient) {
    let setup = AdminServer::start();
    sql_ok(
        &setup.server,
        &setup.admin,
        "CREATE NAMESPACE app;
         CREATE TABLE app.rooms (id BIGINT PRIMARY KEY, name TEXT) WITH (TYPE = 'SHARED');
         CREATE TABLE app.empty (id BIGINT PRIMARY KEY) WITH (TYPE = 'SHARED');
         INSERT INTO app.rooms (id, name) VALUES (1, 'lobby'), (2, 'attic');
         CREATE USER 'alice' WITH PASSWORD 'alice-pw' ROLE user",
        &[],
    );
    let mut client = WsClient::connect(&setup.server, Some(&setup.admin));
    match client.recv() {
        ServerMessage::AuthSuccess { .. } => {}
        other => panic!("expected auth_success for the admin's header, got {other:?}"),
    }
    (setup, client)
}

fn subscribe(id: &str, sql: &str, batch_size: Option<u32>) -> ClientMessage {
    ClientMessage::Subscribe {
        subscription: Subscription {
            id: id.to_string(),
            sql: sql.to_string(),
            options: SubscribeOptions {
                batch_size,
                from_seq_id: None,
                bigint: None,
                params: Vec::new(),
                as_of_seq: None,
            },
        },
    }
}

/// Subscribe with `sql` and expect `error` `code` for `id`; the error's message.
fn expect_sub_error(client: &mut WsClient, id: &str, sql: &str, code: &str) -> String {
    client.send(&subscribe(id, sql, None));
    let message = expect_error(client, Some(id), code);
    assert!(!message.is_empty(), "{sql:?}: empty error message");
    message
}

fn expect_error(client: &mut WsClient, id: Option<&str>, code: &str) -> String {
    match client.recv() {
        ServerMessage::Error {
            subscription_id,
            code: got,
            message,
            ..
        } => {
            assert_eq!(got, code, "error for {id:?}: {message}");
            assert_eq!(subscription_id.as_deref(), id, "{code}: {message}");
            message
        }
        other => panic!("expected error {code} for {id:?}, got {other:?}"),
    }
}

/// An `initial_data_batch` for `id` that is the last one.
fn expect_batch(client: &mut WsClient, id: &str) {
    match client.recv() {
        ServerMessage::InitialDataBatch {
            subscription_id,
            batch_control,
            ..
        } => {
            assert_eq!(subscription_id, id);
            assert!(!batch_control.has_more, "{batch_control:?}");
        }
        other => panic!("expected the snapshot batch of {id}, got {other:?}"),
    }
}

/// After the errors, the connection serves: `id` subscribes to all of `app.rooms`.
fn expect_works(client: &mut WsClient, id: &str) {
    ping_pong(client);
    client.send(&subscribe(id, "SELECT id, name FROM app.rooms", None));
    match client.recv() {
        ServerMessage::SubscriptionAck {
            subscription_id, ..
        } => assert_eq!(subscription_id, id),
        other => panic!("expected subscription_ack for {id}, got {other:?}"),
    }
    expect_batch(client, id);
}

fn ping_pong(client: &mut WsClient) {
    client.send(&ClientMessage::Ping);
    match client.recv() {
        ServerMessage::Pong => {}
        other => panic!("expected pong, got {other:?}"),
    }
}
