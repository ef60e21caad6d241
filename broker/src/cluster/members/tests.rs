//! Membership changes on a one-node cluster, in process: what is refused (the only voter,
//! an unknown node, a taken id or address) and that a node added while the cluster runs is
//! admitted as a peer although `--cluster` does not name it. Adding a voter for real (a
//! learner that catches up) takes other processes: `tests/tests/cluster_membership_changes.rs`.

use std::sync::Arc;
use std::time::Duration;

use strand_log::{Store, StoreConfig};

use super::{MembershipChange, MembershipError};
use crate::cluster::node::ClusterNode;
use crate::cluster::state_machine::Listener;
use crate::config::ClusterSettings;

fn add(node: u64, addr: std::net::SocketAddr) -> MembershipChange {
    MembershipChange::Add { node, addr }
}

const ADDR_1: &str = "127.0.0.1:17001";
const ADDR_7: &str = "127.0.0.1:17007";

/// Two data groups for table partitions, as a server has (with more of them).
fn test_map() -> crate::cluster::groups::GroupMap {
    crate::cluster::groups::GroupMap::new(2, vec!["t/"])
}

/// Node 1 alone, leading its one-voter cluster.
async fn leading_alone(dir: &std::path::Path) -> ClusterNode {
    let settings = ClusterSettings {
        node_id: 1,
        members: vec![(1, ADDR_1.parse().unwrap())],
        secret: b"a secret of sixteen bytes".to_vec(),
        join: false,
    };
    let store = Arc::new(Store::open(dir.join("store"), StoreConfig::default()).unwrap());
    let node = ClusterNode::start(&settings, dir, store, Listener::default(), test_map())
        .await
        .unwrap();
    node.form().await;
    for _ in 0..200 {
        if node.status().groups.iter().all(|g| g.role == "leader") {
            return node;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "a one-voter cluster did not elect its node: {:?}",
        node.status()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_a_learner_admitted_by_the_membership() {
    let dir = tempfile::tempdir().unwrap();
    let node = leading_alone(dir.path()).await;

    let only = node
        .change_members(MembershipChange::Remove { node: 1 })
        .await;
    assert!(
        matches!(only, Err(MembershipError::LastVoter(1))),
        "{only:?}"
    );
    let unknown = node
        .change_members(MembershipChange::Remove { node: 9 })
        .await;
    assert!(
        matches!(unknown, Err(MembershipError::Unknown(9))),
        "{unknown:?}"
    );
    let taken = node.change_members(add(2, ADDR_1.parse().unwrap())).await;
    assert!(matches!(taken, Err(MembershipError::Taken(_))), "{taken:?}");
    // Adding itself at its own address changes nothing.
    let members = node
        .change_members(add(1, ADDR_1.parse().unwrap()))
        .await
        .unwrap();
    assert_eq!(members.len(), 1);

    // Node 7 never answers: it becomes a learner, and the wait for it to catch up is cut.
    let peers = node.peer_service();
    assert!(!peers.is_member(7));
    let adding = node.change_members(add(7, ADDR_7.parse().unwrap()));
    assert!(tokio::time::timeout(Duration::from_millis(500), adding)
        .await
        .is_err());
    let members = node.members();
    assert!(
        members.iter().any(|m| m.id == 7 && m.role == "learner"),
        "{members:?}"
    );
    assert!(peers.is_member(7), "a learner of the membership is a peer");
    let moved = node
        .change_members(add(7, "127.0.0.1:17077".parse().unwrap()))
        .await;
    assert!(matches!(moved, Err(MembershipError::Taken(_))), "{moved:?}");

    let members = node
        .change_members(MembershipChange::Remove { node: 7 })
        .await
        .unwrap();
    assert_eq!(members.iter().map(|m| m.id).collect::<Vec<_>>(), [1]);
    assert!(!peers.is_member(7), "a removed node is no peer");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_node_forms_no_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let settings = ClusterSettings {
        node_id: 4,
        members: vec![(1, ADDR_1.parse().unwrap()), (4, ADDR_7.parse().unwrap())],
        secret: b"a secret of sixteen bytes".to_vec(),
        join: true,
    };
    let store = Arc::new(Store::open(dir.path().join("store"), StoreConfig::default()).unwrap());
    let node = ClusterNode::start(
        &settings,
        dir.path(),
        store,
        Listener::default(),
        test_map(),
    )
    .await
    .unwrap();
    node.form().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = node.status();
    assert!(status.groups[0].voters.is_empty(), "{status:?}");
    assert_eq!(status.groups[0].leader, None);
    let refused = node
        .change_members(MembershipChange::Remove { node: 1 })
        .await;
    assert!(
        matches!(refused, Err(MembershipError::NotLeader { leader: None })),
        "{refused:?}"
    );
    node.shutdown().await;
}
