//! The consumer-group coordinator of one group on one topic (docs/topics.md, "Consumer
//! groups"), as a sans-IO state machine. It owns the group's membership (join, heartbeat,
//! leave, session expiry), its generations, the assignment of the topic's partitions to
//! members, and fencing: an offset commit is accepted only from the partition's owner in the
//! current generation.
//!
//! It does not own the storage of committed offsets ([`GroupCoordinator::commit`] returns the
//! [`OffsetCommit`] to apply; the caller persists it), the network (a connection task turns
//! frames into calls), nor the clock: every step that needs the time takes `now_ms`, and
//! nothing here reads a clock, spawns a thread or does I/O, so the same calls always give the
//! same state. [`GroupCoordinator::expiry_deadline_ms`] tells the caller when to call
//! [`GroupCoordinator::expire`] next.
//!
//! The coordinator computes assignments itself (there is no group leader): on every membership
//! change the generation goes up by one and the partitions are rebalanced so that each is owned
//! by exactly one member, members' counts differ by at most one, and a partition moves only when
//! the balance needs it. Within a generation the assignment never changes; a member learns the
//! new one from its next heartbeat, and until then its commits are refused (at-least-once: the
//! new owner resumes from the last accepted commit).

use std::collections::BTreeMap;
use std::fmt;

#[cfg(test)]
use crate::limits::SESSION_TIMEOUT_MS_DEFAULT;
use crate::limits::{MEMBERS_PER_GROUP_MAX, SESSION_TIMEOUT_MS_MAX, SESSION_TIMEOUT_MS_MIN};
use assign::rebalance;
use strand_sql_view::limits::TOPIC_PARTITIONS_MAX;

mod assign;

/// A member of a group, chosen by the coordinator when it joins. Opaque to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemberId(pub u64);

/// One membership of a group: it goes up by one on every join of a new member, leave and
/// expiry, and the assignment is fixed within it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Generation(pub u64);

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "member-{}", self.0)
    }
}

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// How a group is set up: its topic's partition count and its members' session timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupConfig {
    pub partitions: u32,
    /// A member whose last heartbeat is older than this is removed by the next `expire`.
    pub session_timeout_ms: u64,
    /// The first member id handed out. Start each coordinator (e.g. after a restart) somewhere
    /// new, such as a random value, so that a client holding an id from before is not taken
    /// for a newer member.
    pub member_id_first: u64,
}

impl GroupConfig {
    /// A group on a topic of `partitions` partitions, with the default session timeout.
    #[cfg(test)] // the server drives the coordinator through join, heartbeat and commit only
    pub fn new(partitions: u32, member_id_first: u64) -> Self {
        GroupConfig {
            partitions,
            session_timeout_ms: SESSION_TIMEOUT_MS_DEFAULT,
            member_id_first,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupConfigError {
    #[error("a group's topic has 1 to {max} partitions, not {partitions}")]
    Partitions { partitions: u32, max: u32 },
    #[error("a session timeout is {min} to {max} ms, not {timeout_ms}")]
    SessionTimeout { timeout_ms: u64, min: u64, max: u64 },
}

/// Why the coordinator refused a member's request. All are expected from clients (late,
/// stale or confused); none leaves the group in a different state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    #[error("{0} is not in the group (it left or its session expired): join again")]
    UnknownMember(MemberId),
    #[error("generation {member} is not the group's current generation {current}")]
    IllegalGeneration {
        member: Generation,
        current: Generation,
    },
    #[error("partition {partition} is not assigned to {member} in generation {generation}")]
    NotAssigned {
        member: MemberId,
        partition: u32,
        generation: Generation,
    },
    #[error("partition {partition} does not exist: the topic has {partitions} partitions")]
    UnknownPartition { partition: u32, partitions: u32 },
    #[error("the group is full ({max} members)")]
    GroupFull { max: usize },
}

/// What a joining member gets: its id, the current generation and its partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinOutcome {
    pub member_id: MemberId,
    pub generation: Generation,
    pub assignment: Vec<u32>,
}

/// The answer to a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeartbeatOutcome {
    /// The member's generation is current: keep consuming its partitions.
    Current,
    /// The group rebalanced since the member's generation: stop consuming the partitions it no
    /// longer has and go on with this generation and assignment.
    Reassigned {
        generation: Generation,
        assignment: Vec<u32>,
    },
}

/// A commit the coordinator accepted; the caller stores `seq` as the group's offset of
/// `partition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetCommit {
    pub partition: u32,
    pub seq: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Member {
    heartbeat_ms: u64,
    /// Ascending; always the partitions `owners` gives this member.
    partitions: Vec<u32>,
}

