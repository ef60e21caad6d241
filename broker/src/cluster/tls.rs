//! TLS for node-to-node connections. Every node has its own self-signed certificate
//! (`quic/tls.rs`), so the dialer cannot check the listener's against a root; it takes any
//! certificate whose handshake signature is valid, and the cluster secret's proof
//! (`peer_auth`, bound to this TLS session's keying material) is what authenticates both
//! sides. TLS still encrypts the traffic.

use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::QuicClientConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use super::rpc::CLUSTER_ALPN;
use crate::limits::CLUSTER_IDLE_TIMEOUT_MS;

/// Takes any server certificate; checks only that the handshake was signed by its key.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Why the dialer's TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cluster TLS configuration: {0}")]
pub struct ClusterTlsError(String);

/// The quinn client configuration nodes dial each other with: TLS 1.3, ALPN
/// `strand-cluster/1`, any certificate (see the module comment).
pub fn dialer_config() -> Result<quinn::ClientConfig, ClusterTlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| ClusterTlsError(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    tls.alpn_protocols = vec![CLUSTER_ALPN.to_vec()];
    let quic = QuicClientConfig::try_from(tls).map_err(|e| ClusterTlsError(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(quic));
    let mut transport = quinn::TransportConfig::default();
    // QUIC takes the smaller of the two sides' idle timeouts, so this one holds for the
    // listener too: a dead peer is noticed in seconds, not after the clients' minute.
    let idle = Duration::from_millis(CLUSTER_IDLE_TIMEOUT_MS);
    let idle = quinn::IdleTimeout::try_from(idle).map_err(|e| ClusterTlsError(e.to_string()))?;
    transport.max_idle_timeout(Some(idle));
    transport.keep_alive_interval(Some(Duration::from_millis(CLUSTER_IDLE_TIMEOUT_MS / 3)));
    config.transport_config(Arc::new(transport));
    Ok(config)
}
