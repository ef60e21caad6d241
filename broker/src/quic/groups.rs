//! [`GroupService`]: consumer groups over QUIC. Each group consumes one topic; its membership,
//! generations and assignment are a sans-IO [`GroupCoordinator`] driven here with a monotonic
//! clock, and its committed offsets live in [`GroupOffsets`] (durable before `ok`).
//!
//! A group is created by its first join and bound to that join's topic and session timeout
//! until it has no members. Silent members are expired by the next request of any member of
//! the group (join, heartbeat, sync, commit), so a killed member's partitions move once its
//! session timeout has passed and a survivor next heartbeats: survivors heartbeat well inside
//! the timeout, so that bounds the move.
//!
//! Every request needs SELECT on the group's topic (checked again on each request, so a
//! revoked grant ends a member's heartbeats and commits with `not_authorized`).
//!
//! Groups are collected (docs/topics.md, "Consumer groups"): a sweep every
//! [`GROUP_SWEEP_INTERVAL_MS`] expires silent members and removes every group left without
//! members, so a group nobody uses is gone about one session timeout after its last member;
//! its committed offsets stay in [`GroupOffsets`] for the offsets retention and a later join
//! of the same name gets them back. One user may hold at most `groups_per_user_max` groups and
//! the server [`GROUPS_MAX`], so one user's junk groups cannot lock everyone out.
//!
//! On a cluster member, only the meta group's leader coordinates groups; the others answer
//! `not_leader` (`groups/leadership.rs`).
//!
//! Owns: the registry of groups (`groups/registry.rs`, with the sweep) and the mapping between wire values (string member ids, u32
//! generations, statuses) and the coordinator's. Does not own: the membership rules
//! (`topics/group.rs`) or the offset records (`topics/offsets.rs`).

use std::sync::Arc;
use std::time::Duration;
use strand_sql_view::Privilege;

use strand_log::Seq;
use strand_wire::quic::{
    codes, CommittedOffset, GroupAssignment, GroupCommit, GroupJoin, GroupMember, GroupReply,
    GroupStatus, Message, PartitionIndex,
};
use tokio::sync::Mutex as AsyncMutex;

use super::access::TopicAccess;
use super::responder::{ReplyError, Responder};
use crate::catalog::CatalogTopic;
use crate::catalog::TopicDef;
use crate::config::GroupLimits;
use crate::limits::{
    GROUPS_MAX, GROUP_SWEEP_INTERVAL_MS, SESSION_TIMEOUT_MS_MAX, SESSION_TIMEOUT_MS_MIN,
};
use crate::periodic::PeriodicThread;
use crate::session::Session;
use crate::topics::group::{GroupConfig, GroupCoordinator, GroupError, JoinOutcome, MemberId};
use crate::topics::{GroupOffsets, OffsetsError};

mod leadership;
mod registry;

use registry::{GroupState, Groups};

pub struct GroupService {
    access: TopicAccess,
    offsets: Arc<GroupOffsets>,
    shared: Arc<Groups>,
    /// Runs [`Groups::sweep`]; stops when the service is dropped.
    _sweeper: Option<PeriodicThread>,
}

impl GroupService {
    pub(crate) fn new(
        access: TopicAccess,
        offsets: Arc<GroupOffsets>,
        limits: GroupLimits,
    ) -> GroupService {
        let shared = Arc::new(Groups::new(offsets.clone(), limits));
        let interval = Duration::from_millis(GROUP_SWEEP_INTERVAL_MS);
        let sweeper = PeriodicThread::start("strand-groups", interval, {
            let shared = shared.clone();
            move || shared.sweep()
        });
        let sweeper = match sweeper {
            Ok(thread) => Some(thread),
            Err(error) => {
                tracing::error!(%error, "cannot start the group sweep: empty groups stay");
                None
            }
        };
        GroupService {
            access,
            offsets,
            shared,
            _sweeper: sweeper,
        }
    }

    fn now_ms(&self) -> u64 {
        self.shared.now_ms()
    }

