//! A partition: the leader of a three-node cluster is cut off from the other two (UDP
//! proxies in front of every member's cluster address drop all its traffic; clients still
//! reach it directly). Writes sent to it are never acknowledged: it answers `unavailable`
//! (or `not_leader` once it learns of a newer leader) and stores nothing for good. The other
//! two elect a leader among themselves and acknowledge writes. When the cut heals, the old
//! leader rejoins as a follower, drops what it held unconfirmed, and catches up: all three
//! hold the same records.
//!
//! Statements that write nothing are no exception: an UPDATE or DELETE that matches no row
//! on the cut-off leader, or an INSERT it finds a duplicate, is not answered from its own
//! (stale) state either, but only once a majority confirms it still leads, which it cannot.
//! The same holds for DDL with nothing to do and for user changes that change nothing in its
//! copy of the directory (a CREATE USER of a name it still holds, a GRANT it finds held, a
//! DROP USER IF EXISTS of a user it does not know).

use std::time::{Duration, Instant};

use strand_tests::cluster::{agreed_leader, caught_up, member_options_behind, PartitionProxies};
use strand_tests::{bearer, login, sql, sql_ok, StrandServer, ADMIN_PASSWORD};
use strand_wire::quic::client::Client;
use strand_wire::quic::{
    Fetch, Frame, Message, PartitionIndex, Partitioning, ProduceRecord, ProduceTopic, ReadFrom,
};

const TOPIC: &str = "app.cut";

fn produce(value: &str) -> Message {
    Message::ProduceTopic(ProduceTopic {
        topic: TOPIC.to_string(),
        partitioning: Partitioning::Explicit(PartitionIndex(0)),
        idempotence: None,
        records: vec![ProduceRecord {
            key: Default::default(),
            value: value.as_bytes().to_vec().into(),
        }],
    })
}

/// The answer's kind: `Ok(())` for an ack, else the error code.
async fn send(client: &Client, value: &str) -> Result<(), String> {
    let frames = client
        .request(produce(value))
        .await
        .map_err(|e| e.to_string())?;
    match frames.as_slice() {
        [Frame {
            message: Message::ProduceAck(_),
            ..
        }] => Ok(()),
        [Frame {
            message: Message::Error(error),
            ..
        }] => Err(error.code.clone()),
        other => panic!("unexpected answer {other:?}"),
    }
}

async fn values(node: &StrandServer) -> Vec<(u64, String)> {
    let client = node.quic_client("admin", ADMIN_PASSWORD).await;
    let fetch = Message::Fetch(Fetch {
        topic: TOPIC.to_string(),
        partition: PartitionIndex(0),
        from: ReadFrom::Earliest,
        records_max: 1000,
        bytes_max: 1 << 20,
        wait_ms: 0,
    });
    let frames = client.request(fetch).await.unwrap();
    let Message::FetchResponse(records) = &frames[0].message else {
        panic!("expected records, got {frames:?}");
    };
    records
        .records
        .iter()
        .map(|r| (r.seq.0, String::from_utf8(r.value.to_vec()).unwrap()))
        .collect()
}

