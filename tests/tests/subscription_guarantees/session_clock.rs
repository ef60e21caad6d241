//! [`Session`] with a time-relative query (docs/websocket.md, "Time-relative subscriptions";
//! the model: `clock.rs`). Each `change` carries a `"seq"` (a write's `_seq`, or a tick: a
//! `_seq` no record has, for time passing) and may carry several rows; it is applied and
//! checked in itself as a top-K one is (`View::apply_window`, without a limit), and the copy
//! after it is kept. A check ([`Session::check_clock`]) compares the snapshot with the result
//! at its boundary (a tick), each copy with the result at its message's `"seq"` (the table as
//! of it, `now()` its time), and requires that no record between two messages changed its
//! key's row in the result (a write that changes what the client holds is owed a message;
//! time passing alone may wait for the next one, within the server's tolerance). Its resumes
//! are exact, from any `"seq"`
//! received, or `resume_too_old`, never a keyed catch-up (`session_groups.rs`).
//!
//! Liveness: at the end of a history, the copy must reach the result at the wall clock's
//! `_seq` when the history ended ([`Session::settle_clock`]: a message at or above it, or a
//! copy equal to the result there), so time moves and writes both arrive; after the writers
//! stopped, once the wall clock passed the last instant at which a final row enters or leaves,
//! the copy must be that steady result and stay quiet ([`Session::finish_clock`],
//! [`Session::verify_quiet_clock`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use strand_wire::{ChangeType, Row};

use super::{Got, Session, LIVENESS_WAIT};
use crate::lock;
use crate::model::{diff, seq_at_ms, time_of, wall_ms, History, TableName};

/// How long past the last instant of the final rows the wall clock must be before the copy
/// must be the steady result (the server looks for due rows every 50 ms, then commits a tick).
const STEADY_MARGIN_MS: u64 = 150;

/// `_seq` with its time, for a failure report.
fn when(seq: u64) -> String {
    format!("_seq {seq} (ms {})", time_of(seq) / 1000)
}

