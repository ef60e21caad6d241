//! The server's TLS identity: a self-signed certificate for `localhost` and `127.0.0.1`,
//! generated with rcgen on first start into `<data-dir>/tls/cert.pem` and `key.pem` (the key
//! mode 0600) and reused on every later start, so clients can keep trusting `cert.pem`; and the
//! rustls server configuration over it (ring, TLS 1.3 only, ALPN `strand/1` only).
//!
//! Owns those two files. Does not own sockets or anything after the handshake.

use crate::cluster::rpc::CLUSTER_ALPN;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use quinn::crypto::rustls::QuicServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use strand_log::storage::{AtomicWrite, FileStorage, Storage};
use strand_wire::quic::ALPN;

/// Directory of the certificate and key inside the data directory.
pub const TLS_DIR: &str = "tls";
/// The certificate (PEM) clients trust with `--ca-cert`.
pub const CERT_FILE: &str = "cert.pem";
/// The private key (PEM, PKCS#8), mode 0600.
pub const KEY_FILE: &str = "key.pem";
/// Names the generated certificate is valid for.
pub const CERT_NAMES: [&str; 2] = ["localhost", "127.0.0.1"];

/// Why the TLS identity could not be loaded, created or configured.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not a usable PEM file: {reason}; fix it, or remove both files of {dir} to generate a new certificate")]
    Pem {
        path: PathBuf,
        dir: PathBuf,
        reason: String,
    },
    #[error("generating the self-signed certificate failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    #[error("QUIC TLS configuration: {0}")]
    Quic(String),
}

/// A certificate chain and its private key.
pub struct TlsIdentity {
    pub cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    pub cert_path: PathBuf,
}

// Hand-written so that the key never reaches a log.
impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("cert_path", &self.cert_path)
            .field("certificates", &self.cert_chain.len())
            .finish_non_exhaustive()
    }
}

impl TlsIdentity {
    /// Load `<data_dir>/tls/{cert,key}.pem`, generating both when either is missing.
    pub fn load_or_create(data_dir: &Path) -> Result<TlsIdentity, TlsError> {
        let dir = data_dir.join(TLS_DIR);
        let cert_path = dir.join(CERT_FILE);
        let key_path = dir.join(KEY_FILE);
        if !(cert_path.exists() && key_path.exists()) {
            create(&dir, &cert_path, &key_path)?;
        }
        load(&dir, cert_path, &key_path)
    }

    /// The quinn server crypto configuration: TLS 1.3 with ring, ALPN `strand/1` only (a client
    /// offering anything else fails the handshake), and `strand-cluster/1` too for a cluster
    /// member (`cluster`: node-to-node traffic shares the listener).
    pub fn quic_server_config(&self, cluster: bool) -> Result<QuicServerConfig, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_single_cert(self.cert_chain.clone(), self.key.clone_key())?;
        tls.alpn_protocols = vec![ALPN.to_vec()];
        if cluster {
            tls.alpn_protocols.push(CLUSTER_ALPN.to_vec());
        }
        QuicServerConfig::try_from(tls).map_err(|e| TlsError::Quic(e.to_string()))
    }

    /// The HTTP listener's TLS configuration under `--http-tls` (https and wss with the same
    /// certificate as QUIC): TLS 1.3 with ring, ALPN `http/1.1` (the shards speak HTTP/1.1).
    pub fn http_server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_single_cert(self.cert_chain.clone(), self.key.clone_key())?;
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(tls))
    }
}

fn load(dir: &Path, cert_path: PathBuf, key_path: &Path) -> Result<TlsIdentity, TlsError> {
    let pem_error = |path: &Path, reason: String| TlsError::Pem {
        path: path.to_path_buf(),
        dir: dir.to_path_buf(),
        reason,
    };
    let cert_chain = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| pem_error(&cert_path, e.to_string()))?;
    if cert_chain.is_empty() {
        return Err(pem_error(&cert_path, "no certificate".to_string()));
    }
    let key =
        PrivateKeyDer::from_pem_file(key_path).map_err(|e| pem_error(key_path, e.to_string()))?;
    if let Ok(metadata) = fs::metadata(key_path) {
        if metadata.permissions().mode() & 0o077 != 0 {
            let path = key_path.display();
            tracing::warn!(%path, "TLS key is readable by other users; chmod 600 it");
        }
    }
    Ok(TlsIdentity {
        cert_chain,
        key,
        cert_path,
    })
}

/// Generate a key pair and certificate and write them, the key first: a present `cert.pem`
/// means both files are complete. Each file is written atomically by the log's storage (a
/// temporary name, synced, renamed, the directory synced).
fn create(dir: &Path, cert_path: &Path, key_path: &Path) -> Result<(), TlsError> {
    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TlsError::Io { path, source }
    };
    fs::create_dir_all(dir).map_err(io_error(dir))?;
    let names: Vec<String> = CERT_NAMES.iter().map(|name| name.to_string()).collect();
    let generated = rcgen::generate_simple_self_signed(names)?;
    let key = generated.key_pair.serialize_pem();
    let private = AtomicWrite::durable().with_mode(0o600);
    FileStorage
        .write_atomically(key_path, key.as_bytes(), private)
        .map_err(io_error(key_path))?;
    let public = AtomicWrite::durable().with_mode(0o644);
    FileStorage
        .write_atomically(cert_path, generated.cert.pem().as_bytes(), public)
        .map_err(io_error(cert_path))?;
    tracing::info!(path = %cert_path.display(), names = ?CERT_NAMES, "created self-signed TLS certificate");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_private_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = TlsIdentity::load_or_create(dir.path()).expect("create");
        let key_path = dir.path().join(TLS_DIR).join(KEY_FILE);
        let mode = fs::metadata(&key_path).expect("key").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let cert = fs::read(&first.cert_path).expect("cert");
        let again = TlsIdentity::load_or_create(dir.path()).expect("load");
        assert_eq!(first.cert_chain, again.cert_chain);
        assert_eq!(cert, fs::read(&again.cert_path).expect("cert"));
        again.quic_server_config(false).expect("usable by quinn");
        again.quic_server_config(true).expect("usable by quinn");
        let files = fs::read_dir(dir.path().join(TLS_DIR))
            .expect("list")
            .count();
        assert_eq!(files, 2, "no temporary file is left behind");
        assert!(!format!("{first:?}").contains("PRIVATE"));
    }

    #[test]
    fn a_damaged_key_is_an_error_not_a_silent_new_certificate() {
        let dir = tempfile::tempdir().expect("tempdir");
        TlsIdentity::load_or_create(dir.path()).expect("create");
        fs::write(dir.path().join(TLS_DIR).join(KEY_FILE), b"garbage").expect("write");
        let error = TlsIdentity::load_or_create(dir.path()).expect_err("bad key");
        assert!(matches!(error, TlsError::Pem { .. }), "{error}");
    }
}
