//! Randomized proof of the subscription guarantees of SPEC section 5: while writers run random
//! INSERT/UPDATE/DELETE on a SHARED table over a small key space, simulated clients subscribe
//! with random filters, projections and batch sizes, page through their snapshots, disconnect
//! and resume from their last `_seq` (or take a fresh snapshot) at random moments. For every
//! such history, at every check point, the result the client maintains from snapshot plus
//! changes equals the query evaluated over the table's history at the last `_seq` it received,
//! and the `_seq`s after its snapshot strictly increase (no gap, no duplicate, also across
//! resume). Each change is also checked in itself: an insert of a row not held, an update whose
//! `old_rows` is the row held, a delete of the row held.
//!
//! The history comes from an observer subscribed to `SELECT * FROM app.items` before any write;
//! at the end the observer's table is compared with `SELECT ... _seq` over HTTP.
//!
//! `STRAND_GUARANTEE_HISTORIES` sets the number of histories (default 200);
//! `STRAND_GUARANTEE_SEED` replays a seed's random choices (thread timing still varies). Long run:
//! `STRAND_GUARANTEE_HISTORIES=10000 cargo test -p strand-tests --release --test subscription_guarantees -- --nocapture`

#[path = "subscription_guarantees/model.rs"]
mod model;
#[path = "subscription_guarantees/session.rs"]
mod session;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use model::{diff, key_of, History, Query, Rng, KEYS, QTY_MAX};
use serde_json::Value;
use session::Session;
use strand_tests::{rows, sql_ok, try_sql, AdminServer, StrandServer};

const CLIENT_THREADS: usize = 8;
const WRITERS: u64 = 3;
const DEFAULT_HISTORIES: u64 = 200;
/// Written after the writers stopped: once the observer has it, it has everything.
const SENTINEL: i64 = 1_000_000;

#[derive(Default)]
pub struct Stats {
    pub histories: AtomicU64,
    pub changes: AtomicU64,
    pub checks: AtomicU64,
    pub snapshots: AtomicU64,
    pub batches: AtomicU64,
    pub resumes: AtomicU64,
    pub slow_consumers: AtomicU64,
    pub writes: AtomicU64,
}

/// What every thread of the test shares.
pub struct Shared {
    pub server: StrandServer,
    pub admin: String,
    pub seed: u64,
    /// The observer's history of `app.items`; `progressed` is notified on every event.
    pub observed: Mutex<History>,
    pub progressed: Condvar,
    pub observer_dead: AtomicBool,
    pub abort: AtomicBool,
    stop_writers: AtomicBool,
    stop_observer: AtomicBool,
    pub stats: Stats,
}

pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Marks a panicking thread's failure so that the others stop instead of waiting for it.
struct Guard<'a> {
    shared: &'a Shared,
    observer: bool,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.shared.abort.store(true, Relaxed);
            if self.observer {
                self.shared.observer_dead.store(true, Relaxed);
            }
            self.shared.progressed.notify_all();
        }
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    Some(
        text.trim()
            .parse()
            .unwrap_or_else(|e| panic!("{name}={text}: {e}")),
    )
}

