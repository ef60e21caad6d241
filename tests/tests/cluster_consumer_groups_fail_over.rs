//! Consumer groups follow the meta group's leader on a three-node cluster, and their committed
//! offsets are replicated. A follower sends group requests on to the leader, which coordinates
//! every group (`broker/src/quic/frame_forward.rs`): a member connected to a follower joins,
//! heartbeats, commits and leaves as if connected to the leader.
//! A member joins through a follower, reads there and commits twice, then reads a little more
//! without committing; the leader is killed with SIGKILL. A new member joins at the new
//! leader and gets exactly the last acknowledged commit of each partition (never a lower
//! one), then reads on from there: every message after the commit once and in order, none
//! before it.
//! The killed node, restarted on its data directory, catches up: its own copy of the group's
//! offsets gives the same lag as the leader's.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use strand_tests::cluster::{
    agreed_leader, caught_up, free_quic_addrs, member_options, node_id, AGREE_TIMEOUT,
};
use strand_tests::cluster_groups::{
    admin_client, group_lag_records, heartbeat, join, join_at_leader, leave,
};
use strand_tests::cluster_topics::read_all;
use strand_tests::{bearer, sql_ok, StrandServer, ADMIN_PASSWORD};
use strand_wire::quic::client::Client;
use strand_wire::quic::consumer::{single_answer, ConsumerConfig, GroupConsumer};
use strand_wire::quic::{
    GroupStatus, Message, PartitionIndex, Partitioning, ProduceRecord, ProduceTopic,
};

const TOPIC: &str = "app.events";
const GROUP: &str = "billing";
const PARTITIONS: u32 = 2;
const SESSION_TIMEOUT_MS: u32 = 10_000;

/// Messages as a member read them: (partition, `_seq`, value).
type Read = Vec<(u32, u64, String)>;

/// Values `p<partition>-<i>` for `i` in `range`.
fn values(partition: u32, range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|i| format!("p{partition}-{i}")).collect()
}

async fn produce(client: &Client, partition: u32, values: &[String]) {
    let request = ProduceTopic {
        topic: TOPIC.into(),
        partitioning: Partitioning::Explicit(PartitionIndex(partition)),
        idempotence: None,
        records: values
            .iter()
            .map(|v| ProduceRecord {
                key: Default::default(),
                value: v.as_bytes().to_vec().into(),
            })
            .collect(),
    };
    match single_answer(client, Message::ProduceTopic(request)).await {
        Ok(Message::ProduceAck(ack)) => assert_eq!(ack.count as usize, values.len()),
        other => panic!("produce: {other:?}"),
    }
}

/// Reads exactly `count` messages (waiting up to 20 s for them).
async fn read(consumer: &mut GroupConsumer, count: usize) -> Read {
    let mut got = Read::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.len() < count && Instant::now() < deadline {
        let wait = Duration::from_millis(200);
        let found = consumer.poll_at_most(wait, count - got.len()).await;
        for records in found.expect("poll") {
            for record in records.records {
                let value = String::from_utf8_lossy(&record.value).into_owned();
                got.push((records.partition.0, record.seq.0, value));
            }
        }
    }
    assert_eq!(got.len(), count, "read {got:?}");
    got
}

fn config() -> ConsumerConfig {
    let mut config = ConsumerConfig::new(GROUP, TOPIC);
    config.session_timeout_ms = SESSION_TIMEOUT_MS;
    config
}

/// The values of `read` by partition, in the order they were read.
fn by_partition(read: &Read) -> BTreeMap<u32, Vec<String>> {
    let mut values: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for (partition, _, value) in read {
        values.entry(*partition).or_default().push(value.clone());
    }
    values
}

