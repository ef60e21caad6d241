//! Subscription snapshots and resumes end to end (SPEC section 5, docs/realtime.md): the
//! snapshot arrives in batches the client asks for, as of its boundary `snapshot_end_seq`;
//! changes written while it is paged arrive after its last batch with no gap and no duplicate;
//! a resume from a `_seq` replays exactly what was missed, in order, then goes live. Applying
//! every change to the snapshot gives what a one-shot SELECT returns.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use strand_tests::ws::WsClient;
use strand_tests::{rows, sql_ok, AdminServer};
use strand_wire::{
    codes, BatchStatus, ChangeType, ClientMessage, Row, SeqText, ServerMessage, SubscribeOptions,
    Subscription,
};

const QUIET: Duration = Duration::from_millis(300);
const TICKETS: &str =
    "CREATE TABLE app.tickets (id BIGINT PRIMARY KEY, title TEXT, status TEXT) WITH (TYPE = 'SHARED')";
const OPEN: &str = "SELECT id, title, status FROM app.tickets WHERE status = 'open'";
const ITEMS: &str = "SELECT id, label FROM app.items";

#[test]
fn snapshot_arrives_in_batches_the_client_asks_for() {
    let setup = start(&format!(
        "CREATE TABLE app.items (id BIGINT PRIMARY KEY, label TEXT) WITH (TYPE = 'SHARED');
         CREATE TABLE app.empty (id BIGINT PRIMARY KEY) WITH (TYPE = 'SHARED');
         {}",
        insert_items(1..=25)
    ));
    let written = rows(
        &setup.server,
        &setup.admin,
        "SELECT _seq FROM app.items",
        &[],
    );
    let max_written = written.iter().map(|row| seq(row_of(row))).max();
    let mut client = admin_ws(&setup);
    client.send(&subscribe("items", ITEMS, Some(10), None));
    let ack = recv_raw(&mut client);
    assert_eq!(ack["type"], "subscription_ack", "{ack}");
    assert_eq!(ack["subscription_id"], "items", "{ack}");
    let end_text = ack["snapshot_end_seq"]
        .as_str()
        .unwrap_or_else(|| panic!("snapshot_end_seq is not a string: {ack}"));
    let end: u64 = end_text
        .parse()
        .expect("snapshot_end_seq is decimal digits");
    assert!(
        Some(end) >= max_written,
        "boundary {end} below the rows' {max_written:?}"
    );
    let names: Vec<&str> = ack["schema"]
        .as_array()
        .expect("schema array")
        .iter()
        .map(|c| c["name"].as_str().expect("column name"))
        .collect();
    assert_eq!(names, ["id", "label", "_seq"]);

    let mut ids = Vec::new();
    for (number, len, has_more) in [(0, 10, true), (1, 10, true), (2, 5, false)] {
        if number > 0 {
            if number == 1 {
                // Each further batch waits for the client's next_batch.
                client.expect_silence(QUIET);
            }
            client.send(&next_batch("items"));
        }
        let (batch, control) = expect_batch(&mut client, "items");
        assert_eq!(
            (control.batch_num, batch.len(), control.has_more),
            (number, len, has_more)
        );
        let status = if has_more {
            BatchStatus::Loading
        } else {
            BatchStatus::Ready
        };
        assert_eq!(
            (control.status, control.snapshot_end_seq),
            (status, SeqText(end))
        );
        for row in &batch {
            assert!(seq(row) <= end, "snapshot row after the boundary: {row:?}");
            ids.push(id(row));
        }
    }
    ids.sort_unstable();
    assert_eq!(ids, (1..=25).collect::<Vec<_>>());
    client.send(&next_batch("items"));
    expect_error(&mut client, "items", codes::NO_PENDING_BATCH);

    client.send(&subscribe(
        "empty",
        "SELECT id FROM app.empty",
        Some(10),
        None,
    ));
    expect_ack(&mut client, "empty");
    let (batch, control) = expect_batch(&mut client, "empty");
    assert!(batch.is_empty(), "{batch:?}");
    assert_eq!(
        (control.batch_num, control.status, control.has_more),
        (0, BatchStatus::Ready, false)
    );
    client.send(&next_batch("empty"));
    expect_error(&mut client, "empty", codes::NO_PENDING_BATCH);
}
#[test]
fn changes_written_while_the_snapshot_is_paged_follow_its_last_batch() {
    let setup = start(&format!(
        "CREATE TABLE app.items (id BIGINT PRIMARY KEY, label TEXT) WITH (TYPE = 'SHARED'); {}",
        insert_items(1..=25)
    ));
    let mut client = admin_ws(&setup);
    client.send(&subscribe("items", ITEMS, Some(10), None));
    let end = expect_ack(&mut client, "items");
    let mut state = BTreeMap::new();
    let (batch, _) = expect_batch(&mut client, "items");
    state.extend(batch.into_iter().map(|row| (id(&row), row)));

    exec(&setup, &insert_items(26..=45));
    for statement in [
        "UPDATE app.items SET label = 'changed' WHERE id = 5",
        "UPDATE app.items SET label = 'changed' WHERE id = 25",
        "DELETE FROM app.items WHERE id = 12",
        "DELETE FROM app.items WHERE id = 30",
        "UPDATE app.items SET label = 'again' WHERE id = 26",
    ] {
        exec(&setup, statement);
    }
    for n in 46..=50 {
        exec(&setup, &insert_items(n..=n));
    }
    for _ in 1..=2 {
        client.send(&next_batch("items"));
        let (batch, _) = expect_batch(&mut client, "items");
        for row in batch {
            assert!(seq(&row) <= end, "snapshot row after the boundary: {row:?}");
            assert!(
                state.insert(id(&row), row).is_none(),
                "a row in two batches"
            );
        }
    }
    assert_eq!(state.len(), 25);
    let mut last = end;
    // 20 + 5 inserts, 3 updates, 2 deletes.
    for _ in 0..30 {
        let change = next_change(&mut client, "items");
        assert!(
            seq(&change.row) > last,
            "_seq {} after {last}",
            seq(&change.row)
        );
        last = seq(&change.row);
        apply(&mut state, &change);
    }
    client.expect_silence(QUIET);
    assert_eq!(
        state,
        selected(&setup, "SELECT id, label, _seq FROM app.items")
    );
}
#[test]
fn resume_from_a_seq_replays_exactly_the_missed_changes_then_goes_live() {
    let setup = start(TICKETS);
    exec(
        &setup,
        "INSERT INTO app.tickets (id, title, status) VALUES (1, 'a', 'open'), (2, 'b', 'closed')",
    );
    let mut client = admin_ws(&setup);
    let (_, mut state) = snapshot(&mut client, "open", OPEN);
    exec(
        &setup,
        "INSERT INTO app.tickets (id, title, status) VALUES (3, 'c', 'open')",
    );
    let change = expect_change(&mut client, "open", ChangeType::Insert);
    apply(&mut state, &change);
    let last = seq(&change.row);
    client.close();

    for statement in [
        "INSERT INTO app.tickets (id, title, status) VALUES (10, 'x', 'open')",
        "INSERT INTO app.tickets (id, title, status) VALUES (11, 'y', 'closed')",
        "UPDATE app.tickets SET title = 'x2' WHERE id = 10",
        "UPDATE app.tickets SET status = 'closed' WHERE id = 1",
        "DELETE FROM app.tickets WHERE id = 11",
        "UPDATE app.tickets SET status = 'open' WHERE id = 2",
        "DELETE FROM app.tickets WHERE id = 3",
    ] {
        exec(&setup, statement);
    }
    let mut client = admin_ws(&setup);
    client.send(&subscribe("open", OPEN, None, Some(last)));
    assert_eq!(
        expect_ack(&mut client, "open"),
        last,
        "a resume's boundary is from_seq_id"
    );
    let expected = [
        (ChangeType::Insert, (10, "x", "open")),
        (ChangeType::Update, (10, "x2", "open")),
        (ChangeType::Delete, (1, "a", "open")),
        (ChangeType::Insert, (2, "b", "open")),
        (ChangeType::Delete, (3, "c", "open")),
    ];
    let mut previous = last;
    for (kind, row) in expected {
        let change = expect_change(&mut client, "open", kind);
        assert_eq!(fields(&change.row), row);
        assert!(seq(&change.row) > previous, "resumed changes out of order");
        previous = seq(&change.row);
        apply(&mut state, &change);
    }
    client.expect_silence(QUIET);
    assert_eq!(
        state,
        selected(&setup, &OPEN.replace("status FROM", "status, _seq FROM"))
    );

    exec(
        &setup,
        "INSERT INTO app.tickets (id, title, status) VALUES (12, 'z', 'open')",
    );
    let live = expect_change(&mut client, "open", ChangeType::Insert);
    assert_eq!(fields(&live.row), (12, "z", "open"));
    assert!(seq(&live.row) > previous);
}
// ---- helpers ----

