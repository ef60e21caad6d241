//! Members are added and removed while a three-node cluster takes writes (issue 22). Three
//! idempotent producers write a topic over QUIC to whichever member takes their writes all
//! along, while:
//! - node 4, started with `--join`, stays out of any cluster until it is added over HTTP
//!   (`POST /v1/cluster/members`); the route refuses no or non-admin credentials, a taken
//!   address, a bad id, and removing an unknown node, also through a follower (which sends
//!   the change on to the leader and answers the leader's refusal);
//! - node 4 is killed and restarted (with `--join` still set) and catches up from the log;
//! - node 5 joins through the CLI (`strand cluster add`) pointed at a follower;
//! - an original follower, and then the leader itself, are removed
//!   (`DELETE /v1/cluster/members/{id}`); neither acknowledges a write afterwards.
//!
//! Afterwards the remaining members hold the same records at the same `_seq`s, every
//! acknowledged write exactly once where its ack said; the removed members hold a prefix of
//! it. No member refused another's connection: the originals' `--cluster` lists do not name
//! nodes 4 and 5, which are admitted by the membership. Last, the cluster is shrunk to one
//! voter, which cannot be removed.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use strand_tests::cluster::{
    add_member, agreed_leader, ask_leader, caught_up, caught_up_while_writing, free_quic_addrs,
    joining_options, member_options, meta, node_id, remove_member,
};
use strand_tests::cluster_topics::{check_history, members_of, read_all, spawn_producers};
use strand_tests::{
    basic, bearer, delete, post_json, sql_ok, strand_binary, StrandServer, ADMIN_PASSWORD,
};
use strand_wire::quic::{Message, PartitionIndex, Partitioning, ProduceRecord, ProduceTopic};

const TOPIC: &str = "app.members";
const PARTITIONS: u32 = 2;
const PRODUCERS: u64 = 3;

/// The running nodes of `ids` (1-based).
fn running<'a>(nodes: &'a [Option<StrandServer>], ids: &[usize]) -> Vec<&'a StrandServer> {
    ids.iter().filter_map(|id| nodes[id - 1].as_ref()).collect()
}

/// The members' ids and roles in `answer` (a membership route's or the status's `members`).
fn roles(members: &Value) -> Vec<(u64, String)> {
    members
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            (
                m["id"].as_u64().expect("id"),
                m["role"].as_str().expect("role").into(),
            )
        })
        .collect()
}

fn voters(members: &Value) -> Vec<u64> {
    let roles = roles(members);
    roles
        .into_iter()
        .filter(|(_, r)| r == "voter")
        .map(|(id, _)| id)
        .collect()
}

