//! Clusters of real `strand serve` processes on localhost for the cluster tests: members on
//! QUIC ports chosen before they start (each member must know the others' addresses), one
//! shared secret, and helpers to read `GET /v1/cluster/status`, wait for an agreed leader,
//! kill a member with SIGKILL and start it again on its data directory.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{get, ServerOptions, StrandServer, ADMIN_PASSWORD};

/// How long a cluster may take to agree (an election takes about a second).
pub const AGREE_TIMEOUT: Duration = Duration::from_secs(30);

/// Free UDP ports on 127.0.0.1 (bound and released).
pub fn free_quic_addrs(count: usize) -> Vec<String> {
    let sockets: Vec<UdpSocket> = (0..count)
        .map(|_| UdpSocket::bind("127.0.0.1:0").expect("bind UDP"))
        .collect();
    sockets
        .iter()
        .map(|s| s.local_addr().expect("addr").to_string())
        .collect()
}

/// The options of member `id` (1-based) of a cluster at `quic` with the secret in `secret_file`.
pub fn member_options(id: usize, quic: &[String], secret_file: &std::path::Path) -> ServerOptions {
    let cluster = quic
        .iter()
        .enumerate()
        .map(|(i, addr)| format!("{}={addr}", i + 1))
        .collect::<Vec<_>>()
        .join(",");
    ServerOptions {
        admin_password: Some(ADMIN_PASSWORD.to_string()),
        args: vec![
            "--quic-addr".to_string(),
            quic[id - 1].clone(),
            "--node-id".to_string(),
            id.to_string(),
            "--cluster".to_string(),
            cluster,
            "--cluster-secret-file".to_string(),
            secret_file.display().to_string(),
        ],
    }
}

/// The meta group's status as `node` sees it.
pub fn meta(node: &StrandServer) -> Value {
    let answer = get(&node.url("/v1/cluster/status"));
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.json()["groups"][0].clone()
}

/// `node`'s id in its cluster.
pub fn node_id(node: &StrandServer) -> u64 {
    get(&node.url("/v1/cluster/status")).json()["node_id"]
        .as_u64()
        .expect("node_id")
}

/// Waits until every node of `nodes` names the same leader in the same term, a member of
/// `nodes` that says it leads; returns (leader id, term).
pub fn agreed_leader(nodes: &[&StrandServer]) -> (u64, u64) {
    let deadline = Instant::now() + AGREE_TIMEOUT;
    let ids: Vec<u64> = nodes.iter().map(|n| node_id(n)).collect();
    loop {
        let views: Vec<Value> = nodes.iter().map(|node| meta(node)).collect();
        let leaders: Vec<Option<u64>> = views.iter().map(|v| v["leader"].as_u64()).collect();
        let terms: Vec<u64> = views
            .iter()
            .map(|v| v["term"].as_u64().unwrap_or(0))
            .collect();
        if let Some(Some(leader)) = leaders.first() {
            let agreed =
                leaders.iter().all(|l| *l == Some(*leader)) && terms.iter().all(|t| *t == terms[0]);
            if let (true, Some(at)) = (agreed, ids.iter().position(|i| i == leader)) {
                if views[at]["role"] == "leader" {
                    return (*leader, terms[0]);
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no agreed leader within {AGREE_TIMEOUT:?}: {views:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until every node of `nodes` has applied the leader's whole log.
pub fn caught_up(nodes: &[&StrandServer]) {
    let deadline = Instant::now() + AGREE_TIMEOUT;
    loop {
        let (leader, _) = agreed_leader(nodes);
        let ids: Vec<u64> = nodes.iter().map(|n| node_id(n)).collect();
        let at = ids
            .iter()
            .position(|i| *i == leader)
            .expect("leader is a node");
        let last = meta(nodes[at])["last_log_index"].as_u64();
        let applied: Vec<Option<u64>> = nodes
            .iter()
            .map(|n| meta(n)["applied_index"].as_u64())
            .collect();
        if applied.iter().all(|a| *a >= last && a.is_some()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "nodes did not catch up: leader's last {last:?}, applied {applied:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