impl Session<'_> {
    /// Apply a time-relative `change` (`seq`: its top-level `"seq"`) and count it.
    pub(super) fn apply_clock_change(
        &mut self,
        kind: ChangeType,
        seq: Option<u64>,
        rows: &[Row],
        old_rows: Option<&[Row]>,
    ) {
        let counters = (
            &self.shared.stats.clock_changes,
            &self.shared.stats.clock_replayed,
        );
        self.apply_rows_change(kind, seq, rows, old_rows, counters);
        let stats = &self.shared.stats;
        if self.query.table() == TableName::Events {
            stats.clock_stream.fetch_add(1, Relaxed);
        }
    }

    /// Apply a message that may carry several rows (time-relative, join: a window without a
    /// limit) and count it in `changes`, and in `replayed` when a resume replayed it.
    pub(super) fn apply_rows_change(
        &mut self,
        kind: ChangeType,
        seq: Option<u64>,
        rows: &[Row],
        old_rows: Option<&[Row]>,
        (changes, replayed): (&AtomicU64, &AtomicU64),
    ) {
        if let Err(e) = self
            .view
            .apply_window(kind, seq, rows, old_rows, usize::MAX)
        {
            self.fail(&e);
        }
        self.shared.stats.changes.fetch_add(1, Relaxed);
        changes.fetch_add(1, Relaxed);
        if self.view.last <= self.replay_upto {
            replayed.fetch_add(1, Relaxed);
        }
    }

    /// The copies received since the last check against the model (see the module's doc).
    pub(super) fn check_clock(&mut self) {
        let received = std::mem::take(&mut self.view.received);
        let Some(first) = received.first() else {
            return;
        };
        // A snapshot starts the copies anew, at its boundary; messages follow the last check.
        let (base, snapshot, messages) = match &first.order {
            Some(_) => (first.seq, Some(first), &received[1..]),
            None => (self.view.checked_at, None, &received[..]),
        };
        let seqs: Vec<u64> = messages.iter().map(|m| m.seq).collect();
        let to = seqs.last().copied().unwrap_or(base);
        let results = {
            let table = self.observed_up_to(self.generation, to);
            let history = &table.generation(self.generation).history;
            history.clock_results(&self.query, self.added, base, &seqs)
        };
        if let Some(snapshot) = snapshot {
            if let Some(difference) = diff(&snapshot.rows, &results.initial) {
                self.fail(&format!(
                    "the snapshot differs from the result at its boundary {} (got vs the \
                     observer's history at that time):\n{difference}",
                    when(base)
                ));
            }
        }
        let mut before = &results.initial;
        let mut earlier = base;
        for (message, (written, want)) in messages.iter().zip(&results.at) {
            if let Some(difference) = diff(&message.rows, want) {
                let what = match written {
                    Some(key) => format!("the write of id {key}"),
                    None => "a tick: no record has it".into(),
                };
                let keys: Vec<i64> = (message.rows.keys().chain(want.keys()))
                    .filter(|key| message.rows.get(key) != want.get(key))
                    .copied()
                    .collect();
                let versions = {
                    let table = lock(self.table());
                    let history = &table.generation(self.generation).history;
                    history.versions_of(&keys, earlier, message.seq)
                };
                self.fail(&format!(
                    "after the change with seq {} ({what}), the result held differs from the \
                     model's at that seq (got vs the observer's history):\n{difference}\n  \
                     the versions of those keys since the message before ({}):\n{versions}",
                    when(message.seq),
                    when(earlier)
                ));
            }
            earlier = message.seq;
            self.count_clock_message(before, &message.rows, *written);
            before = &message.rows;
        }
        if let Some((earlier, record, key)) = results.unsent {
            self.fail(&format!(
                "the record with {} changed id {key} in the result (from the copy as of {}), \
                 but no message came for it: the next message received is {:?}",
                when(record),
                when(earlier),
                seqs.iter().find(|seq| **seq > record)
            ));
        }
        self.view.checked_at = to;
        self.shared.stats.clock_checks.fetch_add(1, Relaxed);
    }

    /// Count a checked message by what moved: rows entering or leaving by time (at a tick,
    /// every row; at a write, the rows other than the written one, time moves folded into its
    /// message).
    fn count_clock_message(
        &self,
        before: &BTreeMap<i64, Row>,
        after: &BTreeMap<i64, Row>,
        written: Option<i64>,
    ) {
        let stats = &self.shared.stats;
        let keys: BTreeSet<i64> = before.keys().chain(after.keys()).copied().collect();
        let changed: Vec<i64> = keys
            .into_iter()
            .filter(|key| before.get(key) != after.get(key))
            .collect();
        if changed.len() > 1 {
            stats.clock_several.fetch_add(1, Relaxed);
        }
        let by_time: Vec<i64> = changed
            .into_iter()
            .filter(|key| Some(*key) != written)
            .collect();
        match written {
            None => stats.clock_ticks.fetch_add(1, Relaxed),
            Some(_) if !by_time.is_empty() => stats.clock_folded.fetch_add(1, Relaxed),
            Some(_) => 0,
        };
        if by_time.iter().any(|key| !before.contains_key(key)) {
            stats.clock_entered.fetch_add(1, Relaxed);
        }
        if by_time.iter().any(|key| !after.contains_key(key)) {
            stats.clock_left.fetch_add(1, Relaxed);
        }
    }

    /// Liveness while the writers run: with `target` the highest `_seq` of the wall clock's
    /// millisecond when the history ended, the copy reaches the result at `target` (a message
    /// at or above it; or, if nothing changed the result since its last message, the copy
    /// equals the result there) within [`LIVENESS_WAIT`].
    pub(super) fn settle_clock(&mut self) {
        let target = seq_at_ms(wall_ms());
        let deadline = Instant::now() + LIVENESS_WAIT;
        loop {
            let want = {
                let table = self.observed_up_to(self.generation, target);
                let state = table.generation(self.generation).history.state_at(target);
                self.query.result(&state, self.added, target)
            };
            let reached = self.view.last >= target || self.view.rows == want;
            if reached && self.view.keyed.is_none() {
                return;
            }
            if Instant::now() > deadline {
                let difference = diff(&self.view.rows, &want).unwrap_or_default();
                self.fail(&format!(
                    "liveness: the result at {} (the wall clock when the history ended) did \
                     not arrive within {LIVENESS_WAIT:?} (got vs want):\n{difference}",
                    when(target)
                ));
            }
            self.shared.stats.liveness_waits.fetch_add(1, Relaxed);
            self.pump_reconnecting(Duration::from_millis(200), target);
        }
    }

    /// The steady result after the writers stopped, `last` being the last committed `_seq`:
    /// the millisecond after which no final row enters or leaves any more, and the result
    /// then.
    fn steady(&self, history: &History, last: u64) -> (u64, BTreeMap<i64, Row>) {
        let state = history.state_at(last);
        let ms = self.query.steady_ms(&state, (time_of(last) / 1000) as u64);
        (ms, self.query.result(&state, self.added, seq_at_ms(ms)))
    }

    /// Liveness after the writers stopped: reconnect if parked without a connection, then
    /// take changes until the wall clock is past the steady millisecond (plus
    /// [`STEADY_MARGIN_MS`]), a round of pumping (100 ms) brought nothing, and the copy is the
    /// steady result; or, for a subscription DDL broke, its ending and a new snapshot.
    pub(super) fn finish_clock(&mut self, last: u64) {
        if self.client.is_none() {
            self.connect_resume();
        }
        let deadline = Instant::now() + LIVENESS_WAIT;
        let mut quiet = false;
        loop {
            let (broken, steady_ms, want) = {
                let table = lock(self.table());
                let current = table.current();
                let generation = table.generation(current);
                let broken = self.generation != current
                    || (self.query.is_star() && self.added < generation.added);
                let (steady_ms, want) = self.steady(&generation.history, last);
                (broken, steady_ms, want)
            };
            let steady = wall_ms() > steady_ms + STEADY_MARGIN_MS;
            if quiet && steady && !broken && self.view.keyed.is_none() && self.view.rows == want {
                return;
            }
            if Instant::now() > deadline {
                let why = match broken {
                    false => format!(
                        "the steady result (time past ms {steady_ms}) did not arrive (got vs \
                         want):\n{}",
                        diff(&self.view.rows, &want).unwrap_or_default()
                    ),
                    true => "DDL broke the subscription: no table_dropped or schema_changed".into(),
                };
                self.fail(&format!(
                    "liveness after the writers stopped (last _seq {last}): {why} within \
                     {LIVENESS_WAIT:?}"
                ));
            }
            let before = self.view.last;
            let stayed = self.pump_reconnecting(Duration::from_millis(100), u64::MAX);
            quiet = stayed && self.view.last == before;
        }
    }

    /// After [`Session::finish_clock`] and a pause: nothing more arrives, every message is
    /// checked, and the copy is the steady result.
    pub(super) fn verify_quiet_clock(&mut self, last: u64) {
        let Some(mut client) = self.client.take() else {
            self.fail("no connection after finish")
        };
        match self.next(&mut client, Duration::from_millis(1)) {
            Got::Quiet => {}
            _ => self.fail("a message after the result was steady"),
        }
        self.check();
        let (stale, steady_ms, want) = {
            let table = lock(self.table());
            let generation = table.generation(table.current());
            let stale = self.query.is_star() && self.added != generation.added;
            let (steady_ms, want) = self.steady(&generation.history, last);
            (stale, steady_ms, want)
        };
        if stale {
            self.fail("a SELECT * subscription outlived ADD COLUMN without schema_changed");
        }
        if let Some(difference) = diff(&self.view.rows, &want) {
            self.fail(&format!(
                "after the writers stopped and time passed every instant (ms {steady_ms}), \
                 the result differs from the query's (got vs want):\n{difference}"
            ));
        }
        self.shared.stats.finished.fetch_add(1, Relaxed);
        client.close();
    }
}
