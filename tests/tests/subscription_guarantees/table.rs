//! The table of `subscription_guarantees` through its DDL events: each generation (the table
//! as created, until DROP TABLE) has its own history, and counts the columns `ADD COLUMN`
//! added to it. What subscribers must see (docs/websocket.md, "Errors"):
//! - `DROP TABLE` ends every subscription of the table with `table_dropped`;
//! - `ALTER TABLE ... ADD COLUMN` ends every `SELECT *` subscription with `schema_changed`;
//!   subscriptions that name their columns go on and keep receiving changes.
//!
//! DDL runs from the client thread that finishes a scheduled history, while the other
//! histories go on. Sessions hold `Shared::ddl` for reading from subscribing until the ack,
//! so each subscription belongs to a known generation and column count; the DDL holds it for
//! writing. DROP TABLE also stops the writers (`Shared::writes`), writes a barrier row and
//! waits for the observer to see it (so the dropped generation's history is complete), then
//! creates the table again and waits for the observer to subscribe to the new generation
//! before the writers go on (so the new history starts empty).

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use strand_tests::sql_ok;

use crate::model::{added_column, Cond, History, Query, Rng, TableName};
use crate::parked::Parked;
use crate::session::Session;
use crate::stream;
use crate::{lock, read, wait, write, Shared};

/// `at` is what time-relative subscriptions compare with `now()` (`clock.rs`).
pub const CREATE_TABLE: &str = "CREATE TABLE app.items (id BIGINT PRIMARY KEY, grp TEXT, \
    qty INT, at TIMESTAMP) WITH (TYPE = 'SHARED')";
/// The STREAM table: no DDL happens to it; its rows expire (a delete with its own `_seq`).
pub const CREATE_EVENTS: &str = "CREATE TABLE app.events (id BIGINT PRIMARY KEY, grp TEXT, \
    qty INT, at TIMESTAMP) WITH (TYPE = 'STREAM', TTL_SECONDS = 1)";

/// The table from one CREATE TABLE to its DROP TABLE.
#[derive(Default)]
pub struct Generation {
    /// Every change the observer received, in `_seq` order.
    pub history: History,
    /// Columns added by `ALTER TABLE ... ADD COLUMN` (named `c1`, `c2`, ...).
    pub added: usize,
    /// DROP TABLE was sent (set just before, so that every `table_dropped` finds it set).
    pub dropped: bool,
    /// The highest `_seq` acknowledged to a writer: committed, so owed to subscribers.
    pub acked: u64,
}

#[derive(Default)]
pub struct Table {
    pub generations: Vec<Generation>,
    /// The generation the observer is subscribed to.
    pub observer_generation: usize,
    /// `app.items`: the writers stopped and the observer has the barrier row written after,
    /// so its history holds every record there will be.
    pub settled: bool,
    /// `app.events`: its writer stopped (its rows still expire).
    pub writer_done: bool,
}

impl Table {
    /// A table as created: one generation, empty.
    pub fn new() -> Table {
        Table {
            generations: vec![Generation::default()],
            observer_generation: 0,
            settled: false,
            writer_done: false,
        }
    }

    /// Whether the observer's history of `generation` holds every record there will ever be
    /// (so the state at any later `_seq`, such as a tick, is known without waiting for a
    /// record above it): `app.items` once settled; `app.events` once its writer stopped, the
    /// observer has every row it was acknowledged, and every row has expired (no expiry is
    /// left to come).
    pub fn complete(&self, generation: usize) -> bool {
        if generation != self.current() {
            return false;
        }
        let generation = self.generation(generation);
        self.settled
            || (self.writer_done
                && generation.history.last_seq >= generation.acked
                && generation.history.state_at(u64::MAX).is_empty())
    }

    pub fn current(&self) -> usize {
        self.generations.len() - 1
    }

