//! `DESCRIBE ns.name` over HTTP describes a topic when the name is a topic: one row for the
//! topic (partitions, retention) and one per source (its change kinds and start `_seq`). A
//! table is described as before, and a name that is neither gets `not_found` naming both.
//!
//! Regression (issue 16, defect 10, DESCRIBE part). The bug: DESCRIBE only looked up tables,
//! so `DESCRIBE app.events` on an existing topic answered "table app.events does not exist".
//! Impact: a user could not inspect a topic with SQL at all, and the error said the name was
//! unknown. The fix: DESCRIBE looks the name up as a table, then as a topic, and answers the
//! topic's definition as a result set (docs/topics.md).

use serde_json::{json, Value};
use strand_tests::{assert_client_error, rows, sql, sql_ok, AdminServer};

#[test]
fn describe_a_topic_shows_its_definition() {
    let setup = AdminServer::with_app(
        "CREATE TABLE app.tickets (id BIGINT PRIMARY KEY, title TEXT) WITH (TYPE = 'SHARED');
         CREATE TABLE app.notes (id BIGINT PRIMARY KEY) WITH (TYPE = 'USER');
         CREATE TOPIC app.events WITH (PARTITIONS = 4, RETENTION_SECONDS = 3600);
         CREATE TOPIC app.bare",
    );
    let server = &setup.server;
    let admin = &setup.admin;
    let seq = |text: &str| -> u64 {
        let found = rows(server, admin, text, &[]);
        found[0]["_seq"]
            .as_str()
            .expect("_seq")
            .parse()
            .expect("_seq")
    };
    setup.exec("INSERT INTO app.tickets (id, title) VALUES (1, 'before')");
    let before = seq("SELECT _seq FROM app.tickets WHERE id = 1");
    setup.exec("ALTER TOPIC app.events ADD SOURCE app.tickets ON INSERT, DELETE");
    setup.exec("ALTER TOPIC app.events ADD SOURCE app.notes");
    setup.exec("INSERT INTO app.tickets (id, title) VALUES (2, 'after')");
    let after = seq("SELECT _seq FROM app.tickets WHERE id = 2");

    let results = sql_ok(server, admin, "DESCRIBE app.events", &[]);
    let columns: Vec<&str> = results[0]["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| c["name"].as_str().expect("column name"))
        .collect();
    assert_eq!(
        columns,
        [
            "object",
            "name",
            "partitions",
            "retention_seconds",
            "changes",
            "start_seq"
        ]
    );
    let described = rows(server, admin, "DESCRIBE app.events", &[]);
    assert_eq!(described.len(), 3, "{described:?}");
    assert_eq!(
        described[0],
        json!({"object": "topic", "name": "app.events", "partitions": 4,
               "retention_seconds": 3600, "changes": null, "start_seq": null})
    );
    let start = |row: &Value| -> u64 {
        row["start_seq"]
            .as_str()
            .expect("start_seq text")
            .parse()
            .expect("number")
    };
    let tickets = &described[1];
    assert_eq!(
        *tickets,
        json!({"object": "source", "name": "app.tickets", "partitions": null,
               "retention_seconds": null, "changes": "INSERT, DELETE",
               "start_seq": tickets["start_seq"]})
    );
    // The start lies between the last change before ADD SOURCE and the first after it.
    assert!(
        before <= start(tickets) && start(tickets) < after,
        "{tickets}"
    );
    let notes = &described[2];
    assert_eq!(notes["name"], "app.notes");
    assert_eq!(notes["changes"], "INSERT, UPDATE, DELETE");
    assert!(
        start(tickets) <= start(notes) && start(notes) < after,
        "{notes}"
    );

    // A topic without sources and without retention; DESCRIBE TABLE names the same thing.
    assert_eq!(
        rows(server, admin, "DESCRIBE TABLE app.bare", &[]),
        vec![
            json!({"object": "topic", "name": "app.bare", "partitions": 1,
                    "retention_seconds": null, "changes": null, "start_seq": null})
        ]
    );
    // Tables are described as before.
    let table = rows(server, admin, "DESCRIBE app.tickets", &[]);
    assert_eq!(table[0]["column"], "id", "{table:?}");
    // Neither: not found, naming both possibilities.
    let missing = sql(server, admin, "DESCRIBE app.nothing", &[]);
    let error = assert_client_error(&missing, "not_found");
    let message = error["message"].as_str().expect("message");
    assert!(message.contains("table or topic app.nothing"), "{message}");
}
