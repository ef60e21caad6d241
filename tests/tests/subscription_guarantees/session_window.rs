//! [`Session`] with a top-K query (docs/websocket.md, "Top-K subscriptions"): each `change`
//! is one write, applied and checked in itself by `View::apply_window`, and the copy after it
//! is kept; a check compares those copies with the model's window after each write that changed
//! it since the last check (`session_check.rs`). So a window subscriber must receive exactly
//! one message per write that changed its window (none for one that did not, no two writes in
//! one, none left out, also across a resume), each leaving it with exactly the model's rows;
//! its snapshot must come in the window's order; and its resumes are exact (never a keyed
//! catch-up: `Session::resume`) or `resume_too_old`. Its liveness target is the last write
//! that changed its window ([`Session::owed`]).

use std::collections::BTreeSet;
use std::sync::atomic::Ordering::Relaxed;

use strand_wire::{ChangeType, Row};

use super::Session;
use crate::model::{key_of, History, Window};

impl Session<'_> {
    /// The query's window: the caller knows it is a top-K query.
    fn window(&self) -> &Window {
        match self.query.window() {
            Some(window) => window,
            None => self.fail("a window check of a query without LIMIT"),
        }
    }

    /// Apply a window's `change` (`seq`: its top-level `"seq"`) and count it.
    pub(super) fn apply_window_change(
        &mut self,
        kind: ChangeType,
        seq: Option<u64>,
        rows: &[Row],
        old_rows: Option<&[Row]>,
    ) {
        let limit = self.window().limit();
        if let Err(e) = self.view.apply_window(kind, seq, rows, old_rows, limit) {
            self.fail(&e);
        }
        let stats = &self.shared.stats;
        stats.changes.fetch_add(1, Relaxed);
        stats.window_changes.fetch_add(1, Relaxed);
        if self.view.last <= self.replay_upto {
            stats.window_replayed.fetch_add(1, Relaxed);
        }
        let keys = |rows: &[Row]| {
            rows.iter()
                .map(|row| key_of(row).ok())
                .collect::<BTreeSet<_>>()
        };
        if kind == ChangeType::Update && old_rows.is_some_and(|old| keys(old) != keys(rows)) {
            // A row left and another entered: more than a row changing in place.
            stats.window_reshaped.fetch_add(1, Relaxed);
        }
    }

    /// The last `_seq` at or below `upto` that the session is owed: of a write that sends it a
    /// change (for a window: that changed the window; for a grouping query: that changed some
    /// group's row; which the model knows from the session's last `_seq` on, checked by
    /// [`Session::check_window`]).
    pub(super) fn owed(&self, history: &History, upto: u64) -> u64 {
        if !self.query.per_write() {
            return history.last_relevant(&self.query, upto);
        }
        let from = self.view.last.min(upto);
        history.last_window_change(&self.query, self.added, from, upto)
    }
}
