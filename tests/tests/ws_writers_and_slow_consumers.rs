//! Subscribers never hold writers, and a client that stops reading costs bounded memory
//! (docs/websocket.md, "Changes" and "Limits and slow consumers"):
//! - while a 100,000-row snapshot is paused between batches, writes to the same table
//!   complete; the snapshot then finishes as of its boundary and the writes follow it;
//! - a client that stops reading while changes pour in is told `slow_consumer` and closed with
//!   1008, the server's anonymous memory stays far below what the undelivered changes weigh,
//!   and resuming from the last `_seq` it received loses nothing.
//!
//! The hole this closes (issue 16): both tests used to count the changes by type (50 updates
//! and 50 inserts; so many distinct ids), so changes with wrong rows, a wrong `old_rows`, the
//! wrong row updated or a delete for an insert of the same count passed. Now every change is
//! applied to the client's copy of the snapshot as a client would (`apply_change` checks
//! each against the row held), and the copy must equal a one-shot SELECT at the end.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;
use strand_tests::ws::{
    apply_change, expect_ack, expect_batch, json_row, next_batch_message, next_change,
    row_id as id_of, row_seq, subscribe_message, Change, WsClient, WsEnd,
};
use strand_tests::{rows, sql_ok, AdminServer, ADMIN_PASSWORD};
use strand_wire::{codes, Row, ServerMessage};
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
    let mut copy: BTreeMap<i64, Row> = BTreeMap::new();
    let mut batches = 0;
    let mut batch = first_rows;
    loop {
        for row in batch {
            assert!(
                row_seq(&row) <= boundary,
                "a snapshot row after the boundary: {row:?}"
            );
            assert_eq!(
                row.get("n"),
                Some(&json!(0)),
                "the snapshot shows the old version"
            );
            let id = id_of(&row);
            assert!(copy.insert(id, row).is_none(), "row {id} sent twice");
        }
        batches += 1;
        if batches == SNAPSHOT_ROWS / 1000 {
            break;
        }
        client.send(&next_batch_message("big"));
        let (rows, control) = expect_batch(&mut client, "big");
        assert_eq!(control.has_more, batches + 1 < SNAPSHOT_ROWS / 1000);
        batch = rows;
    }
    assert_eq!(
        copy.len() as i64,
        SNAPSHOT_ROWS,
        "the snapshot as of its boundary"
    );
    // The writes made while the snapshot was paused follow it: 50 updates, 50 inserts.
    let last_seq = apply_changes(&mut client, "big", &mut copy, boundary, 100);
    client.expect_silence(Duration::from_millis(300));
    let changes = copy.values().filter(|row| row_seq(row) > boundary).count();
    assert_eq!(
        changes, 100,
        "the 100 written rows carry new _seqs (last {last_seq})"
    );
    for range in ["id <= 50000", "id > 50000"] {
        let text = format!("SELECT id, n, _seq FROM app.big WHERE {range}");
        let held: BTreeMap<i64, Row> = copy
            .iter()
            .filter(|(id, _)| (**id <= 50_000) == range.contains("<="))
            .map(|(id, row)| (*id, row.clone()))
            .collect();
        assert_eq_rows(&held, &selected(&setup, &text), &text);
    }
    // Not a timing target: a liveness bound far above what 100 writes take.
    assert!(writing < Duration::from_secs(60), "writes took {writing:?}");
}

/// Apply the next `count` changes of `id` to `copy` (each checked against the row held), in
/// strictly increasing `_seq` after `after`; the last `_seq`.
fn apply_changes(
    client: &mut WsClient,
    id: &str,
    copy: &mut BTreeMap<i64, Row>,
    after: u64,
    count: usize,
) -> u64 {
    let mut last = after;
    for _ in 0..count {
        let change = next_change(client, id);
        last = apply_in_order(copy, &change, last);
    }
    last
}

/// Apply one change after `last`; its `_seq`.
fn apply_in_order(copy: &mut BTreeMap<i64, Row>, change: &Change, last: u64) -> u64 {
    let seq = row_seq(&change.row);
    assert!(seq > last, "change _seq {seq} after {last}");
    apply_change(copy, change);
    seq
}

/// A one-shot SELECT's rows by id.
fn selected(setup: &AdminServer, text: &str) -> BTreeMap<i64, Row> {
    let found = rows(&setup.server, &setup.admin, text, &[]);
    found
        .iter()
        .map(|row| (id_of(json_row(row)), json_row(row).clone()))
        .collect()
}

/// The client's copy equals the SELECT's rows (reported by id, not as two huge maps).
fn assert_eq_rows(held: &BTreeMap<i64, Row>, selected: &BTreeMap<i64, Row>, text: &str) {
    let differing: Vec<i64> = held
        .keys()
        .chain(selected.keys())
        .filter(|id| held.get(id) != selected.get(id))
        .copied()
        .take(10)
        .collect();
    for id in &differing {
        eprintln!(
            "id {id}: held {:?}, {text}: {:?}",
            held.get(id),
            selected.get(id)
        );
    }
    assert!(
        differing.is_empty(),
        "the copy differs from {text} at ids {differing:?}"
    );
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
    // Now read: some changes, then slow_consumer and a 1008 close. Subscription s0's changes
    // are applied to its (empty) snapshot.
    let mut copy: BTreeMap<i64, Row> = BTreeMap::new();
    let mut last_seq = boundary;
    let mut told_slow = false;
    let close = loop {
        match slow.next() {
            Ok(ServerMessage::Change {
                subscription_id,
                change_type,
                mut rows,
                old_rows,
                ..
            }) if subscription_id == "s0" => {
                assert_eq!(
                    (rows.len(), old_rows),
                    (1, None),
                    "one inserted row per change"
                );
                let change = Change {
                    kind: change_type,
                    row: rows.remove(0),
                    old: None,
                };
                last_seq = apply_in_order(&mut copy, &change, last_seq);
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
    let missed = SLOW_ROWS as usize - copy.len();
    assert!(missed > 0, "the slow client missed changes");
    // Resume from the last `_seq` received: everything else arrives, nothing twice (an insert
    // of a row held fails `apply_change`), and the copy is what a SELECT returns.
    let mut client = WsClient::authenticated(&setup.server, "admin", ADMIN_PASSWORD);
    let sql = "SELECT id, body FROM app.feed";
    client.send(&subscribe_message("s0", sql, None, Some(last_seq)));
    assert_eq!(expect_ack(&mut client, "s0"), last_seq);
    apply_changes(&mut client, "s0", &mut copy, last_seq, missed);
    client.expect_silence(Duration::from_millis(300));
    let text = "SELECT id, body, _seq FROM app.feed";
    assert_eq_rows(&copy, &selected(&setup, text), text);
    assert!(copy
        .values()
        .all(|row| row.get("body") == Some(&json!(body))));
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
