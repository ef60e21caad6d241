//! Subscribers never hold writers, and a client that stops reading costs bounded memory
//! (SPEC section 5, "Guarantees"):
//! - while a 100,000-row snapshot is paused between batches, writes to the same table
//!   complete; the snapshot then finishes as of its boundary and the writes follow it;
//! - a client that stops reading while changes pour in is told `slow_consumer` and closed with
//!   1008, the server's anonymous memory stays far below what the undelivered changes weigh,
//!   and resuming from the last `_seq` it received loses nothing.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::json;
use strand_tests::ws::{
    expect_ack, expect_batch, next_batch_message, row_id as id_of, row_seq, subscribe_message,
    WsClient, WsEnd,
};
use strand_tests::{sql_ok, AdminServer, ADMIN_PASSWORD};
use strand_wire::{codes, ChangeType, ServerMessage};
use tungstenite::protocol::frame::coding::CloseCode;

const SNAPSHOT_ROWS: i64 = 100_000;
const ROWS_PER_INSERT: i64 = 2_000;

#[test]
fn writes_complete_while_a_large_snapshot_is_paused() {
    let setup = AdminServer::start();
    exec(
        &setup,
        "CREATE NAMESPACE app;
         CREATE TABLE app.big (id BIGINT PRIMARY KEY, n INT) WITH (TYPE = 'SHARED')",
    );
    for first in (1..=SNAPSHOT_ROWS).step_by(ROWS_PER_INSERT as usize) {
        let last = (first + ROWS_PER_INSERT - 1).min(SNAPSHOT_ROWS);
        let values: Vec<String> = (first..=last).map(|id| format!("({id}, 0)")).collect();
        exec(
            &setup,
            &format!("INSERT INTO app.big VALUES {}", values.join(", ")),
        );
    }
    let mut client = WsClient::authenticated(&setup.server, "admin", ADMIN_PASSWORD);
    client.send(&subscribe_message(
        "big",
        "SELECT id, n FROM app.big",
        Some(1000),
        None,
    ));
    let boundary = expect_ack(&mut client, "big");
    let (first_rows, control) = expect_batch(&mut client, "big");
    assert!(
        control.has_more,
        "a 100k-row snapshot takes more than one batch"
    );
    // The snapshot is paused: the client asks for nothing while the writes run.
    let started = Instant::now();
    for id in 1..=50 {
        exec(
            &setup,
            &format!("UPDATE app.big SET n = {id} WHERE id = {id}"),
        );
        let new_id = SNAPSHOT_ROWS + id;
        exec(&setup, &format!("INSERT INTO app.big VALUES ({new_id}, 1)"));
    }
    let writing = started.elapsed();
    let mut ids: BTreeSet<i64> = first_rows.iter().map(id_of).collect();
    let mut batches = 1;
    loop {
        client.send(&next_batch_message("big"));
        let (rows, control) = expect_batch(&mut client, "big");
        for row in &rows {
            assert!(
                row_seq(row) <= boundary,
                "a snapshot row after the boundary: {row:?}"
            );
            assert!(ids.insert(id_of(row)), "row {row:?} sent twice");
            assert_eq!(
                row.get("n"),
                Some(&json!(0)),
                "the snapshot shows the old version"
            );
        }
        batches += 1;
        if !control.has_more {
            break;
        }
    }
    assert_eq!(
        ids.len() as i64,
        SNAPSHOT_ROWS,
        "the snapshot as of its boundary"
    );
    assert_eq!(batches, SNAPSHOT_ROWS / 1000);
    let mut last_seq = boundary;
    let (mut updates, mut inserts) = (0, 0);
    while updates + inserts < 100 {
        let ServerMessage::Change {
            change_type, rows, ..
        } = client.recv()
        else {
            panic!("expected the writes made during the snapshot");
        };
        let seq = row_seq(&rows[0]);
        assert!(seq > last_seq, "change _seq {seq} after {last_seq}");
        last_seq = seq;
        match change_type {
            ChangeType::Update => updates += 1,
            ChangeType::Insert => inserts += 1,
            ChangeType::Delete => panic!("no delete was written"),
        }
    }
    assert_eq!((updates, inserts), (50, 50));
    // Not a timing target: a liveness bound far above what 100 writes take.
    assert!(writing < Duration::from_secs(60), "writes took {writing:?}");
}

/// Subscriptions on the slow connection: each change is queued once per subscription.
const SLOW_SUBSCRIPTIONS: usize = 8;
const SLOW_ROWS: i64 = 8_000;
const BODY_BYTES: usize = 1000;

