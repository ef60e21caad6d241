//! Randomized proof of the subscription guarantees of docs/websocket.md ("Changes",
//! "Resume", "Errors"): while writers run random INSERT/UPDATE/DELETE on a SHARED table over
//! a small key space, simulated clients subscribe with random filters, projections and batch
//! sizes, page through their snapshots, disconnect and resume from their last `_seq` (or take
//! a fresh snapshot) at random moments, DDL (ALTER TABLE ... ADD COLUMN, DROP TABLE and
//! CREATE TABLE again) happens under them, and compaction runs all along (small segments,
//! short tombstone retention), so resumes meet keyed catch-ups and `resume_too_old`.
//!
//! Safety: at every check point the result a client maintains from snapshot plus changes
//! equals the query over the table's history at the last `_seq` it received, and the `_seq`s
//! after its snapshot strictly increase (no duplicate, also across resume); each change is
//! checked in itself (an insert of a row not held, an update whose `old_rows` is the row
//! held, a delete of the row held); `table_dropped` and `schema_changed` end exactly the
//! subscriptions the DDL breaks; a keyed catch-up brings the copy to the query's result at its
//! `snapshot_end_seq`.
//!
//! A third of the histories subscribe with a top-K window (docs/websocket.md, "Top-K
//! subscriptions"): `[WHERE ...] [ORDER BY <qty, grp, id, _seq or qty % 7> [ASC|DESC] [, ...]]
//! LIMIT 1..8 [OFFSET 0..4]` (`window.rs`). The model orders the filtered rows (NULL
//! larger than every value, then `id`), skips the offset and takes the limit, before and after
//! every write; the subscriber must receive exactly one `change` per write that changed its
//! window, stamped with that write's `_seq` as its `"seq"` (also across resumes, which are
//! exact or `resume_too_old`, never keyed), each leaving its copy equal to the model's window
//! after the write, and its snapshot in the window's order (`session_window.rs`,
//! `session_check.rs`).
//!
//! A fifth of the histories subscribe with a grouping query (docs/websocket.md, "Grouping
//! subscriptions"; `groups.rs`): `SELECT <keys>, <one to four of COUNT(*), COUNT(qty), SUM(qty),
//! MIN(qty), MAX(qty)> ... [WHERE ...] [GROUP BY grp | qty % 4 | grp, qty % 2] [HAVING COUNT(*)
//! > k]` (without GROUP BY: one row, a count badge). The model groups the table's state before
//! and after every write; as for a window, the subscriber must receive exactly one `change`
//! per write that changed some group's row, stamped with its `_seq`, each checked in itself
//! (deleted and replaced groups are the ones held, inserted ones are not) and leaving its copy
//! equal to the model's groups (without `_seq`); the snapshot comes in group-key order; resumes
//! are exact or `resume_too_old` (`session_groups.rs`, `session_check.rs`).
//!
//! A sixth of the histories (drawn first: the shares above are of the others) subscribe with
//! a time-relative filter (docs/websocket.md,
//! "Time-relative subscriptions"; `clock.rs`): the WHERE compares the TIMESTAMP column `at`
//! (which the writers write as a literal of their clock plus up to 300 ms either way, or NULL),
//! or `at ± INTERVAL`, with `now()`, `NOW()` or `CURRENT_TIMESTAMP` ± an INTERVAL of 100..600
//! ms (in milliseconds, seconds or microseconds; either side first), alone, as a band (`at <=
//! now() + d AND at > now() - w`: rows enter, then leave), or with AND, OR, NOT, `at IS [NOT]
//! NULL` and the other conditions (three-valued logic: `at` may be NULL). The model's state at
//! a `_seq` S is the query over the table as of S with `now()` = the time of S (its
//! milliseconds), also for a tick (a `_seq` no record has, which the server takes for time
//! passing). Every message carries a `"seq"` and may carry several rows, and is checked in
//! itself as a top-K one; the snapshot must be the model at its boundary, each copy after a
//! message the model at its `"seq"`, and no record between two messages may change its own
//! key's row in the result without a message (time moves alone may wait for the next message,
//! within the server's tolerance); resumes, from any `"seq"` (ticks too), are exact or
//! `resume_too_old` (`session_clock.rs`).
//!
//! An eighth of the histories (drawn before all the others: the shares above are of the
//! rest) subscribe with a join of the STREAM table to the SHARED one (docs/websocket.md, "Join
//! subscriptions"; `join.rs`): `SELECT e.id, <some of e.grp, e.qty, e.at, i.id AS iid, i.grp AS
//! igrp, i.qty AS iqty, i.at AS iat, e.qty + i.qty AS total> FROM app.events e [INNER | LEFT
//! [OUTER]] JOIN app.items i ON i.id = e.id | i.id = e.qty (either side first) [WHERE <both
//! tables' columns, NULLs, AND, OR, NOT>]`. The model's join at a `_seq` S is the join over
//! `app.events` as of S (the writer's records and the server's expiry deletes) and the
//! subscription's generation of `app.items` as of S; a joined row is keyed by `e.id`, and its
//! `_seq` is the newest of its parts. As for a window, the subscriber must receive exactly one
//! message per write (to either table, merged by `_seq`) that changed the join, stamped with
//! its `_seq`, each checked in itself (deleted and replaced rows held, inserted ones not) and
//! leaving the copy equal to the join after that write; the snapshot is the join at its
//! boundary; resumes are exact or `resume_too_old`, and a resume from before `app.items` was
//! dropped is refused with `table_dropped`; DROP TABLE app.items ends the subscription with
//! `table_dropped` (`session_join.rs`).
//!
//! The holes this closes (issue 16, "The checks that must catch defects like these"): the test
//! used to check safety only (a subscriber that stopped receiving still equalled the query at
//! its own last `_seq`), so a server that stopped delivering after a resume, dropped the last
//! changes of a burst, or never sent live changes to filtered subscriptions passed; and the
//! reference history was the server's own change feed. Now:
//! - liveness: every history ends by waiting for every change that affects it and was
//!   committed (acknowledged to a writer) by then; and a uniform sample of the histories'
//!   sessions (`PARKED_MAX`), the DDL canaries and the observer are kept (connected, or
//!   disconnected to resume) until the writers stop, then take changes until each holds its
//!   query's result at the last committed `_seq`, having received the last `_seq` that
//!   affects it ("affects": a write to the subscription's table whose row matched the filter
//!   before or matches it after, `History::last_relevant`; for a window, a write that changed
//!   the window or some group's row, `History::last_window_change`; for a join, a write to
//!   either table that changed the join), and then nothing more;
//!   a time-relative session reaches, at the end of its history, the result at the wall
//!   clock's `_seq` (a message at or above it, or a copy equal to the result there), and after
//!   the writers stopped, once the wall clock is past the last instant at which a final row
//!   enters or leaves, holds that steady result and then receives nothing more;
//! - changes to filtered subscriptions and changes replayed by resumes are counted apart, and
//!   each count must be non-zero, as must the DDL endings, keyed catch-ups,
//!   `resume_too_old` answers, top-K changes (also replayed ones, and ones moving rows in or
//!   out) and top-K resumes, grouping changes (also replayed ones, ones carrying several
//!   groups, inserts and deletes of groups), group checks and grouping resumes, time-relative
//!   changes (also replayed ones, and ones at ticks, with rows entering and with rows leaving
//!   by time), time-relative checks and resumes, join changes (also replayed ones, and ones
//!   caused by a write to `app.items`), join checks and resumes;
//! - each writer owns its keys, knows what every statement must do, and records the versions
//!   it wrote with their acknowledged `_seq`s and its deletes; the observer's history (the
//!   reference of every check) must be exactly those records (`writer::cross_check`).
//!
//! `STRAND_GUARANTEE_HISTORIES` sets the number of histories (default 200);
//! `STRAND_GUARANTEE_SEED` replays a seed's random choices (thread timing still varies). Long run:
//! `STRAND_GUARANTEE_HISTORIES=10000 cargo test -p strand-tests --release --test subscription_guarantees -- --nocapture`