#[test]
fn a_cut_off_leader_acknowledges_nothing_and_rejoins_cleanly() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), "the partition test's cluster secret").unwrap();
    let proxies = PartitionProxies::start(3);
    let nodes: Vec<StrandServer> = (1..=3)
        .map(|id| {
            let options =
                member_options_behind(id, &proxies.real[id - 1], &proxies.addrs, secret.path());
            StrandServer::start(dirs[id - 1].path(), &options)
        })
        .collect();
    let all: Vec<&StrandServer> = nodes.iter().collect();
    let (leader, term) = agreed_leader(&all);
    let old = &nodes[usize::try_from(leader).unwrap() - 1];
    let auth = bearer(old, "admin", ADMIN_PASSWORD);
    sql_ok(old, &auth, "CREATE NAMESPACE app", &[]);
    sql_ok(
        old,
        &auth,
        &format!("CREATE TOPIC {TOPIC} WITH (PARTITIONS = 1)"),
        &[],
    );
    sql_ok(
        old,
        &auth,
        "CREATE TABLE app.t (id BIGINT PRIMARY KEY, v BIGINT)",
        &[],
    );
    sql_ok(old, &auth, "INSERT INTO app.t VALUES (1, 0)", &[]);
    sql_ok(old, &auth, "CREATE USER 'bob' WITH PASSWORD 'pw-bob'", &[]);
    sql_ok(
        old,
        &auth,
        "CREATE USER 'carol' WITH PASSWORD 'pw-carol'",
        &[],
    );
    sql_ok(old, &auth, "GRANT SELECT ON app.t TO 'carol'", &[]);
    caught_up(&all);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let to_old = runtime.block_on(old.quic_client("admin", ADMIN_PASSWORD));
    runtime.block_on(send(&to_old, "before the cut")).unwrap();

    proxies.cut(usize::try_from(leader).unwrap());
    // The cut-off node is sent nothing it would propose until the stale statements below:
    // a proposal it cannot commit would make it wait before any later statement anyway.
    let mut refusals = Vec::new();
    // The two others elect a new leader and take writes.
    let others: Vec<&StrandServer> = nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i as u64 + 1 != leader)
        .map(|(_, n)| n)
        .collect();
    let (new_leader, new_term) = agreed_leader(&others);
    assert!(new_leader != leader && new_term > term);
    let new = &nodes[usize::try_from(new_leader).unwrap() - 1];
    let to_new = runtime.block_on(new.quic_client("admin", ADMIN_PASSWORD));
    runtime.block_on(send(&to_new, "during the cut")).unwrap();
    // The new leader changes the table; the cut-off node's copy does not know.
    let new_auth = bearer(new, "admin", ADMIN_PASSWORD);
    sql_ok(new, &new_auth, "INSERT INTO app.t VALUES (2, 0)", &[]);
    sql_ok(new, &new_auth, "DELETE FROM app.t WHERE id = 1", &[]);
    // And the directory: bob is gone, carol lost her grant, dave is new.
    sql_ok(new, &new_auth, "DROP USER 'bob'", &[]);
    sql_ok(new, &new_auth, "REVOKE SELECT ON app.t FROM 'carol'", &[]);
    sql_ok(
        new,
        &new_auth,
        "CREATE USER 'dave' WITH PASSWORD 'pw-dave'",
        &[],
    );
    for statement in [
        // Matches no row in the old copy (row 2 is new).
        "UPDATE app.t SET v = 1 WHERE id = 2",
        // Matches no row anywhere.
        "DELETE FROM app.t WHERE id = 99",
        // A duplicate in the old copy only (row 1 is gone).
        "INSERT INTO app.t VALUES (1, 5)",
        // Already there, in the old copy.
        "CREATE TABLE IF NOT EXISTS app.t (id BIGINT PRIMARY KEY, v BIGINT)",
        // Taken, in the old copy of the directory (bob was dropped).
        "CREATE USER 'bob' WITH PASSWORD 'again'",
        // Held, in the old copy (carol's grant was revoked).
        "GRANT SELECT ON app.t TO 'carol'",
        // Nobody to drop, in the old copy (dave is new).
        "DROP USER IF EXISTS 'dave'",
    ] {
        let answer = sql(old, &auth, statement, &[]);
        assert_eq!(
            answer.status, 503,
            "the cut-off node answered {statement} from its own state: {}",
            answer.text
        );
        let code = answer.json()["error"]["code"].clone();
        assert!(
            code == "unavailable" || code == "not_leader",
            "{statement}: {code}"
        );
    }
    // The cut-off leader cannot get a majority: every write to it is refused, none acked.
    for n in 0..2 {
        let answer = runtime.block_on(send(&to_old, &format!("to the cut-off node {n}")));
        let code = answer.expect_err("a cut-off node acknowledged a write");
        assert!(code == "unavailable" || code == "not_leader", "{code}");
        refusals.push(code);
    }

    proxies.heal();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (agreed, _) = agreed_leader(&all);
        if agreed != leader || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    caught_up(&all);
    runtime.block_on(send(&to_new, "after the heal")).unwrap();
    caught_up(&all);
    let logs: Vec<_> = all.iter().map(|n| runtime.block_on(values(n))).collect();
    let texts: Vec<&str> = logs[0].iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(
        texts,
        ["before the cut", "during the cut", "after the heal"]
    );
    for log in &logs[1..] {
        assert_eq!(
            log, &logs[0],
            "every member holds the same records at the same _seqs"
        );
    }
    for node in &all {
        let auth = bearer(node, "admin", ADMIN_PASSWORD);
        let rows = sql_ok(node, &auth, "SELECT id, v FROM app.t ORDER BY id", &[]);
        assert_eq!(
            rows[0]["rows"],
            serde_json::json!([{"id": 2, "v": 0}]),
            "{rows:?}"
        );
        // The directory is the new leader's on every member.
        assert_eq!(login(node, "bob", "pw-bob").status, 401);
        assert_eq!(login(node, "dave", "pw-dave").status, 200);
    }
    eprintln!("refusals from the cut-off node: {refusals:?}");
}
