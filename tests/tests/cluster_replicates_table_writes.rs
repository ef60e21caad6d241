//! Table writes on a three-node cluster: SQL over HTTP to any member (a member that does not
//! lead forwards a write to the leader), while the leader is killed with SIGKILL and
//! restarted; reads on any member see what was replicated.
//! Three clients insert, update and delete, each retrying a statement until it is
//! acknowledged; a duplicate_key on a retried INSERT means its first try landed. Afterwards
//! every member holds exactly the rows the acknowledged statements leave, with the same
//! `_seq`s. A WebSocket subscriber on the first leader loses its node with it, resumes on
//! another member from its last `_seq`, and ends with the same rows, having seen no change
//! twice and none missing (each change is checked against the copy it applies to).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use strand_tests::cluster::caught_up;
use strand_tests::cluster_tables::{
    seqs_by_id, values_by_id, write_rows_until_stopped, HttpMembers, ResumingSubscriber, ITEMS_DDL,
    ITEMS_SELECT,
};
use strand_tests::local_cluster::LocalCluster;
use strand_tests::{basic, rows, sql, ADMIN_PASSWORD};

const CLIENTS: i64 = 3;
const KILLS: usize = 2;

#[test]
fn table_writes_survive_leader_kills_and_a_subscriber_resumes_elsewhere() {
    let mut cluster = LocalCluster::start(3, "the table replication test's secret");
    let auth = basic("admin", ADMIN_PASSWORD);
    let (leader_at, _) = cluster.leader();
    let all = cluster.live();
    let leader_node = all[leader_at];
    for ddl in ["CREATE NAMESPACE app", ITEMS_DDL] {
        let answer = sql(leader_node, &auth, ddl, &[]);
        assert_eq!(answer.status, 200, "{ddl}: {}", answer.text);
    }
    caught_up(&all);

    // A write sent to a follower is forwarded to the leader, which stores it.
    let follower = all[(leader_at + 1) % 3];
    let forwarded = sql(follower, &auth, "INSERT INTO app.items VALUES (-1, 0)", &[]);
    assert_eq!(forwarded.status, 200, "{}", forwarded.text);
    assert_eq!(rows(leader_node, &auth, ITEMS_SELECT, &[]).len(), 1);

    // The subscriber starts on the leader, the first node to be killed.
    let mut subscriber = ResumingSubscriber::open(leader_node.http, &auth);
    assert_eq!(
        subscriber.copy.len(),
        1,
        "the forwarded row is in the snapshot"
    );

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
        let (at, term) = cluster.leader();
        cluster.kill(at);
        let (successor, later) = cluster.leader();
        assert!(successor != at && later > term);
        *members.lock().unwrap() = cluster.live().iter().map(|n| n.http).collect();
        if at == subscribed_at {
            // The subscriber's node is gone: resume on a survivor from the last `_seq`.
            subscriber.follow(Duration::from_millis(500));
            subscriber.resume(&members);
            subscribed_at = (0..3).find(|i| cluster.nodes[*i].is_some()).unwrap();
        }
        std::thread::sleep(Duration::from_millis(1500));
        cluster.restart(at);
        *members.lock().unwrap() = cluster.live().iter().map(|n| n.http).collect();
    }
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    let models: Vec<_> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    let mut model: std::collections::BTreeMap<i64, i64> = models.into_iter().flatten().collect();
    model.insert(-1, 0);
    assert!(!model.is_empty(), "no write was acknowledged at all");

    let all = cluster.live();
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
