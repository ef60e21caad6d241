//! The dialing side of node-to-node traffic: [`PeerLinks`] keeps one QUIC connection per
//! peer address (dialed on first use, proved with the cluster secret, dropped on any error so
//! the next message dials again) and sends each Raft message on its own stream.
//! [`GroupNetwork`] is openraft's `RaftNetworkFactory` for one group over these links.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use parking_lot::Mutex;

use super::peer_auth::{self, PeerProof, PeerRole, EXPORTED_BYTES, EXPORTER_LABEL};
use super::rpc::{self, GroupId, MalformedMessage, PeerRequest, PeerResponse};
use super::types::{ClusterTypes, NodeId};
use crate::limits::{CLUSTER_HANDSHAKE_TIMEOUT_MS, CLUSTER_RPC_BYTES_MAX};

/// Largest proof message (a node id and a MAC).
const PROOF_BYTES_MAX: usize = 256;

/// Why a message did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Dialing failed (nobody listens, a cut network).
    #[error("cannot reach node {node} at {addr}: {reason}")]
    Unreachable {
        /// The node dialed.
        node: NodeId,
        /// Its address.
        addr: SocketAddr,
        /// What failed.
        reason: String,
    },
    /// The peer did not prove it is the member we dialed.
    #[error("node at {addr} is not member {node} of this cluster: {reason}")]
    NotTheMember {
        /// The node dialed.
        node: NodeId,
        /// Its address.
        addr: SocketAddr,
        /// What failed.
        reason: &'static str,
    },
    /// The stream broke or the answer did not come in time.
    #[error("message to node {node} failed: {reason}")]
    Stream {
        /// The node.
        node: NodeId,
        /// What failed.
        reason: String,
    },
    /// The answer was not a message.
    #[error(transparent)]
    Malformed(#[from] MalformedMessage),
}

/// This node's connections to its peers, shared by all its groups.
pub struct PeerLinks {
    node_id: NodeId,
    secret: Arc<[u8]>,
    /// The QUIC listener's endpoint, once bound: a node dials from the address it listens
    /// on, so all its traffic has one address (what a firewall, or the partition test's
    /// proxy, sees of it).
    endpoint: std::sync::OnceLock<quinn::Endpoint>,
    config: quinn::ClientConfig,
    connections: Mutex<HashMap<SocketAddr, quinn::Connection>>,
}

impl PeerLinks {
    /// Links that dial once [`PeerLinks::dial_from`] gave them an endpoint.
    pub fn new(node_id: NodeId, secret: &[u8], config: quinn::ClientConfig) -> PeerLinks {
        PeerLinks {
            node_id,
            secret: secret.into(),
            endpoint: std::sync::OnceLock::new(),
            config,
            connections: Mutex::new(HashMap::new()),
        }
    }

    /// Dial from `endpoint` (the QUIC listener's) from now on.
    pub fn dial_from(&self, endpoint: quinn::Endpoint) {
        let _ = self.endpoint.set(endpoint);
    }

    /// Sends `request` to `node` at `addr`, answers within `ttl`.
    pub async fn call(
        &self,
        node: NodeId,
        addr: SocketAddr,
        request: &PeerRequest,
        ttl: Duration,
    ) -> Result<PeerResponse, LinkError> {
        let bytes = rpc::encode(request)?;
        let exchange = async {
            let connection = self.connection(node, addr).await?;
            let answer = exchange(&connection, &bytes, CLUSTER_RPC_BYTES_MAX).await;
            if answer.is_err() {
                self.forget(addr, &connection);
            }
            answer.map_err(|reason| LinkError::Stream { node, reason })
        };
        let answer = match tokio::time::timeout(ttl, exchange).await {
            Ok(answer) => answer?,
            Err(_) => {
                return Err(LinkError::Stream {
                    node,
                    reason: format!("no answer within {} ms", ttl.as_millis()),
                })
            }
        };
        Ok(rpc::decode(&answer)?)
    }

    /// The live connection to `addr`, dialed and proved if there is none.
    async fn connection(
        &self,
        node: NodeId,
        addr: SocketAddr,
    ) -> Result<quinn::Connection, LinkError> {
        let cached = self.connections.lock().get(&addr).cloned();
        if let Some(connection) = cached {
            if connection.close_reason().is_none() {
                return Ok(connection);
            }
        }
        let unreachable = |reason: String| LinkError::Unreachable { node, addr, reason };
        let Some(endpoint) = self.endpoint.get() else {
            return Err(unreachable(
                "the QUIC listener is not bound yet".to_string(),
            ));
        };
        let connecting = endpoint
            .connect_with(self.config.clone(), addr, "strand-node")
            .map_err(|e| unreachable(e.to_string()))?;
        let handshake = Duration::from_millis(CLUSTER_HANDSHAKE_TIMEOUT_MS);
        let connection = tokio::time::timeout(handshake, connecting)
            .await
            .map_err(|_| unreachable("no handshake in time".to_string()))?
            .map_err(|e| unreachable(e.to_string()))?;
        let proved = tokio::time::timeout(handshake, self.prove(&connection, node)).await;
        let refused = |reason| {
            connection.close(quinn::VarInt::from_u32(1), b"not a member");
            LinkError::NotTheMember { node, addr, reason }
        };
        match proved {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => return Err(refused(reason)),
            Err(_) => return Err(refused("no proof in time")),
        }
        tracing::info!(peer = node, %addr, "connected to cluster peer");
        self.connections.lock().insert(addr, connection.clone());
        Ok(connection)
    }

