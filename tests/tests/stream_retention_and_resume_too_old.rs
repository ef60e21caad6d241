//! Retention of STREAM tables end to end (docs/websocket.md, "STREAM tables" and "Resume"): with small segments and a
//! fast retention sweep, a STREAM table's segments older than its TTL are removed from disk,
//! the partition's lowest resumable `_seq` rises, and a realtime resume from below it gets
//! `resume_too_old` with `lowest_seq` instead of a silent gap. A resume from `lowest_seq`
//! itself is accepted and replays the history that is still retained.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use strand_tests::ws::WsClient;
use strand_tests::{bearer, rows, sql_ok, ServerOptions, StrandServer, ADMIN_PASSWORD};
use strand_wire::{ClientMessage, SeqText, ServerMessage, SubscribeOptions, Subscription};

/// The log's smallest segment: every INSERT batch below fills most of one segment.
const SEGMENT_BYTES: &str = "4096";
const RETENTION_INTERVAL_MS: &str = "200";
const TYPING: &str = "SELECT id, body FROM app.typing";
/// INSERT batches written before the TTL passes, and rows per batch (about 2.3 KiB a batch,
/// so no two batches share a 4 KiB segment).
const OLD_BATCHES: i64 = 12;
const ROWS_PER_BATCH: i64 = 6;
const NEW_IDS: [i64; 3] = [1_000, 1_001, 1_002];
/// How long retention may take to catch up once the old segments are sealed and expired.
const RETENTION_DEADLINE: Duration = Duration::from_secs(15);

