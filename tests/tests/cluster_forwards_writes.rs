//! A write or DDL statement sent to any member of a three-node cluster is forwarded to the
//! leader (issue 22): over HTTP and QUIC `sql`, a follower answers what the leader answers
//! (results, or the same error code), the rows land on every member at the same `_seq`s, and a
//! user's rows written through a follower are that user's. A SELECT on a follower runs there.
//! With the leader killed, a write to a follower succeeds after the election or is answered
//! 503 (`not_leader`, `unavailable`) within a bounded time; never a 500, never a hang.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use strand_tests::cluster::{agreed_leader, caught_up, free_quic_addrs, member_options, node_id};
use strand_tests::{basic, rows, sql, sql_ok, try_sql, StrandServer, ADMIN_PASSWORD};
use strand_wire::quic::{Message, Sql};

const ALICE: &str = "alice";
const ALICE_PASSWORD: &str = "alice has a long password";
/// The leader's write timeout (5 s), the forwarding margin (3 s) and slack for a loaded
/// machine: an answer must come within it.
const ANSWER_WITHIN: Duration = Duration::from_secs(20);
/// How long the cluster may take to elect a leader and take writes again.
const FAILOVER_WITHIN: Duration = Duration::from_secs(60);

fn ids_and_seqs(node: &StrandServer, auth: &str, table: &str) -> Vec<(i64, String)> {
    let text = format!("SELECT id, _seq FROM {table} ORDER BY id");
    rows(node, auth, &text, &[])
        .iter()
        .map(|row| {
            let id = row["id"].as_i64().expect("id");
            (id, row["_seq"].as_str().expect("_seq").to_string())
        })
        .collect()
}

