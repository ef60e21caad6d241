//! The spawned servers of `strand-bench cluster`: a three-member Raft cluster on 127.0.0.1
//! (QUIC ports chosen before the members start, since each must know the others' addresses;
//! one shared secret in a file), what each member says in `GET /v1/cluster/status`, and the
//! kill (SIGKILL) and restart of a member on its data directory.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use serde_json::Value;

use crate::cli::Fsync;
use crate::http::HttpConnection;
use crate::spawn::{Relaunch, StrandProcess, ADMIN_PASSWORD};
use crate::target::Target;

/// How long a cluster may take to agree on a leader or catch up (an election takes about a
/// second; a restarted member replays its log first).
const AGREE_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the status is polled while waiting.
const POLL: Duration = Duration::from_millis(50);
const ROUTE_STATUS: &str = "/v1/cluster/status";
/// The members' shared secret (a bench cluster on 127.0.0.1: nothing to protect).
const SECRET: &str = "strand-bench cluster secret, localhost only";

/// One member: running, or killed and waiting to start again.
pub struct Member {
    /// Its Raft node id (1-based).
    pub id: u64,
    pub quic: SocketAddr,
    process: Option<StrandProcess>,
    stopped: Option<Relaunch>,
    ca_cert: PathBuf,
}

impl Member {
    pub fn running(&self) -> bool {
        self.process.is_some()
    }

    fn http(&self) -> anyhow::Result<SocketAddr> {
        Ok(self
            .process
            .as_ref()
            .with_context(|| format!("member {} is not running", self.id))?
            .http)
    }

    /// Every group's status as this member sees it (the meta group first).
    pub fn groups(&self) -> anyhow::Result<Vec<Value>> {
        let mut connection = HttpConnection::connect(self.http()?, None)?;
        let (status, body) = connection.get(ROUTE_STATUS)?;
        ensure!(status == 200, "{ROUTE_STATUS} answered {status}");
        let status: Value = serde_json::from_slice(body).context("cluster status")?;
        let groups = status["groups"].as_array().cloned().unwrap_or_default();
        ensure!(!groups.is_empty(), "{ROUTE_STATUS} lists no group");
        Ok(groups)
    }

    /// A [`Target`] for this member (setup over HTTP, QUIC clients).
    pub fn target(&self, fsync: Fsync) -> anyhow::Result<Target> {
        Ok(Target {
            fsync: Some(fsync),
            http: self.http()?,
            quic: Some(self.quic),
            ca_cert: Some(self.ca_cert.clone()),
            user: "admin".to_string(),
            password: ADMIN_PASSWORD.to_string(),
            process: None,
        })
    }

    pub fn ca_cert(&self) -> &Path {
        &self.ca_cert
    }

    pub fn stderr(&self) -> String {
        self.process
            .as_ref()
            .map_or_else(String::new, StrandProcess::stderr)
    }
}

/// A running cluster of spawned members.
pub struct Cluster {
    pub members: Vec<Member>,
}

