//! Regression (issue 17, defect 1): one flipped byte in the catalog's partition made every
//! namespace and table after it vanish on the next start (the damage was cut as a "torn
//! tail"), and a later CREATE TABLE orphaned their data for good. Now the server refuses to
//! start, naming the segment file and the byte; `strand repair --dry-run` reports without
//! changing anything; `strand repair` keeps every intact catalog record (and moves the
//! damaged bytes aside), and the server starts with every table whose record was intact,
//! rows and all. The same after a clean shutdown and after SIGKILL.

mod corruption;

use corruption::{damaged_copies, flip_byte, frame_containing, partition_dir, repair};
use corruption::{segments, serve_refuses, FRAME_HEADER_BYTES};
use serde_json::json;
use strand_tests::{bearer, rows, sql, sql_ok, ServerOptions, StrandServer, ADMIN_PASSWORD};

const TABLES: [&str; 3] = ["first_table", "second_table", "third_table"];

fn options() -> ServerOptions {
    ServerOptions::with_admin_password(ADMIN_PASSWORD)
}

/// The file's bytes up to its last nonzero one.
fn without_trailing_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    bytes.truncate(end);
    bytes
}

fn check(signal: i32) {
    let dir = tempfile::tempdir().unwrap();
    let server = StrandServer::start(dir.path(), &options());
    let admin = bearer(&server, "admin", ADMIN_PASSWORD);
    sql_ok(&server, &admin, "CREATE NAMESPACE app", &[]);
    for (i, table) in TABLES.iter().enumerate() {
        let ddl = format!(
            "CREATE TABLE app.{table} (id BIGINT PRIMARY KEY, n BIGINT) WITH (TYPE = 'SHARED')"
        );
        sql_ok(&server, &admin, &ddl, &[]);
        let insert = format!("INSERT INTO app.{table} (id, n) VALUES (1, {i}), (2, {i})");
        sql_ok(&server, &admin, &insert, &[]);
    }
    server.stop_with(signal);

    // Damage the record that created the first table: the two after it are intact.
    let catalog = partition_dir(dir.path(), "system/catalog");
    let segment = segments(&catalog).pop().unwrap();
    let (start, _) = frame_containing(&segment, TABLES[0].as_bytes());
    flip_byte(&segment, start + FRAME_HEADER_BYTES + 1);
    let before = without_trailing_zeros(std::fs::read(&segment).unwrap());

    let stderr = serve_refuses(dir.path());
    let name = segment.file_name().unwrap().to_string_lossy().into_owned();
    assert!(stderr.contains(&name), "names the file: {stderr}");
    assert!(
        stderr.contains(&format!("at byte {start}")),
        "names the byte: {stderr}"
    );
    assert!(
        stderr.contains("strand repair"),
        "says how to repair: {stderr}"
    );
    // A refused start changes nothing (but may drop the zeros a killed server had allocated
    // ahead of its data); a second attempt is refused the same way.
    let after = without_trailing_zeros(std::fs::read(&segment).unwrap());
    assert!(after == before, "the refused start changed the file");
    serve_refuses(dir.path());

    let (code, report) = repair(dir.path(), true);
    assert_eq!(code, 1, "a dry run that finds damage exits 1: {report}");
    assert!(report.contains("system/catalog"), "{report}");
    let after = without_trailing_zeros(std::fs::read(&segment).unwrap());
    assert!(after == before, "the dry run changed the file");
    let (code, report) = repair(dir.path(), false);
    assert_eq!(code, 0, "{report}");
    let copies = damaged_copies(&catalog);
    assert_eq!(copies.len(), 1, "{report}");
    let copy = without_trailing_zeros(std::fs::read(&copies[0]).unwrap());
    assert!(copy == before, "the original is kept whole");

    let server = StrandServer::start(dir.path(), &options());
    let admin = bearer(&server, "admin", ADMIN_PASSWORD);
    for (i, table) in TABLES.iter().enumerate().skip(1) {
        let found = rows(
            &server,
            &admin,
            &format!("SELECT id, n FROM app.{table} ORDER BY id"),
            &[],
        );
        assert_eq!(
            found,
            vec![json!({"id": 1, "n": i}), json!({"id": 2, "n": i})],
            "{table}"
        );
    }
    // The table whose record was damaged is gone from the catalog (its rows stay on disk).
    let gone = sql(
        &server,
        &admin,
        &format!("SELECT id FROM app.{}", TABLES[0]),
        &[],
    );
    assert_eq!(gone.status, 400, "{}", gone.text);
}

#[test]
fn after_a_clean_shutdown() {
    check(libc::SIGTERM);
}

#[test]
fn after_sigkill() {
    check(libc::SIGKILL);
}