#[path = "subscription_guarantees/model.rs"]
mod model;
#[path = "subscription_guarantees/parked.rs"]
mod parked;
#[path = "subscription_guarantees/report.rs"]
mod report;
#[path = "subscription_guarantees/session.rs"]
mod session;
#[path = "subscription_guarantees/stream.rs"]
mod stream;
#[path = "subscription_guarantees/table.rs"]
mod table;
#[path = "subscription_guarantees/writer.rs"]
mod writer;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{
    Condvar, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard,
};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use model::{diff, key_of, Query, Rng, TableName};
use parked::{finish_all, Parked};
use report::report;
pub use report::Stats;
use serde_json::Value;
use session::{Pumped, Session};
use strand_tests::{bearer, get, rows, sql_ok, ServerOptions, StrandServer, ADMIN_PASSWORD};
use strand_wire::codes;
use stream::{StreamWrite, StreamWriter};
use table::Table;
use writer::{Keys, Writer, WriterLog};

pub const CLIENT_THREADS: usize = 8;
const WRITERS: i64 = 3;
const DEFAULT_HISTORIES: u64 = 200;
/// The barrier row's key (written before DROP TABLE and after the writers stopped): once the
/// observer has it, it has everything before.
const SENTINEL: i64 = 1_000_000;
/// Compaction runs during the histories (docs/configuration.md): small segments are sealed
/// and compacted within a fraction of a second, and tombstones are kept only a moment, so
/// resumes from a little way back get a keyed catch-up and older ones `resume_too_old`.
const COMPACTION: [&str; 8] = [
    "--segment-bytes",
    "16384",
    "--compaction-interval-ms",
    "100",
    "--compaction-min-bytes",
    "1",
    "--tombstone-retention-ms",
    "1000",
];

