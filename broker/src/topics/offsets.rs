//! [`GroupOffsets`]: the `_seq` each consumer group has committed per topic partition,
//! durable in the system partition `system/group-offsets` and rebuilt from it at start.
//!
//! One record per commit: key `<group>/<ns>.<topic>.<incarnation>/<partition>`, payload the
//! `_seq` (u64, little-endian); the newest record per key wins on replay, and a tombstone
//! removes the key. A commit is acknowledged only once its record is durable. Which member may
//! commit is the group coordinator's decision (`group.rs`), not this module's.
//!
//! Retention (docs/topics.md, "Consumer groups"): a group's offsets are kept while it has
//! members and for `group_offsets_retention` after it was last seen with members or last
//! committed, then removed by tombstones ([`GroupOffsets::expire_idle`]), like Kafka's
//! `offsets.retention.minutes`. After a restart the clock starts at the start (or at the last
//! commit, if later), so offsets are never removed before their retention.
//!
//! On a cluster member the records are written through the meta group instead
//! (`offsets/replicated.rs`): acknowledged once a majority holds them, applied by every member,
//! which reads them into its map ([`GroupOffsets::catch_up`]).

use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use strand_log::{LogError, NewRecord, Partition, PartitionId, ReadFrom, Seq, Store};

use crate::catalog::CatalogTopic;
use crate::cluster::writer::ReplicationError;
use replicated::Replication;

mod replicated;

const OFFSETS_PARTITION: &str = "system/group-offsets";

#[derive(Debug, thiserror::Error)]
pub enum OffsetsError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("group offset record {key:?} is unreadable")]
    BadRecord { key: String },
    /// A cluster member could not have the records replicated (not the leader, no majority).
    #[error(transparent)]
    Replication(#[from] ReplicationError),
}

pub struct GroupOffsets {
    id: PartitionId,
    log: Arc<Partition>,
    committed: Mutex<Committed>,
    /// Set on a cluster member: records go through its Raft group (`offsets/replicated.rs`).
    replication: OnceLock<Replication>,
}

/// The newest offset of every key, and when each group was last active (Unix ms).
#[derive(Default)]
struct Committed {
    offsets: HashMap<String, Seq>,
    active_ms: HashMap<String, u64>,
    /// The last `_seq` of the partition read into the map.
    read_through: Seq,
}

impl Committed {
    fn insert(&mut self, key: String, seq: Seq, at_ms: u64) {
        let active = self
            .active_ms
            .entry(group_of(&key).to_string())
            .or_insert(0);
        *active = (*active).max(at_ms);
        self.offsets.insert(key, seq);
    }

    /// Reads the partition's records after [`Self::read_through`]: the newest record per key
    /// wins, a tombstone removes its key, and a group left without offsets is forgotten.
    fn replay(&mut self, log: &Partition) -> Result<(), OffsetsError> {
        let snapshot = log.snapshot();
        let from = match self.read_through {
            Seq::ZERO => ReadFrom::Earliest,
            seq => ReadFrom::After(seq),
        };
        let mut emptied: HashSet<String> = HashSet::new();
        let mut result = Ok(());
        for record in snapshot.records(from) {
            let record = match record {
                Ok(record) => record,
                Err(error) => {
                    result = Err(error.into());
                    break;
                }
            };
            let key = String::from_utf8_lossy(record.key).into_owned();
            if record.flags.is_tombstone() {
                emptied.insert(group_of(&key).to_string());
                self.offsets.remove(&key);
            } else {
                let Ok(seq) = <[u8; 8]>::try_from(record.payload) else {
                    result = Err(OffsetsError::BadRecord { key });
                    break;
                };
                self.insert(key, Seq(u64::from_le_bytes(seq)), record.timestamp_unix_ms);
            }
            self.read_through = record.seq;
        }
        // Also after an error: what was read stays read, consistently.
        if !emptied.is_empty() {
            let left: HashSet<&str> = self.offsets.keys().map(|k| group_of(k)).collect();
            self.active_ms
                .retain(|group, _| !emptied.contains(group) || left.contains(group.as_str()));
        }
        result
    }

