//! Which node coordinates consumer groups. Alone, this one. On a cluster member, the meta
//! group's leader only: coordinators move with it, and their committed offsets are
//! replicated (`topics/offsets/replicated.rs`), so members that rejoin at a new leader
//! continue from their last acknowledged commit.
//!
//! How a coordinator knows it (still) leads: every group request first asks the cluster
//! writer for the term this node leads in ([`BlockingWriter::leading_term_async`]: cheap once
//! per term; the first call waits until every entry of earlier terms is applied, so the
//! offsets read are complete). A member that does not lead answers `not_leader`, naming the
//! leader, and drops its coordinators; a leader of a later term than the registry's drops the
//! earlier term's coordinators first, so members join a fresh coordinator (a new generation).
//! The sweep does the same every second, so state does not outlive leadership for long even
//! without requests. A commit is written through the writer, which refuses on a member that
//! does not lead, so a stale coordinator's commit is never acknowledged there.

use super::Groups;
use crate::cluster::writer::{BlockingWriter, ReplicationError};
use crate::topics::{replication_code, GroupOffsets};

/// An error frame's code and text.
pub(super) type Refusal = (&'static str, String);

impl Groups {
    /// `Ok` when this node coordinates groups now (always, alone); else the error frame to
    /// answer. Drops the coordinators of an earlier term first.
    pub(super) async fn coordinating(&self) -> Result<(), Refusal> {
        let Some(writer) = self.offsets.cluster_writer() else {
            return Ok(());
        };
        let led = writer.leading_term_async().await;
        self.follow(led)
    }

    /// [`Self::coordinating`] for the sweep thread (waits on the runtime); `false` when this
    /// node does not coordinate groups now.
    pub(super) fn coordinating_blocking(&self, writer: &BlockingWriter) -> bool {
        self.follow(writer.leading_term()).is_ok()
    }

    /// Keeps the registry to the term this node leads in, or empties it when it does not lead.
    fn follow(&self, led: Result<u64, ReplicationError>) -> Result<(), Refusal> {
        match led {
            Ok(term) => {
                self.enter_term(term);
                Ok(())
            }
            Err(error) => {
                if let ReplicationError::NotLeader { .. } = error {
                    self.step_down();
                }
                let text = format!("consumer groups are coordinated by the leader: {error}");
                Err((replication_code(&error), text))
            }
        }
    }

    /// This node leads in `term`: the coordinators of another term go (their members rejoin).
    fn enter_term(&self, term: u64) {
        let mut registry = self.registry.lock();
        if registry.term == Some(term) {
            return;
        }
        let dropped = registry.groups.len();
        registry.groups.clear();
        registry.per_user.clear();
        registry.term = Some(term);
        drop(registry);
        // Retention counts from now for every group, as after a restart: members of the
        // previous leader have not rejoined yet.
        self.offsets.restart_retention(GroupOffsets::now_unix_ms());
        tracing::info!(
            term,
            dropped,
            "leading: consumer groups are coordinated here"
        );
    }

    /// This node does not lead: no coordinator stays here.
    fn step_down(&self) {
        let mut registry = self.registry.lock();
        if registry.term.is_none() {
            return;
        }
        let dropped = registry.groups.len();
        registry.groups.clear();
        registry.per_user.clear();
        registry.term = None;
        tracing::info!(
            dropped,
            "not leading: consumer groups are coordinated by the leader"
        );
    }
}