    fn group(&self, name: &str) -> Option<Arc<AsyncMutex<GroupState>>> {
        let registry = self.shared.registry.lock();
        registry.groups.get(name).cloned()
    }

    /// Answers a consumer-group request (join, heartbeat, sync, commit, leave); any other
    /// message is `unexpected_frame`.
    pub(crate) async fn serve(
        &self,
        session: &Session,
        message: Message,
        reply: &mut Responder,
    ) -> Result<(), ReplyError> {
        match message {
            Message::GroupJoin(request) => self.join(session, request, reply).await,
            Message::GroupHeartbeat(request) => self.heartbeat(session, request, reply).await,
            Message::GroupSync(request) => self.sync(session, request, reply).await,
            Message::GroupCommit(request) => self.commit(session, request, reply).await,
            Message::GroupLeave(request) => self.leave(session, request, reply).await,
            other => {
                let text = format!("`{}` is not a consumer-group request", other.name());
                reply.error(codes::UNEXPECTED_FRAME, text).await
            }
        }
    }

    pub(crate) async fn join(
        &self,
        session: &Session,
        request: GroupJoin,
        reply: &mut Responder,
    ) -> Result<(), ReplyError> {
        if let Err((code, text)) = self.shared.coordinating().await {
            return reply.error(code, text).await;
        }
        let topic = match self
            .access
            .topic(session, &request.topic, Privilege::Select)
        {
            Ok(topic) => topic,
            Err((code, _)) => {
                let status = if code == codes::FORBIDDEN {
                    GroupStatus::NotAuthorized
                } else {
                    GroupStatus::UnknownTopic
                };
                return reply.send(join_refused(status)).await;
            }
        };
        if let Err(text) = check_group_name(&request.group) {
            return reply.error(codes::INVALID_REQUEST, text).await;
        }
        let timeout_ms = u64::from(request.session_timeout_ms);
        if !(SESSION_TIMEOUT_MS_MIN..=SESSION_TIMEOUT_MS_MAX).contains(&timeout_ms) {
            let text = format!(
                "session_timeout_ms is {SESSION_TIMEOUT_MS_MIN} to {SESSION_TIMEOUT_MS_MAX}, \
                 not {timeout_ms}"
            );
            return reply.error(codes::INVALID_REQUEST, text).await;
        }
        let user = session.user().to_string();
        let state = match self.group_for_join(&request.group, &topic, timeout_ms, &user) {
            Ok(state) => state,
            Err((code, text)) => return reply.error(code, text).await,
        };
        let mut state = state.lock().await;
        if !same_topic(&state.topic, &topic) {
            // Bound to another topic meanwhile (the group emptied and was rebound).
            let text = group_topic_text(&request.group, &state.topic.def);
            return reply.error(codes::INVALID_REQUEST, text).await;
        }
        let hint = parse_member(&request.member.0);
        let now_ms = self.now_ms();
        match state.coordinator.join(hint, now_ms) {
            Ok(outcome) => {
                tracing::info!(user = %session.user(), group = %request.group,
                    topic = %request.topic, member = %outcome.member_id,
                    generation = %outcome.generation, partitions = ?outcome.assignment,
                    "group member joined");
                let assignment = self.assignment(&request.group, &state.topic, &outcome);
                reply.send(Message::GroupJoinResponse(assignment)).await
            }
            Err(error) => reply.error(codes::LIMIT_EXCEEDED, error.to_string()).await,
        }
    }

