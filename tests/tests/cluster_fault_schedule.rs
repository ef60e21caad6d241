//! A randomized fault schedule on a three-node cluster: round after round, one fault at a
//! time (the leader or a follower killed with SIGKILL and later restarted on its data
//! directory, the leader or another member cut off by the UDP proxies in front of the
//! members and later healed, the leader or another member removed from the cluster
//! (`DELETE /v1/cluster/members`, the node keeps running) and later added back (`POST`),
//! or a quiet spell), while three idempotent producers write a topic over QUIC to whichever
//! member takes their writes, and two consumers read it from one member after another,
//! resuming after the last `_seq` they got. At the same time three clients insert, update and
//! delete rows of a table over HTTP (`strand_tests::cluster_tables`), and a WebSocket
//! subscriber follows the table, resuming by `_seq` on another member whenever its member
//! dies or falls silent.
//!
//! The history checker (`strand_tests::cluster_topics::check_history`) then demands:
//! - every member holds the same records at the same `_seq`s;
//! - `_seq`s increase per partition, and no value is stored twice;
//! - every acknowledged write is stored once, where its ack said;
//! - each producer's acknowledged batches are stored in the order they were acknowledged.
//!
//! Each consumer's records must be a prefix of the partition's final log (no gap, no
//! duplicate, whichever member answered). Every member must hold the table rows the
//! acknowledged statements leave, at the same `_seq`s, and the subscriber's copy must end
//! equal to them, each change having been checked against the copy it applied to.
//!
//! `STRAND_FAULT_ROUNDS` (default 50) and `STRAND_FAULT_SEED` (default: the clock, printed)
//! set the run; the README records a long run.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use strand_tests::cluster::{
    add_member, agreed_leader, caught_up, member_options_behind, node_id, remove_member,
    PartitionProxies,
};
use strand_tests::cluster_tables::{
    seqs_by_id, values_by_id, write_rows_until_stopped, HttpMembers, ResumingSubscriber, ITEMS_DDL,
    ITEMS_SELECT,
};
use strand_tests::cluster_topics::{
    check_history, describe_seq, duplicates, members_of, read_all, read_all_with,
    resume_across_members, spawn_producers,
};
use strand_tests::{basic, bearer, rows, sql_ok, StrandServer, ADMIN_PASSWORD};
use strand_wire::quic::client::Client;

const TOPIC: &str = "app.faults";
const PARTITIONS: u32 = 2;
const PRODUCERS: u64 = 3;
const TABLE_CLIENTS: i64 = 3;

/// A small xorshift generator; the seed is printed so that a failing run can be replayed.
struct Random(u64);

