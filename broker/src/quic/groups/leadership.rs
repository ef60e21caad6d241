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
//! does not lead, so a stale coordinator's commit is never acknowledged there; and a commit
//! is written only in the term its coordinator checked it in (`ClusterCommand::AppendInTerm`),
//! so a node that lost the office and won it back between the check and the write (two
//! elections within one commit) has it refused, and the member commits again.

use super::Groups;
use crate::cluster::writer::{BlockingWriter, ReplicationError};
use crate::topics::{replication_code, GroupOffsets};

/// An error frame's code and text.
pub(super) type Refusal = (&'static str, String);

impl Groups {
    /// `Ok` when this node coordinates groups now, with the term it leads in (`None` alone);
    /// else the error frame to answer. Drops the coordinators of an earlier term first.
    pub(super) async fn coordinating(&self) -> Result<Option<u64>, Refusal> {
        let Some(writer) = self.offsets.cluster_writer() else {
            return Ok(None);
        };
        let led = writer.leading_term_async().await;
        self.follow(led).map(Some)
    }

    /// [`Self::coordinating`] for the sweep thread (waits on the runtime); `false` when this
    /// node does not coordinate groups now.
    pub(super) fn coordinating_blocking(&self, writer: &BlockingWriter) -> bool {
        self.follow(writer.ready_to_lead()).is_ok()
    }

    /// Keeps the registry to the term this node leads in, or empties it when it does not lead.
    fn follow(&self, led: Result<u64, ReplicationError>) -> Result<u64, Refusal> {
        match led {
            Ok(term) => {
                self.enter_term(term);
                Ok(term)
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use strand_log::{FsyncPolicy, Seq, Store, StoreConfig};
    use strand_sql_view::{Name, TopicName};
    use tokio::sync::Mutex as AsyncMutex;

    use super::*;
    use crate::catalog::{CatalogTopic, TopicDef};
    use crate::config::GroupLimits;
    use crate::quic::groups::registry::GroupState;
    use crate::topics::group::{GroupConfig, GroupCoordinator};

    fn groups(dir: &std::path::Path) -> Groups {
        let mut config = StoreConfig::default();
        config.partition.fsync = FsyncPolicy::Never;
        let store = Store::open(dir, config).expect("store");
        let offsets = GroupOffsets::open(&store).expect("offsets");
        Groups::new(Arc::new(offsets), GroupLimits::default())
    }

    /// Registers group `name` as a join would.
    fn add_group(groups: &Groups, name: &str) {
        let topic = CatalogTopic {
            def: Arc::new(TopicDef {
                name: TopicName {
                    namespace: Name::new("app").expect("name"),
                    topic: Name::new("events").expect("name"),
                },
                partitions: 2,
                retention_seconds: None,
                sources: Vec::new(),
            }),
            incarnation: Seq(1),
        };
        let coordinator = GroupCoordinator::new(GroupConfig::new(2, 1)).expect("coordinator");
        let state = GroupState {
            topic,
            coordinator,
            creator: "alice".to_string(),
        };
        let mut registry = groups.registry.lock();
        registry.count("alice", true);
        registry
            .groups
            .insert(name.to_string(), Arc::new(AsyncMutex::new(state)));
    }

    fn held(groups: &Groups) -> (Option<u64>, usize, usize) {
        let registry = groups.registry.lock();
        (
            registry.term,
            registry.groups.len(),
            registry.per_user.len(),
        )
    }

    #[test]
    fn coordinators_live_for_one_term_and_go_when_this_node_stops_leading() {
        let dir = tempfile::tempdir().expect("tempdir");
        let groups = groups(dir.path());
        assert_eq!(groups.follow(Ok(3)), Ok(3));
        add_group(&groups, "billing");
        // The same term again: the coordinator stays.
        assert_eq!(groups.follow(Ok(3)), Ok(3));
        assert_eq!(held(&groups), (Some(3), 1, 1));
        // A later term: this node lost the office and won it back; members join afresh.
        assert_eq!(groups.follow(Ok(5)), Ok(5));
        assert_eq!(held(&groups), (Some(5), 0, 0));

        add_group(&groups, "billing");
        let leader = Some((2, "127.0.0.1:7102".to_string()));
        let refusal = groups.follow(Err(ReplicationError::NotLeader { leader }));
        let (code, text) = refusal.expect_err("not the leader");
        assert_eq!(code, strand_wire::quic::codes::NOT_LEADER);
        assert!(text.contains("node 2 at 127.0.0.1:7102"), "{text}");
        assert_eq!(held(&groups), (None, 0, 0));
    }

    #[test]
    fn a_leader_that_cannot_confirm_keeps_its_coordinators_and_answers_unavailable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let groups = groups(dir.path());
        assert_eq!(groups.follow(Ok(7)), Ok(7));
        add_group(&groups, "billing");
        let unconfirmed = ReplicationError::Raft("no majority".to_string());
        let (code, _) = groups.follow(Err(unconfirmed)).expect_err("unconfirmed");
        assert_eq!(code, strand_wire::quic::codes::UNAVAILABLE);
        assert_eq!(held(&groups), (Some(7), 1, 1));
    }
}
