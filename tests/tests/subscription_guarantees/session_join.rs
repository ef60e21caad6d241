//! [`Session`] with a join query (docs/websocket.md, "Join subscriptions"; the model:
//! `join.rs`). Each `change` carries the `"seq"` of the write that caused it (to either table)
//! and may carry several rows; it is applied and checked in itself as a top-K one is
//! (`View::apply_window`, without a limit: deleted and replaced rows are the ones held, inserted
//! ones are not), and the copy after it is kept. A check ([`Session::check_join`]) compares
//! the snapshot with the join at its boundary, and requires that the messages since are
//! exactly one per write (of either table, merged by `_seq`) that changed the join, each
//! leaving the copy equal to the join as of that write. Resumes are exact, from the last
//! `"seq"`, or `resume_too_old`, never a keyed catch-up (`session_groups.rs`); DROP TABLE
//! app.items ends the subscription with `table_dropped` (`Session::may_end`: the query's table
//! is `app.items`).
//!
//! A resume from before app.items was dropped and created again is refused with
//! `table_dropped` naming it (this test found that it was once accepted: seed 7).
//!
//! Liveness: at the end of a history, every write committed by then that changed the join
//! arrives ([`Session::settle_join`]); after the writers stopped (and every STREAM row
//! expired), the copy reaches the join at the last committed `_seq` of both tables, having
//! received the last write that changed it, and nothing more arrives.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use strand_wire::{ChangeType, Row};

use super::{Got, Session, LIVENESS_WAIT};
use crate::lock;
use crate::model::{diff, join_results, Join, JoinResults, Source, TableName};
use crate::table::Table;

impl<'a> Session<'a> {
    /// A join subscription.
    pub(super) fn is_join(&self) -> bool {
        self.query.join().is_some()
    }

    fn join_query(&self) -> &Join {
        match self.query.join() {
            Some(join) => join,
            None => self.fail("a join check of a query without a join"),
        }
    }

    /// The highest `_seq` the STREAM table's writer was acknowledged, or its observer has
    /// (an expiry delete is acknowledged to no one): committed, so owed to a join.
    fn events_acked(&self) -> u64 {
        let events = lock(self.shared.table(TableName::Events));
        let generation = events.generation(0);
        generation.acked.max(generation.history.last_seq)
    }

    /// What is committed, given `acked`, the highest `_seq` acknowledged to the writers of the
    /// query's table: a join's also counts the STREAM table's.
    pub(super) fn committed(&self, acked: u64) -> u64 {
        match self.is_join() {
            true => acked.max(self.events_acked()),
            false => acked,
        }
    }

    /// Apply a join's `change` (`seq`: its top-level `"seq"`) and count it.
    pub(super) fn apply_join_change(
        &mut self,
        kind: ChangeType,
        seq: Option<u64>,
        rows: &[Row],
        old_rows: Option<&[Row]>,
    ) {
        let counters = (
            &self.shared.stats.join_changes,
            &self.shared.stats.join_replayed,
        );
        self.apply_rows_change(kind, seq, rows, old_rows, counters);
        let stats = &self.shared.stats;
        if rows.len() > 1 || old_rows.is_some_and(|old| old.len() > 1) {
            stats.join_several.fetch_add(1, Relaxed);
        }
    }

    /// Both observers' tables once each history holds every record up to `seq` (of the
    /// subscription's `app.items` generation; `app.events` has one): `(items, events)`.
    fn observed_join(&self, seq: u64) -> (MutexGuard<'a, Table>, MutexGuard<'a, Table>) {
        // Waited for one at a time (an observer records under its table's lock), then
        // taken together in the test's order (items, then events); histories only grow.
        drop(self.observed_in(TableName::Items, self.generation, seq));
        drop(self.observed_in(TableName::Events, 0, seq));
        let items = lock(self.shared.table(TableName::Items));
        (items, lock(self.shared.table(TableName::Events)))
    }

