//! Issue 17, defect 8: consumer groups are collected and bounded per user. A user flooding the
//! server with junk groups is stopped at its own limit (`--groups-per-user-max`) and another
//! user still creates groups; a group without members is removed about one session timeout
//! after its last member (the flooder can create groups again); a group's committed offsets
//! outlive the group for the retention (`--group-offsets-retention-ms`) and are removed after
//! it. Before the fix one user filled the server's 10,000 groups and nobody could create one.

use std::time::{Duration, Instant};

// The server's bound on groups: a flood goes at most one past it.
use strand_broker::limits::GROUPS_MAX;
use strand_tests::{bearer, sql_ok, ServerOptions, StrandServer};
use strand_wire::quic::client::{Client, ClientError};
use strand_wire::quic::consumer::single_answer;
use strand_wire::quic::{
    codes, CommittedOffset, GroupAssignment, GroupCommit, GroupJoin, GroupMember, GroupStatus,
    MemberId, Message, PartitionIndex, Seq,
};

/// Session timeout of the junk groups' members: long enough that none expires while the
/// flood of six joins runs, short enough to wait for.
const JUNK_SESSION_TIMEOUT_MS: u32 = 3_000;
/// Shortest session timeout a join may ask for: members that leave need no more.
const SESSION_TIMEOUT_MS: u32 = 100;
/// How long a test waits for the server's sweep (every second) to catch up.
const WAIT: Duration = Duration::from_secs(60);

fn start(args: &[&str]) -> (tempfile::TempDir, StrandServer) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut options = ServerOptions::with_admin_password("pw");
    options.args = args.iter().map(|a| a.to_string()).collect();
    let server = StrandServer::start(&dir.path().join("data"), &options);
    let admin = bearer(&server, "admin", "pw");
    sql_ok(
        &server,
        &admin,
        "CREATE NAMESPACE app;
         CREATE TOPIC app.events WITH (PARTITIONS = 1);
         CREATE TOPIC app.other WITH (PARTITIONS = 1);
         CREATE USER 'mallory' WITH PASSWORD 'mallory-pw' ROLE user;
         CREATE USER 'alice' WITH PASSWORD 'alice-pw' ROLE user;
         GRANT SELECT ON app.events TO 'mallory';
         GRANT SELECT ON app.other TO 'alice';
         GRANT SELECT ON app.events TO 'alice'",
        &[],
    );
    (dir, server)
}

/// Joins `group` on `topic` as a new member: its assignment, or the refusal's code and text.
async fn join(client: &Client, group: &str, topic: &str) -> Result<GroupAssignment, String> {
    join_for(client, group, topic, SESSION_TIMEOUT_MS).await
}

async fn join_for(
    client: &Client,
    group: &str,
    topic: &str,
    session_timeout_ms: u32,
) -> Result<GroupAssignment, String> {
    let request = GroupJoin {
        group: group.into(),
        topic: topic.into(),
        member: MemberId(String::new()),
        session_timeout_ms,
    };
    match single_answer(client, Message::GroupJoin(request)).await {
        Ok(Message::GroupJoinResponse(assignment)) if assignment.status == GroupStatus::Ok => {
            Ok(assignment)
        }
        Ok(other) => Err(format!("{other:?}")),
        Err(ClientError::Rejected(error)) => Err(format!("{}: {}", error.code, error.message)),
        Err(error) => panic!("join {group}: {error}"),
    }
}

fn member_of(group: &str, assignment: &GroupAssignment) -> GroupMember {
    GroupMember {
        group: group.into(),
        member: assignment.member.clone(),
        generation: assignment.generation,
    }
}

async fn commit(client: &Client, group: &str, assignment: &GroupAssignment, seq: u64) {
    let request = GroupCommit {
        member: member_of(group, assignment),
        offsets: vec![CommittedOffset {
            partition: PartitionIndex(0),
            seq: Seq(seq),
        }],
    };
    let answer = single_answer(client, Message::GroupCommit(request)).await;
    assert!(
        matches!(&answer, Ok(Message::GroupCommitResponse(r)) if r.status == GroupStatus::Ok),
        "{answer:?}"
    );
}

