//! [`TopicSeriesSource`]: what `/metrics` shows of topics and consumer groups, read from the
//! catalog (every topic, by name), the group offsets and the open topic partitions (each
//! committed offset with its partition's log, for `crate::metrics` to measure the lag).
//!
//! Bounded per render: at most `pairs_max` (group, topic) pairs, chosen in two brief passes
//! over the committed offsets under their lock (the first `pairs_max` pairs by name, then
//! their offsets); offsets of dropped topics are left out, as are partitions not open since
//! the start (nothing produced to or read from them: opening one is recovery I/O).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use super::offsets::topic_key;
use super::{GroupOffsets, TopicData};
use crate::catalog::{Catalog, CatalogTopic};
use crate::metrics::{GroupOffsetsSample, GroupTopicOffsets, TopicSample, TopicSeries};

pub struct TopicSeriesSource {
    catalog: Arc<Catalog>,
    data: Arc<TopicData>,
    offsets: Arc<GroupOffsets>,
}

impl TopicSeriesSource {
    pub fn new(
        catalog: Arc<Catalog>,
        data: Arc<TopicData>,
        offsets: Arc<GroupOffsets>,
    ) -> TopicSeriesSource {
        TopicSeriesSource {
            catalog,
            data,
            offsets,
        }
    }

    /// The first `pairs_max` pairs by name, each as `<group>/<topic key>` (group names have
    /// no `/`), among the offsets of live topics.
    fn first_pairs(
        &self,
        live: &HashMap<String, CatalogTopic>,
        pairs_max: usize,
    ) -> BTreeSet<String> {
        let mut kept = BTreeSet::new();
        let mut pair = String::new();
        self.offsets.each_committed(|group, topic, _, _| {
            if !live.contains_key(topic) {
                return;
            }
            pair_name(&mut pair, group, topic);
            let after_the_last = kept.len() >= pairs_max
                && kept
                    .last()
                    .is_none_or(|last: &String| pair.as_str() > last.as_str());
            if after_the_last || kept.contains(pair.as_str()) {
                return;
            }
            kept.insert(pair.clone());
            if kept.len() > pairs_max {
                kept.pop_last();
            }
        });
        kept
    }
}

/// `<group>/<topic key>` into `pair`, reusing its allocation.
fn pair_name(pair: &mut String, group: &str, topic: &str) {
    pair.clear();
    pair.push_str(group);
    pair.push('/');
    pair.push_str(topic);
}

impl TopicSeries for TopicSeriesSource {
    fn topics(&self) -> Vec<TopicSample> {
        let topics = self.catalog.topics(None);
        let sample = |topic: CatalogTopic| TopicSample {
            name: topic.def.name.to_string(),
            incarnation: topic.incarnation,
        };
        topics.into_iter().map(sample).collect()
    }

    fn group_offsets(&self, pairs_max: usize) -> GroupOffsetsSample {
        let topics = self.catalog.topics(None);
        let live: HashMap<String, CatalogTopic> = topics
            .into_iter()
            .map(|topic| (topic_key(&topic), topic))
            .collect();
        let kept = self.first_pairs(&live, pairs_max);
        let mut committed: BTreeMap<String, Vec<_>> =
            kept.into_iter().map(|pair| (pair, Vec::new())).collect();
        let mut offsets_left_out = 0;
        let mut pair = String::new();
        self.offsets.each_committed(|group, topic, partition, seq| {
            if !live.contains_key(topic) {
                return;
            }
            pair_name(&mut pair, group, topic);
            match committed.get_mut(pair.as_str()) {
                Some(partitions) => partitions.push((partition, seq)),
                None => offsets_left_out += 1,
            }
        });
        let mut offsets = Vec::with_capacity(committed.len());
        for (pair, mut partitions) in committed {
            let Some((group, key)) = pair.split_once('/') else {
                continue;
            };
            let Some(topic) = live.get(key) else {
                continue;
            };
            partitions.sort_unstable_by_key(|&(partition, _)| partition);
            let logs: Vec<_> = partitions
                .into_iter()
                .filter_map(|(partition, seq)| {
                    let log = self.data.open_snapshot(topic, partition)?;
                    Some((seq, log))
                })
                .collect();
            if logs.is_empty() {
                continue;
            }
            offsets.push(GroupTopicOffsets {
                group: group.to_string(),
                topic: topic.def.name.to_string(),
                partitions: logs,
            });
        }
        GroupOffsetsSample {
            offsets,
            offsets_left_out,
        }
    }
}

