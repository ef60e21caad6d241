//! Keeps every data group's leader on the meta group's leader.
//!
//! Why: a write is checked on the node that leads the meta group (the catalog, the user
//! directory and the partition locks it is checked against live there), so that node must
//! also propose it to its partition's data group. openraft 0.9 cannot hand leadership over,
//! so each node steers its data groups' elections, every `CLUSTER_PLACEMENT_CHECK_MS`:
//! - only the meta group's leader lets its election timer make it a candidate;
//! - a node that leads a data group but not the meta group goes on sending heartbeats until
//!   the meta leader holds every entry of the group's log, then stops: the meta leader hears
//!   nothing for an election timeout, stands with a log as long as anyone's, and wins;
//! - a data group whose leader has not been the meta group's for
//!   `CLUSTER_PLACEMENT_FALLBACK_MS` (e.g. the meta leader's copy of the group lags, so its
//!   candidacies fail, and the group's leader died) lets every member stand, as plain Raft
//!   does; whoever wins brings the meta leader's copy up to date and then steps aside as
//!   above. The wait starts again with each new leader, so after a step-aside the meta
//!   leader, whose timer is the only one running, stands before anyone else may; terms
//!   without a leader do not restart it.
//!
//! Nobody is made to stand by force: a candidate whose log lags loses, and its higher term
//! would unseat the leader that could have brought it up to date (the first version did
//! that, and the fault schedule found a group that elected nobody for 30 s).

use std::time::{Duration, Instant};

use openraft::{Raft, ServerState};

use super::types::{ClusterTypes, NodeId};
use crate::limits::{CLUSTER_PLACEMENT_CHECK_MS, CLUSTER_PLACEMENT_FALLBACK_MS};

/// What one data group looks like from this node, for one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Seen {
    /// This node leads the meta group.
    pub leads_meta: bool,
    /// The meta group's leader, as this node knows it.
    pub meta_leader: Option<NodeId>,
    /// The data group's leader, as this node knows it.
    pub group_leader: Option<NodeId>,
    /// The data group's term on this node.
    pub group_term: u64,
    /// This node leads the data group.
    pub leads_group: bool,
    /// Leading the data group: the meta leader holds every entry of its log.
    pub meta_leader_caught_up: bool,
}

/// What this node does about one data group, decided from what it saw (sans-IO).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Steering {
    /// Whether the group's election timer may make this node a candidate.
    pub may_stand: bool,
    /// Whether this node, leading the group, sends heartbeats.
    pub heartbeats: bool,
}

/// One data group's steering state on this node.
#[derive(Debug, Default)]
pub(crate) struct GroupSteering {
    /// Since when, in this term, the group's leader has not been the meta leader (`None`:
    /// it is).
    unsettled_since: Option<Instant>,
    /// The group's leader and term when last seen with a leader.
    led: Option<(NodeId, u64)>,
}

impl GroupSteering {
    /// Decides, at `now`, what to do about a group seen as `seen`.
    pub(crate) fn steer(&mut self, seen: Seen, now: Instant) -> Steering {
        let settled = seen.meta_leader.is_some() && seen.group_leader == seen.meta_leader;
        // A new leader starts the wait afresh; a term without one does not: a lagging meta
        // leader's failed candidacies raise everyone's term while nobody leads, and that is
        // the case the wait is for.
        if let Some(leader) = seen.group_leader {
            if self.led != Some((leader, seen.group_term)) {
                self.led = Some((leader, seen.group_term));
                self.unsettled_since = None;
            }
        }
        let since = match (settled, self.unsettled_since) {
            (true, _) => {
                self.unsettled_since = None;
                now
            }
            (false, Some(since)) => since,
            (false, None) => *self.unsettled_since.insert(now),
        };
        let fallback =
            now.duration_since(since) >= Duration::from_millis(CLUSTER_PLACEMENT_FALLBACK_MS);
        let steps_aside = seen.leads_group && !seen.leads_meta && seen.meta_leader_caught_up;
        Steering {
            may_stand: seen.leads_meta || fallback,
            heartbeats: !steps_aside,
        }
    }
}

