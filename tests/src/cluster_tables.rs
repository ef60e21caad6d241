//! Table writes and subscriptions against a cluster whose members die, restart and move:
//! clients that run each statement on whichever member acknowledges it, and a WebSocket
//! subscriber that resumes on another member, by `_seq`, whenever its member stops answering.
//!
//! The table is `app.items (id BIGINT PRIMARY KEY, v BIGINT)`, a SHARED table. Writers keep
//! a model of what their acknowledged statements leave; the subscriber keeps a copy that
//! each change is checked against (`ws::apply_change`: no duplicate insert, updates name the
//! version held, deletes name a row held), so a duplicate or a gap shows up as a failed check
//! or as a copy that differs from the members' rows.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use strand_wire::{Row, ServerMessage};

use crate::try_sql;
use crate::ws::{apply_change, expect_ack, expect_batch, row_seq, subscribe_message};
use crate::ws::{Change, WsClient};

/// The table's DDL.
pub const ITEMS_DDL: &str = "CREATE TABLE app.items (id BIGINT PRIMARY KEY, v BIGINT)";
/// Every row with its `_seq`, in id order, for comparing members.
pub const ITEMS_SELECT: &str = "SELECT id, v, _seq FROM app.items ORDER BY id";
/// What the subscriber subscribes to.
pub const ITEMS_SUBSCRIBE: &str = "SELECT id, v FROM app.items";
const SUBSCRIPTION: &str = "items";

/// The HTTP address of each running member, updated as members restart.
pub type HttpMembers = Arc<Mutex<Vec<SocketAddr>>>;

/// How long a statement may go unacknowledged before the run fails.
const ACKNOWLEDGE_TIMEOUT: Duration = Duration::from_secs(90);

/// Client `client` of `clients` inserts ids `client, client + clients, ...` with v = 0, sets
/// v = 1 on the id before, and deletes the one before that, running each statement until a
/// member acknowledges it. Returns the rows its acknowledged statements leave.
pub fn write_rows_until_stopped(
    client: i64,
    clients: i64,
    members: &HttpMembers,
    stop: &AtomicBool,
    auth: &str,
) -> BTreeMap<i64, i64> {
    let mut model = BTreeMap::new();
    let mut step = 0i64;
    while !stop.load(Ordering::Relaxed) {
        let id = client + step * clients;
        run_until_acknowledged(members, auth, "INSERT INTO app.items VALUES ($1, 0)", id);
        model.insert(id, 0);
        if step % 3 == 2 {
            let earlier = id - clients;
            let update = "UPDATE app.items SET v = 1 WHERE id = $1";
            run_until_acknowledged(members, auth, update, earlier);
            model.insert(earlier, 1);
        }
        if step % 5 == 4 {
            let earlier = id - 2 * clients;
            let delete = "DELETE FROM app.items WHERE id = $1";
            run_until_acknowledged(members, auth, delete, earlier);
            model.remove(&earlier);
        }
        step += 1;
    }
    model
}

