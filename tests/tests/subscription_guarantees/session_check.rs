//! [`Session`]'s safety checks against the observer's history: the copy equals the query's
//! result at the last `_seq` received ([`Session::check`]); a top-K subscription's copies,
//! kept after each message since the last check, equal the model's window after each write
//! that changed it, which are exactly the messages received ([`Session::check_window`]); a
//! grouping subscription's the same with the model's groups (compared without `_seq`); a
//! time-relative subscription's as `session_clock.rs` says; a join subscription's as
//! `session_join.rs` says.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::MutexGuard;
use std::time::Instant;

use super::{Session, OBSERVER_WAIT};
use crate::model::{diff, TableName};
use crate::table::Table;
use crate::{lock, wait};

/// How many `_seq`s from the first difference on a failure shows.
const SHOWN: usize = 6;

impl<'a> Session<'a> {
    /// The table once the observer's history of `generation` has reached `seq` (or the
    /// observer has moved on to a later generation, or no writer writes any more and the
    /// observer has every record: that history is complete). `seq` may be a tick, which no
    /// record has: the observer has every record below it once it has one above.
    pub(super) fn observed_up_to(&self, generation: usize, seq: u64) -> MutexGuard<'a, Table> {
        self.observed_in(self.query.table(), generation, seq)
    }

    /// [`Session::observed_up_to`] of table `name` (a join reads both).
    pub(super) fn observed_in(
        &self,
        name: TableName,
        generation: usize,
        seq: u64,
    ) -> MutexGuard<'a, Table> {
        let shared = self.shared;
        let deadline = Instant::now() + OBSERVER_WAIT;
        let mut table = lock(shared.table(name));
        loop {
            let last = table.generation(generation).history.last_seq;
            if last >= seq || table.observer_generation > generation || table.complete(generation) {
                return table;
            }
            if shared.observer_dead.load(Relaxed) {
                drop(table);
                self.fail("the observer failed (see its panic)");
            }
            if Instant::now() > deadline {
                drop(table);
                self.fail(&format!(
                    "the observer of {} is stuck at _seq {last}",
                    name.sql()
                ));
            }
            table = wait(&shared.progressed, table);
        }
    }

    /// The view equals the query over the table as of the last `_seq` received (not during
    /// a keyed catch-up: the copy is the result only at its end, checked then).
    pub fn check(&mut self) {
        if self.view.keyed.is_some() {
            return;
        }
        self.check_window();
        if self.is_join() {
            return self.check_join_copy();
        }
        let at = self.view.last;
        let want = {
            let table = self.observed_up_to(self.generation, at);
            let state = table.generation(self.generation).history.state_at(at);
            self.query.result(&state, self.added, at)
        };
        if let Some(difference) = diff(&self.query.comparable(&self.view.rows), &want) {
            self.fail(&format!(
                "the result held differs from the query at _seq {at} \
                 (got vs the observer's history):\n{difference}"
            ));
        }
        self.shared.stats.checks.fetch_add(1, Relaxed);
    }

    /// The copies received since the last check against the model: a snapshot's rows (in
    /// the window's order) are the window at its boundary; the messages after the last check
    /// (or the snapshot) have the `_seq`s of exactly the writes that changed the window since,
    /// and each leaves the copy equal to the window after its write. The same for a grouping
    /// subscription's groups (the model's `Query::ordered` is its groups in key order).
    pub(super) fn check_window(&mut self) {
        if self.query.clock() {
            return self.check_clock();
        }
        if self.is_join() {
            return self.check_join();
        }
        let received = std::mem::take(&mut self.view.received);
        let (Some(first), Some(last)) = (received.first(), received.last()) else {
            return;
        };
        // A snapshot starts the copies anew, at its boundary; messages follow the last check.
        let (base, snapshot, messages) = match &first.order {
            Some(order) => (first.seq, Some((first, order)), &received[1..]),
            None => (self.view.checked_at, None, &received[..]),
        };
        let to = last.seq;
        let what = if self.query.grouping().is_some() {
            "groups"
        } else {
            "window"
        };
        let results = {
            let table = self.observed_up_to(self.generation, to);
            let history = &table.generation(self.generation).history;
            history.window_results(&self.query, self.added, base, to)
        };
        if let Some((first, order)) = snapshot {
            let want: Vec<i64> = results.initial.iter().map(|(key, _)| *key).collect();
            let window = results.initial.iter().cloned().collect();
            if let Some(difference) = diff(&self.query.comparable(&first.rows), &window) {
                self.fail(&format!(
                    "the snapshot differs from the {what} at its boundary {base}:\n{difference}"
                ));
            }
            if *order != want {
                self.fail(&format!(
                    "the snapshot's rows came in the order {order:?}, the model's {what} order is {want:?}"
                ));
            }
        }
        let got: Vec<u64> = messages.iter().map(|m| m.seq).collect();
        let want: Vec<u64> = results.changes.iter().map(|(seq, _)| *seq).collect();
        if got != want {
            let at = got.iter().zip(&want).take_while(|(a, b)| a == b).count();
            let shown = |seqs: &[u64]| seqs[at..].iter().take(SHOWN).copied().collect::<Vec<_>>();
            self.fail(&format!(
                "the change messages since _seq {base} are not one per write that \
                 changed the {what}: {} messages, {} such writes; from message {at} on (from 0), got \
                 seqs {:?}, the writes that changed it {:?}",
                got.len(),
                want.len(),
                shown(&got),
                shown(&want)
            ));
        }
        for (message, (seq, window)) in messages.iter().zip(&results.changes) {
            let want = window.iter().cloned().collect();
            if let Some(difference) = diff(&self.query.comparable(&message.rows), &want) {
                self.fail(&format!(
                    "after the change with seq {seq}, the {what} held differ from the \
                     model's (got vs the observer's history):\n{difference}"
                ));
            }
        }
        self.view.checked_at = to;
        let stats = &self.shared.stats;
        match self.query.grouping() {
            Some(_) => &stats.group_checks,
            None => &stats.window_checks,
        }
        .fetch_add(1, Relaxed);
    }
}
