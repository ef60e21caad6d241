//! [`ClusterNode`]: this node's part in the cluster. It opens each Raft group's log and state
//! machine under `<data-dir>/cluster/group-<id>/`, starts openraft for it over [`PeerLinks`],
//! makes a fresh cluster's first membership (every member named by `--cluster`; each node
//! proposes the same one, and openraft takes it only on a node whose log is empty; a node
//! started with `--join` proposes none and waits to be added), changes the membership of
//! every group on request (`members.rs`), and answers what `strand cluster status` shows.
//!
//! The groups are the meta group (id 0) and the data groups (`groups.rs`); every member is a
//! voter of every group, and `placement.rs` keeps the data groups' leaders on the meta
//! group's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::{BasicNode, Config, Raft, SnapshotPolicy};
use strand_log::Store;

use super::forward::{ForwardError, ForwardedFrameRunner, ForwardedSqlRunner, SqlForwarder};
use super::groups::{AppliedIndexes, GroupMap};
use super::links::{GroupNetwork, PeerLinks};
use super::members::{self, Member, MembershipChange, MembershipError};
use super::raft_log::RaftLogStore;
use super::rpc::GroupId;
use super::serve::PeerService;
use super::state_machine::{ClusterStateMachine, GroupPlace, Listener};
use super::status::{ClusterStatus, GroupStatus};
use super::tls;
use super::types::{ClusterTypes, NodeId};
use super::writer::{ClusterWriter, ClusterWriters};
use super::{placement, ticks};
use crate::config::ClusterSettings;
use crate::limits::{
    CLUSTER_ELECTION_TIMEOUT_MS_MAX, CLUSTER_ELECTION_TIMEOUT_MS_MIN, CLUSTER_HEARTBEAT_MS,
    CLUSTER_SNAPSHOT_EVERY_ENTRIES,
};

pub use super::groups::META_GROUP;

/// Where the cluster keeps its groups, under the data directory.
const CLUSTER_DIR: &str = "cluster";

/// Why the node could not join its cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// openraft refused the configuration.
    #[error("Raft configuration: {0}")]
    Config(String),
    /// A group's Raft log could not be opened.
    #[error("Raft log of group {group}: {reason}")]
    RaftLog {
        /// The group.
        group: GroupId,
        /// What failed.
        reason: String,
    },
    /// A group's state machine could not be opened.
    #[error("state machine of group {group}: {reason}")]
    StateMachine {
        /// The group.
        group: GroupId,
        /// What failed.
        reason: String,
    },
    /// openraft could not start.
    #[error("Raft of group {group} did not start: {reason}")]
    Start {
        /// The group.
        group: GroupId,
        /// What failed.
        reason: String,
    },
    /// The dialing endpoint could not be made.
    #[error("cluster dialer: {0}")]
    Dialer(String),
}

/// This node in its cluster.
pub struct ClusterNode {
    settings: ClusterSettings,
    groups: Vec<Raft<ClusterTypes>>,
    /// Each group's writer, by group id.
    writers: Arc<ClusterWriters>,
    links: Arc<PeerLinks>,
    peers: Arc<PeerService>,
    /// The task that keeps the data groups' leaders on the meta group's (`placement.rs`).
    placement: tokio::task::JoinHandle<()>,
    /// The task that proposes the data groups' ticks while this node leads them (`ticks.rs`).
    ticker: tokio::task::JoinHandle<()>,
}

