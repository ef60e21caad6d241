//! The listening side of node-to-node traffic: a connection that negotiated ALPN
//! `strand-cluster/1` on the QUIC listener must first prove the cluster secret (its first
//! stream, within `CLUSTER_HANDSHAKE_TIMEOUT_MS`); then each stream is one Raft message,
//! handed to its group's `Raft` and answered. Anything malformed fails its stream only.
//!
//! A forwarded SQL request or QUIC request (`forward.rs`) is handed to the [`ForwardedSqlRunner`]
//! or [`ForwardedFrameRunner`] the server installed; it runs as the user the peer names,
//! which this node trusts because the peer proved the cluster secret.
//!
//! A peer is admitted under an id `--cluster` names or one of a group's current membership
//! (a voter or learner added while the cluster ran, whose id this node's flags do not know).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use openraft::Raft;
use quinn::VarInt;
use tracing::Instrument;

use super::forward::{
    ForwardedAnswer, ForwardedError, ForwardedFrameRunner, ForwardedFrames, ForwardedSqlRunner,
};
use super::links::exported_material;
use super::members;
use super::peer_auth::{self, PeerProof, PeerRole};
use super::rpc::{self, GroupId, PeerRequest, PeerResponse};
use super::types::{ClusterTypes, NodeId};
use crate::cluster::node::META_GROUP;
use crate::limits::{
    CLUSTER_HANDSHAKE_TIMEOUT_MS, CLUSTER_RECEIVE_WINDOW_BYTES, CLUSTER_RPC_BYTES_MAX,
};

/// Largest proof message (a node id and a MAC).
const PROOF_BYTES_MAX: usize = 256;
/// Close code for a peer that did not prove the secret.
const NOT_A_MEMBER: u32 = 0x4e4d;

/// What answers other nodes: this node's id, the secret, and its groups' Raft instances.
pub struct PeerService {
    node_id: NodeId,
    /// The ids `--cluster` names.
    members: Vec<NodeId>,
    secret: Arc<[u8]>,
    groups: Vec<Raft<ClusterTypes>>,
    /// Runs forwarded SQL; installed once the engine exists (after the groups started).
    sql_runner: OnceLock<Arc<dyn ForwardedSqlRunner>>,
    /// Runs forwarded produces; installed with the QUIC handlers.
    frame_runner: OnceLock<Arc<dyn ForwardedFrameRunner>>,
}

impl PeerService {
    /// Answers for `groups` (indexed by group id) as `node_id`; only `members` and the
    /// members of the groups' current membership may connect.
    pub fn new(
        node_id: NodeId,
        members: Vec<NodeId>,
        secret: &[u8],
        groups: Vec<Raft<ClusterTypes>>,
    ) -> PeerService {
        PeerService {
            node_id,
            members,
            secret: secret.into(),
            groups,
            sql_runner: OnceLock::new(),
            frame_runner: OnceLock::new(),
        }
    }

    /// Run forwarded SQL requests with `runner` from now on (set once).
    pub fn run_forwarded_sql_with(&self, runner: Arc<dyn ForwardedSqlRunner>) {
        let _ = self.sql_runner.set(runner);
    }

    /// Run forwarded produces with `runner` from now on (set once).
    pub fn run_forwarded_frames_with(&self, runner: Arc<dyn ForwardedFrameRunner>) {
        let _ = self.frame_runner.set(runner);
    }

    /// Serves a peer connection that [`PeerService::admit`]ted `peer`, until it closes.
    pub async fn serve(self: Arc<Self>, connection: quinn::Connection, peer: NodeId) {
        let remote = connection.remote_address();
        // The listener's window fits clients until they authenticate; a leader sends batches.
        connection.set_receive_window(VarInt::from_u32(CLUSTER_RECEIVE_WINDOW_BYTES));
        let span = tracing::info_span!("cluster_peer", peer, %remote);
        async move {
            tracing::info!("cluster peer connected");
            loop {
                let (send, recv) = match connection.accept_bi().await {
                    Ok(streams) => streams,
                    Err(error) => {
                        tracing::info!(%error, "cluster peer connection ended");
                        return;
                    }
                };
                let service = self.clone();
                tokio::spawn(service.answer(send, recv).in_current_span());
            }
        }
        .instrument(span)
        .await;
    }

    /// The peer's id once it proved the secret (and got our proof back); else closes the
    /// connection and answers `None`.
    pub async fn admit(&self, connection: &quinn::Connection) -> Option<NodeId> {
        let admitted = self.check_proof(connection).await;
        if admitted.is_none() {
            connection.close(VarInt::from_u32(NOT_A_MEMBER), b"not a member");
        }
        admitted
    }

