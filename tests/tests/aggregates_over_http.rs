//! GROUP BY, aggregates, HAVING and DISTINCT through a real server (issue 21; docs/sql.md,
//! "Aggregates"): one-shot over HTTP on a USER table (only the caller's rows count) and a
//! SHARED one; ordering groups in a subscription is refused with the reason (live grouping is
//! `live_aggregates.rs`); a misplaced column is a `grouping_error` with its position.

use serde_json::json;
use strand_tests::ws::*;
use strand_tests::{bearer, rows, sql, AdminServer};

const TICKETS: &str = "CREATE TABLE app.tickets (id BIGINT PRIMARY KEY, status TEXT, points INT) \
     WITH (TYPE = 'SHARED')";

#[test]
fn grouping_queries_answer_over_http() {
    let setup = AdminServer::with_app(TICKETS);
    setup.exec(
        "INSERT INTO app.tickets (id, status, points) VALUES (1, 'open', 3), (2, 'open', 5), \
         (3, 'done', NULL), (4, NULL, 1), (5, 'open', 5), (6, 'done', 8)",
    );
    let query = |text: &str| rows(&setup.server, &setup.admin, text, &[]);
    assert_eq!(
        query(
            "SELECT status, COUNT(*) AS n, SUM(points) AS total, AVG(points) AS mean, \
             MIN(points) AS low, MAX(id) AS last FROM app.tickets GROUP BY status ORDER BY n DESC, status"
        ),
        [
            json!({"status": "open", "n": 3, "total": 13, "mean": 13.0 / 3.0, "low": 3, "last": 5}),
            json!({"status": "done", "n": 2, "total": 8, "mean": 8.0, "low": 8, "last": 6}),
            json!({"status": null, "n": 1, "total": 1, "mean": 1.0, "low": 1, "last": 4}),
        ]
    );
    assert_eq!(
        query("SELECT status FROM app.tickets GROUP BY status HAVING COUNT(*) > 1 ORDER BY status"),
        [json!({"status": "done"}), json!({"status": "open"})]
    );
    assert_eq!(
        query(
            "SELECT COUNT(*) AS n, COUNT(DISTINCT points) AS kinds FROM app.tickets WHERE id > 1"
        ),
        [json!({"n": 5, "kinds": 3})]
    );
    assert_eq!(
        query("SELECT DISTINCT points FROM app.tickets WHERE points > 2 ORDER BY points DESC"),
        [
            json!({"points": 8}),
            json!({"points": 5}),
            json!({"points": 3})
        ]
    );
    let answer = sql(
        &setup.server,
        &setup.admin,
        "SELECT id, COUNT(*) FROM app.tickets GROUP BY status",
        &[],
    );
    let error = strand_tests::assert_client_error(&answer, "grouping_error");
    assert_eq!(strand_tests::error_position(&error), (1, 8));
}

#[test]
fn a_user_tables_aggregates_count_only_the_callers_rows() {
    let setup = AdminServer::with_app(
        "CREATE TABLE app.notes (id BIGINT PRIMARY KEY, done BOOLEAN) WITH (TYPE = 'USER')",
    );
    setup
        .exec("CREATE USER 'ann' WITH PASSWORD 'pw-ann'; CREATE USER 'bob' WITH PASSWORD 'pw-bob'");
    let ann = bearer(&setup.server, "ann", "pw-ann");
    let bob = bearer(&setup.server, "bob", "pw-bob");
    rows(
        &setup.server,
        &ann,
        "INSERT INTO app.notes (id, done) VALUES (1, true), (2, false)",
        &[],
    );
    rows(
        &setup.server,
        &bob,
        "INSERT INTO app.notes (id, done) VALUES (1, true)",
        &[],
    );
    let count = "SELECT done, COUNT(*) AS n FROM app.notes GROUP BY done ORDER BY done";
    assert_eq!(
        rows(&setup.server, &ann, count, &[]),
        [
            json!({"done": false, "n": 1}),
            json!({"done": true, "n": 1})
        ]
    );
    assert_eq!(
        rows(&setup.server, &bob, count, &[]),
        [json!({"done": true, "n": 1})]
    );
}

#[test]
fn ordering_groups_in_a_subscription_is_refused() {
    let setup = AdminServer::with_app(TICKETS);
    let mut client = admin_ws(&setup);
    let text =
        "SELECT status, COUNT(*) AS n FROM app.tickets GROUP BY status ORDER BY n DESC LIMIT 3";
    client.send(&subscribe_message("g", text, None, None));
    expect_error(&mut client, "g", "unsupported");
}
