//! DDL, DML and SELECT over HTTP with every column type of docs/sql.md ("Types"), in USER and
//! SHARED tables: values written as literals and as `$n` parameters read back in their JSON
//! form (BIGINT as a number, `_seq` as a string of digits, TIMESTAMP as RFC 3339 in UTC,
//! BYTES as base64, JSON embedded); `SELECT *` leaves system columns out; UPDATE and DELETE
//! append versions with a higher `_seq`; ALTER TABLE ADD COLUMN reads NULL for old rows;
//! SHOW and DESCRIBE list the catalog; ORDER BY / LIMIT / OFFSET page; several statements in
//! one request give one result each.

use serde_json::{json, Value};
use strand_tests::{rows, sql_ok, AdminServer, StrandServer};
use tempfile::TempDir;

/// A server with namespace `app`, and an admin's `Authorization` value.
struct Setup {
    _dir: TempDir,
    server: StrandServer,
    admin: String,
}

impl Setup {
    fn start() -> Setup {
        let AdminServer { server, admin, dir } = AdminServer::start();
        let setup = Setup {
            _dir: dir,
            server,
            admin,
        };
        setup.ok("CREATE NAMESPACE app", &[]);
        setup
    }

    fn ok(&self, text: &str, params: &[Value]) -> Vec<Value> {
        sql_ok(&self.server, &self.admin, text, params)
    }

    fn rows(&self, text: &str, params: &[Value]) -> Vec<Value> {
        rows(&self.server, &self.admin, text, params)
    }

    /// `row_count` of a one-statement DML request.
    fn affected(&self, text: &str, params: &[Value]) -> u64 {
        let results = self.ok(text, params);
        assert_eq!(results.len(), 1, "{text}: {results:?}");
        results[0]["row_count"].as_u64().expect("row_count")
    }
}

fn ids(rows: &[Value]) -> Vec<i64> {
    rows.iter()
        .map(|row| row["id"].as_i64().expect("id is a number"))
        .collect()
}

/// A `_seq` as the API writes it: a JSON string of decimal digits.
fn seq(row: &Value) -> u64 {
    let text = row["_seq"].as_str().expect("_seq is a JSON string");
    assert!(text.bytes().all(|b| b.is_ascii_digit()), "{text}");
    text.parse().expect("_seq fits u64")
}

const EVERY_TYPE_COLUMNS: &str = "id BIGINT PRIMARY KEY, flag BOOLEAN, small INT, big BIGINT, \
     ratio DOUBLE, label TEXT NOT NULL, happened TIMESTAMP, doc JSON, blob BYTES";
const INSERT_COLUMNS: &str = "(id, flag, small, big, ratio, label, happened, doc, blob)";

