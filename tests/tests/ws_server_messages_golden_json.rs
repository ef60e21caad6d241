//! Golden raw JSON of every server message of `GET /v1/ws` (docs/websocket.md, "Messages at
//! a glance"), through the real binary: `auth_success`, `auth_error`, `subscription_ack`,
//! `initial_data_batch`, `change` (insert, update with `old_rows`, delete), `error` with and
//! without `subscription_id` (and the ones DDL sends), `error` `resume_too_old` with
//! `lowest_seq`, `error` `slow_consumer`, `pong`, and a keyed catch-up's ack (`"resume":
//! "keyed"`) and changes (a delete naming only the key).
//!
//! The hole this closes (issue 16): the other end-to-end WebSocket tests decode the server's
//! frames with the server's own codec (`strand_wire::ServerMessage::decode`), so a codec bug
//! cancels out: a renamed field, a `_seq` written as a number, a missing or extra field
//! would be read back by the same code that wrote it. Here each frame is read as raw text,
//! parsed as plain JSON and compared whole with a literal written in this file from the
//! documentation: field names, value types (every `_seq`, `snapshot_end_seq` and
//! `lowest_seq` a string of decimal digits) and no field more or less. Values a test cannot
//! know in advance come from elsewhere: `_seq`s of rows from an HTTP SELECT, the `_seq` of a
//! delete (which no SELECT shows) bounded by the versions before and after it.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use strand_tests::ws::{subscribe_message, WsClient, WsEnd};
use strand_tests::ADMIN_PASSWORD;
use strand_tests::{bearer, rows, sql_ok, AdminServer, ServerOptions, StrandServer};
use strand_wire::ClientMessage;
use tungstenite::protocol::frame::coding::CloseCode;

const TICKETS: &str = "CREATE TABLE app.tickets (id BIGINT PRIMARY KEY, title TEXT, \
    status TEXT) WITH (TYPE = 'SHARED'); \
    CREATE USER 'alice' WITH PASSWORD 'pw-alice' ROLE user; \
    GRANT SELECT ON app.tickets TO alice";

/// The next frame, which must be a text frame holding `expected` exactly.
#[track_caller]
fn expect_json(client: &mut WsClient, expected: Value) {
    let got = client.recv_json();
    assert_eq!(got, expected, "\n got:  {got}\n want: {expected}");
}

/// A `_seq` as the server must write it: a string of decimal digits.
fn seq_text(value: &Value) -> u64 {
    match value.as_str() {
        Some(text) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => {
            text.parse().expect("fits u64")
        }
        _ => panic!("a _seq that is not a string of decimal digits: {value}"),
    }
}

/// `_seq` of ticket `id` by HTTP SELECT.
fn current_seq(setup: &AdminServer, id: i64) -> String {
    let text = format!("SELECT _seq FROM app.tickets WHERE id = {id}");
    let found = rows(&setup.server, &setup.admin, &text, &[]);
    let seq = &found.first().unwrap_or_else(|| panic!("no ticket {id}"))["_seq"];
    seq_text(seq).to_string()
}

/// A row of `app.tickets` as a subscription sends it.
fn ticket(id: u64, title: &str, status: &str, seq: &str) -> Value {
    json!({"id": id, "title": title, "status": status, "_seq": seq})
}

fn authenticate(user: &str, password: &str) -> ClientMessage {
    ClientMessage::Authenticate {
        method: strand_wire::AuthMethod::Basic,
        username: Some(user.to_owned()),
        password: Some(password.to_owned()),
        token: None,
    }
}

