//! Subscription snapshots and resumes end to end (SPEC section 5, docs/realtime.md): the
//! snapshot arrives in batches the client asks for, as of its boundary `snapshot_end_seq`;
//! changes written while it is paged arrive after its last batch with no gap and no duplicate;
//! a resume from a `_seq` replays exactly what was missed, in order, then goes live. Applying
//! every change to the snapshot gives what a one-shot SELECT returns.

use std::collections::BTreeMap;
use std::time::Duration;

use strand_tests::ws::*;
use strand_tests::{rows, AdminServer};
use strand_wire::{codes, BatchStatus, ChangeType, Row, SeqText};

const QUIET: Duration = Duration::from_millis(300);
const TICKETS: &str =
    "CREATE TABLE app.tickets (id BIGINT PRIMARY KEY, title TEXT, status TEXT) WITH (TYPE = 'SHARED')";
const OPEN: &str = "SELECT id, title, status FROM app.tickets WHERE status = 'open'";
const ITEMS: &str = "SELECT id, label FROM app.items";

#[test]
fn snapshot_arrives_in_batches_the_client_asks_for() {
    let setup = AdminServer::with_app(&format!(
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
    let max_written = written.iter().map(|row| row_seq(json_row(row))).max();
    let mut client = admin_ws(&setup);
    client.send(&subscribe_message("items", ITEMS, Some(10), None));
    let ack = client.recv_json();
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
            client.send(&next_batch_message("items"));
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
            assert!(
                row_seq(row) <= end,
                "snapshot row after the boundary: {row:?}"
            );
            ids.push(row_id(row));
        }
    }
    ids.sort_unstable();
    assert_eq!(ids, (1..=25).collect::<Vec<_>>());
    client.send(&next_batch_message("items"));
    expect_error(&mut client, "items", codes::NO_PENDING_BATCH);

    client.send(&subscribe_message(
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
    client.send(&next_batch_message("empty"));
    expect_error(&mut client, "empty", codes::NO_PENDING_BATCH);
}

#[test]
fn changes_written_while_the_snapshot_is_paged_follow_its_last_batch() {
    let setup = AdminServer::with_app(&format!(
        "CREATE TABLE app.items (id BIGINT PRIMARY KEY, label TEXT) WITH (TYPE = 'SHARED'); {}",
        insert_items(1..=25)
    ));
    let mut client = admin_ws(&setup);
    client.send(&subscribe_message("items", ITEMS, Some(10), None));
    let end = expect_ack(&mut client, "items");
    let mut state = BTreeMap::new();
    let (batch, _) = expect_batch(&mut client, "items");
    state.extend(batch.into_iter().map(|row| (row_id(&row), row)));

    setup.exec(&insert_items(26..=45));
    for statement in [
        "UPDATE app.items SET label = 'changed' WHERE id = 5",
        "UPDATE app.items SET label = 'changed' WHERE id = 25",
        "DELETE FROM app.items WHERE id = 12",
        "DELETE FROM app.items WHERE id = 30",
        "UPDATE app.items SET label = 'again' WHERE id = 26",
    ] {
        setup.exec(statement);
    }
    for n in 46..=50 {
        setup.exec(&insert_items(n..=n));
    }
    for _ in 1..=2 {
        client.send(&next_batch_message("items"));
        let (batch, _) = expect_batch(&mut client, "items");
        for row in batch {
            assert!(
                row_seq(&row) <= end,
                "snapshot row after the boundary: {row:?}"
            );
            assert!(
                state.insert(row_id(&row), row).is_none(),
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
            row_seq(&change.row) > last,
            "_seq {} after {last}",
            row_seq(&change.row)
        );
        last = row_seq(&change.row);
        apply_change(&mut state, &change);
    }
    client.expect_silence(QUIET);
    assert_eq!(
        state,
        selected(&setup, "SELECT id, label, _seq FROM app.items")
    );
}

#[test]
fn resume_from_a_seq_replays_exactly_the_missed_changes_then_goes_live() {
    let setup = AdminServer::with_app(TICKETS);
    setup.exec(
        "INSERT INTO app.tickets (id, title, status) VALUES (1, 'a', 'open'), (2, 'b', 'closed')",
    );
    let mut client = admin_ws(&setup);
    let (_, mut state) = snapshot(&mut client, "open", OPEN);
    setup.exec("INSERT INTO app.tickets (id, title, status) VALUES (3, 'c', 'open')");
    let change = expect_change(&mut client, "open", ChangeType::Insert);
    apply_change(&mut state, &change);
    let last = row_seq(&change.row);
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
        setup.exec(statement);
    }
    let mut client = admin_ws(&setup);
    client.send(&subscribe_message("open", OPEN, None, Some(last)));
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
        assert_eq!(ticket_fields(&change.row), row);
        assert!(
            row_seq(&change.row) > previous,
            "resumed changes out of order"
        );
        previous = row_seq(&change.row);
        apply_change(&mut state, &change);
    }
    client.expect_silence(QUIET);
    assert_eq!(
        state,
        selected(&setup, &OPEN.replace("status FROM", "status, _seq FROM"))
    );

    setup.exec("INSERT INTO app.tickets (id, title, status) VALUES (12, 'z', 'open')");
    let live = expect_change(&mut client, "open", ChangeType::Insert);
    assert_eq!(ticket_fields(&live.row), (12, "z", "open"));
    assert!(row_seq(&live.row) > previous);
}
// ---- helpers ----

fn insert_items(ids: std::ops::RangeInclusive<i64>) -> String {
    let values: Vec<String> = ids.map(|n| format!("({n}, 'item {n}')")).collect();
    format!(
        "INSERT INTO app.items (id, label) VALUES {}",
        values.join(", ")
    )
}

/// A one-shot SELECT's rows by id.
fn selected(setup: &AdminServer, text: &str) -> BTreeMap<i64, Row> {
    let found = rows(&setup.server, &setup.admin, text, &[]);
    found
        .iter()
        .map(|row| (row_id(json_row(row)), json_row(row).clone()))
        .collect()
}
