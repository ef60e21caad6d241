//! [`RoundFailures`]: the partitions' writes of commit rounds that ran out of space and were
//! undone, kept until each of their waiters has learnt it.
//!
//! A poisoned partition answers every later waiter the same way, so one round number is enough
//! there. A round undone after a full disk is different: the partition stays writable, and the
//! next round may well commit, so each failed (round, partition) is remembered with the number
//! of batches (one waiter each) it held, and the entry goes once the last of them took it. The
//! list is bounded by the appenders waiting at once: every batch has exactly one waiter
//! (`CommitQueue::wait`, also from a dropped ticket), which takes its entry before returning.
//! A partition is named by its address: its waiters hold it alive until they took the entry.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Why a partition's write of a round was not done (the partition stays writable).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The storage was full: `LogError::StorageFull`.
    Full(String),
    /// The closed segment file could not be reopened: `LogError::ReopenFailed`.
    Reopen(String),
}

#[derive(Debug)]
struct RoundFailure {
    round: u64,
    partition: usize,
    /// Waiters of the round that have not taken the failure yet.
    waiters: usize,
    cause: Failure,
}

#[derive(Debug, Default)]
pub(crate) struct RoundFailures {
    /// Entries in `failed`: lets the common case (no failure) skip the lock.
    entries: AtomicUsize,
    failed: Mutex<Vec<RoundFailure>>,
}

impl RoundFailures {
    /// The write of `partition` (its address) in `round`, with `waiters` batches, failed for
    /// `cause`.
    pub(crate) fn record(&self, round: u64, partition: usize, waiters: usize, cause: Failure) {
        if waiters == 0 {
            return;
        }
        let mut failed = self.failed.lock();
        failed.push(RoundFailure {
            round,
            partition,
            waiters,
            cause,
        });
        self.entries.store(failed.len(), Ordering::Release);
    }

    /// For one waiter of `partition` in `round`: the cause, if that write failed.
    pub(crate) fn take(&self, round: u64, partition: usize) -> Option<Failure> {
        if self.entries.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut failed = self.failed.lock();
        let at = failed
            .iter()
            .position(|f| f.round == round && f.partition == partition)?;
        let entry = &mut failed[at];
        entry.waiters -= 1;
        let cause = if entry.waiters == 0 {
            failed.swap_remove(at).cause
        } else {
            entry.cause.clone()
        };
        self.entries.store(failed.len(), Ordering::Release);
        Some(cause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_waiter_takes_its_rounds_failure_once() {
        let failures = RoundFailures::default();
        let (full, again) = (
            Failure::Full("full".into()),
            Failure::Reopen("again".into()),
        );
        assert_eq!(failures.take(1, 7), None);
        failures.record(3, 7, 2, full.clone());
        failures.record(5, 7, 1, again.clone());
        assert_eq!(failures.take(4, 7), None, "round 4 committed");
        assert_eq!(
            failures.take(3, 8),
            None,
            "another partition of round 3 committed"
        );
        assert_eq!(failures.take(3, 7), Some(full.clone()));
        assert_eq!(failures.take(5, 7), Some(again));
        assert_eq!(failures.take(3, 7), Some(full));
        assert_eq!(failures.take(3, 7), None, "both waiters of round 3 took it");
        assert_eq!(failures.entries.load(Ordering::Acquire), 0);
    }
}
