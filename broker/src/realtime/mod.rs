//! Realtime subscriptions: what a subscription receives and when. It owns the subscription
//! plans, reading snapshots and history from the log, the live feeds per partition and the
//! fan-out dispatcher; not the WebSocket protocol (`ws/`) nor who may subscribe to what (the
//! engine decides that when it compiles the plan).
//!
//! The path of a change: a statement commits (the engine calls [`Realtime::committed`]); the
//! partition's feed, if it has subscribers, is dispatched right there when that is cheap (few
//! new records with few candidate subscriptions each, and no one else dispatching it), else
//! queued for the dispatcher thread; dispatching reads the records after the feed's position
//! from a fresh snapshot, works out each
//! candidate subscription's change (`change.rs`) and pushes it into the connection's
//! [`Outbox`]. A new subscription first reads the log (snapshot, then the changes after its
//! boundary) and joins the feed at the point it has read to ([`Realtime::join`]).

mod change;
mod feed;
mod history;
mod keyed;
mod live_aggregate;
mod live_clock;
mod live_join;
mod live_view;
mod live_window;
mod outbox;
mod plan;
mod snapshot;
mod subscription;
mod tables;
mod tick;
mod window;

use parking_lot::{Condvar, Mutex};
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use strand_log::Seq;
use strand_sql_view::{BigIntJson, SelectPlan};

pub(crate) use change::{classify, ChangeKind};
pub use feed::{Join, PartitionFeed};
pub(crate) use history::VersionPair;
pub use history::{replay, HistoryError, Replayed};
pub use keyed::{KeyedCatchUp, KeyedOpen};
pub use outbox::{Outbox, OutboxReceiver};
pub use plan::SubscriptionPlan;
pub use snapshot::SnapshotCursor;
pub use subscription::LiveSubscription;
use tables::TableSubscriptions;
pub use tables::{schema_changed, TableEvent};
pub(crate) use tick::{applied_through, fresh_tick};

use crate::limits::{LIVE_CLOCK_INTERVAL_MS, SHARED_PROJECTIONS_MAX};
use crate::metrics::Metrics;
use crate::tables::versions::KeyedPartition;

/// What a subscription reads, as the engine compiled it for one caller: its plan, its
/// partition, and the feeds it joins.
pub struct SubscriptionTarget {
    pub plan: Arc<SubscriptionPlan>,
    pub partition: Arc<KeyedPartition>,
    pub realtime: Arc<Realtime>,
    /// What the table's partition ids start with (its name and incarnation), for
    /// [`Realtime::register`].
    pub table_prefix: String,
    /// What DDL did to each table it reads (the first, then a join's others): a resume from
    /// before it may be impossible.
    pub ddl: Vec<TableDdl>,
    /// A join's tables after the first: their partitions (as the caller reads them) and what
    /// their partition ids start with (DDL on them ends the subscription too).
    pub joined: Vec<Arc<KeyedPartition>>,
    pub joined_prefixes: Vec<String>,
}

/// One table's DDL marks, for refusing resumes across them.
pub struct TableDdl {
    pub name: String,
    /// The `_seq` that created the table, and the one that first created a table of its
    /// name: a resume from between the two names the history of a dropped namesake.
    pub created: Seq,
    pub name_first_created: Seq,
    /// For `SELECT *`: the `_seq` of the table's latest column change; a resume from between
    /// `created` and it holds rows without a column added since.
    pub columns_changed: Option<Seq>,
}

impl SubscriptionTarget {
    /// For `SELECT *`: the latest column change of any of its tables.
    pub fn columns_changed(&self) -> Option<Seq> {
        self.ddl
            .iter()
            .filter_map(|table| table.columns_changed)
            .max()
    }

    /// The lowest `_seq` a resume or AS OF can start from: every table's history is needed.
    pub fn lowest_resumable_seq(&self) -> Seq {
        std::iter::once(&self.partition)
            .chain(&self.joined)
            .map(|p| p.partition().lowest_resumable_seq())
            .max()
            .unwrap_or(Seq::ZERO)
    }
}

/// The feeds of all partitions with live subscriptions, and the dispatcher that serves them.
pub struct Realtime {
    feeds: Mutex<HashMap<PathBuf, Arc<PartitionFeed>>>,
    /// For each partition a join subscription reads beyond its own: the feeds to wake when it
    /// is written (`live_join.rs`).
    join_watchers: Mutex<HashMap<PathBuf, Vec<Weak<PartitionFeed>>>>,
    queue: Arc<DispatchQueue>,
    next_key: AtomicU64,
    /// One live plan per distinct SELECT list: new plans take its copy of the list, so
    /// subscriptions that differ only in their WHERE do not each hold one.
    projections: Mutex<Vec<Weak<SubscriptionPlan>>>,
    /// Every subscription by its table, so DDL can end them (`tables.rs`).
    tables: TableSubscriptions,
    /// For changes dispatched on the committing thread.
    metrics: Arc<Metrics>,
}

