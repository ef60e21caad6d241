//! Consumer groups on a cluster for the cluster tests: a member that joins at whichever
//! member leads (the others answer `not_leader`, and `unavailable` while an election runs),
//! raw group requests to see exactly what a member answers, and a group's lag as a member's
//! `/metrics` shows it (computed from that member's own copy of the committed offsets).

use std::sync::Arc;
use std::time::{Duration, Instant};

use strand_wire::quic::client::{Client, ClientError};
use strand_wire::quic::consumer::single_answer;
use strand_wire::quic::{
    ErrorReply, GroupAssignment, GroupJoin, GroupMember, GroupStatus, MemberId, Message,
};

use crate::cluster::AGREE_TIMEOUT;
use crate::{get, StrandServer, ADMIN_PASSWORD};

/// A client of `node` as the admin, or `None` when it does not answer within 2 s.
pub async fn admin_client(node: &StrandServer) -> Option<Arc<Client>> {
    let ca = node.data_dir.join("tls/cert.pem");
    let connect = Client::connect_password(node.quic, &ca, "admin", ADMIN_PASSWORD);
    match tokio::time::timeout(Duration::from_secs(2), connect).await {
        Ok(Ok(client)) => Some(Arc::new(client)),
        _ => None,
    }
}

/// Sends `group_join` for a new member of `group` on `topic`: the assignment, or the error
/// frame the member answered instead.
pub async fn join(
    client: &Client,
    group: &str,
    topic: &str,
    session_timeout_ms: u32,
) -> Result<GroupAssignment, ErrorReply> {
    let request = Message::GroupJoin(GroupJoin {
        group: group.to_string(),
        topic: topic.to_string(),
        member: MemberId(String::new()),
        session_timeout_ms,
    });
    match single_answer(client, request).await {
        Ok(Message::GroupJoinResponse(assignment)) => {
            assert_eq!(assignment.status, GroupStatus::Ok, "{assignment:?}");
            Ok(assignment)
        }
        Err(ClientError::Rejected(error)) => Err(error),
        other => panic!("unexpected answer to group_join: {other:?}"),
    }
}

/// Sends `group_leave` for the member of `assignment`.
pub async fn leave(client: &Client, group: &str, assignment: &GroupAssignment) {
    let request = Message::GroupLeave(GroupMember {
        group: group.to_string(),
        member: assignment.member.clone(),
        generation: assignment.generation,
    });
    match single_answer(client, request).await {
        Ok(Message::GroupLeaveResponse(reply)) => assert_eq!(reply.status, GroupStatus::Ok),
        other => panic!("unexpected answer to group_leave: {other:?}"),
    }
}

/// Sends `group_heartbeat` for the member of `assignment`: its status, or the error frame.
pub async fn heartbeat(
    client: &Client,
    group: &str,
    assignment: &GroupAssignment,
) -> Result<GroupStatus, ErrorReply> {
    let request = Message::GroupHeartbeat(GroupMember {
        group: group.to_string(),
        member: assignment.member.clone(),
        generation: assignment.generation,
    });
    match single_answer(client, request).await {
        Ok(Message::GroupHeartbeatResponse(reply)) => Ok(reply.status),
        Err(ClientError::Rejected(error)) => Err(error),
        other => panic!("unexpected answer to group_heartbeat: {other:?}"),
    }
}

/// Joins `group` at whichever of `nodes` leads, trying one after the other until one takes
/// the join (`not_leader`, `unavailable` and a member that does not answer mean: try the
/// next), for at most [`AGREE_TIMEOUT`]. Returns the index of the node, its client and the
/// assignment.
pub async fn join_at_leader(
    nodes: &[&StrandServer],
    group: &str,
    topic: &str,
    session_timeout_ms: u32,
) -> (usize, Arc<Client>, GroupAssignment) {
    let deadline = Instant::now() + AGREE_TIMEOUT;
    let mut refusals = Vec::new();
    loop {
        for (at, node) in nodes.iter().enumerate() {
            let Some(client) = admin_client(node).await else {
                continue;
            };
            let joined = join(&client, group, topic, session_timeout_ms);
            match tokio::time::timeout(Duration::from_secs(8), joined).await {
                Ok(Ok(assignment)) => return (at, client, assignment),
                Ok(Err(error)) => {
                    assert!(
                        error.code == "not_leader" || error.code == "unavailable",
                        "unexpected refusal of a join: {error:?}"
                    );
                    refusals.push(error);
                }
                Err(_) => {}
            }
        }
        assert!(
            Instant::now() < deadline,
            "no member took the join within {AGREE_TIMEOUT:?}; refusals: {refusals:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `strand_group_lag_records` of `group` on `topic` as `node`'s `/metrics` shows it: the
/// messages after the group's committed offsets, in that node's copy of both.
pub fn group_lag_records(node: &StrandServer, group: &str, topic: &str) -> Option<f64> {
    let answer = get(&node.url("/metrics"));
    assert_eq!(answer.status, 200, "{}", answer.text);
    let series = format!("strand_group_lag_records{{group=\"{group}\",topic=\"{topic}\"}} ");
    answer
        .text
        .lines()
        .find_map(|line| line.strip_prefix(series.as_str()))
        .and_then(|value| value.trim().parse().ok())
}
