//! The cluster (SPEC.md section 10, issue 22): nodes replicate with openraft.
//!
//! - `types`: openraft's type configuration and the entries' payload.
//! - `raft_log`: the Raft log and vote on disk (openraft's `RaftLogStorage`).
//!
//! Owns node-to-node agreement. Does not own the log format (`strand_log`) or what the
//! records mean (tables, topics).

pub mod raft_log;
pub mod types;