/// Membership, generations and assignment of one group; see the module comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupCoordinator {
    config: GroupConfig,
    generation: Generation,
    members: BTreeMap<MemberId, Member>,
    /// The owner of each partition, by index: all `Some` when the group has members.
    owners: Vec<Option<MemberId>>,
    member_id_next: u64,
}

impl GroupCoordinator {
    pub fn new(config: GroupConfig) -> Result<Self, GroupConfigError> {
        if config.partitions == 0 || config.partitions > TOPIC_PARTITIONS_MAX {
            return Err(GroupConfigError::Partitions {
                partitions: config.partitions,
                max: TOPIC_PARTITIONS_MAX,
            });
        }
        let timeout_ms = config.session_timeout_ms;
        if !(SESSION_TIMEOUT_MS_MIN..=SESSION_TIMEOUT_MS_MAX).contains(&timeout_ms) {
            return Err(GroupConfigError::SessionTimeout {
                timeout_ms,
                min: SESSION_TIMEOUT_MS_MIN,
                max: SESSION_TIMEOUT_MS_MAX,
            });
        }
        Ok(GroupCoordinator {
            config,
            generation: Generation(0),
            members: BTreeMap::new(),
            owners: vec![None; config.partitions as usize],
            member_id_next: config.member_id_first,
        })
    }

    /// Joins a member. With the id of a current member (a retried join) this is that member's
    /// heartbeat; otherwise a new member with a fresh id joins. Silent members are expired in
    /// the same step, so the group rebalances (and the generation goes up) at most once.
    pub fn join(
        &mut self,
        member_hint: Option<MemberId>,
        now_ms: u64,
    ) -> Result<JoinOutcome, GroupError> {
        let expired = self.remove_expired(now_ms);
        let known = member_hint.and_then(|member_id| {
            let member = self.members.get_mut(&member_id)?;
            member.heartbeat_ms = member.heartbeat_ms.max(now_ms);
            Some(member_id)
        });
        let member_id = match known {
            Some(member_id) => member_id,
            None if self.members.len() < MEMBERS_PER_GROUP_MAX => {
                let member_id = self.allocate_member_id();
                let member = Member {
                    heartbeat_ms: now_ms,
                    partitions: Vec::new(),
                };
                self.members.insert(member_id, member);
                member_id
            }
            None => {
                if !expired.is_empty() {
                    self.membership_changed();
                }
                return Err(GroupError::GroupFull {
                    max: MEMBERS_PER_GROUP_MAX,
                });
            }
        };
        if known.is_none() || !expired.is_empty() {
            self.membership_changed();
        }
        let assignment = self
            .members
            .get(&member_id)
            .map(|member| member.partitions.clone());
        Ok(JoinOutcome {
            member_id,
            generation: self.generation,
            assignment: assignment.unwrap_or_default(),
        })
    }

    /// Keeps a member's session alive and tells it whether its generation is still current.
    /// Expires silent members first, so a member already past its session timeout is told it
    /// is unknown. A generation from the future is refused and does not count as a heartbeat.
    pub fn heartbeat(
        &mut self,
        member_id: MemberId,
        generation: Generation,
        now_ms: u64,
    ) -> Result<HeartbeatOutcome, GroupError> {
        self.expire(now_ms);
        let current = self.generation;
        let member = self
            .members
            .get_mut(&member_id)
            .ok_or(GroupError::UnknownMember(member_id))?;
        if generation > current {
            return Err(GroupError::IllegalGeneration {
                member: generation,
                current,
            });
        }
        member.heartbeat_ms = member.heartbeat_ms.max(now_ms);
        if generation == current {
            return Ok(HeartbeatOutcome::Current);
        }
        let assignment = member.partitions.clone();
        Ok(HeartbeatOutcome::Reassigned {
            generation: current,
            assignment,
        })
    }

    /// A member asks for its assignment in the current generation (after a heartbeat said
    /// the group rebalanced). Counts as a heartbeat; expires silent members first.
    pub fn sync(&mut self, member_id: MemberId, now_ms: u64) -> Result<JoinOutcome, GroupError> {
        self.expire(now_ms);
        let generation = self.generation;
        let member = self
            .members
            .get_mut(&member_id)
            .ok_or(GroupError::UnknownMember(member_id))?;
        member.heartbeat_ms = member.heartbeat_ms.max(now_ms);
        Ok(JoinOutcome {
            member_id,
            generation,
            assignment: member.partitions.clone(),
        })
    }

