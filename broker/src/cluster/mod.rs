//! The cluster (issue 22): nodes agree through openraft, over the QUIC listener.
//!
//! - `types`: openraft's type configuration and the entries' payload.
//! - `groups`: which Raft group replicates a partition (the meta group, or a data group by a
//!   stable hash), and the order between groups; `placement`: data groups led by the meta
//!   group's leader; `ticks`: each data group's applied watermark, for joins and windows.
//! - `raft_log`: the Raft log and vote on disk (openraft's `RaftLogStorage`).
//! - `state_machine`: entries applied to the local store, and snapshots (`RaftStateMachine`).
//! - `peer_auth`: the cluster secret's proof, both ways, bound to the TLS session (sans-IO).
//! - `rpc`: the node-to-node messages and their encoding (sans-IO); `tls`: the dialer's TLS.
//! - `links`: the dialing side (connections to peers; openraft's `RaftNetwork`).
//! - `serve`: the listening side (a peer's connection handed over by the QUIC listener).
//! - `node`: [`node::ClusterNode`], the groups of this node: start, first membership, status.
//! - `members`: adding and removing members while the cluster serves.
//! - `writer`: a write proposed by this node as its group's leader; `doubt`: its proposals
//!   that got no answer in time, which the next write waits for.
//! - `forward`: a SQL request a member that does not lead sends on to the leader.
//! - `status`: `GET /v1/cluster/status` (the membership routes are `http/cluster_members.rs`).
//!
//! Owns node-to-node agreement. Does not own the log format (`strand_log`) or what the
//! records mean (tables, topics).

mod doubt;
pub mod forward;
pub mod groups;
pub mod links;
pub mod members;
pub mod node;
pub mod peer_auth;
mod placement;
pub mod raft_log;
pub mod rpc;
pub mod serve;
pub mod state_machine;
pub mod status;
pub mod ticks;
pub mod tls;
pub mod types;
pub mod writer;
