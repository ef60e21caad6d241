//! The cluster settings: `--node-id`, `--cluster` (the members' QUIC addresses) and the
//! cluster secret (`--cluster-secret-file`, or `cluster_secret` in the environment or the
//! file, never a flag: a flag shows in every process listing), and `--join` (a new node that
//! waits to be added to a running cluster). No `--cluster`: a single node, as before.

use std::net::SocketAddr;
use std::path::Path;

use super::{invalid, pick, ConfigError, ConfigLayer, Origin};
use crate::limits::{CLUSTER_MEMBERS_MAX, CLUSTER_SECRET_BYTES_MIN};

/// How this node takes part in a cluster.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// This node's id, 1..=1023 (also the node bits of the `_seq`s it issues).
    pub node_id: u64,
    /// Every member's id and the QUIC address the others reach it at, this node included,
    /// ordered by id.
    pub members: Vec<(u64, SocketAddr)>,
    /// What nodes prove to each other that they know before any Raft message is taken.
    pub secret: Vec<u8>,
    /// `--join`: this node joins a running cluster (an administrator adds it) and never
    /// proposes a first membership of its own, which would make it a cluster apart.
    pub join: bool,
}

impl std::fmt::Debug for ClusterSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterSettings")
            .field("node_id", &self.node_id)
            .field("members", &self.members)
            .field("secret", &"<redacted>")
            .field("join", &self.join)
            .finish()
    }
}

/// The cluster settings of the merged layers, `None` without `cluster`.
pub(super) fn cluster(
    layers: &[(Origin, &ConfigLayer)],
) -> Result<Option<ClusterSettings>, ConfigError> {
    let Some((text, origin)) = pick(layers, |l| &l.cluster) else {
        if let Some((true, origin)) = pick(layers, |l| &l.join) {
            return Err(invalid(
                origin,
                "join",
                "true",
                "joining needs --cluster (the running members and this node)",
            ));
        }
        if let Some((id, origin)) = pick(layers, |l| &l.node_id) {
            return Err(invalid(
                origin,
                "node_id",
                &id.to_string(),
                "a node id needs --cluster (the members' addresses)",
            ));
        }
        return Ok(None);
    };
    let members =
        parse_members(&text).map_err(|reason| invalid(origin, "cluster", &text, reason))?;
    let node_id = match pick(layers, |l| &l.node_id) {
        Some((id, origin)) if !members.iter().any(|(m, _)| *m == id) => {
            return Err(invalid(
                origin,
                "node_id",
                &id.to_string(),
                "not one of the ids of --cluster",
            ))
        }
        Some((id, _)) => id,
        None => {
            return Err(invalid(
                origin,
                "cluster",
                &text,
                "--cluster needs --node-id",
            ))
        }
    };
    let secret = match (
        pick(layers, |l| &l.cluster_secret),
        pick(layers, |l| &l.cluster_secret_file),
    ) {
        (Some((text, _)), _) => text.trim().as_bytes().to_vec(),
        (None, Some((path, origin))) => read_secret(&path, origin)?,
        (None, None) => {
            return Err(invalid(
                origin,
                "cluster",
                &text,
                "a cluster needs a secret: STRAND_CLUSTER_SECRET or --cluster-secret-file",
            ))
        }
    };
    if secret.len() < CLUSTER_SECRET_BYTES_MIN {
        return Err(invalid(
            origin,
            "cluster",
            &text,
            "the cluster secret must have at least 16 bytes",
        ));
    }
    Ok(Some(ClusterSettings {
        node_id,
        members,
        secret,
        join: pick(layers, |l| &l.join).is_some_and(|(on, _)| on),
    }))
}

fn read_secret(path: &Path, origin: Origin) -> Result<Vec<u8>, ConfigError> {
    let text = std::fs::read(path).map_err(|source| ConfigError::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    let trimmed = text.trim_ascii();
    if trimmed.is_empty() {
        let shown = path.display().to_string();
        return Err(invalid(
            origin,
            "cluster_secret_file",
            &shown,
            "the file is empty",
        ));
    }
    Ok(trimmed.to_vec())
}

/// `ID=ADDR,ID=ADDR,...`, or `ADDR,ADDR,...` (ids 1, 2, ... in order), sorted by id.
fn parse_members(text: &str) -> Result<Vec<(u64, SocketAddr)>, &'static str> {
    let mut members = Vec::new();
    for (position, item) in text.split(',').map(str::trim).enumerate() {
        let (id, addr) = match item.split_once('=') {
            Some((id, addr)) => (
                id.trim()
                    .parse::<u64>()
                    .map_err(|_| "a member id must be a whole number")?,
                addr.trim(),
            ),
            None => (position as u64 + 1, item),
        };
        if !(1..=u64::from(strand_log::NodeId::MAX)).contains(&id) {
            return Err("member ids must be in 1..=1023");
        }
        let addr = addr
            .parse::<SocketAddr>()
            .map_err(|_| "each member must be IP:PORT (or ID=IP:PORT)")?;
        members.push((id, addr));
    }
    if members.len() > CLUSTER_MEMBERS_MAX {
        return Err("too many members");
    }
    members.sort_unstable();
    if members
        .windows(2)
        .any(|w| w[0].0 == w[1].0 || w[0].1 == w[1].1)
    {
        return Err("member ids and addresses must be distinct");
    }
    Ok(members)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::parse_members;
    use crate::config::{resolve, ConfigLayer};

    #[test]
    fn members_take_ids_in_order_or_as_given() {
        let plain = parse_members("127.0.0.1:7101, 127.0.0.1:7102").unwrap();
        assert_eq!(plain[0].0, 1);
        assert_eq!(plain[1].0, 2);
        let named = parse_members("7=127.0.0.1:7101,3=127.0.0.1:7102").unwrap();
        assert_eq!(named.iter().map(|m| m.0).collect::<Vec<_>>(), [3, 7]);
        assert!(parse_members("0=127.0.0.1:1").is_err());
        assert!(parse_members("1=127.0.0.1:1,1=127.0.0.1:2").is_err());
        assert!(parse_members("1=127.0.0.1:1,2=127.0.0.1:1").is_err());
        assert!(parse_members("localhost:1").is_err());
    }

    #[test]
    fn join_comes_from_every_layer_and_needs_a_cluster() {
        let members = "1=127.0.0.1:7101,2=127.0.0.1:7102,4=127.0.0.1:7104";
        let lookup = |join: &'static str| {
            move |name: &str| match name {
                "STRAND_CLUSTER" => Some(members.to_string()),
                "STRAND_NODE_ID" => Some("4".to_string()),
                "STRAND_CLUSTER_SECRET" => Some("a secret of sixteen bytes".to_string()),
                "STRAND_JOIN" => Some(join.to_string()),
                _ => None,
            }
        };
        let none = ConfigLayer::default();
        let env = ConfigLayer::from_env(lookup("yes")).unwrap();
        let cluster = resolve(&none, &env, &none).unwrap().cluster.unwrap();
        assert!(cluster.join);
        let env = ConfigLayer::from_env(lookup("")).unwrap();
        let cluster = resolve(&none, &env, &none).unwrap().cluster.unwrap();
        assert!(!cluster.join, "unset: form or rejoin as before");
        let file = ConfigLayer::from_toml(Path::new("t.toml"), "join = true").unwrap();
        let cluster = resolve(&none, &env, &file).unwrap().cluster.unwrap();
        assert!(cluster.join);
        let error = resolve(&none, &none, &file).expect_err("join without a cluster");
        assert!(error.to_string().contains("join"), "{error}");
        assert!(ConfigLayer::from_env(lookup("maybe")).is_err());
    }
}