async fn leave(client: &Client, group: &str, assignment: &GroupAssignment) {
    let request = member_of(group, assignment);
    let answer = single_answer(client, Message::GroupLeave(request)).await;
    assert!(
        matches!(&answer, Ok(Message::GroupLeaveResponse(r)) if r.status == GroupStatus::Ok),
        "{answer:?}"
    );
}

/// Joins until the server lets `group` be created (the sweep freed a place), within [`WAIT`].
async fn join_eventually(client: &Client, group: &str, topic: &str) -> GroupAssignment {
    let deadline = Instant::now() + WAIT;
    loop {
        match join(client, group, topic).await {
            Ok(assignment) => return assignment,
            Err(refusal) if Instant::now() < deadline => {
                assert!(refusal.starts_with(codes::LIMIT_EXCEEDED), "{refusal}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(refusal) => panic!("{group} still refused after {WAIT:?}: {refusal}"),
        }
    }
}

fn committed_seq(assignment: &GroupAssignment) -> Option<u64> {
    let offset = assignment.committed.iter().find(|c| c.partition.0 == 0);
    offset.map(|c| c.seq.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_junk_group_flood_does_not_lock_out_other_users_and_empty_groups_go() {
    let (_dir, server) = start(&["--groups-per-user-max", "5"]);
    let mallory = server.quic_client("mallory", "mallory-pw").await;
    let mut created = 0;
    let mut refusal = None;
    for index in 0..=GROUPS_MAX {
        let group = format!("junk-{index}");
        match join_for(&mallory, &group, "app.events", JUNK_SESSION_TIMEOUT_MS).await {
            Ok(_) => created += 1,
            Err(text) => {
                refusal = Some(text);
                break;
            }
        }
    }
    let refusal = refusal.expect("the flood is refused at some point");

    // Another user, on another topic and on the flooded one, still creates groups.
    let alice = server.quic_client("alice", "alice-pw").await;
    let other = join(&alice, "alice-other", "app.other").await;
    assert!(other.is_ok(), "after {created} junk groups: {other:?}");
    let same = join(&alice, "alice-events", "app.events").await;
    assert!(same.is_ok(), "after {created} junk groups: {same:?}");
    assert!(refusal.starts_with(codes::LIMIT_EXCEEDED), "{refusal}");
    assert_eq!(created, 5, "the flood stops at the per-user limit");

    // The junk groups' members never heartbeat: once their sessions expired the sweep
    // removes the groups, and the flooder holds none of its places any more.
    for index in 0..5 {
        join_eventually(&mallory, &format!("later-{index}"), "app.events").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_group_keeps_its_offsets_within_the_retention() {
    // One group per user: joining a second group proves the first one was removed.
    let (_dir, server) = start(&[
        "--groups-per-user-max",
        "1",
        "--group-offsets-retention-ms",
        "600000",
    ]);
    let alice = server.quic_client("alice", "alice-pw").await;
    let first = join(&alice, "kept", "app.events").await.expect("join kept");
    commit(&alice, "kept", &first, 7).await;
    leave(&alice, "kept", &first).await;

    let second = join_eventually(&alice, "second", "app.events").await;
    leave(&alice, "second", &second).await;
    let again = join_eventually(&alice, "kept", "app.events").await;
    assert_eq!(committed_seq(&again), Some(7), "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_groups_offsets_are_removed_after_the_retention() {
    let (_dir, server) = start(&["--group-offsets-retention-ms", "1000"]);
    let alice = server.quic_client("alice", "alice-pw").await;
    let first = join(&alice, "idle", "app.events").await.expect("join idle");
    commit(&alice, "idle", &first, 9).await;
    leave(&alice, "idle", &first).await;

    // Each look joins (the group is live again) and leaves; between looks the group stays
    // empty longer than the retention plus a sweep.
    let deadline = Instant::now() + WAIT;
    loop {
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        let look = join(&alice, "idle", "app.events").await.expect("join idle");
        if committed_seq(&look).is_none() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "offsets still kept after {WAIT:?}: {look:?}"
        );
        leave(&alice, "idle", &look).await;
    }
}
