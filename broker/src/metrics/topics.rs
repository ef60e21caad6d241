//! Topic and consumer-group series: records and bytes produced and fetched per topic (counted
//! on the hot paths into [`TopicCounters`], looked up once per request by the topic's
//! incarnation, then two atomic adds), and each group's lag per topic, computed when
//! `/metrics` is rendered from what a [`TopicSeries`] hands over (`lag.rs`).
//!
//! Label values are bounded: topics are the catalog's (a dropped topic's counters are
//! forgotten at the next render), (group, topic) pairs at most [`GROUP_LAG_SERIES_MAX`] (the
//! first by name). The topics part of the broker implements [`TopicSeries`]
//! (`topics::series`); this module does not know the catalog or the offsets.

use parking_lot::RwLock;
use std::collections::{HashMap, HashSet};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use strand_log::{ReadSnapshot, Seq};

use super::lag::{partition_lag, PartitionLag};
use super::text::{header, LabelValue};
use crate::limits::{GROUP_LAG_RECORDS_READ_MAX, GROUP_LAG_SERIES_MAX};

/// One topic's traffic since the server started, looked up once per request.
#[derive(Debug, Default)]
pub struct TopicCounters {
    records_produced: AtomicU64,
    bytes_produced: AtomicU64,
    records_fetched: AtomicU64,
    bytes_fetched: AtomicU64,
}

impl TopicCounters {
    /// A batch of `records` messages, `bytes` of keys and values, was durably written.
    pub fn produced(&self, records: u64, bytes: u64) {
        self.records_produced.fetch_add(records, Ordering::Relaxed);
        self.bytes_produced.fetch_add(bytes, Ordering::Relaxed);
    }

    /// An answer carrying `records` messages, `bytes` of keys and values, was sent.
    pub fn fetched(&self, records: u64, bytes: u64) {
        self.records_fetched.fetch_add(records, Ordering::Relaxed);
        self.bytes_fetched.fetch_add(bytes, Ordering::Relaxed);
    }

    /// `[records produced, bytes produced, records fetched, bytes fetched]`.
    fn totals(&self) -> [u64; 4] {
        [
            &self.records_produced,
            &self.bytes_produced,
            &self.records_fetched,
            &self.bytes_fetched,
        ]
        .map(|counter| counter.load(Ordering::Relaxed))
    }
}

/// Every topic's [`TopicCounters`], by incarnation (the `_seq` that created the topic: unique,
/// and a lookup without allocation).
#[derive(Default)]
pub(super) struct TopicTraffic {
    pub(super) by_incarnation: RwLock<HashMap<Seq, Arc<TopicCounters>>>,
}

impl TopicTraffic {
    /// The counters of the topic created at `incarnation` (new at its first use).
    pub(super) fn of(&self, incarnation: Seq) -> Arc<TopicCounters> {
        if let Some(counters) = self.by_incarnation.read().get(&incarnation) {
            return counters.clone();
        }
        let mut by_incarnation = self.by_incarnation.write();
        by_incarnation.entry(incarnation).or_default().clone()
    }

    /// The totals of each topic `source` lists, and the counters of the others (dropped
    /// topics) forgotten. The list is read under the lock: a topic created meanwhile is in it
    /// before its first request can be counted, so no count is lost.
    fn live_totals(&self, source: &dyn TopicSeries) -> Vec<(TopicSample, [u64; 4])> {
        let mut by_incarnation = self.by_incarnation.write();
        let topics = source.topics();
        let live: HashSet<Seq> = topics.iter().map(|topic| topic.incarnation).collect();
        by_incarnation.retain(|incarnation, _| live.contains(incarnation));
        topics
            .into_iter()
            .map(|topic| {
                let counters = by_incarnation.get(&topic.incarnation);
                let totals = counters.map_or([0; 4], |counters| counters.totals());
                (topic, totals)
            })
            .collect()
    }
}

/// A topic as `/metrics` shows it.
pub struct TopicSample {
    /// `namespace.topic`.
    pub name: String,
    /// The `_seq` that created it; requests count under it.
    pub incarnation: Seq,
}

/// One group's committed offsets in one topic, with the partitions' logs to measure the lag.
pub struct GroupTopicOffsets {
    pub group: String,
    /// `namespace.topic`.
    pub topic: String,
    /// `(committed _seq, the partition's log as it is now)` for each committed partition
    /// whose log is open.
    pub partitions: Vec<(Seq, ReadSnapshot)>,
}

