//! Table writes on a three-node cluster: SQL over HTTP to whichever member leads, while the
//! leader is killed with SIGKILL and restarted. A member that does not lead answers
//! `not_leader` (HTTP 503) and writes nothing; reads on any member see what was replicated.
//! Three clients insert, update and delete, each retrying a statement until it is
//! acknowledged; a duplicate_key on a retried INSERT means its first try landed. Afterwards
//! every member holds exactly the rows the acknowledged statements leave, with the same
//! `_seq`s. A WebSocket subscriber on the first leader loses its node with it, resumes on
//! another member from its last `_seq`, and ends with the same rows, having seen no change
//! twice and none missing (each change is checked against the copy it applies to).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use strand_tests::cluster::{agreed_leader, caught_up, free_quic_addrs, member_options};
use strand_tests::ws::{apply_change, expect_ack, row_seq, snapshot, Change};
use strand_tests::ws::{subscribe_message, WsClient};
use strand_tests::{basic, rows, sql, try_sql, StrandServer, ADMIN_PASSWORD};
use strand_wire::{Row, ServerMessage};

const CLIENTS: i64 = 3;
const KILLS: usize = 2;
const SELECT: &str = "SELECT id, v, _seq FROM app.items ORDER BY id";
const SUBSCRIBE: &str = "SELECT id, v FROM app.items";

/// The HTTP address of each live member, updated as members restart.
type Members = Arc<Mutex<Vec<SocketAddr>>>;

#[test]
fn table_writes_survive_leader_kills_and_a_subscriber_resumes_elsewhere() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), "the table replication test's secret").unwrap();
    let quic = free_quic_addrs(3);
    let start = |id: usize| {
        StrandServer::start(
            dirs[id - 1].path(),
            &member_options(id, &quic, secret.path()),
        )
    };
    let mut nodes: Vec<Option<StrandServer>> = (1..=3).map(|id| Some(start(id))).collect();
    let auth = basic("admin", ADMIN_PASSWORD);
    let all: Vec<&StrandServer> = nodes.iter().flatten().collect();
    let (leader, _) = agreed_leader(&all);
    let leader_at = usize::try_from(leader).unwrap() - 1;
    let leader_node = all[leader_at];
    for ddl in [
        "CREATE NAMESPACE app",
        "CREATE TABLE app.items (id BIGINT PRIMARY KEY, v BIGINT)",
    ] {
        let answer = sql(leader_node, &auth, ddl, &[]);
        assert_eq!(answer.status, 200, "{ddl}: {}", answer.text);
    }
    caught_up(&all);

    // A follower refuses a write and holds nothing of it.
    let follower = all[(leader_at + 1) % 3];
    let refused = sql(follower, &auth, "INSERT INTO app.items VALUES (0, 0)", &[]);
    let message = refused.assert_error(503, "not_leader");
    assert!(message.contains("leader"), "{message}");
    assert!(rows(follower, &auth, SELECT, &[]).is_empty());

    // The subscriber starts on the leader, the first node to be killed.
    let mut subscriber = WsClient::authenticated(leader_node, "admin", ADMIN_PASSWORD);
    let (mut seen_seq, mut copy) = snapshot(&mut subscriber, "items", SUBSCRIBE);
    assert!(copy.is_empty());

    let members: Members = Arc::new(Mutex::new(all.iter().map(|n| n.http).collect()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (members, stop, auth) = (members.clone(), stop.clone(), auth.clone());
            std::thread::spawn(move || write_until_stopped(client, &members, &stop, &auth))
        })
        .collect();

    let (mut applied, mut resumes, mut subscribed_at) = (0, 0, leader_at);
    for _ in 0..KILLS {
        applied += follow(
            &mut subscriber,
            &mut copy,
            &mut seen_seq,
            Duration::from_secs(2),
        );
        let live: Vec<&StrandServer> = nodes.iter().flatten().collect();
        let (leader, term) = agreed_leader(&live);
        let at = usize::try_from(leader).unwrap() - 1;
        nodes[at].take().unwrap().stop_with(libc::SIGKILL);
        let survivors: Vec<&StrandServer> = nodes.iter().flatten().collect();
        let (successor, later) = agreed_leader(&survivors);
        assert!(successor != leader && later > term);
        *members.lock().unwrap() = survivors.iter().map(|n| n.http).collect();
        if at == subscribed_at {
            // The subscriber's node is gone: resume on a survivor from the last `_seq`.
            applied += follow(
                &mut subscriber,
                &mut copy,
                &mut seen_seq,
                Duration::from_millis(500),
            );
            subscribed_at = (0..3).find(|i| nodes[*i].is_some()).unwrap();
            let node = nodes[subscribed_at].as_ref().unwrap();
            subscriber = WsClient::authenticated(node, "admin", ADMIN_PASSWORD);
            subscriber.send(&subscribe_message("items", SUBSCRIBE, None, Some(seen_seq)));
            expect_ack(&mut subscriber, "items");
            resumes += 1;
        }
        std::thread::sleep(Duration::from_millis(1500));
        nodes[at] = Some(start(at + 1));
        let live: Vec<&StrandServer> = nodes.iter().flatten().collect();
        *members.lock().unwrap() = live.iter().map(|n| n.http).collect();
    }
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    let models: Vec<BTreeMap<i64, i64>> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    let model: BTreeMap<i64, i64> = models.into_iter().flatten().collect();
    assert!(!model.is_empty(), "no write was acknowledged at all");

    let all: Vec<&StrandServer> = nodes.iter().flatten().collect();
    caught_up(&all);
    let tables: Vec<Vec<Value>> = all.iter().map(|n| rows(n, &auth, SELECT, &[])).collect();
    for (node, table) in all.iter().zip(&tables) {
        assert_eq!(table, &tables[0], "node {} differs from node 1", node.http);
    }
    let held: BTreeMap<i64, i64> = tables[0]
        .iter()
        .map(|row| (row["id"].as_i64().unwrap(), row["v"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        held, model,
        "the rows are not what the acknowledged writes left"
    );

    // The subscriber's copy converges on the same rows and `_seq`s.
    let deadline = Instant::now() + Duration::from_secs(30);
    let expected: BTreeMap<i64, u64> = tables[0]
        .iter()
        .map(|row| (row["id"].as_i64().unwrap(), seq_of(row)))
        .collect();
    loop {
        let copied: BTreeMap<i64, u64> = copy.iter().map(|(id, row)| (*id, row_seq(row))).collect();
        if copied == expected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the subscriber did not converge: it holds {} rows, the members {}; last _seq {seen_seq}",
            copied.len(),
            expected.len()
        );
        applied += follow(
            &mut subscriber,
            &mut copy,
            &mut seen_seq,
            Duration::from_millis(500),
        );
    }
    assert!(resumes >= 1, "the subscriber never lost its node");
    eprintln!(
        "{} rows; the subscriber applied {applied} changes and resumed {resumes} time(s)",
        model.len()
    );
}

