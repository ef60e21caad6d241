//! Ticks on a cluster member: a `_seq` below which this node holds every record of every
//! data group, for the subscriptions that read several partitions as of one `_seq` (joins)
//! or stamp time passing with one (time windows).
//!
//! Why the local log's tick does not do: records reach a member through each group's
//! applies, in each group's own order, so a record the leader issued a lower `_seq` may be
//! applied after a higher one of another group; and on the leader a `_seq` issued to a
//! proposal is applied only once it commits. So each data group's leader proposes a
//! [`ClusterCommand::Tick`] every [`CLUSTER_TICK_INTERVAL_MS`]: a `_seq` issued under the
//! group's order lock, so every entry before it carries lower `_seq`s and every entry after
//! it higher ones (a later leader issues above everything it applied, the tick included).
//! A member that applied a tick of every data group holds every record below the lowest of
//! them: that is its settled tick ([`AppliedTicks::settled`]).
//!
//! Invariant: a member's settled tick only grows, and once it is `T`, no record below `T`
//! is applied on that member afterwards.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use strand_log::Seq;

use super::writer::ClusterWriters;
use crate::limits::{CLUSTER_TICK_INTERVAL_MS, CLUSTER_WRITE_TIMEOUT_MS};

#[cfg(doc)]
use super::types::ClusterCommand;

/// The last tick this node applied in each data group (0: none since it started).
#[derive(Debug)]
pub struct AppliedTicks {
    /// By data group, the first at 0 (group 1).
    groups: Mutex<Vec<u64>>,
}

impl AppliedTicks {
    /// No tick applied yet in any of `data_groups` groups.
    pub fn new(data_groups: usize) -> AppliedTicks {
        AppliedTicks {
            groups: Mutex::new(vec![0; data_groups]),
        }
    }

    /// Data group `group` (1-based) applied the tick `seq`: every record of the group below
    /// it is published here. Returns whether the settled tick moved.
    pub fn ticked(&self, group: u32, seq: Seq) -> bool {
        let Some(at) = usize::try_from(group).ok().and_then(|g| g.checked_sub(1)) else {
            return false;
        };
        let mut groups = self.groups.lock();
        let before = lowest(&groups);
        match groups.get_mut(at) {
            Some(last) if seq.0 > *last => *last = seq.0,
            _ => return false,
        }
        lowest(&groups) > before
    }

    /// The settled tick: every record of every data group below it is published on this
    /// node. `None` until each data group applied a tick since this node started.
    pub fn settled(&self) -> Option<Seq> {
        let groups = self.groups.lock();
        match lowest(&groups) {
            0 => None,
            seq => Some(Seq(seq)),
        }
    }
}

fn lowest(groups: &[u64]) -> u64 {
    groups.iter().copied().min().unwrap_or(0)
}

/// Proposes a tick to each data group this node leads, every [`CLUSTER_TICK_INTERVAL_MS`],
/// until the task is aborted. A round waits for its ticks (at most the write timeout), so a
/// leader cut off from the others adds one uncommitted tick per group per timeout, not one
/// per interval.
pub(crate) async fn tick_forever(writers: Arc<ClusterWriters>) {
    let mut interval = tokio::time::interval(Duration::from_millis(CLUSTER_TICK_INTERVAL_MS));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let patience = Duration::from_millis(CLUSTER_WRITE_TIMEOUT_MS);
    loop {
        interval.tick().await;
        let round = writers.data().map(|writer| async move {
            if !writer.leads() {
                return;
            }
            match tokio::time::timeout(patience, writer.propose_tick()).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::debug!(%error, "a tick was not applied"),
                Err(_) => tracing::debug!("a tick got no answer in time"),
            }
        });
        futures_util::future::join_all(round).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_settled_tick_is_the_lowest_once_every_group_ticked() {
        let ticks = AppliedTicks::new(3);
        assert!(!ticks.ticked(1, Seq(50)));
        assert!(!ticks.ticked(3, Seq(70)));
        assert_eq!(ticks.settled(), None);
        assert!(ticks.ticked(2, Seq(60)));
        assert_eq!(ticks.settled(), Some(Seq(50)));
        // The lowest group moves on: the settled tick follows to the next lowest.
        assert!(ticks.ticked(1, Seq(90)));
        assert_eq!(ticks.settled(), Some(Seq(60)));
        // A group that was not the lowest moves nothing.
        assert!(!ticks.ticked(3, Seq(95)));
        assert_eq!(ticks.settled(), Some(Seq(60)));
    }

    #[test]
    fn a_tick_never_goes_back_and_unknown_groups_change_nothing() {
        let ticks = AppliedTicks::new(2);
        ticks.ticked(1, Seq(40));
        ticks.ticked(2, Seq(30));
        assert!(!ticks.ticked(2, Seq(20)));
        assert!(!ticks.ticked(0, Seq(99)));
        assert!(!ticks.ticked(3, Seq(99)));
        assert_eq!(ticks.settled(), Some(Seq(30)));
    }
}
