//! Issue 16, defect 10, through the real binary:
//! - a misspelt subscription option (`batchsize`) was ignored silently, so the client got the
//!   default batch size without knowing why; now it is refused with `invalid_message` naming
//!   the option and carrying the subscription's id, and no subscription starts;
//! - `next_batch` without `subscription_id` was refused even when only one subscription was
//!   loading; now it pages that one, and is refused (naming the ids) only when it is ambiguous.

use serde_json::json;
use strand_tests::ws::{admin_ws, expect_ack, expect_batch, subscribe_message};
use strand_tests::AdminServer;

const TABLE: &str = "CREATE TABLE app.notes (id BIGINT PRIMARY KEY, title TEXT) \
    WITH (TYPE = 'SHARED'); \
    INSERT INTO app.notes (id, title) VALUES (1, 'a'), (2, 'b'), (3, 'c')";

#[test]
fn a_misspelt_option_is_refused_and_starts_nothing() {
    let setup = AdminServer::with_app(TABLE);
    let mut client = admin_ws(&setup);
    client.send_text(
        r#"{"type":"subscribe","subscription":{"id":"s","sql":"SELECT id FROM app.notes",
            "options":{"batchsize":1}}}"#,
    );
    let error = client.recv_json();
    assert_eq!(error["type"], json!("error"), "{error}");
    assert_eq!(error["code"], json!("invalid_message"), "{error}");
    assert_eq!(error["subscription_id"], json!("s"), "{error}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains("batchsize"), "{message}");
    // Nothing started: the id is free and the spelt-right option works.
    client.send(&subscribe_message(
        "s",
        "SELECT id FROM app.notes",
        Some(1),
        None,
    ));
    expect_ack(&mut client, "s");
    let (rows, control) = expect_batch(&mut client, "s");
    assert_eq!((rows.len(), control.has_more), (1, true));
}

#[test]
fn next_batch_without_an_id_pages_the_one_loading_subscription() {
    let setup = AdminServer::with_app(TABLE);
    let mut client = admin_ws(&setup);
    client.send(&subscribe_message(
        "a",
        "SELECT id FROM app.notes",
        Some(2),
        None,
    ));
    expect_ack(&mut client, "a");
    assert!(expect_batch(&mut client, "a").1.has_more);
    client.send_text(r#"{"type":"next_batch"}"#);
    let (rows, control) = expect_batch(&mut client, "a");
    assert_eq!((rows.len(), control.has_more), (1, false));

    // Two loading at once: ambiguous, refused with both ids named.
    client.send(&subscribe_message(
        "b",
        "SELECT id FROM app.notes",
        Some(1),
        None,
    ));
    expect_ack(&mut client, "b");
    expect_batch(&mut client, "b");
    client.send(&subscribe_message(
        "c",
        "SELECT id FROM app.notes",
        Some(1),
        None,
    ));
    expect_ack(&mut client, "c");
    expect_batch(&mut client, "c");
    client.send_text(r#"{"type":"next_batch"}"#);
    let error = client.recv_json();
    assert_eq!(error["code"], json!("invalid_message"), "{error}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains("b, c"), "{message}");
}
