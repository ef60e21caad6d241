//! The membership routes: `POST /v1/cluster/members` (`{"node_id":4,"addr":"IP:PORT"}`) adds
//! a node as a voter, `DELETE /v1/cluster/members/{id}` removes one. Both answer the members
//! after the change (`{"status":"success","members":[{"id","addr","role"}]}`).
//!
//! Who may: an administrator (role `dba` or `system`), by token or Basic credentials like
//! `/v1/api/sql` (users are replicated, so any of the cluster's). Where: any member; one that
//! does not lead sends the change on to the leader (`cluster/forward.rs`) and answers what
//! the leader answers, or `not_leader` while no leader is known. The work itself is in
//! `cluster/members.rs`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{delete, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};

use super::handlers::{authenticate, source, Peer};
use super::{connection_authenticated, parse_json, AppState};
use crate::cluster::members::{Member, MembershipChange, MembershipError};
use crate::cluster::node::ClusterNode;
use crate::connections::ConnectionSlot;
use crate::error::{ApiError, ErrorCode};
use crate::users::is_admin;

/// Adds a member.
pub const ROUTE_CLUSTER_MEMBERS: &str = "/v1/cluster/members";
/// Removes the member `{id}`.
pub const ROUTE_CLUSTER_MEMBER: &str = "/v1/cluster/members/{id}";

/// The body of `POST /v1/cluster/members`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddMember {
    /// The new node's `--node-id`.
    node_id: u64,
    /// Its `--quic-addr` as the members reach it.
    addr: String,
}

/// What both routes answer.
#[derive(Debug, Serialize)]
struct MembersAnswer {
    status: &'static str,
    members: Vec<Member>,
}

/// The membership routes over `node`.
pub fn routes(node: Arc<ClusterNode>) -> Router<AppState> {
    Router::new()
        .route(ROUTE_CLUSTER_MEMBERS, post(add))
        .route(ROUTE_CLUSTER_MEMBER, delete(remove))
        .layer(Extension(node))
}

/// The request's connection, when it came through the HTTP shards.
type Connection = Option<Extension<Arc<ConnectionSlot>>>;

async fn add(
    State(state): State<AppState>,
    Extension(node): Extension<Arc<ClusterNode>>,
    connection: Connection,
    peer: Peer,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<MembersAnswer>, ApiError> {
    authorize(&state, connection, &peer, &headers).await?;
    let request: AddMember = parse_json(&headers, body)?;
    let node_id = member_id(request.node_id)?;
    let addr: SocketAddr = request.addr.trim().parse().map_err(|_| {
        let message = format!("addr {:?} is not IP:PORT", request.addr);
        ApiError::new(ErrorCode::InvalidValue, message)
    })?;
    let change = MembershipChange::Add {
        node: node_id,
        addr,
    };
    answer(node.change_members(change).await)
}

async fn remove(
    State(state): State<AppState>,
    Extension(node): Extension<Arc<ClusterNode>>,
    connection: Connection,
    peer: Peer,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<MembersAnswer>, ApiError> {
    authorize(&state, connection, &peer, &headers).await?;
    let Ok(Path(id)) = id else {
        let message = "the path must end in a node id";
        return Err(ApiError::new(ErrorCode::InvalidValue, message));
    };
    let node_id = id
        .trim()
        .parse()
        .map_err(|_| ApiError::new(ErrorCode::InvalidValue, "a node id is a whole number"))
        .and_then(member_id)?;
    answer(
        node.change_members(MembershipChange::Remove { node: node_id })
            .await,
    )
}

/// Both routes' answer: the members after the change, or why it was not made.
fn answer(changed: Result<Vec<Member>, MembershipError>) -> Result<Json<MembersAnswer>, ApiError> {
    let members = changed.map_err(|e| from_membership(&e))?;
    Ok(Json(MembersAnswer {
        status: "success",
        members,
    }))
}

/// An administrator's credentials, or `unauthorized` / `forbidden`.
async fn authorize(
    state: &AppState,
    connection: Connection,
    peer: &Peer,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    let session = authenticate(state, headers, source(peer)).await?;
    connection_authenticated(connection.as_deref());
    if !is_admin(session.role()) {
        let message = "changing the cluster's members needs an administrator (role dba or system)";
        return Err(ApiError::new(ErrorCode::Forbidden, message));
    }
    Ok(())
}

/// `id` if it can be a node id (1..=1023: the node bits of the `_seq`s it issues).
fn member_id(id: u64) -> Result<u64, ApiError> {
    if (1..=u64::from(strand_log::NodeId::MAX)).contains(&id) {
        return Ok(id);
    }
    let message = format!(
        "node id {id} is out of range: 1..={}",
        strand_log::NodeId::MAX
    );
    Err(ApiError::new(ErrorCode::InvalidValue, message))
}

/// The API error of a membership change that was not made or not confirmed.
fn from_membership(error: &MembershipError) -> ApiError {
    let code = match error {
        MembershipError::NotLeader { .. } => ErrorCode::NotLeader,
        MembershipError::Unknown(_) => ErrorCode::NotFound,
        MembershipError::LastVoter(_) | MembershipError::Taken(_) | MembershipError::InProgress => {
            ErrorCode::MembershipConflict
        }
        MembershipError::NotCaughtUp { .. } | MembershipError::Unconfirmed { .. } => {
            ErrorCode::Unavailable
        }
    };
    ApiError::new(code, error.to_string())
}
