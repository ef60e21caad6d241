//! Issue 16, defect 7: DDL under a live subscription.
//!
//! The bug: after `DROP TABLE` a subscription on the table went quiet forever (the client
//! waited for changes that could never come), and after `ALTER TABLE ... ADD COLUMN` a
//! `SELECT *` subscription kept sending rows without the new column, so the client's result
//! no longer equalled its query. The fix: DROP TABLE ends every subscription of the table
//! with `table_dropped`; ADD COLUMN ends the `SELECT *` ones with `schema_changed` (the client
//! subscribes again and gets the new column); subscriptions that name their columns go on.
//! In each case the error is the subscription's last message and its id is free again.

use std::time::Duration;

use serde_json::json;
use strand_tests::ws::{admin_ws, expect_ack, expect_batch, subscribe_message, WsClient};
use strand_tests::AdminServer;
use strand_wire::{codes, ClientMessage};

const TABLE: &str = "CREATE TABLE app.notes (id BIGINT PRIMARY KEY, title TEXT) \
    WITH (TYPE = 'SHARED')";

fn setup() -> (AdminServer, WsClient) {
    let setup = AdminServer::with_app(TABLE);
    setup.exec("INSERT INTO app.notes (id, title) VALUES (1, 'a'), (2, 'b'), (3, 'c')");
    let client = admin_ws(&setup);
    (setup, client)
}

/// The raw JSON of the next message, which must be the error ending `id` with `code`.
fn expect_end(client: &mut WsClient, id: &str, code: &str) -> String {
    let message = client.recv_json();
    assert_eq!(message["type"], json!("error"), "{message}");
    assert_eq!(message["subscription_id"], json!(id), "{message}");
    assert_eq!(message["code"], json!(code), "{message}");
    let text = message["message"].as_str().unwrap_or_default().to_owned();
    assert!(
        text.contains("app.notes"),
        "the error names the table: {text}"
    );
    text
}

#[test]
fn drop_table_ends_live_subscriptions_with_table_dropped() {
    let (setup, mut client) = setup();
    client.send(&subscribe_message(
        "live",
        "SELECT id, title FROM app.notes",
        None,
        None,
    ));
    expect_ack(&mut client, "live");
    let (rows, control) = expect_batch(&mut client, "live");
    assert_eq!((rows.len(), control.has_more), (3, false));

    setup.exec("DROP TABLE app.notes");
    expect_end(&mut client, "live", codes::TABLE_DROPPED);
    // Nothing follows for it, and its id is free: subscribing again is refused for the
    // missing table, not as a duplicate.
    client.expect_silence(Duration::from_millis(300));
    client.send(&subscribe_message(
        "live",
        "SELECT id FROM app.notes",
        None,
        None,
    ));
    let refusal = client.recv_json();
    assert_eq!(refusal["code"], json!("unknown_table"), "{refusal}");
}

#[test]
fn drop_table_ends_a_subscription_paused_in_its_snapshot_and_a_resuming_one() {
    let (setup, mut client) = setup();
    // One row per batch: after batch 0 the snapshot waits for the client's next_batch.
    client.send(&subscribe_message(
        "paged",
        "SELECT * FROM app.notes",
        Some(1),
        None,
    ));
    expect_ack(&mut client, "paged");
    let (_, control) = expect_batch(&mut client, "paged");
    assert!(control.has_more);
    let boundary = control.snapshot_end_seq.0;
    // A resume from the boundary: caught up, joined to the live feed.
    let text = "SELECT id FROM app.notes";
    client.send(&subscribe_message("resumed", text, None, Some(boundary)));
    expect_ack(&mut client, "resumed");

    setup.exec("DROP TABLE app.notes");
    let mut ended = [expect_end_any(&mut client), expect_end_any(&mut client)];
    ended.sort();
    assert_eq!(ended, ["paged".to_owned(), "resumed".to_owned()]);
    client.expect_silence(Duration::from_millis(300));
}

