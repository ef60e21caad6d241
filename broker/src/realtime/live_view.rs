//! [`LiveView`]: the state a subscription keeps beyond its filter, when its result is not a
//! plain set of matching rows: a top-K window (`live_window.rs`) or live groups
//! (`live_aggregate.rs`). Both fill themselves as of a `_seq`, show their rows for a snapshot,
//! and turn each written record into at most one message.

use std::sync::Arc;

use serde_json::{Map, Value as Json};
use strand_log::Seq;

use super::history::{HistoryError, VersionPair};
use super::live_aggregate::LiveAggregate;
use super::live_clock::LiveClock;
use super::live_join::LiveJoinView;
use super::live_window::{LiveWindow, WindowChange};
use super::plan::SubscriptionPlan;
use crate::tables::versions::KeyedPartition;

pub enum LiveView {
    Window(LiveWindow),
    Groups(LiveAggregate),
    Clock(LiveClock),
    Join(LiveJoinView),
}

impl LiveView {
    /// The view `plan` needs, if any (a plain filter needs none).
    pub fn new(
        plan: &Arc<SubscriptionPlan>,
        partition: &Arc<KeyedPartition>,
        joined: &[Arc<KeyedPartition>],
    ) -> Option<Self> {
        if let Some(join) = LiveJoinView::new(plan, partition, joined) {
            return Some(LiveView::Join(join));
        }
        if let Some(groups) = LiveAggregate::new(plan, partition) {
            return Some(LiveView::Groups(groups));
        }
        if let Some(clock) = LiveClock::new(plan, partition) {
            return Some(LiveView::Clock(clock));
        }
        LiveWindow::new(plan, partition).map(LiveView::Window)
    }

    /// Where it is, once filled: every write up to it has been applied.
    pub fn as_of(&self) -> Option<Seq> {
        match self {
            LiveView::Window(window) => window.as_of(),
            LiveView::Groups(groups) => groups.as_of(),
            LiveView::Clock(clock) => clock.as_of(),
            LiveView::Join(join) => join.as_of(),
        }
    }

    /// Fill it as of `as_of`, reading the log; returns the records read.
    pub fn fill(&mut self, as_of: Seq) -> Result<u64, HistoryError> {
        match self {
            LiveView::Window(window) => window.fill(as_of),
            LiveView::Groups(groups) => groups.fill(as_of),
            LiveView::Clock(clock) => clock.fill(as_of),
            LiveView::Join(join) => join.fill(as_of),
        }
    }

    /// Its rows, for the snapshot.
    pub fn rows_json(&self) -> Result<Vec<Map<String, Json>>, HistoryError> {
        match self {
            LiveView::Window(window) => window.rows_json(),
            LiveView::Groups(groups) => groups.rows_json(),
            LiveView::Clock(clock) => clock.rows_json(),
            LiveView::Join(join) => join.rows_json(),
        }
    }

    /// For a time-relative subscription: when it next needs the clock to move on.
    pub fn next_deadline(&self) -> Option<i64> {
        match self {
            LiveView::Clock(clock) => clock.next_deadline(),
            _ => None,
        }
    }

    /// Let time pass up to `tick` (see `live_clock.rs`): the message, if the result changed.
    pub fn advance(&mut self, tick: Seq) -> Result<Option<WindowChange>, HistoryError> {
        match self {
            LiveView::Clock(clock) => clock.advance(tick),
            _ => Ok(None),
        }
    }

    /// For a join: the messages of every write to its tables since its position, in order.
    pub fn advance_join(&mut self) -> Result<Vec<(Seq, WindowChange)>, HistoryError> {
        match self {
            LiveView::Join(join) => join.advance(),
            _ => Ok(Vec::new()),
        }
    }

    /// The lowest `_seq` it can be filled as of beyond its own partition's floor (a join's
    /// other tables).
    pub fn resume_floor(&self) -> Seq {
        match self {
            LiveView::Join(join) => join.resume_floor(),
            _ => Seq::ZERO,
        }
    }

    /// Apply one written record: the message for the client, if its result changed.
    pub fn apply(&mut self, pair: &VersionPair<'_>) -> Result<Option<WindowChange>, HistoryError> {
        match self {
            LiveView::Window(window) => window.apply(pair),
            LiveView::Groups(groups) => groups.apply(pair),
            LiveView::Clock(clock) => clock.apply(pair),
            // A join reads all its tables itself, in one order (`advance_join`).
            LiveView::Join(_) => Ok(None),
        }
    }
}