/// What every thread of the test shares.
pub struct Shared {
    pub server: StrandServer,
    pub admin: String,
    pub seed: u64,
    /// Each table's generations with its observer's histories (`app.items`, `app.events`);
    /// `progressed` is notified on every event.
    tables: [Mutex<Table>; 2],
    pub progressed: Condvar,
    /// Held for reading by a subscribe until its ack, for writing by DDL.
    pub ddl: RwLock<()>,
    /// Held for reading by each write, for writing by DROP TABLE.
    pub writes: RwLock<()>,
    /// Writes the barrier row.
    pub barrier: Mutex<Writer>,
    pub logs: Mutex<Vec<WriterLog>>,
    stream_writes: Mutex<Vec<StreamWrite>>,
    pub observer_dead: AtomicBool,
    pub abort: AtomicBool,
    stop_writers: AtomicBool,
    stop_stream_writer: AtomicBool,
    stop_observers: AtomicBool,
    pub stats: Stats,
}

impl Shared {
    pub fn table(&self, name: TableName) -> &Mutex<Table> {
        match name {
            TableName::Items => &self.tables[0],
            TableName::Events => &self.tables[1],
        }
    }
}

pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

pub fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

/// Wait on `condvar` for at most 50 ms (the caller re-checks its condition and deadline).
pub fn wait<'a, T>(condvar: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    let waited = condvar.wait_timeout(guard, Duration::from_millis(50));
    waited.unwrap_or_else(PoisonError::into_inner).0
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
    let dir = tempfile::tempdir().expect("tempdir");
    let shared = &start(dir.path(), seed);
    let parked = &Parked::default();
    let (items_last, events_last) = run_histories(shared, parked, histories);
    let cross_checked = cross_check(shared);
    compare_with_select(shared);
    let finishing = Instant::now();
    finish_all(parked, items_last, events_last);
    check_unread_drops(shared);
    println!(
        "subscription_guarantees: histories took {:.1?}, the sessions' finish {:.1?}",
        finishing - started,
        finishing.elapsed()
    );
    report(shared, histories, cross_checked, started);
}

