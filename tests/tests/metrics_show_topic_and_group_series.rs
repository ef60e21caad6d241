//! `GET /metrics` shows topics and consumer groups: messages and key+value bytes produced and
//! fetched per topic (exactly what was acknowledged and what was sent in fetch answers and
//! tail pushes), a group's lag in
//! messages and in seconds after a commit partway through the topic, QUIC connections and
//! request streams, and the log's sync durations (under `--fsync always` every produce syncs).
//! A dropped topic's series go with it.

use std::time::{Duration, Instant};

use strand_tests::{bearer, get, sql_ok, ServerOptions, StrandServer};
use strand_wire::quic::client::Client;
use strand_wire::quic::consumer::single_answer;
use strand_wire::quic::{
    CommittedOffset, Fetch, Frame, GroupCommit, GroupJoin, GroupMember, GroupStatus, MemberId,
    Message, PartitionIndex, Partitioning, ProduceRecord, ProduceTopic, ReadFrom, Record,
};

const TOPIC: &str = "app.orders";

/// Produces `(key, value)` pairs as one batch to partition 0; returns their key+value bytes.
async fn produce(client: &Client, messages: &[(String, String)]) -> u64 {
    let request = ProduceTopic {
        topic: TOPIC.into(),
        partitioning: Partitioning::Explicit(PartitionIndex(0)),
        idempotence: None,
        records: messages
            .iter()
            .map(|(key, value)| ProduceRecord {
                key: key.as_bytes().to_vec().into(),
                value: value.as_bytes().to_vec().into(),
            })
            .collect(),
    };
    match single_answer(client, Message::ProduceTopic(request)).await {
        Ok(Message::ProduceAck(ack)) => assert_eq!(ack.count as usize, messages.len()),
        other => panic!("produce: {other:?}"),
    }
    messages
        .iter()
        .map(|(k, v)| (k.len() + v.len()) as u64)
        .sum()
}

/// Every record of partition 0, in one fetch answer.
async fn fetch_all(client: &Client) -> Vec<Record> {
    let fetch = Fetch {
        topic: TOPIC.into(),
        partition: PartitionIndex(0),
        from: ReadFrom::Earliest,
        records_max: 1000,
        bytes_max: 1 << 20,
        wait_ms: 0,
    };
    match single_answer(client, Message::Fetch(fetch)).await {
        Ok(Message::FetchResponse(records)) => records.records,
        other => panic!("fetch: {other:?}"),
    }
}

/// Tails partition 0 from the start until `count` records were pushed, then cancels.
async fn tail(client: &Client, count: usize) {
    let request = Fetch {
        topic: TOPIC.into(),
        partition: PartitionIndex(0),
        from: ReadFrom::Earliest,
        records_max: 1000,
        bytes_max: 1 << 20,
        wait_ms: 0,
    };
    let mut pushes = client.send(Message::Tail(request)).await.expect("tail");
    let mut pushed = 0;
    while pushed < count {
        let next = tokio::time::timeout(Duration::from_secs(10), pushes.next()).await;
        match next.expect("a push within 10 s").expect("read") {
            Some(Frame {
                message: Message::TailPush(records),
                ..
            }) => pushed += records.records.len(),
            other => panic!("expected tail_push, got {other:?}"),
        }
    }
    assert_eq!(pushed, count);
    pushes.cancel();
}

/// `/metrics` once `series` shows `expected` (a tail push is counted just after it is handed
/// to QUIC, so it may reach the client first), or after 10 s.
fn metrics_once(server: &StrandServer, series: &str, expected: f64) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = get(&server.url("/metrics")).text;
        if sample(&text, series) == Some(expected) || Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Joins group `billing` as its only member.
async fn join(client: &Client) -> GroupMember {
    let join = GroupJoin {
        group: "billing".into(),
        topic: TOPIC.into(),
        member: MemberId(String::new()),
        session_timeout_ms: 10_000,
    };
    let assignment = match single_answer(client, Message::GroupJoin(join)).await {
        Ok(Message::GroupJoinResponse(assignment)) => assignment,
        other => panic!("join: {other:?}"),
    };
    assert_eq!(assignment.status, GroupStatus::Ok);
    assert_eq!(assignment.partitions, [PartitionIndex(0)]);
    GroupMember {
        group: "billing".into(),
        member: assignment.member,
        generation: assignment.generation,
    }
}

/// Commits `seq` for partition 0 as `member`.
async fn commit(client: &Client, member: &GroupMember, seq: strand_wire::quic::Seq) {
    let request = GroupCommit {
        member: member.clone(),
        offsets: vec![CommittedOffset {
            partition: PartitionIndex(0),
            seq,
        }],
    };
    match single_answer(client, Message::GroupCommit(request)).await {
        Ok(Message::GroupCommitResponse(reply)) => assert_eq!(reply.status, GroupStatus::Ok),
        other => panic!("commit: {other:?}"),
    }
}