    /// The model's join from `from` to `to` (see [`join_results`]).
    fn join_model(&self, from: u64, to: u64) -> JoinResults {
        let (items, events) = self.observed_join(to);
        let items = &items.generation(self.generation).history;
        join_results(
            self.join_query(),
            &events.generation(0).history,
            items,
            from,
            to,
        )
    }

    /// The last `_seq` at or below `upto` of a write that changed the join after the last
    /// `"seq"` received (or that `"seq"`, if none did).
    fn owed_join(&self, upto: u64) -> u64 {
        let from = self.view.last.min(upto);
        let results = self.join_model(from, upto);
        results.changes.last().map_or(from, |(seq, _, _)| *seq)
    }

    /// The copies received since the last check against the model (see the module's doc).
    pub(super) fn check_join(&mut self) {
        let received = std::mem::take(&mut self.view.received);
        let (Some(first), Some(last)) = (received.first(), received.last()) else {
            return;
        };
        // A snapshot starts the copies anew, at its boundary; messages follow the last check.
        let (base, snapshot, messages) = match &first.order {
            Some(_) => (first.seq, Some(first), &received[1..]),
            None => (self.view.checked_at, None, &received[..]),
        };
        let results = self.join_model(base, last.seq);
        if let Some(snapshot) = snapshot {
            if let Some(difference) = diff(&snapshot.rows, &results.initial) {
                self.fail(&format!(
                    "the snapshot differs from the join at its boundary {base} (got vs the \
                     observers' histories):\n{difference}\n{}",
                    self.join_versions(&snapshot.rows, &results.initial, base, base)
                ));
            }
        }
        let got: Vec<u64> = messages.iter().map(|m| m.seq).collect();
        let want: Vec<(u64, Source)> = results.changes.iter().map(|c| (c.0, c.1)).collect();
        if got.iter().ne(want.iter().map(|(seq, _)| seq)) {
            let at = got
                .iter()
                .zip(&want)
                .take_while(|(a, b)| **a == b.0)
                .count();
            self.fail(&format!(
                "the change messages since _seq {base} are not one per write that changed the \
                 join: {} messages, {} such writes; from message {at} on (from 0), got seqs \
                 {:?}, the writes that changed it (and their tables) {:?}",
                got.len(),
                want.len(),
                got.iter().skip(at).take(6).collect::<Vec<_>>(),
                want.iter().skip(at).take(6).collect::<Vec<_>>()
            ));
        }
        let mut earlier = base;
        for (message, (seq, source, want)) in messages.iter().zip(&results.changes) {
            if let Some(difference) = diff(&message.rows, want) {
                self.fail(&format!(
                    "after the change with seq {seq} (a write to {source:?}), the join held \
                     differs from the model's (got vs the observers' histories):\n{difference}\n{}",
                    self.join_versions(&message.rows, want, earlier, *seq)
                ));
            }
            if *source == Source::Items {
                self.shared.stats.join_lookup.fetch_add(1, Relaxed);
            }
            earlier = *seq;
        }
        self.view.checked_at = last.seq;
        self.shared.stats.join_checks.fetch_add(1, Relaxed);
    }

    /// For a failure report: the versions in `(from, to]` (and the one before) of the `e` rows
    /// whose joined rows differ, and of the `app.items` rows they look up.
    fn join_versions(
        &self,
        got: &BTreeMap<i64, Row>,
        want: &BTreeMap<i64, Row>,
        from: u64,
        to: u64,
    ) -> String {
        let keys: Vec<i64> = (got.keys().chain(want.keys()))
            .filter(|key| got.get(key) != want.get(key))
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let (items, events) = self.observed_join(to);
        let events = &events.generation(0).history;
        let items = &items.generation(self.generation).history;
        let join = self.join_query();
        let partners: BTreeSet<i64> = [events.state_at(from), events.state_at(to)]
            .iter()
            .flat_map(|state| keys.iter().filter_map(|key| state.get(key)))
            .filter_map(|row| join.partner_key(row))
            .collect();
        let partners: Vec<i64> = partners.into_iter().collect();
        format!(
            "  app.events versions:\n{}\n  app.items versions (generation {}):\n{}",
            events.versions_of(&keys, from, to),
            self.generation,
            items.versions_of(&partners, from, to)
        )
    }

