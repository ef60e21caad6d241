//! Issue 16, defect 6: USER and SHARED logs grew forever.
//!
//! The bug: keyed compaction existed in the log but the broker never scheduled it, so every
//! version of every row stayed on disk, and a client resuming after compaction would have had
//! only `resume_too_old` (a full re-download) to fall back on. The fix: the broker compacts
//! partitions whose sealed history is large or old enough (`--compaction-*` flags), keeps
//! tombstones for `--tombstone-retention-ms`, raises the resume floors honestly, and serves a
//! resume from below the exact floor with a keyed catch-up (the newest state of each key
//! changed since the cursor) while the compacted log still has it; below the keyed floor (a
//! tombstone it needed is gone) the client gets `resume_too_old`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use strand_tests::ws::{expect_ack, expect_batch, row_id, subscribe_message, WsClient};
use strand_tests::{bearer, rows, sql_ok, ServerOptions, StrandServer, ADMIN_PASSWORD};
use strand_wire::Row;

const QUERY: &str = "SELECT id, body, status FROM app.docs WHERE status = 'open'";
const COMPACTION_DEADLINE: Duration = Duration::from_secs(30);

fn start(dir: &Path, tombstone_retention_ms: &str) -> (StrandServer, String) {
    let args = [
        "--segment-bytes",
        "4096",
        "--compaction-interval-ms",
        "100",
        "--compaction-min-bytes",
        "1",
        "--tombstone-retention-ms",
        tombstone_retention_ms,
    ];
    let options = ServerOptions {
        admin_password: Some(ADMIN_PASSWORD.to_owned()),
        args: args.map(String::from).to_vec(),
    };
    let server = StrandServer::start(dir, &options);
    let admin = bearer(&server, "admin", ADMIN_PASSWORD);
    sql_ok(
        &server,
        &admin,
        "CREATE NAMESPACE app; CREATE TABLE app.docs (id BIGINT PRIMARY KEY, body TEXT, \
         status TEXT) WITH (TYPE = 'SHARED'); \
         INSERT INTO app.docs (id, body, status) VALUES (1, 'a', 'open'), (2, 'b', 'open'), \
         (3, 'c', 'open'), (4, 'd', 'open'), (5, 'e', 'closed')",
        &[],
    );
    (server, admin)
}

/// Subscribe, take the snapshot, and leave: the client's copy and its last `_seq`.
fn first_visit(server: &StrandServer, admin: &str) -> (BTreeMap<i64, Row>, u64) {
    let mut client = WsClient::connect(server, Some(admin));
    client.recv_json();
    client.send(&subscribe_message("docs", QUERY, None, None));
    let boundary = expect_ack(&mut client, "docs");
    let (rows, control) = expect_batch(&mut client, "docs");
    assert!(!control.has_more);
    client.close();
    (
        rows.into_iter().map(|r| (row_id(&r), r)).collect(),
        boundary,
    )
}

/// While the client is away: many versions of every row (enough to seal segments), one row
/// stops matching, one is deleted, one starts matching, one new row matches. Returns the
/// bytes of row bodies written.
fn churn(server: &StrandServer, admin: &str) -> usize {
    let filler = "x".repeat(600);
    let mut written = 0;
    for round in 0..6 {
        for id in 1..=4 {
            let text = format!("UPDATE app.docs SET body = '{filler}{round}' WHERE id = {id}");
            sql_ok(server, admin, &text, &[]);
            written += filler.len();
        }
    }
    sql_ok(
        server,
        admin,
        "UPDATE app.docs SET status = 'closed' WHERE id = 2; DELETE FROM app.docs WHERE id = 3; \
         UPDATE app.docs SET status = 'open' WHERE id = 5; \
         INSERT INTO app.docs (id, body, status) VALUES (6, 'f', 'open')",
        &[],
    );
    // More versions after the interesting ones, so those are sealed and compactable too.
    for round in 0..8 {
        let text = format!("UPDATE app.docs SET body = '{filler}late{round}' WHERE id = 1");
        sql_ok(server, admin, &text, &[]);
        written += filler.len();
    }
    written
}