    /// The secret's proof, both ways, on the connection's first stream.
    async fn prove(
        &self,
        connection: &quinn::Connection,
        node: NodeId,
    ) -> Result<(), &'static str> {
        let exported = exported_material(connection).ok_or("no TLS keying material")?;
        let mine = peer_auth::prove(&self.secret, PeerRole::Dialer, self.node_id, &exported);
        let mine = rpc::encode(&mine).map_err(|_| "cannot encode the proof")?;
        let answer = exchange(connection, &mine, PROOF_BYTES_MAX)
            .await
            .map_err(|_| "the peer refused our proof")?;
        let theirs: PeerProof = rpc::decode(&answer).map_err(|_| "malformed proof")?;
        if theirs.node_id != node {
            return Err("another node answers at this address");
        }
        if !peer_auth::verify(&self.secret, PeerRole::Listener, &theirs, &exported) {
            return Err("the peer does not know the cluster secret");
        }
        Ok(())
    }

    fn forget(&self, addr: SocketAddr, connection: &quinn::Connection) {
        let mut connections = self.connections.lock();
        if connections
            .get(&addr)
            .is_some_and(|cached| cached.stable_id() == connection.stable_id())
        {
            connections.remove(&addr);
        }
    }
}

/// The keying material both sides' proofs cover.
pub(crate) fn exported_material(connection: &quinn::Connection) -> Option<[u8; EXPORTED_BYTES]> {
    let mut exported = [0u8; EXPORTED_BYTES];
    connection
        .export_keying_material(&mut exported, EXPORTER_LABEL, b"")
        .ok()?;
    Some(exported)
}

/// One request and its answer on a new stream.
async fn exchange(
    connection: &quinn::Connection,
    request: &[u8],
    answer_max: usize,
) -> Result<Vec<u8>, String> {
    let (mut send, mut recv) = connection.open_bi().await.map_err(|e| e.to_string())?;
    send.write_all(request).await.map_err(|e| e.to_string())?;
    send.finish().map_err(|e| e.to_string())?;
    recv.read_to_end(answer_max)
        .await
        .map_err(|e| e.to_string())
}

/// openraft's network for one group: a client per target over the shared links.
#[derive(Clone)]
pub struct GroupNetwork {
    links: Arc<PeerLinks>,
    group: GroupId,
}

impl GroupNetwork {
    /// The network of `group` over `links`.
    pub fn new(links: Arc<PeerLinks>, group: GroupId) -> GroupNetwork {
        GroupNetwork { links, group }
    }
}

/// One target of one group.
pub struct GroupClient {
    links: Arc<PeerLinks>,
    group: GroupId,
    target: NodeId,
    addr: Option<SocketAddr>,
}

impl RaftNetworkFactory<ClusterTypes> for GroupNetwork {
    type Network = GroupClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> GroupClient {
        GroupClient {
            links: self.links.clone(),
            group: self.group,
            target,
            addr: node.addr.parse().ok(),
        }
    }
}

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>;

impl GroupClient {
    async fn send<E: std::error::Error>(
        &self,
        request: PeerRequest,
        option: &RPCOption,
    ) -> Result<PeerResponse, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>> {
        let Some(addr) = self.addr else {
            let error = LinkError::Stream {
                node: self.target,
                reason: "the member's address is not IP:PORT".to_string(),
            };
            return Err(RPCError::Unreachable(Unreachable::new(&error)));
        };
        match self
            .links
            .call(self.target, addr, &request, option.hard_ttl())
            .await
        {
            Ok(PeerResponse::Refused(reason)) => {
                let error = LinkError::Stream {
                    node: self.target,
                    reason,
                };
                Err(RPCError::Network(NetworkError::new(&error)))
            }
            Ok(response) => Ok(response),
            Err(error @ (LinkError::Unreachable { .. } | LinkError::NotTheMember { .. })) => {
                Err(RPCError::Unreachable(Unreachable::new(&error)))
            }
            Err(error) => Err(RPCError::Network(NetworkError::new(&error))),
        }
    }

    fn unexpected<E: std::error::Error>(
        &self,
    ) -> RPCError<NodeId, BasicNode, RaftError<NodeId, E>> {
        let error = LinkError::Stream {
            node: self.target,
            reason: "answered another kind of message".to_string(),
        };
        RPCError::Network(NetworkError::new(&error))
    }
}

impl RaftNetwork<ClusterTypes> for GroupClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<ClusterTypes>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        let request = PeerRequest::AppendEntries {
            group: self.group,
            rpc,
        };
        match self.send(request, &option).await? {
            PeerResponse::AppendEntries(answer) => {
                answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            _ => Err(self.unexpected()),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<ClusterTypes>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        let request = PeerRequest::InstallSnapshot {
            group: self.group,
            rpc,
        };
        match self.send(request, &option).await? {
            PeerResponse::InstallSnapshot(answer) => {
                answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            _ => Err(self.unexpected()),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        let request = PeerRequest::Vote {
            group: self.group,
            rpc,
        };
        match self.send(request, &option).await? {
            PeerResponse::Vote(answer) => {
                answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            _ => Err(self.unexpected()),
        }
    }
}