impl Random {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

/// The one fault in force, if any.
#[derive(Clone, Copy, Debug)]
enum Fault {
    None,
    Down(usize),
    Cut(usize),
    /// Removed from the membership, still running.
    Removed(usize),
}

#[test]
fn random_kills_cuts_and_membership_changes_lose_no_acknowledged_write() {
    let rounds: usize = std::env::var("STRAND_FAULT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let seed: u64 = std::env::var("STRAND_FAULT_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            u64::try_from(nanos.as_nanos() % u128::from(u64::MAX)).unwrap() | 1
        });
    // Every this many rounds a member's topic is checked for a value stored twice, so that a
    // long run stops near the round that stored it (0: never).
    let check_every: usize = std::env::var("STRAND_FAULT_CHECK_EVERY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    eprintln!("fault schedule: {rounds} rounds, STRAND_FAULT_SEED={seed}");
    let mut random = Random(seed);

    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), "the fault schedule's cluster secret").unwrap();
    let proxies = PartitionProxies::start(3);
    let start = |id: usize| {
        let options =
            member_options_behind(id, &proxies.real[id - 1], &proxies.addrs, secret.path());
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
    sql_ok(first, &auth, ITEMS_DDL, &[]);
    caught_up(&all);
    let basic_auth = basic("admin", ADMIN_PASSWORD);
    let http: HttpMembers = Arc::new(Mutex::new(all.iter().map(|n| n.http).collect()));

    let members = members_of(&all);
    let stop = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let writers = spawn_producers(&runtime, TOPIC, PARTITIONS, PRODUCERS, &members, &stop);
    let readers: Vec<_> = (0..PARTITIONS)
        .map(|partition| {
            let reading =
                resume_across_members(TOPIC.to_string(), partition, members.clone(), stop.clone());
            runtime.spawn(reading)
        })
        .collect();

    let table_writers: Vec<_> = (0..TABLE_CLIENTS)
        .map(|client| {
            let (http, stop, auth) = (http.clone(), stop.clone(), basic_auth.clone());
            std::thread::spawn(move || {
                write_rows_until_stopped(client, TABLE_CLIENTS, &http, &stop, &auth)
            })
        })
        .collect();
    let subscriber = {
        let mut subscriber = ResumingSubscriber::open(first.http, &basic_auth);
        let (http, stop) = (http.clone(), stop.clone());
        std::thread::spawn(move || {
            subscriber.run_until_stopped(&http, &stop);
            subscriber
        })
    };

    let mut fault = Fault::None;
    let mut schedule = Vec::new();
    for round in 0..rounds {
        if check_every > 0 && round > 0 && round % check_every == 0 {
            no_value_stored_twice(&runtime, &nodes, round);
        }
        fault = match fault {
            Fault::Down(at) => {
                nodes[at] = Some(start(at + 1));
                Fault::None
            }
            Fault::Cut(at) => {
                assert!(proxies.is_cut(at + 1));
                proxies.heal();
                Fault::None
            }
            Fault::Removed(at) => {
                let voters: Vec<&StrandServer> = others(&nodes, at);
                add_member(&voters, at + 1, &proxies.addrs[at]);
                Fault::None
            }
            Fault::None => {
                let running: Vec<&StrandServer> = nodes.iter().flatten().collect();
                let leader = agreed_leader(&running).0;
                let leader_at = usize::try_from(leader).unwrap() - 1;
                let other = (leader_at + 1 + usize::try_from(random.below(2)).unwrap()) % 3;
                match random.below(8) {
                    0 | 1 => {
                        nodes[leader_at].take().unwrap().stop_with(libc::SIGKILL);
                        Fault::Down(leader_at)
                    }
                    2 => {
                        nodes[other].take().unwrap().stop_with(libc::SIGKILL);
                        Fault::Down(other)
                    }
                    3 => {
                        proxies.cut(leader_at + 1);
                        Fault::Cut(leader_at)
                    }
                    4 => {
                        proxies.cut(other + 1);
                        Fault::Cut(other)
                    }
                    5 => {
                        remove_member(&running, leader);
                        Fault::Removed(leader_at)
                    }
                    6 => {
                        remove_member(&running, u64::try_from(other + 1).unwrap());
                        Fault::Removed(other)
                    }
                    _ => Fault::None,
                }
            }
        };
        schedule.push(fault);
        eprintln!("round {round} at unix ms {}: {fault:?}", unix_ms());
        *http.lock().unwrap() = nodes.iter().flatten().map(|n| n.http).collect();
        std::thread::sleep(Duration::from_millis(300 + random.below(1200)));
    }
    proxies.heal();
    for (at, node) in nodes.iter_mut().enumerate() {
        if node.is_none() {
            *node = Some(start(at + 1));
        }
    }
    if let Fault::Removed(at) = fault {
        add_member(&others(&nodes, at), at + 1, &proxies.addrs[at]);
    }
    let all: Vec<&StrandServer> = nodes.iter().flatten().collect();
    *http.lock().unwrap() = all.iter().map(|n| n.http).collect();
    caught_up(&all);
    // A last stretch of writes with every member up, so the end is not a fault's aftermath.
    std::thread::sleep(Duration::from_millis(1000));
    stop.store(true, Ordering::Relaxed);
    let acks: Vec<_> = writers
        .into_iter()
        .map(|w| runtime.block_on(w).unwrap())
        .collect();
    let consumed: Vec<_> = readers
        .into_iter()
        .map(|r| runtime.block_on(r).unwrap())
        .collect();
    let models: Vec<_> = table_writers
        .into_iter()
        .map(|w| w.join().unwrap())
        .collect();
    let model: std::collections::BTreeMap<i64, i64> = models.into_iter().flatten().collect();
    let mut subscriber = subscriber.join().unwrap();
    caught_up(&all);
    let logs: Vec<_> = all
        .iter()
        .map(|n| runtime.block_on(read_all(n, TOPIC, PARTITIONS)))
        .collect();
    check_history(&logs, &acks);
    for (partition, seen) in consumed.iter().enumerate() {
        let log = &logs[0][&u32::try_from(partition).unwrap()];
        assert!(
            seen.len() <= log.len() && seen[..] == log[..seen.len()],
            "the consumer of partition {partition} saw a gap or a duplicate"
        );
    }
    let acknowledged: usize = acks.iter().map(Vec::len).sum();
    assert!(acknowledged > 0, "nothing was acknowledged");

    let tables: Vec<_> = all
        .iter()
        .map(|n| rows(n, &basic_auth, ITEMS_SELECT, &[]))
        .collect();
    for (node, table) in all.iter().zip(&tables) {
        assert_eq!(table, &tables[0], "member {} holds other rows", node.http);
    }
    assert!(!model.is_empty(), "no table write was acknowledged");
    assert_eq!(
        values_by_id(&tables[0]),
        model,
        "the rows are not what the acknowledged statements left"
    );
    subscriber.converge(&http, &seqs_by_id(&tables[0]), Duration::from_secs(60));
    let ids: Vec<u64> = all.iter().map(|n| node_id(n)).collect();
    // How far the `_seq` clock ran ahead of the wall clock: a restarted member issues above
    // its lease (SEQ_LEASE_MS ahead of what it had issued), and every member follows the
    // highest `_seq` it applied.
    let newest = logs[0]
        .values()
        .filter_map(|p| p.last())
        .map(|(seq, _)| *seq)
        .max();
    if let Some(newest) = newest {
        eprintln!(
            "the newest record's _seq: {}; the clock: unix ms {}",
            describe_seq(newest),
            unix_ms()
        );
    }
    eprintln!(
        "seed {seed}: {rounds} rounds {schedule:?}; {acknowledged} writes acknowledged; \
         consumers read {:?} records; {} table rows; the subscriber applied {} changes, \
         resumed {} times ({} keyed); members {ids:?} agree",
        consumed.iter().map(Vec::len).collect::<Vec<_>>(),
        model.len(),
        subscriber.applied,
        subscriber.resumes,
        subscriber.keyed_resumes
    );
}

