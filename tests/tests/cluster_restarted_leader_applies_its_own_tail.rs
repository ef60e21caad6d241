//! A leader that restarts still leading (openraft restores a leader whose vote was committed,
//! in the same term) must apply what it proposed before the crash before it checks a
//! statement again: a retry of a write whose client got no answer is a duplicate, not a new
//! write.
//!
//! The leader of a three-node cluster loses both followers (SIGKILL), so an INSERT and an
//! idempotent produce sent to it are proposed but cannot commit: their clients hear
//! `unavailable`. The leader is killed too and started again, still leading in its term, and
//! the clients retry while one follower comes back. That follower lets the leader commit its
//! old entries, and confirms its leadership for the retries' checks. The retried INSERT must
//! be answered `duplicate_key` and the retried batch with its original ack. Before the fix,
//! the leader checked the retries against the state it had committed before the crash, and
//! stored both writes twice (found by the 1,000-round fault schedule).

use std::time::{Duration, Instant};

use serde_json::json;
use strand_tests::cluster::caught_up;
use strand_tests::cluster_topics::{produce, read_all};
use strand_tests::local_cluster::LocalCluster;
use strand_tests::{basic, rows, sql, try_sql, Answer, ADMIN_PASSWORD};
use strand_wire::quic::client::Client;
use strand_wire::quic::{Frame, Message, ProduceAck};

const TOPIC: &str = "app.tail";
const INSERT: &str = "INSERT INTO app.items VALUES (1, $1)";
/// How long the retries may take once the leader is back.
const RETRY_TIMEOUT: Duration = Duration::from_secs(60);

/// Sends `INSERT (1, v)` to `http` until an answer other than 503 (or no answer) comes.
fn insert_until_answered(http: std::net::SocketAddr, auth: &str, v: i64) -> Answer {
    let deadline = Instant::now() + RETRY_TIMEOUT;
    loop {
        if let Some(answer) = try_sql(http, auth, INSERT, &[json!(v)]) {
            if answer.status != 503 {
                return answer;
            }
        }
        assert!(Instant::now() < deadline, "the INSERT was never answered");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Batch 1 of producer 7 (value `tail`), resent until acknowledged: its ack.
async fn produce_until_acknowledged(
    quic: std::net::SocketAddr,
    ca: std::path::PathBuf,
) -> ProduceAck {
    let deadline = Instant::now() + RETRY_TIMEOUT;
    loop {
        assert!(
            Instant::now() < deadline,
            "the batch was never acknowledged"
        );
        let connect = Client::connect_password(quic, &ca, "admin", ADMIN_PASSWORD);
        let Ok(Ok(client)) = tokio::time::timeout(Duration::from_secs(2), connect).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let request = client.request(produce(TOPIC, 0, 7, 1, "tail"));
        if let Ok(Ok(frames)) = tokio::time::timeout(Duration::from_secs(10), request).await {
            if let [Frame {
                message: Message::ProduceAck(ack),
                ..
            }] = frames.as_slice()
            {
                return *ack;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn a_leader_restarted_in_its_term_sees_its_own_unanswered_writes() {
    let mut cluster = LocalCluster::start(3, "the restarted leader test's secret");
    let auth = basic("admin", ADMIN_PASSWORD);
    let (leader, _) = cluster.leader();
    for ddl in [
        "CREATE NAMESPACE app",
        "CREATE TABLE app.items (id BIGINT PRIMARY KEY, v BIGINT)",
        "CREATE TOPIC app.tail WITH (PARTITIONS = 1)",
    ] {
        let answer = sql(cluster.node(leader), &auth, ddl, &[]);
        assert_eq!(answer.status, 200, "{ddl}: {}", answer.text);
    }
    caught_up(&cluster.live());
    let followers: Vec<usize> = (0..3).filter(|at| *at != leader).collect();
    for at in &followers {
        cluster.kill(*at);
    }

    // Proposed on the lone leader, never committed while it lives: no answer for either.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let node = cluster.node(leader);
    let (quic, ca) = (node.quic, node.data_dir.join("tls/cert.pem"));
    let first_produce = runtime.spawn(async move {
        let client = Client::connect_password(quic, &ca, "admin", ADMIN_PASSWORD)
            .await
            .expect("connect");
        client.request(produce(TOPIC, 0, 7, 1, "tail")).await
    });
    let first_insert = sql(node, &auth, INSERT, &[json!(1)]);
    assert_eq!(first_insert.status, 503, "{}", first_insert.text);
    let produced = runtime.block_on(first_produce).expect("task");
    let frames = produced.expect("an answer");
    assert!(
        matches!(frames.as_slice(), [Frame { message: Message::Error(e), .. }] if e.code == "unavailable"),
        "the lone leader acknowledged a batch: {frames:?}"
    );

    // The leader restarts still leading in its term; the retries wait for a majority, which
    // the first follower back gives it.
    cluster.kill(leader);
    cluster.restart(leader);
    let node = cluster.node(leader);
    let (http, quic, ca) = (node.http, node.quic, node.data_dir.join("tls/cert.pem"));
    let retried_insert = {
        let auth = auth.clone();
        std::thread::spawn(move || insert_until_answered(http, &auth, 2))
    };
    let retried_produce = runtime.spawn(produce_until_acknowledged(quic, ca));
    cluster.restart(followers[0]);
    let answer = retried_insert.join().expect("insert thread");
    let ack = runtime.block_on(retried_produce).expect("produce task");
    assert_eq!(
        cluster.leader().0,
        leader,
        "the old leader leads again (a follower without its entries cannot win)"
    );
    assert_eq!(
        answer.json()["error"]["code"],
        "duplicate_key",
        "the retried INSERT finds its first try: {}",
        answer.text
    );
    assert!(
        ack.duplicate,
        "the retried batch is answered as a duplicate: {ack:?}"
    );

    // Everyone agrees: one row from the first try, one record of the batch.
    cluster.restart(followers[1]);
    let all = cluster.live();
    caught_up(&all);
    let select = "SELECT id, v, _seq FROM app.items";
    let held = rows(all[0], &auth, select, &[]);
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["v"], json!(1), "{held:?}");
    for node in &all {
        assert_eq!(rows(node, &auth, select, &[]), held);
        let records = runtime.block_on(read_all(node, TOPIC, 1));
        let values: Vec<&str> = records[&0].iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(
            values,
            ["tail"],
            "member {} holds the batch once",
            node.http
        );
    }
}
