//! A SQL request that a member which does not lead sends on to the meta group's leader
//! (issue 22: "any node forwards a write to its group's leader").
//!
//! Why re-running a whole request on the leader is sound: on a member that does not lead, a
//! statement that writes fails with `not_leader` before it wrote anything, and the statements
//! before it in the same request can only have been reads (a write among them would have
//! failed first). So nothing of the request is stored when the member forwards it, and the
//! reads the leader runs again are harmless.
//!
//! Who the request runs as: the member names the user (and its incarnation) that it
//! authenticated. The leader does not check a password again; it trusts the name because the
//! request came on a connection whose peer proved the cluster secret (`serve.rs`), and it runs
//! the request only if that user still exists there as the same incarnation, with the role the
//! leader's directory holds now.
//!
//! A forwarded request is never forwarded again: the leader runs it itself (the runner is
//! the engine, not the HTTP handler), so if it no longer leads the client gets `not_leader`.
//!
//! This module owns the messages, the dialing side ([`SqlForwarder`]) and the trait the
//! leader's side runs through ([`ForwardedSqlRunner`]); it knows nothing of the engine, the
//! sessions or HTTP, which implement and call it.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use openraft::Raft;
use serde::{Deserialize, Serialize};

use super::links::PeerLinks;
use super::members::{Member, MembershipChange, MembershipError};
use super::rpc::{PeerRequest, PeerResponse};
use super::types::{ClusterTypes, NodeId};
use crate::limits::{
    CLUSTER_FORWARD_MARGIN_MS, CLUSTER_MEMBERSHIP_FORWARD_WAIT_MS, CLUSTER_WRITE_TIMEOUT_MS,
};

/// A SQL request sent on to the leader: who runs it and what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardedSql {
    /// The user the forwarding member authenticated.
    pub user: String,
    /// Which user of that name (`UserIncarnation`); the leader refuses another.
    pub incarnation: u64,
    /// The request's SQL text, as the client sent it.
    pub sql: String,
    /// The request's parameters as a JSON array (postcard cannot carry `serde_json::Value`).
    pub params_json: String,
    /// The client asked for BIGINT values as strings (`"bigint": "string"`).
    pub bigint_as_strings: bool,
}

/// The leader's answer to a [`ForwardedSql`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ForwardedAnswer {
    /// The request ran: the `results` array of the HTTP answer, as JSON text.
    Results {
        /// `[StatementResult, ...]` as JSON.
        results_json: String,
    },
    /// The request failed, as the leader's API error says.
    Failed(ForwardedError),
}

/// An API error carried back from the leader, field by field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardedError {
    /// The error code as clients see it (`duplicate_key`, `not_leader`, ...).
    pub code: String,
    /// The message.
    pub message: String,
    /// Line and column in the SQL text, when the error has one.
    pub position: Option<(u32, u32)>,
    /// In a request of several statements: the failing one (1-based) and how many there are.
    pub statement: Option<(u64, u64)>,
    /// Seconds after which a retry may succeed.
    pub retry_after_s: Option<u64>,
}

impl ForwardedError {
    /// An error with a code and a message only.
    pub fn new(code: &str, message: impl Into<String>) -> ForwardedError {
        ForwardedError {
            code: code.to_string(),
            message: message.into(),
            position: None,
            statement: None,
            retry_after_s: None,
        }
    }
}

/// A future the runner answers with.
pub type ForwardedRun = Pin<Box<dyn Future<Output = ForwardedAnswer> + Send>>;

/// How the leader runs a forwarded request: implemented by the server over its engine and
/// user directory. Implementations must not run SQL on a runtime thread: a replicated write
/// blocks until Raft, which runs on the runtime, applies it.
pub trait ForwardedSqlRunner: Send + Sync {
    /// Runs `request` as its user, if that user exists here as the same incarnation.
    fn run(&self, request: ForwardedSql) -> ForwardedRun;
}

/// A QUIC request sent on to the leader (`produce_topic`, `produce_table`, a consumer-group
/// request): who sends it, and the client's request as the frame it came in (the leader
/// decodes it with the same bounded decoder).
///
/// Why re-running it on the leader is sound: a member that does not lead refuses a produce
/// with `not_leader` at its first partition, before it wrote anything, and a group request
/// before it looked at anything; it forwards only then (a produce split over partitions that
/// failed after one was written is answered as it is).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardedFrame {
    /// The user the forwarding member authenticated.
    pub user: String,
    /// Which user of that name (`UserIncarnation`); the leader refuses another.
    pub incarnation: u64,
    /// The request's frame, encoded as on the client's stream.
    pub frame: Vec<u8>,
}

/// The leader's answer to a [`ForwardedFrame`]: the frames it would have sent the client
/// (`produce_ack`s, a group response, or one `error`), each encoded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardedFrames {
    /// The encoded frames, in order.
    pub frames: Vec<Vec<u8>>,
}

/// A future the frame runner answers with.
pub type ForwardedFrameRun = Pin<Box<dyn Future<Output = ForwardedFrames> + Send>>;

