//! How two nodes prove to each other that they hold the cluster secret, without sending it:
//! each side sends HMAC-SHA256(secret, role || node id || keying material exported from this
//! connection's TLS session). The keying material is unique to the session, so a proof can
//! be neither replayed on another connection nor relayed by a machine in the middle (whose
//! two sessions export different material). Sans-IO: the connection code moves the bytes.
//!
//! Nodes use self-signed certificates, so TLS alone authenticates nobody here; this proof is
//! what admits a peer, in both directions (the dialer proves first, then the listener).

use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The TLS exporter label of the proof (RFC 5705 / 8446 section 7.5).
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-strand-cluster-auth";
/// Bytes of keying material each proof covers.
pub const EXPORTED_BYTES: usize = 32;

/// Which side of the connection a proof is for, so the listener's answer is never the
/// dialer's proof sent back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerRole {
    /// The node that opened the connection.
    Dialer,
    /// The node that accepted it.
    Listener,
}

/// One side's claim: who it is and its proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerProof {
    /// The sender's node id.
    pub node_id: u64,
    /// HMAC-SHA256 over the role, the node id and the exported keying material.
    pub mac: Vec<u8>,
}

type HmacSha256 = hmac::Hmac<Sha256>;

/// `None` never happens in practice (HMAC takes keys of every length, RFC 2104); it only
/// makes proofs fail rather than panic.
fn keyed(secret: &[u8], role: PeerRole, node_id: u64, exported: &[u8]) -> Option<HmacSha256> {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(secret).ok()?;
    mac.update(match role {
        PeerRole::Dialer => b"dialer\0",
        PeerRole::Listener => b"listen\0",
    });
    mac.update(&node_id.to_be_bytes());
    mac.update(exported);
    Some(mac)
}

/// The proof `node_id` sends in `role` on a connection whose exported material is `exported`.
pub fn prove(secret: &[u8], role: PeerRole, node_id: u64, exported: &[u8]) -> PeerProof {
    let mac = keyed(secret, role, node_id, exported)
        .map(|mac| mac.finalize().into_bytes().to_vec())
        .unwrap_or_default();
    PeerProof { node_id, mac }
}

/// Whether `proof` shows knowledge of `secret` for `role` on this connection (compared in
/// constant time).
pub fn verify(secret: &[u8], role: PeerRole, proof: &PeerProof, exported: &[u8]) -> bool {
    keyed(secret, role, proof.node_id, exported)
        .is_some_and(|mac| mac.verify_slice(&proof.mac).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_holds_only_for_its_secret_role_node_and_session() {
        let secret = b"0123456789abcdef-secret";
        let session = [7u8; EXPORTED_BYTES];
        let proof = prove(secret, PeerRole::Dialer, 2, &session);
        assert!(verify(secret, PeerRole::Dialer, &proof, &session));
        assert!(!verify(
            b"another secret of 16+",
            PeerRole::Dialer,
            &proof,
            &session
        ));
        assert!(!verify(secret, PeerRole::Listener, &proof, &session));
        assert!(!verify(
            secret,
            PeerRole::Dialer,
            &proof,
            &[8u8; EXPORTED_BYTES]
        ));
        let claimed_other = PeerProof {
            node_id: 3,
            ..proof.clone()
        };
        assert!(!verify(secret, PeerRole::Dialer, &claimed_other, &session));
        let truncated = PeerProof {
            mac: proof.mac[..16].to_vec(),
            ..proof
        };
        assert!(!verify(secret, PeerRole::Dialer, &truncated, &session));
    }
}
