//! Every WHERE form of docs/sql.md (`= <> < <= > >=`, AND, OR, NOT, IN (list), BETWEEN,
//! LIKE, IS [NOT] NULL) and parameters `$1`, `$2` select exactly the expected rows, with NULL
//! following SQL's three-valued logic; UPDATE and DELETE use the same filters.

use serde_json::{json, Value};
use strand_tests::{rows, sql_ok, AdminServer};

/// `(id, name, qty, price, tag)`; `tag` is NULL for 3 and 5.
const ITEMS: &str = "INSERT INTO app.items (id, name, qty, price, tag) VALUES
    (1, 'apple', 5, 1.5, 'fruit'),
    (2, 'banana', 0, 0.25, 'fruit'),
    (3, 'carrot', 12, 0.8, NULL),
    (4, 'date', 7, 3.0, 'dried'),
    (5, 'eggplant', 3, 2.2, NULL),
    (6, 'fig', 9, 4.5, 'dried')";

fn ids(rows: &[Value]) -> Vec<i64> {
    rows.iter()
        .map(|row| row["id"].as_i64().expect("id is a number"))
        .collect()
}

#[test]
fn where_operators_and_parameters() {
    let AdminServer {
        server,
        admin,
        dir: _dir,
    } = AdminServer::start();
    sql_ok(
        &server,
        &admin,
        &format!(
            "CREATE NAMESPACE app;
             CREATE TABLE app.items (id BIGINT PRIMARY KEY, name TEXT NOT NULL, qty INT,
               price DOUBLE, tag TEXT) WITH (TYPE = 'SHARED');
             {ITEMS}"
        ),
        &[],
    );
    let select = |condition: &str, params: &[Value]| -> Vec<i64> {
        let text = format!("SELECT id FROM app.items WHERE {condition} ORDER BY id");
        ids(&rows(&server, &admin, &text, params))
    };

    let cases: &[(&str, &[i64])] = &[
        ("qty = 7", &[4]),
        ("qty <> 7", &[1, 2, 3, 5, 6]),
        ("qty < 5", &[2, 5]),
        ("qty <= 5", &[1, 2, 5]),
        ("qty > 7", &[3, 6]),
        ("qty >= 7", &[3, 4, 6]),
        ("name = 'fig'", &[6]),
        ("price > 2.2", &[4, 6]),
        ("price >= 2.2", &[4, 5, 6]),
        ("price > 1.0 AND qty < 8", &[1, 4, 5]),
        ("qty = 0 OR name = 'fig'", &[2, 6]),
        ("NOT (qty > 5)", &[1, 2, 5]),
        // NULL tags are neither 'fruit' nor not 'fruit'.
        ("NOT tag = 'fruit'", &[4, 6]),
        ("tag <> 'fruit'", &[4, 6]),
        ("tag = NULL", &[]),
        ("id IN (1, 3, 6)", &[1, 3, 6]),
        ("id IN (6, 99)", &[6]),
        ("name IN ('banana', 'fig', 'kiwi')", &[2, 6]),
        ("qty NOT IN (0, 5)", &[3, 4, 5, 6]),
        ("qty BETWEEN 3 AND 7", &[1, 4, 5]),
        ("qty NOT BETWEEN 3 AND 7", &[2, 3, 6]),
        ("name LIKE 'b%'", &[2]),
        ("name LIKE '%an%'", &[2, 5]),
        ("name LIKE '_ig'", &[6]),
        ("name NOT LIKE '%a%'", &[6]),
        ("tag IS NULL", &[3, 5]),
        ("tag IS NOT NULL", &[1, 2, 4, 6]),
        (
            "(qty > 4 OR tag IS NULL) AND NOT name LIKE 'c%'",
            &[1, 4, 5, 6],
        ),
        ("qty > 100", &[]),
    ];
    for (condition, expected) in cases {
        assert_eq!(select(condition, &[]), *expected, "WHERE {condition}");
    }

    let with_params: &[(&str, &[Value], &[i64])] = &[
        ("id = $1", &[json!(4)], &[4]),
        // BIGINT parameters may come as strings (JavaScript cannot hold every BIGINT).
        ("id = $1", &[json!("4")], &[4]),
        (
            "qty > $1 AND tag = $2",
            &[json!(4), json!("dried")],
            &[4, 6],
        ),
        (
            "tag = $2 OR qty = $1",
            &[json!(0), json!("dried")],
            &[2, 4, 6],
        ),
        ("name LIKE $1", &[json!("%e%")], &[1, 4, 5]),
        ("id IN ($1, $2)", &[json!(2), json!(5)], &[2, 5]),
        ("qty BETWEEN $1 AND $2", &[json!(5), json!(9)], &[1, 4, 6]),
        ("tag IS NULL OR qty > $1", &[json!(8)], &[3, 5, 6]),
        ("price <= $1", &[json!(0.8)], &[2, 3]),
        ("tag = $1", &[json!(null)], &[]),
    ];
    for (condition, params, expected) in with_params {
        assert_eq!(
            select(condition, params),
            *expected,
            "WHERE {condition} with {params:?}"
        );
    }

    // UPDATE and DELETE filter the same way.
    let update = sql_ok(
        &server,
        &admin,
        "UPDATE app.items SET tag = $1 WHERE tag IS NULL AND qty > $2",
        &[json!("root"), json!(10)],
    );
    assert_eq!(update[0]["row_count"], 1, "{update:?}");
    assert_eq!(select("tag = 'root'", &[]), [3]);
    let delete = sql_ok(
        &server,
        &admin,
        "DELETE FROM app.items WHERE name LIKE $1 OR id IN (2, 99)",
        &[json!("%g%")],
    );
    assert_eq!(delete[0]["row_count"], 3, "{delete:?}");
    assert_eq!(select("qty >= 0", &[]), [1, 3, 4]);
}
