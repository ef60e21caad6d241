//! Clusters of real `strand serve` processes on localhost for the cluster tests: members on
//! QUIC ports chosen before they start (each member must know the others' addresses), one
//! shared secret, and helpers to read `GET /v1/cluster/status`, wait for an agreed leader,
//! kill a member with SIGKILL and start it again on its data directory, start a node that
//! joins a running cluster, and add or remove members through whichever node leads.

use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{basic, delete, get, post_json, Answer, ServerOptions, StrandServer, ADMIN_PASSWORD};

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

/// The options of node `id` (1-based) that joins the running cluster of `quic[..id - 1]`
/// (`--join`; its `--cluster` names those members and itself, at `quic[id - 1]`).
pub fn joining_options(id: usize, quic: &[String], secret_file: &std::path::Path) -> ServerOptions {
    let mut options = member_options(id, &quic[..id], secret_file);
    options.args.push("--join".to_string());
    options
}

/// The meta group's status as `node` sees it.
pub fn meta(node: &StrandServer) -> Value {
    groups(node).swap_remove(0)
}

/// Every group's status as `node` sees it, the meta group first.
pub fn groups(node: &StrandServer) -> Vec<Value> {
    let answer = get(&node.url("/v1/cluster/status"));
    assert_eq!(answer.status, 200, "{}", answer.text);
    let groups = answer.json()["groups"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(!groups.is_empty(), "no groups: {}", answer.text);
    groups
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
        let all: Vec<Vec<Value>> = nodes.iter().map(|node| groups(node)).collect();
        if let Some(leader) = agreed_in_every_group(&all, &ids) {
            return (leader, all[0][0]["term"].as_u64().unwrap_or(0));
        }
        assert!(
            Instant::now() < deadline,
            "no agreed leader in every group within {AGREE_TIMEOUT:?}: {all:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The leader every node names in every group (the meta group's leader leads the data
/// groups too), in one term per group, if they agree and that node says it leads each.
fn agreed_in_every_group(all: &[Vec<Value>], ids: &[u64]) -> Option<u64> {
    let leader = all.first()?.first()?["leader"].as_u64()?;
    let at = ids.iter().position(|i| *i == leader)?;
    let count = all[0].len();
    for group in 0..count {
        let term = all[0][group]["term"].as_u64();
        for view in all {
            let seen = view.get(group)?;
            if seen["leader"].as_u64() != Some(leader) || seen["term"].as_u64() != term {
                return None;
            }
        }
        if all[at][group]["role"] != "leader" {
            return None;
        }
    }
    Some(leader)
}

/// Each group's last log index on `node`, the meta group first.
fn last_indexes(node: &StrandServer) -> Vec<Option<u64>> {
    groups(node)
        .iter()
        .map(|g| g["last_log_index"].as_u64())
        .collect()
}

/// Whether every node of `nodes` applied each group through `last` (by group).
fn applied_through(nodes: &[&StrandServer], last: &[Option<u64>]) -> (bool, Vec<Vec<Option<u64>>>) {
    let applied: Vec<Vec<Option<u64>>> = nodes
        .iter()
        .map(|n| {
            groups(n)
                .iter()
                .map(|g| g["applied_index"].as_u64())
                .collect()
        })
        .collect();
    let done = applied.iter().all(|node| {
        node.len() == last.len() && node.iter().zip(last).all(|(a, l)| a.is_some() && *a >= *l)
    });
    (done, applied)
}

/// Waits until every node of `nodes` has applied the leader's whole log, in every group: each
/// group's log as far as the longest of the nodes' (a group's leader, if it is not the
/// agreed one for a moment, may hold entries the others have not applied yet).
pub fn caught_up(nodes: &[&StrandServer]) {
    let deadline = Instant::now() + AGREE_TIMEOUT;
    loop {
        agreed_leader(nodes);
        let mut last: Vec<Option<u64>> = Vec::new();
        for node in nodes {
            let theirs = last_indexes(node);
            last.resize(last.len().max(theirs.len()), None);
            for (mine, their) in last.iter_mut().zip(theirs) {
                *mine = (*mine).max(their);
            }
        }
        let (done, applied) = applied_through(nodes, &last);
        if done {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "nodes did not catch up: longest logs' last {last:?}, applied {applied:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until every node of `nodes` has applied the leader's log as it was when called:
/// [`caught_up`] for a cluster that goes on taking writes.
pub fn caught_up_while_writing(nodes: &[&StrandServer]) {
    let (leader, _) = agreed_leader(nodes);
    let at = nodes
        .iter()
        .position(|n| node_id(n) == leader)
        .expect("leader is a node");
    let last = last_indexes(nodes[at]);
    let deadline = Instant::now() + AGREE_TIMEOUT;
    loop {
        let (done, applied) = applied_through(nodes, &last);
        if done {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "nodes did not catch up: leader's last {last:?}, applied {applied:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// [`member_options`] for a member that listens on `listen` while the others reach it at its
/// entry of `members` (a proxy's address).
pub fn member_options_behind(
    id: usize,
    listen: &str,
    members: &[String],
    secret_file: &std::path::Path,
) -> ServerOptions {
    let mut options = member_options(id, members, secret_file);
    let at = options
        .args
        .iter()
        .position(|a| a == "--quic-addr")
        .expect("--quic-addr")
        + 1;
    options.args[at] = listen.to_string();
    options
}

/// UDP proxies in front of each member's QUIC address that can cut a member off: every
/// datagram to or from a cut member's real address is dropped, in both directions (members
/// dial from the address they listen on). Clients that talk to a member directly still reach
/// it.
pub struct PartitionProxies {
    /// Where the members reach each other (`--cluster`), one per member.
    pub addrs: Vec<String>,
    /// Where each member really listens (`--quic-addr`).
    pub real: Vec<String>,
    cut: CutSet,
    stop: Arc<AtomicBool>,
}

impl PartitionProxies {
    /// Proxies for `count` members, all traffic flowing.
    pub fn start(count: usize) -> PartitionProxies {
        let real = free_quic_addrs(count);
        let cut = Arc::new(Mutex::new(HashSet::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut addrs = Vec::new();
        for target in &real {
            let socket = UdpSocket::bind("127.0.0.1:0").expect("bind proxy");
            addrs.push(socket.local_addr().expect("addr").to_string());
            let target: SocketAddr = target.parse().expect("addr");
            let (cut, stop) = (cut.clone(), stop.clone());
            std::thread::spawn(move || proxy(socket, target, cut, stop));
        }
        PartitionProxies {
            addrs,
            real,
            cut,
            stop,
        }
    }

    /// Cuts member `id` (1-based) off from the others.
    pub fn cut(&self, id: usize) {
        let addr = self.real[id - 1].parse().expect("addr");
        self.cut.lock().expect("cut").insert(addr);
    }

    /// Whether member `id` (1-based) is cut off.
    pub fn is_cut(&self, id: usize) -> bool {
        let addr: SocketAddr = self.real[id - 1].parse().expect("addr");
        self.cut.lock().expect("cut").contains(&addr)
    }

    /// Lets every member's traffic flow again.
    pub fn heal(&self) {
        self.cut.lock().expect("cut").clear();
    }
}

impl Drop for PartitionProxies {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

type CutSet = Arc<Mutex<HashSet<SocketAddr>>>;

/// Forwards datagrams from any source to `target` through one upstream socket per source,
/// and answers back, dropping what involves a cut address.
fn proxy(socket: UdpSocket, target: SocketAddr, cut: CutSet, stop: Arc<AtomicBool>) {
    let socket = Arc::new(socket);
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let mut upstreams: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let mut buffer = vec![0u8; 65_536];
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, source)) = socket.recv_from(&mut buffer) else {
            continue;
        };
        if involves_cut(&cut, target, source) {
            continue;
        }
        let upstream = upstreams.entry(source).or_insert_with(|| {
            let upstream = Arc::new(UdpSocket::bind("127.0.0.1:0").expect("bind"));
            upstream
                .set_read_timeout(Some(Duration::from_millis(100)))
                .expect("timeout");
            let (back, answer_to) = (upstream.clone(), socket.clone());
            let (cut, stop) = (cut.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut buffer = vec![0u8; 65_536];
                while !stop.load(Ordering::Relaxed) {
                    let Ok(n) = back.recv(&mut buffer) else {
                        continue;
                    };
                    if !involves_cut(&cut, target, source) {
                        let _ = answer_to.send_to(&buffer[..n], source);
                    }
                }
            });
            upstream
        });
        let _ = upstream.send_to(&buffer[..n], target);
    }
}

fn involves_cut(cut: &CutSet, target: SocketAddr, source: SocketAddr) -> bool {
    let cut = cut.lock().expect("cut");
    cut.contains(&target) || cut.contains(&source)
}

/// Adds node `id` at `addr` through whichever of `nodes` leads (`POST /v1/cluster/members`),
/// again while the answer is "not now"; the members after the change.
pub fn add_member(nodes: &[&StrandServer], id: usize, addr: &str) -> Value {
    let body = serde_json::json!({"node_id": id, "addr": addr});
    change_members(nodes, |leader, auth| {
        post_json(&leader.url("/v1/cluster/members"), Some(auth), &body)
    })
}

/// Removes node `id` through whichever of `nodes` leads (`DELETE /v1/cluster/members/{id}`),
/// again while the answer is "not now"; the members after the change.
pub fn remove_member(nodes: &[&StrandServer], id: u64) -> Value {
    let path = format!("/v1/cluster/members/{id}");
    let mut unconfirmed = false;
    change_members(nodes, |leader, auth| {
        let answer = delete(&leader.url(&path), Some(auth));
        // An earlier attempt that was not confirmed in time took effect after all.
        if answer.status == 404 && unconfirmed {
            let members = get(&leader.url("/v1/cluster/status")).json()["members"].clone();
            let done = serde_json::json!({"status": "success", "members": members});
            return Answer {
                status: 200,
                content_type: "application/json".to_string(),
                text: done.to_string(),
            };
        }
        unconfirmed |= answer.status == 503;
        answer
    })
}

/// Sends `request` to the node of `nodes` that says it leads until it succeeds: `not_leader`
/// and `unavailable` (503), and another change in progress (409 `membership_conflict`), are
/// "not now"; anything else fails the test.
fn change_members(
    nodes: &[&StrandServer],
    mut request: impl FnMut(&StrandServer, &str) -> Answer,
) -> Value {
    let deadline = Instant::now() + AGREE_TIMEOUT * 2;
    let auth = basic("admin", ADMIN_PASSWORD);
    loop {
        let answer = ask_leader(nodes, |leader| request(leader, &auth));
        if answer.status == 200 {
            return answer.json();
        }
        let in_progress = answer.status == 409 && answer.text.contains("in progress");
        assert!(
            answer.status == 503 || in_progress,
            "membership change refused: {answer:?}"
        );
        assert!(
            Instant::now() < deadline,
            "no membership change within {:?}: {answer:?}",
            AGREE_TIMEOUT * 2
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `request`'s answer from the node of `nodes` that says it leads, asked again (of whichever
/// leads then) while the answer is `not_leader`: leadership may move between the look and
/// the request.
pub fn ask_leader(
    nodes: &[&StrandServer],
    mut request: impl FnMut(&StrandServer) -> Answer,
) -> Answer {
    let deadline = Instant::now() + AGREE_TIMEOUT;
    let mut attempt = 0;
    loop {
        let leaders: Vec<&StrandServer> = nodes
            .iter()
            .copied()
            .filter(|node| meta(node)["role"] == "leader")
            .collect();
        let mut last = None;
        if !leaders.is_empty() {
            attempt += 1;
            let answer = request(leaders[attempt % leaders.len()]);
            if answer.status != 503 || !answer.text.contains("not_leader") {
                return answer;
            }
            last = Some(answer);
        }
        assert!(
            Instant::now() < deadline,
            "no leader answered within {AGREE_TIMEOUT:?}: {last:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
