//! [`PartitionFeed`]: the live subscriptions of one partition and the fan-out of its
//! committed records to them. A record reaches only this partition's subscriptions (for a
//! USER table: one user's); among them, subscriptions whose filter pins a column to a few
//! values are found through an index on (column, value), so a write evaluates only those that
//! can match it plus the unpinned ones. A change's rows are encoded once per distinct
//! projection, then wrapped per subscriber.
//!
//! Invariant: every committed record with `_seq` greater than a subscription's cursor is
//! offered to it exactly once, in `_seq` order; records at or below the cursor (already
//! replayed from the log before it joined) are skipped.

use parking_lot::{Mutex, MutexGuard};
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use strand_log::{ReadFrom, ReadHold, Seq};
use strand_sql_view::encode_key;
use strand_wire::{codes, encode_change, ServerMessage};

use super::change::ChangeKind;
use super::history::{change_type, VersionPair};
use super::outbox::PushRefused;
use super::plan::SubscriptionPlan;
use super::subscription::LiveSubscription;
use super::tables::schema_changed;
use crate::limits::{INLINE_FANOUT_CANDIDATES_MAX, INLINE_FANOUT_RECORDS_MAX};
use crate::metrics::Metrics;
use crate::tables::versions::KeyedPartition;
use crate::tables::IndexKey;

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Default)]
struct FeedState {
    /// Every record up to here has been offered to the subscriptions present at the time.
    position: Seq,
    subscriptions: FastMap<u64, Arc<LiveSubscription>>,
    unpinned: Vec<u64>,
    pinned: FastMap<(usize, IndexKey), Subscribers>,
    /// Columns with at least one pinned subscription (and how many index entries use each).
    pinned_columns: Vec<(usize, usize)>,
    /// One plan per distinct projection, and how many subscriptions use it.
    projections: Vec<(Arc<SubscriptionPlan>, usize)>,
    /// Top-K, grouping and time-relative subscriptions among them.
    views: usize,
    /// Time-relative subscriptions among them (their view is a `LiveClock`).
    clocks: usize,
    /// Join subscriptions among them: woken on every dispatch, they read all their tables.
    joins: usize,
    /// Keeps compaction from removing what the feed has not offered yet (at `position`);
    /// released when the feed retires.
    hold: Option<ReadHold>,
}

/// The subscriptions pinned to one value: almost always one, kept without an allocation.
enum Subscribers {
    One(u64),
    /// Boxed: keeps the common `One` entry at 16 bytes (a bare `Vec` would make it 32).
    #[allow(clippy::box_collection)]
    Many(Box<Vec<u64>>),
}

impl Subscribers {
    fn add(&mut self, key: u64) {
        match self {
            Subscribers::One(first) => *self = Subscribers::Many(Box::new(vec![*first, key])),
            Subscribers::Many(keys) => keys.push(key),
        }
    }

    /// Remove `key`; true when none is left.
    fn remove(&mut self, key: u64) -> bool {
        match self {
            Subscribers::One(only) => *only == key,
            Subscribers::Many(keys) => {
                keys.retain(|k| *k != key);
                keys.is_empty()
            }
        }
    }

    fn as_slice(&self) -> &[u64] {
        match self {
            Subscribers::One(key) => std::slice::from_ref(key),
            Subscribers::Many(keys) => keys,
        }
    }
}

pub struct PartitionFeed {
    partition: Arc<KeyedPartition>,
    state: Mutex<FeedState>,
    dirty: AtomicBool,
    retired: AtomicBool,
    notified_at: Mutex<Option<Instant>>,
}

/// Whether a subscription joined, or must first read the log up to the feed's position.
pub enum Join {
    Joined,
    Behind { position: Seq },
    Retired,
}

impl PartitionFeed {
    pub fn new(partition: Arc<KeyedPartition>) -> PartitionFeed {
        let (hold, position) = partition.partition().hold_reads_from_now();
        PartitionFeed {
            partition,
            state: Mutex::new(FeedState {
                position,
                hold: Some(hold),
                ..FeedState::default()
            }),
            dirty: AtomicBool::new(false),
            retired: AtomicBool::new(false),
            notified_at: Mutex::new(None),
        }
    }