    /// The group `name`, created for `topic` by `user` if it does not exist or has no
    /// members; creating one counts against the server's and the user's group limits.
    fn group_for_join(
        &self,
        name: &str,
        topic: &CatalogTopic,
        session_timeout_ms: u64,
        user: &str,
    ) -> Result<Arc<AsyncMutex<GroupState>>, (&'static str, String)> {
        let mut registry = self.shared.registry.lock();
        let mut rebound_from = None;
        if let Some(existing) = registry.groups.get(name) {
            // A group in use (its lock held by a request in flight) is joined as it is: the
            // join checks its topic once it holds the lock. Only an idle, empty group bound
            // to another topic is rebound.
            let Ok(mut state) = existing.try_lock() else {
                return Ok(existing.clone());
            };
            if same_topic(&state.topic, topic) {
                return Ok(existing.clone());
            }
            // Members past their session timeout do not hold the group.
            state.coordinator.expire(self.now_ms());
            if state.coordinator.members().next().is_some() {
                let text = group_topic_text(name, &state.topic.def);
                return Err((codes::INVALID_REQUEST, text));
            }
            rebound_from = Some(state.creator.clone());
        } else if registry.groups.len() >= GROUPS_MAX {
            let text = format!("this server holds at most {GROUPS_MAX} groups");
            return Err((codes::LIMIT_EXCEEDED, text));
        }
        let max = self.shared.limits.groups_per_user_max;
        let held = registry.per_user.get(user).copied().unwrap_or(0);
        let same_creator = rebound_from.as_deref() == Some(user);
        if !same_creator && held >= max {
            let text = format!(
                "{user} holds {held} consumer groups, the most one user may (groups without \
                 members are removed after their session timeout)"
            );
            return Err((codes::LIMIT_EXCEEDED, text));
        }
        let config = GroupConfig {
            partitions: topic.def.partitions,
            session_timeout_ms,
            member_id_first: random_u64(),
        };
        let coordinator = GroupCoordinator::new(config)
            .map_err(|error| (codes::INVALID_REQUEST, error.to_string()))?;
        let state = Arc::new(AsyncMutex::new(GroupState {
            topic: topic.clone(),
            coordinator,
            creator: user.to_string(),
        }));
        if let Some(previous) = rebound_from {
            registry.count(&previous, false);
        }
        registry.count(user, true);
        registry.groups.insert(name.to_string(), state.clone());
        Ok(state)
    }

    pub(crate) async fn heartbeat(
        &self,
        session: &Session,
        request: GroupMember,
        reply: &mut Responder,
    ) -> Result<(), ReplyError> {
        if let Err((code, text)) = self.shared.coordinating().await {
            return reply.error(code, text).await;
        }
        let status = match (self.group(&request.group), parse_member(&request.member.0)) {
            (Some(state), Some(member)) => {
                let mut state = state.lock().await;
                if !self.may_consume(session, &state.topic) {
                    let message = Message::GroupHeartbeatResponse(GroupReply {
                        status: GroupStatus::NotAuthorized,
                    });
                    return reply.send(message).await;
                }
                let generation = coordinator_generation(request.generation);
                match state
                    .coordinator
                    .heartbeat(member, generation, self.now_ms())
                {
                    Ok(crate::topics::group::HeartbeatOutcome::Current) => GroupStatus::Ok,
                    Ok(crate::topics::group::HeartbeatOutcome::Reassigned { .. }) => {
                        GroupStatus::RebalanceInProgress
                    }
                    Err(error) => status_of(&error),
                }
            }
            _ => GroupStatus::UnknownMember,
        };
        let message = Message::GroupHeartbeatResponse(GroupReply { status });
        reply.send(message).await
    }

    pub(crate) async fn sync(
        &self,
        session: &Session,
        request: GroupMember,
        reply: &mut Responder,
    ) -> Result<(), ReplyError> {
        if let Err((code, text)) = self.shared.coordinating().await {
            return reply.error(code, text).await;
        }
        let (Some(state), Some(member)) =
            (self.group(&request.group), parse_member(&request.member.0))
        else {
            return reply.send(sync_refused(GroupStatus::UnknownMember)).await;
        };
        let mut state = state.lock().await;
        if !self.may_consume(session, &state.topic) {
            return reply.send(sync_refused(GroupStatus::NotAuthorized)).await;
        }
        let assignment = match state.coordinator.sync(member, self.now_ms()) {
            Ok(outcome) => self.assignment(&request.group, &state.topic, &outcome),
            Err(error) => return reply.send(sync_refused(status_of(&error))).await,
        };
        reply.send(Message::GroupSyncResponse(assignment)).await
    }

