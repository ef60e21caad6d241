//! The feed's part in the subscriptions whose view moves on more than their own partition's
//! records: time-relative ones (moved to a tick by the clock thread) and joins (woken by a
//! write to any of their tables, they read all of them).

use std::sync::atomic::Ordering;
use std::time::Duration;

use strand_log::Seq;

use super::{window_interrupted, FeedState, PartitionFeed};
use crate::limits::LIVE_CLOCK_SETTLE_WAIT_MS;
use crate::metrics::Metrics;
use crate::realtime::live_clock::time_of;
use crate::realtime::live_view::LiveView;
use crate::realtime::outbox::PushRefused;
use crate::realtime::subscription::LiveSubscription;
use crate::realtime::tick::settled_tick;

/// Whether the subscription is a join (its view reads several partitions).
pub fn is_join(subscription: &LiveSubscription) -> bool {
    subscription
        .view
        .as_ref()
        .is_some_and(|view| matches!(*view.lock(), LiveView::Join(_)))
}

/// Whether the subscription's result moves with time (`now()` in its WHERE).
pub(super) fn is_clock(subscription: &LiveSubscription) -> bool {
    subscription
        .view
        .as_ref()
        .is_some_and(|view| matches!(*view.lock(), LiveView::Clock(_)))
}

impl PartitionFeed {
    /// Whether a time-relative subscription of this feed has a row due to enter or leave at
    /// `now` (microseconds since the Unix epoch).
    pub fn clock_due(&self, now: i64) -> bool {
        let state = self.lock();
        state.clocks > 0
            && state.subscriptions.values().any(|subscription| {
                subscription.view.as_ref().is_some_and(|view| {
                    view.lock()
                        .next_deadline()
                        .is_some_and(|deadline| deadline <= now)
                })
            })
    }

    /// Let time pass for the time-relative subscriptions: take a tick of the log, wait until
    /// every record below it is published, offer those records, then move each subscription
    /// to the tick, one message each where rows entered or left. False when the tick did not
    /// settle within [`LIVE_CLOCK_SETTLE_WAIT_MS`] (the next round tries again).
    pub fn advance_clocks(&self, metrics: &Metrics) -> bool {
        let wait = Duration::from_millis(LIVE_CLOCK_SETTLE_WAIT_MS);
        let tick = match settled_tick(&self.partition, wait) {
            Ok(Some(tick)) => tick,
            Ok(None) => return false,
            Err(error) => {
                tracing::warn!(%error, "no tick for time-relative subscriptions");
                return false;
            }
        };
        let mut state = self.lock();
        self.offer(&mut state, metrics, None, None);
        let mut slow = Vec::new();
        for (key, subscription) in &state.subscriptions {
            let Some(view) = &subscription.view else {
                continue;
            };
            if !subscription.is_active() || tick.0 <= subscription.cursor.load(Ordering::Acquire) {
                continue;
            }
            let mut view = view.lock();
            let due = view
                .next_deadline()
                .is_some_and(|deadline| deadline <= time_of(tick));
            if !due {
                continue;
            }
            subscription.cursor.store(tick.0, Ordering::Release);
            let text = match view.advance(tick) {
                Ok(Some(change)) => change.encode(&subscription.id, tick),
                Ok(None) => continue,
                Err(error) => {
                    let message = window_interrupted(&subscription.id, tick, &error);
                    subscription.end_with(&message);
                    continue;
                }
            };
            match subscription.push_if_active(text) {
                Ok(()) => {}
                Err(PushRefused::Slow) => slow.push(*key),
                Err(PushRefused::Closed) => {}
            }
        }
        for key in slow {
            if let Some(subscription) = state.subscriptions.get(&key) {
                subscription.deactivate();
            }
        }
        true
    }

    /// Bring every join subscription up to now: each reads its tables after its position
    /// (`live_join.rs`), whichever of them was written.
    pub(super) fn advance_joins(&self, state: &FeedState) {
        for subscription in state.subscriptions.values() {
            let Some(view) = &subscription.view else {
                continue;
            };
            if !subscription.is_active() {
                continue;
            }
            let mut view = view.lock();
            if !matches!(*view, LiveView::Join(_)) {
                continue;
            }
            match view.advance_join() {
                Ok(messages) => {
                    for (seq, change) in messages {
                        let text = change.encode(&subscription.id, seq);
                        if let Err(PushRefused::Slow) = subscription.push_if_active(text) {
                            subscription.deactivate();
                            break;
                        }
                    }
                }
                Err(error) => {
                    let seq = view.as_of().unwrap_or(Seq::ZERO);
                    let message = window_interrupted(&subscription.id, seq, &error);
                    subscription.end_with(&message);
                }
            }
        }
    }
}