    /// The groups to expire now (see [`GroupOffsets::expire_idle`]); counts live groups as
    /// active at `now_ms`.
    fn expiring(
        &mut self,
        now_ms: u64,
        retention_ms: u64,
        kept_max: usize,
        is_live: impl Fn(&str) -> bool,
    ) -> HashSet<String> {
        let mut expired = HashSet::new();
        let mut idle = Vec::new();
        for (group, active) in self.active_ms.iter_mut() {
            if is_live(group) {
                *active = (*active).max(now_ms);
            } else if now_ms.saturating_sub(*active) > retention_ms {
                expired.insert(group.clone());
            } else {
                idle.push((*active, group.clone()));
            }
        }
        if self.offsets.len() > kept_max {
            let mut keys_of: HashMap<&str, usize> = HashMap::new();
            for key in self.offsets.keys() {
                *keys_of.entry(group_of(key)).or_insert(0) += 1;
            }
            let expiring: usize = expired
                .iter()
                .map(|g| keys_of.get(g.as_str()).copied().unwrap_or(0))
                .sum();
            let mut kept = self.offsets.len() - expiring;
            idle.sort();
            for (_, group) in idle {
                if kept <= kept_max {
                    break;
                }
                kept = kept.saturating_sub(keys_of.get(group.as_str()).copied().unwrap_or(0));
                tracing::warn!(group = %group, kept_max,
                    "idle group's offsets removed before their retention: too many offsets kept");
                expired.insert(group);
            }
        }
        expired
    }

    /// Counts every group as active at `now_ms` at the latest: after a start, and when this
    /// node takes the groups over as a cluster's new leader, no offsets go before a full
    /// retention has passed here.
    fn restart_retention(&mut self, now_ms: u64) {
        for active in self.active_ms.values_mut() {
            *active = (*active).max(now_ms);
        }
    }

    /// The keys of the groups in `expired`.
    fn keys_of(&self, expired: &HashSet<String>) -> Vec<String> {
        self.offsets
            .keys()
            .filter(|key| expired.contains(group_of(key)))
            .cloned()
            .collect()
    }

    /// Drops the offsets of the groups in `expired`.
    fn forget(&mut self, expired: &HashSet<String>) {
        self.offsets
            .retain(|key, _| !expired.contains(group_of(key)));
        self.active_ms.retain(|group, _| !expired.contains(group));
    }
}

impl GroupOffsets {
    pub fn open(store: &Store) -> Result<GroupOffsets, OffsetsError> {
        let id = PartitionId::new(OFFSETS_PARTITION)?;
        let log = store.partition(&id)?;
        let mut committed = Committed::default();
        committed.replay(&log)?;
        // Retention restarts now for every group (see the module comment).
        committed.restart_retention(unix_ms());
        Ok(GroupOffsets {
            id,
            log,
            committed: Mutex::new(committed),
            replication: OnceLock::new(),
        })
    }

    /// Removes the offsets of every group that `is_live` says has no members and that was
    /// last active more than `retention_ms` before `now_ms` (Unix ms); live groups count as
    /// active now. Then, while more than `kept_max` offsets remain, those of the longest idle
    /// groups without members. The removal is durable (tombstones) before it is visible.
    /// Returns the removed groups.
    pub fn expire_idle(
        &self,
        now_ms: u64,
        retention_ms: u64,
        kept_max: usize,
        is_live: impl Fn(&str) -> bool,
    ) -> Result<Vec<String>, OffsetsError> {
        if let Some(replication) = self.replication.get() {
            return self.expire_replicated(replication, now_ms, retention_ms, kept_max, is_live);
        }
        let mut committed = self.committed.lock();
        let expired = committed.expiring(now_ms, retention_ms, kept_max, is_live);
        if expired.is_empty() {
            return Ok(Vec::new());
        }
        let keys = committed.keys_of(&expired);
        let records: Vec<NewRecord<'_>> = keys
            .iter()
            .map(|key| NewRecord::tombstone(key.as_bytes()))
            .collect();
        if !records.is_empty() {
            let range = self.log.append(&records)?;
            committed.read_through = range.last;
        }
        committed.forget(&expired);
        Ok(expired.into_iter().collect())
    }