/// What the groups part of one render covers.
#[derive(Default)]
pub struct GroupOffsetsSample {
    /// At most `pairs_max`, ordered by group, then topic.
    pub offsets: Vec<GroupTopicOffsets>,
    /// Committed offsets (a group's partition of a topic) of live topics whose (group, topic)
    /// pair is past the first `pairs_max`: not shown.
    pub offsets_left_out: usize,
}

/// The topics and groups of a broker, as `/metrics` reads them at each render.
pub trait TopicSeries: Send + Sync {
    /// Every topic of the catalog, by name.
    fn topics(&self) -> Vec<TopicSample>;
    /// The committed offsets in live topics of the first `pairs_max` (group, topic) pairs,
    /// by group name and then topic name.
    fn group_offsets(&self, pairs_max: usize) -> GroupOffsetsSample;
}

/// The topic series (counters, each topic labelled) and the group lag series.
pub(super) fn render(out: &mut String, traffic: &TopicTraffic, source: &dyn TopicSeries) {
    let topics = traffic.live_totals(source);
    let series = [
        (
            "strand_topic_records_produced_total",
            "Messages of produce requests acknowledged as durably written (a retried \
             idempotent batch that was already written counts once; table sources' messages \
             are not counted).",
        ),
        (
            "strand_topic_bytes_produced_total",
            "Key and value bytes of the messages counted in strand_topic_records_produced_total.",
        ),
        (
            "strand_topic_records_fetched_total",
            "Messages sent to consumers in fetch answers and tail pushes (a message read \
             twice counts twice).",
        ),
        (
            "strand_topic_bytes_fetched_total",
            "Key and value bytes of the messages counted in strand_topic_records_fetched_total.",
        ),
    ];
    for (slot, (name, help)) in series.iter().enumerate() {
        header(out, name, "counter", help);
        for (topic, totals) in &topics {
            let topic_name = LabelValue(&topic.name);
            let _ = writeln!(out, "{name}{{topic=\"{topic_name}\"}} {}", totals[slot]);
        }
    }
    render_lags(out, &source.group_offsets(GROUP_LAG_SERIES_MAX));
}

fn render_lags(out: &mut String, sample: &GroupOffsetsSample) {
    let partitions: usize = sample.offsets.iter().map(|o| o.partitions.len()).sum();
    // The read budget shared equally: few groups are counted exactly, many approximately.
    let read_max = (GROUP_LAG_RECORDS_READ_MAX / partitions.max(1)).max(1);
    let lags: Vec<PartitionLag> = sample
        .offsets
        .iter()
        .map(|offsets| {
            let each = offsets.partitions.iter();
            each.map(|(committed, log)| partition_lag(log, *committed, read_max))
                .fold(PartitionLag::default(), |sum, lag| PartitionLag {
                    records: sum.records.saturating_add(lag.records),
                    seconds: sum.seconds.max(lag.seconds),
                })
        })
        .collect();
    let name = "strand_group_lag_records";
    let help = format!(
        "Messages after a group's committed offsets, summed over the topic's partitions the \
         group committed (and the server has open). Exact while a partition's lag is within \
         its share of a per-render read budget ({GROUP_LAG_RECORDS_READ_MAX} messages split \
         among the partitions shown), beyond it extrapolated from the _seq times of the \
         messages read."
    );
    header(out, name, "gauge", &help);
    for (offsets, lag) in sample.offsets.iter().zip(&lags) {
        let labels = GroupLabels(offsets);
        let _ = writeln!(out, "{name}{{{labels}}} {}", lag.records);
    }
    let name = "strand_group_lag_seconds";
    let help = "Time between a group's committed message and the newest message, the largest \
                over the topic's partitions the group committed (0 when nothing is behind).";
    header(out, name, "gauge", help);
    for (offsets, lag) in sample.offsets.iter().zip(&lags) {
        let labels = GroupLabels(offsets);
        let _ = writeln!(out, "{name}{{{labels}}} {}", lag.seconds);
    }
    let name = "strand_group_lag_offsets_left_out";
    let help = format!(
        "Committed offsets (a group's partition of a topic) whose lag is not shown: only the \
         first {GROUP_LAG_SERIES_MAX} (group, topic) pairs by name are."
    );
    header(out, name, "gauge", &help);
    let _ = writeln!(out, "{name} {}", sample.offsets_left_out);
}

/// `group="...",topic="..."`.
struct GroupLabels<'a>(&'a GroupTopicOffsets);

impl std::fmt::Display for GroupLabels<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (group, topic) = (LabelValue(&self.0.group), LabelValue(&self.0.topic));
        write!(f, "group=\"{group}\",topic=\"{topic}\"")
    }
}
