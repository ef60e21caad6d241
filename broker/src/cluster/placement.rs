//! Keeps every data group's leader on the meta group's leader.
//!
//! Why: a write is checked on the node that leads the meta group (the catalog, the user
//! directory and the partition locks it is checked against live there), so that node must
//! also propose it to its partition's data group. openraft 0.9 cannot hand leadership over,
//! so each node steers elections instead, every `CLUSTER_PLACEMENT_CHECK_MS`:
//! - the meta group's leader may stand for every data group, and stands for one another node
//!   leads (at most once per minimum election timeout);
//! - any other node does not stand for a data group, and if it leads one it stops sending
//!   heartbeats there, so the group's followers stop hearing from it, their leader lease runs
//!   out, and the meta leader's candidacy can win;
//! - a data group whose leader has not been the meta group's for
//!   `CLUSTER_PLACEMENT_FALLBACK_MS` (the meta leader cannot win it, e.g. its copy of the
//!   group lags) lets every member stand, as plain Raft does; whoever wins brings the meta
//!   leader's copy up to date (and, not leading the meta group, sends no heartbeats), so the
//!   meta leader's next candidacy can win.

use std::time::{Duration, Instant};

use openraft::{Raft, ServerState};

use super::types::{ClusterTypes, NodeId};
use crate::limits::{
    CLUSTER_ELECTION_TIMEOUT_MS_MIN, CLUSTER_PLACEMENT_CHECK_MS, CLUSTER_PLACEMENT_FALLBACK_MS,
};

/// What one data group looks like from this node, for one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Seen {
    /// This node leads the meta group.
    pub leads_meta: bool,
    /// The meta group's leader, as this node knows it.
    pub meta_leader: Option<NodeId>,
    /// The data group's leader, as this node knows it.
    pub group_leader: Option<NodeId>,
    /// This node leads the data group.
    pub leads_group: bool,
}

/// What this node does about one data group, decided from what it saw (sans-IO).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Steering {
    /// Whether the group's election timer may make this node a candidate.
    pub may_stand: bool,
    /// Whether this node, leading the group, sends heartbeats.
    pub heartbeats: bool,
    /// Whether to stand now.
    pub stand_now: bool,
}

/// One data group's steering state on this node.
#[derive(Debug)]
pub(crate) struct GroupSteering {
    /// Since when the group's leader has not been the meta leader (`None`: it is).
    unsettled_since: Option<Instant>,
    /// When this node last stood for the group.
    last_stood: Option<Instant>,
}

impl GroupSteering {
    pub(crate) fn new() -> GroupSteering {
        GroupSteering {
            unsettled_since: None,
            last_stood: None,
        }
    }

    /// Decides, at `now`, what to do about a group seen as `seen`.
    pub(crate) fn steer(&mut self, seen: Seen, now: Instant) -> Steering {
        let settled = seen.meta_leader.is_some() && seen.group_leader == seen.meta_leader;
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
        let retry = Duration::from_millis(CLUSTER_ELECTION_TIMEOUT_MS_MIN);
        let stand_now = seen.leads_meta
            && !seen.leads_group
            && self
                .last_stood
                .is_none_or(|last| now.duration_since(last) >= retry);
        if stand_now {
            self.last_stood = Some(now);
        }
        Steering {
            may_stand: seen.leads_meta || fallback,
            heartbeats: seen.leads_meta || !seen.leads_group,
            stand_now,
        }
    }
}

