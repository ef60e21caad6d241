//! Membership changes while the cluster serves: adding a node (as a learner first, made a
//! voter once it holds every entry up to its addition) and removing one. Both run on the
//! leader of each group, through openraft's `add_learner` and `change_membership` (a joint
//! configuration, then the new one, each committed by a majority of old and new voters).
//!
//! Each step waits a bounded time: a change the cluster could not confirm in time may still
//! take effect, so every request may be sent again and finishes what an earlier one started
//! (adding a voter that is already one at that address, or removing a node that is already
//! gone, changes nothing). Not here: the HTTP route and who may call it (`http/cluster_members.rs`).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers, Raft, RaftMetrics};
use serde::{Deserialize, Serialize};

use super::rpc::GroupId;
use super::types::{ClusterTypes, NodeId};
use crate::limits::{CLUSTER_MEMBERSHIP_COMMIT_WAIT_MS, CLUSTER_MEMBER_CATCH_UP_WAIT_MS};

/// Why a membership change was not made (or not confirmed). Serializable: a member that
/// forwarded the change (`forward.rs`) answers the leader's reason.
#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum MembershipError {
    /// This node does not lead the group; `leader` does, if known (id and QUIC address).
    #[error("this node is not the leader{}", leader_text(.leader))]
    NotLeader {
        /// The leader this node knows of.
        leader: Option<(NodeId, String)>,
    },
    /// The node to remove is neither a voter nor a learner.
    #[error("node {0} is not a member of the cluster")]
    Unknown(NodeId),
    /// Removing it would leave no voter.
    #[error("node {0} is the cluster's only voter: a cluster needs at least one")]
    LastVoter(NodeId),
    /// The id or address is taken by a member at another address or of another id.
    #[error("{0}")]
    Taken(String),
    /// Another change has not been committed yet.
    #[error("another membership change is in progress; send the request again once it is done")]
    InProgress,
    /// The new node did not get every entry up to its addition in time. It stays a learner
    /// and the leader goes on sending it entries.
    #[error(
        "node {node} is a learner and still catching up ({behind}) after {waited_ms} ms; send \
         the request again to make it a voter once it has caught up"
    )]
    NotCaughtUp {
        /// The node being added.
        node: NodeId,
        /// How far behind it was, for the operator.
        behind: String,
        /// How long the request waited.
        waited_ms: u64,
    },
    /// A majority did not confirm the change in time, or openraft stopped. The change may
    /// still take effect: `strand cluster status` shows the members.
    #[error("group {group}: the membership change was not confirmed: {reason}")]
    Unconfirmed {
        /// The group.
        group: GroupId,
        /// What failed.
        reason: String,
    },
}

fn leader_text(leader: &Option<(NodeId, String)>) -> String {
    match leader {
        Some((id, addr)) => format!("; node {id} at {addr} is"),
        None => "; no leader is known yet".to_string(),
    }
}

/// A member as a group's membership names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Its node id.
    pub id: NodeId,
    /// The QUIC address the others reach it at.
    pub addr: String,
    /// `voter` (counts toward a majority, may lead) or `learner` (receives entries only).
    pub role: String,
}

/// A membership change, as the routes ask for it and a member forwards it to the leader.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembershipChange {
    /// Make `node` at `addr` a voter of every group.
    Add {
        /// Its `--node-id`.
        node: NodeId,
        /// Its QUIC address.
        addr: SocketAddr,
    },
    /// Remove `node` from every group.
    Remove {
        /// Its node id.
        node: NodeId,
    },
}

