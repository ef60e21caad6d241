//! SIGKILL loses no acknowledged write: writers insert rows (single rows and small batches,
//! into a USER and a SHARED table) over HTTP while the server is killed at a random moment,
//! several times over one data directory. After each restart every row whose INSERT was
//! answered 200 is there with its exact contents, no row appears that was never sent, and a
//! row once recovered stays recovered.
//!
//! The server runs with its default fsync policy, which is `always` (`strand serve --help`):
//! the default must be the durable one.

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use strand_tests::{bearer, rows, sql_ok, try_sql, ServerOptions, StrandServer, ADMIN_PASSWORD};

const CYCLES: u64 = 5;
/// Writer threads per cycle; even ones write the USER table, odd ones the SHARED one.
const WRITERS: u64 = 4;
const TABLES: [&str; 2] = ["app.mine", "app.common"];
/// Rows read per SELECT when checking.
const PAGE_ROWS: usize = 1000;

/// The contents of row `id`: deterministic, of varying size, so a torn or mixed-up record
/// shows.
fn label(id: i64) -> String {
    format!("{id}:{}", "x".repeat((id % 500) as usize))
}

/// A small xorshift generator; the seed is printed so that a failing run can be replayed.
struct Random(u64);

impl Random {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

/// What the writers sent and what the server acknowledged, per table.
#[derive(Default)]
struct Ledger {
    sent: BTreeSet<(usize, i64)>,
    acknowledged: BTreeSet<(usize, i64)>,
    unexpected: Vec<String>,
}

/// Insert rows until the server stops answering or `stop` is set. Every fifth request is a
/// batch of three rows.
fn write_until_stopped(
    server: std::net::SocketAddr,
    auth: &str,
    writer: u64,
    cycle: u64,
    stop: &AtomicBool,
) -> Ledger {
    let table = (writer % 2) as usize;
    let mut ledger = Ledger::default();
    let mut next = (writer * 1_000 + cycle) as i64 * 1_000_000;
    for request in 0u64.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let count = if request % 5 == 4 { 3 } else { 1 };
        let ids: Vec<i64> = (0..count).map(|i| next + i).collect();
        next += count;
        let placeholders: Vec<String> = (0..count)
            .map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2))
            .collect();
        let text = format!(
            "INSERT INTO {} (id, label) VALUES {}",
            TABLES[table],
            placeholders.join(", ")
        );
        let params: Vec<Value> = ids
            .iter()
            .flat_map(|&id| [json!(id), json!(label(id))])
            .collect();
        ledger.sent.extend(ids.iter().map(|&id| (table, id)));
        match try_sql(server, auth, &text, &params) {
            Some(answer) if answer.status == 200 => {
                ledger
                    .acknowledged
                    .extend(ids.iter().map(|&id| (table, id)));
            }
            Some(answer) => ledger
                .unexpected
                .push(format!("{text}: {} {}", answer.status, answer.text)),
            // The server is gone: this write is not acknowledged.
            None => break,
        }
    }
    ledger
}

/// Every row of both tables, by `(table, id)`, checking each row's contents.
fn stored_rows(server: &StrandServer, admin: &str) -> BTreeSet<(usize, i64)> {
    let mut stored = BTreeSet::new();
    for (table, name) in TABLES.iter().enumerate() {
        let text =
            format!("SELECT id, label FROM {name} WHERE id > $1 ORDER BY id LIMIT {PAGE_ROWS}");
        let mut after = -1i64;
        loop {
            let page = rows(server, admin, &text, &[json!(after)]);
            for row in &page {
                let id = row["id"].as_i64().expect("id");
                assert_eq!(
                    row["label"],
                    json!(label(id)),
                    "contents of {name} row {id}"
                );
                stored.insert((table, id));
                after = id;
            }
            if page.len() < PAGE_ROWS {
                break;
            }
        }
    }
    stored
}

/// One cycle: writers run until the server is killed at a random moment.
fn write_then_kill(server: StrandServer, admin: &str, cycle: u64, random: &mut Random) -> Ledger {
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let (addr, auth, stop) = (server.http, admin.to_string(), stop.clone());
            std::thread::spawn(move || write_until_stopped(addr, &auth, writer, cycle, &stop))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(50 + random.below(350)));
    let status = server.stop_with(libc::SIGKILL);
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    stop.store(true, Ordering::Relaxed);
    let mut total = Ledger::default();
    for writer in writers {
        let ledger = writer.join().expect("writer thread");
        total.sent.extend(ledger.sent);
        total.acknowledged.extend(ledger.acknowledged);
        total.unexpected.extend(ledger.unexpected);
    }
    total
}

#[test]
fn kill9_keeps_every_acknowledged_write() {
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as u64
        | 1;
    let mut random = Random(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let options = ServerOptions::with_admin_password(ADMIN_PASSWORD);
    let mut ledger = Ledger::default();
    // Rows seen at the last check, and every row sent before it.
    let mut recovered = BTreeSet::new();
    let mut sent_before_check = BTreeSet::new();
    for cycle in 0..=CYCLES {
        let server = StrandServer::start(dir.path(), &options);
        let admin = bearer(&server, "admin", ADMIN_PASSWORD);
        if cycle == 0 {
            sql_ok(
                &server,
                &admin,
                "CREATE NAMESPACE app;
                 CREATE TABLE app.mine (id BIGINT PRIMARY KEY, label TEXT) WITH (TYPE = 'USER');
                 CREATE TABLE app.common (id BIGINT PRIMARY KEY, label TEXT)
                   WITH (TYPE = 'SHARED')",
                &[],
            );
        }
        let stored = stored_rows(&server, &admin);
        let lost: Vec<_> = ledger.acknowledged.difference(&stored).collect();
        assert!(
            lost.is_empty(),
            "seed {seed}, cycle {cycle}: acknowledged rows lost: {lost:?}"
        );
        let phantom: Vec<_> = stored.difference(&ledger.sent).collect();
        assert!(
            phantom.is_empty(),
            "seed {seed}, cycle {cycle}: rows never sent: {phantom:?}"
        );
        let earlier: BTreeSet<_> = stored.intersection(&sent_before_check).copied().collect();
        assert_eq!(
            earlier, recovered,
            "seed {seed}, cycle {cycle}: recovered rows changed"
        );
        recovered = stored;
        sent_before_check = ledger.sent.clone();
        if cycle == CYCLES {
            assert_eq!(server.terminate().code(), Some(0));
            break;
        }
        let round = write_then_kill(server, &admin, cycle, &mut random);
        assert!(
            round.unexpected.is_empty(),
            "seed {seed}: {:?}",
            round.unexpected
        );
        ledger.sent.extend(round.sent);
        ledger.acknowledged.extend(round.acknowledged);
    }
    // The run proved something only if writes were acknowledged.
    assert!(
        ledger.acknowledged.len() >= 50,
        "seed {seed}: only {} acknowledged writes",
        ledger.acknowledged.len()
    );
}