/// Steers `groups` (the meta group first) on node `me` until the task is aborted.
pub(crate) async fn steer_forever(me: NodeId, groups: Vec<Raft<ClusterTypes>>) {
    let Some((meta, data)) = groups.split_first() else {
        return;
    };
    let mut steering: Vec<GroupSteering> = data.iter().map(|_| GroupSteering::new()).collect();
    let mut tick = tokio::time::interval(Duration::from_millis(CLUSTER_PLACEMENT_CHECK_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (meta_leader, meta_state) = leader_of(meta);
        let leads_meta = meta_leader == Some(me) && meta_state == ServerState::Leader;
        for (group, (raft, state)) in data.iter().zip(steering.iter_mut()).enumerate() {
            let (group_leader, group_state) = leader_of(raft);
            let seen = Seen {
                leads_meta,
                meta_leader,
                group_leader,
                leads_group: group_leader == Some(me) && group_state == ServerState::Leader,
            };
            let steer = state.steer(seen, Instant::now());
            let config = raft.runtime_config();
            config.elect(steer.may_stand);
            config.heartbeat(steer.heartbeats);
            if steer.stand_now {
                tracing::debug!(
                    group = group + 1,
                    "standing for a data group this node should lead"
                );
                if let Err(error) = raft.trigger().elect().await {
                    tracing::warn!(group = group + 1, %error, "Raft stopped");
                    return;
                }
            }
        }
    }
}

fn leader_of(raft: &Raft<ClusterTypes>) -> (Option<NodeId>, ServerState) {
    let metrics = raft.metrics();
    let metrics = metrics.borrow();
    (metrics.current_leader, metrics.state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(leads_meta: bool, meta: Option<NodeId>, group: Option<NodeId>, me: NodeId) -> Seen {
        Seen {
            leads_meta,
            meta_leader: meta,
            group_leader: group,
            leads_group: group == Some(me),
        }
    }

    #[test]
    fn the_meta_leader_stands_for_a_group_another_node_leads_then_waits_to_retry() {
        let mut steering = GroupSteering::new();
        let start = Instant::now();
        let steer = steering.steer(seen(true, Some(1), Some(2), 1), start);
        assert!(steer.stand_now && steer.may_stand && steer.heartbeats);
        let soon = start + Duration::from_millis(CLUSTER_PLACEMENT_CHECK_MS);
        assert!(
            !steering
                .steer(seen(true, Some(1), Some(2), 1), soon)
                .stand_now
        );
        let later = start + Duration::from_millis(CLUSTER_ELECTION_TIMEOUT_MS_MIN);
        assert!(
            steering
                .steer(seen(true, Some(1), Some(2), 1), later)
                .stand_now
        );
    }

    #[test]
    fn another_leader_of_a_group_stops_its_heartbeats_and_nobody_else_stands() {
        let mut steering = GroupSteering::new();
        let now = Instant::now();
        let steer = steering.steer(seen(false, Some(1), Some(2), 2), now);
        assert_eq!(
            steer,
            Steering {
                may_stand: false,
                heartbeats: false,
                stand_now: false
            }
        );
        let follower = GroupSteering::new().steer(seen(false, Some(1), Some(2), 3), now);
        assert!(!follower.may_stand && !follower.stand_now && follower.heartbeats);
    }

    #[test]
    fn a_settled_group_is_left_alone() {
        let mut steering = GroupSteering::new();
        let now = Instant::now();
        let leader = steering.steer(seen(true, Some(1), Some(1), 1), now);
        assert!(leader.may_stand && leader.heartbeats && !leader.stand_now);
        let later = now + Duration::from_millis(CLUSTER_PLACEMENT_FALLBACK_MS * 2);
        let follower = GroupSteering::new().steer(seen(false, Some(1), Some(1), 3), later);
        assert!(!follower.may_stand && follower.heartbeats);
    }

    #[test]
    fn a_group_unsettled_for_long_lets_every_member_stand() {
        let mut steering = GroupSteering::new();
        let start = Instant::now();
        assert!(
            !steering
                .steer(seen(false, Some(1), Some(2), 3), start)
                .may_stand
        );
        let later = start + Duration::from_millis(CLUSTER_PLACEMENT_FALLBACK_MS);
        let steer = steering.steer(seen(false, Some(1), Some(2), 3), later);
        assert!(steer.may_stand);
        // Whoever wins it still stops its heartbeats, so the meta leader can take over.
        let other_leader = steering.steer(seen(false, Some(1), Some(2), 2), later);
        assert!(other_leader.may_stand && !other_leader.heartbeats);
        // Settled again: back to steering.
        let settled = steering.steer(seen(false, Some(1), Some(1), 3), later);
        assert!(!settled.may_stand);
    }
}
