//! [`Session`] with a grouping query (docs/websocket.md, "Grouping subscriptions"), and what it
//! shares with a top-K one: each `change` is one write, applied and checked in itself by
//! `View::apply_groups` (groups are keyed by their group-key columns), and the copy after it is
//! kept; a check compares those copies (without `_seq`) with the model's groups after each
//! write that changed them since the last check (`session_check.rs`). So a grouping
//! subscriber must receive exactly one message per write that changed some group's row (none
//! for a write that changed none, none left out, also across a resume), each leaving it with
//! exactly the model's groups; its snapshot must come in group-key order; its resumes are exact
//! (never a keyed catch-up) or `resume_too_old`; its liveness target is the last write that
//! changed its groups (`Session::owed`).

use std::collections::BTreeSet;
use std::sync::atomic::Ordering::Relaxed;

use strand_wire::{ChangeType, Row};

use super::Session;
use crate::model::{Grouping, TableName};

impl Session<'_> {
    fn grouping_of(&self) -> &Grouping {
        match self.query.grouping() {
            Some(grouping) => grouping,
            None => self.fail("a grouping check of a query without aggregates"),
        }
    }

    /// A snapshot batch's rows into the view.
    pub(super) fn load(&mut self, rows: &[Row], boundary: u64) {
        let loaded = match self.query.grouping() {
            Some(grouping) => self.view.load_groups(rows, boundary, grouping),
            None => self.view.load(rows, boundary),
        };
        if let Err(e) = loaded {
            self.fail(&e);
        }
    }

    /// Apply a top-K or grouping `change` (`seq`: its top-level `"seq"`).
    pub(super) fn apply_per_write(
        &mut self,
        kind: ChangeType,
        seq: Option<u64>,
        rows: &[Row],
        old_rows: Option<&[Row]>,
    ) {
        if self.query.window().is_some() {
            return self.apply_window_change(kind, seq, rows, old_rows);
        }
        if self.query.clock() {
            return self.apply_clock_change(kind, seq, rows, old_rows);
        }
        if self.is_join() {
            return self.apply_join_change(kind, seq, rows, old_rows);
        }
        let grouping = self.grouping_of().clone();
        if let Err(e) = self.view.apply_groups(kind, seq, rows, old_rows, &grouping) {
            self.fail(&e);
        }
        let stats = &self.shared.stats;
        stats.changes.fetch_add(1, Relaxed);
        stats.group_changes.fetch_add(1, Relaxed);
        if self.view.last <= self.replay_upto {
            stats.group_replayed.fetch_add(1, Relaxed);
        }
        let groups: BTreeSet<i64> = rows
            .iter()
            .chain(old_rows.into_iter().flatten())
            .filter_map(|row| grouping.key_of(row).ok())
            .collect();
        if groups.len() > 1 {
            // A row moved between groups: both in one message.
            stats.group_moves.fetch_add(1, Relaxed);
        }
        if kind != ChangeType::Update {
            stats.group_appeared_vanished.fetch_add(1, Relaxed);
        }
        if self.query.table() == TableName::Events {
            stats.group_stream.fetch_add(1, Relaxed);
        }
    }

    /// A top-K, grouping, time-relative or join resume was answered: exactly (a keyed
    /// catch-up fails).
    pub(super) fn per_write_resume(&self, keyed: bool) {
        let stats = &self.shared.stats;
        let counter = match (self.query.window(), self.query.grouping()) {
            (Some(_), _) => &stats.window_resumes,
            (None, Some(_)) => &stats.group_resumes,
            (None, None) if self.query.clock() => &stats.clock_resumes,
            (None, None) if self.is_join() => &stats.join_resumes,
            (None, None) => return,
        };
        if keyed {
            self.fail(
                "a top-K, grouping, time-relative or join resume got a keyed catch-up (it \
                 resumes exactly or not)",
            );
        }
        counter.fetch_add(1, Relaxed);
    }

    /// A top-K, grouping, time-relative or join resume was answered `resume_too_old`.
    pub(super) fn per_write_too_old(&self) {
        let stats = &self.shared.stats;
        match (self.query.window(), self.query.grouping()) {
            (Some(_), _) => stats.window_too_old.fetch_add(1, Relaxed),
            (None, Some(_)) => stats.group_too_old.fetch_add(1, Relaxed),
            (None, None) if self.query.clock() => stats.clock_too_old.fetch_add(1, Relaxed),
            (None, None) if self.is_join() => stats.join_too_old.fetch_add(1, Relaxed),
            (None, None) => 0,
        };
    }
}
