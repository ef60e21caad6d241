//! A STREAM table's rows expire after its TTL: they are served while young and no longer
//! served once `TTL_SECONDS` have passed, while a USER table written at the same moment keeps
//! its rows. Each user still sees only their own stream rows.

use std::time::Duration;

use serde_json::json;
use serde_json::Value;
use strand_tests::{bearer, sql_ok, AdminServer, StrandServer};

fn rows(server: &StrandServer, auth: &str, text: &str) -> Value {
    Value::Array(strand_tests::rows(server, auth, text, &[]))
}

#[test]
fn stream_rows_expire_after_ttl() {
    let AdminServer {
        server,
        admin,
        dir: _dir,
    } = AdminServer::start();
    let setup = "CREATE NAMESPACE app; \
        CREATE TABLE app.typing (room TEXT, who TEXT) WITH (TYPE = 'STREAM', TTL_SECONDS = 1); \
        CREATE TABLE app.notes (id BIGINT PRIMARY KEY, body TEXT) WITH (TYPE = 'USER')";
    sql_ok(&server, &admin, setup, &[]);
    sql_ok(
        &server,
        &admin,
        "CREATE USER 'alice' WITH PASSWORD 'pw' ROLE user",
        &[],
    );
    let alice = bearer(&server, "alice", "pw");
    sql_ok(
        &server,
        &admin,
        "INSERT INTO app.typing (room, who) VALUES ('r1', 'admin')",
        &[],
    );
    sql_ok(
        &server,
        &alice,
        "INSERT INTO app.typing (room, who) VALUES ('r1', 'alice')",
        &[],
    );
    sql_ok(
        &server,
        &alice,
        "INSERT INTO app.notes (id, body) VALUES (1, 'kept')",
        &[],
    );

    let typing = "SELECT room, who FROM app.typing";
    assert_eq!(
        rows(&server, &alice, typing),
        json!([{"room": "r1", "who": "alice"}])
    );
    assert_eq!(
        rows(&server, &admin, typing),
        json!([{"room": "r1", "who": "admin"}])
    );

    std::thread::sleep(Duration::from_millis(1_300));
    assert_eq!(
        rows(&server, &alice, typing),
        json!([]),
        "expired rows are not served"
    );
    assert_eq!(rows(&server, &admin, typing), json!([]));
    let notes = rows(&server, &alice, "SELECT id, body FROM app.notes");
    assert_eq!(
        notes,
        json!([{"id": 1, "body": "kept"}]),
        "USER rows do not expire"
    );

    sql_ok(
        &server,
        &alice,
        "INSERT INTO app.typing (room, who) VALUES ('r2', 'alice')",
        &[],
    );
    assert_eq!(
        rows(&server, &alice, typing),
        json!([{"room": "r2", "who": "alice"}])
    );
}