#[cfg(test)]
mod tests {
    use strand_log::{FsyncPolicy, Seq, Store, StoreConfig};
    use strand_sql_view::{Name, TopicName};

    use super::*;
    use crate::catalog::{CatalogChange, TopicDef};
    use crate::topics::PartitionChoice;

    fn name(topic: &str) -> TopicName {
        TopicName {
            namespace: Name::new("app").expect("name"),
            topic: Name::new(topic).expect("name"),
        }
    }

    fn change(catalog: &Catalog, change: CatalogChange) {
        catalog
            .change(|_| Ok::<_, ()>(Some(change)))
            .expect("catalog write")
            .expect("accepted");
    }

    #[test]
    fn offsets_of_the_first_pairs_of_live_topics_with_open_partitions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = StoreConfig::default();
        config.partition.fsync = FsyncPolicy::Never;
        let store = Arc::new(Store::open(dir.path(), config).expect("store"));
        let catalog = Arc::new(Catalog::open(&store).expect("catalog"));
        let data = Arc::new(TopicData::new(store.clone()));
        let offsets = Arc::new(GroupOffsets::open(&store).expect("offsets"));
        change(
            &catalog,
            CatalogChange::CreateNamespace(Name::new("app").expect("ns")),
        );
        for topic in ["orders", "audit", "gone"] {
            let def = TopicDef {
                name: name(topic),
                partitions: 2,
                retention_seconds: None,
                sources: Vec::new(),
            };
            change(&catalog, CatalogChange::PutTopic(def));
        }
        let topic = |name_of: &str| catalog.topic(&name(name_of)).expect("topic");
        let (orders, audit, gone) = (topic("orders"), topic("audit"), topic("gone"));
        // Partition 0 of each topic is open (written); partition 1 of `orders` is not.
        for topic in [&orders, &audit, &gone] {
            let one = [(&b""[..], &b"m"[..])];
            let choice = PartitionChoice::Explicit(0);
            data.produce(topic, choice, &one, None).expect("produce");
        }
        let commit = |group: &str, topic: &CatalogTopic, partition: u32| {
            offsets
                .commit(group, topic, partition, Seq(1))
                .expect("commit");
        };
        commit("b", &orders, 0);
        commit("b", &orders, 1);
        commit("a", &orders, 0);
        commit("a", &audit, 0);
        commit("a", &gone, 0);
        change(&catalog, CatalogChange::DropTopic(name("gone")));

        let source = TopicSeriesSource::new(catalog.clone(), data, offsets);
        let names: Vec<String> = source.topics().into_iter().map(|t| t.name).collect();
        assert_eq!(names, ["app.audit", "app.orders"]);
        let shown = |sample: &GroupOffsetsSample| -> Vec<(String, String, usize)> {
            let pair =
                |o: &GroupTopicOffsets| (o.group.clone(), o.topic.clone(), o.partitions.len());
            sample.offsets.iter().map(pair).collect()
        };
        // Every pair of live topics; `orders`' unopened partition 1 left out of `b`'s.
        let all = source.group_offsets(10);
        let pair = |g: &str, t: &str, n| (g.to_string(), t.to_string(), n);
        let expected = [
            pair("a", "app.audit", 1),
            pair("a", "app.orders", 1),
            pair("b", "app.orders", 1),
        ];
        assert_eq!(shown(&all), expected);
        assert_eq!(all.offsets_left_out, 0);
        // The first two pairs by name; `b`'s two offsets are left out.
        let first = source.group_offsets(2);
        assert_eq!(shown(&first), expected[..2]);
        assert_eq!(first.offsets_left_out, 2);
        let none = source.group_offsets(0);
        assert!(none.offsets.is_empty());
        assert_eq!(none.offsets_left_out, 4);
    }
}
