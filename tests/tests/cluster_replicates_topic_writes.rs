//! Topic writes on a three-node cluster survive the leader's death. A topic created on the
//! leader (one replicated catalog record) exists on every member under the same partitions.
//! Three idempotent producers write over QUIC, each to whichever member leads (a member that
//! does not answers `not_leader`; one that cannot reach a majority answers `unavailable`; both
//! mean "not acknowledged, send again"), while the leader is killed with SIGKILL and
//! restarted, several times. Afterwards every member holds the same records at the same
//! `_seq`s, and every acknowledged message is there exactly once, at the `_seq` its ack named.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strand_tests::cluster::{agreed_leader, caught_up, free_quic_addrs, member_options};
use strand_tests::cluster_topics::{check_history, members_of, read_all, write_until_stopped};
use strand_tests::{bearer, sql_ok, StrandServer, ADMIN_PASSWORD};

const TOPIC: &str = "app.events";
const PARTITIONS: u32 = 2;
const PRODUCERS: u64 = 3;
const KILLS: usize = 3;

#[test]
fn acknowledged_topic_writes_survive_leader_kills_on_every_member() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), "the replication test's cluster secret").unwrap();
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
    let leader_node = all[usize::try_from(leader).unwrap() - 1];
    let auth = bearer(leader_node, "admin", ADMIN_PASSWORD);
    sql_ok(leader_node, &auth, "CREATE NAMESPACE app", &[]);
    let ddl = format!("CREATE TOPIC {TOPIC} WITH (PARTITIONS = {PARTITIONS})");
    sql_ok(leader_node, &auth, &ddl, &[]);
    // The catalog record reached every member: each one knows the topic.
    caught_up(&all);
    for node in &all {
        let auth = bearer(node, "admin", ADMIN_PASSWORD);
        sql_ok(node, &auth, &format!("DESCRIBE {TOPIC}"), &[]);
    }

    let members = members_of(&all);
    let stop = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let writers: Vec<_> = (1..=PRODUCERS)
        .map(|producer| {
            runtime.spawn(write_until_stopped(
                TOPIC.to_string(),
                PARTITIONS,
                producer,
                members.clone(),
                stop.clone(),
            ))
        })
        .collect();

    let mut kills = Vec::new();
    for _ in 0..KILLS {
        std::thread::sleep(Duration::from_millis(1500));
        let all: Vec<&StrandServer> = nodes.iter().flatten().collect();
        let (leader, term) = agreed_leader(&all);
        let at = usize::try_from(leader).unwrap() - 1;
        nodes[at].take().unwrap().stop_with(libc::SIGKILL);
        let killed_at = Instant::now();
        let survivors: Vec<&StrandServer> = nodes.iter().flatten().collect();
        let (successor, later) = agreed_leader(&survivors);
        assert!(
            successor != leader && later > term,
            "{successor}@{later} after {leader}@{term}"
        );
        let failover = killed_at.elapsed();
        std::thread::sleep(Duration::from_millis(500));
        // A restarted member keeps its certificate (same data directory) and address.
        nodes[at] = Some(start(at + 1));
        kills.push((leader, successor, failover));
    }
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    let acks: Vec<_> = writers
        .into_iter()
        .map(|w| runtime.block_on(w).unwrap())
        .collect();
    let acknowledged: usize = acks.iter().map(Vec::len).sum();
    assert!(acknowledged > 0, "no write was acknowledged at all");

    let all: Vec<&StrandServer> = nodes.iter().flatten().collect();
    caught_up(&all);
    let logs: Vec<_> = all
        .iter()
        .map(|n| runtime.block_on(read_all(n, TOPIC, PARTITIONS)))
        .collect();
    check_history(&logs, &acks);
    eprintln!("acknowledged {acknowledged} writes across {KILLS} leader kills: {kills:?}");
}