/// Steers `groups` (the meta group first) on node `me` until the task is aborted.
pub(crate) async fn steer_forever(me: NodeId, groups: Vec<Raft<ClusterTypes>>) {
    let Some((meta, data)) = groups.split_first() else {
        return;
    };
    let mut steering: Vec<GroupSteering> = data.iter().map(|_| GroupSteering::default()).collect();
    let mut tick = tokio::time::interval(Duration::from_millis(CLUSTER_PLACEMENT_CHECK_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (meta_leader, leads_meta) = {
            let metrics = meta.metrics();
            let metrics = metrics.borrow();
            let leads = metrics.current_leader == Some(me) && metrics.state == ServerState::Leader;
            (metrics.current_leader, leads)
        };
        for (raft, state) in data.iter().zip(steering.iter_mut()) {
            let seen = {
                let metrics = raft.metrics();
                let metrics = metrics.borrow();
                let leads_group =
                    metrics.current_leader == Some(me) && metrics.state == ServerState::Leader;
                let matched = meta_leader.and_then(|leader| {
                    let replication = metrics.replication.as_ref()?;
                    replication.get(&leader).copied().flatten()
                });
                Seen {
                    leads_meta,
                    meta_leader,
                    group_leader: metrics.current_leader,
                    group_term: metrics.current_term,
                    leads_group,
                    meta_leader_caught_up: matched.map(|id| id.index) >= metrics.last_log_index
                        && matched.is_some(),
                }
            };
            let steer = state.steer(seen, Instant::now());
            let config = raft.runtime_config();
            config.elect(steer.may_stand);
            config.heartbeat(steer.heartbeats);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(leads_meta: bool, meta: Option<NodeId>, group: Option<NodeId>, me: NodeId) -> Seen {
        Seen {
            leads_meta,
            meta_leader: meta,
            group_leader: group,
            group_term: 1,
            leads_group: group == Some(me),
            meta_leader_caught_up: false,
        }
    }

    #[test]
    fn only_the_meta_leader_may_stand() {
        let now = Instant::now();
        let meta_leader = GroupSteering::default().steer(seen(true, Some(1), Some(2), 1), now);
        assert_eq!(
            meta_leader,
            Steering {
                may_stand: true,
                heartbeats: true
            }
        );
        let follower = GroupSteering::default().steer(seen(false, Some(1), Some(2), 3), now);
        assert!(!follower.may_stand && follower.heartbeats);
    }

    #[test]
    fn another_leader_keeps_its_heartbeats_until_the_meta_leader_caught_up() {
        let now = Instant::now();
        let mut steering = GroupSteering::default();
        let lagging = steering.steer(seen(false, Some(1), Some(2), 2), now);
        assert!(!lagging.may_stand && lagging.heartbeats);
        let caught_up = Seen {
            meta_leader_caught_up: true,
            ..seen(false, Some(1), Some(2), 2)
        };
        let steer = steering.steer(caught_up, now);
        assert!(!steer.may_stand && !steer.heartbeats);
        // Leading the meta group too, it keeps them whatever the others hold.
        let both = Seen {
            meta_leader_caught_up: true,
            ..seen(true, Some(2), Some(2), 2)
        };
        assert!(GroupSteering::default().steer(both, now).heartbeats);
    }

    #[test]
    fn a_settled_group_is_left_alone() {
        let now = Instant::now();
        let later = now + Duration::from_millis(CLUSTER_PLACEMENT_FALLBACK_MS * 2);
        let mut steering = GroupSteering::default();
        assert!(
            !steering
                .steer(seen(false, Some(1), Some(1), 3), now)
                .may_stand
        );
        assert!(
            !steering
                .steer(seen(false, Some(1), Some(1), 3), later)
                .may_stand
        );
    }

    #[test]
    fn a_group_unsettled_for_long_lets_every_member_stand() {
        let mut steering = GroupSteering::default();
        let start = Instant::now();
        assert!(
            !steering
                .steer(seen(false, Some(1), None, 3), start)
                .may_stand
        );
        let later = start + Duration::from_millis(CLUSTER_PLACEMENT_FALLBACK_MS);
        assert!(
            steering
                .steer(seen(false, Some(1), None, 3), later)
                .may_stand
        );
        // Settled again: back to steering.
        let settled = steering.steer(seen(false, Some(1), Some(1), 3), later);
        assert!(!settled.may_stand);
    }

    #[test]
    fn terms_without_a_leader_do_not_restart_the_wait() {
        let mut steering = GroupSteering::default();
        let start = Instant::now();
        assert!(
            !steering
                .steer(seen(false, Some(1), None, 3), start)
                .may_stand
        );
        let later = start + Duration::from_millis(CLUSTER_PLACEMENT_FALLBACK_MS);
        let raised = Seen {
            group_term: 9,
            ..seen(false, Some(1), None, 3)
        };
        assert!(steering.steer(raised, later).may_stand);
    }

    #[test]
    fn the_wait_before_everyone_may_stand_starts_again_with_each_leader() {
        let mut steering = GroupSteering::default();
        let start = Instant::now();
        assert!(
            !steering
                .steer(seen(false, Some(1), Some(2), 3), start)
                .may_stand
        );
        let later = start + Duration::from_millis(CLUSTER_PLACEMENT_FALLBACK_MS);
        let next_term = Seen {
            group_term: 2,
            ..seen(false, Some(1), Some(2), 3)
        };
        assert!(!steering.steer(next_term, later).may_stand);
        let much_later = later + Duration::from_millis(CLUSTER_PLACEMENT_FALLBACK_MS);
        assert!(steering.steer(next_term, much_later).may_stand);
    }
}