#[test]
fn subscription_guarantees() {
    let started = Instant::now();
    let histories = env_u64("STRAND_GUARANTEE_HISTORIES").unwrap_or(DEFAULT_HISTORIES);
    let seed = env_u64("STRAND_GUARANTEE_SEED").unwrap_or_else(|| {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        now.as_nanos() as u64
    });
    println!("subscription_guarantees: seed {seed} (STRAND_GUARANTEE_SEED), {histories} histories");
    let AdminServer {
        server,
        admin,
        dir: _dir,
    } = AdminServer::start();
    let setup = "CREATE NAMESPACE app; \
        CREATE TABLE app.items (id BIGINT PRIMARY KEY, grp TEXT, qty INT) WITH (TYPE = 'SHARED')";
    sql_ok(&server, &admin, setup, &[]);
    let shared = Shared {
        server,
        admin,
        seed,
        observed: Mutex::new(History::default()),
        progressed: Condvar::new(),
        observer_dead: AtomicBool::new(false),
        abort: AtomicBool::new(false),
        stop_writers: AtomicBool::new(false),
        stop_observer: AtomicBool::new(false),
        stats: Stats::default(),
    };
    let shared = &shared;

    // The observer's (empty) snapshot is taken before the first write.
    let mut observer = Session::new(shared, "observer".into(), Query::everything(), 1000);
    observer.connect_fresh(&mut Rng::new(seed));
    if !observer.view.rows.is_empty() {
        observer.fail("the observer's snapshot of the new table is not empty");
    }
    let next_history = AtomicU64::new(0);
    let failure = std::thread::scope(|scope| {
        let observer = scope.spawn(move || observe(observer));
        let writers: Vec<_> = (0..WRITERS)
            .map(|writer| scope.spawn(move || write(shared, writer)))
            .collect();
        let clients: Vec<_> = (0..CLIENT_THREADS)
            .map(|_| {
                let next_history = &next_history;
                scope.spawn(move || {
                    let _guard = Guard {
                        shared,
                        observer: false,
                    };
                    loop {
                        let index = next_history.fetch_add(1, Relaxed);
                        if index >= histories || shared.abort.load(Relaxed) {
                            return;
                        }
                        run_history(shared, index);
                    }
                })
            })
            .collect();
        let mut failure = None;
        for client in clients {
            failure = failure.or(client.join().err());
        }
        shared.stop_writers.store(true, Relaxed);
        for writer in writers {
            failure = failure.or(writer.join().err());
        }
        if failure.is_none() {
            let sentinel =
                format!("INSERT INTO app.items (id, grp, qty) VALUES ({SENTINEL}, 'z', 0)");
            sql_ok(&shared.server, &shared.admin, &sentinel, &[]);
            wait_for_sentinel(shared);
        }
        shared.stop_observer.store(true, Relaxed);
        failure.or(observer.join().err())
    });
    if let Some(panic) = failure {
        std::panic::resume_unwind(panic);
    }

    // The observer's table (its history replayed to the end) is the table HTTP reads.
    let text = "SELECT id, grp, qty, _seq FROM app.items";
    let mut table = BTreeMap::new();
    for row in rows(&shared.server, &shared.admin, text, &[]) {
        let Value::Object(row) = row else {
            panic!("a row is not an object: {row}")
        };
        table.insert(key_of(&row).expect("id"), row);
    }
    let history = lock(&shared.observed);
    if let Some(difference) = diff(&history.state_at(u64::MAX), &table) {
        panic!("seed {seed}: the observer's table differs from {text}:\n{difference}");
    }
    let stats = &shared.stats;
    let count = |counter: &AtomicU64| counter.load(Relaxed);
    println!(
        "subscription_guarantees: {} histories, {} subscriber changes checked, {} result checks, \
         {} snapshots ({} batches), {} resumes, {} slow-consumer disconnects, \
         {} observed events from {} writes, seed {seed}, {:.1?}",
        count(&stats.histories),
        count(&stats.changes) - history.events,
        count(&stats.checks),
        count(&stats.snapshots),
        count(&stats.batches),
        count(&stats.resumes),
        count(&stats.slow_consumers),
        history.events,
        count(&stats.writes),
        started.elapsed()
    );
    assert_eq!(count(&stats.histories), histories);
    if histories >= 50 {
        let exercised = count(&stats.changes) > history.events && count(&stats.resumes) > 0;
        assert!(exercised, "no change or no resume was exercised");
    }
}

/// One simulated client: a random query and batch size; a fresh snapshot (paged, with pauses
/// while the writers run), then live changes, with disconnects followed by a resume (or now
/// and then a fresh snapshot); the result is checked after every step.
fn run_history(shared: &Shared, index: u64) {
    let mut rng = Rng::new(shared.seed ^ index.wrapping_mul(0x2545_F491_4F6C_DD1D));
    let query = Query::random(&mut rng);
    // Mostly small batches, so that snapshots page.
    let largest = if rng.percent(70) { 8 } else { 50 };
    let batch_size = 1 + rng.below(largest) as u32;
    let mut session = Session::new(shared, format!("history {index}"), query, batch_size);
    session.connect_fresh(&mut rng);
    session.check();
    for _ in 0..1 + rng.below(6) {
        let live = Duration::from_millis(5 + rng.below(80));
        if !session.pump(live, &mut |_| {}) {
            session.connect_resume();
        }
        session.check();
        if rng.percent(50) {
            session.disconnect(&mut rng);
            if rng.percent(85) {
                session.connect_resume();
            } else {
                session.connect_fresh(&mut rng);
            }
            session.check();
        }
    }
    shared.stats.histories.fetch_add(1, Relaxed);
}

