//! Three real `strand serve --node-id N --cluster ...` processes form a Raft cluster over
//! their QUIC listeners: they agree on one leader of the meta group; when the leader is
//! killed with SIGKILL the two others elect a new one in a later term; the killed node,
//! restarted on its data directory, follows the new leader and catches up with its log. A
//! node that does not know the cluster secret is refused by the others and never learns a
//! leader. A server started without `--cluster` has no cluster status route.

use std::time::{Duration, Instant};

use strand_tests::cluster::{agreed_leader, free_quic_addrs, member_options, meta, AGREE_TIMEOUT};
use strand_tests::{get, ServerOptions, StrandServer, ADMIN_PASSWORD};

#[test]
fn three_nodes_elect_a_leader_and_fail_over_when_it_is_killed() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), "a cluster secret of the test, 32 bytes").unwrap();
    let quic = free_quic_addrs(3);
    let mut nodes: Vec<Option<StrandServer>> = (1..=3)
        .map(|id| {
            let options = member_options(id, &quic, secret.path());
            Some(StrandServer::start(dirs[id - 1].path(), &options))
        })
        .collect();
    let running = |nodes: &[Option<StrandServer>]| -> Vec<usize> {
        (0..nodes.len()).filter(|i| nodes[*i].is_some()).collect()
    };
    let all: Vec<&StrandServer> = nodes.iter().flatten().collect();
    let (first_leader, first_term) = agreed_leader(&all);
    let voters = &meta(all[0])["voters"];
    assert_eq!(voters, &serde_json::json!([1, 2, 3]));

    // Kill the leader: the others elect a new one in a later term.
    let killed = usize::try_from(first_leader).unwrap() - 1;
    nodes[killed].take().unwrap().stop_with(libc::SIGKILL);
    let alive: Vec<&StrandServer> = running(&nodes)
        .into_iter()
        .map(|i| nodes[i].as_ref().unwrap())
        .collect();
    let (second_leader, second_term) = agreed_leader(&alive);
    assert_ne!(second_leader, first_leader);
    assert!(second_term > first_term, "{second_term} > {first_term}");

    // The killed node comes back on its data directory and follows the new leader.
    let options = member_options(killed + 1, &quic, secret.path());
    nodes[killed] = Some(StrandServer::start(dirs[killed].path(), &options));
    let all: Vec<&StrandServer> = nodes.iter().flatten().collect();
    let (leader, _) = agreed_leader(&all);
    let leader_node = all[usize::try_from(leader).unwrap() - 1];
    let deadline = Instant::now() + AGREE_TIMEOUT;
    let returned = nodes[killed].as_ref().unwrap();
    loop {
        let last = meta(leader_node)["last_log_index"].as_u64().unwrap();
        let applied = meta(returned)["applied_index"].as_u64();
        if applied.is_some_and(|a| a >= last) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the returned node did not catch up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The leader sees every follower matched.
    let lag = meta(leader_node)["lag"].clone();
    assert!(lag.is_object(), "{lag}");

    // `strand cluster status` prints the same view.
    let output = std::process::Command::new(strand_tests::strand_binary())
        .args(["cluster", "status", "--url", &leader_node.url("")])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("leader"), "{text}");
    assert!(text.contains(&format!("node {leader}")), "{text}");
}

#[test]
fn a_node_without_the_secret_is_refused_and_never_learns_a_leader() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), "the members' secret, long enough").unwrap();
    let wrong = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(wrong.path(), "an intruder's guess, long enough").unwrap();
    let quic = free_quic_addrs(3);
    let members: Vec<StrandServer> = (1..=2)
        .map(|id| {
            StrandServer::start(
                dirs[id - 1].path(),
                &member_options(id, &quic, secret.path()),
            )
        })
        .collect();
    let intruder = StrandServer::start(dirs[2].path(), &member_options(3, &quic, wrong.path()));
    let pair: Vec<&StrandServer> = members.iter().collect();
    let (leader, _) = agreed_leader(&pair);
    assert!(leader == 1 || leader == 2);
    // Give the intruder several election timeouts: it never hears from the leader.
    std::thread::sleep(Duration::from_secs(3));
    let view = meta(&intruder);
    assert!(view["leader"].is_null() || view["leader"] == 3, "{view}");
    assert_ne!(view["role"], "follower", "{view}");
    let refused = members
        .iter()
        .any(|m| m.stderr().contains("refused a cluster connection"));
    assert!(refused, "the members log the refusal");
}

#[test]
fn a_single_node_has_no_cluster_status() {
    let dir = tempfile::tempdir().unwrap();
    let server = StrandServer::start(
        dir.path(),
        &ServerOptions::with_admin_password(ADMIN_PASSWORD),
    );
    assert_eq!(get(&server.url("/v1/cluster/status")).status, 404);
}