#[test]
fn members_are_added_and_removed_while_writes_go_on() {
    let dirs: Vec<tempfile::TempDir> = (0..5).map(|_| tempfile::tempdir().unwrap()).collect();
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), "the membership test's cluster secret").unwrap();
    let quic = free_quic_addrs(5);
    let start = |id: usize| {
        let options = member_options(id, &quic[..3], secret.path());
        StrandServer::start(dirs[id - 1].path(), &options)
    };
    let join = |id: usize| {
        let options = joining_options(id, &quic, secret.path());
        StrandServer::start(dirs[id - 1].path(), &options)
    };
    let mut nodes: Vec<Option<StrandServer>> = vec![Some(start(1)), Some(start(2)), Some(start(3))];
    nodes.extend([None, None]);
    let originals = running(&nodes, &[1, 2, 3]);
    let (leader, _) = agreed_leader(&originals);
    let first = originals[usize::try_from(leader).unwrap() - 1];
    let auth = bearer(first, "admin", ADMIN_PASSWORD);
    sql_ok(first, &auth, "CREATE NAMESPACE app", &[]);
    let ddl = format!("CREATE TOPIC {TOPIC} WITH (PARTITIONS = {PARTITIONS})");
    sql_ok(first, &auth, &ddl, &[]);
    caught_up(&originals);

    let members = members_of(&originals);
    let stop = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let writers = spawn_producers(&runtime, TOPIC, PARTITIONS, PRODUCERS, &members, &stop);
    std::thread::sleep(Duration::from_millis(1000));

    // Node 4 joins: it forms no cluster of its own, however long it waits.
    nodes[3] = Some(join(4));
    std::thread::sleep(Duration::from_millis(2500));
    let alone = meta(nodes[3].as_ref().unwrap());
    assert_eq!(
        alone["voters"],
        json!([]),
        "a joining node formed a cluster: {alone}"
    );
    assert_eq!(alone["leader"], Value::Null, "{alone}");
    refusals(&running(&nodes, &[1, 2, 3]), &quic);

    let added = add_member(&running(&nodes, &[1, 2, 3]), 4, &quic[3]);
    assert_eq!(voters(&added["members"]), [1, 2, 3, 4], "{added}");
    let n4 = nodes[3].as_ref().unwrap();
    members
        .lock()
        .unwrap()
        .push((n4.quic, n4.data_dir.join("tls/cert.pem")));
    caught_up_while_writing(&running(&nodes, &[1, 2, 3, 4]));

    // A member that was down catches up from the log; `--join` on a member changes nothing.
    nodes[3].take().unwrap().stop_with(libc::SIGKILL);
    std::thread::sleep(Duration::from_millis(1500));
    nodes[3] = Some(join(4));
    caught_up_while_writing(&running(&nodes, &[1, 2, 3, 4]));

    // Node 5 joins through the CLI.
    nodes[4] = Some(join(5));
    add_through_cli(&running(&nodes, &[1, 2, 3, 4]), 5, &quic[4]);
    let n5 = nodes[4].as_ref().unwrap();
    members
        .lock()
        .unwrap()
        .push((n5.quic, n5.data_dir.join("tls/cert.pem")));
    caught_up_while_writing(&running(&nodes, &[1, 2, 3, 4, 5]));
    let status = meta(nodes[4].as_ref().unwrap());
    assert_eq!(status["voters"], json!([1, 2, 3, 4, 5]), "{status}");

    // An original follower leaves, then the leader itself.
    let all = running(&nodes, &[1, 2, 3, 4, 5]);
    let (leader, _) = agreed_leader(&all);
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let after = remove_member(&all, follower);
    assert_eq!(roles(&after["members"]).len(), 4, "{after}");
    assert!(!voters(&after["members"]).contains(&follower), "{after}");
    let left: Vec<usize> = (1..=5).filter(|id| *id as u64 != follower).collect();
    let (leader, term) = agreed_leader(&running(&nodes, &left));
    let after = remove_member(&running(&nodes, &left), leader);
    assert!(!voters(&after["members"]).contains(&leader), "{after}");
    let remaining: Vec<usize> = left.into_iter().filter(|id| *id as u64 != leader).collect();
    let (successor, later) = agreed_leader(&running(&nodes, &remaining));
    assert!(
        successor != leader && later > term,
        "{successor}@{later} after {leader}@{term}"
    );
    for removed in [follower, leader] {
        let node = nodes[usize::try_from(removed).unwrap() - 1]
            .as_ref()
            .unwrap();
        runtime.block_on(refuses_writes(node));
    }
    std::thread::sleep(Duration::from_millis(1500));

    stop.store(true, Ordering::Relaxed);
    let acks: Vec<_> = writers
        .into_iter()
        .map(|w| runtime.block_on(w).unwrap())
        .collect();
    let acknowledged: usize = acks.iter().map(Vec::len).sum();
    assert!(acknowledged > 0, "nothing was acknowledged");
    let survivors = running(&nodes, &remaining);
    caught_up(&survivors);
    let logs: Vec<_> = survivors
        .iter()
        .map(|n| runtime.block_on(read_all(n, TOPIC, PARTITIONS)))
        .collect();
    check_history(&logs, &acks);
    for removed in [follower, leader] {
        let node = nodes[usize::try_from(removed).unwrap() - 1]
            .as_ref()
            .unwrap();
        let log = runtime.block_on(read_all(node, TOPIC, PARTITIONS));
        for (partition, records) in &log {
            let kept = &logs[0][partition];
            assert!(
                records.len() <= kept.len() && records[..] == kept[..records.len()],
                "removed node {removed} holds records the cluster does not, partition {partition}"
            );
        }
    }

    // Members admitted nodes their `--cluster` lists do not name, by the Raft membership.
    for node in nodes.iter().flatten() {
        let log = node.stderr();
        assert!(!log.contains("refused a cluster connection"), "{log}");
    }
    last_voter_stays(&survivors);
    eprintln!(
        "{acknowledged} writes acknowledged; removed {follower} and leader {leader}; members \
         {remaining:?} agree"
    );
}