    async fn check_proof(&self, connection: &quinn::Connection) -> Option<NodeId> {
        let timeout = Duration::from_millis(CLUSTER_HANDSHAKE_TIMEOUT_MS);
        let admitted = tokio::time::timeout(timeout, async {
            let exported = exported_material(connection)?;
            let (mut send, mut recv) = connection.accept_bi().await.ok()?;
            let bytes = recv.read_to_end(PROOF_BYTES_MAX).await.ok()?;
            let theirs: PeerProof = rpc::decode(&bytes).ok()?;
            let known = self.is_member(theirs.node_id) && theirs.node_id != self.node_id;
            if !known || !peer_auth::verify(&self.secret, PeerRole::Dialer, &theirs, &exported) {
                tracing::warn!(
                    claimed = theirs.node_id,
                    remote = %connection.remote_address(),
                    "refused a cluster connection: no proof of the cluster secret for a member"
                );
                return None;
            }
            let mine = peer_auth::prove(&self.secret, PeerRole::Listener, self.node_id, &exported);
            send.write_all(&rpc::encode(&mine).ok()?).await.ok()?;
            send.finish().ok()?;
            Some(theirs.node_id)
        })
        .await;
        admitted.ok().flatten()
    }

    /// Whether `node` is named by `--cluster` or in any group's current membership.
    pub(crate) fn is_member(&self, node: NodeId) -> bool {
        self.members.contains(&node)
            || self.groups.iter().any(|raft| {
                let metrics = raft.metrics();
                let metrics = metrics.borrow();
                metrics
                    .membership_config
                    .membership()
                    .get_node(&node)
                    .is_some()
            })
    }

    async fn answer(self: Arc<Self>, mut send: quinn::SendStream, mut recv: quinn::RecvStream) {
        let response = match recv.read_to_end(CLUSTER_RPC_BYTES_MAX).await {
            Ok(bytes) => match rpc::decode::<PeerRequest>(&bytes) {
                Ok(request) => self.dispatch(request).await,
                Err(error) => PeerResponse::Refused(error.to_string()),
            },
            Err(error) => PeerResponse::Refused(format!("cannot read the message: {error}")),
        };
        match rpc::encode(&response) {
            Ok(bytes) => {
                let _ = send.write_all(&bytes).await;
                let _ = send.finish();
            }
            Err(error) => tracing::warn!(%error, "cannot encode a cluster answer"),
        }
    }

    async fn dispatch(&self, request: PeerRequest) -> PeerResponse {
        let group = match &request {
            PeerRequest::AppendEntries { group, .. }
            | PeerRequest::Vote { group, .. }
            | PeerRequest::InstallSnapshot { group, .. } => *group,
            PeerRequest::ForwardSql(_)
            | PeerRequest::ForwardFrame(_)
            | PeerRequest::ForwardMembership(_) => META_GROUP,
        };
        let Some(raft) = self.group(group) else {
            return PeerResponse::Refused(format!("this node has no group {group}"));
        };
        match request {
            PeerRequest::AppendEntries { rpc, .. } => {
                PeerResponse::AppendEntries(raft.append_entries(rpc).await)
            }
            PeerRequest::Vote { rpc, .. } => PeerResponse::Vote(raft.vote(rpc).await),
            PeerRequest::InstallSnapshot { rpc, .. } => {
                PeerResponse::InstallSnapshot(raft.install_snapshot(rpc).await)
            }
            PeerRequest::ForwardSql(request) => {
                let answer = match self.sql_runner.get() {
                    Some(runner) => runner.run(request).await,
                    None => ForwardedAnswer::Failed(ForwardedError::new(
                        "unavailable",
                        "this node is starting and does not run SQL yet; send it again",
                    )),
                };
                PeerResponse::ForwardedSql(answer)
            }
            PeerRequest::ForwardFrame(request) => match self.frame_runner.get() {
                Some(runner) => PeerResponse::ForwardedFrames(runner.run_frame(request).await),
                None => PeerResponse::ForwardedFrames(ForwardedFrames { frames: Vec::new() }),
            },
            // Made here, never sent on again: a leader that no longer leads answers
            // `NotLeader`, and the administrator gets that.
            PeerRequest::ForwardMembership(change) => {
                let answer = members::change_every_group(&self.groups, &change)
                    .await
                    .map(|()| members::members_of(&raft.metrics().borrow()));
                PeerResponse::ForwardedMembership(answer)
            }
        }
    }

    fn group(&self, group: GroupId) -> Option<&Raft<ClusterTypes>> {
        self.groups.get(usize::try_from(group).ok()?)
    }
}