    fn lock(&self) -> MutexGuard<'_, FeedState> {
        self.state.lock()
    }

    pub fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }

    /// Mark the feed as having new records; true if it was not marked yet (queue it then).
    pub fn mark_dirty(&self) -> bool {
        let mut notified = self.notified_at.lock();
        notified.get_or_insert_with(Instant::now);
        !self.dirty.swap(true, Ordering::AcqRel)
    }

    /// Add `subscription`, which has been sent everything up to `upto`, if the feed has not
    /// offered anything newer yet.
    pub fn join(&self, subscription: &Arc<LiveSubscription>, upto: Seq) -> Join {
        let mut state = self.lock();
        if self.is_retired() {
            return Join::Retired;
        }
        if state.position > upto {
            return Join::Behind {
                position: state.position,
            };
        }
        subscription.cursor.store(upto.0, Ordering::Release);
        state.add(subscription.clone());
        Join::Joined
    }

    /// Remove a subscription; returns true when the feed is now empty and retired.
    pub fn leave(&self, key: u64) -> bool {
        let mut state = self.lock();
        state.remove(key);
        if state.subscriptions.is_empty() {
            self.retired.store(true, Ordering::Release);
            state.hold = None;
            return true;
        }
        false
    }

    /// Offer every record committed after the feed's position to its subscriptions.
    pub fn dispatch(&self, metrics: &Metrics) {
        self.dirty.store(false, Ordering::Release);
        let notified = self.notified_at.lock().take();
        let mut state = self.lock();
        self.offer(&mut state, metrics, notified, None);
        if state.joins > 0 {
            self.advance_joins(&state);
        }
    }

    /// [`PartitionFeed::dispatch`] on the committing thread, when it is cheap: only if no
    /// one else is dispatching this feed right now, and only while the records to offer are
    /// few and each has few candidate subscriptions ([`INLINE_FANOUT_CANDIDATES_MAX`],
    /// [`INLINE_FANOUT_RECORDS_MAX`]). Returns false when records are left for the dispatcher
    /// thread. Why: the hand-over to the dispatcher thread is a thread wake-up per write,
    /// a large part of a small fan-out's latency on a busy machine.
    pub fn try_dispatch_inline(&self, metrics: &Metrics) -> bool {
        let committed_at = Instant::now();
        let Some(mut state) = self.state.try_lock() else {
            return false;
        };
        if state.unpinned.len() > INLINE_FANOUT_CANDIDATES_MAX {
            // Every record would be over budget: leave the feed at once, without reading.
            return false;
        }
        if state.views > 0 {
            // A top-K window may read its table (waiting for the partition's writers): never
            // on a committing thread.
            return false;
        }
        let records_max = Some(INLINE_FANOUT_RECORDS_MAX);
        self.offer(&mut state, metrics, Some(committed_at), records_max)
    }

    /// Offer the records after the feed's position; with `records_max`, stop before a record
    /// past that count or with more than [`INLINE_FANOUT_CANDIDATES_MAX`] candidates, and
    /// return false (the rest is left for [`PartitionFeed::dispatch`]).
    fn offer(
        &self,
        state: &mut MutexGuard<'_, FeedState>,
        metrics: &Metrics,
        notified: Option<Instant>,
        records_max: Option<usize>,
    ) -> bool {
        if self.is_retired() {
            return true;
        }
        let snapshot = self.partition.snapshot();
        if snapshot.last_seq() <= state.position {
            return true;
        }
        let lowest = self.partition.partition().lowest_resumable_seq();
        if lowest > state.position {
            // Records the feed had not offered were removed: by retention (which waits for
            // no reader), or by compaction once the feed fell further behind than the log
            // holds for a reader (`strand_log::limits::READ_HOLD_AGE_MAX_MS`).
            let error = format!("history up to _seq {lowest} was removed");
            let position = state.position;
            self.interrupt(state, position, &error);
            return true;
        }
        let mut finished = true;
        let mut offered = 0usize;
        let mut candidates: Vec<u64> = Vec::new();
        let mut encoded: Vec<(usize, ChangeKind, String, Option<String>)> = Vec::new();
        let mut slow: Vec<u64> = Vec::new();
        let mut delivered = 0u64;
        for record in snapshot.records(ReadFrom::After(state.position)) {
            // Never skip a record: a subscriber would miss a change without knowing it.
            let pair = match record {
                Ok(record) => {
                    VersionPair::of(&snapshot, &record).map_err(|e| (record.seq, e.to_string()))
                }
                Err(error) => Err((state.position, error.to_string())),
            };
            let pair = match pair {
                Ok(pair) => pair,
                Err((seq, error)) => {
                    self.interrupt(state, seq, &error);
                    break;
                }
            };
            state.candidates(&pair, &mut candidates);
            if let Some(max) = records_max {
                offered += 1;
                if offered > max || candidates.len() > INLINE_FANOUT_CANDIDATES_MAX {
                    finished = false;
                    break;
                }
            }
            state.position = pair.seq;
            encoded.clear();
            for key in &candidates {
                let Some(subscription) = state.subscriptions.get(key) else {
                    continue;
                };
                if !subscription.is_active()
                    || pair.seq.0 <= subscription.cursor.load(Ordering::Acquire)
                {
                    continue;
                }
                subscription.cursor.store(pair.seq.0, Ordering::Release);
                if subscription.plan.outdated_by(&pair) {
                    // Written after ADD COLUMN, before the DDL reached this subscription.
                    let message = schema_changed(&subscription.id, &subscription.plan);
                    subscription.end_with(&message);
                    continue;
                }
                if let Some(window) = &subscription.view {
                    let applied = window.lock().apply(&pair);
                    let text = match applied {
                        Ok(Some(change)) => change.encode(&subscription.id, pair.seq),
                        Ok(None) => continue,
                        Err(error) => {
                            let message = window_interrupted(&subscription.id, pair.seq, &error);
                            subscription.end_with(&message);
                            continue;
                        }
                    };
                    match subscription.push_if_active(text) {
                        Ok(()) => delivered += 1,
                        Err(PushRefused::Slow) => slow.push(*key),
                        Err(PushRefused::Closed) => {}
                    }
                    continue;
                }
                let Some(kind) = pair.change_for(&subscription.plan) else {
                    continue;
                };
                let projection = subscription.projection.load(Ordering::Relaxed);
                let found = encoded
                    .iter()
                    .position(|(p, k, _, _)| *p == projection && *k == kind);
                let slot = match found {
                    Some(slot) => slot,
                    None => {
                        let (rows, old) = pair.rows_json(&subscription.plan, kind);
                        encoded.push((projection, kind, rows, old));
                        encoded.len() - 1
                    }
                };
                let (_, _, rows, old) = &encoded[slot];
                let text = encode_change(&subscription.id, change_type(kind), rows, old.as_deref());
                match subscription.push_if_active(text) {
                    Ok(()) => delivered += 1,
                    Err(PushRefused::Slow) => slow.push(*key),
                    // Ended meanwhile (or its connection is gone): nothing more for it.
                    Err(PushRefused::Closed) => {}
                }
            }
        }
        if let Some(hold) = &state.hold {
            hold.advance(state.position);
        }
        metrics.changes_delivered(delivered, notified.map(|at| at.elapsed()));
        for key in slow {
            // The connection closes; its subscriptions leave when it does.
            if let Some(subscription) = state.subscriptions.get(&key) {
                subscription.deactivate();
            }
        }
        finished
    }
}