#[test]
fn a_group_member_continues_from_its_last_commit_after_the_leader_is_killed() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), "the consumer group test's cluster secret").unwrap();
    let quic = free_quic_addrs(3);
    let start = |id: usize| {
        StrandServer::start(
            dirs[id - 1].path(),
            &member_options(id, &quic, secret.path()),
        )
    };
    let mut nodes: Vec<Option<StrandServer>> = (1..=3).map(|id| Some(start(id))).collect();
    let all: Vec<&StrandServer> = nodes.iter().flatten().collect();
    let (leader, _) = agreed_leader(&all);
    let at = usize::try_from(leader).unwrap() - 1;
    let leader_node = all[at];
    let auth = bearer(leader_node, "admin", ADMIN_PASSWORD);
    let ddl =
        format!("CREATE NAMESPACE app; CREATE TOPIC {TOPIC} WITH (PARTITIONS = {PARTITIONS})");
    sql_ok(leader_node, &auth, &ddl, &[]);
    caught_up(&all);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();

    let mut produced: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    runtime.block_on(async {
        let client = admin_client(leader_node).await.expect("leader answers");
        for partition in 0..PARTITIONS {
            let batch = values(partition, 0..10);
            produce(&client, partition, &batch).await;
            produced.insert(partition, batch);
        }
    });

    // A follower runs no coordinator: it sends the member's requests on to the leader's.
    let follower = all.iter().find(|n| node_id(n) != leader).unwrap();
    runtime.block_on(async {
        let client = admin_client(follower).await.expect("follower answers");
        let assignment = join(&client, GROUP, TOPIC, SESSION_TIMEOUT_MS).await;
        let assignment = assignment.expect("a follower forwards the join");
        assert_eq!(assignment.partitions.len(), PARTITIONS as usize);
        let status = heartbeat(&client, GROUP, &assignment).await;
        assert_eq!(
            status,
            Ok(GroupStatus::Ok),
            "a follower forwards the heartbeat"
        );
        leave(&client, GROUP, &assignment).await;
    });

    // Through the follower: read 12 and commit, read 4 and commit, read 2 and commit nothing.
    let (acknowledged, first_read) = runtime.block_on(async {
        let client = admin_client(follower).await.expect("follower answers");
        let mut consumer = GroupConsumer::join(client, config()).await.expect("join");
        assert_eq!(consumer.assignment().partitions.len(), PARTITIONS as usize);
        let mut acknowledged: BTreeMap<u32, u64> = BTreeMap::new();
        let mut first_read = Read::new();
        for (count, commit) in [(12, true), (4, true), (2, false)] {
            first_read.extend(read(&mut consumer, count).await);
            if commit {
                assert!(consumer.commit().await.expect("commit"), "commit refused");
                for (partition, seq, _) in &first_read {
                    acknowledged.insert(*partition, *seq);
                }
            }
        }
        (acknowledged, first_read)
    });
    for (partition, values) in by_partition(&first_read) {
        let produced = &produced[&partition];
        assert_eq!(values, produced[..values.len()], "read in order, once");
    }
    assert_eq!(acknowledged.len(), PARTITIONS as usize, "{first_read:?}");

    nodes[at].take().unwrap().stop_with(libc::SIGKILL);
    let survivors: Vec<&StrandServer> = nodes.iter().flatten().collect();
    let (successor, _) = agreed_leader(&survivors);
    assert_ne!(successor, leader);

    let (expected, seen_after) = runtime.block_on(async {
        let (joined_at, client, assignment) =
            join_at_leader(&survivors, GROUP, TOPIC, SESSION_TIMEOUT_MS).await;
        let committed: BTreeMap<u32, u64> = assignment
            .committed
            .iter()
            .map(|offset| (offset.partition.0, offset.seq.0))
            .collect();
        assert_eq!(
            committed, acknowledged,
            "the new leader has the last acknowledged commits"
        );
        assert_eq!(assignment.partitions.len(), PARTITIONS as usize);

        // The other survivor reaches the new leader's coordinator too.
        let other = admin_client(survivors[1 - joined_at])
            .await
            .expect("answers");
        let status = heartbeat(&other, GROUP, &assignment).await;
        assert_eq!(
            status,
            Ok(GroupStatus::Ok),
            "the other survivor forwards it"
        );
        leave(&client, GROUP, &assignment).await;

        // A member continues after the commits: what was read but not committed comes again,
        // nothing that was committed does.
        let mut consumer = GroupConsumer::join(client.clone(), config())
            .await
            .expect("join the new leader");
        let mut expected: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        for (partition, values) in &produced {
            let seq = acknowledged[partition];
            let last = first_read
                .iter()
                .find(|(p, s, _)| p == partition && *s == seq)
                .map(|(_, _, value)| value)
                .expect("the committed message was read");
            let after = values.iter().position(|v| v == last).unwrap() + 1;
            if after < values.len() {
                expected.insert(*partition, values[after..].to_vec());
            }
        }
        let count = expected.values().map(Vec::len).sum();
        let seen_after = read(&mut consumer, count).await;
        let extra = consumer
            .poll(Duration::from_millis(300))
            .await
            .expect("poll");
        assert!(extra.is_empty(), "nothing else: {extra:?}");

        // The group goes on at the new leader: 3 more per partition read and committed,
        // then 3 more in all produced and not read (the group's lag).
        for partition in 0..PARTITIONS {
            produce(&client, partition, &values(partition, 10..13)).await;
        }
        let more = read(&mut consumer, 3 * PARTITIONS as usize).await;
        assert!(consumer.commit().await.expect("commit"), "commit refused");
        for (partition, got) in by_partition(&more) {
            assert_eq!(got, values(partition, 10..13));
        }
        produce(&client, 0, &values(0, 13..15)).await;
        produce(&client, 1, &values(1, 13..14)).await;
        consumer.leave().await.expect("leave");
        (expected, seen_after)
    });
    assert_eq!(by_partition(&seen_after), expected, "no gap, no duplicate");
    for (partition, seq, _) in &seen_after {
        assert!(*seq > acknowledged[partition], "{seq} after the commit");
    }

    // The killed node comes back and applies what it missed, group offsets included.
    nodes[at] = Some(start(at + 1));
    let all: Vec<&StrandServer> = nodes.iter().flatten().collect();
    caught_up(&all);
    let logs: Vec<_> = all
        .iter()
        .map(|n| runtime.block_on(read_all(n, TOPIC, PARTITIONS)))
        .collect();
    assert!(logs.iter().all(|log| log == &logs[0]), "{logs:?}");
    let deadline = Instant::now() + AGREE_TIMEOUT;
    for node in &all {
        loop {
            let lag = group_lag_records(node, GROUP, TOPIC);
            if lag == Some(3.0) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {} shows lag {lag:?}, not 3",
                node_id(node)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
