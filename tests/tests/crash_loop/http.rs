//! The HTTP writers of the crash loop: threads that INSERT rows (single rows and small batches)
//! into `app.rows` until the server stops answering, and the check of the table after a restart.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use serde_json::{json, Value};
use strand_tests::ws::{json_row, row_id, row_seq};
use strand_tests::{rows, try_sql, StrandServer};
use strand_wire::Row;

/// Writer threads per cycle.
pub const WRITERS: u64 = 2;
pub const TABLE: &str = "app.rows";
pub const DDL: &str =
    "CREATE TABLE app.rows (id BIGINT PRIMARY KEY, label TEXT) WITH (TYPE = 'SHARED')";
/// Rows read per SELECT when checking.
const PAGE_ROWS: usize = 1000;

/// The contents of row `id`: deterministic, of varying size, so a torn or mixed-up record
/// shows.
pub fn label(id: i64) -> String {
    format!("{id}:{}", "x".repeat((id % 300) as usize))
}

/// What the writers sent and what the server acknowledged (200), by row id.
#[derive(Default)]
pub struct Ledger {
    pub sent: BTreeSet<i64>,
    pub acknowledged: BTreeSet<i64>,
    /// Answers that were neither 200 nor a broken connection.
    pub unexpected: Vec<String>,
}

impl Ledger {
    pub fn absorb(&mut self, other: Ledger) {
        self.sent.extend(other.sent);
        self.acknowledged.extend(other.acknowledged);
        self.unexpected.extend(other.unexpected);
    }
}

/// Starts the writers of `cycle`; they stop when `stop` is set or the server stops answering.
pub fn start_writers(
    http: SocketAddr,
    auth: &str,
    cycle: u64,
    stop: &Arc<AtomicBool>,
) -> Vec<JoinHandle<Ledger>> {
    (0..WRITERS)
        .map(|writer| {
            let (auth, stop) = (auth.to_string(), stop.clone());
            std::thread::spawn(move || write_until_stopped(http, &auth, writer, cycle, &stop))
        })
        .collect()
}

/// Joins the writers; their ledgers together.
pub fn join_writers(writers: Vec<JoinHandle<Ledger>>) -> Ledger {
    let mut total = Ledger::default();
    for writer in writers {
        total.absorb(writer.join().expect("HTTP writer thread"));
    }
    total
}

/// Insert rows until the server stops answering or `stop` is set. Every fourth request is a
/// batch of three rows. Ids are unique per (cycle, writer).
fn write_until_stopped(
    http: SocketAddr,
    auth: &str,
    writer: u64,
    cycle: u64,
    stop: &AtomicBool,
) -> Ledger {
    let mut ledger = Ledger::default();
    let mut next = ((cycle * WRITERS + writer) as i64) << 24;
    for request in 0u64.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let count = if request % 4 == 3 { 3 } else { 1 };
        let ids: Vec<i64> = (next..next + count).collect();
        next += count;
        let placeholders: Vec<String> = (0..count)
            .map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2))
            .collect();
        let text = format!(
            "INSERT INTO {TABLE} (id, label) VALUES {}",
            placeholders.join(", ")
        );
        let params: Vec<Value> = ids
            .iter()
            .flat_map(|&id| [json!(id), json!(label(id))])
            .collect();
        ledger.sent.extend(&ids);
        match try_sql(http, auth, &text, &params) {
            Some(answer) if answer.status == 200 => ledger.acknowledged.extend(&ids),
            Some(answer) => ledger
                .unexpected
                .push(format!("{text}: {} {}", answer.status, answer.text)),
            // The server is gone: this write is not acknowledged.
            None => break,
        }
    }
    ledger
}

/// Every row of the table by id (with `_seq`, as a subscriber holds them), each row's contents
/// checked and each id once.
pub fn stored_rows(server: &StrandServer, admin: &str) -> BTreeMap<i64, Row> {
    let text =
        format!("SELECT id, label, _seq FROM {TABLE} WHERE id > $1 ORDER BY id LIMIT {PAGE_ROWS}");
    let mut stored = BTreeMap::new();
    let mut after = -1i64;
    loop {
        let page = rows(server, admin, &text, &[json!(after)]);
        for row in &page {
            let row = json_row(row);
            let id = row_id(row);
            assert_eq!(row["label"], json!(label(id)), "contents of row {id}");
            assert!(row_seq(row) > 0, "row {id} without a _seq");
            let again = stored.insert(id, row.clone());
            assert!(again.is_none(), "row {id} read twice");
            after = id;
        }
        if page.len() < PAGE_ROWS {
            return stored;
        }
    }
}