    /// The clock [`Self::expire_idle`] and commits count retention by (Unix ms).
    pub fn now_unix_ms() -> u64 {
        unix_ms()
    }

    /// Groups that have offsets stored.
    pub fn groups(&self) -> usize {
        self.committed.lock().active_ms.len()
    }

    /// Durably record that `group` has processed `partition` of `topic` up to `seq`.
    pub fn commit(
        &self,
        group: &str,
        topic: &CatalogTopic,
        partition: u32,
        seq: Seq,
    ) -> Result<(), OffsetsError> {
        self.commit_all(group, topic, &[(partition, seq)], None)
    }

    /// Durably record several partitions' offsets of one group as one append (one fsync).
    /// On a cluster member, `checked_in` is the term the coordinator accepted the commit in
    /// (`quic/groups/leadership.rs`): it is written only in that term.
    pub fn commit_all(
        &self,
        group: &str,
        topic: &CatalogTopic,
        offsets: &[(u32, Seq)],
        checked_in: Option<u64>,
    ) -> Result<(), OffsetsError> {
        let keyed: Vec<(String, [u8; 8])> = offsets
            .iter()
            .map(|&(partition, seq)| (offset_key(group, topic, partition), seq.0.to_le_bytes()))
            .collect();
        let records: Vec<NewRecord<'_>> = keyed
            .iter()
            .map(|(key, payload)| NewRecord::new(key.as_bytes(), payload))
            .collect();
        if let Some(replication) = self.replication.get() {
            return self.commit_replicated(replication, &records, checked_in);
        }
        // The map lock orders commits of one key as their records are; it is held through
        // the append so a reader never sees a commit that is not durable.
        let mut committed = self.committed.lock();
        let range = self.log.append(&records)?;
        committed.read_through = range.last;
        let now_ms = unix_ms();
        for ((key, _), &(_, seq)) in keyed.into_iter().zip(offsets) {
            committed.insert(key, seq, now_ms);
        }
        Ok(())
    }

    /// Calls `each(group, topic, partition, seq)` for every committed offset, where `topic` is
    /// the topic's [`topic_key`], in no order. Runs under the offsets' lock, which commits
    /// wait for: `each` must be brief.
    pub fn each_committed(&self, mut each: impl FnMut(&str, &str, u32, Seq)) {
        let committed = self.committed.lock();
        for (key, &seq) in &committed.offsets {
            let Some((group, rest)) = key.split_once('/') else {
                continue;
            };
            let Some((topic, partition)) = rest.rsplit_once('/') else {
                continue;
            };
            if let Ok(partition) = partition.parse() {
                each(group, topic, partition, seq);
            }
        }
    }

    /// The last committed `_seq`, if the group ever committed this partition.
    pub fn committed(&self, group: &str, topic: &CatalogTopic, partition: u32) -> Option<Seq> {
        let key = offset_key(group, topic, partition);
        let committed = self.committed.lock();
        committed.offsets.get(&key).copied()
    }
}

/// The group of an offset key (group names have no `/`).
fn group_of(key: &str) -> &str {
    key.split_once('/').map_or(key, |(group, _)| group)
}

/// The wall clock in Unix milliseconds (retention outlives restarts, so not a monotonic one).
fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

fn offset_key(group: &str, topic: &CatalogTopic, partition: u32) -> String {
    format!("{group}/{}/{partition}", topic_key(topic))
}

/// How offset keys name a topic: `<ns>.<topic>.<incarnation>` (the `topic` of
/// [`GroupOffsets::each_committed`]).
pub(super) fn topic_key(topic: &CatalogTopic) -> String {
    let name = &topic.def.name;
    format!("{}.{}.{}", name.namespace, name.topic, topic.incarnation.0)
}

#[cfg(test)]
mod tests;
