//! UUID, DECIMAL(p,s) and DATE columns and column DEFAULTs through a real server (docs/sql.md,
//! "Types" and "Defaults"): CREATE TABLE with them, INSERTs that omit defaulted columns,
//! filters, ORDER BY, exact SUM / AVG and CASTs over HTTP, the errors of bad values with their
//! codes and positions, rows still read exactly after a restart, and a live subscription whose
//! WHERE compares a DECIMAL.

use serde_json::{json, Value};
use strand_tests::ws::*;
use strand_tests::{
    assert_client_error, bearer, error_position, rows, sql, sql_ok, AdminServer, ServerOptions,
    StrandServer, ADMIN_PASSWORD,
};
use strand_wire::ChangeType;

const ORDERS: &str = "CREATE TABLE app.orders (
    id UUID PRIMARY KEY,
    price DECIMAL(10,2) NOT NULL,
    due DATE,
    created_at TIMESTAMP NOT NULL DEFAULT now(),
    ref BIGINT DEFAULT SNOWFLAKE_ID(),
    status TEXT DEFAULT 'open'
) WITH (TYPE = 'SHARED')";

const FIRST: &str = "00000000-0000-0000-0000-000000000001";
const SECOND: &str = "00000000-0000-0000-0000-000000000002";
const THIRD: &str = "00000000-0000-0000-0000-000000000003";
const UPPER: &str = "550E8400-E29B-41D4-A716-446655440000";
const LOWER: &str = "550e8400-e29b-41d4-a716-446655440000";

fn insert_orders(server: &StrandServer, admin: &str) {
    sql_ok(
        server,
        admin,
        &format!(
            "INSERT INTO app.orders (id, price, due) VALUES
               ('{UPPER}', 0.10, '2024-05-01'),
               ('{SECOND}', '0.10', '2024-06-15'),
               ('{FIRST}', 0.1, NULL);
             INSERT INTO app.orders (id, price, due, status) VALUES
               ('{THIRD}', 12.345, '2023-12-31', NULL)"
        ),
        &[],
    );
}

fn query(server: &StrandServer, admin: &str, text: &str) -> Vec<Value> {
    rows(server, admin, text, &[])
}

#[test]
fn new_types_and_defaults_over_http_and_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = ServerOptions::with_admin_password(ADMIN_PASSWORD);
    let server = StrandServer::start(dir.path(), &options);
    let admin = bearer(&server, "admin", ADMIN_PASSWORD);
    sql_ok(
        &server,
        &admin,
        &format!("CREATE NAMESPACE app; {ORDERS}"),
        &[],
    );
    insert_orders(&server, &admin);

    // Omitted columns took their defaults; an explicit NULL stayed NULL; the price was
    // rounded to two decimals and comes back as a string with exactly two.
    let listed = "SELECT id, price, due, status FROM app.orders ORDER BY id";
    let expected = [
        json!({"id": FIRST, "price": "0.10", "due": null, "status": "open"}),
        json!({"id": SECOND, "price": "0.10", "due": "2024-06-15", "status": "open"}),
        json!({"id": THIRD, "price": "12.35", "due": "2023-12-31", "status": null}),
        json!({"id": LOWER, "price": "0.10", "due": "2024-05-01", "status": "open"}),
    ];
    assert_eq!(query(&server, &admin, listed), expected);

    // now(): one time per INSERT statement; SNOWFLAKE_ID(): a distinct Snowflake id per row,
    // drawn from the `_seq` generator before the row's own `_seq`.
    let made = query(
        &server,
        &admin,
        "SELECT id, created_at, ref, _seq FROM app.orders ORDER BY id",
    );
    let time = |row: &Value| row["created_at"].as_str().expect("time").to_owned();
    assert_eq!(time(&made[0]), time(&made[1]));
    assert_eq!(time(&made[0]), time(&made[3]));
    assert!(time(&made[0]).starts_with("20"), "{made:?}");
    let mut refs: Vec<u64> = made
        .iter()
        .map(|row| row["ref"].as_u64().expect("ref is a number"))
        .collect();
    for (row, reference) in made.iter().zip(&refs) {
        let seq: u64 = row["_seq"].as_str().expect("_seq").parse().expect("digits");
        assert!(*reference > 1 << 40 && *reference < seq, "{row}");
    }
    refs.sort_unstable();
    refs.dedup();
    assert_eq!(refs.len(), 4, "{made:?}");

    check_filters_and_order(&server, &admin);
    check_aggregates_and_casts(&server, &admin);
    check_errors(&server, &admin);
    check_describe(&server, &admin);

    let before = query(
        &server,
        &admin,
        "SELECT *, _seq FROM app.orders ORDER BY id",
    );
    assert_eq!(server.terminate().code(), Some(0));
    let server = StrandServer::start(dir.path(), &options);
    let admin = bearer(&server, "admin", ADMIN_PASSWORD);
    let after = query(
        &server,
        &admin,
        "SELECT *, _seq FROM app.orders ORDER BY id",
    );
    assert_eq!(after, before);
    // Defaults survived the restart with the catalog.
    sql_ok(
        &server,
        &admin,
        "INSERT INTO app.orders (id, price) VALUES ('00000000-0000-0000-0000-0000000000ff', 1)",
        &[],
    );
    let added = query(
        &server,
        &admin,
        "SELECT price, status, ref IS NOT NULL AS has_ref FROM app.orders \
         WHERE id = '00000000-0000-0000-0000-0000000000FF'",
    );
    assert_eq!(
        added,
        [json!({"price": "1.00", "status": "open", "has_ref": true})]
    );
    assert_eq!(server.terminate().code(), Some(0));
}

