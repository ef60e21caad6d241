//! The STREAM table of `subscription_guarantees` (`app.events`, TTL 1 s): its writer and the
//! cross-check of its history. Rows expire: the server writes a delete with its own `_seq`
//! for a row whose TTL passed (docs/websocket.md, "STREAM tables"), so subscribers see deletes
//! that no writer made, and a resume replays them. The model:
//! - a row version written at `t` is visible to statements until `t + TTL`; from then until
//!   its delete is written (within the sweep period) it is in limbo: hidden from SELECT,
//!   UPDATE and DELETE, yet an INSERT of its key still fails with `duplicate_key`;
//! - the expiry delete comes no earlier than `TTL` after the version was written, and no later
//!   than the sweep period (plus a margin for a slow machine) after that.
//!
//! The writer uses single-key statements only, so each answer (its `row_count`, the row a
//! SELECT of the key shows) says what the statement did when timing leaves it open.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use strand_tests::try_sql;
use strand_wire::Row;

use crate::model::{at_of, at_sql, key_of, random_at, seq_of, History, Rng, TableName, QTY_MAX};
use crate::{lock, Shared};

/// Keys 1..=STREAM_KEYS; few writes per key and second, so many rows live out their TTL.
pub const STREAM_KEYS: i64 = 24;
pub const TTL: Duration = Duration::from_secs(1);
/// `--ttl-sweep-interval-ms`.
pub const SWEEP_MS: u64 = 100;
/// How much later than TTL + sweep an expiry may come on a slow, busy machine.
pub const EXPIRY_SLACK: Duration = Duration::from_secs(3);
/// Clock skew allowed between the server's expiry clock and the test's.
const SKEW: Duration = Duration::from_millis(50);

/// One write the writer made: a new version of `key` (with its acknowledged `_seq`) or its
/// delete, and when the request was sent.
#[derive(Debug)]
pub struct StreamWrite {
    pub key: i64,
    pub row: Option<Row>,
    pub sent: Instant,
    pub sql: String,
}

/// The writer's belief about a key.
struct Version {
    /// The newest version it wrote (`None`: it deleted the row, or never wrote one).
    row: Option<Row>,
    sent: Instant,
    acked: Instant,
}

/// What a key's row may be when a statement runs.
#[derive(Debug, PartialEq)]
enum State {
    /// No row: none written, deleted, or expired and its delete written for sure.
    Absent,
    /// Visible for the whole request.
    Alive,
    /// Past (or at) its TTL: visible or in limbo, its delete written or not.
    Expiring,
}

pub struct StreamWriter {
    keys: BTreeMap<i64, Version>,
    last_seq: u64,
    rng: Rng,
    pub writes: Vec<StreamWrite>,
}

impl StreamWriter {
    pub fn new(rng: Rng) -> StreamWriter {
        StreamWriter {
            keys: BTreeMap::new(),
            last_seq: 0,
            rng,
            writes: Vec::new(),
        }
    }

    fn state(&self, key: i64, sent: Instant, answered: Instant) -> State {
        match self.keys.get(&key) {
            Some(Version {
                row: Some(_),
                sent: written,
                acked,
            }) => {
                if *written + TTL > answered + SKEW {
                    State::Alive
                } else if *acked + TTL + Duration::from_millis(SWEEP_MS) + EXPIRY_SLACK < sent {
                    State::Absent
                } else {
                    State::Expiring
                }
            }
            _ => State::Absent,
        }
    }

    fn fail(&self, shared: &Shared, what: &str) -> ! {
        panic!("stream writer: {what}\n  seed {}", shared.seed)
    }

