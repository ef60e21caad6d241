//! A subscription snapshot over a partition with a damaged record follows the one-shot
//! SELECT's rule (issue 17, defects 2 and 10): a point snapshot (WHERE pins the primary key)
//! of a row written after the damage is served through the key index; one whose key may have
//! its newest version in the damage, and a scan that reaches the damage, end with
//! `data_corrupt`, never with an older version or a silently shorter snapshot.

mod corruption;

use corruption::{
    flip_byte, frames, partition_dir, segments, server_with_items, FRAME_HEADER_BYTES,
};
use strand_tests::ws::*;
use strand_tests::{bearer, ServerOptions, StrandServer, ADMIN_PASSWORD};
use strand_wire::ServerMessage;

const ROWS: i64 = 200;

fn options() -> ServerOptions {
    let mut options = ServerOptions::with_admin_password(ADMIN_PASSWORD);
    options.args = vec!["--segment-bytes".into(), "8192".into()];
    options
}

#[test]
fn subscriptions_over_damaged_data_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _admin) = server_with_items(dir.path(), &options(), ROWS, |id| {
        format!("row {id} {}", "y".repeat(100))
    });
    server.terminate();

    let table = partition_dir(dir.path(), "t/app.items.");
    let files = segments(&table);
    assert!(files.len() >= 4, "want several sealed segments: {files:?}");
    // A payload byte of a record in the middle of the second segment (sealed).
    let bytes = std::fs::read(&files[1]).unwrap();
    let in_segment = frames(&bytes);
    let (start, _) = in_segment[in_segment.len() / 2];
    flip_byte(&files[1], start + FRAME_HEADER_BYTES + 4);

    let server = StrandServer::start(dir.path(), &options());
    let admin = bearer(&server, "admin", ADMIN_PASSWORD);
    let mut client = WsClient::connect(&server, Some(&admin));
    match client.recv() {
        ServerMessage::AuthSuccess { .. } => {}
        other => panic!("expected auth_success, got {other:?}"),
    }

    // The last row was written after the damage: served by key.
    let sql = format!("SELECT id, label FROM app.items WHERE id = {ROWS}");
    client.send(&subscribe_message("after", &sql, None, None));
    expect_ack(&mut client, "after");
    let (batch, control) = expect_batch(&mut client, "after");
    assert!(!control.has_more);
    assert_eq!(batch.len(), 1, "{batch:?}");
    assert_eq!(row_id(&batch[0]), ROWS);

    // The first row was written before it: a newer version could be in the damage.
    client.send(&subscribe_message(
        "before",
        "SELECT id, label FROM app.items WHERE id = 1",
        None,
        None,
    ));
    expect_ack(&mut client, "before");
    expect_error(&mut client, "before", "data_corrupt");

    // A scan reads through the damage.
    client.send(&subscribe_message(
        "scan",
        "SELECT id, label FROM app.items",
        Some(10_000),
        None,
    ));
    expect_ack(&mut client, "scan");
    expect_error(&mut client, "scan", "data_corrupt");
}
