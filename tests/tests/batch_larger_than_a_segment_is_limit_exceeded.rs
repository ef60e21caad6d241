//! Issue 17, defect 13 (first item): a statement whose rows, as one log batch, are larger than
//! a segment (`--segment-bytes`) is refused with 400 `limit_exceeded` naming the limit, not
//! 500 `internal`; nothing of it is written, and the table keeps working. (A batch never spans
//! segments: one statement's rows commit together, in one segment.) It used to be 500.

use serde_json::{json, Value};
use strand_tests::{bearer, rows, sql, sql_ok, ServerOptions, StrandServer, ADMIN_PASSWORD};

const SEGMENT_BYTES: &str = "4096";

fn assert_limit_exceeded(status: u16, answer: &Value) {
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], "limit_exceeded", "{answer}");
    let message = answer["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("--segment-bytes") && message.contains("4032"),
        "the message names the limit and its value: {message}"
    );
}

#[test]
fn batch_larger_than_a_segment_is_limit_exceeded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = ServerOptions {
        args: vec!["--segment-bytes".into(), SEGMENT_BYTES.into()],
        ..ServerOptions::with_admin_password(ADMIN_PASSWORD)
    };
    let server = StrandServer::start(dir.path(), &options);
    let admin = bearer(&server, "admin", ADMIN_PASSWORD);
    sql_ok(
        &server,
        &admin,
        "CREATE NAMESPACE app;
         CREATE TABLE app.notes (id BIGINT PRIMARY KEY, body TEXT NOT NULL)
           WITH (TYPE = 'SHARED');
         INSERT INTO app.notes (id, body) VALUES (1, 'before')",
        &[],
    );

    // One row larger than a segment.
    let insert = "INSERT INTO app.notes (id, body) VALUES ($1, $2)";
    let answer = sql(
        &server,
        &admin,
        insert,
        &[json!(2), json!("x".repeat(5000))],
    );
    assert_limit_exceeded(answer.status, &answer.json());

    // Small rows that together are larger than a segment.
    let values: Vec<String> = (0..40)
        .map(|i| format!("({}, '{}')", 100 + i, "y".repeat(100)))
        .collect();
    let text = format!(
        "INSERT INTO app.notes (id, body) VALUES {}",
        values.join(", ")
    );
    let answer = sql(&server, &admin, &text, &[]);
    assert_limit_exceeded(answer.status, &answer.json());

    // Nothing of either was written, and the table keeps working.
    sql_ok(&server, &admin, insert, &[json!(2), json!("after")]);
    let found = rows(
        &server,
        &admin,
        "SELECT id, body FROM app.notes ORDER BY id",
        &[],
    );
    assert_eq!(
        found,
        vec![
            json!({"id": 1, "body": "before"}),
            json!({"id": 2, "body": "after"})
        ]
    );
}
