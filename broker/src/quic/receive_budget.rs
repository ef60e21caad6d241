//! [`ReceiveBudget`]: how many bytes all authenticated connections together may have in flight
//! towards the server, shared out as each connection's QUIC receive window (flow control).
//!
//! Why: every connection arrives on one UDP socket. When producers together send more than the
//! socket's receive buffer holds while the server is busy, the kernel drops datagrams, and
//! each drop costs a retransmission, a congestion-window cut and, for large datagrams, quinn's
//! black-hole fallback to 1200-byte packets. Measured with 64 producers of 1 MB batches:
//! about 2,000 drops per 3 s and half the throughput (BENCHMARKS.md, topics). A fixed small
//! window avoids the drops but starves a lone producer; so the budget is split evenly among
//! the connections that exist, within [`CONNECTION_WINDOW_BYTES_MIN`]..=[`CONNECTION_WINDOW_BYTES_MAX`],
//! and every connection's window follows the count as connections come and go.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::watch;

use crate::limits::{
    CONNECTION_WINDOW_BYTES_MAX, CONNECTION_WINDOW_BYTES_MIN, RECEIVE_BUDGET_BYTES,
};

/// The receive window of each of `connections` connections.
pub fn window_for(connections: usize) -> u64 {
    let share = RECEIVE_BUDGET_BYTES / connections.max(1) as u64;
    share.clamp(CONNECTION_WINDOW_BYTES_MIN, CONNECTION_WINDOW_BYTES_MAX)
}

/// The live connection count and the window that follows from it.
pub struct ReceiveBudget {
    connections: AtomicUsize,
    window: watch::Sender<u64>,
}

impl ReceiveBudget {
    pub fn new() -> Arc<ReceiveBudget> {
        let (window, _) = watch::channel(window_for(0));
        Arc::new(ReceiveBudget {
            connections: AtomicUsize::new(0),
            window,
        })
    }

    /// Counts one more connection until the returned share is dropped.
    pub fn join(self: &Arc<Self>) -> ReceiveShare {
        let connections = self.connections.fetch_add(1, Ordering::AcqRel) + 1;
        self.publish(connections);
        ReceiveShare {
            budget: self.clone(),
            window: self.window.subscribe(),
        }
    }

    fn publish(&self, connections: usize) {
        let window = window_for(connections);
        self.window.send_if_modified(|current| {
            let changed = *current != window;
            *current = window;
            changed
        });
    }
}

/// One connection's part of the budget.
pub struct ReceiveShare {
    budget: Arc<ReceiveBudget>,
    window: watch::Receiver<u64>,
}

impl ReceiveShare {
    /// The window this connection should have now.
    pub fn window(&mut self) -> u64 {
        *self.window.borrow_and_update()
    }

    /// Waits until the window changes, and returns it.
    pub async fn changed(&mut self) -> u64 {
        // The sender lives in the budget, which this share keeps alive: this never errors.
        let _ = self.window.changed().await;
        *self.window.borrow_and_update()
    }
}

impl Drop for ReceiveShare {
    fn drop(&mut self) {
        let connections = self.budget.connections.fetch_sub(1, Ordering::AcqRel) - 1;
        self.budget.publish(connections);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_split_within_the_bounds() {
        assert_eq!(window_for(0), CONNECTION_WINDOW_BYTES_MAX);
        assert_eq!(window_for(1), CONNECTION_WINDOW_BYTES_MAX);
        assert_eq!(window_for(4), RECEIVE_BUDGET_BYTES / 4);
        assert_eq!(window_for(16), RECEIVE_BUDGET_BYTES / 16);
        assert_eq!(window_for(64), CONNECTION_WINDOW_BYTES_MIN);
        assert_eq!(window_for(10_000), CONNECTION_WINDOW_BYTES_MIN);
        for n in 1..200 {
            assert!(
                window_for(n + 1) <= window_for(n),
                "more connections, smaller windows"
            );
        }
    }

    #[tokio::test]
    async fn windows_follow_the_connection_count() {
        let budget = ReceiveBudget::new();
        let mut first = budget.join();
        assert_eq!(first.window(), window_for(1));
        let others: Vec<ReceiveShare> = (0..15).map(|_| budget.join()).collect();
        assert_eq!(first.changed().await, window_for(16));
        drop(others);
        assert_eq!(first.changed().await, window_for(1));
    }
}