/// What the membership routes refuse, and how.
fn refusals(voters: &[&StrandServer], quic: &[String]) {
    let admin = basic("admin", ADMIN_PASSWORD);
    let add_4 = json!({"node_id": 4, "addr": quic[3]});
    let (leader, _) = agreed_leader(voters);
    let follower = voters.iter().find(|n| node_id(n) != leader).unwrap();
    // A follower sends a change on to the leader and answers what the leader answered.
    let answer = delete(&follower.url("/v1/cluster/members/9"), Some(&admin));
    let message = answer.assert_error(404, "not_found");
    assert!(message.contains("node 9"), "{message}");
    let on_leader = |path: &str, body: Option<&Value>, auth: Option<&str>| {
        ask_leader(voters, |leader| match body {
            Some(body) => post_json(&leader.url(path), auth, body),
            None => delete(&leader.url(path), auth),
        })
    };
    on_leader("/v1/cluster/members", Some(&add_4), None).assert_error(401, "unauthorized");
    // Users are replicated: bob, created through the leader, exists on every member.
    let created = ask_leader(voters, |leader| {
        let body = json!({"sql": "CREATE USER bob WITH PASSWORD 'bob-pw' ROLE user"});
        post_json(&leader.url("/v1/api/sql"), Some(&admin), &body)
    });
    assert_eq!(created.status, 200, "{}", created.text);
    let bob = basic("bob", "bob-pw");
    on_leader("/v1/cluster/members", Some(&add_4), Some(&bob)).assert_error(403, "forbidden");
    let taken = json!({"node_id": 4, "addr": quic[1]});
    let message = on_leader("/v1/cluster/members", Some(&taken), Some(&admin))
        .assert_error(409, "membership_conflict");
    assert!(message.contains("node 2"), "{message}");
    let zero = json!({"node_id": 0, "addr": quic[3]});
    on_leader("/v1/cluster/members", Some(&zero), Some(&admin)).assert_error(400, "invalid_value");
    let nine = "/v1/cluster/members/9";
    on_leader(nine, None, Some(&admin)).assert_error(404, "not_found");
    on_leader("/v1/cluster/members/x", None, Some(&admin)).assert_error(400, "invalid_value");
}

/// `strand cluster add ID=ADDR --url <a follower>` (the follower sends it on to the leader),
/// again while the leader moves.
fn add_through_cli(voters: &[&StrandServer], id: usize, addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (leader, _) = agreed_leader(voters);
        let at = voters.iter().position(|n| node_id(n) != leader).unwrap();
        let output = Command::new(strand_binary())
            .args(["cluster", "add", &format!("{id}={addr}")])
            .args(["--url", &voters[at].url(""), "--password", ADMIN_PASSWORD])
            .env_remove("STRAND_PASSWORD")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.success() {
            assert!(
                stdout.contains(&format!("added node {id} at {addr}")),
                "{stdout}"
            );
            assert!(stdout.contains(&format!("{id}={addr} (voter)")), "{stdout}");
            return;
        }
        assert!(
            stderr.contains("not_leader") || stderr.contains("unavailable"),
            "strand cluster add failed: {stderr}"
        );
        assert!(Instant::now() < deadline, "no add within 60 s: {stderr}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A removed member acknowledges no write: it refuses it as a non-leader.
async fn refuses_writes(node: &StrandServer) {
    let client = node.quic_client("admin", ADMIN_PASSWORD).await;
    let write = Message::ProduceTopic(ProduceTopic {
        topic: TOPIC.to_string(),
        partitioning: Partitioning::Explicit(PartitionIndex(0)),
        idempotence: None,
        records: vec![ProduceRecord {
            key: Default::default(),
            value: b"to a removed member".to_vec().into(),
        }],
    });
    let frames = client.request(write).await.expect("an answer");
    match &frames[0].message {
        Message::Error(error) => assert!(
            error.code == "not_leader" || error.code == "unavailable",
            "{error:?}"
        ),
        other => panic!("a removed member answered a write with {other:?}"),
    }
}

/// Shrinks the cluster of `voters` to one of them, which then cannot be removed.
fn last_voter_stays(voters: &[&StrandServer]) {
    let (keep, _) = agreed_leader(voters);
    for node in voters {
        let id = node_id(node);
        if id != keep {
            remove_member(voters, id);
        }
    }
    let alone = voters.iter().find(|n| node_id(n) == keep).unwrap();
    let answer = ask_leader(&[alone], |leader| {
        let path = format!("/v1/cluster/members/{keep}");
        delete(&leader.url(&path), Some(&basic("admin", ADMIN_PASSWORD)))
    });
    let message = answer.assert_error(409, "membership_conflict");
    assert!(message.contains("only voter"), "{message}");
    assert_eq!(meta(alone)["voters"], json!([keep]));
}
