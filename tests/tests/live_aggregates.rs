//! Live aggregates (issue 21; docs/websocket.md, "Grouping subscriptions"): a subscription to
//! `SELECT status, COUNT(*) ... GROUP BY status` holds one row per group and follows every
//! write (groups appear as inserts, change as updates, vanish as deletes; a status change
//! moves a row between two groups in one message), HAVING and MIN/MAX under deletes, and a
//! resume from the last `"seq"` replays exactly the group changes since.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};
use strand_tests::ws::*;
use strand_tests::{rows, AdminServer};
use strand_wire::{ChangeType, ClientMessage, Row, ServerMessage};

const TICKETS: &str = "CREATE TABLE app.tickets (id BIGINT PRIMARY KEY, status TEXT, points INT) \
     WITH (TYPE = 'SHARED')";
const BY_STATUS: &str = "SELECT status, COUNT(*) AS n, SUM(points) AS total, MAX(points) AS top \
     FROM app.tickets GROUP BY status";

/// The client's groups by their key (the `status` column), and its resume point.
struct Groups {
    rows: BTreeMap<String, Row>,
    seq: u64,
}

fn key(row: &Row) -> String {
    row["status"].to_string()
}

fn open(client: &mut WsClient, id: &str, sql: &str, from: Option<u64>) -> Groups {
    client.send(&subscribe_message(id, sql, None, from));
    let end = expect_ack(client, id);
    let mut groups = Groups {
        rows: BTreeMap::new(),
        seq: end,
    };
    if from.is_none() {
        let (batch, control) = expect_batch(client, id);
        assert!(!control.has_more);
        for row in batch {
            groups.rows.insert(key(&row), row);
        }
    }
    groups
}

fn apply_next(client: &mut WsClient, id: &str, groups: &mut Groups) -> ChangeType {
    match client.recv() {
        ServerMessage::Change {
            subscription_id,
            change_type,
            rows,
            old_rows,
            seq,
        } if subscription_id == id => {
            let seq = seq.expect("a grouping change carries its write's seq").0;
            assert!(seq > groups.seq);
            groups.seq = seq;
            match change_type {
                ChangeType::Delete => rows.iter().for_each(|row| {
                    assert!(groups.rows.remove(&key(row)).is_some(), "deleted {row:?}");
                }),
                ChangeType::Insert => rows.into_iter().for_each(|row| {
                    assert!(
                        groups.rows.insert(key(&row), row).is_none(),
                        "inserted twice"
                    );
                }),
                ChangeType::Update => {
                    for old in old_rows.unwrap_or_default() {
                        let held = groups.rows.remove(&key(&old));
                        assert_eq!(
                            held.map(|h| strip_seq(&h)),
                            Some(strip_seq(&old)),
                            "old_rows are the rows as held"
                        );
                    }
                    rows.into_iter().for_each(|row| {
                        groups.rows.insert(key(&row), row);
                    });
                }
            }
            change_type
        }
        other => panic!("expected a change for {id}, got {other:?}"),
    }
}

fn strip_seq(row: &Row) -> Row {
    let mut row = row.clone();
    row.remove("_seq");
    row
}

/// The client's groups equal the one-shot query's.
fn assert_same(setup: &AdminServer, sql: &str, groups: &Groups) {
    let want: BTreeMap<String, Value> = rows(&setup.server, &setup.admin, sql, &[])
        .into_iter()
        .map(|row| (row["status"].to_string(), row))
        .collect();
    let held: BTreeMap<String, Value> = groups
        .rows
        .iter()
        .map(|(k, row)| (k.clone(), Value::Object(strip_seq(row))))
        .collect();
    assert_eq!(held, want);
}

