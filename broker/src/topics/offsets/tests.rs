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
            .commit_all(group, &topic, &[(0, Seq(1)), (1, Seq(2))], None)
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

/// What a cluster member's state machine does with an applied entry: the leader's records,
/// at the leader's `_seq`s, appended to the local offsets partition. `None`: a tombstone.
fn apply_from_leader(store: &Store, records: &[(u64, &str, Option<u64>)]) {
    let id = PartitionId::new(OFFSETS_PARTITION).expect("id");
    let partition = store.partition(&id).expect("partition");
    let payloads: Vec<[u8; 8]> = records
        .iter()
        .map(|(_, _, seq)| seq.unwrap_or(0).to_le_bytes())
        .collect();
    let replicated: Vec<strand_log::ReplicatedRecord<'_>> = records
        .iter()
        .zip(&payloads)
        .map(
            |((seq, key, committed), payload)| strand_log::ReplicatedRecord {
                seq: Seq(*seq),
                timestamp_unix_ms: unix_ms(),
                record: match committed {
                    Some(_) => NewRecord::new(key.as_bytes(), payload),
                    None => NewRecord::tombstone(key.as_bytes()),
                },
            },
        )
        .collect();
    partition.append_replicated(&replicated).expect("apply");
}

fn store_in(dir: &std::path::Path) -> Store {
    let mut config = StoreConfig::default();
    config.partition.fsync = FsyncPolicy::Never;
    Store::open(dir, config).expect("store")
}

#[test]
fn catch_up_reads_what_the_leader_wrote_and_the_newest_record_per_key_wins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store_in(dir.path());
    let offsets = GroupOffsets::open(&store).expect("offsets");
    let topic = events_topic(2);
    let key = |group: &str, partition: u32| offset_key(group, &topic, partition);
    let (g0, g1, h0) = (key("g", 0), key("g", 1), key("h", 0));
    apply_from_leader(
        &store,
        &[
            (100, &g0, Some(10)),
            (101, &g1, Some(11)),
            (102, &h0, Some(5)),
        ],
    );
    // Nothing is read until the member is told of the applied records.
    assert_eq!(offsets.committed("g", &topic, 0), None);
    offsets.catch_up().expect("catch up");
    assert_eq!(offsets.committed("g", &topic, 0), Some(Seq(10)));
    assert_eq!(offsets.committed("g", &topic, 1), Some(Seq(11)));
    assert_eq!(offsets.committed("h", &topic, 0), Some(Seq(5)));
    assert_eq!(offsets.groups(), 2);

    // A later commit of g, and the retention's tombstone of h (its only key).
    apply_from_leader(&store, &[(200, &g0, Some(20)), (201, &h0, None)]);
    offsets.catch_up().expect("catch up");
    assert_eq!(offsets.committed("g", &topic, 0), Some(Seq(20)));
    assert_eq!(offsets.committed("g", &topic, 1), Some(Seq(11)));
    assert_eq!(offsets.committed("h", &topic, 0), None);
    assert_eq!(offsets.groups(), 1, "a group without offsets is forgotten");
    // Nothing new: nothing changes.
    offsets.catch_up().expect("catch up");
    assert_eq!(offsets.committed("g", &topic, 0), Some(Seq(20)));

    // The same map as a member that reads it all at once, at start.
    let mut seen = Vec::new();
    offsets.each_committed(|g, t, p, s| seen.push((g.to_string(), t.to_string(), p, s)));
    seen.sort();
    drop(offsets);
    drop(store);
    let reopened = open_offsets(dir.path());
    let mut again = Vec::new();
    reopened.each_committed(|g, t, p, s| again.push((g.to_string(), t.to_string(), p, s)));
    again.sort();
    assert_eq!(seen, again);
    assert_eq!(reopened.groups(), 1);
}

#[test]
fn a_group_tombstoned_and_committed_again_in_one_entry_keeps_the_commit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store_in(dir.path());
    let offsets = GroupOffsets::open(&store).expect("offsets");
    let topic = events_topic(2);
    let g0 = offset_key("g", &topic, 0);
    let g1 = offset_key("g", &topic, 1);
    apply_from_leader(&store, &[(10, &g0, Some(3)), (11, &g1, Some(4))]);
    offsets.catch_up().expect("catch up");
    // Expired, then joined and committed again before this member caught up.
    apply_from_leader(
        &store,
        &[(20, &g0, None), (21, &g1, None), (22, &g0, Some(7))],
    );
    offsets.catch_up().expect("catch up");
    assert_eq!(offsets.committed("g", &topic, 0), Some(Seq(7)));
    assert_eq!(offsets.committed("g", &topic, 1), None);
    assert_eq!(offsets.groups(), 1);
}

#[test]
fn an_unreadable_record_is_an_error_and_what_came_before_it_stays() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store_in(dir.path());
    let offsets = GroupOffsets::open(&store).expect("offsets");
    let topic = events_topic(1);
    let g0 = offset_key("g", &topic, 0);
    apply_from_leader(&store, &[(10, &g0, Some(3))]);
    let id = PartitionId::new(OFFSETS_PARTITION).expect("id");
    let partition = store.partition(&id).expect("partition");
    let short = strand_log::ReplicatedRecord {
        seq: Seq(11),
        timestamp_unix_ms: unix_ms(),
        record: NewRecord::new(g0.as_bytes(), b"short"),
    };
    partition.append_replicated(&[short]).expect("apply");
    let error = offsets.catch_up().expect_err("a 5-byte offset");
    assert!(matches!(error, OffsetsError::BadRecord { .. }), "{error}");
    assert_eq!(offsets.committed("g", &topic, 0), Some(Seq(3)));
}

#[test]
fn a_new_leader_restarts_the_retention_of_every_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store_in(dir.path());
    let offsets = GroupOffsets::open(&store).expect("offsets");
    let topic = events_topic(1);
    let g0 = offset_key("g", &topic, 0);
    apply_from_leader(&store, &[(10, &g0, Some(3))]);
    offsets.catch_up().expect("catch up");
    let hour = 3_600_000;
    let later = unix_ms() + 2 * hour;
    // Idle for two hours since the commit, but taken over half an hour ago.
    offsets.restart_retention(later - hour / 2);
    let none = offsets.expire_idle(later, hour, usize::MAX, |_| false);
    assert!(none.expect("expire").is_empty());
    let expired = offsets.expire_idle(later + hour, hour, usize::MAX, |_| false);
    assert_eq!(expired.expect("expire"), ["g"]);
}
