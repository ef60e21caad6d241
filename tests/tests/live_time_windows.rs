//! Live time windows (issue 21; docs/websocket.md, "Time-relative subscriptions"): a
//! subscription to `WHERE created_at > now() - INTERVAL ...` loses rows as they age, with no
//! write, each change stamped with a `"seq"` (a tick of the log); a row whose time comes
//! (`starts_at <= now()`) arrives as an insert; resuming from any `"seq"` received replays
//! exactly what came after it; other uses of now() are refused by name.

use std::time::{Duration, Instant};

use serde_json::json;
use strand_tests::ws::*;
use strand_tests::{rows, AdminServer};
use strand_wire::{ChangeType, Row};

const EVENTS: &str = "CREATE TABLE app.events (id BIGINT PRIMARY KEY, created_at TIMESTAMP, \
     starts_at TIMESTAMP, body TEXT) WITH (TYPE = 'SHARED')";
/// The window is short so that the test is: rows live in it for 2 seconds.
const RECENT: &str =
    "SELECT id, body FROM app.events WHERE created_at > now() - INTERVAL '2 seconds'";

fn ids(copy: &LiveCopy) -> Vec<i64> {
    copy.rows.keys().copied().collect()
}

#[test]
fn a_recent_window_empties_without_writes_and_resumes_exactly() {
    let setup = AdminServer::with_app(EVENTS);
    let insert = |id: i64, age: &str| {
        let sql = format!(
            "INSERT INTO app.events (id, created_at, body) VALUES ({id}, now() - INTERVAL '{age}', 'e{id}')"
        );
        setup.exec(&sql);
    };
    insert(1, "0 seconds");
    insert(2, "10 seconds");
    let mut client = admin_ws(&setup);
    let mut copy = LiveCopy::open(&mut client, "recent", RECENT, None);
    assert_eq!(ids(&copy), [1], "the snapshot holds only the recent row");
    let before_ageing = copy.seq;
    let started = Instant::now();
    insert(3, "0 seconds");
    let (kind, touched) = copy.apply_next(&mut client, "recent", Duration::from_secs(5));
    assert_eq!((kind, touched), (ChangeType::Insert, vec![3]));
    // No further write: both rows age out, each within the tolerance of its instant.
    let mut gone = Vec::new();
    while gone.len() < 2 {
        let (kind, touched) = copy.apply_next(&mut client, "recent", Duration::from_secs(5));
        assert_eq!(kind, ChangeType::Delete);
        gone.extend(touched);
    }
    gone.sort_unstable();
    assert_eq!(gone, [1, 3]);
    assert!(copy.rows.is_empty(), "the window emptied without a write");
    assert!(started.elapsed() >= Duration::from_millis(1500));
    client.expect_silence(Duration::from_millis(500));

    // Resuming from the last seq received: nothing is missing, nothing comes twice.
    let last = copy.seq;
    let mut again = admin_ws(&setup);
    let mut resumed = LiveCopy::open(&mut again, "r", RECENT, Some(last));
    resumed.rows = copy.rows.clone();
    again.expect_silence(Duration::from_millis(500));
    // Resuming from the snapshot's seq: the client then held row 1; it gets row 3's insert,
    // then, the catch-up being as of that write's time, both deletes by time: the same empty
    // copy, each row inserted and deleted once.
    let mut third = admin_ws(&setup);
    let mut old = LiveCopy::open(&mut third, "o", RECENT, Some(before_ageing));
    old.rows
        .insert(1, Row::from_iter([("id".to_owned(), json!(1))]));
    let (kind, touched) = old.apply_next(&mut third, "o", Duration::from_secs(5));
    assert_eq!((kind, touched), (ChangeType::Insert, vec![3]));
    while !old.rows.is_empty() {
        let (kind, _) = old.apply_next(&mut third, "o", Duration::from_secs(5));
        assert_eq!(kind, ChangeType::Delete);
    }
    third.expect_silence(Duration::from_millis(300));
}

#[test]
fn a_row_whose_time_comes_enters_without_a_write() {
    let setup = AdminServer::with_app(EVENTS);
    let mut client = admin_ws(&setup);
    let sql = "SELECT id FROM app.events WHERE starts_at <= now()";
    let mut copy = LiveCopy::open(&mut client, "due", sql, None);
    assert!(copy.rows.is_empty());
    setup.exec(
        "INSERT INTO app.events (id, starts_at) VALUES (1, now() + INTERVAL '1 second'), \
         (2, now() - INTERVAL '1 second')",
    );
    let (kind, touched) = copy.apply_next(&mut client, "due", Duration::from_secs(5));
    assert_eq!(
        (kind, touched),
        (ChangeType::Insert, vec![2]),
        "the due row at once"
    );
    let (kind, touched) = copy.apply_next(&mut client, "due", Duration::from_secs(5));
    assert_eq!(
        (kind, touched),
        (ChangeType::Insert, vec![1]),
        "the other when its time comes"
    );
    assert_eq!(
        rows(
            &setup.server,
            &setup.admin,
            "SELECT id FROM app.events WHERE starts_at <= now() ORDER BY id",
            &[]
        ),
        [json!({"id": 1}), json!({"id": 2})],
        "the one-shot query agrees"
    );
}

#[test]
fn other_uses_of_now_in_a_subscription_are_refused() {
    let setup = AdminServer::with_app(EVENTS);
    let mut client = admin_ws(&setup);
    for (id, sql) in [
        ("a", "SELECT id, now() AS t FROM app.events"),
        (
            "b",
            "SELECT id FROM app.events WHERE created_at > now() ORDER BY id LIMIT 5",
        ),
        (
            "c",
            "SELECT body, COUNT(*) FROM app.events WHERE created_at > now() GROUP BY body",
        ),
    ] {
        client.send(&subscribe_message(id, sql, None, None));
        expect_error(&mut client, id, "unsupported");
    }
}