/// A change of one row.
struct Change {
    kind: ChangeType,
    row: Row,
    old: Option<Row>,
}

/// A server with namespace `app` and the tables (and users) of `ddl`.
fn start(ddl: &str) -> AdminServer {
    let setup = AdminServer::start();
    exec(&setup, &format!("CREATE NAMESPACE app; {ddl}"));
    setup
}

fn exec(setup: &AdminServer, text: &str) {
    sql_ok(&setup.server, &setup.admin, text, &[]);
}

fn insert_items(ids: std::ops::RangeInclusive<i64>) -> String {
    let values: Vec<String> = ids.map(|n| format!("({n}, 'item {n}')")).collect();
    format!(
        "INSERT INTO app.items (id, label) VALUES {}",
        values.join(", ")
    )
}

/// The administrator's connection, authenticated by the upgrade's header.
fn admin_ws(setup: &AdminServer) -> WsClient {
    let mut client = WsClient::connect(&setup.server, Some(&setup.admin));
    match client.recv() {
        ServerMessage::AuthSuccess { .. } => client,
        other => panic!("expected auth_success, got {other:?}"),
    }
}

fn subscribe(id: &str, sql: &str, batch_size: Option<u32>, from: Option<u64>) -> ClientMessage {
    let options = SubscribeOptions {
        batch_size,
        from_seq_id: from.map(SeqText),
    };
    ClientMessage::Subscribe {
        subscription: Subscription {
            id: id.into(),
            sql: sql.into(),
            options,
        },
    }
}