impl PartitionFeed {
    /// The record after `at` (or its previous version) cannot be read: end every subscription
    /// of the feed with an error that tells the client to resume (or subscribe again), and
    /// retire the feed, so that later subscribers read the log themselves and meet the same
    /// error instead of a feed that silently skipped a record.
    fn interrupt(&self, state: &mut FeedState, at: Seq, error: &str) {
        tracing::error!(partition = %self.partition.partition().dir().display(), seq = at.0,
            %error, subscriptions = state.subscriptions.len(),
            "realtime feed cannot read a record; ending its subscriptions");
        for subscription in state.subscriptions.values() {
            let message = ServerMessage::error(
                Some(&subscription.id),
                codes::SUBSCRIPTION_INTERRUPTED,
                format!(
                    "the server could not read a change after _seq {at} of this subscription's \
                     data ({error}); resume from the last _seq received, or subscribe again"
                ),
            );
            subscription.end_with(&message);
        }
        self.retired.store(true, Ordering::Release);
        state.hold = None;
    }
}

/// A top-K window could not read its table for the write at `seq`: the subscription ends,
/// and the client resumes (never a gap).
fn window_interrupted(id: &str, seq: Seq, error: &dyn std::fmt::Display) -> ServerMessage {
    tracing::error!(subscription = id, seq = seq.0, %error, "top-K window cannot read its table");
    ServerMessage::error(
        Some(id),
        codes::SUBSCRIPTION_INTERRUPTED,
        format!(
            "the server could not read this subscription's table at _seq {seq} ({error}); \
             resume from the last _seq received, or subscribe again"
        ),
    )
}