/// A session left unread may lose its connection without the server's `slow_consumer` goodbye
/// (it cannot get through the full socket); the test resumes it as a client would. That must
/// be the only cause: the server counted at least as many slow-consumer disconnects.
fn check_unread_drops(shared: &Shared) {
    let drops = shared.stats.unread_drops.load(Relaxed);
    if drops == 0 {
        return;
    }
    let metrics = get(&shared.server.url("/metrics")).text;
    let series = "strand_slow_consumer_disconnects_total";
    let counted: u64 = metrics
        .lines()
        .find(|line| line.starts_with(series))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in the server's metrics"));
    assert!(
        counted >= drops,
        "{drops} unread sessions lost their connection, but the server counted only {counted} \
         slow-consumer disconnects: something else dropped them"
    );
}

/// A server with compaction and a fast expiry sweep, and the tables.
fn start(dir: &std::path::Path, seed: u64) -> Shared {
    let sweep = stream::SWEEP_MS.to_string();
    let mut args = COMPACTION.to_vec();
    args.extend(["--ttl-sweep-interval-ms", &sweep]);
    let options = ServerOptions {
        admin_password: Some(ADMIN_PASSWORD.to_owned()),
        args: args.into_iter().map(String::from).collect(),
    };
    let server = StrandServer::start(dir, &options);
    let admin = bearer(&server, "admin", ADMIN_PASSWORD);
    let setup = format!(
        "CREATE NAMESPACE app; {}; {}",
        table::CREATE_TABLE,
        table::CREATE_EVENTS
    );
    sql_ok(&server, &admin, &setup, &[]);
    let barrier = Writer::new("barrier".into(), Keys::One(SENTINEL), Rng::new(seed));
    Shared {
        server,
        admin,
        seed,
        tables: [Mutex::new(Table::new()), Mutex::new(Table::new())],
        progressed: Condvar::new(),
        ddl: RwLock::new(()),
        writes: RwLock::new(()),
        barrier: Mutex::new(barrier),
        logs: Mutex::new(Vec::new()),
        stream_writes: Mutex::new(Vec::new()),
        observer_dead: AtomicBool::new(false),
        abort: AtomicBool::new(false),
        stop_writers: AtomicBool::new(false),
        stop_stream_writer: AtomicBool::new(false),
        stop_observers: AtomicBool::new(false),
        stats: Stats::default(),
    }
}

/// The histories, with the writers, the observers and the DDL events; then the last
/// committed `_seq` of each table once the writers stopped (of `app.events`: once every row
/// in it has expired).
fn run_histories<'a>(shared: &'a Shared, parked: &Parked<'a>, histories: u64) -> (u64, u64) {
    // The observers' (empty) snapshots are taken before the first write.
    let observers = [TableName::Items, TableName::Events].map(|table| {
        let name = format!("observer of {}", table.sql());
        let mut observer = Session::new(shared, name, Query::observer(table), 1000, shared.seed);
        observer.connect_fresh();
        if !observer.view.rows.is_empty() {
            observer.fail("the observer's snapshot of the new table is not empty");
        }
        observer
    });
    let schedule = table::schedule(histories);
    let (next_history, completed) = (&AtomicU64::new(0), &AtomicU64::new(0));
    let mut lasts = (0, 0);
    let failure = std::thread::scope(|scope| {
        // A panic here (a failed final wait) stops the observers rather than hanging on them.
        let _guard = Guard {
            shared,
            observer: false,
        };
        let observers = observers.map(|observer| scope.spawn(move || observe(observer)));
        let mut writers: Vec<_> = (0..WRITERS)
            .map(|writer| scope.spawn(move || write_randomly(shared, writer)))
            .collect();
        writers.push(scope.spawn(move || write_stream(shared)));
        let clients: Vec<_> = (0..CLIENT_THREADS)
            .map(|_| {
                let schedule = &schedule;
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
                        run_history(shared, parked, index);
                        let done = completed.fetch_add(1, Relaxed) + 1;
                        for (_, event) in schedule.iter().filter(|(at, _)| *at == done) {
                            table::run(shared, parked, *event, done);
                        }
                        // The last fifth of the histories see the STREAM rows expire.
                        if done * 5 >= histories * 4 {
                            shared.stop_stream_writer.store(true, Relaxed);
                        }
                    }
                })
            })
            .collect();
        let mut failure = None;
        for client in clients {
            failure = failure.or(client.join().err());
        }
        shared.stop_writers.store(true, Relaxed);
        shared.stop_stream_writer.store(true, Relaxed);
        for writer in writers {
            failure = failure.or(writer.join().err());
        }
        if failure.is_none() {
            lasts = (table::barrier(shared), table::all_expired(shared));
            // The observer has every record there will be of `app.items`.
            lock(shared.table(TableName::Items)).settled = true;
        }
        shared.stop_observers.store(true, Relaxed);
        for observer in observers {
            failure = failure.or(observer.join().err());
        }
        failure
    });
    if let Some(panic) = failure {
        std::panic::resume_unwind(panic);
    }
    lasts
}

