//! [`Session`]'s liveness checks: at the end of each history while the writers run
//! ([`Session::settle`]), and after they stopped ([`Session::finish`],
//! [`Session::verify_quiet`]). A server that stops sending (after a resume, to filtered
//! subscriptions, the last changes of a burst, an expiry's delete, DDL's ending) fails here
//! instead of passing as a quiet subscriber. A time-relative subscription's liveness is
//! `session_clock.rs`'s, a join subscription's `session_join.rs`'s.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::{Got, Pumped, Session, LIVENESS_WAIT};
use crate::lock;
use crate::model::diff;
use strand_wire::codes;

impl Session<'_> {
    /// Liveness while the writers run: every change that affects the subscription and was
    /// committed (acknowledged to a writer) by now arrives within [`LIVENESS_WAIT`]. The
    /// target is the last `_seq` at or below the writers' highest acknowledged one that the
    /// query's filter sees (see `History::last_relevant`; for a window, that changed it:
    /// [`Session::owed`]); then the view is checked at its own last `_seq` as usual.
    pub fn settle(&mut self) {
        match (self.query.clock(), self.is_join()) {
            (true, _) => self.settle_clock(),
            (false, true) => self.settle_join(),
            (false, false) => self.settle_owed(),
        }
        self.check();
        let added = lock(self.table()).generation(self.generation).added;
        if !self.query.is_star() && self.added < added {
            // Subscribed before an ADD COLUMN and still owed nothing: it went on.
            self.shared.stats.named_across_alter.fetch_add(1, Relaxed);
        }
    }

    fn settle_owed(&mut self) {
        let deadline = Instant::now() + LIVENESS_WAIT;
        loop {
            let generation = self.generation;
            let acked = lock(self.table()).generation(generation).acked;
            let target = {
                let table = self.observed_up_to(generation, acked);
                let history = &table.generation(generation).history;
                self.owed(history, acked)
            };
            // A keyed catch-up in progress is owed up to its end too.
            let target = target.max(self.view.keyed.map_or(0, |keyed| keyed.until));
            if self.view.last >= target && self.view.keyed.is_none() {
                break;
            }
            if Instant::now() > deadline {
                self.fail(&format!(
                    "liveness: the changes up to _seq {target} (committed before _seq {acked}, \
                     which a writer was acknowledged) did not arrive within {LIVENESS_WAIT:?}"
                ));
            }
            self.shared.stats.liveness_waits.fetch_add(1, Relaxed);
            self.pump_reconnecting(Duration::from_millis(200), target);
        }
    }

    /// Liveness after the writers stopped, `last` being the last committed `_seq`: reconnect
    /// if parked without a connection, then take changes (reconnecting as needed) until the
    /// view reaches the last `_seq` that affects it in the current generation.
    pub fn finish(&mut self, items_last: u64, events_last: u64) {
        let last = self.last_of(items_last, events_last);
        if self.query.clock() {
            return self.finish_clock(last);
        }
        if self.is_join() {
            return self.finish_join(last);
        }
        if self.client.is_none() {
            self.connect_resume();
        }
        let deadline = Instant::now() + LIVENESS_WAIT;
        loop {
            let (current, target, added) = {
                let table = lock(self.table());
                let current = table.current();
                let generation = table.generation(current);
                let target = self.owed(&generation.history, last);
                (current, target, generation.added)
            };
            let target = target.max(self.view.keyed.map_or(0, |keyed| keyed.until));
            // A subscription DDL broke (of a dropped generation; `SELECT *` from before an ADD
            // COLUMN) waits for its ending.
            let broken = self.generation != current || (self.query.is_star() && self.added < added);
            if !broken && self.view.last >= target && self.view.keyed.is_none() {
                return;
            }
            if Instant::now() > deadline {
                let why = match broken {
                    false => format!("the changes up to _seq {target} did not arrive"),
                    true => "DDL broke the subscription: no table_dropped or schema_changed".into(),
                };
                self.fail(&format!(
                    "liveness after the writers stopped (last _seq {last}): {why} within \
                     {LIVENESS_WAIT:?}"
                ));
            }
            let upto = if broken { u64::MAX } else { target };
            self.pump_reconnecting(Duration::from_millis(200), upto);
        }
    }

    /// After [`Session::finish`] and a pause: nothing more arrives, and the view equals the
    /// query at `last` with the last `_seq` that affects it received; a `SELECT *`
    /// subscription has the table's current columns (`schema_changed` ended older ones).
    pub fn verify_quiet(&mut self, items_last: u64, events_last: u64) {
        let last = self.last_of(items_last, events_last);
        if self.query.clock() {
            return self.verify_quiet_clock(last);
        }
        if self.is_join() {
            return self.verify_quiet_join(last);
        }
        let Some(mut client) = self.client.take() else {
            self.fail("no connection after finish")
        };
        match self.next(&mut client, Duration::from_millis(1)) {
            Got::Quiet => {}
            _ => self.fail("a message after the last change it was owed"),
        }
        // A window's messages are each checked against the model.
        self.check_window();
        let table = lock(self.table());
        let generation = table.generation(table.current());
        let target = self.owed(&generation.history, last);
        let want = self
            .query
            .result(&generation.history.state_at(last), self.added, last);
        let added = generation.added;
        let stale = self.query.is_star() && self.added != added;
        let difference = diff(&self.query.comparable(&self.view.rows), &want);
        let survived_alter = !self.query.is_star() && self.added < added;
        drop(table);
        if stale {
            self.fail(&format!(
                "a SELECT * subscription outlived ADD COLUMN ({added} added) without \
                 schema_changed"
            ));
        }
        // The last change received is the last one that affects it, unless a snapshot taken
        // after that change set the view's last _seq to its boundary.
        if !(target..=last).contains(&self.view.last) {
            self.fail(&format!(
                "the last _seq received should be {target} (or a snapshot boundary up to {last})"
            ));
        }
        if let Some(difference) = difference {
            self.fail(&format!(
                "after the writers stopped, the result differs from the query at the last \
                 committed _seq {last}:\n{difference}"
            ));
        }
        if survived_alter {
            self.shared.stats.named_across_alter.fetch_add(1, Relaxed);
        }
        self.shared.stats.finished.fetch_add(1, Relaxed);
        client.close();
    }

    /// [`Session::pump`] that reconnects as a client would: a resume after a slow-consumer
    /// disconnect or `resume_too_old` (docs/websocket.md: the client resumes again), a new
    /// snapshot after DDL ended the subscription. False if it reconnected.
    pub fn pump_reconnecting(&mut self, duration: Duration, upto: u64) -> bool {
        match self.pump(duration, upto, &mut |_, _| {}) {
            Pumped::Done => true,
            Pumped::SlowConsumer => {
                self.connect_resume();
                false
            }
            Pumped::Ended(code) if code == codes::RESUME_TOO_OLD => {
                self.connect_resume();
                false
            }
            Pumped::Ended(_) => {
                self.connect_fresh();
                false
            }
        }
    }
}
