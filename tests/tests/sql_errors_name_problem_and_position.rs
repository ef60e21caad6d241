//! Every SQL error names the problem and, where the text is at fault, its position
//! (docs/sql.md, "Error codes"): a syntax error is 400 `syntax_error` at the exact line and
//! column; unknown tables and columns, wrong types, NOT NULL violations, duplicate primary
//! keys and joins or aggregates each get their own code, and a refused write changes nothing.

use serde_json::{json, Value};
use strand_tests::{
    assert_client_error, error_position, rows, sql, sql_ok, AdminServer, Answer, StrandServer,
};
use tempfile::TempDir;

/// A server with `app.t` (a USER table) and an admin's `Authorization` value.
struct Setup {
    _dir: TempDir,
    server: StrandServer,
    admin: String,
}

impl Setup {
    fn start() -> Setup {
        let AdminServer { server, admin, dir } = AdminServer::start();
        sql_ok(
            &server,
            &admin,
            "CREATE NAMESPACE app;
             CREATE TABLE app.t (id BIGINT PRIMARY KEY, label TEXT NOT NULL, n INT,
               happened TIMESTAMP, doc JSON, blob BYTES) WITH (TYPE = 'USER')",
            &[],
        );
        Setup {
            _dir: dir,
            server,
            admin,
        }
    }

    fn run(&self, text: &str, params: &[Value]) -> Answer {
        sql(&self.server, &self.admin, text, params)
    }

    fn rows(&self, text: &str) -> Vec<Value> {
        rows(&self.server, &self.admin, text, &[])
    }

    /// Assert `text` fails with `code`; the error object.
    fn fails(&self, text: &str, params: &[Value], code: &str) -> Value {
        let answer = self.run(text, params);
        assert_client_error(&answer, code)
    }
}

fn message(error: &Value) -> String {
    error["message"].as_str().expect("message").to_lowercase()
}

#[test]
fn syntax_error_is_400_with_line_and_column() {
    let setup = Setup::start();
    let answer = setup.run("SELECT id, label\nFROM app.t WHERE id = = 3", &[]);
    answer.assert_error(400, "syntax_error");
    let error = answer.json()["error"].clone();
    // The second `=` of line 2.
    assert_eq!(error_position(&error), (2, 23), "{error}");

    // Positions count from the start of the whole request, across statements.
    let two = "INSERT INTO app.t (id, label) VALUES (1, 'a');\nSELECT * FROM app.t WHERE";
    let answer = setup.run(two, &[]);
    answer.assert_error(400, "syntax_error");
    assert_eq!(error_position(&answer.json()["error"]), (2, 26));

    let unterminated = setup.run("SELECT 'abc FROM app.t", &[]);
    unterminated.assert_error(400, "syntax_error");
    assert_eq!(error_position(&unterminated.json()["error"]), (1, 8));
}

#[test]
fn unknown_table_and_column_are_named_with_position() {
    let setup = Setup::start();
    let error = setup.fails("SELECT * FROM app.nope", &[], "unknown_table");
    assert!(message(&error).contains("app.nope"), "{error}");
    assert_eq!(error_position(&error), (1, 15));
    let error = setup.fails(
        "INSERT INTO nowhere.t (id) VALUES (1)",
        &[],
        "unknown_table",
    );
    assert!(message(&error).contains("nowhere.t"), "{error}");
    assert_eq!(error_position(&error), (1, 13));
    setup.fails("DELETE FROM app.gone WHERE id = 1", &[], "unknown_table");
    setup.fails(
        "UPDATE app.gone SET n = 1 WHERE id = 1",
        &[],
        "unknown_table",
    );

    let error = setup.fails("SELECT id,\n  nope FROM app.t", &[], "unknown_column");
    assert!(message(&error).contains("nope"), "{error}");
    assert_eq!(error_position(&error), (2, 3));
    let error = setup.fails(
        "SELECT id FROM app.t WHERE missing = 1",
        &[],
        "unknown_column",
    );
    assert!(message(&error).contains("missing"), "{error}");
    assert_eq!(error_position(&error), (1, 28));
    let insert = "INSERT INTO app.t (id, label, extra) VALUES (1, 'a', 2)";
    let error = setup.fails(insert, &[], "unknown_column");
    assert_eq!(error_position(&error), (1, 31));
    let update = "UPDATE app.t SET extra = 1 WHERE id = 1";
    let error = setup.fails(update, &[], "unknown_column");
    assert_eq!(error_position(&error), (1, 18));
    assert_eq!(setup.rows("SELECT * FROM app.t"), Vec::<Value>::new());
}

