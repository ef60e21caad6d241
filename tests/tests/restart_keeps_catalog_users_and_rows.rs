//! A clean stop (SIGTERM) and a restart on the same data directory keep everything: the
//! namespaces and tables (with an added column), a user with her password, role and grant,
//! and every table's latest row versions with their `_seq` (updates applied, deletes gone);
//! a write after the restart gets a `_seq` above every one before it.

use serde_json::{json, Value};
use strand_tests::{bearer, rows, sql_ok, ServerOptions, StrandServer, ADMIN_PASSWORD};

/// Everything a client can see, as JSON, for comparing before and after the restart.
fn visible_state(server: &StrandServer, admin: &str, alice: &str) -> Value {
    json!({
        "namespaces": rows(server, admin, "SHOW NAMESPACES", &[]),
        "tables": rows(server, admin, "SHOW TABLES", &[]),
        "notes": rows(server, admin, "DESCRIBE TABLE app.notes", &[]),
        "rooms": rows(server, admin, "DESCRIBE TABLE app.rooms", &[]),
        "admin_notes": rows(server, admin, "SELECT *, _seq FROM app.notes ORDER BY id", &[]),
        "alice_notes": rows(server, alice, "SELECT *, _seq FROM app.notes ORDER BY id", &[]),
        "alice_rooms": rows(server, alice, "SELECT *, _seq FROM app.rooms ORDER BY id", &[]),
    })
}

fn largest_seq(state: &Value) -> u64 {
    let mut largest = 0;
    for table in ["admin_notes", "alice_notes", "alice_rooms"] {
        for row in state[table].as_array().expect("rows") {
            let seq = row["_seq"].as_str().expect("_seq is a string");
            largest = largest.max(seq.parse::<u64>().expect("digits"));
        }
    }
    largest
}

#[test]
fn restart_keeps_catalog_users_and_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = ServerOptions::with_admin_password(ADMIN_PASSWORD);
    let first = StrandServer::start(dir.path(), &options);
    let admin = bearer(&first, "admin", ADMIN_PASSWORD);
    sql_ok(
        &first,
        &admin,
        "CREATE NAMESPACE app;
         CREATE NAMESPACE empty;
         CREATE TABLE app.notes (id BIGINT PRIMARY KEY, body TEXT NOT NULL)
           WITH (TYPE = 'USER');
         CREATE TABLE app.rooms (id BIGINT PRIMARY KEY, name TEXT) WITH (TYPE = 'SHARED');
         CREATE USER 'alice' WITH PASSWORD 'alice-pw' ROLE user;
         GRANT SELECT ON app.rooms TO 'alice';
         INSERT INTO app.notes (id, body) VALUES (1, 'admin one'), (2, 'admin two');
         INSERT INTO app.rooms (id, name) VALUES (1, 'lobby'), (2, 'attic'), (3, 'cellar');
         UPDATE app.rooms SET name = 'loft' WHERE id = 2;
         DELETE FROM app.rooms WHERE id = 3;
         ALTER TABLE app.notes ADD COLUMN pinned BOOLEAN",
        &[],
    );
    let alice = bearer(&first, "alice", "alice-pw");
    sql_ok(
        &first,
        &alice,
        "INSERT INTO app.notes (id, body, pinned) VALUES (1, 'alice one', TRUE), (7, 'gone', NULL);
         DELETE FROM app.notes WHERE id = 7;
         UPDATE app.notes SET body = 'alice one, edited' WHERE id = 1",
        &[],
    );
    let before = visible_state(&first, &admin, &alice);
    // The state is what was written, so comparing it after the restart means something.
    let alice_notes = json!([{"id": 1, "body": "alice one, edited", "pinned": true}]);
    let without_seq = |rows: &Value| -> Value {
        let mut rows = rows.clone();
        for row in rows.as_array_mut().expect("rows") {
            row.as_object_mut().expect("row").remove("_seq");
        }
        rows
    };
    assert_eq!(without_seq(&before["alice_notes"]), alice_notes);
    let admin_notes = json!([
        {"id": 1, "body": "admin one", "pinned": null},
        {"id": 2, "body": "admin two", "pinned": null},
    ]);
    assert_eq!(without_seq(&before["admin_notes"]), admin_notes);
    let rooms = json!([{"id": 1, "name": "lobby"}, {"id": 2, "name": "loft"}]);
    assert_eq!(without_seq(&before["alice_rooms"]), rooms);
    assert_eq!(first.terminate().code(), Some(0));

    let second = StrandServer::start(dir.path(), &options);
    let admin = bearer(&second, "admin", ADMIN_PASSWORD);
    // Alice's password, role and grant came back from disk.
    let alice = bearer(&second, "alice", "alice-pw");
    assert_eq!(visible_state(&second, &admin, &alice), before);
    let namespaces = before["namespaces"].to_string();
    assert!(namespaces.contains("\"empty\""), "{namespaces}");

    let results = sql_ok(
        &second,
        &alice,
        "INSERT INTO app.notes (id, body) VALUES (2, 'after restart');
         SELECT _seq FROM app.notes WHERE id = 2",
        &[],
    );
    let seq: u64 = results[1]["rows"][0]["_seq"]
        .as_str()
        .expect("_seq is a string")
        .parse()
        .expect("digits");
    assert!(seq > largest_seq(&before), "{seq} after {before}");
    assert_eq!(second.terminate().code(), Some(0));
}