impl ClusterNode {
    /// Opens the groups of `map` under `data_dir` and starts Raft; call once the QUIC
    /// listener can take [`ClusterNode::peer_service`]'s connections soon (peers retry until
    /// it does).
    pub async fn start(
        settings: &ClusterSettings,
        data_dir: &Path,
        store: Arc<Store>,
        listener: Listener,
        map: GroupMap,
    ) -> Result<ClusterNode, ClusterError> {
        let config = Config {
            cluster_name: "strand".to_string(),
            heartbeat_interval: CLUSTER_HEARTBEAT_MS,
            election_timeout_min: CLUSTER_ELECTION_TIMEOUT_MS_MIN,
            election_timeout_max: CLUSTER_ELECTION_TIMEOUT_MS_MAX,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(CLUSTER_SNAPSHOT_EVERY_ENTRIES),
            ..Config::default()
        };
        let config = Arc::new(
            config
                .validate()
                .map_err(|e| ClusterError::Config(e.to_string()))?,
        );
        let links = Arc::new(dial_links(settings)?);
        let indexes = Arc::new(AppliedIndexes::new(&map));
        let mut groups = Vec::new();
        let mut writers: Vec<Arc<ClusterWriter>> = Vec::new();
        for group in map.groups() {
            let dir = group_dir(data_dir, group);
            let log =
                RaftLogStore::open(&dir.join("raft-log")).map_err(|e| ClusterError::RaftLog {
                    group,
                    reason: e.to_string(),
                })?;
            let machine = ClusterStateMachine::open(store.clone(), &dir.join("state"))
                .map_err(|e| ClusterError::StateMachine {
                    group,
                    reason: e.to_string(),
                })?
                .with_listener(listener.clone())
                .in_place(GroupPlace {
                    group,
                    map: map.clone(),
                    indexes: indexes.clone(),
                });
            let network = GroupNetwork::new(links.clone(), group);
            let raft = Raft::new(settings.node_id, config.clone(), network, log, machine)
                .await
                .map_err(|e| ClusterError::Start {
                    group,
                    reason: e.to_string(),
                })?;
            let meta = writers.first().cloned();
            let writer =
                ClusterWriter::new(raft.clone(), store.clone(), group, indexes.clone(), meta);
            writers.push(Arc::new(writer));
            groups.push(raft);
        }
        tracing::warn!(
            node = settings.node_id,
            "cluster mode is a preview; see docs/cluster.md for what is not there yet"
        );
        let placement = tokio::spawn(placement::steer_forever(settings.node_id, groups.clone()));
        let members = settings.members.iter().map(|(id, _)| *id).collect();
        let peers = PeerService::new(settings.node_id, members, &settings.secret, groups.clone());
        let writers = Arc::new(ClusterWriters::new(map, writers));
        let ticker = tokio::spawn(ticks::tick_forever(writers.clone()));
        Ok(ClusterNode {
            settings: settings.clone(),
            groups,
            writers,
            links,
            peers: Arc::new(peers),
            placement,
            ticker,
        })
    }

    /// Every group's writer, and which partition goes to which group.
    pub fn writers(&self) -> Arc<ClusterWriters> {
        self.writers.clone()
    }

    /// What forwards a SQL request to the meta group's leader (`forward.rs`).
    pub fn sql_forwarder(&self) -> Option<Arc<SqlForwarder>> {
        let meta = self.groups.first()?.clone();
        let forwarder = SqlForwarder::new(self.settings.node_id, self.links.clone(), meta);
        Some(Arc::new(forwarder))
    }

    /// Run the SQL requests other members forward to this one with `runner`.
    pub fn run_forwarded_sql_with(&self, runner: Arc<dyn ForwardedSqlRunner>) {
        self.peers.run_forwarded_sql_with(runner);
    }

    /// Run the QUIC produces other members forward to this one with `runner`.
    pub fn run_forwarded_frames_with(&self, runner: Arc<dyn ForwardedFrameRunner>) {
        self.peers.run_forwarded_frames_with(runner);
    }

    /// Dial peers from `endpoint`, the bound QUIC listener's.
    pub fn dial_from(&self, endpoint: quinn::Endpoint) {
        self.links.dial_from(endpoint);
    }

    /// What the QUIC listener hands node-to-node connections to.
    pub fn peer_service(&self) -> Arc<PeerService> {
        self.peers.clone()
    }

