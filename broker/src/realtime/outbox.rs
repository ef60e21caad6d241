//! [`Outbox`]: a connection's bounded queue of outgoing messages. Producers (the fan-out
//! dispatcher, snapshot and replay tasks) push finished JSON texts; the connection's writer
//! sends them. The bound is in bytes: a push past it marks the connection slow and is
//! refused, so a client that stops reading costs at most the bound in memory, never more.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, Notify};

struct Shared {
    queued_bytes: AtomicUsize,
    bytes_max: usize,
    slow: AtomicBool,
    /// Wakes the writer when the connection turned slow, and waiting pushers when bytes
    /// drained.
    slow_signal: Notify,
    drained: Notify,
}

/// The sending side; cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    shared: Arc<Shared>,
    sender: mpsc::UnboundedSender<String>,
}

/// Why a push was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushRefused {
    /// Over the byte bound: the connection is now slow and will be closed.
    Slow,
    /// The connection is gone.
    Closed,
}

impl Outbox {
    pub fn new(bytes_max: usize) -> (Outbox, OutboxReceiver) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            queued_bytes: AtomicUsize::new(0),
            bytes_max,
            slow: AtomicBool::new(false),
            slow_signal: Notify::new(),
            drained: Notify::new(),
        });
        let outbox = Outbox {
            shared: shared.clone(),
            sender,
        };
        (outbox, OutboxReceiver { shared, receiver })
    }

    /// Queue `text` if it fits under the bound; past it, mark the connection slow.
    pub fn push(&self, text: String) -> Result<(), PushRefused> {
        if self.shared.slow.load(Ordering::Acquire) {
            return Err(PushRefused::Slow);
        }
        let len = text.len();
        let queued = self.shared.queued_bytes.fetch_add(len, Ordering::AcqRel) + len;
        if queued > self.shared.bytes_max && queued != len {
            self.shared.queued_bytes.fetch_sub(len, Ordering::AcqRel);
            self.shared.slow.store(true, Ordering::Release);
            self.shared.slow_signal.notify_one();
            return Err(PushRefused::Slow);
        }
        self.sender.send(text).map_err(|_| {
            self.shared.queued_bytes.fetch_sub(len, Ordering::AcqRel);
            PushRefused::Closed
        })
    }

    /// Queue `text`, first waiting while the queue is over half full: for producers that
    /// can pause (snapshot batches, replay), so that they never make a connection slow.
    pub async fn push_when_room(&self, text: String) -> Result<(), PushRefused> {
        self.wait_for_room().await?;
        self.push(text)
    }

    /// Wait until the queue is at most half full (or the connection is gone).
    pub async fn wait_for_room(&self) -> Result<(), PushRefused> {
        loop {
            let drained = self.shared.drained.notified();
            if self.shared.queued_bytes.load(Ordering::Acquire) <= self.shared.bytes_max / 2 {
                return Ok(());
            }
            if self.sender.is_closed() {
                return Err(PushRefused::Closed);
            }
            drained.await;
        }
    }

    pub fn is_slow(&self) -> bool {
        self.shared.slow.load(Ordering::Acquire)
    }
}

/// The writer's side.
pub struct OutboxReceiver {
    shared: Arc<Shared>,
    receiver: mpsc::UnboundedReceiver<String>,
}

impl OutboxReceiver {
    /// The next message to send; `None` when every sender is gone.
    pub async fn recv(&mut self) -> Option<String> {
        let text = self.receiver.recv().await?;
        self.shared
            .queued_bytes
            .fetch_sub(text.len(), Ordering::AcqRel);
        self.shared.drained.notify_waiters();
        Some(text)
    }

    /// A queued message, without waiting (to flush before closing).
    pub fn try_recv(&mut self) -> Result<String, mpsc::error::TryRecvError> {
        let text = self.receiver.try_recv()?;
        self.shared
            .queued_bytes
            .fetch_sub(text.len(), Ordering::AcqRel);
        Ok(text)
    }

    /// A handle that tells when the connection turned slow, usable while the receiver is
    /// borrowed for `recv`.
    pub fn slow_watch(&self) -> SlowWatch {
        SlowWatch {
            shared: self.shared.clone(),
        }
    }
}

pub struct SlowWatch {
    shared: Arc<Shared>,
}

impl SlowWatch {
    /// Resolves once the connection has been marked slow.
    pub async fn turned_slow(&self) {
        loop {
            let signal = self.shared.slow_signal.notified();
            if self.shared.slow.load(Ordering::Acquire) {
                return;
            }
            signal.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pushes_past_the_bound_mark_the_connection_slow() {
        let (outbox, mut receiver) = Outbox::new(10);
        assert_eq!(outbox.push("12345".into()), Ok(()));
        assert_eq!(outbox.push("12345".into()), Ok(()));
        assert_eq!(outbox.push("1".into()), Err(PushRefused::Slow));
        assert!(outbox.is_slow());
        receiver.slow_watch().turned_slow().await;
        assert_eq!(receiver.recv().await.as_deref(), Some("12345"));
        // Once slow, always slow: the connection is closing.
        assert_eq!(outbox.push("1".into()), Err(PushRefused::Slow));
    }

    #[tokio::test]
    async fn one_message_larger_than_the_bound_still_goes_out_alone() {
        let (outbox, mut receiver) = Outbox::new(4);
        assert_eq!(outbox.push("a large batch".into()), Ok(()));
        assert_eq!(receiver.recv().await.as_deref(), Some("a large batch"));
    }

    #[tokio::test]
    async fn push_when_room_waits_for_the_writer() {
        let (outbox, mut receiver) = Outbox::new(8);
        assert_eq!(outbox.push("12345678".into()), Ok(()));
        let waiting = tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.push_when_room("next".into()).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        assert_eq!(receiver.recv().await.as_deref(), Some("12345678"));
        assert_eq!(waiting.await.ok(), Some(Ok(())));
        assert_eq!(receiver.recv().await.as_deref(), Some("next"));
        assert!(!outbox.is_slow());
    }
}
