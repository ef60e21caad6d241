//! Live top-K windows (issue 21; docs/websocket.md, "Top-K subscriptions"): a subscription with
//! `ORDER BY ... LIMIT n [OFFSET m]` holds exactly the query's rows after every write. The seed
//! query (the last 50 messages of a conversation) is kept live through inserts, edits and
//! deletes, deletes past the window's spare rows (so the server reads the table again), then
//! resumed from its last `"seq"`; a leaderboard follows score changes in and out of its top
//! 10; OFFSET shifts the window; the order is total (ties by primary key).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};
use strand_tests::ws::*;
use strand_tests::{rows, AdminServer};
use strand_wire::Subscription;
use strand_wire::{ChangeType, ClientMessage, Row, SeqText, ServerMessage, SubscribeOptions};

const MESSAGES: &str = "CREATE TABLE app.messages (id BIGINT PRIMARY KEY, conversation_id BIGINT, \
     body TEXT, created_at TIMESTAMP) WITH (TYPE = 'SHARED')";
const CHAT: &str = "SELECT id, body, created_at FROM app.messages WHERE conversation_id = $1 \
     ORDER BY created_at DESC LIMIT 50";

/// A client's copy of a window: rows by `id`, and the `_seq` to resume from.
struct Copy {
    rows: BTreeMap<i64, Row>,
    seq: u64,
}

fn subscribe(client: &mut WsClient, id: &str, sql: &str, params: Vec<Value>, from: Option<u64>) {
    client.send(&ClientMessage::Subscribe {
        subscription: Subscription {
            id: id.to_owned(),
            sql: sql.to_owned(),
            options: SubscribeOptions {
                batch_size: Some(7),
                from_seq_id: from.map(SeqText),
                bigint: None,
                params,
                as_of_seq: None,
            },
        },
    });
}

/// Subscribe and take the whole snapshot, checking it arrives in the query's order.
fn open(client: &mut WsClient, id: &str, sql: &str, params: Vec<Value>) -> (Copy, Vec<i64>) {
    subscribe(client, id, sql, params, None);
    let end = expect_ack(client, id);
    let (mut rows, mut order) = (BTreeMap::new(), Vec::new());
    loop {
        let (batch, control) = expect_batch(client, id);
        for row in batch {
            order.push(row_id(&row));
            rows.insert(row_id(&row), row);
        }
        if !control.has_more {
            break;
        }
        client.send(&next_batch_message(id));
    }
    (Copy { rows, seq: end }, order)
}

/// Apply the next message, which must be one window change for `id`: `delete` removes its
/// rows, `insert` adds them, `update` removes `old_rows` then sets `rows`. Returns its type.
fn apply_next(client: &mut WsClient, id: &str, copy: &mut Copy) -> ChangeType {
    match client.recv() {
        ServerMessage::Change {
            subscription_id,
            change_type,
            rows,
            old_rows,
            seq,
        } if subscription_id == id => {
            let seq = seq.expect("a top-K change carries its write's seq").0;
            assert!(seq > copy.seq, "seq goes forward: {seq} after {}", copy.seq);
            copy.seq = seq;
            match change_type {
                ChangeType::Delete => {
                    for row in &rows {
                        assert!(copy.rows.remove(&row_id(row)).is_some(), "deleted {row:?}");
                    }
                }
                ChangeType::Insert => {
                    for row in rows {
                        assert!(
                            copy.rows.insert(row_id(&row), row).is_none(),
                            "inserted twice"
                        );
                    }
                }
                ChangeType::Update => {
                    for old in old_rows.unwrap_or_default() {
                        let held = copy.rows.remove(&row_id(&old));
                        assert_eq!(held.as_ref(), Some(&old), "old_rows are the rows as held");
                    }
                    for row in rows {
                        copy.rows.insert(row_id(&row), row);
                    }
                }
            }
            change_type
        }
        other => panic!("expected a change for {id}, got {other:?}"),
    }
}

/// The query's rows now, in order (one-shot over HTTP), as `id`s.
fn expected(setup: &AdminServer, sql: &str, params: &[Value]) -> Vec<(i64, Value)> {
    rows(&setup.server, &setup.admin, sql, params)
        .into_iter()
        .map(|row| (row["id"].as_i64().expect("id"), row))
        .collect()
}

/// The client's copy holds exactly the query's rows, with the same values.
fn assert_same(copy: &Copy, expected: &[(i64, Value)]) {
    let held: Vec<i64> = copy.rows.keys().copied().collect();
    let mut wanted: Vec<i64> = expected.iter().map(|(id, _)| *id).collect();
    wanted.sort_unstable();
    assert_eq!(held, wanted, "the window's rows");
    for (id, row) in expected {
        for (column, value) in row.as_object().expect("row object") {
            assert_eq!(&copy.rows[id][column], value, "row {id}, column {column}");
        }
    }
}