#[test]
fn writes_sent_to_a_follower_run_on_the_leader() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), "the forwarding test's cluster secret").unwrap();
    let quic = free_quic_addrs(3);
    let mut nodes: Vec<Option<StrandServer>> = (1..=3)
        .map(|id| {
            let options = member_options(id, &quic, secret.path());
            Some(StrandServer::start(dirs[id - 1].path(), &options))
        })
        .collect();
    let admin = basic("admin", ADMIN_PASSWORD);
    let all: Vec<&StrandServer> = nodes.iter().flatten().collect();
    let (leader, _) = agreed_leader(&all);
    let leader_at = usize::try_from(leader).unwrap() - 1;
    let (leader_node, follower) = (all[leader_at], all[(leader_at + 1) % 3]);
    for ddl in [
        "CREATE NAMESPACE app",
        "CREATE TABLE app.items (id BIGINT PRIMARY KEY, v BIGINT)",
        "CREATE TABLE app.notes (id BIGINT PRIMARY KEY, body TEXT) WITH (TYPE = 'USER')",
        &format!("CREATE USER {ALICE} WITH PASSWORD '{ALICE_PASSWORD}'"),
    ] {
        sql_ok(leader_node, &admin, ddl, &[]);
    }
    caught_up(&all);

    // DML and DDL sent to a follower succeed.
    for statement in [
        "INSERT INTO app.items VALUES (1, 10), (2, 20), (3, 30)",
        "UPDATE app.items SET v = 21 WHERE id = 2",
        "DELETE FROM app.items WHERE id = 3",
        "CREATE TABLE app.more (id BIGINT PRIMARY KEY)",
        "INSERT INTO app.more VALUES (5)",
    ] {
        let answer = sql(follower, &admin, statement, &[]);
        assert_eq!(answer.status, 200, "{statement}: {}", answer.text);
    }
    let results = sql_ok(
        follower,
        &admin,
        "INSERT INTO app.items VALUES ($1, $2)",
        &[json!(4), json!(40)],
    );
    assert_eq!(results[0]["row_count"], 1, "{results:?}");
    caught_up(&all);
    let on_leader = ids_and_seqs(leader_node, &admin, "app.items");
    let ids: Vec<i64> = on_leader.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [1, 2, 4]);
    for node in &all {
        assert_eq!(
            ids_and_seqs(node, &admin, "app.items"),
            on_leader,
            "{}",
            node.http
        );
        assert_eq!(ids_and_seqs(node, &admin, "app.more").len(), 1);
        let v = rows(node, &admin, "SELECT v FROM app.items WHERE id = 2", &[]);
        assert_eq!(v[0]["v"], 21);
    }

    // A user writes its own rows through a follower: they are in its partition.
    let alice = basic(ALICE, ALICE_PASSWORD);
    sql_ok(
        follower,
        &alice,
        "INSERT INTO app.notes VALUES (7, 'mine')",
        &[],
    );
    sql_ok(
        follower,
        &admin,
        "INSERT INTO app.notes VALUES (8, 'admin''s')",
        &[],
    );
    caught_up(&all);
    for node in &all {
        let mine = rows(node, &alice, "SELECT id, body FROM app.notes", &[]);
        assert_eq!(mine.len(), 1, "alice's notes on {}: {mine:?}", node.http);
        assert_eq!(mine[0]["body"], "mine");
        let admins = rows(node, &admin, "SELECT id FROM app.notes", &[]);
        assert_eq!(
            admins.len(),
            1,
            "admin's notes on {}: {admins:?}",
            node.http
        );
        assert_eq!(admins[0]["id"], 8);
    }

    // The leader's errors come back through the follower, with their code and statement.
    sql(follower, &admin, "INSERT INTO app.items VALUES (1, 0)", &[])
        .assert_error(400, "duplicate_key");
    let two = sql(
        follower,
        &admin,
        "INSERT INTO app.items VALUES (9, 90); INSERT INTO app.items VALUES (1, 0)",
        &[],
    );
    two.assert_error(400, "duplicate_key");
    assert_eq!(two.json()["error"]["statement"], 2, "{}", two.text);
    assert_eq!(two.json()["error"]["committed_statements"], 1);
    let on_leader = sql(leader_node, &admin, "UPDATE app.items SET v = v / 0", &[]);
    let through = sql(follower, &admin, "UPDATE app.items SET v = v / 0", &[]);
    assert_eq!(through.status, on_leader.status, "{}", through.text);
    assert_eq!(
        through.json()["error"]["code"],
        on_leader.json()["error"]["code"]
    );

    // A SELECT on a follower runs there (only `not_leader` is forwarded), and shows that the
    // first statement of the failed request stayed.
    caught_up(&all);
    let nine = rows(
        follower,
        &admin,
        "SELECT id FROM app.items WHERE id = 9",
        &[],
    );
    assert_eq!(
        nine.len(),
        1,
        "the first statement of the failed request stays"
    );

    // QUIC `sql` is forwarded too.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let body = runtime.block_on(async {
        let client = follower.quic_client("admin", ADMIN_PASSWORD).await;
        let request = Message::Sql(Sql {
            sql: "INSERT INTO app.items VALUES ($1, $2)".to_string(),
            params_json: "[11, 110]".to_string(),
        });
        let frames = client.request(request).await.expect("sql over QUIC");
        match frames.into_iter().next().map(|frame| frame.message) {
            Some(Message::SqlResult(result)) => result.body_json,
            other => panic!("sql_result expected, got {other:?}"),
        }
    });
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["status"], "success", "{body}");
    let eleven = rows(
        leader_node,
        &admin,
        "SELECT v FROM app.items WHERE id = 11",
        &[],
    );
    assert_eq!(eleven[0]["v"], 110);

    // The leader is killed: a write to a follower is answered within a bounded time, 200 once
    // a new leader is elected, 503 `not_leader` or `unavailable` before; never a 500.
    nodes[leader_at].take().unwrap().stop_with(libc::SIGKILL);
    let live: Vec<&StrandServer> = nodes.iter().flatten().collect();
    let follower = live[0];
    let deadline = Instant::now() + FAILOVER_WITHIN;
    let mut id = 100;
    loop {
        id += 1;
        let asked = Instant::now();
        let text = format!("INSERT INTO app.items VALUES ({id}, 0)");
        let answer = try_sql(follower.http, &admin, &text, &[]).expect("an HTTP answer");
        assert!(
            asked.elapsed() < ANSWER_WITHIN,
            "answered after {:?}",
            asked.elapsed()
        );
        if answer.status == 200 {
            break;
        }
        assert_eq!(answer.status, 503, "{}", answer.text);
        let body: Value = serde_json::from_str(&answer.text).unwrap();
        let code = body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(code == "not_leader" || code == "unavailable", "{body}");
        assert!(
            Instant::now() < deadline,
            "no write succeeded after the failover"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (new_leader, _) = agreed_leader(&live);
    assert_ne!(new_leader, leader);
    // And through the member that does not lead now.
    let other = live
        .iter()
        .find(|node| node_id(node) != new_leader)
        .expect("a follower");
    sql_ok(other, &admin, "INSERT INTO app.items VALUES (999, 0)", &[]);
    caught_up(&live);
    for node in &live {
        assert_eq!(
            rows(node, &admin, "SELECT id FROM app.items WHERE id = 999", &[]).len(),
            1
        );
    }
}