#[test]
fn connection_messages_are_the_documented_json() {
    let setup = AdminServer::with_app(TICKETS);
    let mut client = WsClient::connect(&setup.server, None);
    // Before authentication: an error about the connection, without subscription_id.
    client.send(&ClientMessage::Ping);
    expect_json(
        &mut client,
        json!({"type": "error", "code": "not_authenticated",
               "message": "authenticate first: {\"type\":\"authenticate\", ...}"}),
    );
    client.send_text(r#"{"type":"authenticate","method":"basic","username":"alice"}"#);
    expect_json(
        &mut client,
        json!({"type": "auth_error", "message": "method basic needs username and password"}),
    );
    client.send(&authenticate("alice", "pw-alice"));
    expect_json(
        &mut client,
        json!({"type": "auth_success", "user": "alice", "role": "user"}),
    );
    client.send(&ClientMessage::Ping);
    expect_json(&mut client, json!({"type": "pong"}));
    client.send_text("not json");
    let invalid = client.recv_json();
    // The message ends with the JSON parser's own words.
    let message = invalid["message"].clone();
    let text = message.as_str().unwrap_or_default();
    assert!(text.starts_with("not a JSON object: "), "{invalid}");
    assert_eq!(
        invalid,
        json!({"type": "error", "code": "invalid_json", "message": message})
    );

    // The upgrade's Authorization header: the server speaks first.
    let bearer = bearer(&setup.server, "admin", ADMIN_PASSWORD);
    let mut admin = WsClient::connect(&setup.server, Some(&bearer));
    expect_json(
        &mut admin,
        json!({"type": "auth_success", "user": "admin", "role": "system"}),
    );

    let mut wrong = WsClient::connect(&setup.server, None);
    wrong.send(&authenticate("alice", "wrong"));
    expect_json(
        &mut wrong,
        json!({"type": "auth_error", "message": "invalid user name or password"}),
    );
    match wrong.next_within(Duration::from_secs(5)) {
        Err(WsEnd::Closed(Some((code, reason)))) => {
            assert_eq!(
                (code, reason.as_str()),
                (CloseCode::Policy, "authentication failed")
            )
        }
        other => panic!("expected a 1008 close, got {other:?}"),
    }
}

#[test]
fn subscription_messages_are_the_documented_json() {
    let setup = AdminServer::with_app(TICKETS);
    setup.exec(
        "INSERT INTO app.tickets (id, title, status) VALUES (1, 'Jam', 'open'), \
         (2, 'Broken chair', 'open'), (3, 'Lamp', 'closed')",
    );
    let seqs: Vec<String> = (1..=3).map(|id| current_seq(&setup, id)).collect();
    let boundary = seqs
        .iter()
        .map(|s| s.parse::<u64>().unwrap())
        .max()
        .unwrap();
    let mut client = WsClient::connect(&setup.server, None);
    client.send(&authenticate("alice", "pw-alice"));
    client.recv_json();

    let sql = "SELECT id, title, status FROM app.tickets WHERE status = 'open'";
    client.send(&subscribe_message("open", sql, Some(1), None));
    expect_json(
        &mut client,
        json!({"type": "subscription_ack", "subscription_id": "open",
               "schema": [{"name": "id", "type": "BIGINT"}, {"name": "title", "type": "TEXT"},
                          {"name": "status", "type": "TEXT"}, {"name": "_seq", "type": "BIGINT"}],
               "snapshot_end_seq": boundary.to_string()}),
    );
    let snapshot_rows = [
        ticket(1, "Jam", "open", &seqs[0]),
        ticket(2, "Broken chair", "open", &seqs[1]),
    ];
    // Snapshot rows come in no particular order: batch 0 holds one of the two.
    let batch = |num: u64, row: &Value, has_more: bool| {
        let status = if has_more { "loading" } else { "ready" };
        json!({"type": "initial_data_batch", "subscription_id": "open", "rows": [row],
               "batch_control": {"batch_num": num, "status": status, "has_more": has_more,
                                 "snapshot_end_seq": boundary.to_string()}})
    };
    let first = client.recv_json();
    let (now, later) = match first == batch(0, &snapshot_rows[0], true) {
        true => (&snapshot_rows[0], &snapshot_rows[1]),
        false => (&snapshot_rows[1], &snapshot_rows[0]),
    };
    assert_eq!(first, batch(0, now, true), "\n got: {first}");
    client.send(&ClientMessage::NextBatch {
        subscription_id: Some("open".into()),
    });
    expect_json(&mut client, batch(1, later, false));
    client.send(&ClientMessage::NextBatch {
        subscription_id: Some("open".into()),
    });
    expect_json(
        &mut client,
        json!({"type": "error", "subscription_id": "open", "code": "no_pending_batch",
               "message": "subscription 'open' has no snapshot batch pending"}),
    );

    setup.exec("INSERT INTO app.tickets (id, title, status) VALUES (4, 'Door', 'open')");
    let inserted = current_seq(&setup, 4);
    expect_json(
        &mut client,
        json!({"type": "change", "subscription_id": "open", "change_type": "insert",
               "rows": [ticket(4, "Door", "open", &inserted)]}),
    );
    setup.exec("UPDATE app.tickets SET title = 'Door (front)' WHERE id = 4");
    let updated = current_seq(&setup, 4);
    expect_json(
        &mut client,
        json!({"type": "change", "subscription_id": "open", "change_type": "update",
               "rows": [ticket(4, "Door (front)", "open", &updated)],
               "old_rows": [ticket(4, "Door", "open", &inserted)]}),
    );
    // Leaving the filter is a delete carrying the last-seen row with the deleting _seq,
    // which lies between the version it ends and the next write.
    setup.exec("UPDATE app.tickets SET status = 'closed' WHERE id = 2");
    let deleted = client.recv_json();
    let delete_seq = deleted["rows"][0]["_seq"].clone();
    setup.exec("INSERT INTO app.tickets (id, title, status) VALUES (5, 'after', 'closed')");
    let after: u64 = current_seq(&setup, 5).parse().unwrap();
    let between = seq_text(&delete_seq);
    assert!(
        between > seqs[1].parse().unwrap() && between < after,
        "{deleted}"
    );
    assert_eq!(
        deleted,
        json!({"type": "change", "subscription_id": "open", "change_type": "delete",
               "rows": [ticket(2, "Broken chair", "open", delete_seq.as_str().unwrap())]}),
    );

    // An error about one subscription carries its id.
    client.send(&subscribe_message(
        "bad",
        "SELECT nope FROM app.tickets",
        None,
        None,
    ));
    expect_json(
        &mut client,
        json!({"type": "error", "subscription_id": "bad", "code": "unknown_column",
               "message": "column nope does not exist in table app.tickets (line 1, column 8)"}),
    );
}

#[test]
fn ddl_endings_are_the_documented_json() {
    let setup = AdminServer::with_app(TICKETS);
    let mut client = WsClient::connect(&setup.server, Some(&setup.admin));
    client.recv_json();
    for (id, sql) in [
        ("star", "SELECT * FROM app.tickets"),
        ("named", "SELECT id FROM app.tickets"),
    ] {
        client.send(&subscribe_message(id, sql, None, None));
        client.recv_json();
        client.recv_json();
    }
    setup.exec("ALTER TABLE app.tickets ADD COLUMN body TEXT");
    expect_json(
        &mut client,
        json!({"type": "error", "subscription_id": "star", "code": "schema_changed",
               "message": "table app.tickets has new columns; this SELECT * subscription has \
                           ended, subscribe again to receive them"}),
    );
    setup.exec("DROP TABLE app.tickets");
    expect_json(
        &mut client,
        json!({"type": "error", "subscription_id": "named", "code": "table_dropped",
               "message": "table app.tickets was dropped; the subscription has ended"}),
    );
}

#[test]
fn resume_too_old_carries_lowest_seq_as_a_string() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = ServerOptions {
        admin_password: Some(ADMIN_PASSWORD.to_string()),
        args: ["--segment-bytes", "4096", "--retention-interval-ms", "100"]
            .map(String::from)
            .to_vec(),
    };
    let server = StrandServer::start(dir.path(), &options);
    let admin = bearer(&server, "admin", ADMIN_PASSWORD);
    let insert = |ids: std::ops::Range<i64>| {
        let values: Vec<String> = ids
            .map(|id| format!("({id}, '{}')", "x".repeat(300)))
            .collect();
        let text = format!(
            "INSERT INTO app.typing (id, body) VALUES {}",
            values.join(", ")
        );
        sql_ok(&server, &admin, &text, &[]);
    };
    sql_ok(
        &server,
        &admin,
        "CREATE NAMESPACE app; CREATE TABLE app.typing (id BIGINT PRIMARY KEY, body TEXT) \
         WITH (TYPE = 'STREAM', TTL_SECONDS = 1)",
        &[],
    );
    insert(0..6);
    let first = rows(&server, &admin, "SELECT _seq FROM app.typing", &[]);
    let early = first
        .iter()
        .map(|row| seq_text(&row["_seq"]))
        .min()
        .unwrap();
    for batch in 1..12 {
        insert(batch * 6..batch * 6 + 6);
    }
    // Past the TTL, new rows seal the old segments; retention removes them.
    std::thread::sleep(Duration::from_millis(1_500));
    insert(1_000..1_003);
    let deadline = Instant::now() + Duration::from_secs(15);
    let refusal = loop {
        let mut client = WsClient::connect(&server, Some(&admin));
        client.recv_json();
        let sql = "SELECT id, body FROM app.typing";
        client.send(&subscribe_message("typing", sql, None, Some(early)));
        let answer = client.recv_json();
        if answer["type"] == "error" {
            break answer;
        }
        assert!(Instant::now() < deadline, "no resume_too_old: {answer}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let lowest = refusal["lowest_seq"].clone();
    assert!(seq_text(&lowest) > early, "{refusal}");
    let lowest = lowest.as_str().unwrap();
    assert_eq!(
        refusal,
        json!({"type": "error", "subscription_id": "typing", "code": "resume_too_old",
               "message": format!("the history after this _seq is no longer retained; resume \
                                   from {lowest} or later, or subscribe without from_seq_id \
                                   for a fresh snapshot"),
               "lowest_seq": lowest}),
        "\n got: {refusal}"
    );
}

#[test]
fn slow_consumer_error_is_the_documented_json() {
    let setup = AdminServer::with_app(
        "CREATE TABLE app.feed (id BIGINT PRIMARY KEY, body TEXT) WITH (TYPE = 'SHARED')",
    );
    let mut slow = WsClient::connect(&setup.server, Some(&setup.admin));
    slow.recv_json();
    for n in 0..8 {
        let id = format!("s{n}");
        slow.send(&subscribe_message(
            &id,
            "SELECT id, body FROM app.feed",
            None,
            None,
        ));
        slow.recv_json();
        slow.recv_json();
    }
    // The client reads nothing while about 32 MB of changes are due (8 subscriptions).
    let body = "x".repeat(1000);
    for first in (1..=4_000).step_by(200) {
        let values: Vec<String> = (first..first + 200)
            .map(|id| format!("({id}, '{body}')"))
            .collect();
        setup.exec(&format!(
            "INSERT INTO app.feed VALUES {}",
            values.join(", ")
        ));
    }
    let slow_error = loop {
        let message = slow.recv_json();
        if message["type"] != "change" {
            break message;
        }
    };
    assert_eq!(
        slow_error,
        json!({"type": "error", "code": "slow_consumer",
               "message": "the client did not read fast enough; resume from the last _seq \
                           received"}),
    );
}

#[test]
fn keyed_catch_up_ack_and_changes_are_the_documented_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = [
        "--segment-bytes",
        "4096",
        "--compaction-interval-ms",
        "100",
        "--compaction-min-bytes",
        "1",
    ];
    let options = ServerOptions {
        admin_password: Some(ADMIN_PASSWORD.to_string()),
        args: args.map(String::from).to_vec(),
    };
    let server = StrandServer::start(dir.path(), &options);
    let admin = bearer(&server, "admin", ADMIN_PASSWORD);
    let exec = |text: &str| {
        sql_ok(&server, &admin, text, &[]);
    };
    let seq = |id: i64| {
        let text = format!("SELECT _seq FROM app.tickets WHERE id = {id}");
        let found = rows(&server, &admin, &text, &[]);
        seq_text(&found[0]["_seq"])
    };
    exec(
        "CREATE NAMESPACE app; CREATE TABLE app.tickets (id BIGINT PRIMARY KEY, title TEXT, \
         status TEXT) WITH (TYPE = 'SHARED'); INSERT INTO app.tickets (id, title, status) \
         VALUES (1, 'Jam', 'open'), (2, 'Broken chair', 'open'), (9, '', 'closed')",
    );
    let sql = "SELECT id, title, status FROM app.tickets WHERE status = 'open'";
    let mut client = WsClient::connect(&server, Some(&admin));
    client.recv_json();
    client.send(&subscribe_message("t", sql, None, None));
    let from = seq_text(&client.recv_json()["snapshot_end_seq"]);
    client.close();
    // While the client is away: ticket 1 changes, ticket 2 is deleted, and many versions of
    // ticket 9 (never open) seal segments for compaction, before and after those.
    let filler = "x".repeat(600);
    let churn = |rounds: usize| {
        for round in 0..rounds {
            exec(&format!(
                "UPDATE app.tickets SET title = '{filler}{round}' WHERE id = 9"
            ));
        }
    };
    churn(12);
    exec("UPDATE app.tickets SET title = 'Jam (cleared)' WHERE id = 1");
    exec("DELETE FROM app.tickets WHERE id = 2");
    churn(12);
    let (updated, last) = (seq(1), seq(9));

    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut client, ack) = loop {
        let mut client = WsClient::connect(&server, Some(&admin));
        client.recv_json();
        client.send(&subscribe_message("t", sql, None, Some(from)));
        let ack = client.recv_json();
        if ack.get("resume").is_some() {
            break (client, ack);
        }
        assert!(Instant::now() < deadline, "no keyed catch-up: {ack}");
        client.close();
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        ack,
        json!({"type": "subscription_ack", "subscription_id": "t",
               "schema": [{"name": "id", "type": "BIGINT"}, {"name": "title", "type": "TEXT"},
                          {"name": "status", "type": "TEXT"}, {"name": "_seq", "type": "BIGINT"}],
               "snapshot_end_seq": last.to_string(), "resume": "keyed"}),
        "\n got: {ack}"
    );
    // In _seq order of each key's newest version: ticket 1's, ticket 2's tombstone (a delete
    // naming the key only; its _seq lies between), ticket 9's (no longer matching: a delete).
    let change = |change_type: &str, row: Value| {
        json!({"type": "change", "subscription_id": "t", "change_type": change_type,
               "rows": [row]})
    };
    let cleared = ticket(1, "Jam (cleared)", "open", &updated.to_string());
    expect_json(&mut client, change("insert", cleared));
    let deleted = client.recv_json();
    let tombstone = deleted["rows"][0]["_seq"].clone();
    assert!(
        (updated + 1..last).contains(&seq_text(&tombstone)),
        "{deleted}"
    );
    assert_eq!(
        deleted,
        change("delete", json!({"id": 2, "_seq": tombstone})),
        "\n got: {deleted}"
    );
    let gone = json!({"id": 9, "_seq": last.to_string()});
    expect_json(&mut client, change("delete", gone));
}
