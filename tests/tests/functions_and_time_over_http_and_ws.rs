//! Scalar functions, CASE, ILIKE, CAST and `now() - INTERVAL` through a real server (issue 21;
//! docs/sql.md, "Functions"): one-shot over HTTP, and in a live subscription's filter and
//! projection; `now()` in a subscription's SELECT list is refused with the reason.

use serde_json::json;
use strand_tests::ws::*;
use strand_tests::{rows, AdminServer};
use strand_wire::ChangeType;

const EVENTS: &str = "CREATE TABLE app.events (id BIGINT PRIMARY KEY, name TEXT, score INT, \
     at TIMESTAMP) WITH (TYPE = 'SHARED')";

#[test]
fn one_shot_queries_compute_functions_and_time_windows() {
    let setup = AdminServer::with_app(EVENTS);
    setup.exec(
        "INSERT INTO app.events (id, name, score, at) VALUES \
         (1, 'Alpha', 10, '2020-01-01 00:00:00'), (2, 'beta', NULL, now()), \
         (3, NULL, -7, now() - INTERVAL '2 hours')",
    );
    let got = rows(
        &setup.server,
        &setup.admin,
        "SELECT id, UPPER(name) AS n, COALESCE(score, 0) AS s, ABS(score) AS a, \
         CASE WHEN score > 0 THEN 'up' WHEN score < 0 THEN 'down' ELSE 'none' END AS dir, \
         LENGTH(name) AS len, SUBSTRING(name FROM 2 FOR 3) AS mid, CAST(score AS TEXT) AS t \
         FROM app.events ORDER BY id",
        &[],
    );
    assert_eq!(
        got,
        [
            json!({"id": 1, "n": "ALPHA", "s": 10, "a": 10, "dir": "up", "len": 5, "mid": "lph", "t": "10"}),
            json!({"id": 2, "n": "BETA", "s": 0, "a": null, "dir": "none", "len": 4, "mid": "eta", "t": null}),
            json!({"id": 3, "n": null, "s": -7, "a": 7, "dir": "down", "len": null, "mid": null, "t": "-7"}),
        ]
    );
    let recent = |sql: &str| -> Vec<i64> {
        rows(&setup.server, &setup.admin, sql, &[])
            .iter()
            .filter_map(|r| r["id"].as_i64())
            .collect()
    };
    assert_eq!(
        recent("SELECT id FROM app.events WHERE at > now() - INTERVAL '1 hour' ORDER BY id"),
        [2]
    );
    assert_eq!(
        recent(
            "SELECT id FROM app.events WHERE at > CURRENT_TIMESTAMP - INTERVAL '1 day' ORDER BY id"
        ),
        [2, 3]
    );
    assert_eq!(
        recent("SELECT id FROM app.events WHERE name ILIKE 'a%' OR name ILIKE 'B%' ORDER BY id"),
        [1, 2]
    );
}

#[test]
fn subscriptions_filter_and_project_with_functions_but_refuse_now_in_the_select_list() {
    let setup = AdminServer::with_app(EVENTS);
    setup.exec("INSERT INTO app.events (id, name, score) VALUES (1, 'Alpha', 1), (2, 'beta', 2)");
    let mut client = admin_ws(&setup);
    let sql = "SELECT id, LOWER(name) AS name FROM app.events WHERE name ILIKE 'a%'";
    client.send(&subscribe_message("f", sql, None, None));
    expect_ack(&mut client, "f");
    let (rows, _) = expect_batch(&mut client, "f");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["name"], json!("alpha"));
    setup.exec("UPDATE app.events SET name = 'ALPINE' WHERE id = 2");
    let change = expect_change(&mut client, "f", ChangeType::Insert);
    assert_eq!(change.row["name"], json!("alpine"));

    // now() in the SELECT list has no instant at which a row changes (time windows in WHERE
    // are `live_time_windows.rs`).
    let clock = "SELECT id, now() AS t FROM app.events";
    client.send(&subscribe_message("t", clock, None, None));
    expect_error(&mut client, "t", "unsupported");
}