#[test]
fn a_client_that_stops_reading_is_closed_as_slow_consumer_and_resumes_losslessly() {
    let setup = AdminServer::start();
    exec(
        &setup,
        "CREATE NAMESPACE app;
         CREATE TABLE app.feed (id BIGINT PRIMARY KEY, body TEXT) WITH (TYPE = 'SHARED')",
    );
    let mut slow = WsClient::authenticated(&setup.server, "admin", ADMIN_PASSWORD);
    let mut boundary = 0;
    for n in 0..SLOW_SUBSCRIPTIONS {
        let id = format!("s{n}");
        slow.send(&subscribe_message(
            &id,
            "SELECT id, body FROM app.feed",
            None,
            None,
        ));
        boundary = expect_ack(&mut slow, &id);
        let (rows, control) = expect_batch(&mut slow, &id);
        assert!(rows.is_empty() && !control.has_more);
    }
    let memory_before = anon_memory_kib(setup.server.pid());
    // The client reads nothing while about 64 MB of changes (8 subscriptions x 8 MB) are due.
    let body = "x".repeat(BODY_BYTES);
    for first in (1..=SLOW_ROWS).step_by(200) {
        let values: Vec<String> = (first..first + 200)
            .map(|id| format!("({id}, '{body}')"))
            .collect();
        exec(
            &setup,
            &format!("INSERT INTO app.feed VALUES {}", values.join(", ")),
        );
    }
    let memory_after = anon_memory_kib(setup.server.pid());
    let growth_mib = memory_after.saturating_sub(memory_before) / 1024;
    eprintln!("server anonymous memory: {memory_before} KiB before, {memory_after} KiB after");
    assert!(
        growth_mib < 32,
        "server anonymous memory grew {growth_mib} MiB for a client that does not read"
    );
    // Now read: some changes, then slow_consumer and a 1008 close.
    let mut seen: BTreeSet<i64> = BTreeSet::new();
    let mut last_seq = boundary;
    let mut told_slow = false;
    let close = loop {
        match slow.next() {
            Ok(ServerMessage::Change {
                subscription_id,
                rows,
                ..
            }) if subscription_id == "s0" => {
                let seq = row_seq(&rows[0]);
                assert!(seq > last_seq, "strictly increasing _seq");
                last_seq = seq;
                seen.insert(id_of(&rows[0]));
            }
            Ok(ServerMessage::Change { .. }) => {}
            Ok(ServerMessage::Error { code, .. }) if code == codes::SLOW_CONSUMER => {
                told_slow = true;
            }
            Ok(other) => panic!("unexpected {other:?}"),
            Err(end) => break end,
        }
    };
    assert!(told_slow, "the client is told why before the close");
    match close {
        WsEnd::Closed(Some((code, reason))) => {
            assert_eq!(code, CloseCode::Policy);
            assert_eq!(reason, codes::SLOW_CONSUMER);
        }
        other => panic!("expected a 1008 close, got {other:?}"),
    }
    assert!(
        (seen.len() as i64) < SLOW_ROWS,
        "the slow client missed changes"
    );
    // Resume from the last `_seq` received: everything else arrives, nothing twice.
    let mut client = WsClient::authenticated(&setup.server, "admin", ADMIN_PASSWORD);
    let sql = "SELECT id, body FROM app.feed";
    client.send(&subscribe_message("s0", sql, None, Some(last_seq)));
    assert_eq!(expect_ack(&mut client, "s0"), last_seq);
    while (seen.len() as i64) < SLOW_ROWS {
        let ServerMessage::Change { rows, .. } = client.recv() else {
            panic!("expected the missed changes");
        };
        let seq = row_seq(&rows[0]);
        assert!(
            seq > last_seq,
            "resume repeats nothing: {seq} after {last_seq}"
        );
        last_seq = seq;
        assert!(
            seen.insert(id_of(&rows[0])),
            "row {} twice",
            id_of(&rows[0])
        );
    }
    client.expect_silence(Duration::from_millis(300));
    let metrics = strand_tests::get(&setup.server.url("/metrics")).text;
    assert!(
        metrics.contains("strand_slow_consumer_disconnects_total 1"),
        "{metrics}"
    );
}

fn exec(setup: &AdminServer, text: &str) {
    sql_ok(&setup.server, &setup.admin, text, &[]);
}

/// `RssAnon` of a process: its resident memory that is not file mappings (the log's mapped
/// segments are file mappings; queued messages are not).
fn anon_memory_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("reading /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|line| line.strip_prefix("RssAnon:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no RssAnon in /proc/{pid}/status"))
}
