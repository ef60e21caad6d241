//! A member that was down while more than `CLUSTER_SNAPSHOT_EVERY_ENTRIES` entries were
//! written catches up from a snapshot (issue 22). While it is down, the others snapshot
//! their state and drop their Raft log up to it, past the last entry the member holds; so
//! when it returns, no one can send it the entries it misses and the leader sends the
//! snapshot. Writes go on meanwhile. A node added afterwards (`--join`) starts from a
//! snapshot the same way.
//!
//! The topic has one partition, so its entries all go to one data group (whichever the
//! partition's hash picks): that group reaches a snapshot soonest.
//!
//! Afterwards every member holds the same records at the same `_seq`s, and every
//! acknowledged write is there exactly once, where its ack said.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strand_broker::limits::CLUSTER_SNAPSHOT_EVERY_ENTRIES;
use strand_tests::cluster::{
    add_member, agreed_leader, caught_up, caught_up_while_writing, free_quic_addrs, groups,
    joining_options, member_options, node_id,
};
use strand_tests::cluster_topics::{check_history, members_of, read_all, spawn_producers};
use strand_tests::{bearer, sql_ok, StrandServer, ADMIN_PASSWORD};

const TOPIC: &str = "app.snapshots";
const PARTITIONS: u32 = 1;
/// Producers writing at once: each waits for its ack, and one entry is one batch, so enough
/// of them write the entries a snapshot takes within seconds.
const PRODUCERS: u64 = 32;
/// How long writing the entries may take on a slow machine.
const WRITE_TIMEOUT: Duration = Duration::from_secs(300);

#[test]
fn a_member_back_after_a_snapshot_and_a_new_member_catch_up_from_it() {
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), "the snapshot test's cluster secret").unwrap();
    let quic = free_quic_addrs(4);
    let start = |id: usize| {
        let options = member_options(id, &quic[..3], secret.path());
        StrandServer::start(dirs[id - 1].path(), &options)
    };
    let mut nodes: Vec<Option<StrandServer>> = (1..=3).map(|id| Some(start(id))).collect();
    let all: Vec<&StrandServer> = nodes.iter().flatten().collect();
    let (leader, _) = agreed_leader(&all);
    let first = all[usize::try_from(leader).unwrap() - 1];
    let auth = bearer(first, "admin", ADMIN_PASSWORD);
    sql_ok(first, &auth, "CREATE NAMESPACE app", &[]);
    let ddl = format!("CREATE TOPIC {TOPIC} WITH (PARTITIONS = {PARTITIONS})");
    sql_ok(first, &auth, &ddl, &[]);
    caught_up(&all);
    let members = members_of(&all);

    // A follower goes down, holding each group's log up to `held[group]`.
    let down = (1..=3).find(|id| *id != leader).unwrap();
    let at = usize::try_from(down).unwrap() - 1;
    let held: Vec<u64> = groups(nodes[at].as_ref().unwrap())
        .iter()
        .map(|g| g["last_log_index"].as_u64().unwrap_or(0))
        .collect();
    nodes[at].take().unwrap().stop_with(libc::SIGKILL);

    let stop = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let writers = spawn_producers(&runtime, TOPIC, PARTITIONS, PRODUCERS, &members, &stop);
    let started = Instant::now();
    let up: Vec<&StrandServer> = nodes.iter().flatten().collect();
    let group = loop {
        // Every running member dropped entries of one group the returning one lacks.
        let purged: Vec<Vec<Option<u64>>> = up
            .iter()
            .map(|n| {
                groups(n)
                    .iter()
                    .map(|g| g["purged_index"].as_u64())
                    .collect()
            })
            .collect();
        let dropped = (0..held.len()).find(|g| {
            purged.iter().all(|node| {
                node.get(*g)
                    .copied()
                    .flatten()
                    .is_some_and(|p| p > held[*g])
            })
        });
        if let Some(group) = dropped {
            break group;
        }
        assert!(
            started.elapsed() < WRITE_TIMEOUT,
            "no snapshot after {WRITE_TIMEOUT:?} (every {CLUSTER_SNAPSHOT_EVERY_ENTRIES} \
             entries): purged {purged:?}, the member down holds up to {held:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let writing = started.elapsed();
    let held = held[group];

    nodes[at] = Some(start(at + 1));
    let all: Vec<&StrandServer> = nodes.iter().flatten().collect();
    caught_up_while_writing(&all);
    let back = groups(nodes[at].as_ref().unwrap()).swap_remove(group);
    assert!(
        back["snapshot_index"].as_u64().is_some_and(|s| s > held),
        "the member back holds no snapshot past its old log ({held}): {back}"
    );

    // A new node needs the dropped entries too.
    let joining = joining_options(4, &quic, secret.path());
    nodes.push(Some(StrandServer::start(dirs[3].path(), &joining)));
    let voters: Vec<&StrandServer> = nodes[..3].iter().flatten().collect();
    add_member(&voters, 4, &quic[3]);
    let all: Vec<&StrandServer> = nodes.iter().flatten().collect();
    caught_up_while_writing(&all);
    let new = groups(nodes[3].as_ref().unwrap()).swap_remove(group);
    assert!(new["snapshot_index"].as_u64().is_some(), "{new}");

    stop.store(true, Ordering::Relaxed);
    let acks: Vec<_> = writers
        .into_iter()
        .map(|w| runtime.block_on(w).unwrap())
        .collect();
    caught_up(&all);
    let logs: Vec<_> = all
        .iter()
        .map(|n| runtime.block_on(read_all(n, TOPIC, PARTITIONS)))
        .collect();
    check_history(&logs, &acks);
    let acknowledged: usize = acks.iter().map(Vec::len).sum();
    let ids: Vec<u64> = all.iter().map(|n| node_id(n)).collect();
    eprintln!(
        "{acknowledged} writes acknowledged; group {group}'s snapshot came after {writing:?}; \
         node {down} held up to {held}, then {back}; members {ids:?} agree"
    );
}
