//! A subscription whose WHERE pins the primary key reads its snapshot through the key index,
//! not by reading the partition's whole history (issue 17, defect 10: 256 point
//! subscriptions on a 200k-row partition held 720 MB). Many point subscriptions on a large
//! partition read a few log records each (`strand_snapshot_rows_scanned_total`) and leave the
//! server's memory about where it was; each still reports a boundary at or after every row
//! written and receives the later changes of its row. A scan (a WHERE that does not pin the
//! key) pages the log as the client asks, with an exact `has_more`.

use std::collections::BTreeMap;
use std::time::Duration;

use strand_tests::ws::*;
use strand_tests::{get, rows, AdminServer, StrandServer};
use strand_wire::{ChangeType, ServerMessage};

/// Rows in the partition: enough that reading its history per subscription shows, few
/// enough that a debug build writes them in seconds.
const ROWS: i64 = 50_000;
/// Rows per INSERT (well under the request body limit).
const INSERT_ROWS: i64 = 2_500;
/// Connections, and point subscriptions on each: they subscribe at the same time.
const CONNECTIONS: usize = 16;
const SUBSCRIPTIONS_PER_CONNECTION: usize = 16;
/// Log records one point snapshot may read: its row's version (and, had the key been
/// written meanwhile, a few links back). Reading the history would be `ROWS`.
const RECORDS_PER_POINT_SNAPSHOT_MAX: u64 = 8;
/// Growth of the server's peak resident memory the point subscriptions may cause. Reading the
/// history materialized every version per concurrent subscription (hundreds of megabytes here).
const PEAK_GROWTH_MAX_BYTES: u64 = 96 * 1024 * 1024;
const RECV_TIMEOUT: Duration = Duration::from_secs(120);

#[test]
fn point_subscriptions_use_the_key_index() {
    let setup = AdminServer::with_app(
        "CREATE TABLE app.points (id BIGINT PRIMARY KEY, owner TEXT, body TEXT) \
         WITH (TYPE = 'SHARED')",
    );
    for start in (0..ROWS).step_by(INSERT_ROWS as usize) {
        let values: Vec<String> = (start..start + INSERT_ROWS)
            .map(|id| format!("({id}, 'o{}', 'body of row {id} .............')", id % 1000))
            .collect();
        setup.exec(&format!(
            "INSERT INTO app.points (id, owner, body) VALUES {}",
            values.join(", ")
        ));
    }
    // Rows are written in id order: the last one has the newest `_seq`.
    let last = rows(
        &setup.server,
        &setup.admin,
        &format!("SELECT _seq FROM app.points WHERE id = {}", ROWS - 1),
        &[],
    );
    let newest = row_seq(json_row(&last[0]));

    let scanned_before = scanned(&setup.server);
    let peak_before = status_bytes(&setup.server, "VmHWM:");
    let anon_before = status_bytes(&setup.server, "RssAnon:");

    // Every connection sends all its subscribes at once, then reads the answers.
    let mut clients: Vec<WsClient> = (0..CONNECTIONS).map(|_| admin_ws(&setup)).collect();
    let id_of = |c: usize, s: usize| (c * SUBSCRIPTIONS_PER_CONNECTION + s) as i64 * 193 % ROWS;
    for (c, client) in clients.iter_mut().enumerate() {
        for s in 0..SUBSCRIPTIONS_PER_CONNECTION {
            let id = id_of(c, s);
            let sql = format!("SELECT id, body FROM app.points WHERE id = {id}");
            client.send(&subscribe_message(&format!("p{id}"), &sql, None, None));
        }
    }
    for (c, client) in clients.iter_mut().enumerate() {
        let mut pending: BTreeMap<String, i64> = (0..SUBSCRIPTIONS_PER_CONNECTION)
            .map(|s| (format!("p{}", id_of(c, s)), id_of(c, s)))
            .collect();
        let mut acked = 0;
        while !pending.is_empty() {
            match client.next_within(RECV_TIMEOUT) {
                Ok(ServerMessage::SubscriptionAck {
                    snapshot_end_seq, ..
                }) => {
                    assert!(snapshot_end_seq.0 >= newest, "boundary below the rows");
                    acked += 1;
                }
                Ok(ServerMessage::InitialDataBatch {
                    subscription_id,
                    rows,
                    batch_control,
                }) => {
                    let id = pending
                        .remove(&subscription_id)
                        .unwrap_or_else(|| panic!("unexpected batch for {subscription_id}"));
                    assert!(!batch_control.has_more);
                    assert_eq!(rows.len(), 1, "{subscription_id}: {rows:?}");
                    assert_eq!(row_id(&rows[0]), id);
                    assert_eq!(rows[0]["body"], format!("body of row {id} ............."));
                }
                other => panic!("expected an ack or a batch, got {other:?}"),
            }
        }
        assert_eq!(acked, SUBSCRIPTIONS_PER_CONNECTION);
    }

    let subscriptions = (CONNECTIONS * SUBSCRIPTIONS_PER_CONNECTION) as u64;
    let read = scanned(&setup.server) - scanned_before;
    let peak_growth = status_bytes(&setup.server, "VmHWM:").saturating_sub(peak_before);
    let anon_growth = status_bytes(&setup.server, "RssAnon:").saturating_sub(anon_before);
    eprintln!(
        "{subscriptions} point snapshots read {read} log records; peak memory +{} KiB, \
         RssAnon +{} KiB",
        peak_growth >> 10,
        anon_growth >> 10
    );
    assert!(
        read <= subscriptions * RECORDS_PER_POINT_SNAPSHOT_MAX,
        "{subscriptions} point snapshots read {read} log records ({} each); the partition \
         has {ROWS} rows",
        read / subscriptions
    );
    assert!(
        peak_growth <= PEAK_GROWTH_MAX_BYTES,
        "{subscriptions} point subscriptions raised the server's peak memory by {} MiB \
         (RssAnon +{} MiB)",
        peak_growth >> 20,
        anon_growth >> 20
    );

    // The later changes of each row still arrive, after its boundary.
    let id = id_of(0, 0);
    setup.exec(&format!(
        "UPDATE app.points SET body = 'changed' WHERE id = {id}"
    ));
    let change = expect_change(&mut clients[0], &format!("p{id}"), ChangeType::Update);
    assert_eq!(change.row["body"], "changed");
    assert!(row_seq(&change.row) > newest);
}

