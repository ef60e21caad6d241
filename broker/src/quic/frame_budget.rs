//! [`FrameBudget`]: the bytes QUIC request frames may hold in the server's memory, from the
//! moment their header arrives until their request is served.
//!
//! Why: a frame is gathered whole before it is decoded, so a header declaring 16 MiB followed
//! by most of the payload held that much per stream until the read timeout (issue 17: +0.8 GB
//! from 100 unauthenticated connections, +1.9 GB from 4 authenticated ones). Now:
//! - before `auth`, a connection's frames may declare at most
//!   [`UNAUTHENTICATED_FRAME_BYTES_MAX`] (an `auth` frame is far smaller); a larger one is
//!   refused (`limit_exceeded`) and counts as a bad frame;
//! - after it, a frame is admitted only when its declared size fits both its connection's
//!   share ([`CONNECTION_FRAME_BYTES_MAX`]) and the budget of all connections
//!   (`--quic-frame-buffer-bytes`); one that does not is refused at once (`overloaded`, retry
//!   later) before any of its payload is read. Stopping the stream makes quinn drop what the
//!   client sent of it and hand the flow-control credit back.
//!
//! Refusing rather than waiting: a frame that waited for room without being read would keep
//! its bytes in quinn and use up its connection's receive window, which the admitted frames of
//! the same connection need to finish; the wait could end only at the read timeout.
//!
//! The whole declared size is reserved at admission, so an admitted frame always completes
//! without waiting for more room, and memory stays within the budget whatever the client does.

use std::sync::Arc;

use strand_wire::quic::{codes, FRAME_BYTES_MAX, HEADER_BYTES};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::limits::{CONNECTION_FRAME_BYTES_MAX, UNAUTHENTICATED_FRAME_BYTES_MAX};

/// The bytes all connections' frames may hold together.
pub struct FrameBudget {
    bytes: Arc<Semaphore>,
    bytes_max: usize,
}

impl FrameBudget {
    pub fn new(bytes_max: u64) -> Arc<FrameBudget> {
        // Bounded by config validation far below Semaphore::MAX_PERMITS; clamp anyway.
        let bytes_max = usize::try_from(bytes_max)
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS);
        Arc::new(FrameBudget {
            bytes: Arc::new(Semaphore::new(bytes_max)),
            bytes_max,
        })
    }

    /// Bytes reserved by frames now.
    #[cfg(test)]
    pub fn reserved(&self) -> usize {
        self.bytes_max - self.bytes.available_permits()
    }
}

/// What one connection's frames may hold.
pub struct ConnectionFrames {
    /// `None` before authentication: only the connection's own small limit applies.
    global: Option<Arc<FrameBudget>>,
    connection: Arc<Semaphore>,
    frame_bytes_max: usize,
}

/// Room held for one frame until it is dropped (after its request was served).
#[derive(Debug)]
pub struct FrameReservation {
    _global: Option<OwnedSemaphorePermit>,
    _connection: OwnedSemaphorePermit,
}

/// Why a frame was not admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameRefusal {
    /// The `error` frame's code.
    pub code: &'static str,
    pub message: String,
    /// Whether it counts against the connection's bad-frame budget (the client's fault).
    pub bad: bool,
}

impl ConnectionFrames {
    /// A connection that has not authenticated: frames up to
    /// [`UNAUTHENTICATED_FRAME_BYTES_MAX`], one at a time.
    pub fn unauthenticated() -> ConnectionFrames {
        ConnectionFrames {
            global: None,
            connection: Arc::new(Semaphore::new(UNAUTHENTICATED_FRAME_BYTES_MAX)),
            frame_bytes_max: UNAUTHENTICATED_FRAME_BYTES_MAX,
        }
    }

    /// An authenticated connection: its share, within `global`.
    pub fn authenticated(global: &Arc<FrameBudget>) -> ConnectionFrames {
        let share = CONNECTION_FRAME_BYTES_MAX.min(global.bytes_max);
        ConnectionFrames {
            global: Some(global.clone()),
            connection: Arc::new(Semaphore::new(share)),
            frame_bytes_max: FRAME_BYTES_MAX + HEADER_BYTES,
        }
    }

    /// Room for a frame of `total_bytes` (header included, as its header declares), or why
    /// not. Never waits.
    pub fn admit(&self, total_bytes: usize) -> Result<FrameReservation, FrameRefusal> {
        if total_bytes > self.frame_bytes_max {
            // Only reachable before auth: the codec refuses larger frames on its own.
            return Err(FrameRefusal {
                code: codes::LIMIT_EXCEEDED,
                message: format!(
                    "a frame of {total_bytes} bytes before auth; until `auth` succeeds, frames \
                     may be at most {} bytes",
                    self.frame_bytes_max
                ),
                bad: true,
            });
        }
        let permits = u32::try_from(total_bytes).unwrap_or(u32::MAX);
        let busy = |whose: &str| FrameRefusal {
            code: codes::OVERLOADED,
            message: format!(
                "no room for a frame of {total_bytes} bytes: {whose} frames in progress hold \
                 the server's buffer; retry when earlier requests are answered"
            ),
            bad: false,
        };
        let connection = self
            .connection
            .clone()
            .try_acquire_many_owned(permits)
            .map_err(|_| busy("this connection's"))?;
        let global = match &self.global {
            Some(budget) => Some(
                budget
                    .bytes
                    .clone()
                    .try_acquire_many_owned(permits)
                    .map_err(|_| busy("all connections'"))?,
            ),
            None => None,
        };
        Ok(FrameReservation {
            _global: global,
            _connection: connection,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn before_auth_only_small_frames_are_admitted() {
        let frames = ConnectionFrames::unauthenticated();
        let refused = frames
            .admit(UNAUTHENTICATED_FRAME_BYTES_MAX + 1)
            .expect_err("too large before auth");
        assert_eq!((refused.code, refused.bad), (codes::LIMIT_EXCEEDED, true));
        let held = frames.admit(1024).expect("an auth frame fits");
        drop(held);
        frames
            .admit(UNAUTHENTICATED_FRAME_BYTES_MAX)
            .expect("room is given back");
    }

    #[test]
    fn frames_are_held_to_the_connection_share_and_the_global_budget() {
        let frame = FRAME_BYTES_MAX + HEADER_BYTES;
        let budget = FrameBudget::new((6 * frame) as u64);
        let first = ConnectionFrames::authenticated(&budget);
        let held: Vec<_> = (0..4).map(|_| first.admit(frame).expect("fits")).collect();
        let refused = first.admit(frame).expect_err("over the connection's share");
        assert_eq!((refused.code, refused.bad), (codes::OVERLOADED, false));
        let second = ConnectionFrames::authenticated(&budget);
        let more: Vec<_> = (0..2).map(|_| second.admit(frame).expect("fits")).collect();
        let refused = second.admit(16).expect_err("over the global budget");
        assert!(refused.message.contains("all connections'"), "{refused:?}");
        assert_eq!(budget.reserved(), 6 * frame);
        drop((held, more));
        assert_eq!(budget.reserved(), 0, "everything is given back");
        second.admit(frame).expect("room again");
    }
}