fn check_filters_and_order(server: &StrandServer, admin: &str) {
    let ids = |text: &str| -> Vec<Value> {
        query(server, admin, text)
            .into_iter()
            .map(|row| row["id"].clone())
            .collect()
    };
    assert_eq!(
        ids(&format!("SELECT id FROM app.orders WHERE id = '{LOWER}'")),
        [json!(LOWER)]
    );
    assert_eq!(
        ids(&format!("SELECT id FROM app.orders WHERE id > '{THIRD}'")),
        [json!(LOWER)]
    );
    assert_eq!(
        ids("SELECT id FROM app.orders WHERE price > 0.1"),
        [json!(THIRD)]
    );
    assert_eq!(
        ids("SELECT id FROM app.orders WHERE price = '0.10' ORDER BY id"),
        [json!(FIRST), json!(SECOND), json!(LOWER)]
    );
    // A text constant is not rounded to the column's scale before it is compared.
    assert!(ids("SELECT id FROM app.orders WHERE price = '12.345'").is_empty());
    assert_eq!(
        ids("SELECT id FROM app.orders WHERE price BETWEEN 12 AND 13"),
        [json!(THIRD)]
    );
    assert_eq!(
        ids("SELECT id FROM app.orders ORDER BY price DESC, id"),
        [json!(THIRD), json!(FIRST), json!(SECOND), json!(LOWER)]
    );
    assert_eq!(
        ids("SELECT id FROM app.orders WHERE due >= '2024-01-01' ORDER BY due DESC"),
        [json!(SECOND), json!(LOWER)]
    );
    // A DATE meets a TIMESTAMP at midnight UTC of its day.
    assert_eq!(
        ids("SELECT id FROM app.orders WHERE due < TIMESTAMP '2024-05-01T00:00:01Z' ORDER BY due"),
        [json!(THIRD), json!(LOWER)]
    );
    assert_eq!(
        ids("SELECT id FROM app.orders WHERE due = TIMESTAMP '2024-05-01T00:00:00Z'"),
        [json!(LOWER)]
    );
    let params = sql_ok(
        server,
        admin,
        "SELECT id FROM app.orders WHERE price > $1 AND due < $2 AND id <> $3",
        &[json!("1.5"), json!("2024-01-01"), json!(LOWER)],
    );
    assert_eq!(params[0]["rows"], json!([{"id": THIRD}]));
    let grouped = query(
        server,
        admin,
        "SELECT price, COUNT(*) AS n FROM app.orders GROUP BY price ORDER BY price",
    );
    assert_eq!(
        grouped,
        [
            json!({"price": "0.10", "n": 3}),
            json!({"price": "12.35", "n": 1})
        ]
    );
}

fn check_aggregates_and_casts(server: &StrandServer, admin: &str) {
    let aggregates = query(
        server,
        admin,
        "SELECT SUM(price) AS total, AVG(price) AS mean, MIN(price) AS low, MAX(due) AS last, \
         COUNT(DISTINCT price) AS prices FROM app.orders WHERE price < 1",
    );
    assert_eq!(
        aggregates,
        [
            json!({"total": "0.30", "mean": "0.100000", "low": "0.10", "last": "2024-06-15",
                "prices": 1})
        ]
    );
    let casts = query(
        server,
        admin,
        &format!(
            "SELECT CAST('12.5' AS DECIMAL(5,2)) AS d, CAST(price AS TEXT) AS t, \
             CAST(price AS INT) AS i, CAST(price AS DOUBLE) AS f, price * 2 AS twice, \
             price / 3 AS third, price + 1 AS more, price - 0.5 AS less, ROUND(price, 1) AS r, \
             ABS(-price) AS a, CAST(due AS TIMESTAMP) AS ts, CAST(due AS TEXT) AS dt, \
             CAST(TIMESTAMP '2024-05-01T23:59:59Z' AS DATE) AS day, \
             CAST('2024-02-29' AS DATE) AS leap, CAST(id AS TEXT) AS it, \
             CAST('{UPPER}' AS UUID) AS u, CAST(7 AS DECIMAL(4,1)) AS seven \
             FROM app.orders WHERE id = '{THIRD}'"
        ),
    );
    assert_eq!(
        casts,
        [
            json!({"d": "12.50", "t": "12.35", "i": 12, "f": 12.35, "twice": "24.70",
                "third": "4.116667", "more": "13.35", "less": 11.85, "r": "12.4",
                "a": "12.35", "ts": "2023-12-31T00:00:00Z", "dt": "2023-12-31",
                "day": "2024-05-01", "leap": "2024-02-29", "it": THIRD, "u": LOWER,
                "seven": "7.0"})
        ]
    );
}