#[test]
fn wrong_types_are_type_mismatch_and_write_nothing() {
    let setup = Setup::start();
    let cases = [
        // (statement, column of the offending value)
        ("INSERT INTO app.t (id, label) VALUES ('abc', 'x')", 39),
        (
            "INSERT INTO app.t (id, label, n) VALUES (1, 'x', 'seven')",
            50,
        ),
        (
            "INSERT INTO app.t (id, label, happened) VALUES (1, 'x', 'yesterday')",
            57,
        ),
        (
            "INSERT INTO app.t (id, label, doc) VALUES (1, 'x', '{bad')",
            52,
        ),
        ("INSERT INTO app.t (id, label) VALUES (1, 2)", 42),
        ("SELECT id FROM app.t WHERE label = 5", 36),
    ];
    for (text, column) in cases {
        let error = setup.fails(text, &[], "type_mismatch");
        assert_eq!(error_position(&error), (1, column), "{text}: {error}");
    }
    // A parameter of the wrong type is named by its number.
    let params = [json!("x"), json!("not base64!")];
    let with_blob = "INSERT INTO app.t (id, label, blob) VALUES (1, $1, $2)";
    let error = setup.fails(with_blob, &params, "invalid_parameter");
    assert!(message(&error).contains("$2"), "{error}");
    let with_id = "INSERT INTO app.t (id, label) VALUES ($1, 'x')";
    let error = setup.fails(with_id, &[json!("abc")], "invalid_parameter");
    assert!(message(&error).contains("$1"), "{error}");
    let missing = "SELECT id FROM app.t WHERE id = $2";
    let error = setup.fails(missing, &[json!(1)], "invalid_parameter");
    assert!(message(&error).contains("$2"), "{error}");
    assert_eq!(setup.rows("SELECT * FROM app.t"), Vec::<Value>::new());
}

#[test]
fn not_null_violation_writes_nothing() {
    let setup = Setup::start();
    sql_ok(
        &setup.server,
        &setup.admin,
        "INSERT INTO app.t (id, label) VALUES (1, 'kept')",
        &[],
    );
    let error = setup.fails(
        "INSERT INTO app.t (id) VALUES (2)",
        &[],
        "not_null_violation",
    );
    assert!(message(&error).contains("label"), "{error}");
    let explicit = "INSERT INTO app.t (id, label) VALUES (2, NULL)";
    let error = setup.fails(explicit, &[], "not_null_violation");
    assert_eq!(error_position(&error), (1, 42));
    let param = "INSERT INTO app.t (id, label) VALUES (2, $1)";
    setup.fails(param, &[json!(null)], "not_null_violation");
    let update = "UPDATE app.t SET label = NULL WHERE id = 1";
    let error = setup.fails(update, &[], "not_null_violation");
    assert!(message(&error).contains("label"), "{error}");
    assert_eq!(
        setup.rows("SELECT id, label FROM app.t"),
        [json!({"id": 1, "label": "kept"})]
    );
}

#[test]
fn duplicate_primary_key_is_refused_and_the_first_row_stays() {
    let setup = Setup::start();
    sql_ok(
        &setup.server,
        &setup.admin,
        "INSERT INTO app.t (id, label) VALUES (1, 'first')",
        &[],
    );
    let before = setup.rows("SELECT id, label, _seq FROM app.t");
    assert_eq!(before.len(), 1, "{before:?}");

    let error = setup.fails(
        "INSERT INTO app.t (id, label) VALUES (1, 'second')",
        &[],
        "duplicate_key",
    );
    assert!(message(&error).contains("app.t"), "{error}");
    // A batch with one duplicate writes none of its rows.
    let batch = "INSERT INTO app.t (id, label) VALUES (2, 'new'), (1, 'again')";
    setup.fails(batch, &[], "duplicate_key");
    // The same key twice in one statement.
    let twice = "INSERT INTO app.t (id, label) VALUES (3, 'a'), (3, 'b')";
    setup.fails(twice, &[], "duplicate_key");

    assert_eq!(setup.rows("SELECT id, label, _seq FROM app.t"), before);
}

#[test]
fn unsupported_joins_and_grouping_are_refused_as_unsupported() {
    let setup = Setup::start();
    sql_ok(
        &setup.server,
        &setup.admin,
        "CREATE TABLE app.u (id BIGINT PRIMARY KEY) WITH (TYPE = 'USER')",
        &[],
    );
    let cases = [
        (
            "SELECT a.id FROM app.t AS a RIGHT JOIN app.u AS b ON a.id = b.id",
            "right join",
        ),
        ("SELECT a.id FROM app.t AS a, app.u AS b", "join"),
        (
            "SELECT a.id FROM app.t AS a JOIN app.u AS b ON a.id > b.id",
            "equi-join",
        ),
        ("SELECT count(*) OVER () FROM app.t", "count"),
        ("SELECT n FROM app.t GROUP BY ROLLUP (n)", "rollup"),
        ("SELECT DISTINCT ON (n) n FROM app.t", "distinct on"),
    ];
    for (text, named) in cases {
        let error = setup.fails(text, &[], "unsupported");
        assert!(message(&error).contains(named), "{text}: {error}");
    }
}