    pub(crate) async fn commit(
        &self,
        session: &Session,
        request: GroupCommit,
        reply: &mut Responder,
    ) -> Result<(), ReplyError> {
        let term = match self.shared.coordinating().await {
            Ok(term) => term,
            Err((code, text)) => return reply.error(code, text).await,
        };
        let group = request.member.group;
        let (Some(state), Some(member)) =
            (self.group(&group), parse_member(&request.member.member.0))
        else {
            return reply
                .send(group_reply_commit(GroupStatus::UnknownMember))
                .await;
        };
        let mut state = state.lock().await;
        if !self.may_consume(session, &state.topic) {
            return reply
                .send(group_reply_commit(GroupStatus::NotAuthorized))
                .await;
        }
        // Counts as a heartbeat, and expires silent members before the fencing check.
        let generation = coordinator_generation(request.member.generation);
        if let Err(error) = state
            .coordinator
            .heartbeat(member, generation, self.now_ms())
        {
            return reply.send(group_reply_commit(status_of(&error))).await;
        }
        let mut accepted = Vec::with_capacity(request.offsets.len());
        for offset in &request.offsets {
            match state
                .coordinator
                .commit(member, generation, offset.partition.0, offset.seq.0)
            {
                Ok(commit) => accepted.push((commit.partition, Seq(commit.seq))),
                Err(error) => return reply.send(group_reply_commit(status_of(&error))).await,
            }
        }
        if accepted.is_empty() {
            return reply.send(group_reply_commit(GroupStatus::Ok)).await;
        }
        let offsets = self.offsets.clone();
        let topic = state.topic.clone();
        let name = group.clone();
        let written = tokio::task::spawn_blocking(move || {
            offsets.commit_all(&name, &topic, &accepted, term)?;
            Ok::<_, OffsetsError>(accepted)
        })
        .await;
        drop(state);
        match written {
            Ok(Ok(accepted)) => {
                tracing::debug!(group = %group, member = %member, offsets = ?accepted,
                    "group offsets committed");
                reply.send(group_reply_commit(GroupStatus::Ok)).await
            }
            Ok(Err(error)) => {
                reply
                    .error(commit_error_code(&error), error.to_string())
                    .await
            }
            Err(error) => reply.error(codes::STORAGE_ERROR, error.to_string()).await,
        }
    }

    pub(crate) async fn leave(
        &self,
        session: &Session,
        request: GroupMember,
        reply: &mut Responder,
    ) -> Result<(), ReplyError> {
        if let Err((code, text)) = self.shared.coordinating().await {
            return reply.error(code, text).await;
        }
        let status = match (self.group(&request.group), parse_member(&request.member.0)) {
            (Some(state), Some(member)) => {
                let mut state = state.lock().await;
                if !self.may_consume(session, &state.topic) {
                    let message = Message::GroupLeaveResponse(GroupReply {
                        status: GroupStatus::NotAuthorized,
                    });
                    return reply.send(message).await;
                }
                match state.coordinator.leave(member) {
                    Ok(generation) => {
                        tracing::info!(group = %request.group, member = %member,
                            generation = %generation, "group member left");
                        GroupStatus::Ok
                    }
                    Err(error) => status_of(&error),
                }
            }
            _ => GroupStatus::UnknownMember,
        };
        let message = Message::GroupLeaveResponse(GroupReply { status });
        reply.send(message).await
    }

    /// Whether the session may still read the group's topic (a revoked grant ends its
    /// membership requests too).
    fn may_consume(&self, session: &Session, topic: &CatalogTopic) -> bool {
        let name = topic.def.name.to_string();
        self.access
            .topic(session, &name, Privilege::Select)
            .is_ok_and(|current| current.incarnation == topic.incarnation)
    }

