//! Topic DDL over HTTP SQL (docs/sql.md, "Topics"; docs/topics.md): `CREATE TOPIC ... WITH (PARTITIONS,
//! RETENTION_SECONDS)`, `SHOW TOPICS`, `ALTER TOPIC ... ADD SOURCE`, `DROP TOPIC`; errors for
//! duplicates, bad partition counts, name clashes with tables and non-administrators; topics
//! survive a restart.

use serde_json::json;
use strand_tests::{
    assert_client_error, bearer, rows, sql, sql_ok, ServerOptions, StrandServer, ADMIN_PASSWORD,
};

#[test]
fn topics_are_created_listed_fed_dropped_and_kept_across_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = ServerOptions::with_admin_password(ADMIN_PASSWORD);
    let server = StrandServer::start(dir.path(), &options);
    let admin = bearer(&server, "admin", ADMIN_PASSWORD);
    sql_ok(
        &server,
        &admin,
        "CREATE NAMESPACE app;
         CREATE TABLE app.tickets (id BIGINT PRIMARY KEY, title TEXT) WITH (TYPE = 'SHARED');
         CREATE TOPIC app.events WITH (PARTITIONS = 4, RETENTION_SECONDS = 3600);
         CREATE TOPIC app.audit;
         CREATE TOPIC IF NOT EXISTS app.audit;
         ALTER TOPIC app.audit ADD SOURCE app.tickets ON INSERT, DELETE;
         CREATE USER 'bob' WITH PASSWORD 'bob-pw' ROLE user",
        &[],
    );
    let listed = rows(&server, &admin, "SHOW TOPICS", &[]);
    assert_eq!(
        listed,
        vec![
            json!({"namespace": "app", "topic": "audit", "partitions": 1,
                   "retention_seconds": null, "sources": "app.tickets"}),
            json!({"namespace": "app", "topic": "events", "partitions": 4,
                   "retention_seconds": 3600, "sources": ""}),
        ]
    );

    let duplicate = sql(&server, &admin, "CREATE TOPIC app.events", &[]);
    assert_client_error(&duplicate, "already_exists");
    let zero = sql(
        &server,
        &admin,
        "CREATE TOPIC app.z WITH (PARTITIONS = 0)",
        &[],
    );
    assert_client_error(&zero, "invalid_value");
    let clash = sql(&server, &admin, "CREATE TOPIC app.tickets", &[]);
    assert_client_error(&clash, "already_exists");
    let clash = sql(
        &server,
        &admin,
        "CREATE TABLE app.events (id INT PRIMARY KEY)",
        &[],
    );
    assert_client_error(&clash, "already_exists");
    let no_table = sql(
        &server,
        &admin,
        "ALTER TOPIC app.audit ADD SOURCE app.nope",
        &[],
    );
    assert_client_error(&no_table, "not_found");
    let no_namespace = sql(&server, &admin, "CREATE TOPIC nowhere.t", &[]);
    assert_client_error(&no_namespace, "not_found");
    let busy = sql(&server, &admin, "DROP NAMESPACE app", &[]);
    assert_client_error(&busy, "invalid_value");
    let bob = bearer(&server, "bob", "bob-pw");
    let refused = sql(&server, &bob, "CREATE TOPIC app.mine", &[]);
    assert_client_error(&refused, "forbidden");

    assert_eq!(server.terminate().code(), Some(0));
    let server = StrandServer::start(dir.path(), &options);
    let admin = bearer(&server, "admin", ADMIN_PASSWORD);
    assert_eq!(rows(&server, &admin, "SHOW TOPICS", &[]), listed);
    sql_ok(
        &server,
        &admin,
        "DROP TOPIC app.events; DROP TOPIC IF EXISTS app.events",
        &[],
    );
    let gone = sql(&server, &admin, "DROP TOPIC app.events", &[]);
    assert_client_error(&gone, "not_found");
    let left = rows(&server, &admin, "SHOW TOPICS", &[]);
    assert_eq!(left.len(), 1, "{left:?}");
}
