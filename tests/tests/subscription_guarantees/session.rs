//! One simulated subscriber of `subscription_guarantees`: it connects, subscribes (fresh
//! snapshot or resume), applies changes to its [`View`] and checks the view against the
//! observer's history. Anything the server does that docs/websocket.md rules out fails the
//! test with the seed, the query, the last `_seq` and the recent messages.
//!
//! Safety (every check): the view equals the query at the last `_seq` received. Liveness
//! ([`Session::settle`] at the end of each history, [`Session::finish`] after the writers
//! stopped): the view reaches the last `_seq` that affects it within a deadline, so a server
//! that stops sending (after a resume, to filtered subscriptions, the last changes of a burst)
//! fails instead of passing as a quiet subscriber.
//!
//! Compaction runs during the histories, so a resume may be answered with a keyed catch-up
//! (applied as docs/websocket.md says; the copy is checked at its `snapshot_end_seq`) or with
//! `resume_too_old` (then a new snapshot), and DDL may end a subscription (`table_dropped`,
//! `schema_changed`: then a new snapshot). A top-K subscription applies its changes as
//! `session_window.rs` says, a grouping subscription as `session_groups.rs` says, and they are
//! checked as `session_check.rs` says; a time-relative subscription as `session_clock.rs` says;
//! a join subscription as `session_join.rs` says.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use strand_tests::ws::{WsClient, WsEnd, WS_RECV_TIMEOUT};
use strand_wire::{
    codes, BatchStatus, ClientMessage, ResumeMode, SeqText, ServerMessage, SubscribeOptions,
    Subscription,
};

use crate::model::{Applied, Keyed, Query, Rng, TableName, View};
use crate::table::{hold_ddl, Table};
use crate::{lock, Shared};

#[path = "session_check.rs"]
mod check;
#[path = "session_clock.rs"]
mod clock;
#[path = "session_groups.rs"]
mod groups;
#[path = "session_join.rs"]
mod join;
#[path = "session_liveness.rs"]
mod liveness;
#[path = "session_window.rs"]
mod window;

/// How long a check waits for the observer to catch up with the subscriber, and a liveness
/// check for the changes it is owed (far above what they take, even on a slow machine).
const OBSERVER_WAIT: Duration = Duration::from_secs(30);
const LIVENESS_WAIT: Duration = Duration::from_secs(30);
/// Messages kept for a failure report.
const LOG_LEN: usize = 60;

enum Got {
    Message(ServerMessage),
    Quiet,
    SlowConsumer,
    /// The server ended the subscription with an error the model allows (`table_dropped`,
    /// `schema_changed`, `resume_too_old`): its code.
    Ended(String),
}

/// What [`Session::open`] got.
enum Opened {
    /// The connection and the ack's `snapshot_end_seq`.
    Acked(WsClient, u64),
    /// A resume answered with a keyed catch-up up to this `snapshot_end_seq`.
    Keyed(WsClient, u64),
    /// A resume refused with `resume_too_old`.
    TooOld,
    /// Dropped as slow consumer before the ack.
    Lost,
    /// A resume that DDL made impossible: refused (or, from 0 of a dropped generation, not
    /// sent); the client takes a new snapshot.
    Gone,
}

/// How a [`Session::pump`] stopped.
pub enum Pumped {
    /// The time ran out, nothing came for it, or the view reached the `_seq` asked for.
    Done,
    SlowConsumer,
    /// Ended by the server (see `Got::Ended`): the error's code.
    Ended(String),
}

pub struct Session<'a> {
    pub shared: &'a Shared,
    name: String,
    /// The subscription's id: the session's name (unique, so the server's log names it).
    id: String,
    query: Query,
    sql: String,
    batch_size: u32,
    pub view: View,
    client: Option<WsClient>,
    log: VecDeque<String>,
    rng: Rng,
    /// The table generation and its added-column count when the subscription was made.
    pub generation: usize,
    added: usize,
    /// After a resume: changes up to this `_seq` (committed before the resume) are replay.
    replay_upto: u64,
    observer: bool,
    /// Kept connected without reading (parked, or a DDL canary): the server may drop it as a
    /// slow consumer without being able to say so (its goodbye does not fit the full socket).
    pub left_unread: bool,
}