#[test]
fn every_type_round_trips_in_user_and_shared_tables() {
    let setup = Setup::start();
    for (table, kind) in [("app.mine", "USER"), ("app.common", "SHARED")] {
        let create = format!("CREATE TABLE {table} ({EVERY_TYPE_COLUMNS}) WITH (TYPE = '{kind}')");
        setup.ok(&create, &[]);

        let literals = format!(
            "INSERT INTO {table} {INSERT_COLUMNS} VALUES (1, TRUE, -7, 9007199254740993, 2.5, \
             'it''s', '2024-05-01T12:34:56.789Z', '{{\"a\":[1,2],\"b\":null}}', X'00FF10')"
        );
        assert_eq!(setup.affected(&literals, &[]), 1, "{table}");

        // Two rows from parameters: BIGINT as a string and as a number, a timestamp with an
        // offset, JSON as JSON, BYTES as base64, and NULLs.
        let with_params = format!(
            "INSERT INTO {table} {INSERT_COLUMNS} VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9), ($10, $11, $12, $13, $14, $15, $16, $17, $18)"
        );
        let params = [
            json!("2"),
            json!(false),
            json!(2147483647),
            json!("-9223372036854775808"),
            json!(0.125),
            json!("héllo ✓"),
            json!("2024-05-01T14:34:56.789+02:00"),
            json!({"k": "v", "n": [true]}),
            json!("AP8Q"),
            json!(3),
            json!(null),
            json!(null),
            json!(42),
            json!(null),
            json!("x"),
            json!(null),
            json!(null),
            json!(null),
        ];
        assert_eq!(setup.affected(&with_params, &params), 2, "{table}");

        let results = setup.ok(&format!("SELECT * FROM {table} ORDER BY id"), &[]);
        let expected_columns = json!([
            {"name": "id", "type": "BIGINT"},
            {"name": "flag", "type": "BOOLEAN"},
            {"name": "small", "type": "INT"},
            {"name": "big", "type": "BIGINT"},
            {"name": "ratio", "type": "DOUBLE"},
            {"name": "label", "type": "TEXT"},
            {"name": "happened", "type": "TIMESTAMP"},
            {"name": "doc", "type": "JSON"},
            {"name": "blob", "type": "BYTES"},
        ]);
        assert_eq!(results[0]["columns"], expected_columns, "{table}");
        // Whole objects: no `_seq` or `_deleted` key may ride along.
        let expected_rows = json!([
            {"id": 1, "flag": true, "small": -7, "big": 9007199254740993i64, "ratio": 2.5,
             "label": "it's", "happened": "2024-05-01T12:34:56.789Z",
             "doc": {"a": [1, 2], "b": null}, "blob": "AP8Q"},
            {"id": 2, "flag": false, "small": 2147483647, "big": i64::MIN, "ratio": 0.125,
             "label": "héllo ✓", "happened": "2024-05-01T12:34:56.789Z",
             "doc": {"k": "v", "n": [true]}, "blob": "AP8Q"},
            {"id": 3, "flag": null, "small": null, "big": 42, "ratio": null, "label": "x",
             "happened": null, "doc": null, "blob": null},
        ]);
        assert_eq!(results[0]["rows"], expected_rows, "{table}");
        assert_eq!(results[0]["row_count"], 3, "{table}");
    }
}

#[test]
fn seq_is_a_string_of_digits_that_grows_with_every_write() {
    let setup = Setup::start();
    setup.ok(
        "CREATE TABLE app.notes (id BIGINT PRIMARY KEY, label TEXT) WITH (TYPE = 'USER')",
        &[],
    );
    for id in 1..=3 {
        let insert = "INSERT INTO app.notes (id, label) VALUES ($1, $2)";
        assert_eq!(
            setup.affected(insert, &[json!(id), json!(format!("n{id}"))]),
            1
        );
    }
    let before = setup.rows("SELECT id, _seq FROM app.notes ORDER BY id", &[]);
    assert_eq!(ids(&before), [1, 2, 3]);
    let seqs: Vec<u64> = before.iter().map(seq).collect();
    assert!(seqs[0] < seqs[1] && seqs[1] < seqs[2], "{seqs:?}");

    // `_seq` is accepted as a string or as a number in parameters.
    let after_first = "SELECT id FROM app.notes WHERE _seq > $1 ORDER BY id";
    assert_eq!(
        ids(&setup.rows(after_first, &[json!(seqs[0].to_string())])),
        [2, 3]
    );
    assert_eq!(ids(&setup.rows(after_first, &[json!(seqs[0])])), [2, 3]);

    let update = "UPDATE app.notes SET label = 'two!' WHERE id = 2";
    assert_eq!(setup.affected(update, &[]), 1);
    let updated = setup.rows("SELECT id, label, _seq FROM app.notes WHERE id = 2", &[]);
    assert_eq!(updated.len(), 1, "{updated:?}");
    assert_eq!(updated[0]["label"], "two!");
    assert!(seq(&updated[0]) > seqs[2], "{updated:?} after {seqs:?}");

    assert_eq!(setup.affected("DELETE FROM app.notes WHERE id = 1", &[]), 1);
    assert_eq!(setup.affected("DELETE FROM app.notes WHERE id = 1", &[]), 0);
    assert_eq!(
        setup.affected("DELETE FROM app.notes WHERE id = 99", &[]),
        0
    );
    let left = setup.rows("SELECT * FROM app.notes ORDER BY id", &[]);
    assert_eq!(
        left,
        [
            json!({"id": 2, "label": "two!"}),
            json!({"id": 3, "label": "n3"})
        ]
    );
    assert_eq!(
        setup.rows("SELECT * FROM app.notes WHERE id = 1", &[]),
        Vec::<Value>::new()
    );

    // A deleted key may be written again, with a newer `_seq`.
    let again = "INSERT INTO app.notes (id, label) VALUES (1, 'back')";
    assert_eq!(setup.affected(again, &[]), 1);
    let back = setup.rows("SELECT id, label, _seq FROM app.notes WHERE id = 1", &[]);
    assert_eq!(back[0]["label"], "back");
    assert!(seq(&back[0]) > seq(&updated[0]), "{back:?}");
}