/// The running members but the one at `at`.
fn others(nodes: &[Option<StrandServer>], at: usize) -> Vec<&StrandServer> {
    let others = nodes.iter().enumerate().filter(|(i, _)| *i != at);
    others.filter_map(|(_, node)| node.as_ref()).collect()
}

fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// Reads the topic on the first running member that answers and fails the run if a value is
/// stored twice there (a duplicate never goes away, so the check may run mid-schedule).
fn no_value_stored_twice(
    runtime: &tokio::runtime::Runtime,
    nodes: &[Option<StrandServer>],
    round: usize,
) {
    for node in nodes.iter().flatten() {
        let reading = async {
            let ca = node.data_dir.join("tls/cert.pem");
            let connecting = Client::connect_password(node.quic, &ca, "admin", ADMIN_PASSWORD);
            let client = connecting.await.map_err(|e| e.to_string())?;
            read_all_with(&client, TOPIC, PARTITIONS).await
        };
        let Ok(Ok(log)) = runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(30), reading).await })
        else {
            continue;
        };
        let twice = duplicates(&log);
        let stored: usize = log.values().map(Vec::len).sum();
        eprintln!(
            "round {round} at unix ms {}: {} holds {stored} records, {} stored twice",
            unix_ms(),
            node.http,
            twice.len()
        );
        assert!(twice.is_empty(), "by round {round}: {twice:#?}");
        return;
    }
}