impl<'a> Session<'a> {
    pub fn new(
        shared: &'a Shared,
        name: String,
        query: Query,
        batch_size: u32,
        seed: u64,
    ) -> Session<'a> {
        Session {
            shared,
            sql: query.sql(),
            query,
            batch_size,
            view: View::default(),
            client: None,
            log: VecDeque::new(),
            rng: Rng::new(seed),
            generation: 0,
            added: 0,
            replay_upto: 0,
            observer: name.starts_with("observer"),
            left_unread: false,
            id: name.replace(' ', "-"),
            name,
        }
    }

    pub fn fail(&self, what: &str) -> ! {
        let log: Vec<&str> = self.log.iter().map(String::as_str).collect();
        panic!(
            "{}: {what}\n  seed {} (STRAND_GUARANTEE_SEED replays it)\n  query: {}\n  \
             batch_size {}\n  table generation {}, added columns {}\n  last _seq received: {}\n  \
             recent events, oldest first:\n    {}",
            self.name,
            self.shared.seed,
            self.sql,
            self.batch_size,
            self.generation,
            self.added,
            self.view.last,
            log.join("\n    ")
        )
    }

    /// A time-relative subscription (`session_clock.rs`).
    pub fn is_clock(&self) -> bool {
        self.query.clock()
    }

    pub fn table_name(&self) -> TableName {
        self.query.table()
    }

    /// Of the tables' last committed `_seq`s, the one of its query's table.
    fn last_of(&self, items_last: u64, events_last: u64) -> u64 {
        match self.query.table() {
            _ if self.is_join() => items_last.max(events_last),
            TableName::Items => items_last,
            TableName::Events => events_last,
        }
    }

    /// The table (generations and histories) its query reads.
    fn table(&self) -> &'a Mutex<Table> {
        self.shared.table(self.query.table())
    }

    fn note(&mut self, text: String) {
        if self.log.len() == LOG_LEN {
            self.log.pop_front();
        }
        self.log.push_back(text);
    }

    /// Whether the server may end this subscription with `code` now: `table_dropped` once
    /// its table generation was dropped, `schema_changed` for `SELECT *` once a column was
    /// added after it subscribed, `resume_too_old` with a `lowest_seq` (compaction runs
    /// during the histories: it refuses a resume from below what the log still holds, and
    /// ends a catch-up whose history it removed). Nothing else ends a subscription.
    fn may_end(&self, code: &str, lowest_seq: Option<&SeqText>) -> bool {
        let table = lock(self.table());
        let generation = table.generation(self.generation);
        match code {
            codes::TABLE_DROPPED => generation.dropped,
            codes::SCHEMA_CHANGED => self.query.is_star() && generation.added > self.added,
            codes::RESUME_TOO_OLD => lowest_seq.is_some(),
            _ => false,
        }
    }

    /// The next message within `timeout`; an error the model does not allow, or an unexpected
    /// end, fails.
    fn next(&mut self, client: &mut WsClient, timeout: Duration) -> Got {
        match client.next_within(timeout) {
            Ok(message) => {
                let mut text = message.encode();
                text.truncate(600);
                self.note(format!("got {text}"));
                match &message {
                    ServerMessage::Error { code, .. } if code == codes::SLOW_CONSUMER => {
                        Got::SlowConsumer
                    }
                    ServerMessage::Error {
                        code,
                        subscription_id,
                        lowest_seq,
                        ..
                    } if subscription_id.as_deref() == Some(self.id.as_str())
                        && self.may_end(code, lowest_seq.as_ref()) =>
                    {
                        let stats = &self.shared.stats;
                        match code.as_str() {
                            codes::TABLE_DROPPED if self.is_join() => &stats.join_dropped,
                            codes::TABLE_DROPPED => &stats.table_dropped,
                            codes::SCHEMA_CHANGED => &stats.schema_changed,
                            _ => &stats.resume_too_old,
                        }
                        .fetch_add(1, Relaxed);
                        Got::Ended(code.clone())
                    }
                    ServerMessage::Error { .. } => self.fail("the server sent an error"),
                    _ => Got::Message(message),
                }
            }
            Err(WsEnd::TimedOut) => Got::Quiet,
            Err(WsEnd::Closed(Some((_, reason)))) if reason == codes::SLOW_CONSUMER => {
                self.note("closed: slow_consumer".into());
                Got::SlowConsumer
            }
            Err(end) if self.left_unread => {
                // Only once: after the resume it reads, and a drop is a failure again.
                self.left_unread = false;
                self.note(format!("dropped while left unread: {end:?}"));
                self.shared.stats.unread_drops.fetch_add(1, Relaxed);
                Got::SlowConsumer
            }
            Err(end) => self.fail(&format!("the connection ended: {end:?}")),
        }
    }

    /// The next message of a protocol step (ack, batch): `None` if dropped as slow consumer or
    /// ended by DDL.
    fn expect(&mut self, client: &mut WsClient, what: &str) -> Option<ServerMessage> {
        match self.next(client, WS_RECV_TIMEOUT) {
            Got::Message(message) => Some(message),
            Got::Quiet => self.fail(&format!("no {what} within {WS_RECV_TIMEOUT:?}")),
            Got::SlowConsumer | Got::Ended(_) => None,
        }
    }

    /// A new authenticated connection with the subscription sent and acknowledged (with the
    /// query's schema). DDL waits meanwhile, so the subscription's generation and column
    /// count are the ones read here. A resume (`from`) that DDL made impossible must be
    /// refused: from a `_seq` of a generation that was dropped, `table_dropped`; for `SELECT *`
    /// from before columns were added, `schema_changed`; the client then takes a new snapshot
    /// (`Gone`). A resume from 0 (an empty snapshot) of a dropped generation is not sent.
    fn open(&mut self, from: Option<u64>) -> Opened {
        self.note(format!("connect and subscribe, from_seq_id {from:?}"));
        let _ddl = hold_ddl(self.shared);
        let refusal = {
            let table = lock(self.table());
            let gone = table.current() != self.generation;
            let grew = self.query.is_star() && table.generation(table.current()).added > self.added;
            match from {
                Some(0) if gone => return Opened::Gone,
                Some(_) if gone => Some(codes::TABLE_DROPPED),
                Some(f) if f > 0 && grew => Some(codes::SCHEMA_CHANGED),
                _ => None,
            }
        };
        if refusal.is_none() {
            let table = lock(self.table());
            self.generation = table.current();
            let generation = table.generation(self.generation);
            self.added = generation.added;
            let acked = generation.acked;
            drop(table);
            // Committed before the resume is sent: what arrives up to it is replay.
            self.replay_upto = from.map_or(0, |_| self.committed(acked));
        }
        let mut client = WsClient::try_connect(&self.shared.server, Some(&self.shared.admin))
            .unwrap_or_else(|e| self.fail(&format!("WebSocket upgrade failed: {e}")));
        match self.expect(&mut client, "auth_success") {
            Some(ServerMessage::AuthSuccess { .. }) => {}
            _ => self.fail("expected auth_success"),
        }
        client.send(&ClientMessage::Subscribe {
            subscription: Subscription {
                id: self.id.clone(),
                sql: self.sql.clone(),
                options: SubscribeOptions {
                    batch_size: Some(self.batch_size),
                    from_seq_id: from.map(SeqText),
                    bigint: None,
                    params: Vec::new(),
                    as_of_seq: None,
                },
            },
        });
        let message = match self.next(&mut client, WS_RECV_TIMEOUT) {
            Got::Ended(code) if Some(code.as_str()) == refusal => {
                self.shared.stats.refused_across_ddl.fetch_add(1, Relaxed);
                return Opened::Gone;
            }
            Got::Message(_) if refusal.is_some() => self.fail(&format!(
                "a resume across DDL must be refused with {refusal:?}"
            )),
            Got::Message(message) => message,
            Got::SlowConsumer => return Opened::Lost,
            Got::Ended(code) if code == codes::RESUME_TOO_OLD && from.is_some() => {
                return Opened::TooOld
            }
            Got::Ended(_) | Got::Quiet => self.fail("expected subscription_ack"),
        };
        let ServerMessage::SubscriptionAck {
            subscription_id,
            schema,
            snapshot_end_seq,
            resume,
        } = message
        else {
            self.fail("expected subscription_ack")
        };
        let names: Vec<&str> = schema.iter().map(|c| c.name.as_str()).collect();
        let want = self.query.schema(self.added);
        if subscription_id != self.id || names != want {
            self.fail(&format!("ack schema should be {want:?}"));
        }
        match (resume, from) {
            (None, _) => Opened::Acked(client, snapshot_end_seq.0),
            (Some(ResumeMode::Keyed), Some(_)) => Opened::Keyed(client, snapshot_end_seq.0),
            (Some(mode), None) => self.fail(&format!("a snapshot's ack with resume {mode:?}")),
        }
    }

    /// Subscribe without `from_seq_id` and load the snapshot, pausing now and then between
    /// batches while the writers run. False if dropped as slow consumer or ended by DDL.
    fn snapshot(&mut self) -> bool {
        // A window's copies since the last check are checked before they are dropped.
        self.check_window();
        self.client = None;
        self.view = View::default();
        let Opened::Acked(mut client, boundary) = self.open(None) else {
            return false;
        };
        self.view.keyed = None;
        for batch_num in 0.. {
            let Some(message) = self.expect(&mut client, "initial_data_batch") else {
                return false;
            };
            let ServerMessage::InitialDataBatch {
                subscription_id,
                rows,
                batch_control: control,
            } = message
            else {
                self.fail(&format!("expected initial_data_batch {batch_num}"))
            };
            let ready = control.status == BatchStatus::Ready;
            if subscription_id != self.id
                || control.batch_num != batch_num
                || control.snapshot_end_seq.0 != boundary
                || control.has_more == ready
                || rows.len() > self.batch_size as usize
            {
                self.fail(&format!(
                    "bad initial_data_batch {batch_num} (boundary {boundary})"
                ));
            }
            self.load(&rows, boundary);
            self.shared.stats.batches.fetch_add(1, Relaxed);
            if ready {
                break;
            }
            if self.rng.percent(30) {
                std::thread::sleep(Duration::from_millis(self.rng.below(30)));
            }
            if self.rng.percent(4) {
                self.note("abandon the snapshot: disconnect, subscribe again".into());
                drop(client);
                return self.snapshot();
            }
            client.send(&ClientMessage::NextBatch {
                subscription_id: Some(self.id.clone()),
            });
        }
        self.view.last = boundary;
        if self.query.stamped() {
            self.view.loaded_window();
        }
        self.client = Some(client);
        true
    }

    /// Subscribe with `from_seq_id` = the last `_seq` received (during a keyed catch-up: the
    /// `from_seq_id` it started from). False if dropped. When the resume cannot continue the
    /// view, a new snapshot: its table generation was dropped (a client that was away then
    /// must take one), `resume_too_old` (compaction removed what it needs), or (`SELECT *`)
    /// the ack shows columns added since (the held rows lack them).
    fn resume(&mut self) -> bool {
        // A window's copies are checked with the table generation and columns they are of.
        self.check_window();
        self.client = None;
        let keyed_from = self.view.keyed.map(|keyed| keyed.from);
        let from = keyed_from.unwrap_or(self.view.last);
        let added_before = self.added;
        let (client, end, keyed) = match self.open(Some(from)) {
            Opened::Acked(client, end) => (client, end, false),
            Opened::Keyed(client, end) => (client, end, true),
            Opened::Lost => return false,
            Opened::TooOld => {
                self.not_for_observer("resume_too_old");
                self.per_write_too_old();
                self.note("resume_too_old: a new snapshot".into());
                return self.snapshot();
            }
            Opened::Gone => {
                self.note("the table was dropped while away: a new snapshot".into());
                return self.snapshot();
            }
        };
        self.per_write_resume(keyed);
        if keyed {
            self.not_for_observer("a keyed catch-up");
            if end < from {
                self.fail(&format!(
                    "a keyed catch-up to {end}, below from_seq_id {from}"
                ));
            }
            self.shared.stats.keyed_resumes.fetch_add(1, Relaxed);
            self.view.last = from;
            self.view.keyed = (end > from).then_some(Keyed { from, until: end });
        } else if end != from {
            self.fail(&format!(
                "resume ack's snapshot_end_seq {end} is not from_seq_id"
            ));
        } else if keyed_from.is_some() {
            // The exact history from where the keyed catch-up started was gone; floors only
            // rise, so it cannot be back.
            self.fail("an exact resume from below an earlier keyed catch-up's from_seq_id");
        }
        if self.added != added_before && self.query.is_star() {
            self.note("the ack shows added columns: a new snapshot".into());
            drop(client);
            return self.snapshot();
        }
        self.client = Some(client);
        true
    }

    /// The observer's history needs every version: a resume that is not exact fails.
    fn not_for_observer(&self, what: &str) {
        if self.observer {
            self.fail(&format!("the observer's resume got {what}"));
        }
    }

    pub fn connect_fresh(&mut self) {
        while !self.snapshot() {
            self.shared.stats.reconnects.fetch_add(1, Relaxed);
        }
        self.shared.stats.snapshots.fetch_add(1, Relaxed);
    }

    pub fn connect_resume(&mut self) {
        while !self.resume() {
            self.shared.stats.reconnects.fetch_add(1, Relaxed);
        }
        self.shared.stats.resumes.fetch_add(1, Relaxed);
    }

    /// Drop the connection: abruptly, politely, or after unsubscribing.
    pub fn disconnect(&mut self) {
        let Some(mut client) = self.client.take() else {
            return;
        };
        match self.rng.below(3) {
            0 => {
                self.note("disconnect: drop".into());
                drop(client);
            }
            1 => {
                self.note("disconnect: close".into());
                client.close();
            }
            _ => {
                self.note("disconnect: unsubscribe, close".into());
                client.send(&ClientMessage::Unsubscribe {
                    subscription_id: self.id.clone(),
                });
                client.close();
            }
        }
    }

    /// Count a change the view took: in total, for filtered queries, and as a resume's replay
    /// (committed before the resume) or after it.
    fn count(&self, seq: u64, keyed: bool) {
        let stats = &self.shared.stats;
        stats.changes.fetch_add(1, Relaxed);
        if self.observer {
            return;
        }
        if self.query.is_filtered() {
            stats.filtered_changes.fetch_add(1, Relaxed);
        }
        if keyed {
            stats.keyed_changes.fetch_add(1, Relaxed);
        } else if seq <= self.replay_upto {
            stats.replayed_changes.fetch_add(1, Relaxed);
        }
        if self.query.table() == TableName::Events {
            stats.stream_changes.fetch_add(1, Relaxed);
        }
    }

    /// Apply changes for `duration`, until nothing comes, or until the view reaches `upto`.
    pub fn pump(
        &mut self,
        duration: Duration,
        upto: u64,
        on_change: &mut dyn FnMut(usize, Applied),
    ) -> Pumped {
        let Some(mut client) = self.client.take() else {
            self.fail("pump without a connection")
        };
        let deadline = Instant::now() + duration;
        while self.view.last < upto {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.next(&mut client, left) {
                Got::Quiet => break,
                Got::SlowConsumer => return Pumped::SlowConsumer,
                Got::Ended(code) => return Pumped::Ended(code),
                Got::Message(ServerMessage::Change {
                    subscription_id,
                    change_type,
                    rows,
                    old_rows,
                    seq,
                }) if subscription_id == self.id => {
                    let seq = seq.map(|seq| seq.0);
                    if self.query.stamped() {
                        self.apply_per_write(change_type, seq, &rows, old_rows.as_deref());
                        continue;
                    }
                    if seq.is_some() {
                        self.fail("a change with a top-level \"seq\" to a plain query");
                    }
                    let keyed = self.view.keyed.is_some();
                    let applied = self
                        .view
                        .apply(change_type, &rows, old_rows.as_deref())
                        .unwrap_or_else(|e| self.fail(&e));
                    self.count(applied.seq, keyed);
                    if applied.row.is_none() && self.query.table() == TableName::Events {
                        self.shared.stats.stream_deletes.fetch_add(1, Relaxed);
                    }
                    if keyed && self.view.keyed.is_none() {
                        // The keyed catch-up is complete: the copy is the result at its end.
                        self.check();
                    }
                    on_change(self.generation, applied);
                }
                Got::Message(_) => self.fail("expected a change"),
            }
        }
        self.client = Some(client);
        Pumped::Done
    }
}
