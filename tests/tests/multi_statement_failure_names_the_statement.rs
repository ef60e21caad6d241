//! Issue 16, defect 9: a request of several statements failed half-way without saying where.
//!
//! The bug: in `a; b; c`, when `b` failed, `a` stayed committed and the error did not name
//! `b`, so a client could not tell what was applied. The fix (documented in docs/http.md):
//! requests are not atomic; the error names the failing statement (`error.statement`,
//! 1-based) and how many before it were applied (`error.committed_statements`), the message
//! says the same, and the position still points into the whole text.

use serde_json::json;
use strand_tests::{rows, sql, AdminServer};

#[test]
fn the_error_names_the_failing_statement_and_what_was_applied() {
    let setup = AdminServer::with_app(
        "CREATE TABLE app.t (id BIGINT PRIMARY KEY, title TEXT) WITH (TYPE = 'SHARED')",
    );
    let text = "INSERT INTO app.t (id, title) VALUES (1, 'a');\n\
                INSERT INTO app.t (id, title) VALUES (2, 'b');\n\
                INSERT INTO app.nope (id) VALUES (3);\n\
                INSERT INTO app.t (id, title) VALUES (4, 'd')";
    let answer = sql(&setup.server, &setup.admin, text, &[]);
    assert_eq!(answer.status, 400, "{}", answer.text);
    let error = &answer.json()["error"];
    assert_eq!(error["code"], json!("unknown_table"), "{error}");
    assert_eq!(error["statement"], json!(3), "{error}");
    assert_eq!(error["committed_statements"], json!(2), "{error}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("statement 3 of 4 failed (statements 1 to 2 were applied"),
        "{message}"
    );
    assert!(message.contains("app.nope"), "{message}");
    assert_eq!(error["position"]["line"], json!(3), "{error}");

    let ids: Vec<i64> = rows(&setup.server, &setup.admin, "SELECT id FROM app.t", &[])
        .iter()
        .filter_map(|row| row["id"].as_i64())
        .collect();
    assert_eq!(ids, [1, 2], "what came before stays; nothing after runs");

    // One statement alone: no statement fields, the message as it was.
    let answer = sql(
        &setup.server,
        &setup.admin,
        "INSERT INTO app.nope (id) VALUES (3)",
        &[],
    );
    let error = &answer.json()["error"];
    assert_eq!(error.get("statement"), None, "{error}");
    assert!(
        !error["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("statement"),
        "{error}"
    );
}
