//! Issue 17, defect 9: a full disk. The server runs with a small `RLIMIT_FSIZE` (SIGXFSZ
//! ignored), so a write that would make a segment file larger fails with EFBIG, as a write to
//! a full disk fails with ENOSPC. The INSERT that meets it gets 507 `storage_full` (QUIC:
//! `storage_full` too) saying that writes resume once space is freed; rows acknowledged before
//! are intact; other tables stay writable; and once there is room again (here: a batch too
//! big for the rest of the segment starts a new, empty segment file) writes to the same table
//! succeed without a restart. After a restart every acknowledged row is there, and no refused
//! one.
//!
//! It used to be 500 `internal`, and every later write to the table failed until a restart.

use serde_json::{json, Value};
use strand_tests::{bearer, rows, sql, sql_ok, ServerOptions, StrandServer, ADMIN_PASSWORD};
use strand_wire::quic::{codes, Message, ProduceTable};

/// No file of the server may grow past this (its segment files, and its stderr).
const FILE_BYTES_MAX: u64 = 160 * 1024;
/// Segments roll at 256 KiB: above the limit, so the active segment hits the limit first.
const SEGMENT_BYTES: &str = "262144";
/// One row of about 2 KiB: the 128 KiB the segment grows to hold about 60.
const BODY_BYTES: usize = 2000;
/// More than enough rows to fill 160 KiB; a bound on the loop, not an expectation.
const FILL_ROWS_MAX: i64 = 500;
/// Rows of the batch that makes room: about 140 KiB, more than the 128 KiB left of the
/// segment (so it starts a new one) and less than the limit (so it fits in that one).
const ROOM_BATCH_ROWS: i64 = 68;

fn body(id: i64) -> String {
    let letter = (b'a' + (id % 26) as u8) as char;
    format!("{id}:{}", letter.to_string().repeat(BODY_BYTES))
}

fn insert_one(server: &StrandServer, admin: &str, id: i64) -> (u16, Value) {
    let answer = sql(
        server,
        admin,
        "INSERT INTO app.notes (id, body) VALUES ($1, $2)",
        &[json!(id), json!(body(id))],
    );
    (answer.status, answer.json())
}

fn assert_storage_full(status: u16, answer: &Value) {
    assert_eq!(status, 507, "{answer}");
    assert_eq!(answer["error"]["code"], "storage_full", "{answer}");
    let message = answer["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("once space is freed") && message.contains("without a restart"),
        "the message says writes resume by themselves: {message}"
    );
}

/// Every row of app.notes, as (id, body), in id order.
fn notes(server: &StrandServer, admin: &str) -> Vec<(i64, String)> {
    rows(
        server,
        admin,
        "SELECT id, body FROM app.notes ORDER BY id",
        &[],
    )
    .iter()
    .map(|row| {
        let id = row["id"].as_i64().expect("id");
        (id, row["body"].as_str().expect("body").to_owned())
    })
    .collect()
}

fn expected(ids: &[i64]) -> Vec<(i64, String)> {
    ids.iter().map(|&id| (id, body(id))).collect()
}

#[test]
fn full_disk_gets_storage_full_and_writes_resume() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = ServerOptions {
        args: vec!["--segment-bytes".into(), SEGMENT_BYTES.into()],
        ..ServerOptions::with_admin_password(ADMIN_PASSWORD)
    };
    let server = StrandServer::start_with_file_size_limit(dir.path(), &options, FILE_BYTES_MAX);
    let admin = bearer(&server, "admin", ADMIN_PASSWORD);
    sql_ok(
        &server,
        &admin,
        "CREATE NAMESPACE app;
         CREATE TABLE app.notes (id BIGINT PRIMARY KEY, body TEXT NOT NULL)
           WITH (TYPE = 'SHARED')",
        &[],
    );

    // Fill the table's segment file up to the limit.
    let mut acked = Vec::new();
    let mut refused = None;
    for id in 1..=FILL_ROWS_MAX {
        match insert_one(&server, &admin, id) {
            (200, _) => acked.push(id),
            (status, answer) => {
                refused = Some((id, status, answer));
                break;
            }
        }
    }
    let (refused_id, status, answer) = refused.expect("the file-size limit was never reached");
    assert!(acked.len() > 10, "only {} rows fit", acked.len());
    assert_storage_full(status, &answer);
    // Still full: refused the same way, not poisoned into another error.
    for _ in 0..3 {
        let (status, answer) = insert_one(&server, &admin, refused_id);
        assert_storage_full(status, &answer);
    }
    let quic = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    quic.block_on(async {
        let client = server.quic_client("admin", ADMIN_PASSWORD).await;
        let row = json!({"id": refused_id, "body": body(refused_id)}).to_string();
        let request = Message::ProduceTable(ProduceTable {
            table: "app.notes".into(),
            idempotence: None,
            rows_json: vec![row],
        });
        let frames = client.request(request).await.expect("produce_table");
        match &frames[..] {
            [frame] => match &frame.message {
                Message::Error(error) => assert_eq!(error.code, codes::STORAGE_FULL, "{error:?}"),
                other => panic!("expected storage_full, got {other:?}"),
            },
            other => panic!("one answer frame expected: {other:?}"),
        }
    });
    assert_eq!(
        notes(&server, &admin),
        expected(&acked),
        "acknowledged rows intact"
    );
    // The key of the refused row is free: the refused INSERT left nothing behind.
    let found = rows(
        &server,
        &admin,
        "SELECT id FROM app.notes WHERE id = $1",
        &[json!(refused_id)],
    );
    assert!(found.is_empty(), "{found:?}");

    // Another table (its own file) is writable meanwhile.
    sql_ok(
        &server,
        &admin,
        "CREATE TABLE app.other (id BIGINT PRIMARY KEY) WITH (TYPE = 'SHARED');
         INSERT INTO app.other (id) VALUES (1)",
        &[],
    );

    // Room again: a batch larger than what is left of the segment starts a new segment file,
    // which is empty, so it fits under the limit. Same server, same table.
    let batch: Vec<i64> = (refused_id..refused_id + ROOM_BATCH_ROWS).collect();
    let placeholders: Vec<String> = (0..batch.len())
        .map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2))
        .collect();
    let params: Vec<Value> = batch
        .iter()
        .flat_map(|&id| [json!(id), json!(body(id))])
        .collect();
    let text = format!(
        "INSERT INTO app.notes (id, body) VALUES {}",
        placeholders.join(", ")
    );
    sql_ok(&server, &admin, &text, &params);
    acked.extend(&batch);
    // And single rows again, in the new segment.
    let next = refused_id + ROOM_BATCH_ROWS;
    for id in next..next + 5 {
        let (status, answer) = insert_one(&server, &admin, id);
        assert_eq!(status, 200, "{answer}");
        acked.push(id);
    }
    assert_eq!(notes(&server, &admin), expected(&acked));

    // After a restart (no limit): every acknowledged row, nothing else, and writes work.
    drop(server);
    let server = StrandServer::start(dir.path(), &options);
    let admin = bearer(&server, "admin", ADMIN_PASSWORD);
    assert_eq!(notes(&server, &admin), expected(&acked));
    let (status, answer) = insert_one(&server, &admin, 10_000);
    assert_eq!(status, 200, "{answer}");
}
