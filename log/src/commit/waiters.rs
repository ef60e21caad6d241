//! Waiting for a commit round without a thread: [`Committed`], the future of an
//! [`crate::AppendTicket`], and the committer thread that leads rounds for such waiters.
//!
//! Why: a caller on an async runtime (the HTTP shards) that waited with
//! [`crate::AppendTicket::wait`] had to hand the request to a blocking thread first, and every
//! durable INSERT cost three or four context switches (shard to blocking pool, the commit
//! condvar, back to the shard) on top of its share of an fsync; on two cores that, not the
//! disk, bounded throughput. An async waiter instead leaves its waker in the queue: the round's
//! leader wakes it when the round completes. Rounds wanted only by async waiters are led by one
//! thread per queue (`strand-log-commit`), started on first use, so one thread does the I/O
//! of a round however many requests it carries. Under the policies that do not sync each
//! round (`interval`, `never`) a round is a write into the page cache, and the first poll
//! leads it on the polling thread instead when no round is under way.
//!
//! A future dropped before its round completed still has a batch in the queue: its entry
//! stays, with a no-op waker and the partition, so the round is still led and the round's
//! failure entry (a full disk) is still taken once (`failures.rs` counts one taker per batch).

use std::future::Future;
use std::pin::Pin;
use std::sync::{mpsc, Arc, Weak};
use std::task::{Context, Poll, Waker};

use super::{round, CommitQueue, QueueState};
use crate::config::FsyncPolicy;
use crate::error::Result;
use crate::partition::Partition;
use crate::seq::SeqRange;

/// A waker of a round not yet completed.
#[derive(Debug)]
pub(super) struct AsyncWaiter {
    round: u64,
    waker: Waker,
    /// Set when the future was dropped first: its round's failure is taken on its behalf.
    abandoned: Option<Arc<Partition>>,
}

/// The committer thread's inbox, once started; `None` inside if it could not be spawned.
#[derive(Debug, Default)]
pub(super) struct Committer {
    inbox: std::sync::OnceLock<Option<mpsc::Sender<()>>>,
}

/// What a completed round leaves to do once the queue's lock is released: wake the async
/// waiters, and settle the abandoned ones.
#[must_use]
pub(super) struct ReadyWaiters(Vec<AsyncWaiter>);

impl ReadyWaiters {
    pub fn none() -> Self {
        ReadyWaiters(Vec::new())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Call without the queue's lock: a waker may run arbitrary code, and the last reference to
    /// an abandoned partition may go here (its drop syncs the partition).
    pub fn settle(self, queue: &CommitQueue) {
        for waiter in self.0 {
            match waiter.abandoned {
                Some(partition) => {
                    let _ = queue.failures.take(waiter.round, round::key_of(&partition));
                }
                None => waiter.waker.wake(),
            }
        }
    }
}

/// The future of a submitted batch: resolves once it is durable under the fsync policy (or
/// its round failed), like [`crate::AppendTicket::wait`], without blocking a thread.
#[derive(Debug)]
pub struct Committed {
    pub(crate) partition: Arc<Partition>,
    pub(crate) round: u64,
    pub(crate) range: SeqRange,
    pub(crate) done: bool,
}

impl Future for Committed {
    type Output = Result<SeqRange>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let queue = self.partition.queue.clone();
        match queue.poll_round(&self.partition, self.round, cx.waker()) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(outcome) => {
                self.done = true;
                Poll::Ready(outcome.map(|()| self.range))
            }
        }
    }
}

impl Drop for Committed {
    fn drop(&mut self) {
        if !self.done {
            self.partition
                .queue
                .abandon(self.partition.clone(), self.round);
        }
    }
}

