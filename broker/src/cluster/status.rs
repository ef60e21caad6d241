//! `GET /v1/cluster/status`: this node's view of its cluster as JSON (members, and for each
//! group its leader, term, log and applied indexes, and on the leader each follower's lag).
//! Like `/metrics` and `/v1/health`, it needs no credentials: it tells operators who leads,
//! nothing about the data. Only a cluster member has the route.

use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};

use super::node::ClusterNode;

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