    /// Proposes the first membership to every group that has none yet. Each node does this
    /// with the same members, so whichever node's proposal wins, the cluster is the same.
    /// A node started with `--join` does not: with a membership of its own it would be a
    /// cluster apart; it waits for a leader to add it.
    pub async fn form(&self) {
        if self.settings.join {
            tracing::info!(
                node = self.settings.node_id,
                "joining: waiting for the cluster's leader to add this node"
            );
            return;
        }
        let members: BTreeMap<NodeId, BasicNode> = self
            .settings
            .members
            .iter()
            .map(|(id, addr)| (*id, BasicNode::new(addr.to_string())))
            .collect();
        for (group, raft) in self.groups.iter().enumerate() {
            match raft.is_initialized().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(error) => {
                    tracing::error!(group, %error, "Raft stopped");
                    continue;
                }
            }
            match raft.initialize(members.clone()).await {
                Ok(()) => tracing::info!(group, "proposed the cluster's first membership"),
                // Another node's proposal reached this one first: the same members.
                Err(error) => tracing::info!(group, %error, "membership already set"),
            }
        }
    }

    /// What `strand cluster status` shows of this node.
    pub fn status(&self) -> ClusterStatus {
        let groups = self
            .groups
            .iter()
            .enumerate()
            .map(|(group, raft)| GroupStatus::of(group as GroupId, &raft.metrics().borrow()))
            .collect();
        ClusterStatus {
            node_id: self.settings.node_id,
            members: self.members(),
            groups,
        }
    }

    /// The meta group's members; before the cluster formed (or this node was added), the
    /// members `--cluster` names, as voters.
    pub fn members(&self) -> Vec<Member> {
        let current = self
            .groups
            .first()
            .map(|raft| members::members_of(&raft.metrics().borrow()))
            .unwrap_or_default();
        if !current.is_empty() {
            return current;
        }
        self.settings
            .members
            .iter()
            .map(|(id, addr)| Member {
                id: *id,
                addr: addr.to_string(),
                role: "voter".to_string(),
            })
            .collect()
    }

    /// Makes `change` in every group (`members::change_every_group`) and answers the members
    /// after it. On a member that does not lead, the change is sent on to the leader, which
    /// makes it and answers its members; while no leader is known, `NotLeader`.
    pub async fn change_members(
        &self,
        change: MembershipChange,
    ) -> Result<Vec<Member>, MembershipError> {
        let here = members::change_every_group(&self.groups, &change).await;
        let error = match here {
            Ok(()) => return Ok(self.members()),
            Err(error @ MembershipError::NotLeader { leader: Some(_) }) => error,
            Err(error) => return Err(error),
        };
        let Some(forwarder) = self.sql_forwarder() else {
            return Err(error);
        };
        match forwarder.forward_membership(change).await {
            Ok(answer) => answer,
            Err(ForwardError::NoLeader) => Err(error),
            Err(unanswered) => Err(MembershipError::Unconfirmed {
                group: META_GROUP,
                reason: format!(
                    "sent on to the leader, which did not answer ({unanswered}): the change \
                     may or may not have been made; `strand cluster status` shows the members"
                ),
            }),
        }
    }

    /// Stops every group's Raft (the server is stopping).
    pub async fn shutdown(&self) {
        self.placement.abort();
        self.ticker.abort();
        for (group, raft) in self.groups.iter().enumerate() {
            if let Err(error) = raft.shutdown().await {
                tracing::warn!(group, %error, "Raft did not stop cleanly");
            }
        }
    }
}

/// `<data-dir>/cluster/group-<id>`.
fn group_dir(data_dir: &Path, group: GroupId) -> PathBuf {
    data_dir.join(CLUSTER_DIR).join(format!("group-{group}"))
}

/// Links that dial from the QUIC listener's endpoint once it is bound.
fn dial_links(settings: &ClusterSettings) -> Result<PeerLinks, ClusterError> {
    let config = tls::dialer_config().map_err(|e| ClusterError::Dialer(e.to_string()))?;
    Ok(PeerLinks::new(settings.node_id, &settings.secret, config))
}
