//! Regression (issue 17, defect 1): one flipped byte in the first of 80 records of a table's
//! newest (active) segment made recovery treat everything from there on as a torn tail and cut
//! it for good: 80 acknowledged rows lost, after a clean shutdown too. Now the damage is told
//! apart from a torn tail (intact records follow it) and nothing is cut: the 79 intact rows
//! are served by key, a read that needs the damaged record (the scan of the whole table, or
//! its key) is refused with `data_corrupt` naming the partition, writes go on, and after
//! `strand repair` every intact row is served again, with the damaged bytes kept aside.

mod corruption;

use corruption::server_with_items;
use corruption::FRAME_HEADER_BYTES;
use corruption::{damaged_copies, flip_byte, frames, item, partition_dir, repair, segments};
use serde_json::json;
use strand_tests::{bearer, rows, sql, sql_ok, ServerOptions, StrandServer, ADMIN_PASSWORD};

const ROWS: i64 = 80;

fn options() -> ServerOptions {
    ServerOptions::with_admin_password(ADMIN_PASSWORD)
}

fn label(id: i64) -> String {
    format!("row {id} {}", "x".repeat((id % 40) as usize))
}

/// Rows 1..=ROWS, one INSERT each, into a SHARED table; then stopped with `signal`.
fn write_and_stop(dir: &std::path::Path, signal: i32) {
    let (server, _admin) = server_with_items(dir, &options(), ROWS, label);
    server.stop_with(signal);
}

fn check(signal: i32) {
    let dir = tempfile::tempdir().unwrap();
    write_and_stop(dir.path(), signal);
    let table = partition_dir(dir.path(), "t/app.items.");
    let segment = segments(&table).pop().unwrap();
    let bytes = std::fs::read(&segment).unwrap();
    let record_frames = frames(&bytes);
    assert!(
        record_frames.len() >= ROWS as usize,
        "{} frames",
        record_frames.len()
    );
    // A payload byte of the first row's record.
    let (first, _) = record_frames[record_frames.len() - ROWS as usize];
    flip_byte(&segment, first + FRAME_HEADER_BYTES + 2);

    for round in 0..2 {
        let server = StrandServer::start(dir.path(), &options());
        let admin = bearer(&server, "admin", ADMIN_PASSWORD);
        for id in [2, 3, 40, ROWS] {
            let found = item(&server, &admin, id);
            assert_eq!(
                found,
                vec![json!({"id": id, "label": label(id)})],
                "row {id}, round {round}"
            );
        }
        let whole = sql(&server, &admin, "SELECT id FROM app.items", &[]);
        let message = whole.assert_error(500, "data_corrupt");
        assert!(
            message.contains("t/app.items."),
            "names the partition: {message}"
        );
        assert!(message.contains("at byte"), "names the byte: {message}");
        let first = sql(
            &server,
            &admin,
            "SELECT id FROM app.items WHERE id = 1",
            &[],
        );
        first.assert_error(500, "data_corrupt");
        let id = ROWS + 1 + round;
        let text = "INSERT INTO app.items (id, label) VALUES ($1, $2)";
        sql_ok(&server, &admin, text, &[json!(id), json!(label(id))]);
        assert_eq!(item(&server, &admin, id).len(), 1);
        server.stop_with(signal);
    }

    let (code, report) = repair(dir.path(), false);
    assert_eq!(code, 0, "{report}");
    assert!(report.contains("t/app.items."), "{report}");
    assert_eq!(
        damaged_copies(&table).len(),
        1,
        "the damaged bytes are kept aside"
    );
    let server = StrandServer::start(dir.path(), &options());
    let admin = bearer(&server, "admin", ADMIN_PASSWORD);
    let all = rows(
        &server,
        &admin,
        "SELECT id, label FROM app.items ORDER BY id",
        &[],
    );
    let expected: Vec<_> = (2..=ROWS + 2)
        .map(|id| json!({"id": id, "label": label(id)}))
        .collect();
    assert_eq!(all, expected);
}

#[test]
fn after_a_clean_shutdown() {
    check(libc::SIGTERM);
}

#[test]
fn after_sigkill() {
    check(libc::SIGKILL);
}