/// Sends `statement` with `id` to the members in turn until one acknowledges it. Every
/// statement here is idempotent, and an INSERT retried after its first try landed answers
/// `duplicate_key`, which is its acknowledgement. A 503 (`not_leader`, `unavailable`) or a
/// failed exchange (a killed member) means "not acknowledged": the next member is tried.
pub fn run_until_acknowledged(members: &HttpMembers, auth: &str, statement: &str, id: i64) {
    let deadline = Instant::now() + ACKNOWLEDGE_TIMEOUT;
    let mut turn = 0usize;
    let mut last = String::new();
    loop {
        let addrs = members.lock().expect("members").clone();
        let addr = addrs[turn % addrs.len()];
        turn += 1;
        if let Some(answer) = try_sql(addr, auth, statement, &[json!(id)]) {
            last = format!("{addr}: {}", answer.text);
            let body: Value = serde_json::from_str(&answer.text).unwrap_or(Value::Null);
            let code = body["error"]["code"].as_str().unwrap_or("");
            match (answer.status, code) {
                (200, _) => return,
                (_, "duplicate_key") if statement.starts_with("INSERT") => return,
                (503, _) => {}
                _ => panic!("{statement} ({id}) at {addr}: {}", answer.text),
            }
        }
        assert!(
            Instant::now() < deadline,
            "{statement} ({id}) never acknowledged; last answer {last}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A subscriber to [`ITEMS_SUBSCRIBE`] that moves between members.
pub struct ResumingSubscriber {
    auth: String,
    client: Option<WsClient>,
    /// Its copy of the rows, by id.
    pub copy: BTreeMap<i64, Row>,
    /// The `_seq` of the last change applied (its resume point).
    pub seen_seq: u64,
    /// How many times it resumed on a member.
    pub resumes: usize,
    /// How many changes it applied.
    pub applied: usize,
    /// How many resumes were answered with a keyed catch-up (the member had compacted the
    /// history after the resume point: docs/websocket.md, "Keyed catch-up").
    pub keyed_resumes: usize,
    /// The changes up to this `_seq` are a keyed catch-up's: an insert replaces the row held.
    keyed_until: u64,
    /// The member it follows now, and where it resumed there from.
    at: Option<(SocketAddr, u64)>,
    turn: usize,
}

impl ResumingSubscriber {
    /// Subscribes on `at` (snapshot then changes) with the `Authorization` header `auth`.
    pub fn open(at: SocketAddr, auth: &str) -> ResumingSubscriber {
        let mut client = connect(at, auth).expect("the first member takes the subscriber");
        client.send(&subscribe_message(
            SUBSCRIPTION,
            ITEMS_SUBSCRIBE,
            None,
            None,
        ));
        let seen_seq = expect_ack(&mut client, SUBSCRIPTION);
        let (rows, control) = expect_batch(&mut client, SUBSCRIPTION);
        assert!(!control.has_more, "one snapshot batch");
        let copy = rows
            .into_iter()
            .map(|r| (crate::ws::row_id(&r), r))
            .collect();
        ResumingSubscriber {
            auth: auth.to_string(),
            client: Some(client),
            copy,
            seen_seq,
            resumes: 0,
            applied: 0,
            keyed_resumes: 0,
            keyed_until: 0,
            at: Some((at, 0)),
            turn: 0,
        }
    }

    /// Applies changes for `budget`; returns how many. A connection that ends is dropped.
    pub fn follow(&mut self, budget: Duration) -> usize {
        let deadline = Instant::now() + budget;
        let mut applied = 0;
        while let Some(client) = self.client.as_mut() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match client.next_within(left) {
                Ok(message) => {
                    self.apply(message);
                    applied += 1;
                }
                Err(crate::ws::WsEnd::TimedOut) => break,
                Err(_) => self.client = None,
            }
        }
        self.applied += applied;
        applied
    }

    /// Subscribes again, from the last `_seq` applied, on the next of `members` that takes
    /// it (the current connection, if any, is dropped).
    pub fn resume(&mut self, members: &HttpMembers) {
        self.client = None;
        let addrs = members.lock().expect("members").clone();
        for _ in 0..addrs.len() {
            let at = addrs[self.turn % addrs.len()];
            self.turn += 1;
            let Ok(mut client) = connect(at, &self.auth) else {
                continue;
            };
            let from = Some(self.seen_seq);
            client.send(&subscribe_message(
                SUBSCRIPTION,
                ITEMS_SUBSCRIBE,
                None,
                from,
            ));
            match client.next_within(Duration::from_secs(10)) {
                Ok(ServerMessage::SubscriptionAck {
                    snapshot_end_seq,
                    resume,
                    ..
                }) => {
                    if resume.is_some() {
                        self.keyed_until = snapshot_end_seq.0;
                        self.keyed_resumes += 1;
                    }
                    self.client = Some(client);
                    self.at = Some((at, self.seen_seq));
                    self.resumes += 1;
                    return;
                }
                Ok(other) => panic!("resuming from {from:?} at {at}: {other:?}"),
                Err(_) => continue,
            }
        }
    }

    /// Follows until `stop`, resuming elsewhere when the member goes away or stays silent for
    /// `silent_max` (cut off or removed: it has stopped applying).
    pub fn run_until_stopped(&mut self, members: &HttpMembers, stop: &AtomicBool) {
        let silent_max = Duration::from_secs(3);
        let mut silent_since = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            if self.client.is_none() {
                self.resume(members);
                silent_since = Instant::now();
                if self.client.is_none() {
                    std::thread::sleep(Duration::from_millis(200));
                }
                continue;
            }
            if self.follow(Duration::from_millis(500)) > 0 {
                silent_since = Instant::now();
            } else if silent_since.elapsed() > silent_max {
                self.resume(members);
                silent_since = Instant::now();
            }
        }
    }

    /// Follows, resuming on another member when needed, until the copy holds exactly
    /// `expected` (id -> `_seq`), or fails after `timeout`.
    pub fn converge(
        &mut self,
        members: &HttpMembers,
        expected: &BTreeMap<i64, u64>,
        timeout: Duration,
    ) {
        let deadline = Instant::now() + timeout;
        loop {
            let copied: BTreeMap<i64, u64> = self
                .copy
                .iter()
                .map(|(id, row)| (*id, row_seq(row)))
                .collect();
            if &copied == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the subscriber did not converge: it holds {} rows, the members {}; \
                 last _seq {}",
                copied.len(),
                expected.len(),
                self.seen_seq
            );
            if self.client.is_none() || self.follow(Duration::from_millis(500)) == 0 {
                self.resume(members);
            }
        }
    }

    fn apply(&mut self, message: ServerMessage) {
        let ServerMessage::Change {
            subscription_id,
            change_type,
            mut rows,
            old_rows,
            ..
        } = message
        else {
            panic!("expected a change, got {message:?}");
        };
        assert_eq!(subscription_id, SUBSCRIPTION);
        assert_eq!(rows.len(), 1, "one change message per row");
        let change = Change {
            kind: change_type,
            row: rows.remove(0),
            old: old_rows.and_then(|mut old| old.pop()),
        };
        let seq = row_seq(&change.row);
        let id = crate::ws::row_id(&change.row);
        if change.kind == strand_wire::ChangeType::Insert && seq > self.keyed_until {
            if let Some(held) = self.copy.get(&id) {
                panic!(
                    "insert {:?} of a row held ({held:?}); following {:?} (member, resumed \
                     after), last seen _seq {}, keyed until {}",
                    change.row, self.at, self.seen_seq, self.keyed_until
                );
            }
        }
        assert!(
            seq > self.seen_seq,
            "a change at or below the last seen _seq"
        );
        self.seen_seq = seq;
        if seq <= self.keyed_until {
            // A keyed catch-up's change: the newest state of its key, whatever is held.
            match change.kind {
                strand_wire::ChangeType::Insert => {
                    self.copy.insert(id, change.row);
                }
                strand_wire::ChangeType::Delete => {
                    self.copy.remove(&id);
                }
                strand_wire::ChangeType::Update => panic!("an update in a keyed catch-up"),
            }
            return;
        }
        apply_change(&mut self.copy, &change);
    }
}

/// A WebSocket to `at` authenticated by the upgrade's `Authorization` header.
fn connect(at: SocketAddr, auth: &str) -> Result<WsClient, String> {
    let mut client = WsClient::try_connect_to(at, Some(auth))?;
    match client.next_within(Duration::from_secs(10)) {
        Ok(ServerMessage::AuthSuccess { .. }) => Ok(client),
        other => Err(format!("no auth_success from {at}: {other:?}")),
    }
}

/// The rows `ITEMS_SELECT` answered, as id -> `_seq`.
pub fn seqs_by_id(rows: &[Value]) -> BTreeMap<i64, u64> {
    rows.iter()
        .map(|row| {
            let id = row["id"].as_i64().expect("id");
            let seq = row["_seq"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .or_else(|| row["_seq"].as_u64())
                .unwrap_or_else(|| panic!("no _seq in {row}"));
            (id, seq)
        })
        .collect()
}

/// The rows `ITEMS_SELECT` answered, as id -> v.
pub fn values_by_id(rows: &[Value]) -> BTreeMap<i64, i64> {
    rows.iter()
        .map(|row| {
            (
                row["id"].as_i64().expect("id"),
                row["v"].as_i64().expect("v"),
            )
        })
        .collect()
}
