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
//! A connection over a cap is refused at once and cheaply: the caller answers it (HTTP 503
//! `too_many_connections`, a QUIC refusal) and closes it. Each count is held by a guard
//! ([`ConnectionSlot`], [`UserClaim`]) and given back when the guard drops, so no path can
//! leak a count.
//!
//! Owns the counting only; not the sockets, timeouts or answers (`server`, `http`, `ws`,
//! `quic`).

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::config::ConnectionConfig;
use crate::users::UserName;

/// The error code of a refused connection (HTTP 503, WebSocket and QUIC errors).
pub const TOO_MANY_CONNECTIONS: &str = "too_many_connections";

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
}

impl ConnectionLimits {
    pub fn new(config: ConnectionConfig) -> Arc<ConnectionLimits> {
        Arc::new(ConnectionLimits {
            config,
            total: AtomicUsize::new(0),
            unauthenticated: AtomicUsize::new(0),
            per_user: Mutex::new(HashMap::new()),
            refused: Default::default(),
        })
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
    /// `cap` (`total`, `unauthenticated`, `per_user`).
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

    /// Count a new, unauthenticated connection, or say which cap it would pass.
    pub fn try_open(self: &Arc<Self>) -> Result<ConnectionSlot, ConnectionRefusal> {
        let total_max = self.config.connections_max;
        let unauthenticated_max = self.config.unauthenticated_connections_max;
        if !take_one(&self.total, total_max) {
            return Err(self.refused(ConnectionRefusal::Total(total_max)));
        }
        if !take_one(&self.unauthenticated, unauthenticated_max) {
            self.total.fetch_sub(1, Ordering::AcqRel);
            let refusal = ConnectionRefusal::Unauthenticated(unauthenticated_max);
            return Err(self.refused(refusal));
        }
        Ok(ConnectionSlot {
            limits: self.clone(),
            authenticated: AtomicBool::new(false),
        })
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

/// One open connection's count; given back on drop.
pub struct ConnectionSlot {
    limits: Arc<ConnectionLimits>,
    authenticated: AtomicBool,
}

impl ConnectionSlot {
    /// The connection authenticated: it no longer counts as unauthenticated. Idempotent.
    pub fn authenticated(&self) {
        if !self.authenticated.swap(true, Ordering::AcqRel) {
            self.limits.unauthenticated.fetch_sub(1, Ordering::AcqRel);
        }
    }

    pub fn limits(&self) -> &Arc<ConnectionLimits> {
        &self.limits
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        if !self.authenticated.load(Ordering::Acquire) {
            self.limits.unauthenticated.fetch_sub(1, Ordering::AcqRel);
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
    use super::*;

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
        let _second = limits.try_open().expect("second");
        assert_eq!(
            limits.try_open().err(),
            Some(ConnectionRefusal::Unauthenticated(2))
        );
        first.authenticated();
        first.authenticated();
        assert_eq!(limits.unauthenticated(), 1);
        let third = limits.try_open().expect("room again");
        assert_eq!((limits.open(), limits.unauthenticated()), (3, 2));
        drop(third);
        drop(first);
        assert_eq!((limits.open(), limits.unauthenticated()), (1, 1));
    }

    #[test]
    fn the_total_is_capped_whatever_the_state() {
        let limits = limits(2, 2, 5);
        let slots: Vec<_> = (0..2).map(|_| limits.try_open().expect("slot")).collect();
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
        let limits = limits(10, 1, 5);
        let _slot = limits.try_open().expect("slot");
        assert!(limits.try_open().is_err());
        let mut text = String::new();
        limits.render_metrics(&mut text);
        assert!(text.contains("\nstrand_connections 1\n"), "{text}");
        assert!(
            text.contains("\nstrand_connections_unauthenticated 1\n"),
            "{text}"
        );
        assert!(
            text.contains("strand_connections_refused_total{cap=\"unauthenticated\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE strand_connections_refused_total counter"),
            "{text}"
        );
    }
}
