//! [`ConnectionLimits`]: how many client connections the server holds at once, counted across
//! HTTP (with WebSocket) and QUIC, and the caps that keep idle or hostile ones from exhausting
//! it (file descriptors, memory, the accept loop):
//!
//! - every open connection counts against `connections_max`;
//! - until it has authenticated, also against `unauthenticated_connections_max` (an HTTP
//!   connection authenticates with its first request that carries valid credentials, a
//!   WebSocket with its `authenticate` message or its upgrade request's header, a QUIC
//!   connection with `auth`);
//! - an authenticated WebSocket or QUIC connection also counts against its user's
//!   `connections_per_user_max` (plain HTTP connections carry no user between requests).
//!
//! A connection over `connections_max` or `connections_per_user_max` is refused at once and
//! cheaply: the caller answers it (HTTP 503 `too_many_connections`, a QUIC refusal) and closes
//! it. At `unauthenticated_connections_max`, the newcomer is admitted and the OLDEST
//! connection still unauthenticated is evicted instead ([`ConnectionSlot::evicted`] fires and
//! its server closes it): a flood of idle sockets then only pushes out its own oldest members,
//! while a legitimate client, which authenticates on its first request within milliseconds,
//! leaves the eviction queue long before its turn. The unauthenticated count may pass its cap
//! by the evictions still closing, at most [`EVICTIONS_IN_FLIGHT_MAX`]; past that a newcomer
//! is refused. Once authenticated, a connection is never evicted. Each count is held by a guard
//! ([`ConnectionSlot`], [`UserClaim`]) and given back when the guard drops, so no path can
//! leak a count.
//!
//! Owns the counting only; not the sockets, timeouts or answers (`server`, `http`, `ws`,
//! `quic`).

use std::collections::{HashMap, VecDeque};
use std::fmt::Write;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use strand_sql_view::UserName;

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::config::ConnectionConfig;
use crate::error::ErrorCode;
use crate::limits::{EVICTIONS_IN_FLIGHT_MAX, EVICTION_QUEUE_PRUNE_MIN};
use crate::throttle::RefusalThrottle;

/// The error code of a refused connection (HTTP 503, WebSocket and QUIC errors).
pub const TOO_MANY_CONNECTIONS: &str = ErrorCode::TooManyConnections.as_str();

/// Which cap refused a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionRefusal {
    #[error("the server holds its maximum of {0} connections; retry shortly")]
    Total(usize),
    #[error("the server holds its maximum of {0} unauthenticated connections; retry shortly")]
    Unauthenticated(usize),
    #[error("this user holds its maximum of {0} connections")]
    PerUser(usize),
}

/// The live counts and the caps they are held to.
pub struct ConnectionLimits {
    config: ConnectionConfig,
    total: AtomicUsize,
    unauthenticated: AtomicUsize,
    per_user: Mutex<HashMap<UserName, usize>>,
    /// Refusals so far, by cap: total, unauthenticated, per user (for `/metrics`).
    refused: [AtomicU64; 3],
    /// Unauthenticated connections in arrival order, the oldest first: who is evicted next.
    /// Entries of connections that authenticated, closed or were evicted are skipped (and
    /// pruned), not removed eagerly.
    eviction_queue: Mutex<VecDeque<Weak<SlotState>>>,
    /// Evicted connections not closed yet.
    evictions_in_flight: AtomicUsize,
    /// Evictions so far (for `/metrics`).
    evicted: AtomicU64,
    /// Slows users whose requests keep being refused; here because every front door
    /// (HTTP, QUIC) holds these limits.
    refusals: RefusalThrottle,
}

impl ConnectionLimits {
    pub fn new(config: ConnectionConfig) -> Arc<ConnectionLimits> {
        Arc::new(ConnectionLimits {
            config,
            total: AtomicUsize::new(0),
            unauthenticated: AtomicUsize::new(0),
            per_user: Mutex::new(HashMap::new()),
            refused: Default::default(),
            eviction_queue: Mutex::new(VecDeque::new()),
            evictions_in_flight: AtomicUsize::new(0),
            evicted: AtomicU64::new(0),
            refusals: RefusalThrottle::new(),
        })
    }

    /// The per-user throttle of requests refused for exceeding a limit.
    pub fn refusals(&self) -> &RefusalThrottle {
        &self.refusals
    }

    fn refused(&self, refusal: ConnectionRefusal) -> ConnectionRefusal {
        let cap = match refusal {
            ConnectionRefusal::Total(_) => 0,
            ConnectionRefusal::Unauthenticated(_) => 1,
            ConnectionRefusal::PerUser(_) => 2,
        };
        self.refused[cap].fetch_add(1, Ordering::Relaxed);
        refusal
    }