#[test]
fn add_column_reads_null_for_old_rows() {
    let setup = Setup::start();
    setup.ok(
        "CREATE TABLE app.things (id BIGINT PRIMARY KEY, label TEXT) WITH (TYPE = 'SHARED');
         INSERT INTO app.things (id, label) VALUES (1, 'old'), (2, 'older')",
        &[],
    );
    setup.ok("ALTER TABLE app.things ADD COLUMN note TEXT", &[]);
    setup.ok(
        "INSERT INTO app.things (id, label, note) VALUES (3, 'new', 'noted')",
        &[],
    );
    let results = setup.ok("SELECT * FROM app.things ORDER BY id", &[]);
    let names: Vec<&str> = results[0]["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| c["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["id", "label", "note"]);
    let expected = json!([
        {"id": 1, "label": "old", "note": null},
        {"id": 2, "label": "older", "note": null},
        {"id": 3, "label": "new", "note": "noted"},
    ]);
    assert_eq!(results[0]["rows"], expected);

    assert_eq!(
        setup.affected("UPDATE app.things SET note = 'late' WHERE id = 1", &[]),
        1
    );
    let filtered = setup.rows("SELECT id FROM app.things WHERE note IS NULL", &[]);
    assert_eq!(ids(&filtered), [2]);
}

#[test]
fn show_and_describe_list_the_catalog() {
    let setup = Setup::start();
    setup.ok(
        "CREATE NAMESPACE other;
         CREATE TABLE app.tickets (id BIGINT PRIMARY KEY, title TEXT NOT NULL, priority INT)
           WITH (TYPE = 'USER');
         CREATE TABLE app.rooms (id BIGINT PRIMARY KEY, name TEXT) WITH (TYPE = 'SHARED');
         CREATE TABLE other.pings (id BIGINT PRIMARY KEY) WITH (TYPE = 'USER')",
        &[],
    );
    let namespaces: Vec<Value> = setup
        .rows("SHOW NAMESPACES", &[])
        .iter()
        .map(|row| row["namespace"].clone())
        .collect();
    assert!(
        namespaces.contains(&json!("app")) && namespaces.contains(&json!("other")),
        "{namespaces:?}"
    );

    let mut tables = setup.rows("SHOW TABLES", &[]);
    tables.sort_by_key(|row| row.to_string());
    let expected = [
        json!({"namespace": "app", "table": "rooms", "type": "SHARED"}),
        json!({"namespace": "app", "table": "tickets", "type": "USER"}),
        json!({"namespace": "other", "table": "pings", "type": "USER"}),
    ];
    assert_eq!(tables, expected);
    let in_other = setup.rows("SHOW TABLES IN other", &[]);
    assert_eq!(in_other, expected[2..]);

    let described = setup.rows("DESCRIBE TABLE app.tickets", &[]);
    let expected = [
        json!({"column": "id", "type": "BIGINT", "not_null": true, "primary_key": true, "default": null}),
        json!({"column": "title", "type": "TEXT", "not_null": true, "primary_key": false, "default": null}),
        json!({"column": "priority", "type": "INT", "not_null": false, "primary_key": false, "default": null}),
    ];
    assert_eq!(described, expected);
}