fn next_batch(id: &str) -> ClientMessage {
    ClientMessage::NextBatch {
        subscription_id: id.into(),
    }
}

/// Subscribe and page through the snapshot: the ack's boundary and the rows by id.
fn snapshot(client: &mut WsClient, id: &str, sql: &str) -> (u64, BTreeMap<i64, Row>) {
    client.send(&subscribe(id, sql, Some(100), None));
    let end = expect_ack(client, id);
    let mut state = BTreeMap::new();
    loop {
        let (batch, control) = expect_batch(client, id);
        state.extend(batch.into_iter().map(|row| (self::id(&row), row)));
        if !control.has_more {
            return (end, state);
        }
        client.send(&next_batch(id));
    }
}

fn expect_ack(client: &mut WsClient, id: &str) -> u64 {
    match client.recv() {
        ServerMessage::SubscriptionAck {
            subscription_id,
            snapshot_end_seq,
            ..
        } if subscription_id == id => snapshot_end_seq.0,
        other => panic!("expected subscription_ack for {id}, got {other:?}"),
    }
}

fn expect_batch(client: &mut WsClient, id: &str) -> (Vec<Row>, strand_wire::BatchControl) {
    match client.recv() {
        ServerMessage::InitialDataBatch {
            subscription_id,
            rows,
            batch_control,
        } if subscription_id == id => (rows, batch_control),
        other => panic!("expected initial_data_batch for {id}, got {other:?}"),
    }
}