    /// One random single-key INSERT, UPDATE or DELETE, checked and recorded.
    pub fn step(&mut self, shared: &Shared) {
        let key = self.rng.range(1, STREAM_KEYS);
        let (grp, qty) = (self.rng.group(), self.rng.range(0, QTY_MAX));
        let at = random_at(&mut self.rng);
        let statement = match self.rng.below(100) {
            0..=49 => format!(
                "INSERT INTO app.events (id, grp, qty, at) VALUES ({key}, '{grp}', {qty}, {})",
                at_sql(at)
            ),
            50..=79 => format!(
                "UPDATE app.events SET grp = '{grp}', qty = {qty}, at = {} WHERE id = {key}",
                at_sql(at)
            ),
            _ => format!("DELETE FROM app.events WHERE id = {key}"),
        };
        let text =
            format!("{statement}; SELECT id, grp, qty, at, _seq FROM app.events WHERE id = {key}");
        let sent = Instant::now();
        let answer = try_sql(shared.server.http, &shared.admin, &text, &[])
            .unwrap_or_else(|| self.fail(shared, &format!("the HTTP exchange failed: {text}")));
        let answered = Instant::now();
        let state = self.state(key, sent, answered);
        let body = answer.json();
        let written = match (answer.status, statement.starts_with("INSERT")) {
            (200, _) => body["results"][0]["row_count"].as_u64(),
            (_, true) if body["error"]["code"] == json!("duplicate_key") => {
                if state == State::Absent {
                    self.fail(
                        shared,
                        &format!("{text}: duplicate_key for a key without a row"),
                    );
                }
                shared.stats.writes.fetch_add(1, Relaxed);
                return;
            }
            _ => self.fail(
                shared,
                &format!("{text} -> {} {}", answer.status, answer.text),
            ),
        };
        let shown = body["results"][1]["rows"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let insert = statement.starts_with("INSERT");
        let wrote = match (written, &state, insert) {
            (Some(1), State::Absent | State::Expiring, true) => true,
            (Some(1), State::Alive | State::Expiring, false) => true,
            (Some(0), State::Absent | State::Expiring, false) => false,
            _ => self.fail(
                shared,
                &format!("{text}: row_count {written:?} for a row {state:?}"),
            ),
        };
        let deleting = statement.starts_with("DELETE");
        let row = match (wrote && !deleting, shown.as_slice()) {
            (true, [Value::Object(row)]) => Some(row.clone()),
            (false, []) => None,
            _ => self.fail(shared, &format!("{text}: the row shown is {shown:?}")),
        };
        if let Some(row) = &row {
            let seq = seq_of(row).unwrap_or_else(|e| self.fail(shared, &e));
            let want = json!({"id": key, "grp": grp, "qty": qty});
            let mut got = row.clone();
            got.remove("_seq");
            let got_at = got.remove("at").map(|value| {
                let row = Row::from_iter([("at".to_owned(), value)]);
                at_of(&row)
            });
            if Value::Object(got) != want
                || got_at != Some(Ok(at))
                || seq <= self.last_seq
                || key_of(row) != Ok(key)
            {
                self.fail(
                    shared,
                    &format!("{text}: wrote {row:?} (after _seq {})", self.last_seq),
                );
            }
            self.last_seq = seq;
            let mut table = lock(shared.table(TableName::Events));
            let generation = &mut table.generations[0];
            generation.acked = generation.acked.max(seq);
        }
        if wrote {
            self.keys.insert(
                key,
                Version {
                    row: row.clone(),
                    sent,
                    acked: answered,
                },
            );
            self.writes.push(StreamWrite {
                key,
                row,
                sent,
                sql: statement,
            });
        }
        shared.stats.writes.fetch_add(1, Relaxed);
    }
}

/// The observer's history of the STREAM table is the writer's writes, in order, plus expiry
/// deletes: each the delete of a key whose newest version is a row, observed no earlier than
/// that version's TTL. Returns the number of expiry deletes.
pub fn cross_check(history: &History, writes: &[StreamWrite]) -> Result<u64, String> {
    let mut next = writes.iter().peekable();
    // Per key: whether the newest event is a row, and when its write was sent.
    let mut newest: BTreeMap<i64, (bool, Instant)> = BTreeMap::new();
    let mut expiries = 0;
    for (seq, key, row) in history.events() {
        if let Some(write) = next.next_if(|w| w.key == key && w.row.as_ref() == row) {
            newest.insert(key, (write.row.is_some(), write.sent));
            continue;
        }
        let (Some((true, sent)), None) = (newest.get(&key).copied(), row) else {
            return Err(format!(
                "_seq {seq}: id {key} = {row:?}, which neither the writer nor an expiry made \
                 (the writer's next write: {:?})",
                next.peek()
            ));
        };
        let observed = history.observed_at.get(&seq).copied();
        if observed.is_some_and(|at| at + SKEW < sent + TTL) {
            return Err(format!("_seq {seq}: id {key} expired before its TTL"));
        }
        newest.insert(key, (false, sent));
        expiries += 1;
    }
    match next.next() {
        Some(write) => Err(format!(
            "the history lacks the write of `{}`: id {} = {:?}",
            write.sql, write.key, write.row
        )),
        None => Ok(expiries),
    }
}