#[test]
fn order_by_limit_and_offset_page_through_rows() {
    let setup = Setup::start();
    setup.ok(
        "CREATE TABLE app.scores (id BIGINT PRIMARY KEY, player TEXT, score INT)
           WITH (TYPE = 'USER');
         INSERT INTO app.scores (id, player, score) VALUES
           (1, 'ann', 30), (2, 'bob', 10), (3, 'cid', 30), (4, 'dee', NULL), (5, 'eve', 20),
           (6, 'fay', 50)",
        &[],
    );
    let all = "SELECT id FROM app.scores ORDER BY score DESC, id";
    // NULL sorts as larger than every value: first when descending.
    assert_eq!(ids(&setup.rows(all, &[])), [4, 6, 1, 3, 5, 2]);
    let ascending = "SELECT id FROM app.scores ORDER BY score, id DESC";
    assert_eq!(ids(&setup.rows(ascending, &[])), [2, 5, 3, 1, 6, 4]);
    let by_name = "SELECT id, player FROM app.scores ORDER BY player DESC LIMIT 2";
    assert_eq!(ids(&setup.rows(by_name, &[])), [6, 5]);

    let page = "SELECT id FROM app.scores ORDER BY id LIMIT $1 OFFSET $2";
    let pages: Vec<Vec<i64>> = (0..4)
        .map(|n| ids(&setup.rows(page, &[json!(2), json!(n * 2)])))
        .collect();
    assert_eq!(pages, [vec![1, 2], vec![3, 4], vec![5, 6], vec![]]);
    let literal = "SELECT id FROM app.scores ORDER BY id DESC LIMIT 3 OFFSET 1";
    assert_eq!(ids(&setup.rows(literal, &[])), [5, 4, 3]);
    let zero = "SELECT id FROM app.scores ORDER BY id LIMIT 0";
    assert_eq!(ids(&setup.rows(zero, &[])), Vec::<i64>::new());
}

#[test]
fn several_statements_in_one_request_give_one_result_each() {
    let setup = Setup::start();
    let answer = strand_tests::sql(
        &setup.server,
        &setup.admin,
        "CREATE TABLE app.steps (id BIGINT PRIMARY KEY, label TEXT) WITH (TYPE = 'USER');
         INSERT INTO app.steps (id, label) VALUES (1, 'one');
         INSERT INTO app.steps (id, label) VALUES (2, 'two'), (3, $1);
         SELECT id, label FROM app.steps ORDER BY id;
         UPDATE app.steps SET label = 'changed' WHERE id >= 2;
         DELETE FROM app.steps WHERE id = 1;
         SELECT * FROM app.steps ORDER BY id",
        &[json!("three")],
    );
    assert_eq!(answer.status, 200, "{}", answer.text);
    let body = answer.json();
    assert_eq!(body["status"], "success");
    assert!(body["took_ms"].is_number(), "{body}");
    let results = body["results"].as_array().expect("results");
    assert_eq!(results.len(), 7, "{body}");
    let message = |i: usize| {
        results[i]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert!(!message(0).is_empty(), "CREATE TABLE has a message: {body}");
    let counts: Vec<&Value> = [1, 2, 4, 5]
        .iter()
        .map(|&i| &results[i]["row_count"])
        .collect();
    assert_eq!(
        counts,
        [&json!(1), &json!(2), &json!(2), &json!(1)],
        "{body}"
    );
    // Each SELECT sees the statements before it and none after.
    let first = json!([
        {"id": 1, "label": "one"},
        {"id": 2, "label": "two"},
        {"id": 3, "label": "three"},
    ]);
    assert_eq!(results[3]["rows"], first, "{body}");
    let last = json!([{"id": 2, "label": "changed"}, {"id": 3, "label": "changed"}]);
    assert_eq!(results[6]["rows"], last, "{body}");
}