    /// The wire form of a member's assignment, with the group's committed offsets.
    fn assignment(
        &self,
        group: &str,
        topic: &CatalogTopic,
        outcome: &JoinOutcome,
    ) -> GroupAssignment {
        let committed = outcome
            .assignment
            .iter()
            .filter_map(|&partition| {
                let seq = self.offsets.committed(group, topic, partition)?;
                Some(CommittedOffset {
                    partition: PartitionIndex(partition),
                    seq: strand_wire::quic::Seq(seq.0),
                })
            })
            .collect();
        GroupAssignment {
            status: GroupStatus::Ok,
            member: strand_wire::quic::MemberId(outcome.member_id.0.to_string()),
            generation: strand_wire::quic::Generation(wire_generation(outcome.generation.0)),
            partitions: outcome
                .assignment
                .iter()
                .map(|&p| PartitionIndex(p))
                .collect(),
            committed,
        }
    }
}

fn same_topic(a: &CatalogTopic, b: &CatalogTopic) -> bool {
    a.def.name == b.def.name && a.incarnation == b.incarnation
}

fn group_topic_text(group: &str, def: &TopicDef) -> String {
    format!(
        "group {group} consumes topic {}; use another group name",
        def.name
    )
}

/// Group names become part of offset keys (`<group>/<topic>/<partition>`), so no `/`.
fn check_group_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains('/') || name.chars().any(char::is_control) {
        return Err(format!(
            "group name {name:?} must be non-empty, without '/' or control characters"
        ));
    }
    Ok(())
}

/// Member ids are the coordinator's u64 in decimal; anything else names no member.
fn parse_member(text: &str) -> Option<MemberId> {
    text.parse().ok().map(MemberId)
}

fn wire_generation(generation: u64) -> u32 {
    u32::try_from(generation).unwrap_or(u32::MAX)
}

fn coordinator_generation(
    generation: strand_wire::quic::Generation,
) -> crate::topics::group::Generation {
    crate::topics::group::Generation(u64::from(generation.0))
}

fn status_of(error: &GroupError) -> GroupStatus {
    match error {
        GroupError::UnknownMember(_) | GroupError::GroupFull { .. } => GroupStatus::UnknownMember,
        // A partition the member does not own now: it missed a rebalance; sync.
        GroupError::IllegalGeneration { .. }
        | GroupError::NotAssigned { .. }
        | GroupError::UnknownPartition { .. } => GroupStatus::IllegalGeneration,
    }
}

fn join_refused(status: GroupStatus) -> Message {
    Message::GroupJoinResponse(refused_assignment(status))
}

fn sync_refused(status: GroupStatus) -> Message {
    Message::GroupSyncResponse(refused_assignment(status))
}

fn refused_assignment(status: GroupStatus) -> GroupAssignment {
    GroupAssignment {
        status,
        member: strand_wire::quic::MemberId(String::new()),
        generation: strand_wire::quic::Generation(0),
        partitions: Vec::new(),
        committed: Vec::new(),
    }
}

/// The error frame's code for a commit that was not stored: on a cluster member, one that
/// was not replicated is `not_leader` or `unavailable` (the client retries at the leader).
fn commit_error_code(error: &OffsetsError) -> &'static str {
    match error {
        OffsetsError::Log(log) if log.is_storage_full() => codes::STORAGE_FULL,
        OffsetsError::Replication(error) => crate::topics::replication_code(error),
        OffsetsError::Log(_) | OffsetsError::BadRecord { .. } => codes::STORAGE_ERROR,
    }
}

fn group_reply_commit(status: GroupStatus) -> Message {
    Message::GroupCommitResponse(GroupReply { status })
}

/// A random start for member ids, so ids from before a restart name no new member.
fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    // Without randomness, fall back to the clock: ids then only need to differ across starts.
    if getrandom::getrandom(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        return nanos;
    }
    // Keep ids well below u64::MAX so they never wrap in a session's lifetime.
    u64::from_le_bytes(bytes) >> 16
}