/// Makes `change` in every group of `groups` (the meta group first), as their leader:
/// `NotLeader` on a member that does not lead. Adding runs [`add_voter`] in each group;
/// removing skips a group that does not know the node (an addition cut short reached only
/// the groups before it), and a node no group knows is `Unknown`.
pub async fn change_every_group(
    groups: &[Raft<ClusterTypes>],
    change: &MembershipChange,
) -> Result<(), MembershipError> {
    match *change {
        MembershipChange::Add { node, addr } => {
            for (group, raft) in groups.iter().enumerate() {
                add_voter(group as GroupId, raft, node, addr).await?;
            }
            tracing::info!(node, %addr, "added a member");
        }
        MembershipChange::Remove { node } => {
            let mut known = false;
            for (group, raft) in groups.iter().enumerate() {
                match remove(group as GroupId, raft, node).await {
                    Ok(()) => known = true,
                    Err(MembershipError::Unknown(_)) => {}
                    Err(error) => return Err(error),
                }
            }
            if !known {
                return Err(MembershipError::Unknown(node));
            }
            tracing::info!(node, "removed a member");
        }
    }
    Ok(())
}

/// The members of a group's current membership, by id (a joint configuration's voters are
/// the voters of either half).
pub fn members_of(metrics: &RaftMetrics<NodeId, BasicNode>) -> Vec<Member> {
    let membership = metrics.membership_config.membership();
    let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    membership
        .nodes()
        .map(|(id, node)| Member {
            id: *id,
            addr: node.addr.clone(),
            role: if voters.contains(id) {
                "voter".to_string()
            } else {
                "learner".to_string()
            },
        })
        .collect()
}

/// Makes `node` at `addr` a voter of the group `raft` leads: a learner first, then a voter
/// once it holds every entry up to the one that added it.
pub async fn add_voter(
    group: GroupId,
    raft: &Raft<ClusterTypes>,
    node: NodeId,
    addr: SocketAddr,
) -> Result<(), MembershipError> {
    let metrics = leading(raft)?;
    let membership = metrics.membership_config.membership();
    let addr_text = addr.to_string();
    if let Some((other, _)) = membership
        .nodes()
        .find(|(id, known)| **id != node && known.addr == addr_text)
    {
        return Err(MembershipError::Taken(format!(
            "node {other} is a member at {addr}; two members cannot share an address"
        )));
    }
    if let Some(known) = membership.get_node(&node) {
        if known.addr != addr_text {
            return Err(MembershipError::Taken(format!(
                "node {node} is a member at {}; remove it before adding it at another address",
                known.addr
            )));
        }
        if is_settled_voter(&metrics, node) {
            return Ok(());
        }
        // A learner (an earlier request that timed out) or a voter halfway through a change:
        // the steps below finish what was started.
    }
    let added = within(
        group,
        raft.add_learner(node, BasicNode::new(addr_text), false),
    )
    .await?;
    wait_caught_up(group, raft, node, added.log_id.index).await?;
    let voters = BTreeSet::from([node]);
    within(
        group,
        raft.change_membership(ChangeMembers::AddVoterIds(voters), false),
    )
    .await?;
    Ok(())
}

/// Removes `node` (a voter or a learner) from the group `raft` leads. Removing the leader
/// itself works: it leads until the new membership is committed, then steps down.
pub async fn remove(
    group: GroupId,
    raft: &Raft<ClusterTypes>,
    node: NodeId,
) -> Result<(), MembershipError> {
    let metrics = leading(raft)?;
    let membership = metrics.membership_config.membership();
    if membership.get_node(&node).is_none() {
        return Err(MembershipError::Unknown(node));
    }
    let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    let change = if voters.contains(&node) {
        let last_config = membership.get_joint_config().last().cloned();
        if last_config.is_some_and(|last| last.iter().all(|voter| *voter == node)) {
            return Err(MembershipError::LastVoter(node));
        }
        ChangeMembers::RemoveVoters(BTreeSet::from([node]))
    } else {
        ChangeMembers::RemoveNodes(BTreeSet::from([node]))
    };
    // `retain: false`: a removed voter is gone, not kept as a learner.
    within(group, raft.change_membership(change, false)).await?;
    Ok(())
}

/// This node's metrics if it leads the group, else `NotLeader`.
fn leading(raft: &Raft<ClusterTypes>) -> Result<RaftMetrics<NodeId, BasicNode>, MembershipError> {
    let metrics = raft.metrics().borrow().clone();
    if metrics.current_leader == Some(metrics.id) {
        return Ok(metrics);
    }
    let leader = metrics.current_leader.and_then(|id| {
        let membership = metrics.membership_config.membership();
        membership.get_node(&id).map(|node| (id, node.addr.clone()))
    });
    Err(MembershipError::NotLeader { leader })
}

