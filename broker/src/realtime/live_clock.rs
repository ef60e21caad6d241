//! [`LiveClock`]: a subscription whose WHERE reads `now()` (`created_at > now() - INTERVAL '1
//! minute'`), so rows enter and leave its result as time passes, without any write.
//!
//! The state at a `_seq` is the query over the table as of that `_seq`, evaluated at that
//! `_seq`'s time (its milliseconds): a write is applied at its own time, and time passing alone
//! is stamped with a tick (`strand_log::Partition::tick`), a `_seq` given to no record but
//! ordered with every record. So a client that resumes from any `_seq` it received, a write's
//! or a tick's, gets exactly what it missed.
//!
//! The view holds the rows that match now or may match later (the flip instants of
//! `ClockTerms`), each with the next instant at which its match may change, in a deadline set:
//! advancing the clock re-evaluates only the rows whose instant has passed.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::{Map, Value as Json};
use strand_log::Seq;
use strand_sql_view::{encode_key, RowView};
use strand_wire::ChangeType;

use super::history::{decode, snapshot_as_of, HistoryError, VersionPair};
use super::live_window::WindowChange;
use super::plan::{system, SubscriptionPlan};
use super::snapshot::each_live_row;
use crate::tables::versions::KeyedPartition;

type RowKey = Box<[u8]>;

/// A row the view keeps: in the result now, or with an instant at which it may enter.
struct Held {
    payload: Box<[u8]>,
    seq: Seq,
    inside: bool,
    /// Its entry in the deadline set.
    deadline: Option<i64>,
}

/// What one message carries: rows that left (as the client held them) and rows now in.
#[derive(Default)]
struct Moves {
    left: Vec<(Box<[u8]>, Seq)>,
    entered: Vec<(RowKey, Box<[u8]>, Seq)>,
}

impl Moves {
    fn enter(&mut self, key: RowKey, payload: Box<[u8]>, seq: Seq) {
        self.entered.push((key, payload, seq));
    }

    /// A row that entered within this very message never reached the client: it just goes.
    fn leave(&mut self, key: &RowKey, payload: Box<[u8]>, seq: Seq) {
        match self.entered.iter().position(|(k, _, _)| k == key) {
            Some(index) => {
                self.entered.swap_remove(index);
            }
            None => self.left.push((payload, seq)),
        }
    }
}

pub struct LiveClock {
    plan: Arc<SubscriptionPlan>,
    partition: Arc<KeyedPartition>,
    rows: HashMap<RowKey, Held>,
    deadlines: BTreeSet<(i64, RowKey)>,
    /// The time the view is evaluated at (microseconds since the Unix epoch).
    time: i64,
    as_of: Option<Seq>,
}

/// The time of a `_seq`: its milliseconds, in microseconds.
pub fn time_of(seq: Seq) -> i64 {
    i64::try_from(seq.unix_ms())
        .unwrap_or(i64::MAX / 1000)
        .saturating_mul(1000)
}

impl LiveClock {
    /// The view for `plan`, if its WHERE reads the clock.
    pub fn new(plan: &Arc<SubscriptionPlan>, partition: &Arc<KeyedPartition>) -> Option<Self> {
        plan.select().clock()?;
        Some(LiveClock {
            plan: plan.clone(),
            partition: partition.clone(),
            rows: HashMap::new(),
            deadlines: BTreeSet::new(),
            time: 0,
            as_of: None,
        })
    }

    pub fn as_of(&self) -> Option<Seq> {
        self.as_of
    }

    /// The earliest instant at which a row's match may change.
    pub fn next_deadline(&self) -> Option<i64> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    /// Fill the view as of `as_of`, at its time; returns the records read.
    pub fn fill(&mut self, as_of: Seq) -> Result<u64, HistoryError> {
        self.rows.clear();
        self.deadlines.clear();
        self.time = time_of(as_of);
        let snapshot = snapshot_as_of(&self.partition, as_of)?;
        let mut scanned = 0;
        let mut found = Vec::new();
        each_live_row(
            &self.partition,
            &snapshot,
            as_of,
            &self.plan,
            &mut scanned,
            |row, seq, payload| found.push((self.key_of(row, seq), Box::from(payload), seq)),
        )?;
        for (key, payload, seq) in found {
            self.hold(key, payload, seq)?;
        }
        self.as_of = Some(as_of);
        Ok(scanned)
    }

    /// The rows in the result, for the snapshot.
    pub fn rows_json(&self) -> Result<Vec<Map<String, Json>>, HistoryError> {
        let mut inside: Vec<&Held> = self.rows.values().filter(|held| held.inside).collect();
        inside.sort_by_key(|held| held.seq);
        inside
            .into_iter()
            .map(|held| Ok(self.plan.row_json(&decode(&held.payload)?, held.seq)))
            .collect()
    }