impl CommitQueue {
    /// `Ready` with the outcome once `round` is complete; else leaves `waker` to be woken
    /// when it is, and makes sure someone leads it.
    fn poll_round(
        self: &Arc<Self>,
        partition: &Partition,
        round: u64,
        waker: &Waker,
    ) -> Poll<Result<()>> {
        let mut state = self.lock();
        if state.completed_round >= round {
            drop(state);
            return Poll::Ready(self.outcome(partition, round));
        }
        if !state.leader_active && self.fsync != FsyncPolicy::Always {
            // A round that syncs nothing is a write into the page cache: leading it here costs
            // less than waking the commit thread and being woken by it.
            drop(state);
            return Poll::Ready(self.wait(partition, round));
        }
        let known = state
            .async_waiters
            .iter()
            .any(|w| w.round == round && w.abandoned.is_none() && w.waker.will_wake(waker));
        if !known {
            state.async_waiters.push(AsyncWaiter {
                round,
                waker: waker.clone(),
                abandoned: None,
            });
        }
        if self.ask_committer(&mut state, Some(self)) {
            return Poll::Pending;
        }
        // No committer thread (it could not be spawned): lead here, blocking this thread.
        drop(state);
        Poll::Ready(self.wait(partition, round))
    }

    /// A [`Committed`] of `partition` in `round` was dropped before its round completed.
    fn abandon(self: &Arc<Self>, partition: Arc<Partition>, round: u64) {
        let mut state = self.lock();
        if state.completed_round >= round {
            drop(state);
            let _ = self.failures.take(round, round::key_of(&partition));
            return;
        }
        state.async_waiters.push(AsyncWaiter {
            round,
            waker: Waker::noop().clone(),
            abandoned: Some(partition.clone()),
        });
        if !self.ask_committer(&mut state, Some(self)) {
            drop(state);
            // Leading here settles the entry just pushed as well.
            let _ = self.wait(&partition, round);
        }
    }

    /// Make sure a round wanted by async waiters gets a leader: a round under way will ask
    /// again when it completes; otherwise the committer thread is asked (started first if
    /// `start` is given). `false` if there is no committer thread.
    fn ask_committer(&self, state: &mut QueueState, start: Option<&Arc<CommitQueue>>) -> bool {
        // Started before anything else: the round under way completes with `start == None`,
        // and must find the thread there to ask for the next round.
        let inbox = match start {
            Some(queue) => self
                .committer
                .inbox
                .get_or_init(|| start_committer(Arc::downgrade(queue))),
            None => self.committer.inbox.get().unwrap_or(&None),
        };
        let Some(inbox) = inbox else {
            return false;
        };
        if state.leader_active || state.committer_asked {
            return true;
        }
        state.committer_asked = inbox.send(()).is_ok();
        state.committer_asked
    }

    /// Take the async waiters of rounds up to the completed one; ask the committer to lead the
    /// next round if others wait for it. Called with the lock, at the end of each round.
    pub(super) fn ready_waiters(&self, state: &mut QueueState) -> ReadyWaiters {
        if state.async_waiters.is_empty() {
            return ReadyWaiters::none();
        }
        let completed = state.completed_round;
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut state.async_waiters)
            .into_iter()
            .partition(|w| w.round <= completed);
        state.async_waiters = waiting;
        if !state.async_waiters.is_empty() && !state.committer_leading {
            // Not the committer's own round: it is not looping, so it must be asked.
            state.committer_asked = false;
            self.ask_committer(state, None);
        }
        ReadyWaiters(ready)
    }

    /// The committer thread's work on each request: lead rounds while async waiters wait and
    /// no one else leads.
    fn lead_for_async_waiters(&self) {
        let mut state = self.lock();
        state.committer_asked = false;
        state.committer_leading = true;
        while !state.async_waiters.is_empty() && !state.leader_active {
            let (next, panic) = self.lead(state);
            state = next;
            if let Some(payload) = panic {
                // Its partition is poisoned and its waiters are told; the thread goes on.
                let message = round::panic_message(&payload);
                tracing::error!(%message, "a commit round led for async waiters panicked");
            }
        }
        state.committer_leading = false;
    }
}

fn start_committer(queue: Weak<CommitQueue>) -> Option<mpsc::Sender<()>> {
    let (inbox, requests) = mpsc::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("strand-log-commit".into())
        .spawn(move || {
            for () in requests {
                let Some(queue) = queue.upgrade() else { return };
                queue.lead_for_async_waiters();
            }
        });
    match spawned {
        Ok(_) => Some(inbox),
        Err(error) => {
            tracing::warn!(%error, "no commit thread; async waiters lead rounds themselves");
            None
        }
    }
}
