//! Table writes on a three-node cluster: SQL over HTTP to whichever member leads, while the
//! leader is killed with SIGKILL and restarted. A member that does not lead answers
//! `not_leader` (HTTP 503) and writes nothing; reads on any member see what was replicated.
//! Three clients insert, update and delete, each retrying a statement until it is
//! acknowledged; a duplicate_key on a retried INSERT means its first try landed. Afterwards
//! every member holds exactly the rows the acknowledged statements leave, with the same
//! `_seq`s. A WebSocket subscriber on the first leader loses its node with it, resumes on
//! another member from its last `_seq`, and ends with the same rows, having seen no change
//! twice and none missing (each change is checked against the copy it applies to).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use strand_tests::cluster::{agreed_leader, caught_up, free_quic_addrs, member_options};
use strand_tests::cluster_tables::{
    seqs_by_id, values_by_id, write_rows_until_stopped, HttpMembers, ResumingSubscriber, ITEMS_DDL,
    ITEMS_SELECT,
};
use strand_tests::{basic, rows, sql, StrandServer, ADMIN_PASSWORD};

const CLIENTS: i64 = 3;
const KILLS: usize = 2;

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
    for ddl in ["CREATE NAMESPACE app", ITEMS_DDL] {
        let answer = sql(leader_node, &auth, ddl, &[]);
        assert_eq!(answer.status, 200, "{ddl}: {}", answer.text);
    }
    caught_up(&all);

    // A follower refuses a write and holds nothing of it.
    let follower = all[(leader_at + 1) % 3];
    let refused = sql(follower, &auth, "INSERT INTO app.items VALUES (0, 0)", &[]);
    let message = refused.assert_error(503, "not_leader");
    assert!(message.contains("leader"), "{message}");
    assert!(rows(follower, &auth, ITEMS_SELECT, &[]).is_empty());

    // The subscriber starts on the leader, the first node to be killed.
    let mut subscriber = ResumingSubscriber::open(leader_node.http, &auth);
    assert!(subscriber.copy.is_empty());

    let members: HttpMembers = Arc::new(Mutex::new(all.iter().map(|n| n.http).collect()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (members, stop, auth) = (members.clone(), stop.clone(), auth.clone());
            std::thread::spawn(move || {
                write_rows_until_stopped(client, CLIENTS, &members, &stop, &auth)
            })
        })
        .collect();

    let mut subscribed_at = leader_at;
    for _ in 0..KILLS {
        subscriber.follow(Duration::from_secs(2));
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
            subscriber.follow(Duration::from_millis(500));
            subscriber.resume(&members);
            subscribed_at = (0..3).find(|i| nodes[*i].is_some()).unwrap();
        }
        std::thread::sleep(Duration::from_millis(1500));
        nodes[at] = Some(start(at + 1));
        let live: Vec<&StrandServer> = nodes.iter().flatten().collect();
        *members.lock().unwrap() = live.iter().map(|n| n.http).collect();
    }
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    let models: Vec<_> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    let model: std::collections::BTreeMap<i64, i64> = models.into_iter().flatten().collect();
    assert!(!model.is_empty(), "no write was acknowledged at all");

    let all: Vec<&StrandServer> = nodes.iter().flatten().collect();
    caught_up(&all);
    let tables: Vec<_> = all
        .iter()
        .map(|n| rows(n, &auth, ITEMS_SELECT, &[]))
        .collect();
    for (node, table) in all.iter().zip(&tables) {
        assert_eq!(table, &tables[0], "node {} differs from node 1", node.http);
    }
    assert_eq!(
        values_by_id(&tables[0]),
        model,
        "the rows are not what the acknowledged writes left"
    );
    subscriber.converge(&members, &seqs_by_id(&tables[0]), Duration::from_secs(30));
    assert!(
        subscriber.resumes >= 1,
        "the subscriber never lost its node"
    );
    eprintln!(
        "{} rows; the subscriber applied {} changes and resumed {} time(s)",
        model.len(),
        subscriber.applied,
        subscriber.resumes
    );
}