struct DispatchQueue {
    dirty: Mutex<VecDeque<Arc<PartitionFeed>>>,
    wake: Condvar,
    stop: AtomicBool,
}

impl Realtime {
    /// Start the dispatcher thread. It stops when the `Realtime` is dropped.
    pub fn start(metrics: Arc<Metrics>) -> Arc<Realtime> {
        let queue = Arc::new(DispatchQueue {
            dirty: Mutex::new(VecDeque::new()),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let worker = queue.clone();
        let worker_metrics = metrics.clone();
        let spawned = std::thread::Builder::new()
            .name("strand-fanout".into())
            .spawn(move || worker.run(&worker_metrics));
        if let Err(error) = spawned {
            tracing::error!(%error, "the realtime dispatcher thread did not start");
        }
        let realtime = Arc::new(Realtime {
            feeds: Mutex::new(HashMap::new()),
            join_watchers: Mutex::new(HashMap::new()),
            queue,
            next_key: AtomicU64::new(1),
            projections: Mutex::new(Vec::new()),
            tables: TableSubscriptions::default(),
            metrics,
        });
        let clock = Arc::downgrade(&realtime);
        let spawned = std::thread::Builder::new()
            .name("strand-clock".into())
            .spawn(move || Realtime::run_clock(&clock));
        if let Err(error) = spawned {
            tracing::error!(%error, "the realtime clock thread did not start");
        }
        realtime
    }

    /// The clock thread: every [`LIVE_CLOCK_INTERVAL_MS`], the feeds with a time-relative
    /// subscription whose rows are due move to a tick. Ends with the `Realtime`.
    fn run_clock(realtime: &Weak<Realtime>) {
        loop {
            std::thread::sleep(std::time::Duration::from_millis(LIVE_CLOCK_INTERVAL_MS));
            let Some(realtime) = realtime.upgrade() else {
                return;
            };
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
            let feeds: Vec<Arc<PartitionFeed>> = realtime.feeds.lock().values().cloned().collect();
            for feed in feeds.iter().filter(|feed| feed.clock_due(now)) {
                feed.advance_clocks(&realtime.metrics);
            }
        }
    }

    /// Wrap a compiled SELECT as a subscription plan, sharing its SELECT list with a live
    /// plan that has the same one.
    pub fn plan(
        &self,
        mut select: SelectPlan,
        expands_wildcard: bool,
        bigint: BigIntJson,
    ) -> Arc<SubscriptionPlan> {
        let mut projections = self.projections.lock();
        let mut shared = false;
        projections.retain(|weak| match weak.upgrade() {
            Some(plan) => {
                shared = shared || select.share_projection(plan.select());
                true
            }
            None => false,
        });
        let plan = Arc::new(SubscriptionPlan::new(select, expands_wildcard, bigint));
        if !shared && projections.len() < SHARED_PROJECTIONS_MAX {
            projections.push(Arc::downgrade(&plan));
        }
        plan
    }

    /// A statement committed records to `partition`: wake its feed, if it has one. Cheap
    /// when nobody subscribes (one map lookup); never waits for the dispatcher.
    pub fn committed(&self, partition: &KeyedPartition) {
        let feed = {
            let feeds = self.feeds.lock();
            feeds.get(partition.partition().dir()).cloned()
        };
        if let Some(feed) = feed {
            if !feed.try_dispatch_inline(&self.metrics) {
                self.queue.push(feed);
            }
        }
        let watchers: Vec<Arc<PartitionFeed>> = {
            let mut watchers = self.join_watchers.lock();
            match watchers.get_mut(partition.partition().dir()) {
                Some(feeds) => {
                    feeds.retain(|feed| feed.upgrade().is_some_and(|f| !f.is_retired()));
                    feeds.iter().filter_map(Weak::upgrade).collect()
                }
                None => Vec::new(),
            }
        };
        for feed in watchers {
            self.queue.push(feed);
        }
    }

    /// Wake every feed with a join subscription: on a cluster member a join reads up to the
    /// settled tick, which moves without a write to its tables (`cluster/ticks.rs`).
    pub fn wake_joins(&self) {
        let feeds: Vec<Arc<PartitionFeed>> = {
            let watchers = self.join_watchers.lock();
            let mut seen = std::collections::HashSet::new();
            watchers
                .values()
                .flatten()
                .filter_map(Weak::upgrade)
                .filter(|feed| !feed.is_retired() && seen.insert(Arc::as_ptr(feed)))
                .collect()
        };
        for feed in feeds {
            self.queue.push(feed);
        }
    }

    /// Register a new subscription of the table whose partitions start with `table_prefix`,
    /// so [`Realtime::table_changed`] can end it. A subscription to a table that was dropped
    /// (or whose columns changed under its `SELECT *`) after it was compiled ends here.
    pub fn register(&self, table_prefix: &str, subscription: &Arc<LiveSubscription>) {
        self.tables.register(table_prefix, subscription);
    }

    /// DDL changed the table whose partitions start with `table_prefix`: end the
    /// subscriptions the change breaks (all of them for a drop, `SELECT *` ones for new
    /// columns), each with an error saying why.
    pub fn table_changed(&self, table_prefix: &str, event: TableEvent) {
        self.tables.changed(table_prefix, event);
    }

    /// A process-unique handle for a new subscription.
    pub fn next_key(&self) -> u64 {
        self.next_key.fetch_add(1, Ordering::Relaxed)
    }

    /// Add `subscription`, which has been sent every change up to `upto`, to its partition's
    /// feed (remembered in the subscription, for [`LiveSubscription::end`]); or say up to
    /// where it must first read the log. A subscription ended meanwhile leaves again at once.
    pub fn join(&self, subscription: &Arc<LiveSubscription>, upto: Seq) -> Result<(), Seq> {
        loop {
            let feed = self.feed_of(&subscription.partition);
            match feed.join(subscription, upto) {
                Join::Joined => {
                    if !subscription.joined(feed.clone()) {
                        self.leave(&feed, subscription.key);
                        return Ok(());
                    }
                    self.watch_joined(subscription, &feed);
                    // A commit between the subscriber's last read and the join may have found
                    // no feed to wake: look once more.
                    self.queue.push(feed);
                    return Ok(());
                }
                Join::Behind { position } => return Err(position),
                Join::Retired => continue,
            }
        }
    }

    /// A join subscription's other tables wake its feed when written (registered before the
    /// feed is looked at once more, so no write between its catch-up and now is missed).
    fn watch_joined(&self, subscription: &LiveSubscription, feed: &Arc<PartitionFeed>) {
        if !feed::is_join(subscription) {
            return;
        }
        let mut watchers = self.join_watchers.lock();
        for partition in &subscription.joined {
            let feeds = watchers
                .entry(partition.partition().dir().to_path_buf())
                .or_default();
            feeds.retain(|f| f.upgrade().is_some_and(|f| !f.is_retired()));
            if !feeds.iter().any(|f| f.as_ptr() == Arc::as_ptr(feed)) {
                feeds.push(Arc::downgrade(feed));
            }
        }
    }

    /// Remove a subscription from its feed; an empty feed leaves the registry.
    pub fn leave(&self, feed: &Arc<PartitionFeed>, key: u64) {
        if feed.leave(key) {
            let mut feeds = self.feeds.lock();
            feeds.retain(|_, f| !Arc::ptr_eq(f, feed));
        }
    }

    fn feed_of(&self, partition: &Arc<KeyedPartition>) -> Arc<PartitionFeed> {
        let mut feeds = self.feeds.lock();
        let dir = partition.partition().dir();
        match feeds.get(dir) {
            Some(feed) if !feed.is_retired() => feed.clone(),
            _ => {
                let feed = Arc::new(PartitionFeed::new(partition.clone()));
                feeds.insert(dir.to_path_buf(), feed.clone());
                feed
            }
        }
    }
}

impl Drop for Realtime {
    fn drop(&mut self) {
        self.queue.stop.store(true, Ordering::Release);
        self.queue.wake.notify_all();
    }
}

impl DispatchQueue {
    fn push(&self, feed: Arc<PartitionFeed>) {
        if feed.mark_dirty() {
            let mut dirty = self.dirty.lock();
            dirty.push_back(feed);
            drop(dirty);
            self.wake.notify_one();
        }
    }

    fn run(&self, metrics: &Metrics) {
        loop {
            let feed = {
                let mut dirty = self.dirty.lock();
                loop {
                    if self.stop.load(Ordering::Acquire) {
                        return;
                    }
                    if let Some(feed) = dirty.pop_front() {
                        break feed;
                    }
                    self.wake.wait(&mut dirty);
                }
            };
            feed.dispatch(metrics);
        }
    }
}
