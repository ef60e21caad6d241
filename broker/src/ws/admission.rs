//! [`WsAdmission`]: a WebSocket connection's place among the server's connections
//! (`connections.rs`): the HTTP connection's count it keeps for its life, no longer
//! unauthenticated once it authenticates, and then one of its user's connections, refused
//! past `connections_per_user_max`.

use std::sync::Arc;

use crate::connections::{ConnectionLimits, ConnectionRefusal, ConnectionSlot, UserClaim};
use crate::session::Session;

pub(super) struct WsAdmission {
    limits: Arc<ConnectionLimits>,
    /// `None` when the connection did not come through the HTTP shards (in-process tests).
    slot: Option<Arc<ConnectionSlot>>,
    claim: Option<UserClaim>,
}

impl WsAdmission {
    pub(super) fn new(limits: Arc<ConnectionLimits>, slot: Option<Arc<ConnectionSlot>>) -> Self {
        WsAdmission {
            limits,
            slot,
            claim: None,
        }
    }

    /// Completes when the connection, still unauthenticated, was evicted for a newer one
    /// (never for a connection without a slot).
    pub(super) fn evicted(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let evicted = self.slot.as_ref().map(|slot| slot.evicted());
        async move {
            match evicted {
                Some(evicted) => evicted.await,
                None => std::future::pending().await,
            }
        }
    }

    /// `session` authenticated this connection: count it as its user's, or refuse it.
    pub(super) fn admit(&mut self, session: &Session) -> Result<(), ConnectionRefusal> {
        let claim = self.limits.claim_user(session.user())?;
        if let Some(slot) = &self.slot {
            slot.authenticated();
        }
        self.claim = Some(claim);
        Ok(())
    }
}