/// Applies the subscriber's changes for `budget`, or until the connection ends; returns how
/// many.
fn follow(
    subscriber: &mut WsClient,
    copy: &mut BTreeMap<i64, Row>,
    seen_seq: &mut u64,
    budget: Duration,
) -> usize {
    let deadline = Instant::now() + budget;
    let mut applied = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let Ok(message) = subscriber.next_within(left) else {
            break;
        };
        let ServerMessage::Change {
            subscription_id,
            change_type,
            mut rows,
            old_rows,
            ..
        } = message
        else {
            panic!("expected a change, got {message:?}");
        };
        assert_eq!(subscription_id, "items");
        assert_eq!(rows.len(), 1, "one change message per row");
        let change = Change {
            kind: change_type,
            row: rows.remove(0),
            old: old_rows.and_then(|mut old| old.pop()),
        };
        let seq = row_seq(&change.row);
        assert!(seq > *seen_seq, "a change at or below the last seen _seq");
        *seen_seq = seq;
        apply_change(copy, &change);
        applied += 1;
    }
    applied
}

fn seq_of(row: &Value) -> u64 {
    row["_seq"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| row["_seq"].as_u64())
        .unwrap_or_else(|| panic!("no _seq in {row}"))
}

/// Client `client` inserts ids `client, client + CLIENTS, ...` with v = 0, sets v = 1 on the
/// id before and deletes the one before that, retrying each statement on any member until
/// one acknowledges it. Returns the rows its acknowledged statements leave.
fn write_until_stopped(
    client: i64,
    members: &Members,
    stop: &AtomicBool,
    auth: &str,
) -> BTreeMap<i64, i64> {
    let mut model = BTreeMap::new();
    let mut step = 0i64;
    while !stop.load(Ordering::Relaxed) {
        let id = client + step * CLIENTS;
        run_until_acknowledged(members, auth, "INSERT INTO app.items VALUES ($1, 0)", id);
        model.insert(id, 0);
        if step % 3 == 2 {
            let earlier = id - CLIENTS;
            run_until_acknowledged(
                members,
                auth,
                "UPDATE app.items SET v = 1 WHERE id = $1",
                earlier,
            );
            model.insert(earlier, 1);
        }
        if step % 5 == 4 {
            let earlier = id - 2 * CLIENTS;
            run_until_acknowledged(
                members,
                auth,
                "DELETE FROM app.items WHERE id = $1",
                earlier,
            );
            model.remove(&earlier);
        }
        step += 1;
    }
    model
}

/// Sends `statement` with `id` to the members in turn until one acknowledges it. Every
/// statement here is idempotent, and an INSERT retried after its first try landed answers
/// duplicate_key, which is its acknowledgement.
fn run_until_acknowledged(members: &Members, auth: &str, statement: &str, id: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut turn = 0usize;
    let mut last = String::new();
    loop {
        let addrs = members.lock().unwrap().clone();
        let addr = addrs[turn % addrs.len()];
        turn += 1;
        if let Some(answer) = try_sql(addr, auth, statement, &[json!(id)]) {
            last = format!("{addr}: {}", answer.text);
            let body: Value = serde_json::from_str(&answer.text).unwrap_or(Value::Null);
            let code = body["error"]["code"].as_str().unwrap_or("");
            match (answer.status, code) {
                (200, _) => return,
                (_, "duplicate_key") if statement.starts_with("INSERT") => return,
                (503, _) => {}
                _ => panic!("{statement} ({id}) at {addr}: {}", answer.text),
            }
        }
        assert!(
            Instant::now() < deadline,
            "{statement} ({id}) never acknowledged; last answer {last}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