/// How the leader runs a forwarded request: implemented by the server over its QUIC handlers.
pub trait ForwardedFrameRunner: Send + Sync {
    /// Runs `request` as its user, if that user exists here as the same incarnation.
    fn run_frame(&self, request: ForwardedFrame) -> ForwardedFrameRun;
}

/// Why a request could not be forwarded; the caller answers the client's original error
/// (`NoLeader`) or `unavailable` (the rest: it may or may not have run on the leader).
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// No leader is known, or this node is the one named (it stopped leading meanwhile).
    #[error("no other member is known to lead")]
    NoLeader,
    /// The leader's address is not `IP:PORT`.
    #[error("the leader's address {0} is not IP:PORT")]
    BadAddress(String),
    /// The leader did not answer in time, or could not be reached.
    #[error("the leader (node {leader}) did not answer: {reason}")]
    NoAnswer {
        /// The leader dialed.
        leader: NodeId,
        /// What failed.
        reason: String,
    },
}

/// The dialing side: sends a request to the meta group's current leader.
pub struct SqlForwarder {
    node_id: NodeId,
    links: Arc<PeerLinks>,
    meta: Raft<ClusterTypes>,
}

impl SqlForwarder {
    /// Forwards over `links` to the leader `meta` knows.
    pub fn new(node_id: NodeId, links: Arc<PeerLinks>, meta: Raft<ClusterTypes>) -> SqlForwarder {
        SqlForwarder {
            node_id,
            links,
            meta,
        }
    }

    /// The leader's id and address, if another member is known to lead.
    fn leader(&self) -> Result<(NodeId, SocketAddr), ForwardError> {
        let metrics = self.meta.metrics();
        let metrics = metrics.borrow();
        let leader = metrics.current_leader.ok_or(ForwardError::NoLeader)?;
        if leader == self.node_id {
            return Err(ForwardError::NoLeader);
        }
        let node = metrics
            .membership_config
            .membership()
            .get_node(&leader)
            .ok_or(ForwardError::NoLeader)?;
        let addr = node
            .addr
            .parse()
            .map_err(|_| ForwardError::BadAddress(node.addr.clone()))?;
        Ok((leader, addr))
    }

    /// Sends `request` to the leader and waits for its answer ([`SqlForwarder::call`]).
    pub async fn forward(&self, request: ForwardedSql) -> Result<ForwardedAnswer, ForwardError> {
        tracing::debug!(user = %request.user, "forwarding SQL to the leader");
        match self.call(PeerRequest::ForwardSql(request)).await? {
            (_, PeerResponse::ForwardedSql(answer)) => Ok(answer),
            (leader, other) => Err(unexpected(leader, other)),
        }
    }

    /// [`SqlForwarder::forward`] for a QUIC request frame: the frames the leader answered.
    pub async fn forward_frame(
        &self,
        request: ForwardedFrame,
    ) -> Result<ForwardedFrames, ForwardError> {
        tracing::debug!(user = %request.user, "forwarding a QUIC request to the leader");
        match self.call(PeerRequest::ForwardFrame(request)).await? {
            (_, PeerResponse::ForwardedFrames(frames)) => Ok(frames),
            (leader, other) => Err(unexpected(leader, other)),
        }
    }

    /// A membership change (`members.rs`) sent on to the leader: the members after it, or
    /// why the leader did not make it. Waits as long as the leader may (each group's catch-up
    /// and commit waits).
    pub async fn forward_membership(
        &self,
        change: MembershipChange,
    ) -> Result<Result<Vec<Member>, MembershipError>, ForwardError> {
        tracing::debug!(?change, "forwarding a membership change to the leader");
        let ttl = Duration::from_millis(CLUSTER_MEMBERSHIP_FORWARD_WAIT_MS);
        match self
            .call_within(PeerRequest::ForwardMembership(change), ttl)
            .await?
        {
            (_, PeerResponse::ForwardedMembership(answer)) => Ok(answer),
            (leader, other) => Err(unexpected(leader, other)),
        }
    }

    /// Sends `request` to the leader and waits for its answer, at most the leader's own
    /// write timeout plus [`CLUSTER_FORWARD_MARGIN_MS`] (dialing, the way back).
    async fn call(&self, request: PeerRequest) -> Result<(NodeId, PeerResponse), ForwardError> {
        let ttl = Duration::from_millis(CLUSTER_WRITE_TIMEOUT_MS + CLUSTER_FORWARD_MARGIN_MS);
        self.call_within(request, ttl).await
    }

    /// [`SqlForwarder::call`] waiting at most `ttl`.
    async fn call_within(
        &self,
        request: PeerRequest,
        ttl: Duration,
    ) -> Result<(NodeId, PeerResponse), ForwardError> {
        let (leader, addr) = self.leader()?;
        match self.links.call(leader, addr, &request, ttl).await {
            Ok(response) => Ok((leader, response)),
            Err(error) => Err(ForwardError::NoAnswer {
                leader,
                reason: error.to_string(),
            }),
        }
    }
}

/// The leader answered a forwarded request with something else than its answer.
fn unexpected(leader: NodeId, response: PeerResponse) -> ForwardError {
    let reason = match response {
        PeerResponse::Refused(reason) => reason,
        _ => "answered another kind of message".to_string(),
    };
    ForwardError::NoAnswer { leader, reason }
}