/// The observer: every change of `SELECT * FROM app.items` goes into the shared history.
fn observe(mut session: Session<'_>) {
    let shared = session.shared;
    let _guard = Guard {
        shared,
        observer: true,
    };
    let mut record = |applied: model::Applied| {
        lock(&shared.observed).record(applied.seq, applied.key, applied.row);
        shared.progressed.notify_all();
    };
    while !shared.stop_observer.load(Relaxed) {
        if !session.pump(Duration::from_millis(100), &mut record) {
            session.connect_resume();
        }
    }
}

fn wait_for_sentinel(shared: &Shared) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut history = lock(&shared.observed);
    while !history.state_at(u64::MAX).contains_key(&SENTINEL) {
        assert!(
            Instant::now() < deadline && !shared.observer_dead.load(Relaxed),
            "seed {}: the observer never saw the final insert of id {SENTINEL}",
            shared.seed
        );
        let wait = shared
            .progressed
            .wait_timeout(history, Duration::from_millis(50));
        history = wait.unwrap_or_else(PoisonError::into_inner).0;
    }
}

/// A random write: single and multi-row INSERTs (duplicate keys allowed to fail), UPDATEs and
/// DELETEs by key, and now and then bulk UPDATEs and DELETEs by filter.
fn statement(rng: &mut Rng) -> (String, bool) {
    let values = |rng: &mut Rng, key: i64| {
        let (grp, qty) = (rng.group(), rng.range(0, QTY_MAX));
        format!("({key}, '{grp}', {qty})")
    };
    let insert = "INSERT INTO app.items (id, grp, qty) VALUES";
    let key = rng.key();
    let text = match rng.below(100) {
        0..=39 => format!("{insert} {}", values(rng, key)),
        40..=44 => {
            let rows: Vec<String> = (0..2 + rng.below(3) as i64)
                .map(|i| values(rng, (key + i - 1) % KEYS + 1))
                .collect();
            format!("{insert} {}", rows.join(", "))
        }
        45..=59 => format!(
            "UPDATE app.items SET grp = '{}', qty = {} WHERE id = {key}",
            rng.group(),
            rng.range(0, QTY_MAX)
        ),
        60..=69 => format!(
            "UPDATE app.items SET qty = {} WHERE id = {key}",
            rng.range(0, QTY_MAX)
        ),
        70..=86 => format!("DELETE FROM app.items WHERE id = {key}"),
        87..=93 => format!(
            "UPDATE app.items SET qty = qty + 1 WHERE grp = '{}' AND qty < {QTY_MAX}",
            rng.group()
        ),
        94..=96 => format!(
            "DELETE FROM app.items WHERE id BETWEEN {key} AND {}",
            key + 2
        ),
        _ => format!("DELETE FROM app.items WHERE qty > {}", QTY_MAX - 5),
    };
    let may_conflict = text.starts_with("INSERT");
    (text, may_conflict)
}

fn write(shared: &Shared, writer: u64) {
    let _guard = Guard {
        shared,
        observer: false,
    };
    let mut rng = Rng::new(shared.seed.wrapping_add(1 + writer));
    while !shared.stop_writers.load(Relaxed) && !shared.abort.load(Relaxed) {
        let (text, may_conflict) = statement(&mut rng);
        let answer = try_sql(shared.server.http, &shared.admin, &text, &[])
            .unwrap_or_else(|| panic!("writer {writer}: the HTTP exchange failed: {text}"));
        if answer.status != 200 {
            let code = answer.json()["error"]["code"].clone();
            assert!(
                may_conflict && code == "duplicate_key",
                "writer {writer}: {text} -> {} {}",
                answer.status,
                answer.text
            );
        }
        shared.stats.writes.fetch_add(1, Relaxed);
        if rng.percent(50) {
            std::thread::sleep(Duration::from_millis(rng.below(3)));
        }
    }
}
