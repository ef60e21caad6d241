//! `GET /v1/cluster/status`: this node's view of its cluster as JSON (members, and for each
//! group its leader, term, log, applied, snapshot and purged indexes, and on the leader each
//! follower's lag).
//! Like `/metrics` and `/v1/health`, it needs no credentials: it tells operators who leads,
//! nothing about the data. Only a cluster member has the route.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};
use openraft::{BasicNode, ServerState};
use serde::Serialize;

use super::members::Member;
use super::node::ClusterNode;
use super::rpc::GroupId;
use super::types::NodeId;

/// The route's path.
pub const ROUTE_CLUSTER_STATUS: &str = "/v1/cluster/status";

/// The status route over `node`, for any router state.
pub fn routes<S: Clone + Send + Sync + 'static>(node: Arc<ClusterNode>) -> Router<S> {
    Router::new().route(
        ROUTE_CLUSTER_STATUS,
        get(move || {
            let node = node.clone();
            async move { Json(node.status()) }
        }),
    )
}

/// This node's view of its cluster (`GET /v1/cluster/status`).
#[derive(Debug, Clone, Serialize)]
pub struct ClusterStatus {
    /// This node.
    pub node_id: NodeId,
    /// The meta group's members, voters and learners (before the cluster formed or this
    /// node was added: those `--cluster` names).
    pub members: Vec<Member>,
    /// Each group as this node sees it.
    pub groups: Vec<GroupStatus>,
}

/// One group as this node sees it.
#[derive(Debug, Clone, Serialize)]
pub struct GroupStatus {
    /// The group's id (0: meta).
    pub group: GroupId,
    /// `leader`, `follower`, `candidate`, `learner` or `shutdown`.
    pub role: &'static str,
    /// The leader this node knows of.
    pub leader: Option<NodeId>,
    /// The current term.
    pub term: u64,
    /// Index of the last entry in this node's Raft log.
    pub last_log_index: Option<u64>,
    /// Index of the last entry applied to this node's store.
    pub applied_index: Option<u64>,
    /// The group's voters.
    pub voters: BTreeSet<NodeId>,
    /// Members that receive entries but do not vote (a node being added).
    pub learners: BTreeSet<NodeId>,
    /// Index of the last entry in this node's snapshot (a leader sends a snapshot to a
    /// member that needs entries it dropped).
    pub snapshot_index: Option<u64>,
    /// Index of the last entry dropped from this node's Raft log (held in the snapshot).
    pub purged_index: Option<u64>,
    /// On the leader: how many entries each follower is behind (none: not matched yet).
    pub lag: Option<BTreeMap<NodeId, Option<u64>>>,
}

impl GroupStatus {
    /// The status of `group` from its metrics.
    pub(super) fn of(
        group: GroupId,
        metrics: &openraft::RaftMetrics<NodeId, BasicNode>,
    ) -> GroupStatus {
        let last = metrics.last_log_index.unwrap_or(0);
        GroupStatus {
            group,
            role: match metrics.state {
                ServerState::Leader => "leader",
                ServerState::Follower => "follower",
                ServerState::Candidate => "candidate",
                ServerState::Learner => "learner",
                ServerState::Shutdown => "shutdown",
            },
            leader: metrics.current_leader,
            term: metrics.current_term,
            last_log_index: metrics.last_log_index,
            applied_index: metrics.last_applied.map(|id| id.index),
            voters: metrics.membership_config.membership().voter_ids().collect(),
            learners: metrics
                .membership_config
                .membership()
                .learner_ids()
                .collect(),
            snapshot_index: metrics.snapshot.map(|id| id.index),
            purged_index: metrics.purged.map(|id| id.index),
            lag: metrics.replication.as_ref().map(|replication| {
                replication
                    .iter()
                    .map(|(node, matched)| (*node, matched.map(|id| last.saturating_sub(id.index))))
                    .collect()
            }),
        }
    }
}
