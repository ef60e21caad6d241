//! Rendering: HTTP, sync, QUIC, topic and group series as Prometheus text.

use super::*;

#[test]
fn renders_counters_histograms_and_rows() {
    let metrics = Metrics::new(Arc::new(SyncCounters::default()));
    let fast = Duration::from_micros(200);
    metrics.record_request("/health", 200, None, fast);
    metrics.record_request("/health", 200, None, Duration::from_millis(30));
    metrics.record_request("unmatched", 404, Some(ErrorCode::NotFound), fast);
    metrics.add_rows_written(5);
    let text = metrics.render();
    for line in [
        "strand_http_requests_total{route=\"/health\",status=\"200\"} 2",
        "strand_http_requests_total{route=\"unmatched\",status=\"404\"} 1",
        "strand_http_errors_total{code=\"not_found\"} 1",
        "strand_http_request_duration_seconds_bucket{route=\"/health\",le=\"0.0005\"} 1",
        "strand_http_request_duration_seconds_bucket{route=\"/health\",le=\"0.05\"} 2",
        "strand_http_request_duration_seconds_bucket{route=\"/health\",le=\"+Inf\"} 2",
        "strand_http_request_duration_seconds_count{route=\"/health\"} 2",
        "strand_rows_written_total 5",
        "strand_log_syncs_total{kind=\"file\"} 0",
        "# TYPE strand_http_request_duration_seconds histogram",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
}

fn assert_lines(text: &str, lines: &[&str]) {
    for line in lines {
        assert!(
            text.lines().any(|l| l == *line),
            "missing {line:?} in\n{text}"
        );
    }
}

#[test]
fn renders_sync_durations_and_quic_counts() {
    let metrics = Metrics::new(Arc::new(SyncCounters::default()));
    let first = metrics.quic_connection_opened();
    let second = metrics.quic_connection_opened();
    metrics.quic_stream_accepted();
    metrics.quic_stream_accepted();
    metrics.quic_stream_accepted();
    drop(first);
    let text = metrics.render();
    assert_lines(
        &text,
        &[
            "strand_quic_connections 1",
            "strand_quic_streams_total 3",
            "# TYPE strand_quic_connections gauge",
            "# TYPE strand_log_sync_duration_seconds histogram",
            "strand_log_sync_duration_seconds_bucket{kind=\"file\",le=\"0.0001\"} 0",
            "strand_log_sync_duration_seconds_bucket{kind=\"file_system\",le=\"+Inf\"} 0",
            "strand_log_sync_duration_seconds_count{kind=\"directory\"} 0",
            "strand_log_sync_duration_seconds_sum{kind=\"atomic_write\"} 0",
        ],
    );
    drop(second);
    assert_lines(&metrics.render(), &["strand_quic_connections 0"]);
}

/// Topics and groups as a broker would show them, over a real log partition.
struct FakeTopics {
    topics: parking_lot::Mutex<Vec<TopicSample>>,
    log: Arc<strand_log::Partition>,
    committed: strand_log::Seq,
}

impl TopicSeries for FakeTopics {
    fn topics(&self) -> Vec<TopicSample> {
        let topics = self.topics.lock();
        let copy = |t: &TopicSample| TopicSample {
            name: t.name.clone(),
            incarnation: t.incarnation,
        };
        topics.iter().map(copy).collect()
    }

    fn group_offsets(&self, pairs_max: usize) -> GroupOffsetsSample {
        // Two groups with an offset each; `pairs_max` leaves the second out when it is 1.
        let groups = ["billing \"eu\"", "shipping"];
        let offsets: Vec<GroupTopicOffsets> = groups
            .iter()
            .take(pairs_max)
            .map(|group| GroupTopicOffsets {
                group: group.to_string(),
                topic: "app.orders".to_string(),
                partitions: vec![(self.committed, self.log.snapshot())],
            })
            .collect();
        GroupOffsetsSample {
            offsets_left_out: groups.len() - offsets.len(),
            offsets,
        }
    }
}

#[test]
fn renders_topic_traffic_and_group_lag() {
    use strand_log::{FsyncPolicy, NewRecord, PartitionId, ReadFrom, Seq, Store, StoreConfig};

    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = StoreConfig::default();
    config.partition.fsync = FsyncPolicy::Never;
    let store = Store::open(dir.path(), config).expect("store");
    let log = store
        .partition(&PartitionId::new("tp/app.orders.7/0").expect("id"))
        .expect("partition");
    log.append(&[NewRecord::new(b"k", b"value"); 10])
        .expect("append");
    let seqs: Vec<Seq> = log
        .snapshot()
        .records(ReadFrom::Earliest)
        .map(|record| record.expect("record").seq)
        .collect();
    let metrics = Metrics::new(Arc::new(SyncCounters::default()));
    let (orders, audit) = (Seq(7), Seq(9));
    let topics = Arc::new(FakeTopics {
        topics: parking_lot::Mutex::new(vec![
            TopicSample {
                name: "app.audit".to_string(),
                incarnation: audit,
            },
            TopicSample {
                name: "app.orders".to_string(),
                incarnation: orders,
            },
        ]),
        log,
        committed: seqs[3],
    });
    metrics.show_topics(topics.clone());
    metrics.topic_counters(orders).produced(10, 60);
    metrics.topic_counters(orders).fetched(4, 24);
    let text = metrics.render();
    let seconds = (seqs[9].unix_ms() - seqs[3].unix_ms()) as f64 / 1000.0;
    let lag_seconds =
        format!("strand_group_lag_seconds{{group=\"shipping\",topic=\"app.orders\"}} {seconds}");
    assert_lines(
        &text,
        &[
            "strand_topic_records_produced_total{topic=\"app.orders\"} 10",
            "strand_topic_bytes_produced_total{topic=\"app.orders\"} 60",
            "strand_topic_records_fetched_total{topic=\"app.orders\"} 4",
            "strand_topic_bytes_fetched_total{topic=\"app.orders\"} 24",
            "strand_topic_records_produced_total{topic=\"app.audit\"} 0",
            "# TYPE strand_group_lag_records gauge",
            "strand_group_lag_records{group=\"billing \\\"eu\\\"\",topic=\"app.orders\"} 6",
            "strand_group_lag_records{group=\"shipping\",topic=\"app.orders\"} 6",
            &lag_seconds,
            "strand_group_lag_offsets_left_out 0",
        ],
    );
    // A dropped topic's series go, and its counters with it: a topic created again (another
    // incarnation) starts from zero.
    topics
        .topics
        .lock()
        .retain(|topic| topic.incarnation != orders);
    let text = metrics.render();
    assert!(!text.contains("topic=\"app.orders\"} 10"), "{text}");
    assert_lines(
        &text,
        &["strand_topic_records_produced_total{topic=\"app.audit\"} 0"],
    );
    assert_eq!(
        metrics.topic_traffic.by_incarnation.read().len(),
        0,
        "forgotten"
    );
}
