//! The registry of consumer groups the service coordinates ([`Groups`]): each group's state
//! by name, the per-user counts that bound them, and the sweep that expires silent members,
//! removes empty groups and has idle groups' offsets removed after their retention (see
//! `groups.rs` for the rules). Which node may hold groups at all is `leadership.rs`.

use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Mutex as AsyncMutex;

use crate::catalog::CatalogTopic;
use crate::config::GroupLimits;
use crate::limits::GROUP_OFFSETS_KEPT_MAX;
use crate::topics::group::GroupCoordinator;
use crate::topics::GroupOffsets;

/// One group: the topic it consumes, its coordinator and the user whose join created it
/// (whose per-user count it is in). Behind an async mutex so a commit can hold it across its
/// durable write (a rebalance cannot slip between the fencing check and the write) without
/// blocking a runtime thread.
pub(super) struct GroupState {
    pub(super) topic: CatalogTopic,
    pub(super) coordinator: GroupCoordinator,
    pub(super) creator: String,
}

/// The groups by name, and how many each user created.
#[derive(Default)]
pub(super) struct Registry {
    pub(super) groups: HashMap<String, Arc<AsyncMutex<GroupState>>>,
    pub(super) per_user: HashMap<String, usize>,
    /// On a cluster member, the term this node led in when the groups were made; `None`
    /// while it does not lead (`groups/leadership.rs`).
    pub(super) term: Option<u64>,
}

impl Registry {
    pub(super) fn count(&mut self, user: &str, added: bool) {
        if added {
            *self.per_user.entry(user.to_string()).or_insert(0) += 1;
        } else if let Some(count) = self.per_user.get_mut(user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_user.remove(user);
            }
        }
    }
}

/// What the service and its sweep thread share.
pub(super) struct Groups {
    pub(super) offsets: Arc<GroupOffsets>,
    pub(super) registry: Mutex<Registry>,
    pub(super) limits: GroupLimits,
    /// The coordinator's clock starts here (monotonic; restarts with the server, as do groups).
    epoch: Instant,
}

impl Groups {
    pub(super) fn new(offsets: Arc<GroupOffsets>, limits: GroupLimits) -> Groups {
        Groups {
            offsets,
            registry: Mutex::new(Registry::default()),
            limits,
            epoch: Instant::now(),
        }
    }

    pub(super) fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Expires silent members, removes every group without members that no request holds,
    /// then removes the offsets of groups idle past the retention (see the module comment).
    /// On a cluster member only while it leads.
    pub(super) fn sweep(&self) {
        if let Some(writer) = self.offsets.cluster_writer() {
            if !self.coordinating_blocking(writer) {
                return;
            }
        }
        let now_ms = self.now_ms();
        let mut registry = self.registry.lock();
        let mut removed = Vec::new();
        registry.groups.retain(|name, state| {
            // Only the registry holds it (checked under the registry lock, so no request can
            // take it meanwhile): nothing is about to join it.
            if Arc::strong_count(state) != 1 {
                return true;
            }
            let Ok(mut state) = state.try_lock() else {
                return true;
            };
            state.coordinator.expire(now_ms);
            if state.coordinator.members().next().is_some() {
                return true;
            }
            removed.push((name.clone(), state.creator.clone()));
            false
        });
        for (name, creator) in &removed {
            registry.count(creator, false);
            tracing::debug!(group = %name, creator = %creator, "empty group removed");
        }
        if self.offsets.cluster_writer().is_some() {
            // Not under the registry lock: the tombstones wait for a majority, and request
            // handlers take that lock on the runtime. A commit of a group that comes back to
            // life meanwhile is ordered with the tombstones (`topics/offsets/replicated.rs`).
            let live: HashSet<String> = registry.groups.keys().cloned().collect();
            drop(registry);
            self.expire_offsets(|group| live.contains(group));
        } else {
            // Under the registry lock: a group cannot come back to life while its offsets go.
            self.expire_offsets(|group| registry.groups.contains_key(group));
        }
    }

    /// Removes the offsets of groups that are not `live` and idle past the retention.
    fn expire_offsets(&self, live: impl Fn(&str) -> bool) {
        let retention_ms =
            u64::try_from(self.limits.offsets_retention.as_millis()).unwrap_or(u64::MAX);
        let now_unix_ms = GroupOffsets::now_unix_ms();
        match self
            .offsets
            .expire_idle(now_unix_ms, retention_ms, GROUP_OFFSETS_KEPT_MAX, live)
        {
            Ok(expired) => {
                for group in expired {
                    tracing::info!(group = %group, "idle group's offsets removed after the retention");
                }
            }
            Err(error) => tracing::warn!(%error, "cannot remove idle groups' offsets"),
        }
    }
}