    /// [`Session::check`] of a join: its messages, then the copy against the join at the last
    /// `"seq"` received.
    pub(super) fn check_join_copy(&mut self) {
        let at = self.view.last;
        let want = self.join_model(at, at).initial;
        if let Some(difference) = diff(&self.view.rows, &want) {
            self.fail(&format!(
                "the join held differs from the model at _seq {at} (got vs the observers' \
                 histories):\n{difference}"
            ));
        }
        self.shared.stats.checks.fetch_add(1, Relaxed);
    }

    /// Liveness while the writers run: every write committed by now (acknowledged to a
    /// writer, or an expiry the observer has) that changed the join arrives within
    /// [`LIVENESS_WAIT`].
    pub(super) fn settle_join(&mut self) {
        let deadline = Instant::now() + LIVENESS_WAIT;
        loop {
            let items = lock(self.table()).generation(self.generation).acked;
            let upto = self.committed(items);
            let target = self.owed_join(upto);
            if self.view.last >= target {
                return;
            }
            if Instant::now() > deadline {
                self.fail(&format!(
                    "liveness: the join's changes up to _seq {target} (committed by _seq \
                     {upto}) did not arrive within {LIVENESS_WAIT:?}"
                ));
            }
            self.shared.stats.liveness_waits.fetch_add(1, Relaxed);
            self.pump_reconnecting(Duration::from_millis(200), target);
        }
    }

    /// Liveness after the writers stopped, `last` being the last committed `_seq` of both
    /// tables: reconnect if parked without a connection, then take changes until the copy has
    /// the last write that changed the join (or, made on a dropped `app.items`, until its
    /// `table_dropped` and a new snapshot).
    pub(super) fn finish_join(&mut self, last: u64) {
        if self.client.is_none() {
            self.connect_resume();
        }
        let deadline = Instant::now() + LIVENESS_WAIT;
        loop {
            let broken = lock(self.table()).current() != self.generation;
            let target = if broken {
                u64::MAX
            } else {
                self.owed_join(last)
            };
            if !broken && self.view.last >= target {
                return;
            }
            if Instant::now() > deadline {
                let why = match broken {
                    false => format!("the join's changes up to _seq {target} did not arrive"),
                    true => "app.items was dropped: no table_dropped".into(),
                };
                self.fail(&format!(
                    "liveness after the writers stopped (last _seq {last}): {why} within \
                     {LIVENESS_WAIT:?}"
                ));
            }
            self.pump_reconnecting(Duration::from_millis(200), target);
        }
    }

    /// After [`Session::finish_join`] and a pause: nothing more arrives, every message is
    /// checked, the last one received is the last write that changed the join (or a snapshot
    /// came after it), and the copy is the join at `last`.
    pub(super) fn verify_quiet_join(&mut self, last: u64) {
        let Some(mut client) = self.client.take() else {
            self.fail("no connection after finish")
        };
        match self.next(&mut client, Duration::from_millis(1)) {
            Got::Quiet => {}
            _ => self.fail("a message after the last change it was owed"),
        }
        self.check_join();
        if lock(self.table()).current() != self.generation {
            self.fail("a join subscription outlived DROP TABLE app.items");
        }
        let target = self.owed_join(last);
        let want = self.join_model(last, last).initial;
        if self.view.last < target {
            self.fail(&format!(
                "the last \"seq\" received should be {target}, the last write that changed the \
                 join"
            ));
        }
        if let Some(difference) = diff(&self.view.rows, &want) {
            self.fail(&format!(
                "after the writers stopped, the join differs from the model at the last \
                 committed _seq {last}:\n{difference}"
            ));
        }
        self.shared.stats.finished.fetch_add(1, Relaxed);
        client.close();
    }
}