#[test]
fn a_scan_snapshot_pages_the_log_with_an_exact_has_more() {
    let setup = AdminServer::with_app(
        "CREATE TABLE app.points (id BIGINT PRIMARY KEY, owner TEXT, body TEXT) \
         WITH (TYPE = 'SHARED')",
    );
    let values: Vec<String> = (0..2_000)
        .map(|id| format!("({id}, 'o{}', 'b{id}')", id % 400))
        .collect();
    setup.exec(&format!(
        "INSERT INTO app.points (id, owner, body) VALUES {}",
        values.join(", ")
    ));
    // Rows 7, 407, ..., 1607 match; 807 is then replaced and 1207 deleted before the
    // subscription, so its snapshot holds 7, 407, 1607 (in that `_seq` order) and 807's new
    // version (written last).
    setup.exec("UPDATE app.points SET body = 'new' WHERE id = 807");
    setup.exec("DELETE FROM app.points WHERE id = 1207");
    let mut client = admin_ws(&setup);
    let sql = "SELECT id, body FROM app.points WHERE owner = 'o7'";
    client.send(&subscribe_message("scan", sql, Some(2), None));
    let end = expect_ack(&mut client, "scan");
    let mut got = Vec::new();
    for (number, has_more) in [(0, true), (1, false)] {
        if number > 0 {
            client.send(&next_batch_message("scan"));
        }
        let (batch, control) = expect_batch(&mut client, "scan");
        assert_eq!((control.batch_num, control.has_more), (number, has_more));
        assert_eq!(control.snapshot_end_seq.0, end);
        got.extend(batch.iter().map(|row| (row_id(row), row["body"].clone())));
    }
    let expected = [(7, "b7"), (407, "b407"), (1607, "b1607"), (807, "new")];
    let expected: Vec<_> = expected
        .iter()
        .map(|(id, body)| (*id, serde_json::json!(body)))
        .collect();
    assert_eq!(got, expected);
}

/// `strand_snapshot_rows_scanned_total`.
fn scanned(server: &StrandServer) -> u64 {
    let text = get(&server.url("/metrics")).text;
    let name = "strand_snapshot_rows_scanned_total ";
    text.lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name}in /metrics:\n{text}"))
}

/// A `kB` field of the server's `/proc/<pid>/status`, in bytes.
fn status_bytes(server: &StrandServer, field: &str) -> u64 {
    let path = format!("/proc/{}/status", server.pid());
    let status = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kb| kb * 1024)
        .unwrap_or_else(|| panic!("no {field} in {path}"))
}
