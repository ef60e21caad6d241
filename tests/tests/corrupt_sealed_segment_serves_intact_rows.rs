//! Regression (issue 17, defect 2): a flipped byte in a sealed (older) segment of a table made
//! the whole table fail: every read and every write answered 500 `internal`, also for rows far
//! from the damage. Now the table's key index is built around the damaged record: rows written
//! after the damage are served by key, writes go on, and what may need the damaged record (a
//! scan of the table, a key whose newest version could be in it) is refused with
//! `data_corrupt`, a message naming the partition and the byte. `strand repair` then keeps
//! every intact row and moves the damaged bytes aside.

mod corruption;

use corruption::server_with_items;
use corruption::FRAME_HEADER_BYTES;
use corruption::{damaged_copies, flip_byte, frames, item, partition_dir, repair, segments};
use serde_json::json;
use strand_tests::{bearer, rows, sql, sql_ok, ServerOptions, StrandServer, ADMIN_PASSWORD};

const ROWS: i64 = 200;

fn options() -> ServerOptions {
    let mut options = ServerOptions::with_admin_password(ADMIN_PASSWORD);
    options.args = vec!["--segment-bytes".into(), "8192".into()];
    options
}

fn label(id: i64) -> String {
    format!("row {id} {}", "y".repeat(100 + (id % 50) as usize))
}

#[test]
fn rows_after_the_damage_and_writes_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _admin) = server_with_items(dir.path(), &options(), ROWS, label);
    server.terminate();

    let table = partition_dir(dir.path(), "t/app.items.");
    let files = segments(&table);
    assert!(files.len() >= 4, "want several sealed segments: {files:?}");
    // A payload byte of a record in the middle of the second segment (sealed).
    let bytes = std::fs::read(&files[1]).unwrap();
    let in_segment = frames(&bytes);
    let (start, _) = in_segment[in_segment.len() / 2];
    flip_byte(&files[1], start + FRAME_HEADER_BYTES + 2);

    let server = StrandServer::start(dir.path(), &options());
    let admin = bearer(&server, "admin", ADMIN_PASSWORD);
    // Rows in the newest segments, written after the damage, are served.
    for id in [ROWS - 1, ROWS] {
        assert_eq!(
            item(&server, &admin, id),
            vec![json!({"id": id, "label": label(id)})]
        );
    }
    // Writes go on and are read back.
    for id in ROWS + 1..=ROWS + 3 {
        let text = "INSERT INTO app.items (id, label) VALUES ($1, $2)";
        sql_ok(&server, &admin, text, &[json!(id), json!(label(id))]);
        assert_eq!(item(&server, &admin, id).len(), 1);
    }
    sql_ok(
        &server,
        &admin,
        "UPDATE app.items SET label = 'changed' WHERE id = $1",
        &[json!(ROWS)],
    );
    assert_eq!(
        item(&server, &admin, ROWS),
        vec![json!({"id": ROWS, "label": "changed"})]
    );
    // A scan needs the damaged record: refused, by name, with a specific code.
    let whole = sql(&server, &admin, "SELECT id FROM app.items", &[]);
    let message = whole.assert_error(500, "data_corrupt");
    assert!(
        message.contains("t/app.items."),
        "names the partition: {message}"
    );
    let name = files[1].file_name().unwrap().to_string_lossy().into_owned();
    assert!(message.contains(&name), "names the segment: {message}");
    // A row older than the damage may have a newer version in it: refused, not answered stale.
    let old = sql(
        &server,
        &admin,
        "SELECT id FROM app.items WHERE id = 1",
        &[],
    );
    old.assert_error(500, "data_corrupt");
    server.terminate();

    let (code, report) = repair(dir.path(), false);
    assert_eq!(code, 0, "{report}");
    assert_eq!(damaged_copies(&table).len(), 1, "{report}");
    let server = StrandServer::start(dir.path(), &options());
    let admin = bearer(&server, "admin", ADMIN_PASSWORD);
    let all = rows(&server, &admin, "SELECT id FROM app.items ORDER BY id", &[]);
    assert_eq!(
        all.len() as i64,
        ROWS + 3 - 1,
        "every row but the damaged one"
    );
    assert_eq!(item(&server, &admin, 1).len(), 1);
}
