//! [`GroupOffsets`]: the `_seq` each consumer group has committed per topic partition,
//! durable in the system partition `system/group-offsets` and rebuilt from it at start.
//!
//! One record per commit: key `<group>/<ns>.<topic>.<incarnation>/<partition>`, payload the
//! `_seq` (u64, little-endian); the newest record per key wins on replay. A commit is
//! acknowledged only once its record is durable. Which member may commit is the group
//! coordinator's decision (`group.rs`), not this module's.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

use strand_log::{LogError, NewRecord, Partition, PartitionId, ReadFrom, Seq, Store};

use crate::tables::catalog::CatalogTopic;

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
    committed: Mutex<HashMap<String, Seq>>,
}

impl GroupOffsets {
    pub fn open(store: &Store) -> Result<GroupOffsets, OffsetsError> {
        let log = store.partition(&PartitionId::new(OFFSETS_PARTITION)?)?;
        let mut committed = HashMap::new();
        let snapshot = log.snapshot();
        for record in snapshot.records(ReadFrom::Earliest) {
            let record = record?;
            let key = String::from_utf8_lossy(record.key).into_owned();
            let seq = <[u8; 8]>::try_from(record.payload)
                .map_err(|_| OffsetsError::BadRecord { key: key.clone() })?;
            committed.insert(key, Seq(u64::from_le_bytes(seq)));
        }
        Ok(GroupOffsets {
            log,
            committed: Mutex::new(committed),
        })
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
        for ((key, _), &(_, seq)) in keyed.into_iter().zip(offsets) {
            committed.insert(key, seq);
        }
        Ok(())
    }

    /// The last committed `_seq`, if the group ever committed this partition.
    pub fn committed(&self, group: &str, topic: &CatalogTopic, partition: u32) -> Option<Seq> {
        let key = offset_key(group, topic, partition);
        let committed = self.committed.lock();
        committed.get(&key).copied()
    }
}

fn offset_key(group: &str, topic: &CatalogTopic, partition: u32) -> String {
    let name = &topic.def.name;
    format!(
        "{group}/{}.{}.{}/{partition}",
        name.namespace, name.topic, topic.incarnation.0
    )
}

#[cfg(test)]
mod tests {
    use strand_log::{FsyncPolicy, StoreConfig};
    use strand_sql_view::{Name, TopicName};

    use super::*;
    use crate::topics::TopicDef;

    #[test]
    fn commits_survive_a_restart_and_the_newest_wins() {
        let dir = tempfile::tempdir().expect("tempdir");
        let topic = CatalogTopic {
            def: Arc::new(TopicDef {
                name: TopicName {
                    namespace: Name::new("app").expect("name"),
                    topic: Name::new("events").expect("name"),
                },
                partitions: 3,
                retention_seconds: None,
                sources: Vec::new(),
            }),
            incarnation: Seq(5),
        };
        let open = || {
            let mut config = StoreConfig::default();
            config.partition.fsync = FsyncPolicy::Never;
            let store = Store::open(dir.path(), config).expect("store");
            GroupOffsets::open(&store).expect("offsets")
        };
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
}