fn partition_bytes(data_dir: &Path) -> u64 {
    let mut total = 0;
    let mut pending = vec![data_dir.join("log").join("t")];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.to_string_lossy().contains("app.docs") {
                total += entry.metadata().map_or(0, |m| m.len());
            }
        }
    }
    total
}

/// Resume from `from` until the server's answer satisfies `done` (compaction has run);
/// returns the client and the answer.
fn resume_until(
    server: &StrandServer,
    admin: &str,
    from: u64,
    done: impl Fn(&Value) -> bool,
) -> (WsClient, Value) {
    let deadline = Instant::now() + COMPACTION_DEADLINE;
    loop {
        let mut client = WsClient::connect(server, Some(admin));
        client.recv_json();
        client.send(&subscribe_message("docs", QUERY, None, Some(from)));
        let ack = client.recv_json();
        if done(&ack) {
            return (client, ack);
        }
        client.close();
        assert!(
            Instant::now() < deadline,
            "no compaction within {COMPACTION_DEADLINE:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn compaction_shrinks_the_log_and_a_resume_gets_the_newest_state_of_each_changed_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, admin) = start(dir.path(), "3600000");
    let (mut copy, from) = first_visit(&server, &admin);
    let written = churn(&server, &admin);

    let (mut client, ack) = resume_until(&server, &admin, from, |a| a.get("resume").is_some());
    assert_eq!(ack["type"], json!("subscription_ack"), "{ack}");
    assert_eq!(ack["resume"], json!("keyed"), "{ack}");
    let end: u64 = ack["snapshot_end_seq"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("snapshot_end_seq");
    // Old versions leave the disk: soon less is stored than the bodies alone that were written.
    let deadline = Instant::now() + COMPACTION_DEADLINE;
    while partition_bytes(&server.data_dir) >= written as u64 {
        let stored = partition_bytes(&server.data_dir);
        assert!(
            Instant::now() < deadline,
            "{stored} bytes stored after writing {written}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Keyed changes up to `end`: an insert replaces the row with its key, a delete names a
    // key; `_seq`s strictly increase.
    let mut last = from;
    while last < end {
        let change = client.recv_json();
        assert_eq!(change["type"], json!("change"), "{change}");
        let row: Row = change["rows"][0].as_object().cloned().expect("a row");
        let seq: u64 = row["_seq"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("_seq");
        assert!(seq > last && seq <= end, "{seq} after {last}, up to {end}");
        last = seq;
        match change["change_type"].as_str() {
            Some("insert") => {
                copy.insert(row_id(&row), row);
            }
            Some("delete") => {
                assert_eq!(row.len(), 2, "a keyed delete names the key only: {row:?}");
                copy.remove(&row_id(&row));
            }
            other => panic!("a keyed catch-up sends inserts and deletes, got {other:?}"),
        }
    }
    let expected: BTreeMap<i64, Row> = rows(&server, &admin, QUERY, &[])
        .iter()
        .map(|r| {
            let mut r = r.as_object().cloned().expect("row");
            r.remove("_seq");
            (row_id(&r), r)
        })
        .collect();
    let mut got = copy.clone();
    for row in got.values_mut() {
        row.remove("_seq");
    }
    assert_eq!(got, expected, "the client's copy is the query's result");
    assert_eq!(got.keys().copied().collect::<Vec<_>>(), [1, 4, 5, 6]);

    // Then live, exactly: an update of a row the client holds.
    sql_ok(
        &server,
        &admin,
        "UPDATE app.docs SET body = 'live' WHERE id = 4",
        &[],
    );
    let change = client.recv_json();
    assert_eq!(change["change_type"], json!("update"), "{change}");
    assert_eq!(change["old_rows"][0]["id"], json!(4), "{change}");
}

#[test]
fn a_resume_that_needs_a_removed_tombstone_gets_resume_too_old() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Tombstones are removed as soon as compaction sees them.
    let (server, admin) = start(dir.path(), "0");
    let (_, from) = first_visit(&server, &admin);
    churn(&server, &admin);
    let (_client, answer) = resume_until(&server, &admin, from, |a| a["type"] == json!("error"));
    assert_eq!(answer["type"], json!("error"), "{answer}");
    assert_eq!(answer["code"], json!("resume_too_old"), "{answer}");
    assert!(answer["lowest_seq"].is_string(), "{answer}");
}