fn expect_error(client: &mut WsClient, id: &str, code: &str) {
    match client.recv() {
        ServerMessage::Error {
            subscription_id,
            code: got,
            ..
        } if got == code => {
            assert_eq!(subscription_id.as_deref(), Some(id))
        }
        other => panic!("expected error {code} for {id}, got {other:?}"),
    }
}

fn next_change(client: &mut WsClient, id: &str) -> Change {
    match client.recv() {
        ServerMessage::Change {
            subscription_id,
            change_type,
            mut rows,
            old_rows,
        } if subscription_id == id => {
            assert_eq!(rows.len(), 1, "one change message per row");
            let old = old_rows.map(|mut old| {
                assert_eq!(old.len(), 1, "one old row per change");
                old.remove(0)
            });
            assert_eq!(
                old.is_some(),
                change_type == ChangeType::Update,
                "old_rows exactly on updates"
            );
            Change {
                kind: change_type,
                row: rows.remove(0),
                old,
            }
        }
        other => panic!("expected a change for {id}, got {other:?}"),
    }
}

fn expect_change(client: &mut WsClient, id: &str, kind: ChangeType) -> Change {
    let change = next_change(client, id);
    assert_eq!(change.kind, kind, "row {:?}", change.row);
    change
}

/// Apply a change to the client's copy, checking it against what the client has.
fn apply(state: &mut BTreeMap<i64, Row>, change: &Change) {
    let key = id(&change.row);
    match change.kind {
        ChangeType::Insert => {
            let had = state.insert(key, change.row.clone());
            assert!(had.is_none(), "insert of a row the client has: {had:?}");
        }
        ChangeType::Update => {
            let had = state.insert(key, change.row.clone());
            assert!(
                had.is_some(),
                "update of a row the client lacks: {:?}",
                change.row
            );
            assert_eq!(had, change.old, "old_rows is not the client's version");
        }
        ChangeType::Delete => {
            let mut had = state
                .remove(&key)
                .unwrap_or_else(|| panic!("delete of a row the client lacks: {:?}", change.row));
            assert!(
                seq(&change.row) > seq(&had),
                "a delete carries the deleting _seq"
            );
            had.insert("_seq".into(), change.row["_seq"].clone());
            assert_eq!(had, change.row, "a delete carries the last-seen row");
        }
    }
}

/// A one-shot SELECT's rows by id.
fn selected(setup: &AdminServer, text: &str) -> BTreeMap<i64, Row> {
    let found = rows(&setup.server, &setup.admin, text, &[]);
    found
        .iter()
        .map(|row| (id(row_of(row)), row_of(row).clone()))
        .collect()
}

fn row_of(value: &Value) -> &Row {
    value
        .as_object()
        .unwrap_or_else(|| panic!("row is not an object: {value}"))
}

/// `_seq` of a row, which must be a string of digits.
fn seq(row: &Row) -> u64 {
    match row.get("_seq") {
        Some(Value::String(text)) => text
            .parse()
            .unwrap_or_else(|_| panic!("bad _seq in {row:?}")),
        _ => panic!("row without a string _seq: {row:?}"),
    }
}

fn id(row: &Row) -> i64 {
    row.get("id")
        .and_then(Value::as_i64)
        .unwrap_or_else(|| panic!("row without id: {row:?}"))
}

fn fields(row: &Row) -> (i64, &str, &str) {
    let text = |name: &str| {
        row.get(name)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no {name} in {row:?}"))
    };
    (id(row), text("title"), text("status"))
}

/// The next text frame as raw JSON, to see how values are written.
fn recv_raw(client: &mut WsClient) -> Value {
    let socket = client.socket_mut();
    let _ = socket
        .get_mut()
        .set_read_timeout(Some(Duration::from_secs(20)));
    loop {
        match socket.read() {
            Ok(tungstenite::Message::Text(text)) => {
                return serde_json::from_str(text.as_str())
                    .unwrap_or_else(|e| panic!("{e}: {text}"))
            }
            Ok(tungstenite::Message::Ping(_) | tungstenite::Message::Pong(_)) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}
