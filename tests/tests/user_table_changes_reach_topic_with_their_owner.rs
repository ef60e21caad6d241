//! Table to topic keeps whose row changed: alice and bob each insert id 1 into a USER table
//! that feeds a topic; `strand consume` (over QUIC) prints two messages with distinct keys
//! `["alice",1]` and `["bob",1]` and values naming the owner. A SHARED table's message keeps its
//! plain key and says `"owner":null`.
//!
//! Regression (issue 16, defect 4). The bug: a USER-table change became a message keyed by the
//! primary key alone, with nothing about the owner. Impact: alice's row 1 and bob's row 1
//! reached the topic as the same key (a consumer keeping the latest value per key mixed two
//! users' rows) and no consumer could tell whose change it was. The fix: the value envelope
//! carries `"owner"` and the key of a USER or STREAM table's message is
//! `["<owner>",<primary key as JSON>]` (docs/topics.md, "Table sources").

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use strand_tests::{bearer, sql_ok, strand_binary, AdminServer};

#[test]
fn two_users_same_primary_key_are_two_keys_with_their_owners() {
    let setup = AdminServer::with_app(
        "CREATE TABLE app.notes (id BIGINT PRIMARY KEY, body TEXT) WITH (TYPE = 'USER');
         CREATE TABLE app.rooms (id BIGINT PRIMARY KEY, name TEXT) WITH (TYPE = 'SHARED');
         CREATE TOPIC app.changes WITH (PARTITIONS = 3);
         ALTER TOPIC app.changes ADD SOURCE app.notes ON INSERT, UPDATE, DELETE;
         ALTER TOPIC app.changes ADD SOURCE app.rooms;
         CREATE USER 'alice' WITH PASSWORD 'alice-pw' ROLE user;
         CREATE USER 'bob' WITH PASSWORD 'bob-pw' ROLE user",
    );
    let server = &setup.server;
    let alice = bearer(server, "alice", "alice-pw");
    let bob = bearer(server, "bob", "bob-pw");
    let insert = "INSERT INTO app.notes (id, body) VALUES (1, $1)";
    sql_ok(server, &alice, insert, &[json!("alice's note")]);
    sql_ok(server, &bob, insert, &[json!("bob's note")]);
    setup.exec("INSERT INTO app.rooms (id, name) VALUES (1, 'lobby')");

    let ca = server.data_dir.join("tls/cert.pem");
    let mut command = Command::new(strand_binary());
    command
        .args(["consume", "--server", &server.quic.to_string()])
        .args([
            "--user",
            "admin",
            "--password",
            strand_tests::ADMIN_PASSWORD,
        ])
        .arg("--ca-cert")
        .arg(&ca)
        .args([
            "--topic",
            "app.changes",
            "--count",
            "3",
            "--timeout-ms",
            "15000",
        ])
        .stdin(Stdio::null());
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("STRAND_")) {
        command.env_remove(name);
    }
    let output = command.output().expect("run strand consume");
    assert!(
        output.status.success(),
        "consume failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // key -> value, each value parsed.
    let mut messages: BTreeMap<String, Value> = BTreeMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let line: Value = serde_json::from_str(line).expect("stdout line is JSON");
        let key = line["key"].as_str().expect("key is text").to_string();
        let value = line["value"].as_str().expect("value is text");
        let value: Value = serde_json::from_str(value).expect("value is JSON");
        assert!(
            messages.insert(key.clone(), value).is_none(),
            "two messages with key {key}"
        );
    }
    let keys: Vec<&str> = messages.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["1", r#"["alice",1]"#, r#"["bob",1]"#],
        "{messages:?}"
    );

    for (key, owner, body) in [
        (r#"["alice",1]"#, "alice", "alice's note"),
        (r#"["bob",1]"#, "bob", "bob's note"),
    ] {
        let value = &messages[key];
        let seq = value["_seq"].as_str().expect("change _seq").to_string();
        assert_eq!(
            *value,
            json!({
                "_seq": seq,
                "change_type": "insert",
                "table": "app.notes",
                "owner": owner,
                "row": {"id": 1, "body": body, "_seq": seq},
            }),
            "the envelope of {owner}'s insert"
        );
    }
    let shared = &messages["1"];
    let seq = shared["_seq"].as_str().expect("change _seq").to_string();
    assert_eq!(
        *shared,
        json!({
            "_seq": seq,
            "change_type": "insert",
            "table": "app.rooms",
            "owner": null,
            "row": {"id": 1, "name": "lobby", "_seq": seq},
        })
    );
}