/// The writers' records against the observers' histories: the requests matched, and the
/// STREAM rows that expired.
fn cross_check(shared: &Shared) -> (u64, u64) {
    let mut logs = std::mem::take(&mut *lock(&shared.logs));
    let barrier = Writer::new("unused".into(), Keys::One(SENTINEL), Rng::new(0));
    logs.push(std::mem::replace(&mut *lock(&shared.barrier), barrier).log);
    let fail = |table: &str, e: String| -> ! {
        panic!(
            "seed {}: the observer's history of {table} is not what the writers wrote:\n{e}",
            shared.seed
        )
    };
    let table = lock(shared.table(TableName::Items));
    let histories: Vec<_> = table.generations.iter().map(|g| &g.history).collect();
    let logs: Vec<&WriterLog> = logs.iter().collect();
    let matched = writer::cross_check(&histories, &logs).unwrap_or_else(|e| fail("app.items", e));
    let events = lock(shared.table(TableName::Events));
    let writes = lock(&shared.stream_writes);
    let expired = stream::cross_check(&events.generation(0).history, &writes)
        .unwrap_or_else(|e| fail("app.events", e));
    (matched + writes.len() as u64, expired)
}

/// Each observer's table (its history replayed to the end) is the table HTTP reads (for
/// `app.events`: empty, every row expired).
fn compare_with_select(shared: &Shared) {
    for name in [TableName::Items, TableName::Events] {
        let text = format!("SELECT id, grp, qty, at, _seq FROM {}", name.sql());
        let mut selected = BTreeMap::new();
        for row in rows(&shared.server, &shared.admin, &text, &[]) {
            let Value::Object(row) = row else {
                panic!("a row is not an object: {row}")
            };
            selected.insert(key_of(&row).expect("id"), row);
        }
        let table = lock(shared.table(name));
        let observed = table.generation(table.current()).history.state_at(u64::MAX);
        if let Some(difference) = diff(&observed, &selected) {
            panic!(
                "seed {}: the observer's table differs from {text}:\n{difference}",
                shared.seed
            );
        }
    }
}