impl FeedState {
    fn add(&mut self, subscription: Arc<LiveSubscription>) {
        let key = subscription.key;
        self.views += usize::from(subscription.view.is_some());
        self.clocks += usize::from(is_clock(&subscription));
        self.joins += usize::from(is_join(&subscription));
        match subscription.plan.pinned() {
            Some(pinned) => {
                for value in &pinned.keys {
                    match self.pinned.entry((pinned.column, value.clone())) {
                        Entry::Occupied(mut list) => list.get_mut().add(key),
                        Entry::Vacant(slot) => {
                            slot.insert(Subscribers::One(key));
                        }
                    }
                }
                match self
                    .pinned_columns
                    .iter_mut()
                    .find(|(c, _)| *c == pinned.column)
                {
                    Some((_, users)) => *users += 1,
                    None => self.pinned_columns.push((pinned.column, 1)),
                }
            }
            None => {
                subscription
                    .slot
                    .store(self.unpinned.len(), Ordering::Relaxed);
                self.unpinned.push(key);
            }
        }
        let plan = &subscription.plan;
        let projection = match self
            .projections
            .iter()
            .position(|(p, _)| p.same_rows_json(plan))
        {
            Some(index) => index,
            None => {
                self.projections.push((plan.clone(), 0));
                self.projections.len() - 1
            }
        };
        self.projections[projection].1 += 1;
        subscription.projection.store(projection, Ordering::Relaxed);
        self.subscriptions.insert(key, subscription);
    }

    fn remove(&mut self, key: u64) {
        let Some(subscription) = self.subscriptions.remove(&key) else {
            return;
        };
        subscription.deactivate();
        self.views -= usize::from(subscription.view.is_some());
        self.clocks -= usize::from(is_clock(&subscription));
        self.joins -= usize::from(is_join(&subscription));
        match subscription.plan.pinned() {
            Some(pinned) => {
                for value in &pinned.keys {
                    let entry = (pinned.column, value.clone());
                    if self
                        .pinned
                        .get_mut(&entry)
                        .is_some_and(|list| list.remove(key))
                    {
                        self.pinned.remove(&entry);
                    }
                }
                if let Some(slot) = self
                    .pinned_columns
                    .iter()
                    .position(|(c, _)| *c == pinned.column)
                {
                    self.pinned_columns[slot].1 -= 1;
                    if self.pinned_columns[slot].1 == 0 {
                        self.pinned_columns.swap_remove(slot);
                    }
                }
            }
            None => {
                // O(1): the last unpinned subscription takes the removed one's place.
                let slot = subscription.slot.load(Ordering::Relaxed);
                if self.unpinned.get(slot) == Some(&key) {
                    self.unpinned.swap_remove(slot);
                    if let Some(moved) = self.unpinned.get(slot) {
                        if let Some(moved) = self.subscriptions.get(moved) {
                            moved.slot.store(slot, Ordering::Relaxed);
                        }
                    }
                }
            }
        }
        let projection = subscription.projection.load(Ordering::Relaxed);
        // Entries are never reordered, so indexes stay valid; an unused plan stays until the
        // feed retires (a handful per feed at most).
        if let Some(entry) = self.projections.get_mut(projection) {
            entry.1 = entry.1.saturating_sub(1);
        }
    }

    /// The subscriptions that may care about this write: the unpinned ones, and the pinned
    /// ones whose column holds a pinned value in the old or the new version.
    fn candidates(&self, pair: &VersionPair<'_>, out: &mut Vec<u64>) {
        out.clear();
        out.extend_from_slice(&self.unpinned);
        for &(column, _) in &self.pinned_columns {
            for version in [pair.old.as_ref(), pair.new.as_ref()].into_iter().flatten() {
                let Some(value) = encode_key(version.row.field(column)) else {
                    continue;
                };
                if let Some(keys) = self.pinned.get(&(column, IndexKey::new(&value))) {
                    out.extend_from_slice(keys.as_slice());
                }
            }
        }
        if !self.pinned_columns.is_empty() {
            out.sort_unstable();
            out.dedup();
        }
    }
}

mod views;
use views::is_clock;
pub use views::is_join;

#[cfg(test)]
mod tests;