    /// Removes a member at its request and rebalances; returns the new generation.
    pub fn leave(&mut self, member_id: MemberId) -> Result<Generation, GroupError> {
        if self.members.remove(&member_id).is_none() {
            return Err(GroupError::UnknownMember(member_id));
        }
        self.membership_changed();
        Ok(self.generation)
    }

    /// Removes every member whose last heartbeat is more than the session timeout before
    /// `now_ms` and, if any, rebalances once. Returns the removed members, in id order.
    pub fn expire(&mut self, now_ms: u64) -> Vec<MemberId> {
        let expired = self.remove_expired(now_ms);
        if !expired.is_empty() {
            self.membership_changed();
        }
        expired
    }

    /// The earliest `now_ms` at which [`Self::expire`] would remove a member, if any: when the
    /// caller's timer should fire next.
    #[cfg(test)] // the server drives the coordinator through join, heartbeat and commit only
    pub fn expiry_deadline_ms(&self) -> Option<u64> {
        let oldest = self
            .members
            .values()
            .map(|member| member.heartbeat_ms)
            .min()?;
        Some(
            oldest
                .saturating_add(self.config.session_timeout_ms)
                .saturating_add(1),
        )
    }

    /// Accepts an offset commit only from the member that owns `partition` in the current
    /// generation (fencing: a member that missed a rebalance cannot overwrite the new owner's
    /// progress). Returns the commit for the caller to persist; stores nothing itself.
    pub fn commit(
        &self,
        member_id: MemberId,
        generation: Generation,
        partition: u32,
        seq: u64,
    ) -> Result<OffsetCommit, GroupError> {
        if !self.members.contains_key(&member_id) {
            return Err(GroupError::UnknownMember(member_id));
        }
        if generation != self.generation {
            return Err(GroupError::IllegalGeneration {
                member: generation,
                current: self.generation,
            });
        }
        let owner = self.owner(partition)?;
        if owner != Some(member_id) {
            return Err(GroupError::NotAssigned {
                member: member_id,
                partition,
                generation,
            });
        }
        Ok(OffsetCommit { partition, seq })
    }

    /// A member's partitions in the current generation, ascending.
    #[cfg(test)] // the server drives the coordinator through join, heartbeat and commit only
    pub fn assignment(&self, member_id: MemberId) -> Result<&[u32], GroupError> {
        let member = self
            .members
            .get(&member_id)
            .ok_or(GroupError::UnknownMember(member_id))?;
        Ok(&member.partitions)
    }

    /// The owner of a partition in the current generation; `None` when the group is empty.
    pub fn owner(&self, partition: u32) -> Result<Option<MemberId>, GroupError> {
        let unknown = GroupError::UnknownPartition {
            partition,
            partitions: self.config.partitions,
        };
        self.owners.get(partition as usize).copied().ok_or(unknown)
    }

    #[cfg(test)] // the server drives the coordinator through join, heartbeat and commit only
    pub fn generation(&self) -> Generation {
        self.generation
    }

    #[cfg(test)] // the server drives the coordinator through join, heartbeat and commit only
    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    /// The current members, in id order.
    pub fn members(&self) -> impl Iterator<Item = MemberId> + '_ {
        self.members.keys().copied()
    }

    /// Drops the members past their session timeout without rebalancing: the caller does, once.
    fn remove_expired(&mut self, now_ms: u64) -> Vec<MemberId> {
        let timeout_ms = self.config.session_timeout_ms;
        let expired: Vec<MemberId> = self
            .members
            .iter()
            .filter(|(_, member)| now_ms.saturating_sub(member.heartbeat_ms) > timeout_ms)
            .map(|(member_id, _)| *member_id)
            .collect();
        self.members
            .retain(|member_id, _| !expired.contains(member_id));
        expired
    }

    fn allocate_member_id(&mut self) -> MemberId {
        // Terminates: fewer than 2^64 members are live, so some id is free.
        loop {
            let candidate = MemberId(self.member_id_next);
            self.member_id_next = self.member_id_next.wrapping_add(1);
            if !self.members.contains_key(&candidate) {
                return candidate;
            }
        }
    }

    fn membership_changed(&mut self) {
        self.generation = Generation(self.generation.0.saturating_add(1));
        let member_ids: Vec<MemberId> = self.members.keys().copied().collect();
        self.owners = rebalance(&self.owners, &member_ids);
        for member in self.members.values_mut() {
            member.partitions.clear();
        }
        for (partition, owner) in (0u32..).zip(&self.owners) {
            if let Some(member) = owner.and_then(|owner| self.members.get_mut(&owner)) {
                member.partitions.push(partition);
            }
        }
    }
}

#[cfg(test)]
mod tests;