impl Cluster {
    /// Starts `size` members under `dir`, each with `fsync`.
    pub fn start(binary: &Path, dir: &Path, fsync: Fsync, size: usize) -> anyhow::Result<Cluster> {
        std::fs::create_dir_all(dir)?;
        let secret_file = dir.join("cluster-secret");
        std::fs::write(&secret_file, SECRET)?;
        let quic = free_udp_addrs(size)?;
        let cluster = quic
            .iter()
            .enumerate()
            .map(|(i, addr)| format!("{}={addr}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let mut members = Vec::new();
        for (i, &addr) in quic.iter().enumerate() {
            let id = i as u64 + 1;
            let args = [
                "--node-id".to_string(),
                id.to_string(),
                "--cluster".to_string(),
                cluster.clone(),
                "--cluster-secret-file".to_string(),
                secret_file.display().to_string(),
            ];
            let data_dir = dir.join(format!("member-{id}"));
            let process = StrandProcess::start_at(binary, &data_dir, fsync, addr, &args)
                .with_context(|| format!("start member {id}"))?;
            members.push(Member {
                id,
                quic: addr,
                ca_cert: process.ca_cert(),
                process: Some(process),
                stopped: None,
            });
        }
        Ok(Cluster { members })
    }

    pub fn member(&self, id: u64) -> anyhow::Result<&Member> {
        self.members
            .iter()
            .find(|m| m.id == id)
            .with_context(|| format!("no member {id}"))
    }

    /// Waits until, in every group, every running member names the same leader in the same
    /// term, that leader says it leads, and it is the meta group's leader (the one that takes
    /// writes); returns the meta group's (leader id, term).
    pub fn agreed_leader(&self) -> anyhow::Result<(u64, u64)> {
        let deadline = Instant::now() + AGREE_TIMEOUT;
        loop {
            if let Some(agreed) = self.agreement()? {
                return Ok(agreed);
            }
            if Instant::now() > deadline {
                bail!("no agreed leader of every group within {AGREE_TIMEOUT:?}");
            }
            std::thread::sleep(POLL);
        }
    }

    /// Each running member's view of every group, or `None` while one does not answer (a
    /// member still starting).
    fn views(&self) -> Option<Vec<(u64, Vec<Value>)>> {
        let mut views = Vec::new();
        for member in self.members.iter().filter(|m| m.running()) {
            views.push((member.id, member.groups().ok()?));
        }
        Some(views)
    }

    fn agreement(&self) -> anyhow::Result<Option<(u64, u64)>> {
        let Some(views) = self.views() else {
            return Ok(None);
        };
        let Some(first) = views.first() else {
            return Ok(None);
        };
        let mut meta = None;
        for group in 0..first.1.len() {
            let Some(agreed) = group_agreement(&views, group) else {
                return Ok(None);
            };
            match meta {
                None => meta = Some(agreed),
                Some((leader, _)) if leader != agreed.0 => return Ok(None),
                Some(_) => {}
            }
        }
        Ok(meta)
    }

    /// Waits until every group agrees on its leader (the meta group's) and every running
    /// member has applied the leader's whole log of every group.
    pub fn caught_up(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + AGREE_TIMEOUT;
        loop {
            let (leader, _) = self.agreed_leader()?;
            let last: Vec<Option<u64>> = (self.member(leader)?.groups()?.iter())
                .map(|group| group["last_log_index"].as_u64())
                .collect();
            let mut behind = Vec::new();
            for member in self.members.iter().filter(|m| m.running()) {
                for (group, view) in member.groups()?.iter().enumerate() {
                    let applied = view["applied_index"].as_u64();
                    let wanted = last.get(group).copied().flatten();
                    if wanted.is_none() || applied < wanted {
                        behind.push((member.id, group, applied, wanted));
                    }
                }
            }
            if behind.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "members did not catch up (member, group, applied, leader's last): {behind:?}"
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// SIGKILLs member `id`.
    pub fn kill(&mut self, id: u64) -> anyhow::Result<()> {
        let member = self.member_mut(id)?;
        let process = member.process.take().context("member already down")?;
        member.stopped = Some(process.kill()?);
        Ok(())
    }

    /// Starts killed member `id` again on its data directory and QUIC address.
    pub fn restart(&mut self, id: u64) -> anyhow::Result<()> {
        let member = self.member_mut(id)?;
        let again = member.stopped.take().context("member is not down")?;
        member.process = Some(again.start()?);
        Ok(())
    }

    fn member_mut(&mut self, id: u64) -> anyhow::Result<&mut Member> {
        self.members
            .iter_mut()
            .find(|m| m.id == id)
            .with_context(|| format!("no member {id}"))
    }

    /// Every running member's stderr, for a failure's context.
    pub fn stderr(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("--- member {} ---\n{}", m.id, m.stderr()))
            .collect()
    }
}

/// `count` free UDP addresses on 127.0.0.1: bound together (so they differ), then released
/// for the members to bind.
fn free_udp_addrs(count: usize) -> anyhow::Result<Vec<SocketAddr>> {
    let sockets = (0..count)
        .map(|_| UdpSocket::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .context("bind a UDP port")?;
    sockets
        .iter()
        .map(|s| s.local_addr().context("UDP address"))
        .collect()
}

/// Group `group`'s (leader, term) if every view names the same leader in the same term and
/// that leader's own view says it leads.
fn group_agreement(views: &[(u64, Vec<Value>)], group: usize) -> Option<(u64, u64)> {
    let of = |view: &Vec<Value>| view.get(group).cloned().unwrap_or(Value::Null);
    let first = of(&views.first()?.1);
    let leader = first["leader"].as_u64()?;
    let term = first["term"].as_u64();
    let agreed = views.iter().all(|(_, view)| {
        let seen = of(view);
        seen["leader"].as_u64() == Some(leader) && seen["term"].as_u64() == term
    });
    let leads = views
        .iter()
        .any(|(id, view)| *id == leader && of(view)["role"] == "leader");
    (agreed && leads).then(|| (leader, term.unwrap_or(0)))
}