/// One simulated client: a random query and batch size; a fresh snapshot (paged, with pauses
/// while the writers run), then live changes, with disconnects followed by a resume (or now
/// and then a fresh snapshot); the result is checked after every step, and at the end every
/// change committed so far that affects it must arrive. Then it is parked for the end.
fn run_history<'a>(shared: &'a Shared, parked: &Parked<'a>, index: u64) {
    let mut rng = Rng::new(shared.seed ^ index.wrapping_mul(0x2545_F491_4F6C_DD1D));
    let query = Query::random(&mut rng);
    // Mostly small batches, so that snapshots page.
    let largest = if rng.percent(70) { 8 } else { 50 };
    let batch_size = 1 + rng.below(largest) as u32;
    let name = format!("history {index}");
    let mut session = Session::new(shared, name, query, batch_size, rng.next_u64());
    session.connect_fresh();
    session.check();
    for _ in 0..1 + rng.below(6) {
        let live = Duration::from_millis(5 + rng.below(80));
        session.pump_reconnecting(live, u64::MAX);
        session.check();
        if rng.percent(50) {
            session.disconnect();
            if rng.percent(50) {
                // Away for a while: the resume has changes to replay.
                std::thread::sleep(Duration::from_millis(rng.below(40)));
            }
            if rng.percent(85) {
                session.connect_resume();
            } else {
                session.connect_fresh();
            }
            session.check();
        }
    }
    session.settle();
    shared.stats.histories.fetch_add(1, Relaxed);
    parked.park(session, rng.percent(50), &mut rng);
}

/// An observer: every change of `SELECT id, grp, qty, at FROM <table>` goes into the history of
/// its table generation; after DROP TABLE it subscribes to the new table (empty: the writers
/// wait for it).
fn observe(mut session: Session<'_>) {
    let shared = session.shared;
    let _guard = Guard {
        shared,
        observer: true,
    };
    let table = shared.table(session.table_name());
    let mut record = |generation: usize, applied: model::Applied| {
        let mut table = lock(table);
        let history = &mut table.generations[generation].history;
        history.record(applied.seq, applied.key, applied.row);
        shared.progressed.notify_all();
    };
    while !shared.stop_observers.load(Relaxed) && !shared.abort.load(Relaxed) {
        match session.pump(Duration::from_millis(100), u64::MAX, &mut record) {
            Pumped::Done => continue,
            Pumped::SlowConsumer => session.connect_resume(),
            Pumped::Ended(code) if code == codes::TABLE_DROPPED => session.connect_fresh(),
            Pumped::Ended(code) => session.fail(&format!("the observer was ended: {code}")),
        }
        let mut table = lock(table);
        if session.generation > table.observer_generation {
            if !session.view.rows.is_empty() {
                drop(table);
                session.fail("the observer's snapshot of the new table is not empty");
            }
            table.observer_generation = session.generation;
            shared.progressed.notify_all();
        }
    }
}

fn write_randomly(shared: &Shared, index: i64) {
    let _guard = Guard {
        shared,
        observer: false,
    };
    let keys = Keys::Residue {
        modulus: WRITERS,
        residue: index,
    };
    let rng = Rng::new(shared.seed.wrapping_add(1 + index as u64));
    let mut writer = Writer::new(format!("writer {index}"), keys, rng);
    let mut pause = Rng::new(shared.seed.wrapping_sub(1 + index as u64));
    while !shared.stop_writers.load(Relaxed) && !shared.abort.load(Relaxed) {
        {
            let _writes = read(&shared.writes);
            writer.step(shared);
        }
        if pause.percent(50) {
            std::thread::sleep(Duration::from_millis(pause.below(3)));
        }
    }
    lock(&shared.logs).push(writer.log);
}

/// The STREAM table's writer: a few dozen single-key writes a second, so that many rows live
/// out their TTL.
fn write_stream(shared: &Shared) {
    let _guard = Guard {
        shared,
        observer: false,
    };
    let mut writer = StreamWriter::new(Rng::new(shared.seed.wrapping_mul(7)));
    let mut pause = Rng::new(shared.seed.wrapping_mul(11));
    while !shared.stop_stream_writer.load(Relaxed) && !shared.abort.load(Relaxed) {
        writer.step(shared);
        std::thread::sleep(Duration::from_millis(10 + pause.below(30)));
    }
    *lock(&shared.stream_writes) = writer.writes;
    lock(shared.table(TableName::Events)).writer_done = true;
    shared.progressed.notify_all();
}