    pub fn generation(&self, index: usize) -> &Generation {
        &self.generations[index]
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Ddl {
    AddColumn,
    DropTable,
}

/// The DDL events of a run and after which completed history each happens: ADD COLUMN, DROP
/// TABLE (with a column added, so `SELECT *` subscriptions of both schemas meet it), ADD
/// COLUMN again (so the last generation has named subscriptions that outlive one).
pub fn schedule(histories: u64) -> Vec<(u64, Ddl)> {
    let events: &[Ddl] = match histories {
        0..=3 => &[],
        4..=49 => &[Ddl::DropTable, Ddl::AddColumn],
        _ => &[Ddl::AddColumn, Ddl::DropTable, Ddl::AddColumn],
    };
    let n = events.len() as u64;
    (1..=n)
        .zip(events)
        .map(|(i, event)| (histories * i / (n + 1), *event))
        .collect()
}

/// Run one DDL event. Two canary subscriptions are made first, one `SELECT *` and one that
/// names its columns and filters, and parked connected, so every event has both kinds of
/// subscriber whatever the random histories are doing.
pub fn run<'a>(shared: &'a Shared, parked: &Parked<'a>, event: Ddl, index: u64) {
    let mut rng = Rng::new(shared.seed ^ 0xDD1 ^ index);
    let canaries = [
        Query::new(&["*"], None),
        Query::new(&["id", "qty"], Some(Cond::QtyLe(rng.range(30, 70)))),
    ];
    for (n, query) in canaries.into_iter().enumerate() {
        let name = format!("canary {n} before DDL {index} ({event:?})");
        let mut session = Session::new(
            shared,
            name,
            query,
            1 + rng.below(20) as u32,
            rng.next_u64(),
        );
        session.connect_fresh();
        parked.keep_connected(session);
    }
    match event {
        Ddl::AddColumn => add_column(shared),
        Ddl::DropTable => drop_table(shared),
    }
    shared.stats.ddl.fetch_add(1, Relaxed);
}

fn add_column(shared: &Shared) {
    let _ddl = write(&shared.ddl);
    let column = {
        let mut table = lock(shared.table(TableName::Items));
        let current = table.current();
        let generation = &mut table.generations[current];
        generation.added += 1;
        added_column(generation.added)
    };
    let text = format!("ALTER TABLE app.items ADD COLUMN {column} INT");
    sql_ok(&shared.server, &shared.admin, &text, &[]);
}

fn drop_table(shared: &Shared) {
    let _writes = write(&shared.writes);
    barrier(shared);
    let new = {
        let _ddl = write(&shared.ddl);
        let current = lock(shared.table(TableName::Items)).current();
        lock(shared.table(TableName::Items)).generations[current].dropped = true;
        let text = format!("DROP TABLE app.items; {CREATE_TABLE}");
        sql_ok(&shared.server, &shared.admin, &text, &[]);
        let mut table = lock(shared.table(TableName::Items));
        table.generations.push(Generation::default());
        shared.progressed.notify_all();
        table.current()
    };
    // The writers wait until the observer has the new generation from its empty start.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut table = lock(shared.table(TableName::Items));
    while table.observer_generation < new {
        assert!(
            Instant::now() < deadline && !shared.observer_dead.load(Relaxed),
            "seed {}: the observer did not subscribe to the new table",
            shared.seed
        );
        table = wait(&shared.progressed, table);
    }
}

/// Write the barrier row and wait until the observer has it: then the observer's history
/// holds every write acknowledged before. Returns the barrier's `_seq`.
pub fn barrier(shared: &Shared) -> u64 {
    let seq = lock(&shared.barrier).touch(shared);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut table = lock(shared.table(TableName::Items));
    loop {
        let current = table.current();
        if table.generation(current).history.last_seq >= seq {
            return seq;
        }
        assert!(
            Instant::now() < deadline && !shared.observer_dead.load(Relaxed),
            "seed {}: the observer never saw the barrier write (_seq {seq})",
            shared.seed
        );
        table = wait(&shared.progressed, table);
    }
}

/// For the caller's subscribe: hold DDL off until the ack.
pub fn hold_ddl(shared: &Shared) -> std::sync::RwLockReadGuard<'_, ()> {
    read(&shared.ddl)
}

/// After the STREAM writer stopped: wait until every row of `app.events` has expired (the
/// observer has a delete for each), within the TTL, the sweep period and a margin; the last
/// `_seq` of its history.
pub fn all_expired(shared: &Shared) -> u64 {
    let allowed = stream::TTL + Duration::from_millis(stream::SWEEP_MS) + stream::EXPIRY_SLACK;
    let deadline = Instant::now() + allowed;
    let mut table = lock(shared.table(TableName::Events));
    loop {
        let history = &table.generation(0).history;
        let left = history.state_at(u64::MAX);
        if left.is_empty() {
            return history.last_seq;
        }
        assert!(
            Instant::now() < deadline && !shared.observer_dead.load(Relaxed),
            "seed {}: STREAM rows did not expire within {allowed:?} after the last write: {:?}",
            shared.seed,
            left.keys().collect::<Vec<_>>()
        );
        table = wait(&shared.progressed, table);
    }
}