/// The value of the sample whose name and labels are `series`, if there is one.
fn sample(text: &str, series: &str) -> Option<f64> {
    let line = text.lines().find(|line| {
        line.rsplit_once(' ')
            .is_some_and(|(name, _)| name == series)
    })?;
    line.rsplit(' ').next().and_then(|value| value.parse().ok())
}

fn value(text: &str, series: &str) -> f64 {
    sample(text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

/// Milliseconds since the Strand epoch in a `_seq` (its top 41 bits).
fn seq_ms(seq: strand_wire::quic::Seq) -> u64 {
    seq.0 >> 22
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_topic_and_group_series() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut options = ServerOptions::with_admin_password("pw");
    options.args = vec!["--fsync".into(), "always".into()];
    let server = StrandServer::start(dir.path(), &options);
    let admin = bearer(&server, "admin", "pw");
    sql_ok(
        &server,
        &admin,
        "CREATE NAMESPACE app; CREATE TOPIC app.orders WITH (PARTITIONS = 1)",
        &[],
    );
    let client = server.quic_client("admin", "pw").await;
    let message = |i: usize| (format!("k{i}"), "v".repeat(10 + i));
    let first: Vec<_> = (0..4).map(message).collect();
    let second: Vec<_> = (4..10).map(message).collect();
    let mut bytes = produce(&client, &first).await;
    // The second batch is younger by at least this: the group's lag in seconds shows it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    bytes += produce(&client, &second).await;

    let records = fetch_all(&client).await;
    assert_eq!(records.len(), 10);
    let seqs: Vec<_> = records.iter().map(|record| record.seq).collect();
    // Processed up to the fourth message: six behind.
    let member = join(&client).await;
    commit(&client, &member, seqs[3]).await;
    // A tail from the start sends all ten again.
    tail(&client, 10).await;

    let topic = |name: &str| format!("{name}{{topic=\"{TOPIC}\"}}");
    let fetched = topic("strand_topic_records_fetched_total");
    let text = metrics_once(&server, &fetched, 20.0);
    assert_eq!(
        value(&text, &topic("strand_topic_records_produced_total")),
        10.0
    );
    assert_eq!(
        value(&text, &topic("strand_topic_bytes_produced_total")),
        bytes as f64
    );
    assert_eq!(value(&text, &fetched), 20.0);
    let fetched_bytes = value(&text, &topic("strand_topic_bytes_fetched_total"));
    assert_eq!(fetched_bytes, 2.0 * bytes as f64);
    let group = |name: &str| format!("{name}{{group=\"billing\",topic=\"{TOPIC}\"}}");
    assert_eq!(value(&text, &group("strand_group_lag_records")), 6.0);
    let lag_s = value(&text, &group("strand_group_lag_seconds"));
    let expected_s = (seq_ms(seqs[9]) - seq_ms(seqs[3])) as f64 / 1000.0;
    assert!((lag_s - expected_s).abs() < 1e-9, "{lag_s} vs {expected_s}");
    assert!(lag_s >= 0.3, "{lag_s}");
    assert_eq!(value(&text, "strand_group_lag_offsets_left_out"), 0.0);

    // This test's one QUIC connection, and its requests: auth, two produces, a fetch, a join,
    // a commit and a tail.
    assert_eq!(value(&text, "strand_quic_connections"), 1.0);
    assert!(value(&text, "strand_quic_streams_total") >= 7.0, "{text}");

    // Every produce was synced: the sync histogram has observations.
    let timed = |kind: &str| {
        let series = format!("strand_log_sync_duration_seconds_count{{kind=\"{kind}\"}}");
        value(&text, &series)
    };
    assert!(timed("file") + timed("file_system") > 0.0, "{text}");
    let inf = "strand_log_sync_duration_seconds_bucket{kind=\"file\",le=\"+Inf\"}";
    assert_eq!(value(&text, inf), timed("file"));

    // Consumed to the end and committed: nothing behind.
    commit(&client, &member, seqs[9]).await;
    let text = get(&server.url("/metrics")).text;
    assert_eq!(value(&text, &group("strand_group_lag_records")), 0.0);
    assert_eq!(value(&text, &group("strand_group_lag_seconds")), 0.0);

    sql_ok(&server, &admin, "DROP TOPIC app.orders", &[]);
    let text = get(&server.url("/metrics")).text;
    assert!(!text.contains(&format!("topic=\"{TOPIC}\"")), "{text}");
}
