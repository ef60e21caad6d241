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

use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use strand_log::{LogError, NewRecord, Partition, PartitionId, ReadFrom, Seq, Store};

use crate::catalog::CatalogTopic;

const OFFSETS_PARTITION: &str = "system/group-offsets";

#[derive(Debug, thiserror::Error)]
pub enum OffsetsError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("group offset record {key:?} is unreadable")]
    BadRecord { key: String },
}

pub struct GroupOffsets {
    log: Arc<Partition>,
    committed: Mutex<Committed>,
}

/// The newest offset of every key, and when each group was last active (Unix ms).
#[derive(Default)]
struct Committed {
    offsets: HashMap<String, Seq>,
    active_ms: HashMap<String, u64>,
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
}

impl GroupOffsets {
    pub fn open(store: &Store) -> Result<GroupOffsets, OffsetsError> {
        let log = store.partition(&PartitionId::new(OFFSETS_PARTITION)?)?;
        let mut committed = Committed::default();
        let snapshot = log.snapshot();
        for record in snapshot.records(ReadFrom::Earliest) {
            let record = record?;
            let key = String::from_utf8_lossy(record.key).into_owned();
            if record.flags.is_tombstone() {
                committed.offsets.remove(&key);
                continue;
            }
            let seq = <[u8; 8]>::try_from(record.payload)
                .map_err(|_| OffsetsError::BadRecord { key: key.clone() })?;
            committed.insert(key, Seq(u64::from_le_bytes(seq)), record.timestamp_unix_ms);
        }
        // Retention restarts now for every group (see the module comment).
        let started = unix_ms();
        let groups: HashSet<&str> = committed.offsets.keys().map(|k| group_of(k)).collect();
        let active_ms = groups
            .into_iter()
            .map(|group| {
                let last = committed.active_ms.get(group).copied().unwrap_or(0);
                (group.to_string(), last.max(started))
            })
            .collect();
        committed.active_ms = active_ms;
        Ok(GroupOffsets {
            log,
            committed: Mutex::new(committed),
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
        let mut committed = self.committed.lock();
        let mut expired = HashSet::new();
        let mut idle = Vec::new();
        for (group, active) in committed.active_ms.iter_mut() {
            if is_live(group) {
                *active = (*active).max(now_ms);
            } else if now_ms.saturating_sub(*active) > retention_ms {
                expired.insert(group.clone());
            } else {
                idle.push((*active, group.clone()));
            }
        }
        if committed.offsets.len() > kept_max {
            let mut keys_of: HashMap<&str, usize> = HashMap::new();
            for key in committed.offsets.keys() {
                *keys_of.entry(group_of(key)).or_insert(0) += 1;
            }
            let expiring: usize = expired
                .iter()
                .map(|g| keys_of.get(g.as_str()).copied().unwrap_or(0))
                .sum();
            let mut kept = committed.offsets.len() - expiring;
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
        if expired.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<&String> = committed
            .offsets
            .keys()
            .filter(|key| expired.contains(group_of(key)))
            .collect();
        let records: Vec<NewRecord<'_>> = keys
            .iter()
            .map(|key| NewRecord::tombstone(key.as_bytes()))
            .collect();
        if !records.is_empty() {
            self.log.append(&records)?;
        }
        let committed = &mut *committed;
        committed
            .offsets
            .retain(|key, _| !expired.contains(group_of(key)));
        committed
            .active_ms
            .retain(|group, _| !expired.contains(group));
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
        self.commit_all(group, topic, &[(partition, seq)])
    }

    /// Durably record several partitions' offsets of one group as one append (one fsync).
    pub fn commit_all(
        &self,
        group: &str,
        topic: &CatalogTopic,
        offsets: &[(u32, Seq)],
    ) -> Result<(), OffsetsError> {
        let keyed: Vec<(String, [u8; 8])> = offsets
            .iter()
            .map(|&(partition, seq)| (offset_key(group, topic, partition), seq.0.to_le_bytes()))
            .collect();
        let records: Vec<NewRecord<'_>> = keyed
            .iter()
            .map(|(key, payload)| NewRecord::new(key.as_bytes(), payload))
            .collect();
        // The map lock orders commits of one key as their records are; it is held through
        // the append so a reader never sees a commit that is not durable.
        let mut committed = self.committed.lock();
        self.log.append(&records)?;
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
mod tests {
    use strand_log::{FsyncPolicy, StoreConfig};
    use strand_sql_view::{Name, TopicName};

    use super::*;
    use crate::catalog::TopicDef;

    /// Topic `app.events` with `partitions` partitions.
    fn events_topic(partitions: u32) -> CatalogTopic {
        CatalogTopic {
            def: Arc::new(TopicDef {
                name: TopicName {
                    namespace: Name::new("app").expect("name"),
                    topic: Name::new("events").expect("name"),
                },
                partitions,
                retention_seconds: None,
                sources: Vec::new(),
            }),
            incarnation: Seq(5),
        }
    }

    /// The offsets of a store in `dir`, opened afresh (as after a restart).
    fn open_offsets(dir: &std::path::Path) -> GroupOffsets {
        let mut config = StoreConfig::default();
        config.partition.fsync = FsyncPolicy::Never;
        let store = Store::open(dir, config).expect("store");
        GroupOffsets::open(&store).expect("offsets")
    }

    #[test]
    fn each_committed_names_group_topic_and_partition() {
        let dir = tempfile::tempdir().expect("tempdir");
        let offsets = open_offsets(dir.path());
        let topic = events_topic(3);
        offsets.commit("g", &topic, 2, Seq(10)).expect("commit");
        offsets.commit("h", &topic, 0, Seq(7)).expect("commit");
        let mut seen = Vec::new();
        offsets.each_committed(|group, topic, partition, seq| {
            seen.push((group.to_string(), topic.to_string(), partition, seq));
        });
        seen.sort();
        let events = "app.events.5".to_string();
        assert_eq!(
            seen,
            [
                ("g".to_string(), events.clone(), 2, Seq(10)),
                ("h".to_string(), events, 0, Seq(7)),
            ]
        );
    }

    #[test]
    fn commits_survive_a_restart_and_the_newest_wins() {
        let dir = tempfile::tempdir().expect("tempdir");
        let topic = events_topic(3);
        let open = || open_offsets(dir.path());
        {
            let offsets = open();
            assert_eq!(offsets.committed("g", &topic, 0), None);
            offsets.commit("g", &topic, 0, Seq(10)).expect("commit");
            offsets.commit("g", &topic, 0, Seq(20)).expect("commit");
            offsets.commit("g", &topic, 2, Seq(7)).expect("commit");
            offsets.commit("other", &topic, 0, Seq(1)).expect("commit");
        }
        let offsets = open();
        assert_eq!(offsets.committed("g", &topic, 0), Some(Seq(20)));
        assert_eq!(offsets.committed("g", &topic, 1), None);
        assert_eq!(offsets.committed("g", &topic, 2), Some(Seq(7)));
        assert_eq!(offsets.committed("other", &topic, 0), Some(Seq(1)));
    }

    #[test]
    fn idle_groups_lose_their_offsets_after_the_retention_and_live_ones_keep_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let topic = events_topic(2);
        let open = || open_offsets(dir.path());
        let now = unix_ms();
        {
            let offsets = open();
            offsets.commit("idle", &topic, 0, Seq(10)).expect("commit");
            offsets.commit("idle", &topic, 1, Seq(11)).expect("commit");
            offsets.commit("live", &topic, 0, Seq(20)).expect("commit");
            offsets.commit("quiet", &topic, 0, Seq(30)).expect("commit");
            // Within the retention nothing goes.
            let none = offsets.expire_idle(
                now + 500,
                60_000,
                crate::limits::GROUP_OFFSETS_KEPT_MAX,
                |_| false,
            );
            assert!(none.expect("expire").is_empty());
            let hour = 3_600_000;
            let live = |group: &str| group == "live";
            let expired = offsets.expire_idle(
                now + 2 * hour,
                hour,
                crate::limits::GROUP_OFFSETS_KEPT_MAX,
                live,
            );
            let mut expired = expired.expect("expire");
            expired.sort();
            assert_eq!(expired, ["idle", "quiet"]);
            assert_eq!(offsets.committed("idle", &topic, 0), None);
            assert_eq!(offsets.committed("live", &topic, 0), Some(Seq(20)));
            assert_eq!(offsets.groups(), 1);
        }
        // The removal is durable; the survivor's retention restarts with the server.
        let offsets = open();
        assert_eq!(offsets.committed("idle", &topic, 1), None);
        assert_eq!(offsets.committed("quiet", &topic, 0), None);
        assert_eq!(offsets.committed("live", &topic, 0), Some(Seq(20)));
        let kept = offsets.expire_idle(
            unix_ms() + 1000,
            60_000,
            crate::limits::GROUP_OFFSETS_KEPT_MAX,
            |_| false,
        );
        assert!(kept.expect("expire").is_empty());
    }

    #[test]
    fn past_the_bound_the_longest_idle_groups_go_first_and_live_ones_stay() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = StoreConfig::default();
        config.partition.fsync = FsyncPolicy::Never;
        let store = Store::open(dir.path(), config).expect("store");
        let offsets = GroupOffsets::open(&store).expect("offsets");
        let topic = CatalogTopic {
            def: Arc::new(TopicDef {
                name: TopicName {
                    namespace: Name::new("app").expect("name"),
                    topic: Name::new("events").expect("name"),
                },
                partitions: 2,
                retention_seconds: None,
                sources: Vec::new(),
            }),
            incarnation: Seq(5),
        };
        for group in ["oldest", "live", "newer", "newest"] {
            offsets
                .commit_all(group, &topic, &[(0, Seq(1)), (1, Seq(2))])
                .expect("commit");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // 8 offsets, at most 4 kept: the live group stays, the two idle longest go.
        let now = unix_ms();
        let removed = offsets.expire_idle(now, 3_600_000, 4, |g| g == "live");
        let mut removed = removed.expect("expire");
        removed.sort();
        assert_eq!(removed, ["newer", "oldest"]);
        assert_eq!(offsets.committed("live", &topic, 1), Some(Seq(2)));
        assert_eq!(offsets.committed("newest", &topic, 0), Some(Seq(1)));
        assert_eq!(offsets.committed("oldest", &topic, 0), None);
    }
}