    /// Apply one written record, at its time (after the rows whose instants came before it).
    pub fn apply(&mut self, pair: &VersionPair<'_>) -> Result<Option<WindowChange>, HistoryError> {
        if self.as_of.is_some_and(|at| pair.seq <= at) {
            return Ok(None);
        }
        let mut moves = Moves::default();
        self.advance_to(time_of(pair.seq).max(self.time), &mut moves)?;
        let old_key = pair.old.as_ref().map(|old| self.key_of(&old.row, old.seq));
        let new_key = pair.new.as_ref().map(|new| self.key_of(&new.row, new.seq));
        for key in old_key.iter().chain(new_key.iter()) {
            if let Some(held) = self.release(key) {
                if held.inside {
                    moves.leave(key, held.payload, held.seq);
                }
            }
        }
        if let (Some(new), Some(key)) = (&pair.new, new_key) {
            if self.hold(key.clone(), Box::from(new.payload), new.seq)? {
                moves.enter(key, Box::from(new.payload), new.seq);
            }
        }
        self.as_of = Some(pair.seq);
        self.encode(moves, pair.seq)
    }

    /// Let time pass up to the tick `tick` (no record of this partition is between the view's
    /// position and it): the rows whose match changed by then, as one message.
    pub fn advance(&mut self, tick: Seq) -> Result<Option<WindowChange>, HistoryError> {
        if self.as_of.is_some_and(|at| tick <= at) {
            return Ok(None);
        }
        let mut moves = Moves::default();
        self.advance_to(time_of(tick).max(self.time), &mut moves)?;
        self.as_of = Some(tick);
        self.encode(moves, tick)
    }

    fn advance_to(&mut self, time: i64, moves: &mut Moves) -> Result<(), HistoryError> {
        self.time = time;
        while let Some((at, key)) = self.deadlines.first().cloned() {
            if at > time {
                break;
            }
            let Some(held) = self.release(&key) else {
                continue;
            };
            let was_inside = held.inside;
            let is_inside = self.hold(key.clone(), held.payload.clone(), held.seq)?;
            match (was_inside, is_inside) {
                (true, false) => moves.leave(&key, held.payload, held.seq),
                (false, true) => moves.enter(key, held.payload, held.seq),
                _ => {}
            }
        }
        Ok(())
    }

    /// Evaluate a row version at the view's time and keep it if it is in the result or may
    /// enter later; returns whether it is in.
    fn hold(&mut self, key: RowKey, payload: Box<[u8]>, seq: Seq) -> Result<bool, HistoryError> {
        let row = decode(&payload)?;
        let mut at = system(seq);
        at.now = self.time;
        let inside = self.plan.matches_at(&row, at);
        let mut instants = Vec::new();
        if let Some(clock) = self.plan.select().clock() {
            clock.instants(&row, at, &mut instants);
        }
        // A match flips at an instant or one microsecond after it (`<` against `<=`).
        let deadline = instants
            .iter()
            .flat_map(|i| [*i, i.saturating_add(1)])
            .filter(|i| *i > self.time)
            .min();
        if inside || deadline.is_some() {
            if let Some(at) = deadline {
                self.deadlines.insert((at, key.clone()));
            }
            self.rows.insert(
                key,
                Held {
                    payload,
                    seq,
                    inside,
                    deadline,
                },
            );
        }
        Ok(inside)
    }

    fn release(&mut self, key: &RowKey) -> Option<Held> {
        let held = self.rows.remove(key)?;
        if let Some(at) = held.deadline {
            self.deadlines.remove(&(at, key.clone()));
        }
        Some(held)
    }

    /// A row version's identity: its primary key, or its `_seq` for keyless rows.
    fn key_of(&self, row: &RowView<'_>, seq: Seq) -> RowKey {
        let key = self
            .plan
            .select()
            .table()
            .primary_key()
            .and_then(|pk| encode_key(row.field(pk)));
        match key {
            Some(key) => key.into_boxed_slice(),
            None => Box::from(seq.0.to_be_bytes()),
        }
    }

    /// One message for `moves`, at `seq`: a `delete` or an `insert` when they go one way, else
    /// an `update` whose `old_rows` the client removes before it sets `rows`.
    fn encode(&self, moves: Moves, seq: Seq) -> Result<Option<WindowChange>, HistoryError> {
        let entered: Vec<(Box<[u8]>, Seq)> = moves
            .entered
            .into_iter()
            .map(|(_, payload, seq)| (payload, seq))
            .collect();
        let json =
            |rows: &[(Box<[u8]>, Seq)], stamp: Option<Seq>| -> Result<String, HistoryError> {
                let rows = rows
                    .iter()
                    .map(|(payload, own)| {
                        let row = decode(payload)?;
                        Ok(Json::Object(
                            self.plan.row_json(&row, stamp.unwrap_or(*own)),
                        ))
                    })
                    .collect::<Result<Vec<_>, HistoryError>>()?;
                Ok(Json::Array(rows).to_string())
            };
        Ok(match (moves.left.is_empty(), entered.is_empty()) {
            (true, true) => None,
            // A row leaving shows as last seen, stamped with the change's `_seq`.
            (false, true) => Some(WindowChange {
                change_type: ChangeType::Delete,
                rows: json(&moves.left, Some(seq))?,
                old_rows: None,
            }),
            (true, false) => Some(WindowChange {
                change_type: ChangeType::Insert,
                rows: json(&entered, None)?,
                old_rows: None,
            }),
            (false, false) => Some(WindowChange {
                change_type: ChangeType::Update,
                rows: json(&entered, None)?,
                old_rows: Some(json(&moves.left, None)?),
            }),
        })
    }
}
