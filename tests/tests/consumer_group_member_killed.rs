//! Consumer groups over real QUIC with real processes: three `strand consume --group` members
//! share a 6-partition topic while the test produces. Killing one member (SIGKILL) moves its
//! partitions to the survivors once its session times out; the survivors resume each moved
//! partition right after the dead member's last commit (no committed offset lost), every
//! message is printed at least once, and the only repeats are the dead member's printed but
//! uncommitted tail. Without a crash, every message is printed exactly once. The group's
//! final offsets are the topic's ends.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use strand_tests::{bearer, sql_ok, strand_binary, ServerOptions, StrandServer};
use strand_wire::quic::client::Client;
use strand_wire::quic::consumer::{ConsumerConfig, GroupConsumer};
use strand_wire::quic::{
    Message, PartitionIndex, Partitioning, ProduceRecord, ProduceTopic, ReadFrom,
};

const PARTITIONS: u32 = 6;
const SESSION_TIMEOUT_MS: u64 = 1_500;
/// Members exit after this long without a message (after committing and leaving).
const IDLE_EXIT_MS: u64 = 5_000;
/// Heartbeat interval of the members (a third of the session timeout) plus a poll: how late
/// after the expiry a survivor can learn of it.
const HEARTBEAT_MS: u64 = SESSION_TIMEOUT_MS / 3;
/// Scheduling slack on a loaded 2-core CI machine.
const SLACK_MS: u64 = 2_500;

type Lines = Arc<Mutex<Vec<(Instant, String)>>>;

/// One `strand consume --group` process; its stdout and stderr lines, timestamped.
struct Member {
    child: Child,
    out: Lines,
    err: Lines,
}

