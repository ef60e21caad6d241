//! [`LocalCluster`]: the members of a cluster test, real `strand serve` processes on
//! localhost, each on its own temporary data directory, with QUIC ports chosen before they
//! start (each member names the others) and one secret. Members are killed with SIGKILL and
//! started again on the same directory and QUIC address; their HTTP port is new each time.

use crate::cluster::{agreed_leader, free_quic_addrs, member_options};
use crate::StrandServer;

/// A cluster's members; `nodes[i]` is member `i + 1`, `None` while it is down.
pub struct LocalCluster {
    dirs: Vec<tempfile::TempDir>,
    secret: tempfile::NamedTempFile,
    /// Each member's QUIC (and cluster) address.
    pub quic: Vec<String>,
    /// The running members, by position.
    pub nodes: Vec<Option<StrandServer>>,
}

impl LocalCluster {
    /// Starts `size` members with the cluster secret `secret`.
    pub fn start(size: usize, secret: &str) -> LocalCluster {
        let dirs = (0..size)
            .map(|_| tempfile::tempdir().expect("data dir"))
            .collect();
        let secret_file = tempfile::NamedTempFile::new().expect("secret file");
        std::fs::write(secret_file.path(), secret).expect("write the secret");
        let mut cluster = LocalCluster {
            dirs,
            secret: secret_file,
            quic: free_quic_addrs(size),
            nodes: Vec::new(),
        };
        cluster.nodes = (0..size).map(|at| Some(cluster.launch(at))).collect();
        cluster
    }

    fn launch(&self, at: usize) -> StrandServer {
        let options = member_options(at + 1, &self.quic, self.secret.path());
        StrandServer::start(self.dirs[at].path(), &options)
    }

    /// The running members, in member order.
    pub fn live(&self) -> Vec<&StrandServer> {
        self.nodes.iter().flatten().collect()
    }

    /// Waits until the running members agree on a leader: its position and the term.
    pub fn leader(&self) -> (usize, u64) {
        let (leader, term) = agreed_leader(&self.live());
        (usize::try_from(leader).expect("id") - 1, term)
    }

    /// The running member at `at`.
    pub fn node(&self, at: usize) -> &StrandServer {
        self.nodes[at].as_ref().expect("the member is running")
    }

    /// Kills the member at `at` with SIGKILL.
    pub fn kill(&mut self, at: usize) {
        let node = self.nodes[at].take().expect("the member is running");
        node.stop_with(libc::SIGKILL);
    }

    /// Starts the member at `at` again on its data directory.
    pub fn restart(&mut self, at: usize) {
        assert!(self.nodes[at].is_none(), "member {} is running", at + 1);
        self.nodes[at] = Some(self.launch(at));
    }
}
