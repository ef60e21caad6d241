//! Bad SQL gets a JSON 4xx naming the problem and loses nothing (docs/http.md, "Errors"): unknown and
//! unsupported statements, garbage text, expressions nested or chained past the limits,
//! too many statements, rows, list items or parameters, bad parameter numbers and an SQL text
//! over the body limit. Afterwards the server still answers, rows written before are intact
//! (same values, same `_seq`), new writes work and nothing panicked.

use serde_json::{json, Value};
use strand_tests::{assert_client_error, get, raw_request, rows, sql, sql_ok, AdminServer};

const EVERYTHING: &str = "SELECT *, _seq FROM app.t ORDER BY id";

fn repeat(item: &str, times: usize, separator: &str) -> String {
    vec![item; times].join(separator)
}

/// `(sql, expected code)` of requests that must fail without harm.
fn bad_statements() -> Vec<(String, &'static str)> {
    vec![
        ("FROB app.t".into(), "syntax_error"),
        ("\u{1}garbage ☃".into(), "syntax_error"),
        (";;;".into(), "syntax_error"),
        ("SELECT * FROM app.t WHERE".into(), "syntax_error"),
        (
            "INSERT INTO app.t (id, label) VALUES (9, 'x'".into(),
            "syntax_error",
        ),
        ("VACUUM".into(), "unsupported"),
        ("BEGIN".into(), "unsupported"),
        ("TRUNCATE app.t".into(), "unsupported"),
        ("CREATE INDEX i ON app.t (label)".into(), "unsupported"),
        ("SELECT frob(id) FROM app.t".into(), "unsupported"),
        (
            "SELECT id FROM app.t WHERE id = $0".into(),
            "invalid_parameter",
        ),
        (
            "SELECT id FROM app.t WHERE id = $70000".into(),
            "invalid_parameter",
        ),
        (
            format!(
                "SELECT * FROM app.t WHERE {}1 = 1{}",
                "(".repeat(10_000),
                ")".repeat(10_000)
            ),
            "limit_exceeded",
        ),
        (
            format!(
                "SELECT * FROM app.t WHERE {}",
                repeat("id = 1", 5_000, " OR ")
            ),
            "limit_exceeded",
        ),
        (
            format!(
                "SELECT * FROM app.t WHERE id IN ({})",
                repeat("1", 10_001, ",")
            ),
            "limit_exceeded",
        ),
        (repeat("SELECT id FROM app.t", 257, ";"), "limit_exceeded"),
        (
            format!(
                "INSERT INTO app.t (id, label) VALUES {}",
                repeat("(100, 'x')", 10_001, ",")
            ),
            "limit_exceeded",
        ),
    ]
}

#[test]
fn bad_sql_requests_keep_server_serving() {
    let AdminServer {
        server,
        admin,
        dir: _dir,
    } = AdminServer::start();
    sql_ok(
        &server,
        &admin,
        "CREATE NAMESPACE app;
         CREATE TABLE app.t (id BIGINT PRIMARY KEY, label TEXT) WITH (TYPE = 'SHARED');
         INSERT INTO app.t (id, label) VALUES (1, 'one'), (2, 'two'), (3, 'three')",
        &[],
    );
    let before = rows(&server, &admin, EVERYTHING, &[]);
    assert_eq!(before.len(), 3, "{before:?}");

    for (text, code) in bad_statements() {
        let answer = sql(&server, &admin, &text, &[]);
        let shown: String = text.chars().take(80).collect();
        let error = assert_client_error(&answer, code);
        assert!(error["position"].is_object(), "{shown}: {error}");
    }

    // Parameters: too many, or not an array.
    let many: Vec<Value> = (0..1025).map(|n| json!(n)).collect();
    let answer = sql(&server, &admin, "SELECT id FROM app.t WHERE id = $1", &many);
    assert_client_error(&answer, "limit_exceeded");
    let body = json!({"sql": "SELECT id FROM app.t", "params": {"id": 1}});
    let answer = strand_tests::post_json(&server.url("/v1/api/sql"), Some(&admin), &body);
    answer.assert_error(400, "invalid_request");

    // SQL text over the 1 MiB body limit, and a large one under it.
    let huge =
        json!({"sql": format!("SELECT id FROM app.t WHERE label = '{}'", "a".repeat(1_500_000))});
    let huge = huge.to_string();
    let head = format!(
        "POST /v1/api/sql HTTP/1.1\r\nHost: strand\r\nAuthorization: {admin}\r\n\
         Content-Type: application/json\r\nContent-Length: {}",
        huge.len()
    );
    raw_request(server.http, &head, huge.as_bytes()).assert_error(413, "payload_too_large");
    let large = format!(
        "SELECT id FROM app.t WHERE label = '{}'",
        "a".repeat(900_000)
    );
    assert_eq!(rows(&server, &admin, &large, &[]), Vec::<Value>::new());

    let health = get(&server.url("/health"));
    assert_eq!(
        (health.status, health.json()),
        (200, json!({"status": "ok"}))
    );
    assert_eq!(rows(&server, &admin, EVERYTHING, &[]), before);
    sql_ok(
        &server,
        &admin,
        "INSERT INTO app.t (id, label) VALUES (4, 'four')",
        &[],
    );
    assert_eq!(rows(&server, &admin, EVERYTHING, &[]).len(), 4);
    let log = server.stderr();
    assert!(!log.contains("panicked"), "{log}");
    assert_eq!(server.terminate().code(), Some(0));
}