    /// The counts as Prometheus text: `strand_connections` and
    /// `strand_connections_unauthenticated` (gauges), `strand_connections_refused_total` by
    /// `cap` (`total`, `unauthenticated`, `per_user`), `strand_connections_evicted_total` and
    /// `strand_requests_held_total` (the refusal throttle).
    pub fn render_metrics(&self, out: &mut String) {
        let gauges = [
            (
                "strand_connections",
                "Open client connections (HTTP, WebSocket, QUIC).",
                self.open(),
            ),
            (
                "strand_connections_unauthenticated",
                "Open client connections not yet authenticated.",
                self.unauthenticated(),
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        let name = "strand_connections_refused_total";
        let _ = writeln!(
            out,
            "# HELP {name} Connections refused at a cap, by cap.\n# TYPE {name} counter"
        );
        for (cap, count) in ["total", "unauthenticated", "per_user"]
            .iter()
            .zip(&self.refused)
        {
            let count = count.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}{{cap=\"{cap}\"}} {count}");
        }
        let name = "strand_connections_evicted_total";
        let evicted = self.evicted.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP {name} Unauthenticated connections closed to admit a newer one.\n\
             # TYPE {name} counter\n{name} {evicted}"
        );
        let name = "strand_requests_held_total";
        let held = self.refusals.held();
        let _ = writeln!(
            out,
            "# HELP {name} Requests held for their turn because their user's requests keep \
             being refused for exceeding limits.\n# TYPE {name} counter\n{name} {held}"
        );
    }

    /// Evictions so far.
    #[cfg(test)]
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    pub fn config(&self) -> &ConnectionConfig {
        &self.config
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }

    /// Connections open now that have not authenticated yet.
    pub fn unauthenticated(&self) -> usize {
        self.unauthenticated.load(Ordering::Acquire)
    }

    /// Count a new, unauthenticated connection, or say which cap it would pass. At the
    /// unauthenticated cap, the oldest unauthenticated connection is evicted to make room.
    pub fn try_open(self: &Arc<Self>) -> Result<ConnectionSlot, ConnectionRefusal> {
        let total_max = self.config.connections_max;
        let unauthenticated_max = self.config.unauthenticated_connections_max;
        if !take_one(&self.total, total_max) {
            return Err(self.refused(ConnectionRefusal::Total(total_max)));
        }
        let state = Arc::new(SlotState::default());
        let mut queue = self.eviction_queue.lock();
        if !take_one(&self.unauthenticated, unauthenticated_max) {
            if !self.evict_oldest(&mut queue) {
                drop(queue);
                self.total.fetch_sub(1, Ordering::AcqRel);
                let refusal = ConnectionRefusal::Unauthenticated(unauthenticated_max);
                return Err(self.refused(refusal));
            }
            // Over the cap by the evictions still closing (bounded by the check above).
            self.unauthenticated.fetch_add(1, Ordering::AcqRel);
        }
        if queue.len() >= EVICTION_QUEUE_PRUNE_MIN.max(unauthenticated_max.saturating_mul(2)) {
            queue.retain(|entry| entry.upgrade().is_some_and(|slot| slot.evictable()));
        }
        queue.push_back(Arc::downgrade(&state));
        drop(queue);
        Ok(ConnectionSlot {
            limits: self.clone(),
            state,
        })
    }

    /// Signals the oldest connection in `queue` that is still unauthenticated to close, unless
    /// [`EVICTIONS_IN_FLIGHT_MAX`] are closing already or there is none. Whether it did.
    fn evict_oldest(&self, queue: &mut VecDeque<Weak<SlotState>>) -> bool {
        if self.evictions_in_flight.load(Ordering::Acquire) >= EVICTIONS_IN_FLIGHT_MAX {
            return false;
        }
        while let Some(entry) = queue.pop_front() {
            let Some(slot) = entry.upgrade() else {
                continue;
            };
            if !slot.evictable() {
                continue;
            }
            // Counted before the flag is set, so the slot's drop (which checks the flag)
            // always finds it counted. Should it authenticate at this very moment, it stays
            // open: `evicted()` never completes for an authenticated connection.
            self.evictions_in_flight.fetch_add(1, Ordering::AcqRel);
            slot.evicted.store(true, Ordering::Release);
            // One stored permit for a waiter yet to come, and a wake-up for any waiting now.
            slot.close.notify_waiters();
            slot.close.notify_one();
            self.evicted.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        false
    }

    /// Count one more connection of `user`, or refuse it at `connections_per_user_max`.
    pub fn claim_user(self: &Arc<Self>, user: &UserName) -> Result<UserClaim, ConnectionRefusal> {
        let max = self.config.connections_per_user_max;
        let mut per_user = self.per_user.lock();
        let count = per_user.entry(user.clone()).or_insert(0);
        if *count >= max {
            return Err(self.refused(ConnectionRefusal::PerUser(max)));
        }
        *count += 1;
        Ok(UserClaim {
            limits: self.clone(),
            user: user.clone(),
        })
    }
}

/// Adds one to `counter` unless it is at `max` already.
fn take_one(counter: &AtomicUsize, max: usize) -> bool {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .is_ok()
}

/// What the eviction queue sees of a connection's slot.
#[derive(Default)]
struct SlotState {
    authenticated: AtomicBool,
    /// Set (once) when the connection is chosen for eviction.
    evicted: AtomicBool,
    /// Notified when `evicted` is set.
    close: Notify,
}

impl SlotState {
    fn evictable(&self) -> bool {
        !self.authenticated.load(Ordering::Acquire) && !self.evicted.load(Ordering::Acquire)
    }
}

/// One open connection's count; given back on drop.
pub struct ConnectionSlot {
    limits: Arc<ConnectionLimits>,
    state: Arc<SlotState>,
}

impl ConnectionSlot {
    /// The connection authenticated: it no longer counts as unauthenticated and is never
    /// evicted. Idempotent.
    pub fn authenticated(&self) {
        if !self.state.authenticated.swap(true, Ordering::AcqRel) {
            self.limits.unauthenticated.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Completes when this connection has been evicted to make room for a newer
    /// unauthenticated one; whoever serves it must then close it. Never completes once the
    /// connection has authenticated first. Owns what it needs, so it may outlive `self`'s
    /// borrow (e.g. across a `select!` loop).
    pub fn evicted(&self) -> impl Future<Output = ()> + Send + 'static {
        let state = self.state.clone();
        async move {
            loop {
                // Created before the check, so a notification between the two is not lost.
                let notified = state.close.notified();
                if state.authenticated.load(Ordering::Acquire) {
                    std::future::pending::<()>().await;
                }
                if state.evicted.load(Ordering::Acquire) {
                    return;
                }
                notified.await;
            }
        }
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        if !self.state.authenticated.load(Ordering::Acquire) {
            self.limits.unauthenticated.fetch_sub(1, Ordering::AcqRel);
        }
        if self.state.evicted.load(Ordering::Acquire) {
            self.limits
                .evictions_in_flight
                .fetch_sub(1, Ordering::AcqRel);
        }
        self.limits.total.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One authenticated connection of a user; given back on drop.
pub struct UserClaim {
    limits: Arc<ConnectionLimits>,
    user: UserName,
}

impl Drop for UserClaim {
    fn drop(&mut self) {
        let mut per_user = self.limits.per_user.lock();
        if let Some(count) = per_user.get_mut(&self.user) {
            *count -= 1;
            if *count == 0 {
                per_user.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    fn is_evicted(slot: &ConnectionSlot) -> bool {
        slot.evicted().now_or_never().is_some()
    }

    fn limits(total: usize, unauthenticated: usize, per_user: usize) -> Arc<ConnectionLimits> {
        ConnectionLimits::new(ConnectionConfig {
            connections_max: total,
            unauthenticated_connections_max: unauthenticated,
            connections_per_user_max: per_user,
            ..ConnectionConfig::default()
        })
    }

    #[test]
    fn unauthenticated_connections_are_capped_until_they_authenticate() {
        let limits = limits(10, 2, 5);
        let first = limits.try_open().expect("first");
        let second = limits.try_open().expect("second");
        first.authenticated();
        first.authenticated();
        assert_eq!(limits.unauthenticated(), 1);
        let third = limits.try_open().expect("room again");
        assert_eq!((limits.open(), limits.unauthenticated()), (3, 2));
        assert!(!is_evicted(&second), "room without evicting anyone");
        assert_eq!(limits.evicted(), 0);
        drop(third);
        drop(second);
        drop(first);
        assert_eq!((limits.open(), limits.unauthenticated()), (0, 0));
    }

    #[test]
    fn at_the_unauthenticated_cap_the_oldest_is_evicted_first() {
        let limits = limits(10, 2, 5);
        let oldest = limits.try_open().expect("oldest");
        let middle = limits.try_open().expect("middle");
        let newcomer = limits.try_open().expect("admitted, not refused");
        assert!(is_evicted(&oldest), "the oldest is told to close");
        assert!(is_evicted(&oldest), "and stays told");
        assert!(!is_evicted(&middle));
        assert!(!is_evicted(&newcomer));
        assert_eq!(limits.evicted(), 1);
        assert_eq!(
            limits.unauthenticated(),
            3,
            "over the cap until the evicted one closes"
        );
        drop(oldest);
        assert_eq!(limits.evictions_in_flight.load(Ordering::Acquire), 0);
        let next = limits.try_open().expect("admitted");
        assert!(is_evicted(&middle), "then the next oldest");
        assert!(!is_evicted(&newcomer));
        drop((middle, newcomer, next));
        assert_eq!((limits.open(), limits.unauthenticated()), (0, 0));
        assert_eq!(limits.evictions_in_flight.load(Ordering::Acquire), 0);
    }

    #[test]
    fn an_authenticated_connection_is_never_evicted() {
        let limits = limits(10, 1, 5);
        let user = limits.try_open().expect("user");
        let attacker = limits.try_open().expect("attacker");
        user.authenticated();
        let newcomer = limits.try_open().expect("newcomer");
        assert!(is_evicted(&attacker), "the unauthenticated one goes");
        assert!(!is_evicted(&user), "the older, authenticated one stays");
        drop(attacker);
        let _again = limits.try_open().expect("again");
        assert!(is_evicted(&newcomer));
        assert!(!is_evicted(&user));
    }

    #[test]
    fn evictions_still_closing_are_bounded() {
        let limits = limits(100_000, 1, 5);
        let mut slots = vec![limits.try_open().expect("first")];
        for _ in 0..EVICTIONS_IN_FLIGHT_MAX {
            slots.push(limits.try_open().expect("evicts the oldest"));
        }
        assert_eq!(
            limits.try_open().err(),
            Some(ConnectionRefusal::Unauthenticated(1)),
            "no more while {EVICTIONS_IN_FLIGHT_MAX} evictions are closing"
        );
        drop(slots.remove(0));
        assert!(limits.try_open().is_ok(), "room once one closed");
    }

    #[test]
    fn an_evicted_waiter_is_woken() {
        let limits = limits(10, 1, 5);
        let first = limits.try_open().expect("first");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let evicted = tokio::spawn(first.evicted());
            tokio::task::yield_now().await;
            let _second = limits.try_open().expect("second");
            tokio::time::timeout(std::time::Duration::from_secs(30), evicted)
                .await
                .expect("woken")
                .expect("task");
        });
    }

    #[test]
    fn the_total_is_capped_whatever_the_state() {
        let limits = limits(2, 2, 5);
        let slots: Vec<_> = (0..2).map(|_| limits.try_open().expect("slot")).collect();
        assert_eq!(
            limits.try_open().err(),
            Some(ConnectionRefusal::Total(2)),
            "the total cap refuses, it does not evict"
        );
        assert!(!slots.iter().any(is_evicted));
        slots.iter().for_each(ConnectionSlot::authenticated);
        assert_eq!(limits.try_open().err(), Some(ConnectionRefusal::Total(2)));
        assert_eq!(
            limits.unauthenticated(),
            0,
            "a refusal leaves no count behind"
        );
        drop(slots);
        assert_eq!(limits.open(), 0);
    }

    #[test]
    fn each_user_is_capped_on_its_own() {
        let limits = limits(10, 10, 2);
        let alice = UserName::new("alice").expect("name");
        let bob = UserName::new("bob").expect("name");
        let claims: Vec<_> = (0..2)
            .map(|_| limits.claim_user(&alice).expect("claim"))
            .collect();
        assert_eq!(
            limits.claim_user(&alice).err(),
            Some(ConnectionRefusal::PerUser(2))
        );
        let _bob = limits.claim_user(&bob).expect("bob has his own count");
        drop(claims);
        assert!(limits.claim_user(&alice).is_ok(), "counts are given back");
        assert_eq!(
            limits.per_user.lock().get(&alice),
            None,
            "no entry is left behind"
        );
    }

    #[test]
    fn metrics_show_the_counts_and_the_refusals_by_cap() {
        let limits = limits(2, 1, 5);
        let _slot = limits.try_open().expect("slot");
        let _newer = limits.try_open().expect("evicts the first");
        assert!(limits.try_open().is_err());
        let mut text = String::new();
        limits.render_metrics(&mut text);
        assert!(text.contains("\nstrand_connections 2\n"), "{text}");
        assert!(
            text.contains("\nstrand_connections_unauthenticated 2\n"),
            "{text}"
        );
        assert!(
            text.contains("strand_connections_refused_total{cap=\"total\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("\nstrand_connections_evicted_total 1\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE strand_connections_evicted_total counter"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE strand_connections_refused_total counter"),
            "{text}"
        );
    }
}