/// Whether `node` is a voter of a membership that is not halfway through a change.
fn is_settled_voter(metrics: &RaftMetrics<NodeId, BasicNode>, node: NodeId) -> bool {
    let configs = metrics.membership_config.membership().get_joint_config();
    configs.len() == 1 && configs.iter().all(|config| config.contains(&node))
}

/// Waits until the leader knows `node` holds every entry up to `index` (the entry that made
/// it a learner), or the wait ends.
async fn wait_caught_up(
    group: GroupId,
    raft: &Raft<ClusterTypes>,
    node: NodeId,
    index: u64,
) -> Result<(), MembershipError> {
    let matched = |metrics: &RaftMetrics<NodeId, BasicNode>| -> Option<u64> {
        let replication = metrics.replication.as_ref()?;
        replication.get(&node)?.as_ref().map(|id| id.index)
    };
    let waited = Duration::from_millis(CLUSTER_MEMBER_CATCH_UP_WAIT_MS);
    let outcome = raft
        .wait(Some(waited))
        .metrics(
            |metrics| {
                metrics.current_leader != Some(metrics.id)
                    || metrics
                        .membership_config
                        .membership()
                        .get_node(&node)
                        .is_none()
                    || matched(metrics).is_some_and(|at| at >= index)
            },
            "the new member caught up",
        )
        .await;
    let metrics = match outcome {
        Ok(metrics) => metrics,
        Err(openraft::metrics::WaitError::Timeout(..)) => {
            let latest = raft.metrics().borrow().clone();
            let behind = match matched(&latest) {
                Some(at) => format!("it holds entries up to {at} of {index}"),
                None => "it has not answered the leader yet".to_string(),
            };
            return Err(MembershipError::NotCaughtUp {
                node,
                behind,
                waited_ms: CLUSTER_MEMBER_CATCH_UP_WAIT_MS,
            });
        }
        Err(error) => {
            return Err(MembershipError::Unconfirmed {
                group,
                reason: error.to_string(),
            })
        }
    };
    if metrics.current_leader != Some(metrics.id) {
        return leading(raft).map(|_| ());
    }
    if metrics
        .membership_config
        .membership()
        .get_node(&node)
        .is_none()
    {
        return Err(MembershipError::Unconfirmed {
            group,
            reason: format!("node {node} was removed while it caught up"),
        });
    }
    Ok(())
}

type ChangeResult = Result<
    openraft::raft::ClientWriteResponse<ClusterTypes>,
    RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>,
>;

/// `change`, waited for at most `CLUSTER_MEMBERSHIP_COMMIT_WAIT_MS` (a leader cut off from
/// the majority waits for ever otherwise), its errors as [`MembershipError`]s.
async fn within(
    group: GroupId,
    change: impl std::future::Future<Output = ChangeResult>,
) -> Result<openraft::raft::ClientWriteResponse<ClusterTypes>, MembershipError> {
    let waited = Duration::from_millis(CLUSTER_MEMBERSHIP_COMMIT_WAIT_MS);
    let unconfirmed = |reason: String| MembershipError::Unconfirmed { group, reason };
    match tokio::time::timeout(waited, change).await {
        Err(_) => Err(unconfirmed(format!(
            "a majority did not confirm it within {CLUSTER_MEMBERSHIP_COMMIT_WAIT_MS} ms; it \
             may still take effect"
        ))),
        Ok(Ok(response)) => Ok(response),
        Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward)))) => {
            Err(MembershipError::NotLeader {
                leader: forward
                    .leader_id
                    .zip(forward.leader_node.map(|node| node.addr)),
            })
        }
        Ok(Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(
            ChangeMembershipError::InProgress(_),
        )))) => Err(MembershipError::InProgress),
        Ok(Err(error)) => Err(unconfirmed(error.to_string())),
    }
}

#[cfg(test)]
mod tests;