#[test]
fn a_live_count_by_status_follows_inserts_moves_deletes_and_a_resume() {
    let setup = AdminServer::with_app(TICKETS);
    setup.exec(
        "INSERT INTO app.tickets (id, status, points) VALUES (1, 'open', 3), (2, 'open', 5), \
         (3, 'done', 8)",
    );
    let mut client = admin_ws(&setup);
    let mut groups = open(&mut client, "g", BY_STATUS, None);
    assert_eq!(groups.rows.len(), 2);
    assert_eq!(groups.rows["\"open\""]["n"], json!(2));

    // A new group appears; an existing one changes.
    setup.exec("INSERT INTO app.tickets (id, status, points) VALUES (4, 'wip', 1)");
    assert_eq!(
        apply_next(&mut client, "g", &mut groups),
        ChangeType::Insert
    );
    setup.exec("INSERT INTO app.tickets (id, status, points) VALUES (5, 'open', 9)");
    assert_eq!(
        apply_next(&mut client, "g", &mut groups),
        ChangeType::Update
    );
    assert_eq!(groups.rows["\"open\""]["top"], json!(9));
    // A move between groups is one message; MAX falls back when its row leaves.
    setup.exec("UPDATE app.tickets SET status = 'done' WHERE id = 5");
    assert_eq!(
        apply_next(&mut client, "g", &mut groups),
        ChangeType::Update
    );
    assert_eq!(groups.rows["\"open\""]["top"], json!(5));
    assert_eq!(groups.rows["\"done\""]["n"], json!(2));
    // The last row of a group leaves: the group is deleted.
    setup.exec("DELETE FROM app.tickets WHERE id = 4");
    assert_eq!(
        apply_next(&mut client, "g", &mut groups),
        ChangeType::Delete
    );
    assert!(!groups.rows.contains_key("\"wip\""));
    assert_same(&setup, BY_STATUS, &groups);

    // Leave, write, resume from the last seq: each write's group change, once.
    client.send(&ClientMessage::Unsubscribe {
        subscription_id: "g".into(),
    });
    client.expect_silence(Duration::from_millis(200));
    setup.exec("INSERT INTO app.tickets (id, status, points) VALUES (6, NULL, 2)");
    setup.exec("UPDATE app.tickets SET points = 1 WHERE id = 3");
    setup.exec("DELETE FROM app.tickets WHERE id = 1");
    let mut resumed = open(&mut client, "g", BY_STATUS, Some(groups.seq));
    resumed.rows = groups.rows;
    for _ in 0..3 {
        apply_next(&mut client, "g", &mut resumed);
    }
    assert_same(&setup, BY_STATUS, &resumed);
    client.expect_silence(Duration::from_millis(300));
}

#[test]
fn having_and_a_single_group_count_badge() {
    let setup = AdminServer::with_app(TICKETS);
    let mut client = admin_ws(&setup);
    // A count badge: one row, from 0.
    let badge = "SELECT COUNT(*) AS status FROM app.tickets WHERE status = 'open'";
    let mut count = open(&mut client, "badge", badge, None);
    assert_eq!(
        count.rows.values().next().map(|r| r["status"].clone()),
        Some(json!(0))
    );
    setup.exec("INSERT INTO app.tickets (id, status, points) VALUES (1, 'open', 1)");
    // The badge's key is its value here: the change replaces 0 by 1.
    apply_next(&mut client, "badge", &mut count);
    assert_eq!(
        count.rows.values().next().map(|r| r["status"].clone()),
        Some(json!(1))
    );
    setup.exec("INSERT INTO app.tickets (id, status, points) VALUES (2, 'done', 1)");
    client.expect_silence(Duration::from_millis(300));

    let busy = "SELECT status, COUNT(*) AS n FROM app.tickets GROUP BY status HAVING COUNT(*) > 1";
    let mut groups = open(&mut client, "busy", busy, None);
    assert!(groups.rows.is_empty());
    setup.exec("INSERT INTO app.tickets (id, status, points) VALUES (3, 'open', 1)");
    assert_eq!(
        apply_next(&mut client, "badge", &mut count),
        ChangeType::Update
    );
    assert_eq!(
        apply_next(&mut client, "busy", &mut groups),
        ChangeType::Insert
    );
    setup.exec("DELETE FROM app.tickets WHERE id = 1");
    assert_eq!(
        apply_next(&mut client, "badge", &mut count),
        ChangeType::Update
    );
    assert_eq!(
        apply_next(&mut client, "busy", &mut groups),
        ChangeType::Delete
    );
    assert_same(&setup, busy, &groups);
}