impl Member {
    fn start(server: &StrandServer, group: &str) -> Member {
        let ca = server.data_dir.join("tls/cert.pem");
        let mut command = Command::new(strand_binary());
        command
            .args(["consume", "--server", &server.quic.to_string()])
            .args(["--user", "admin", "--password", "pw", "--ca-cert"])
            .arg(&ca)
            .args(["--topic", "app.jobs", "--group", group])
            .args(["--session-timeout-ms", &SESSION_TIMEOUT_MS.to_string()])
            .args(["--timeout-ms", &IDLE_EXIT_MS.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("STRAND_")) {
            command.env_remove(name);
        }
        let mut child = command.spawn().expect("spawn strand consume");
        let out = collect(child.stdout.take().expect("stdout"));
        let err = collect(child.stderr.take().expect("stderr"));
        Member { child, out, err }
    }

    /// `(when, generation, partitions)` of each `assigned` line.
    fn assignments(&self) -> Vec<(Instant, u64, Vec<u32>)> {
        let lines = self.err.lock().expect("lines");
        lines
            .iter()
            .filter_map(|(at, line)| {
                let rest = line.strip_prefix("assigned ")?;
                let generation = field(rest, "generation=")?.parse().ok()?;
                let list = rest.split("partitions=").nth(1)?;
                let partitions = list
                    .trim_matches(|c| c == '[' || c == ']')
                    .split(',')
                    .filter_map(|p| p.trim().parse().ok())
                    .collect();
                Some((*at, generation, partitions))
            })
            .collect()
    }

    /// The last `_seq` this member logged as committed, per partition.
    fn last_commits(&self) -> BTreeMap<u32, u64> {
        let lines = self.err.lock().expect("lines");
        let mut commits = BTreeMap::new();
        for (_, line) in lines.iter() {
            let Some(rest) = line.strip_prefix("committed ") else {
                continue;
            };
            let partition = field(rest, "partition=").and_then(|p| p.parse().ok());
            let seq = field(rest, "_seq=").and_then(|s| s.parse().ok());
            if let (Some(partition), Some(seq)) = (partition, seq) {
                commits.insert(partition, seq);
            }
        }
        commits
    }

    /// `(when, partition, _seq)` of each printed message.
    fn printed(&self) -> Vec<(Instant, u32, u64)> {
        let lines = self.out.lock().expect("lines");
        lines
            .iter()
            .map(|(at, line)| {
                let json: Value = serde_json::from_str(line).expect("stdout line is JSON");
                let partition = json["partition"].as_u64().expect("partition") as u32;
                let seq = json["_seq"].as_str().expect("_seq").parse().expect("_seq");
                (*at, partition, seq)
            })
            .collect()
    }

    fn stderr_text(&self) -> String {
        let lines = self.err.lock().expect("lines");
        lines
            .iter()
            .map(|(_, l)| l.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits for the process to exit by itself (it exits after `IDLE_EXIT_MS` idle).
    fn wait_exit(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(status.success(), "member failed: {}", self.stderr_text());
                return;
            }
            assert!(
                Instant::now() < deadline,
                "member did not exit: {}",
                self.stderr_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.split_whitespace()
        .find_map(|word| word.strip_prefix(name))
}

fn collect(stream: impl std::io::Read + Send + 'static) -> Lines {
    let lines: Lines = Arc::default();
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            sink.lock().expect("lines").push((Instant::now(), line));
        }
    });
    lines
}

fn start_server(dir: &Path) -> StrandServer {
    let server = StrandServer::start(&dir.join("data"), &ServerOptions::with_admin_password("pw"));
    let admin = bearer(&server, "admin", "pw");
    let ddl =
        format!("CREATE NAMESPACE app; CREATE TOPIC app.jobs WITH (PARTITIONS = {PARTITIONS})");
    sql_ok(&server, &admin, &ddl, &[]);
    server
}

/// Waits until every member's latest assignment is of one generation and together they own
/// every partition, each member some; returns that generation.
fn wait_stable(members: &[&Member]) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let latest: Vec<Option<(Instant, u64, Vec<u32>)>> =
            members.iter().map(|m| m.assignments().pop()).collect();
        if let Some(Some((_, generation, _))) = latest.first() {
            let same = latest.iter().all(|a| {
                a.as_ref()
                    .is_some_and(|(_, g, p)| g == generation && !p.is_empty())
            });
            let owned: BTreeSet<u32> = latest.iter().flatten().flat_map(|a| a.2.clone()).collect();
            if same && owned.len() == PARTITIONS as usize {
                return *generation;
            }
        }
        assert!(Instant::now() < deadline, "group never settled: {latest:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Produces `rounds` rounds of one message per partition, `pause` apart; returns the
/// `(partition, _seq)` of each.
async fn produce(client: &Client, rounds: u32, pause: Duration) -> Vec<(u32, u64)> {
    let mut produced = Vec::new();
    for round in 0..rounds {
        for partition in 0..PARTITIONS {
            let request = ProduceTopic {
                topic: "app.jobs".into(),
                partitioning: Partitioning::Explicit(PartitionIndex(partition)),
                idempotence: None,
                records: vec![ProduceRecord {
                    key: Default::default(),
                    value: format!("p{partition}-r{round}").into_bytes().into(),
                }],
            };
            let frames = client
                .request(Message::ProduceTopic(request))
                .await
                .expect("produce");
            match frames.first().map(|f| &f.message) {
                Some(Message::ProduceAck(ack)) => produced.push((partition, ack.first.0)),
                other => panic!("expected produce_ack, got {other:?}"),
            }
        }
        tokio::time::sleep(pause).await;
    }
    produced
}

/// The group's committed offset per partition, as a new member's join reports them.
async fn committed_offsets(client: Arc<Client>, group: &str) -> BTreeMap<u32, u64> {
    let mut config = ConsumerConfig::new(group, "app.jobs");
    config.session_timeout_ms = SESSION_TIMEOUT_MS as u32;
    config.start = ReadFrom::Latest;
    let mut consumer = GroupConsumer::join(client.clone(), config)
        .await
        .expect("join");
    // Alone in the group, it owns every partition; what it would read shows the offsets.
    let found = consumer
        .poll(Duration::from_millis(200))
        .await
        .expect("poll");
    assert!(
        found.is_empty(),
        "nothing left to read after the members: {found:?}"
    );
    consumer.leave().await.expect("leave");
    let frames = client
        .request(Message::GroupJoin(strand_wire::quic::GroupJoin {
            group: group.into(),
            topic: "app.jobs".into(),
            member: strand_wire::quic::MemberId(String::new()),
            session_timeout_ms: SESSION_TIMEOUT_MS as u32,
        }))
        .await
        .expect("join");
    let Some(Message::GroupJoinResponse(assignment)) = frames.into_iter().next().map(|f| f.message)
    else {
        panic!("group_join_response expected");
    };
    assignment
        .committed
        .iter()
        .map(|offset| (offset.partition.0, offset.seq.0))
        .collect()
}

fn last_per_partition(produced: &[(u32, u64)]) -> BTreeMap<u32, u64> {
    let mut last = BTreeMap::new();
    for &(partition, seq) in produced {
        let entry = last.entry(partition).or_insert(seq);
        *entry = (*entry).max(seq);
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_member_partitions_move_and_nothing_committed_is_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_server(dir.path());
    let client = Arc::new(server.quic_client("admin", "pw").await);
    let mut members: Vec<Member> = (0..3).map(|_| Member::start(&server, "workers")).collect();
    let stable = wait_stable(&members.iter().collect::<Vec<_>>());

    let pause = Duration::from_millis(20);
    let mut produced = produce(&client, 40, pause).await;
    let victim_partitions = members[0].assignments().pop().expect("assigned").2;
    members[0].child.kill().expect("SIGKILL a member");
    let killed_at = Instant::now();
    produced.extend(produce(&client, 120, pause).await);
    for member in &mut members[1..] {
        member.wait_exit(Duration::from_secs(60));
    }

    let victim = &members[0];
    let victim_commits = victim.last_commits();
    let victim_printed = victim.printed();
    let survivors_printed: Vec<(Instant, u32, u64)> =
        members[1..].iter().flat_map(Member::printed).collect();

    // The victim's partitions reached the survivors, within the session timeout (counted
    // from the victim's last heartbeat, which came before the kill) plus a heartbeat.
    for &partition in &victim_partitions {
        let moved = members[1..]
            .iter()
            .flat_map(Member::assignments)
            .filter(|(at, generation, partitions)| {
                *at > killed_at && *generation > stable && partitions.contains(&partition)
            })
            .map(|(at, _, _)| at.duration_since(killed_at))
            .min()
            .unwrap_or_else(|| panic!("partition {partition} never moved to a survivor"));
        eprintln!(
            "partition {partition} moved {} ms after the kill",
            moved.as_millis()
        );
        let bound = Duration::from_millis(SESSION_TIMEOUT_MS + HEARTBEAT_MS + SLACK_MS);
        assert!(
            moved <= bound,
            "partition {partition} moved after {moved:?}"
        );
    }

    // At least once: every produced message was printed by someone.
    let printed: Vec<(u32, u64)> = victim_printed
        .iter()
        .chain(&survivors_printed)
        .map(|&(_, p, s)| (p, s))
        .collect();
    let printed_set: BTreeSet<(u32, u64)> = printed.iter().copied().collect();
    for message in &produced {
        assert!(printed_set.contains(message), "{message:?} never printed");
    }

    // No committed offset lost: a survivor takes a moved partition up right after the
    // victim's last commit it logged (or later, had a commit landed unlogged), and never
    // after the victim's last printed message (no gap).
    for &partition in &victim_partitions {
        let resumed = survivors_printed
            .iter()
            .filter(|&&(at, p, _)| p == partition && at > killed_at)
            .map(|&(_, _, seq)| seq)
            .min()
            .expect("survivors printed the moved partition");
        if let Some(&committed) = victim_commits.get(&partition) {
            assert!(
                resumed > committed,
                "partition {partition} re-read from before its commit"
            );
        }
        let victim_last = victim_printed
            .iter()
            .filter(|&&(_, p, _)| p == partition)
            .map(|&(_, _, seq)| seq)
            .max()
            .unwrap_or(0);
        let next_unprinted = produced
            .iter()
            .filter(|&&(p, seq)| p == partition && seq > victim_last)
            .map(|&(_, seq)| seq)
            .min();
        if let Some(next) = next_unprinted {
            assert!(
                resumed <= next,
                "partition {partition}: a gap after the victim"
            );
        }
    }

    // The only repeats are the victim's printed-but-uncommitted messages.
    let mut counts: BTreeMap<(u32, u64), u32> = BTreeMap::new();
    for message in &printed {
        *counts.entry(*message).or_default() += 1;
    }
    for (&(partition, seq), &count) in &counts {
        if count == 1 {
            continue;
        }
        assert_eq!(count, 2, "({partition}, {seq}) printed {count} times");
        let committed = victim_commits.get(&partition).copied().unwrap_or(0);
        assert!(
            victim_partitions.contains(&partition) && seq > committed,
            "({partition}, {seq}) repeated but the victim had committed it (or never owned it)"
        );
    }

    // Survivors committed to the end before leaving.
    assert_eq!(
        committed_offsets(client.clone(), "workers").await,
        last_per_partition(&produced)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_crashes_every_message_is_printed_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_server(dir.path());
    let client = Arc::new(server.quic_client("admin", "pw").await);
    let mut members: Vec<Member> = (0..3).map(|_| Member::start(&server, "steady")).collect();
    wait_stable(&members.iter().collect::<Vec<_>>());
    let produced = produce(&client, 60, Duration::from_millis(5)).await;
    for member in &mut members {
        member.wait_exit(Duration::from_secs(60));
    }
    let mut printed: Vec<(u32, u64)> = members
        .iter()
        .flat_map(Member::printed)
        .map(|(_, p, s)| (p, s))
        .collect();
    printed.sort_unstable();
    let mut expected = produced.clone();
    expected.sort_unstable();
    assert_eq!(printed, expected, "each message printed exactly once");
    assert_eq!(
        committed_offsets(client.clone(), "steady").await,
        last_per_partition(&produced)
    );
}
