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
