//! [`Members`]: the Rust client's view of a cluster, a list of member addresses and the one it
//! uses now. A member that cannot be reached, refuses the credentials' connection, or dies
//! is left for the next in the list ([`Members::connect`]); a reader that keeps its last
//! `_seq` and asks the next member for what follows reads on with no gap and no duplicate,
//! because every member holds the same records at the same `_seq`s.
//!
//! Trust: each member has its own certificate, so `ca_bundle` is a PEM file holding every
//! member's certificate (the client trusts any of them, for any member's address).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::client::{Client, ClientError};
use super::data::Credentials;

/// The members a client may use, and which it tries next.
#[derive(Debug, Clone)]
pub struct Members {
    addrs: Vec<SocketAddr>,
    ca_bundle: PathBuf,
    next: usize,
}

impl Members {
    /// `addrs` in the order to try them, trusted through the certificates in `ca_bundle`.
    pub fn new(addrs: Vec<SocketAddr>, ca_bundle: &Path) -> Members {
        Members {
            addrs,
            ca_bundle: ca_bundle.to_path_buf(),
            next: 0,
        }
    }

    /// The addresses, in order.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Connects and authenticates to the next member that takes the connection, starting
    /// after the one the previous call returned: one pass over the list at most. Returns the
    /// client and the member's address; the last member's error if none took it.
    pub async fn connect(
        &mut self,
        credentials: &Credentials,
    ) -> Result<(Client, SocketAddr), ClientError> {
        let mut last = ClientError::NoMember;
        for _ in 0..self.addrs.len() {
            let at = self.addrs[self.next % self.addrs.len()];
            self.next = (self.next + 1) % self.addrs.len();
            match Client::connect(at, &self.ca_bundle, credentials.clone()).await {
                Ok(client) => return Ok((client, at)),
                Err(error) => {
                    tracing::debug!(%at, %error, "member not reachable; trying the next");
                    last = error;
                }
            }
        }
        Err(last)
    }
}
