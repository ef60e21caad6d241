//! Data groups (issue 22): table and topic partitions are spread over a fixed number of Raft
//! groups by a stable hash of their ids, however many partitions there are, and the meta
//! group keeps the catalog, users and offsets. Every data group is led by the meta group's
//! leader, also after that leader is killed.
//!
//! Three real members; a topic of 24 partitions is written by producers while the leader is
//! SIGKILLed and restarted. Checked: the status names the meta group and every data group,
//! all led by one member; the topic's entries went to data groups (at least two of them),
//! not to the meta group; after the kill every group has the new leader; every member holds
//! the same records, each acknowledged write once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use strand_broker::limits::CLUSTER_DATA_GROUPS;
use strand_tests::cluster::{caught_up, groups};
use strand_tests::cluster_topics::{check_history, members_of, read_all, spawn_producers};
use strand_tests::local_cluster::LocalCluster;
use strand_tests::{bearer, sql_ok, StrandServer, ADMIN_PASSWORD};

const TOPIC: &str = "app.spread";
const PARTITIONS: u32 = 24;
const PRODUCERS: u64 = 4;

/// Each group's last log index on `node`, the meta group first.
fn last_indexes(node: &StrandServer) -> Vec<u64> {
    groups(node)
        .iter()
        .map(|g| g["last_log_index"].as_u64().unwrap_or(0))
        .collect()
}

#[test]
fn partitions_spread_over_data_groups_that_follow_the_meta_leader() {
    let mut cluster = LocalCluster::start(3, "the data groups test's cluster secret");
    let (leader, _) = cluster.leader();
    let node = cluster.node(leader);
    let status = groups(node);
    assert_eq!(status.len(), 1 + CLUSTER_DATA_GROUPS as usize, "{status:?}");
    let leader_id = status[0]["leader"].as_u64().expect("a leader");
    for group in &status {
        assert_eq!(group["leader"].as_u64(), Some(leader_id), "{status:?}");
        assert_eq!(group["role"], "leader", "{status:?}");
    }

    let auth = bearer(node, "admin", ADMIN_PASSWORD);
    sql_ok(node, &auth, "CREATE NAMESPACE app", &[]);
    let ddl = format!("CREATE TOPIC {TOPIC} WITH (PARTITIONS = {PARTITIONS})");
    sql_ok(node, &auth, &ddl, &[]);
    caught_up(&cluster.live());
    let before = last_indexes(cluster.node(leader));

    let members = members_of(&cluster.live());
    let stop = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let writers = spawn_producers(&runtime, TOPIC, PARTITIONS, PRODUCERS, &members, &stop);
    std::thread::sleep(Duration::from_secs(3));
    let during = last_indexes(cluster.node(leader));
    assert_eq!(
        during[0], before[0],
        "topic writes went to the meta group: {before:?} then {during:?}"
    );
    let grown = (1..during.len())
        .filter(|g| during[*g] > before[*g])
        .count();
    assert!(
        grown >= 2,
        "24 partitions went to fewer than two data groups: {before:?} then {during:?}"
    );

    cluster.kill(leader);
    let (new_leader, _) = cluster.leader();
    assert_ne!(new_leader, leader);
    let moved = groups(cluster.node(new_leader));
    for group in &moved {
        assert_eq!(
            group["role"], "leader",
            "every group follows the meta leader: {moved:?}"
        );
    }
    std::thread::sleep(Duration::from_secs(2));
    cluster.restart(leader);
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let acks: Vec<_> = writers
        .into_iter()
        .map(|w| runtime.block_on(w).unwrap())
        .collect();
    let live = cluster.live();
    caught_up(&live);
    let logs: Vec<_> = live
        .iter()
        .map(|n| runtime.block_on(read_all(n, TOPIC, PARTITIONS)))
        .collect();
    check_history(&logs, &acks);
    let acknowledged: usize = acks.iter().map(Vec::len).sum();
    assert!(acknowledged > 0, "nothing was acknowledged");
    eprintln!(
        "{acknowledged} writes acknowledged; log indexes before {before:?}, while writing \
         {during:?}"
    );
}