/// The next message must be a `table_dropped` error; returns its subscription id.
fn expect_end_any(client: &mut WsClient) -> String {
    let message = client.recv_json();
    assert_eq!(message["code"], json!(codes::TABLE_DROPPED), "{message}");
    message["subscription_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn add_column_ends_select_star_subscriptions_and_keeps_named_ones() {
    let (setup, mut client) = setup();
    client.send(&subscribe_message(
        "star",
        "SELECT * FROM app.notes",
        None,
        None,
    ));
    expect_ack(&mut client, "star");
    expect_batch(&mut client, "star");
    let named = "SELECT id, title FROM app.notes WHERE id > 1";
    client.send(&subscribe_message("named", named, None, None));
    expect_ack(&mut client, "named");
    expect_batch(&mut client, "named");

    setup.exec("ALTER TABLE app.notes ADD COLUMN body TEXT");
    expect_end(&mut client, "star", codes::SCHEMA_CHANGED);
    setup.exec("INSERT INTO app.notes (id, title, body) VALUES (4, 'd', 'new')");
    let change = client.recv_json();
    assert_eq!(change["type"], json!("change"), "{change}");
    assert_eq!(change["subscription_id"], json!("named"), "{change}");
    assert_eq!(change["rows"][0]["title"], json!("d"), "{change}");

    // Subscribing again gives the new column.
    client.send(&subscribe_message(
        "star",
        "SELECT * FROM app.notes",
        None,
        None,
    ));
    let ack = client.recv_json();
    let names: Vec<&str> = ack["schema"]
        .as_array()
        .map(|columns| columns.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["id", "title", "body", "_seq"], "{ack}");
    let batch = client.recv_json();
    assert_eq!(batch["rows"].as_array().map(Vec::len), Some(4), "{batch}");
    assert_eq!(batch["rows"][3]["body"], json!("new"), "{batch}");
}

/// A client away during the DDL resumes afterwards. Found by the randomized test: a resume
/// from a `_seq` of the dropped table was served from the new table of the same name (its
/// rows replayed as inserts over the client's stale copy), and a `SELECT *` resume across
/// ADD COLUMN was served with the new schema while the client's rows lacked the column. Now
/// the first is refused with `table_dropped`, the second with `schema_changed`, each with
/// `lowest_seq`; a resume that names its columns goes on across ADD COLUMN.
#[test]
fn a_resume_across_ddl_is_refused_when_changes_cannot_bring_the_copy_up_to_date() {
    let (setup, mut client) = setup();
    client.send(&subscribe_message(
        "star",
        "SELECT * FROM app.notes",
        None,
        None,
    ));
    let boundary = expect_ack(&mut client, "star");
    expect_batch(&mut client, "star");
    client.close();

    setup.exec("ALTER TABLE app.notes ADD COLUMN body TEXT");
    let mut client = admin_ws(&setup);
    client.send(&subscribe_message(
        "star",
        "SELECT * FROM app.notes",
        None,
        Some(boundary),
    ));
    let refusal = client.recv_json();
    assert_eq!(refusal["code"], json!(codes::SCHEMA_CHANGED), "{refusal}");
    assert!(refusal["lowest_seq"].is_string(), "{refusal}");
    // A `SELECT *` snapshot taken after the ALTER resumes fine, even with no write since (its
    // boundary is at least the ALTER's `_seq`; found by the randomized test).
    client.send(&subscribe_message(
        "fresh",
        "SELECT * FROM app.notes",
        None,
        None,
    ));
    let fresh = expect_ack(&mut client, "fresh");
    expect_batch(&mut client, "fresh");
    client.send(&ClientMessage::Unsubscribe {
        subscription_id: "fresh".into(),
    });
    client.send(&subscribe_message(
        "fresh",
        "SELECT * FROM app.notes",
        None,
        Some(fresh),
    ));
    assert_eq!(expect_ack(&mut client, "fresh"), fresh);
    let named = "SELECT id, title FROM app.notes";
    client.send(&subscribe_message("named", named, None, Some(boundary)));
    let ack = client.recv_json();
    assert_eq!(ack["type"], json!("subscription_ack"), "{ack}");

    setup.exec(
        "DROP TABLE app.notes; CREATE TABLE app.notes (id BIGINT PRIMARY KEY, title TEXT) \
         WITH (TYPE = 'SHARED'); INSERT INTO app.notes (id, title) VALUES (9, 'new')",
    );
    // `fresh` and `named` were live: the drop ended both.
    for _ in 0..2 {
        let ended = client.recv_json();
        assert_eq!(ended["code"], json!(codes::TABLE_DROPPED), "{ended}");
    }
    client.send(&subscribe_message("again", named, None, Some(boundary)));
    let refusal = client.recv_json();
    assert_eq!(refusal["code"], json!(codes::TABLE_DROPPED), "{refusal}");
    assert_eq!(refusal["subscription_id"], json!("again"), "{refusal}");
    // A fresh snapshot shows the new table.
    client.send(&subscribe_message("again", named, None, None));
    expect_ack(&mut client, "again");
    let (rows, _) = expect_batch(&mut client, "again");
    assert_eq!(rows.len(), 1);
}
