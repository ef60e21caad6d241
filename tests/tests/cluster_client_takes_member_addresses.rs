//! The Rust client's list of cluster members (`strand_wire::quic::members::Members`): a
//! reader connects to the first member that takes it, reads part of a topic partition, loses
//! that member (SIGKILL), connects to the next one in the list and reads on after the last
//! `_seq` it got. What it read in all equals the partition's log on every member: no gap, no
//! duplicate. One PEM bundle of the members' certificates trusts them all.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use strand_tests::cluster::caught_up;
use strand_tests::cluster_topics::{members_of, read_all, write_until_stopped};
use strand_tests::local_cluster::LocalCluster;
use strand_tests::{bearer, sql_ok, ADMIN_PASSWORD};
use strand_wire::quic::client::Client;
use strand_wire::quic::members::Members;
use strand_wire::quic::{Credentials, Fetch, Message, PartitionIndex, ReadFrom, Seq};

const TOPIC: &str = "app.clicks";

#[test]
fn a_reader_moves_to_the_next_member_and_reads_on_after_its_last_seq() {
    let mut cluster = LocalCluster::start(3, "the member list test's cluster secret");
    let (leader_at, _) = cluster.leader();
    let all = cluster.live();
    let leader_node = all[leader_at];
    let auth = bearer(leader_node, "admin", ADMIN_PASSWORD);
    sql_ok(leader_node, &auth, "CREATE NAMESPACE app", &[]);
    sql_ok(leader_node, &auth, &format!("CREATE TOPIC {TOPIC}"), &[]);
    caught_up(&all);

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writing = runtime.spawn(write_until_stopped(
        TOPIC.to_string(),
        1,
        1,
        members_of(&all),
        stop.clone(),
    ));
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    let acks = runtime.block_on(writing).unwrap();
    assert!(acks.len() > 10, "too few writes to split: {}", acks.len());
    caught_up(&all);

    let bundle = tempfile::NamedTempFile::new().unwrap();
    let pems: Vec<String> = all
        .iter()
        .map(|n| std::fs::read_to_string(n.data_dir.join("tls/cert.pem")).unwrap())
        .collect();
    std::fs::write(bundle.path(), pems.concat()).unwrap();
    let mut members = Members::new(all.iter().map(|n| n.quic).collect(), bundle.path());
    let credentials = Credentials::Password {
        username: "admin".to_string(),
        password: ADMIN_PASSWORD.to_string(),
    };

    let (client, first) = runtime.block_on(members.connect(&credentials)).unwrap();
    let mut seen: Vec<(u64, String)> = Vec::new();
    runtime.block_on(read_some(&client, &mut seen, acks.len() / 2));
    assert!(
        !seen.is_empty() && seen.len() < acks.len(),
        "read {}",
        seen.len()
    );
    let at = cluster
        .nodes
        .iter()
        .position(|n| n.as_ref().is_some_and(|n| n.quic == first))
        .unwrap();
    cluster.kill(at);

    let (client, second) = runtime.block_on(members.connect(&credentials)).unwrap();
    assert_ne!(second, first, "the list moved on to another member");
    runtime.block_on(read_some(&client, &mut seen, usize::MAX));

    for node in &cluster.live() {
        let log = runtime.block_on(read_all(node, TOPIC, 1));
        assert_eq!(
            seen, log[&0],
            "the reader's records differ from {}'s log",
            node.http
        );
    }
    eprintln!(
        "read {} records across members {first} and {second}",
        seen.len()
    );
}

/// Fetches partition 0 after the last `_seq` in `seen` until `max` records are held or the
/// partition has no more.
async fn read_some(client: &Client, seen: &mut Vec<(u64, String)>, max: usize) {
    while seen.len() < max {
        let from = seen
            .last()
            .map_or(ReadFrom::Earliest, |(seq, _)| ReadFrom::After(Seq(*seq)));
        let fetch = Message::Fetch(Fetch {
            topic: TOPIC.to_string(),
            partition: PartitionIndex(0),
            from,
            records_max: u32::try_from((max - seen.len()).min(7)).unwrap(),
            bytes_max: 1 << 20,
            wait_ms: 0,
        });
        let frames = client.request(fetch).await.expect("fetch");
        let Some(Message::FetchResponse(records)) = frames.first().map(|f| &f.message) else {
            panic!("unexpected answer {frames:?}");
        };
        if records.records.is_empty() {
            return;
        }
        for record in &records.records {
            let value = String::from_utf8(record.value.to_vec()).expect("utf-8");
            seen.push((record.seq.0, value));
        }
    }
}