fn insert_message(setup: &AdminServer, id: i64, conversation: i64) {
    // A minute apart: a larger id is a newer message.
    setup.exec(&format!(
        "INSERT INTO app.messages (id, conversation_id, body, created_at) VALUES \
         ({id}, {conversation}, 'm{id}', '2026-01-01T{:02}:{:02}:00Z')",
        id / 60,
        id % 60
    ));
}

#[test]
fn the_seed_chat_window_stays_the_last_50_messages_through_writes_and_a_resume() {
    let setup = AdminServer::with_app(MESSAGES);
    for id in 1..=150 {
        insert_message(&setup, id, 1);
    }
    for id in 151..=160 {
        insert_message(&setup, id, 2);
    }
    let params = vec![json!(1)];
    let mut client = admin_ws(&setup);
    let (mut copy, order) = open(&mut client, "chat", CHAT, params.clone());
    assert_eq!(
        order,
        (101..=150).rev().collect::<Vec<i64>>(),
        "the newest 50, newest first"
    );
    assert_same(&copy, &expected(&setup, CHAT, &params));

    // A new message enters at the top and pushes the oldest out: one change for both.
    insert_message(&setup, 161, 1);
    assert_eq!(
        apply_next(&mut client, "chat", &mut copy),
        ChangeType::Update
    );
    assert!(copy.rows.contains_key(&161) && !copy.rows.contains_key(&101));
    assert_same(&copy, &expected(&setup, CHAT, &params));

    // An edit inside the window is an update; one outside it, or in another conversation,
    // sends nothing.
    setup.exec("UPDATE app.messages SET body = 'edited' WHERE id = 130");
    assert_eq!(
        apply_next(&mut client, "chat", &mut copy),
        ChangeType::Update
    );
    assert_eq!(copy.rows[&130]["body"], json!("edited"));
    setup.exec("UPDATE app.messages SET body = 'old edit' WHERE id = 5");
    setup.exec("UPDATE app.messages SET body = 'other' WHERE id = 155");
    client.expect_silence(Duration::from_millis(300));

    // A delete in the window brings the next older message back in.
    setup.exec("DELETE FROM app.messages WHERE id = 140");
    assert_eq!(
        apply_next(&mut client, "chat", &mut copy),
        ChangeType::Update
    );
    assert!(copy.rows.contains_key(&101), "message 101 came back in");
    assert_same(&copy, &expected(&setup, CHAT, &params));

    // More deletes than the window keeps spare rows (50): the server reads the table again.
    for id in (90..=139).rev() {
        setup.exec(&format!("DELETE FROM app.messages WHERE id = {id}"));
        apply_next(&mut client, "chat", &mut copy);
    }
    assert_eq!(copy.rows.len(), 50);
    assert_same(&copy, &expected(&setup, CHAT, &params));

    // Leave, let the conversation move on, resume from the last seq: exactly what changed,
    // one change per write (9 new messages, an edit, a delete).
    client.send(&ClientMessage::Unsubscribe {
        subscription_id: "chat".into(),
    });
    client.expect_silence(Duration::from_millis(200));
    for id in 162..=170 {
        insert_message(&setup, id, 1);
    }
    setup.exec("UPDATE app.messages SET body = 'late edit' WHERE id = 161");
    setup.exec("DELETE FROM app.messages WHERE id = 150");
    subscribe(&mut client, "chat", CHAT, params.clone(), Some(copy.seq));
    assert_eq!(expect_ack(&mut client, "chat"), copy.seq);
    for _ in 0..11 {
        apply_next(&mut client, "chat", &mut copy);
    }
    assert_same(&copy, &expected(&setup, CHAT, &params));
    assert_eq!(copy.rows[&161]["body"], json!("late edit"));
    client.expect_silence(Duration::from_millis(300));
}

const PLAYERS: &str = "CREATE TABLE app.players (id BIGINT PRIMARY KEY, name TEXT, score BIGINT) \
     WITH (TYPE = 'SHARED')";
const TOP10: &str = "SELECT id, name, score FROM app.players ORDER BY score DESC LIMIT 10";

