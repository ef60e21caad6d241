//! The `_seq` lease of a store's queue: issued ids never pass the lease on disk, and the
//! lease is moved ahead by a background thread so that appenders do not wait for its durable
//! write (a file fsync, a rename and a directory fsync, which a busy disk can stretch to a
//! tenth of a second).

use std::sync::mpsc;
use std::sync::Arc;

use super::{CommitQueue, QueueState};
use crate::error::Result;
use crate::limits::{SEQ_LEASE_MS, SEQ_LEASE_RENEW_AHEAD_MS};
use crate::seq::EPOCH_UNIX_MS;
use crate::store::LeaseWriter;

/// Starts the renew-ahead thread of `queue`; it ends when the queue (holding the sender of
/// `requests`) is dropped.
pub(super) fn start_renewer(queue: &Arc<CommitQueue>, requests: mpsc::Receiver<()>) {
    let weak = Arc::downgrade(queue);
    let spawned = std::thread::Builder::new()
        .name("strand-log-lease".into())
        .spawn(move || {
            for () in requests {
                let Some(queue) = weak.upgrade() else { return };
                queue.renew_lease();
            }
        });
    if let Err(error) = spawned {
        // Appenders then renew the lease themselves when it runs out, as before.
        tracing::warn!(%error, "no lease thread; appenders renew the _seq lease");
    }
}

impl QueueState {
    /// The lease (`_seq` milliseconds since the Strand epoch) that covers `records` more ids
    /// issued at `now_unix_ms`.
    fn lease_needed_ms(&self, now_unix_ms: u64, records: usize) -> u64 {
        let now_ms = now_unix_ms.saturating_sub(EPOCH_UNIX_MS);
        now_ms.max(self.generator.last().epoch_ms()) + records as u64 / 4096 + 1
    }
}

impl CommitQueue {
    /// Persist a new `_seq` lease before issuing ids beyond the current one, so a restart
    /// (which seeds the generator from the lease) never reissues an id.
    ///
    /// The lease is a durable atomic write (a file fsync, a rename and a directory fsync),
    /// made under the queue's lock when it runs out: every appender of the store would wait
    /// for it. So once less than [`SEQ_LEASE_RENEW_AHEAD_MS`] remains, the renew-ahead
    /// thread moves it while ids are still being issued under the old one; appenders only
    /// wait when that thread fell that far behind.
    pub(super) fn extend_lease(
        &self,
        state: &mut QueueState,
        now_unix_ms: u64,
        records: usize,
    ) -> Result<()> {
        let Some(lease) = &self.lease else {
            return Ok(());
        };
        let needed_ms = state.lease_needed_ms(now_unix_ms, records);
        if needed_ms.saturating_add(SEQ_LEASE_RENEW_AHEAD_MS) < state.lease_until_ms {
            return Ok(());
        }
        if needed_ms < state.lease_until_ms {
            if !state.lease_renewing {
                let asked = self
                    .lease_renewer
                    .as_ref()
                    .is_some_and(|r| r.send(()).is_ok());
                state.lease_renewing = asked;
            }
            return Ok(());
        }
        let until_ms = lease.store(needed_ms + SEQ_LEASE_MS, LeaseWriter::Appender)?;
        state.lease_until_ms = state.lease_until_ms.max(until_ms);
        Ok(())
    }

    /// The store is dropped: no renew-ahead write after this returns.
    pub fn close_lease_ahead(&self) {
        if let Some(lease) = &self.lease {
            lease.close_ahead();
        }
    }

    /// The renew-ahead thread's work: move the lease a full [`SEQ_LEASE_MS`] past what is
    /// issued now, without holding the queue's lock during the write.
    fn renew_lease(&self) {
        let Some(lease) = &self.lease else {
            return;
        };
        let needed_ms = {
            let state = self.lock();
            state.lease_needed_ms(self.clock.now_unix_ms(), 0)
        };
        let stored = lease.store(needed_ms + SEQ_LEASE_MS, LeaseWriter::Ahead);
        let mut state = self.lock();
        state.lease_renewing = false;
        match stored {
            Ok(until_ms) => state.lease_until_ms = state.lease_until_ms.max(until_ms),
            // The appender that finds the lease run out stores it itself and gets the error.
            Err(error) => tracing::warn!(%error, "renewing the _seq lease ahead failed"),
        }
    }
}
