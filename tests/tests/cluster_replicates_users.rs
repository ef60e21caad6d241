//! Users and grants on a three-node cluster: created on the leader, they exist on every
//! member with the same incarnation, so a user's rows (in partitions named by it) written
//! through the leader are that user's rows on every member. A member that does not lead
//! forwards a user change to the leader. A token issued by one member is accepted by every
//! member (they sign with one key, derived from the cluster secret). A dropped user can log in
//! nowhere, and a member restarted afterwards still knows only what the cluster agreed.

use strand_tests::cluster::caught_up;
use strand_tests::local_cluster::LocalCluster;
use strand_tests::{basic, bearer, login, rows, sql, ADMIN_PASSWORD};

const ALICE: &str = "alice";
const ALICE_PASSWORD: &str = "alice has a long password";

#[test]
fn users_grants_and_their_rows_are_the_same_on_every_member() {
    let mut cluster = LocalCluster::start(3, "the user replication test's secret");
    let admin = basic("admin", ADMIN_PASSWORD);
    let (leader_at, _) = cluster.leader();
    let all = cluster.live();
    let (leader_node, follower) = (all[leader_at], all[(leader_at + 1) % 3]);

    // A follower forwards a user change to the leader (cluster_forwards_writes.rs).
    let forwarded = sql(
        follower,
        &admin,
        "CREATE USER bob WITH PASSWORD 'bob password'",
        &[],
    );
    assert_eq!(forwarded.status, 200, "{}", forwarded.text);

    for statement in [
        "CREATE NAMESPACE app".to_string(),
        "CREATE TABLE app.notes (id BIGINT PRIMARY KEY, body TEXT) WITH (TYPE = 'USER')"
            .to_string(),
        "CREATE TABLE app.board (id BIGINT PRIMARY KEY, body TEXT)".to_string(),
        format!("CREATE USER {ALICE} WITH PASSWORD '{ALICE_PASSWORD}'"),
        format!("GRANT SELECT ON app.board TO {ALICE}"),
        "INSERT INTO app.board VALUES (1, 'for everyone')".to_string(),
    ] {
        let answer = sql(leader_node, &admin, &statement, &[]);
        assert_eq!(answer.status, 200, "{statement}: {}", answer.text);
    }
    // A token from one member works on every member.
    let token = bearer(follower, "admin", ADMIN_PASSWORD);
    for node in &all {
        let answer = sql(node, &token, "SELECT id FROM app.board", &[]);
        assert_eq!(
            answer.status, 200,
            "token on {}: {}",
            node.http, answer.text
        );
    }
    let alice = basic(ALICE, ALICE_PASSWORD);
    let answer = sql(
        leader_node,
        &alice,
        "INSERT INTO app.notes VALUES (7, 'mine')",
        &[],
    );
    assert_eq!(answer.status, 200, "{}", answer.text);
    caught_up(&all);

    for node in &all {
        assert_eq!(login(node, ALICE, ALICE_PASSWORD).status, 200);
        let notes = rows(node, &alice, "SELECT id, body FROM app.notes", &[]);
        assert_eq!(notes.len(), 1, "alice's rows on {}: {notes:?}", node.http);
        assert_eq!(notes[0]["body"], "mine");
        let board = rows(node, &alice, "SELECT id FROM app.board", &[]);
        assert_eq!(board.len(), 1);
        // The grant is SELECT only on the board, on every member.
        let answer = sql(node, &alice, "INSERT INTO app.board VALUES (2, 'x')", &[]);
        assert_eq!(answer.status, 403, "{}", answer.text);
    }

    // Revoked and dropped through the leader: gone on every member.
    let answer = sql(
        leader_node,
        &admin,
        &format!("REVOKE SELECT ON app.board FROM {ALICE}"),
        &[],
    );
    assert_eq!(answer.status, 200, "{}", answer.text);
    caught_up(&all);
    for node in &all {
        let answer = sql(node, &alice, "SELECT id FROM app.board", &[]);
        assert_eq!(answer.status, 403, "{}", answer.text);
    }
    let follower_at = (leader_at + 1) % 3;
    cluster.kill(follower_at);
    let (leader_at, _) = cluster.leader();
    let drop_user = format!("DROP USER {ALICE}");
    let answer = sql(cluster.node(leader_at), &admin, &drop_user, &[]);
    assert_eq!(answer.status, 200, "{}", answer.text);
    cluster.restart(follower_at);
    let all = cluster.live();
    caught_up(&all);
    for node in &all {
        assert_eq!(
            login(node, ALICE, ALICE_PASSWORD).status,
            401,
            "{}",
            node.http
        );
        assert_eq!(login(node, "admin", ADMIN_PASSWORD).status, 200);
    }
}