#[test]
fn stream_retention_and_resume_too_old() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = ServerOptions {
        admin_password: Some(ADMIN_PASSWORD.to_string()),
        args: [
            "--segment-bytes",
            SEGMENT_BYTES,
            "--retention-interval-ms",
            RETENTION_INTERVAL_MS,
        ]
        .map(String::from)
        .to_vec(),
    };
    let server = StrandServer::start(dir.path(), &options);
    let admin = bearer(&server, "admin", ADMIN_PASSWORD);
    sql_ok(
        &server,
        &admin,
        "CREATE NAMESPACE app; CREATE TABLE app.typing (id BIGINT PRIMARY KEY, body TEXT) \
         WITH (TYPE = 'STREAM', TTL_SECONDS = 1)",
        &[],
    );

    // A live subscription notes the `_seq` of the first change, as a client would.
    let mut live = connect(&server, &admin);
    live.send(&subscribe("live", None));
    assert_ack(&mut live, "live");
    insert_rows(&server, &admin, 0..ROWS_PER_BATCH);
    let early_seq = match live.recv() {
        ServerMessage::Change { rows, .. } => seq_of(&rows[0]),
        other => panic!("expected the first change, got {other:?}"),
    };
    live.close();
    for batch in 1..OLD_BATCHES {
        insert_rows(
            &server,
            &admin,
            batch * ROWS_PER_BATCH..(batch + 1) * ROWS_PER_BATCH,
        );
    }
    let segments_before = stream_segment_files(&server.data_dir);
    assert!(
        segments_before >= 5,
        "the old rows fill several segments: {segments_before}"
    );

    // Past the TTL, new rows seal the last old segment; the old rows have expired.
    std::thread::sleep(Duration::from_millis(1_500));
    insert_rows(&server, &admin, NEW_IDS[0]..NEW_IDS[2] + 1);
    let visible = rows(&server, &admin, "SELECT id, _seq FROM app.typing", &[]);
    let mut visible_ids: Vec<i64> = visible.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    visible_ids.sort_unstable();
    assert_eq!(visible_ids, NEW_IDS, "old rows expired, new rows served");
    let first_new_seq = visible.iter().map(seq_of_json).min().expect("new rows");

    // Retention runs every 200 ms: poll until a resume from the early `_seq` is refused.
    let deadline = Instant::now() + RETENTION_DEADLINE;
    let lowest = loop {
        let mut client = connect(&server, &admin);
        client.send(&subscribe("resume", Some(early_seq)));
        let answer = client.recv_json();
        client.close();
        if answer["type"] == "error" {
            break assert_resume_too_old(&answer);
        }
        assert_eq!(answer["type"], "subscription_ack", "{answer}");
        assert!(
            Instant::now() < deadline,
            "no resume_too_old within {RETENTION_DEADLINE:?}:\n{}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(lowest > early_seq, "lowest_seq {lowest} <= {early_seq}");
    assert!(
        lowest < first_new_seq,
        "the new rows are retained: lowest_seq {lowest}, new rows from {first_new_seq}"
    );
    let segments_after = stream_segment_files(&server.data_dir);
    assert!(
        segments_after < segments_before,
        "segment files removed from disk: {segments_before} -> {segments_after}"
    );

    // A resume from `lowest_seq` is accepted. A sweep may still be removing the last old
    // segment (sealed by the new rows), so a refusal must name a higher `lowest_seq`.
    let mut client = connect(&server, &admin);
    let mut from = lowest;
    loop {
        client.send(&subscribe("resume", Some(from)));
        let answer = client.recv_json();
        if answer["type"] == "subscription_ack" {
            assert_eq!(answer["snapshot_end_seq"], from.to_string(), "{answer}");
            break;
        }
        let higher = assert_resume_too_old(&answer);
        assert!(
            higher > from && higher < first_new_seq,
            "{from} -> {higher}"
        );
        assert!(Instant::now() < deadline, "resume from lowest_seq refused");
        from = higher;
    }
    let mut replayed = Vec::new();
    let mut previous = from;
    while !NEW_IDS.iter().all(|id| replayed.contains(id)) {
        match client.recv() {
            ServerMessage::Change { rows, .. } => {
                let seq = seq_of(&rows[0]);
                assert!(seq > previous, "replay in _seq order after {from}: {seq}");
                previous = seq;
                replayed.push(rows[0]["id"].as_i64().expect("id"));
            }
            other => panic!("expected replayed changes, got {other:?}"),
        }
    }
    assert_eq!(
        rows(
            &server,
            &admin,
            "SELECT id FROM app.typing WHERE id < 1000",
            &[]
        ),
        Vec::<Value>::new(),
        "no old row is served"
    );
}

fn connect(server: &StrandServer, authorization: &str) -> WsClient {
    let mut client = WsClient::connect(server, Some(authorization));
    match client.recv() {
        ServerMessage::AuthSuccess { .. } => client,
        other => panic!("expected auth_success, got {other:?}"),
    }
}

fn subscribe(id: &str, from_seq: Option<u64>) -> ClientMessage {
    ClientMessage::Subscribe {
        subscription: Subscription {
            id: id.to_string(),
            sql: TYPING.to_string(),
            options: SubscribeOptions {
                batch_size: None,
                from_seq_id: from_seq.map(SeqText),
                bigint: None,
                params: Vec::new(),
                as_of_seq: None,
            },
        },
    }
}

/// The ack and the one (empty) snapshot batch of a fresh subscription.
fn assert_ack(client: &mut WsClient, id: &str) {
    match client.recv() {
        ServerMessage::SubscriptionAck {
            subscription_id, ..
        } => assert_eq!(subscription_id, id),
        other => panic!("expected subscription_ack, got {other:?}"),
    }
    match client.recv() {
        ServerMessage::InitialDataBatch { rows, .. } => assert!(rows.is_empty(), "{rows:?}"),
        other => panic!("expected the snapshot batch, got {other:?}"),
    }
}

/// `{"type":"error","code":"resume_too_old","lowest_seq":"<digits>",...}`: the `lowest_seq`.
fn assert_resume_too_old(answer: &Value) -> u64 {
    assert_eq!(answer["type"], "error", "{answer}");
    assert_eq!(answer["code"], "resume_too_old", "{answer}");
    assert_eq!(answer["subscription_id"], "resume", "{answer}");
    let text = answer["lowest_seq"]
        .as_str()
        .unwrap_or_else(|| panic!("lowest_seq is not a string: {answer}"));
    text.parse().expect("lowest_seq is decimal digits")
}

fn insert_rows(server: &StrandServer, authorization: &str, ids: std::ops::Range<i64>) {
    // Bodies of 300 bytes, so that a few batches fill a segment.
    let values: Vec<String> = ids
        .map(|id| format!("({id}, '{}')", "x".repeat(300)))
        .collect();
    let text = format!(
        "INSERT INTO app.typing (id, body) VALUES {}",
        values.join(", ")
    );
    sql_ok(server, authorization, &text, &[]);
}

fn seq_of(row: &strand_wire::Row) -> u64 {
    let text = row["_seq"].as_str().expect("_seq is a string");
    text.parse().expect("_seq is decimal digits")
}

fn seq_of_json(row: &Value) -> u64 {
    let text = row["_seq"].as_str().expect("_seq is a string");
    text.parse().expect("_seq is decimal digits")
}

/// Segment files (`*.log`, docs/log-format.md) of the `app.typing` partitions on disk.
fn stream_segment_files(data_dir: &Path) -> usize {
    fn count(dir: &Path, inside_table: bool) -> usize {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        let mut found = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                found += count(&path, inside_table || name.starts_with("app.typing."));
            } else if inside_table && name.ends_with(".log") {
                found += 1;
            }
        }
        found
    }
    count(&data_dir.join("log/partitions"), false)
}
