//! [`LiveSubscription`]: one subscription as realtime sees it, from its snapshot to its end.
//!
//! A subscription's messages have one producer at a time (the connection while it pages the
//! snapshot, then the catch-up task, then the partition's feed), but it can be ended from
//! anywhere: by its connection, by the feed when a record cannot be read, by DDL on its table.
//! Every message for it therefore goes through [`LiveSubscription::push_if_active`], which
//! checks and pushes under the subscription's own gate, and [`LiveSubscription::end_with`]
//! deactivates and pushes the final error under the same gate. So the error is always the
//! subscription's last message: nothing is queued for it afterwards.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use strand_wire::ServerMessage;
use tokio::sync::mpsc;

use super::feed::PartitionFeed;
use super::live_view::LiveView;
use super::outbox::{Outbox, PushRefused};
use super::plan::SubscriptionPlan;
use crate::tables::versions::KeyedPartition;

/// A subscription that receives its partition's changes as they commit.
pub struct LiveSubscription {
    /// Unique in the process: the feed's handle for it.
    pub key: u64,
    /// The client's id for it.
    pub id: Arc<str>,
    pub plan: Arc<SubscriptionPlan>,
    /// The partition it reads (the caller's, for USER tables).
    pub partition: Arc<KeyedPartition>,
    /// For a top-K or grouping subscription: its window or groups, used by one producer at a
    /// time (the snapshot, the catch-up, then the feed).
    pub view: Option<Mutex<LiveView>>,
    /// A join's other tables' partitions (empty otherwise).
    pub joined: Vec<Arc<KeyedPartition>>,
    pub outbox: Outbox,
    /// Tells the connection that the server ended this subscription (by its key), so the id
    /// is free again.
    ended: mpsc::UnboundedSender<u64>,
    /// The feed it joined, once its catch-up is done. Its lock is also the gate every push
    /// for this subscription passes (see the module documentation).
    feed: Mutex<Option<Arc<PartitionFeed>>>,
    pub(super) cursor: AtomicU64,
    active: AtomicBool,
    /// Where it sits in its feed's unpinned list (unpinned subscriptions only).
    pub(super) slot: AtomicUsize,
    /// Its feed's index of its projection.
    pub(super) projection: AtomicUsize,
}

impl LiveSubscription {
    pub fn new(
        key: u64,
        id: Arc<str>,
        plan: Arc<SubscriptionPlan>,
        partition: Arc<KeyedPartition>,
        outbox: Outbox,
        ended: mpsc::UnboundedSender<u64>,
        joined: &[Arc<KeyedPartition>],
    ) -> Self {
        let view = LiveView::new(&plan, &partition, joined).map(Mutex::new);
        LiveSubscription {
            key,
            id,
            plan,
            partition,
            view,
            joined: joined.to_vec(),
            outbox,
            ended,
            feed: Mutex::new(None),
            cursor: AtomicU64::new(0),
            active: AtomicBool::new(true),
            slot: AtomicUsize::new(usize::MAX),
            projection: AtomicUsize::new(usize::MAX),
        }
    }

    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// Stop sending: the dispatcher skips it from now on, even before it leaves the feed.
    pub fn deactivate(&self) {
        self.active.store(false, Ordering::Release);
    }

    /// Queue `text` for the client unless the subscription has ended; `Closed` if it has.
    pub fn push_if_active(&self, text: String) -> Result<(), PushRefused> {
        let _gate = self.feed.lock();
        if !self.is_active() {
            return Err(PushRefused::Closed);
        }
        self.outbox.push(text)
    }

    /// [`LiveSubscription::push_if_active`] for producers that can wait for room (snapshot
    /// batches, replay): waits while the connection's queue is over half full first.
    pub async fn push_when_room(&self, text: String) -> Result<(), PushRefused> {
        self.outbox.wait_for_room().await?;
        self.push_if_active(text)
    }

    /// End the subscription from the server's side: `message` (an error naming why) is the
    /// last thing the client receives for it, and its connection is told to forget it.
    /// Returns false if it had ended already.
    /// The feed's dispatcher may call it while holding its feed's lock (the gate is taken
    /// after that lock everywhere, never before it).
    pub fn end_with(&self, message: &ServerMessage) -> bool {
        let _gate = self.feed.lock();
        if !self.active.swap(false, Ordering::AcqRel) {
            return false;
        }
        tracing::debug!(subscription = %self.id, key = self.key, ?message,
            "subscription ended by the server");
        // Refused only when the connection is slow or gone; it closes either way.
        let _ = self.outbox.push(message.encode());
        let _ = self.ended.send(self.key);
        true
    }

    /// Remember the feed it joined, unless it was deactivated meanwhile (then the caller
    /// must leave the feed again): false in that case.
    pub fn joined(&self, feed: Arc<PartitionFeed>) -> bool {
        let mut slot = self.feed.lock();
        if !self.is_active() {
            return false;
        }
        *slot = Some(feed);
        true
    }

    /// Deactivate it and take the feed it joined, if any, to leave it.
    pub fn end(&self) -> Option<Arc<PartitionFeed>> {
        let mut slot = self.feed.lock();
        self.deactivate();
        slot.take()
    }
}