#[test]
fn a_leaderboard_follows_score_changes_in_and_out_of_its_top_10() {
    let setup = AdminServer::with_app(PLAYERS);
    let values: Vec<String> = (1..=40)
        .map(|id| format!("({id}, 'p{id}', {})", id * 10))
        .collect();
    setup.exec(&format!(
        "INSERT INTO app.players (id, name, score) VALUES {}",
        values.join(", ")
    ));
    let mut client = admin_ws(&setup);
    let (mut copy, order) = open(&mut client, "top", TOP10, Vec::new());
    assert_eq!(order, (31..=40).rev().collect::<Vec<i64>>());

    // In from below (pushes 31 out), up within, out to below (31 comes back).
    let steps = [
        (
            "UPDATE app.players SET score = 1000 WHERE id = 5",
            ChangeType::Update,
        ),
        (
            "UPDATE app.players SET score = 395 WHERE id = 33",
            ChangeType::Update,
        ),
        (
            "UPDATE app.players SET score = 1 WHERE id = 40",
            ChangeType::Update,
        ),
        (
            "UPDATE app.players SET score = 2 WHERE id = 1",
            ChangeType::Update,
        ),
    ];
    for (statement, _) in &steps[..3] {
        setup.exec(statement);
        apply_next(&mut client, "top", &mut copy);
        assert_same(&copy, &expected(&setup, TOP10, &[]));
    }
    // A change far below the window sends nothing.
    setup.exec(steps[3].0);
    client.expect_silence(Duration::from_millis(300));
    // A tie at the window's edge: the smaller id comes first.
    setup.exec("UPDATE app.players SET score = 310 WHERE id = 2");
    apply_next(&mut client, "top", &mut copy);
    let wanted = expected(&setup, TOP10, &[]);
    assert_same(&copy, &wanted);
    assert!(
        copy.rows.contains_key(&2) && !copy.rows.contains_key(&31),
        "{wanted:?}"
    );
    // New players and deletes.
    setup.exec("INSERT INTO app.players (id, name, score) VALUES (41, 'p41', 5000)");
    apply_next(&mut client, "top", &mut copy);
    setup.exec("DELETE FROM app.players WHERE id = 41");
    apply_next(&mut client, "top", &mut copy);
    assert_same(&copy, &expected(&setup, TOP10, &[]));
}

#[test]
fn offset_shifts_the_window_and_ties_break_by_primary_key() {
    let setup = AdminServer::with_app(PLAYERS);
    let values: Vec<String> = (1..=20)
        .map(|id| format!("({id}, 'p{id}', {})", id % 4))
        .collect();
    setup.exec(&format!(
        "INSERT INTO app.players (id, name, score) VALUES {}",
        values.join(", ")
    ));
    let page = "SELECT id, score FROM app.players ORDER BY score LIMIT 5 OFFSET 3";
    let mut client = admin_ws(&setup);
    let (mut copy, order) = open(&mut client, "page", page, Vec::new());
    // Scores 0 are ids 4, 8, 12, 16, 20; 1 are 1, 5, 9, ...: positions 3..8.
    assert_eq!(order, [16, 20, 1, 5, 9]);
    assert_same(&copy, &expected(&setup, page, &[]));
    for statement in [
        "INSERT INTO app.players (id, name, score) VALUES (21, 'x', -1)",
        "DELETE FROM app.players WHERE id = 4",
        "UPDATE app.players SET score = 0 WHERE id = 13",
        "UPDATE app.players SET score = 9 WHERE id = 16",
    ] {
        setup.exec(statement);
        apply_next(&mut client, "page", &mut copy);
        assert_same(&copy, &expected(&setup, page, &[]));
    }
}

#[test]
fn order_by_without_limit_and_oversized_windows_are_refused() {
    let setup = AdminServer::with_app(PLAYERS);
    let mut client = admin_ws(&setup);
    subscribe(
        &mut client,
        "a",
        "SELECT * FROM app.players ORDER BY score",
        Vec::new(),
        None,
    );
    expect_error(&mut client, "a", "unsupported");
    let huge = "SELECT * FROM app.players ORDER BY score LIMIT 100000";
    subscribe(&mut client, "b", huge, Vec::new(), None);
    expect_error(&mut client, "b", "unsupported");
}

/// A resume with nothing written since its `seq` still rebuilds the window before the next
/// write (it once joined the feed directly, with an empty window, and the next write arrived as
/// an insert of every row: found by the randomized guarantee test).
#[test]
fn a_resume_with_nothing_new_sends_only_the_next_change() {
    let setup = AdminServer::with_app(PLAYERS);
    setup.exec("INSERT INTO app.players (id, name, score) VALUES (1, 'a', 10), (2, 'b', 20)");
    let sql = "SELECT id, score FROM app.players LIMIT 8";
    let mut client = admin_ws(&setup);
    let (mut copy, _) = open(&mut client, "w", sql, Vec::new());
    setup.exec("INSERT INTO app.players (id, name, score) VALUES (3, 'c', 30)");
    apply_next(&mut client, "w", &mut copy);
    drop(client);

    let mut client = admin_ws(&setup);
    subscribe(&mut client, "w", sql, Vec::new(), Some(copy.seq));
    assert_eq!(expect_ack(&mut client, "w"), copy.seq);
    setup.exec("INSERT INTO app.players (id, name, score) VALUES (4, 'd', 40)");
    match client.recv() {
        ServerMessage::Change {
            change_type, rows, ..
        } => {
            assert_eq!(change_type, ChangeType::Insert);
            let ids: Vec<i64> = rows.iter().map(row_id).collect();
            assert_eq!(ids, [4], "only the new row");
        }
        other => panic!("expected the insert of 4, got {other:?}"),
    }
}
