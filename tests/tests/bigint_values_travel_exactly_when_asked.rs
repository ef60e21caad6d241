//! BIGINT precision for JavaScript clients (docs/http.md, "Values in JSON"; issue 20): a
//! client that asks with `"bigint": "string"` (an HTTP SQL request's field, a subscription's
//! option) reads every BIGINT value as a string of decimal digits, so 9007199254740993 (2^53 +
//! 1, which a JavaScript number rounds to ...992) arrives exactly, in query results, snapshot
//! batches, changes and `old_rows`. A client that does not ask reads numbers as before, and
//! other types are written as they always were.

use serde_json::{json, Value};
use strand_tests::ws::*;
use strand_tests::{assert_client_error, post_json, AdminServer};
use strand_wire::{BigIntAs, ChangeType, ClientMessage, SubscribeOptions, Subscription};

const PAST_2_53: i64 = 9_007_199_254_740_993;
const COUNTERS: &str = "CREATE TABLE app.counters (id BIGINT PRIMARY KEY, n BIGINT, small INT, \
     label TEXT, ratio DOUBLE) WITH (TYPE = 'SHARED')";

fn query(setup: &AdminServer, body: Value) -> Value {
    let answer = post_json(&setup.server.url("/v1/api/sql"), Some(&setup.admin), &body);
    assert_eq!(answer.status, 200, "{body}\n-> {}", answer.text);
    answer.json()
}

#[test]
fn http_results_carry_bigints_as_strings_only_for_clients_that_ask() {
    let setup = AdminServer::with_app(COUNTERS);
    // Written as a string parameter: a JavaScript client cannot even hold it as a number.
    query(
        &setup,
        json!({"sql": "INSERT INTO app.counters (id, n, small, label, ratio) VALUES ($1, $2, 7, 'x', 1.5)",
               "params": [PAST_2_53.to_string(), (-PAST_2_53).to_string()]}),
    );
    let select = "SELECT id, n, small, label, ratio, _seq FROM app.counters";

    let asked = query(&setup, json!({"sql": select, "bigint": "string"}));
    let row = &asked["results"][0]["rows"][0];
    assert_eq!(row["id"], json!("9007199254740993"), "{asked}");
    assert_eq!(row["n"], json!("-9007199254740993"), "{asked}");
    assert_eq!(row["small"], json!(7), "INT stays a number: {asked}");
    assert_eq!(row["label"], json!("x"));
    assert_eq!(row["ratio"], json!(1.5));
    assert!(row["_seq"].is_string(), "{asked}");
    let columns = &asked["results"][0]["columns"];
    assert_eq!(
        columns[0],
        json!({"name": "id", "type": "BIGINT"}),
        "{asked}"
    );

    // Old clients: numbers, exactly as before (serde_json reads the integer exactly).
    let plain = query(&setup, json!({"sql": select}));
    let row = &plain["results"][0]["rows"][0];
    assert_eq!(row["id"], json!(PAST_2_53), "{plain}");
    assert_eq!(row["n"], json!(-PAST_2_53), "{plain}");
    let numbers = query(&setup, json!({"sql": select, "bigint": "number"}));
    assert_eq!(numbers["results"][0]["rows"], plain["results"][0]["rows"]);

    // A parameter in a WHERE compares exactly too.
    let found = query(
        &setup,
        json!({"sql": "SELECT id FROM app.counters WHERE id = $1", "params": [PAST_2_53.to_string()],
               "bigint": "string"}),
    );
    assert_eq!(
        found["results"][0]["rows"],
        json!([{"id": "9007199254740993"}])
    );

    let wrong = post_json(
        &setup.server.url("/v1/api/sql"),
        Some(&setup.admin),
        &json!({"sql": select, "bigint": "float"}),
    );
    let error = assert_client_error(&wrong, "invalid_request");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("float")),
        "{error}"
    );
}

fn subscribe(client: &mut WsClient, id: &str, sql: &str, bigint: Option<BigIntAs>) {
    client.send(&ClientMessage::Subscribe {
        subscription: Subscription {
            id: id.to_owned(),
            sql: sql.to_owned(),
            options: SubscribeOptions {
                batch_size: None,
                from_seq_id: None,
                bigint,
                params: Vec::new(),
                as_of_seq: None,
            },
        },
    });
}

#[test]
fn subscriptions_carry_bigints_as_strings_only_when_asked() {
    let setup = AdminServer::with_app(COUNTERS);
    setup.exec(&format!(
        "INSERT INTO app.counters (id, n, small) VALUES ({PAST_2_53}, 1, 2)"
    ));
    let mut client = admin_ws(&setup);
    let sql = "SELECT id, n, small FROM app.counters";
    // Two subscriptions of the same SELECT list on one connection, one asking for strings:
    // the fan-out must not hand one the other's encoding.
    subscribe(&mut client, "strings", sql, Some(BigIntAs::String));
    let ack = client.recv_json();
    assert_eq!(ack["type"], "subscription_ack", "{ack}");
    assert_eq!(ack["schema"][0], json!({"name": "id", "type": "BIGINT"}));
    let batch = client.recv_json();
    assert_eq!(batch["type"], "initial_data_batch", "{batch}");
    assert_eq!(batch["rows"][0]["id"], json!("9007199254740993"), "{batch}");
    assert_eq!(batch["rows"][0]["n"], json!("1"), "{batch}");
    assert_eq!(batch["rows"][0]["small"], json!(2), "{batch}");

    subscribe(&mut client, "numbers", sql, None);
    let ack = client.recv_json();
    assert_eq!(ack["type"], "subscription_ack", "{ack}");
    let batch = client.recv_json();
    assert_eq!(batch["rows"][0]["id"], json!(PAST_2_53), "{batch}");

    setup.exec(&format!(
        "UPDATE app.counters SET n = {} WHERE id = {PAST_2_53}",
        PAST_2_53 + 1
    ));
    let mut changes = Vec::new();
    for _ in 0..2 {
        let change = client.recv_json();
        assert_eq!(change["type"], "change", "{change}");
        assert_eq!(change["change_type"], json!(ChangeType::Update), "{change}");
        changes.push(change);
    }
    changes.sort_by_key(|c| c["subscription_id"].as_str().map(str::to_owned));
    let (numbers, strings) = (&changes[0], &changes[1]);
    assert_eq!(strings["subscription_id"], "strings");
    assert_eq!(
        strings["rows"][0]["n"],
        json!("9007199254740994"),
        "{strings}"
    );
    assert_eq!(
        strings["rows"][0]["id"],
        json!("9007199254740993"),
        "{strings}"
    );
    assert_eq!(strings["old_rows"][0]["n"], json!("1"), "{strings}");
    assert_eq!(numbers["rows"][0]["n"], json!(PAST_2_53 + 1), "{numbers}");
    assert_eq!(numbers["old_rows"][0]["n"], json!(1), "{numbers}");
}