fn check_errors(server: &StrandServer, admin: &str) {
    // The error's position, as the column of `culprit` in one-line `text`.
    let error = |text: &str, code: &str| -> (u64, u64) {
        let answer = sql(server, admin, text, &[]);
        error_position(&assert_client_error(&answer, code))
    };
    let at = |text: &str, culprit: &str| (1, text.find(culprit).expect("culprit") as u64 + 1);
    let bad_uuid = "INSERT INTO app.orders (id, price) VALUES ('nope', 1)";
    assert_eq!(error(bad_uuid, "invalid_value"), at(bad_uuid, "'nope'"));
    let too_big = "INSERT INTO app.orders (id, price) VALUES ('00000000-0000-0000-0000-00000000000a', 123456789)";
    assert_eq!(error(too_big, "numeric_overflow"), at(too_big, "123456789"));
    let bad_date =
        format!("INSERT INTO app.orders (id, price, due) VALUES ('{FIRST}', 1, '2024-02-30')");
    assert_eq!(
        error(&bad_date, "invalid_value"),
        at(&bad_date, "'2024-02-30'")
    );
    let bad_cast = "SELECT CAST('1.2.3' AS DECIMAL(5,2)) FROM app.orders";
    assert_eq!(error(bad_cast, "invalid_value"), at(bad_cast, "'1.2.3'"));
    let no_price = "INSERT INTO app.orders (id) VALUES ('00000000-0000-0000-0000-00000000000b')";
    error(no_price, "not_null_violation");
    let answer = sql(
        server,
        admin,
        "SELECT id FROM app.orders WHERE due = $1",
        &[json!("yesterday")],
    );
    assert_client_error(&answer, "invalid_parameter");
    let bad_default = "CREATE TABLE app.bad (id INT PRIMARY KEY, d DATE DEFAULT 'soon')";
    assert_eq!(
        error(bad_default, "invalid_value"),
        at(bad_default, "'soon'")
    );
    let added = "ALTER TABLE app.orders ADD COLUMN note TEXT DEFAULT 'x'";
    error(added, "unsupported");
    // Nothing of the failed statements was written.
    let count = query(server, admin, "SELECT COUNT(*) AS n FROM app.orders");
    assert_eq!(count, [json!({"n": 4})]);
}

fn check_describe(server: &StrandServer, admin: &str) {
    let described = query(server, admin, "DESCRIBE TABLE app.orders");
    let summary: Vec<(Value, Value)> = described
        .iter()
        .map(|row| (row["type"].clone(), row["default"].clone()))
        .collect();
    assert_eq!(
        summary,
        [
            (json!("UUID"), json!(null)),
            (json!("DECIMAL(10,2)"), json!(null)),
            (json!("DATE"), json!(null)),
            (json!("TIMESTAMP"), json!("now()")),
            (json!("BIGINT"), json!("SNOWFLAKE_ID()")),
            (json!("TEXT"), json!("'open'")),
        ]
    );
}

#[test]
fn a_subscription_filtering_on_a_decimal_receives_matching_inserts() {
    let setup = AdminServer::with_app(ORDERS);
    insert_orders(&setup.server, &setup.admin);
    let mut client = admin_ws(&setup);
    client.send(&subscribe_message(
        "big",
        "SELECT id, price, due FROM app.orders WHERE price > 5.5 AND due >= '2024-01-01'",
        None,
        None,
    ));
    expect_ack(&mut client, "big");
    let (rows, control) = expect_batch(&mut client, "big");
    assert!(!control.has_more);
    assert!(rows.is_empty(), "{rows:?}");
    setup.exec(
        "INSERT INTO app.orders (id, price, due) VALUES \
         ('00000000-0000-0000-0000-000000000010', 5.50, '2024-07-01')",
    );
    setup.exec(
        "INSERT INTO app.orders (id, price, due) VALUES \
         ('00000000-0000-0000-0000-000000000011', 5.51, '2024-07-02')",
    );
    let change = expect_change(&mut client, "big", ChangeType::Insert);
    assert_eq!(
        change.row["id"],
        json!("00000000-0000-0000-0000-000000000011")
    );
    assert_eq!(change.row["price"], json!("5.51"));
    assert_eq!(change.row["due"], json!("2024-07-02"));
    setup.exec(
        "UPDATE app.orders SET price = price - 1 WHERE id = '00000000-0000-0000-0000-000000000011'",
    );
    let gone = expect_change(&mut client, "big", ChangeType::Delete);
    assert_eq!(
        gone.row["id"],
        json!("00000000-0000-0000-0000-000000000011")
    );
}
