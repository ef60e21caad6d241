//! AS OF (issue 21; docs/websocket.md, "AS OF"): `options.as_of_seq` takes the snapshot as the
//! table was at that past `_seq`, then sends every change after it, then goes live: an audit
//! view or a new consumer backfilling from a point in time. It works for filters and top-K
//! windows alike, is refused together with `from_seq_id`, and a `_seq` past the latest reads
//! the latest.

use std::collections::BTreeMap;

use serde_json::json;
use strand_tests::ws::*;
use strand_tests::{rows, AdminServer};
use strand_wire::{
    ChangeType, ClientMessage, SeqText, ServerMessage, SubscribeOptions, Subscription,
};

const ITEMS: &str = "CREATE TABLE app.items (id BIGINT PRIMARY KEY, v INT) WITH (TYPE = 'SHARED')";

fn subscribe_as_of(client: &mut WsClient, id: &str, sql: &str, as_of: u64, from: Option<u64>) {
    client.send(&ClientMessage::Subscribe {
        subscription: Subscription {
            id: id.to_owned(),
            sql: sql.to_owned(),
            options: SubscribeOptions {
                batch_size: None,
                from_seq_id: from.map(SeqText),
                bigint: None,
                params: Vec::new(),
                as_of_seq: Some(SeqText(as_of)),
            },
        },
    });
}

/// The `_seq` of the newest version of row `id` now.
fn seq_of(setup: &AdminServer, id: i64) -> u64 {
    let found = rows(
        &setup.server,
        &setup.admin,
        &format!("SELECT _seq FROM app.items WHERE id = {id}"),
        &[],
    );
    found[0]["_seq"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("_seq")
}

#[test]
fn as_of_starts_from_the_past_state_and_replays_what_followed() {
    let setup = AdminServer::with_app(ITEMS);
    setup.exec("INSERT INTO app.items (id, v) VALUES (1, 10), (2, 20), (3, 30)");
    let then = seq_of(&setup, 3);
    setup.exec("UPDATE app.items SET v = 11 WHERE id = 1");
    setup.exec("DELETE FROM app.items WHERE id = 2");
    setup.exec("INSERT INTO app.items (id, v) VALUES (4, 40)");

    let mut client = admin_ws(&setup);
    subscribe_as_of(&mut client, "a", "SELECT id, v FROM app.items", then, None);
    assert_eq!(
        expect_ack(&mut client, "a"),
        then,
        "the boundary is the AS OF _seq"
    );
    let (snapshot, _) = expect_batch(&mut client, "a");
    let mut held: BTreeMap<i64, i64> = snapshot
        .iter()
        .map(|r| (row_id(r), r["v"].as_i64().unwrap_or_default()))
        .collect();
    assert_eq!(
        held,
        BTreeMap::from([(1, 10), (2, 20), (3, 30)]),
        "the table as it was"
    );
    for kind in [ChangeType::Update, ChangeType::Delete, ChangeType::Insert] {
        let change = expect_change(&mut client, "a", kind);
        match kind {
            ChangeType::Delete => {
                held.remove(&row_id(&change.row));
            }
            _ => {
                held.insert(
                    row_id(&change.row),
                    change.row["v"].as_i64().unwrap_or_default(),
                );
            }
        }
    }
    assert_eq!(
        held,
        BTreeMap::from([(1, 11), (3, 30), (4, 40)]),
        "now, after the replay"
    );
    // Then live.
    setup.exec("UPDATE app.items SET v = 31 WHERE id = 3");
    let live = expect_change(&mut client, "a", ChangeType::Update);
    assert_eq!(live.row["v"], json!(31));

    // A top-K window as of then: the top 2 then, then its changes.
    let top = "SELECT id, v FROM app.items ORDER BY v DESC LIMIT 2";
    subscribe_as_of(&mut client, "top", top, then, None);
    expect_ack(&mut client, "top");
    let (snapshot, _) = expect_batch(&mut client, "top");
    let ids: Vec<i64> = snapshot.iter().map(row_id).collect();
    assert_eq!(ids, [3, 2], "v 30 and 20 were the top two then");
    // Deleting 2 and inserting 4 (v 40) changed it; v 31 for 3 too.
    let mut changes = 0;
    while let Ok(message) = client.next_within(std::time::Duration::from_millis(500)) {
        match message {
            ServerMessage::Change {
                subscription_id, ..
            } if subscription_id == "top" => changes += 1,
            other => panic!("expected top's changes, got {other:?}"),
        }
    }
    assert_eq!(
        changes, 3,
        "the delete of 2, the insert of 4, the update of 3"
    );
}

#[test]
fn as_of_with_from_seq_is_refused_and_a_future_seq_reads_the_latest() {
    let setup = AdminServer::with_app(ITEMS);
    setup.exec("INSERT INTO app.items (id, v) VALUES (1, 10)");
    let mut client = admin_ws(&setup);
    subscribe_as_of(&mut client, "x", "SELECT id FROM app.items", 5, Some(5));
    expect_error(&mut client, "x", "invalid_message");
    subscribe_as_of(
        &mut client,
        "y",
        "SELECT id FROM app.items",
        u64::MAX / 2,
        None,
    );
    expect_ack(&mut client, "y");
    let (snapshot, _) = expect_batch(&mut client, "y");
    assert_eq!(snapshot.len(), 1);
}
