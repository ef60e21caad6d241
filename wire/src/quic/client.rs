//! The async Rust client of the QUIC protocol (cargo feature `client`): a quinn connection over
//! rustls (ring, TLS 1.3, ALPN `strand/1`) that trusts only the CA certificate it is given (the
//! server's `<data-dir>/tls/cert.pem`), authenticates with `auth`, then sends one request per
//! bidirectional stream and reads that stream's response frames.
//!
//! Owns: TLS trust, the connection, request ids and reading frames off streams with
//! [`FrameDecoder`]. Does not own: what a request means (the server), retries, producer
//! batching or consumer-group state (callers build those on [`Client::request`]).
//! Needs a tokio runtime.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use quinn::crypto::rustls::QuicClientConfig;
use quinn::VarInt;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use super::close;
use super::{
    Auth, AuthOk, Credentials, EncodeError, ErrorReply, Frame, FrameDecoder, FrameError, Message,
    RequestId, ALPN,
};
use crate::limits::CLIENT_READ_CHUNK_BYTES;

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The CA certificate file is missing, unreadable or holds no certificate.
    #[error("CA certificate {path}: {reason}")]
    CaCert {
        /// The file given.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// rustls refused the configuration or the certificate.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// The TLS configuration has no cipher suite QUIC can use.
    #[error("QUIC TLS configuration: {0}")]
    QuicTls(String),
    /// No local UDP socket could be opened.
    #[error("cannot open a UDP socket: {0}")]
    Bind(#[source] std::io::Error),
    /// The connection could not be started (bad address or server name).
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The server address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: quinn::ConnectError,
    },
    /// The handshake failed or the connection was closed.
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    /// The request could not be written.
    #[error("sending the request: {0}")]
    Write(#[from] quinn::WriteError),
    /// The response could not be read (including a stream reset by the server).
    #[error("reading the response: {0}")]
    Read(#[from] quinn::ReadError),
    /// The request is too large for one frame.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The server sent bytes that are not a frame.
    #[error("the server sent bytes that are not a frame: {0}")]
    Frame(#[from] FrameError),
    /// A [`super::members::Members`] list without any address.
    #[error("no cluster member to connect to")]
    NoMember,
    /// The server answered with an `error` frame.
    #[error("the server answered `{}`: {}", .0.code, .0.message)]
    Rejected(ErrorReply),
    /// The server answered with a frame that does not fit the request.
    #[error("unexpected response: {0}")]
    Unexpected(String),
}

/// A connection to a Strand server.
#[derive(Debug)]
pub struct Client {
    endpoint: quinn::Endpoint,
    connection: quinn::Connection,
    next_request: AtomicU64,
    auth: Option<AuthOk>,
}

/// The QUIC client configuration that trusts only the certificates in `ca_cert_pem` and offers
/// `alpn` (use [`ALPN`]; other values exist to test a server's refusal).
pub fn client_config(ca_cert_pem: &Path, alpn: &[u8]) -> Result<quinn::ClientConfig, ClientError> {
    let ca_error = |reason: String| ClientError::CaCert {
        path: ca_cert_pem.to_path_buf(),
        reason,
    };
    let mut roots = rustls::RootCertStore::empty();
    let certificates =
        CertificateDer::pem_file_iter(ca_cert_pem).map_err(|e| ca_error(e.to_string()))?;
    for certificate in certificates {
        roots.add(certificate.map_err(|e| ca_error(e.to_string()))?)?;
    }
    if roots.is_empty() {
        return Err(ca_error("no certificate in the file".to_string()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![alpn.to_vec()];
    let quic = QuicClientConfig::try_from(tls).map_err(|e| ClientError::QuicTls(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(quic));
    let mut transport = quinn::TransportConfig::default();
    super::socket::tune_transport(&mut transport);
    config.transport_config(Arc::new(transport));
    Ok(config)
}

impl Client {
    /// Connects and authenticates: the client is ready for requests.
    pub async fn connect(
        addr: SocketAddr,
        ca_cert_pem: &Path,
        credentials: Credentials,
    ) -> Result<Client, ClientError> {
        let mut client = Client::open(addr, ca_cert_pem).await?;
        client.authenticate(credentials).await?;
        Ok(client)
    }

    /// [`Client::connect`] with a user name and password.
    pub async fn connect_password(
        addr: SocketAddr,
        ca_cert_pem: &Path,
        username: &str,
        password: &str,
    ) -> Result<Client, ClientError> {
        let credentials = Credentials::Password {
            username: username.to_string(),
            password: password.to_string(),
        };
        Client::connect(addr, ca_cert_pem, credentials).await
    }

    /// [`Client::connect`] with a JWT from the server's login.
    pub async fn connect_token(
        addr: SocketAddr,
        ca_cert_pem: &Path,
        token: &str,
    ) -> Result<Client, ClientError> {
        let credentials = Credentials::Jwt {
            token: token.to_string(),
        };
        Client::connect(addr, ca_cert_pem, credentials).await
    }

    /// Completes the QUIC and TLS handshake only; call [`Client::authenticate`] next. The
    /// server name checked against the certificate is the address's IP.
    pub async fn open(addr: SocketAddr, ca_cert_pem: &Path) -> Result<Client, ClientError> {
        let config = client_config(ca_cert_pem, ALPN)?;
        Client::open_with(addr, &addr.ip().to_string(), config).await
    }

    /// Completes the handshake with a given configuration and server name.
    pub async fn open_with(
        addr: SocketAddr,
        server_name: &str,
        config: quinn::ClientConfig,
    ) -> Result<Client, ClientError> {
        let local: SocketAddr = match addr {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = super::socket::bind_udp(local).map_err(ClientError::Bind)?;
        let runtime = Arc::new(quinn::TokioRuntime);
        let mut endpoint =
            quinn::Endpoint::new(super::socket::endpoint_config(), None, socket, runtime)
                .map_err(ClientError::Bind)?;
        endpoint.set_default_client_config(config);
        let connecting = endpoint
            .connect(addr, server_name)
            .map_err(|source| ClientError::Connect { addr, source })?;
        let connection = connecting.await?;
        tracing::debug!(%addr, "QUIC connection established");
        Ok(Client {
            endpoint,
            connection,
            next_request: AtomicU64::new(1),
            auth: None,
        })
    }

    /// Sends `auth`. On `auth_ok` the connection is authenticated as that user; on `error` the
    /// server closes the connection and this returns [`ClientError::Rejected`].
    pub async fn authenticate(&mut self, credentials: Credentials) -> Result<AuthOk, ClientError> {
        let frames = self.request(Message::Auth(Auth { credentials })).await?;
        match frames.into_iter().next().map(|frame| frame.message) {
            Some(Message::AuthOk(ok)) => {
                self.auth = Some(ok.clone());
                Ok(ok)
            }
            Some(Message::Error(error)) => Err(ClientError::Rejected(error)),
            Some(other) => Err(ClientError::Unexpected(other.name().to_string())),
            None => Err(ClientError::Unexpected("no answer to auth".to_string())),
        }
    }

    /// Who the connection is authenticated as, once it is.
    pub fn auth(&self) -> Option<&AuthOk> {
        self.auth.as_ref()
    }

    /// The underlying quinn connection (for close reasons, stats, raw streams).
    pub fn connection(&self) -> &quinn::Connection {
        &self.connection
    }

    /// Sends one request on a new stream and reads every response frame until the server
    /// ends the stream. An `error` answer is returned as a frame, not as an `Err`. For a
    /// `tail`, which never ends by itself, use [`Client::send`].
    pub async fn request(&self, message: Message) -> Result<Vec<Frame>, ClientError> {
        let mut responses = self.send(message).await?;
        let mut frames = Vec::new();
        while let Some(frame) = responses.next().await? {
            frames.push(frame);
        }
        Ok(frames)
    }

    /// Sends one request on a new stream; its response frames are read from the result.
    pub async fn send(&self, message: Message) -> Result<Responses, ClientError> {
        let request_id = RequestId(self.next_request.fetch_add(1, Ordering::Relaxed));
        let bytes = Frame {
            request_id,
            message,
        }
        .to_bytes()?;
        let mut responses = self.send_bytes(Bytes::from(bytes)).await?;
        responses.request_id = Some(request_id);
        Ok(responses)
    }

    /// Sends raw bytes as a request stream (any bytes, e.g. to test a server's handling of bad
    /// input) and reads the response frames until the stream ends.
    pub async fn request_raw(&self, bytes: &[u8]) -> Result<Vec<Frame>, ClientError> {
        let mut responses = self.send_bytes(Bytes::copy_from_slice(bytes)).await?;
        let mut frames = Vec::new();
        while let Some(frame) = responses.next().await? {
            frames.push(frame);
        }
        Ok(frames)
    }

    async fn send_bytes(&self, bytes: Bytes) -> Result<Responses, ClientError> {
        let (mut send, recv) = self.connection.open_bi().await?;
        // Handed to quinn as it is: a produce batch is not copied again on its way out.
        match send.write_chunk(bytes).await {
            // The server may stop reading once it has seen enough to answer (bad input);
            // its answer is still on the receive side.
            Ok(()) | Err(quinn::WriteError::Stopped(_)) => {}
            Err(error) => return Err(error.into()),
        }
        // Fails only when the stream is already stopped or reset, which the read reports.
        let _ = send.finish();
        Ok(Responses {
            recv,
            decoder: FrameDecoder::new(),
            request_id: None,
            ended: false,
        })
    }

    /// Closes the connection and waits until the server has been told.
    pub async fn close(self) {
        self.connection
            .close(VarInt::from_u32(close::connection::NO_ERROR), b"bye");
        self.endpoint.wait_idle().await;
    }
}

/// The response frames of one request, read as they arrive.
#[derive(Debug)]
pub struct Responses {
    recv: quinn::RecvStream,
    decoder: FrameDecoder,
    request_id: Option<RequestId>,
    ended: bool,
}

impl Responses {
    /// The next response frame, or `None` once the server has ended the stream.
    pub async fn next(&mut self) -> Result<Option<Frame>, ClientError> {
        loop {
            if let Some(frame) = self.decoder.poll_frame()? {
                if let Some(expected) = self.request_id {
                    if frame.request_id != expected {
                        return Err(ClientError::Unexpected(format!(
                            "{} for request {} on the stream of request {}",
                            frame.message.name(),
                            frame.request_id.0,
                            expected.0
                        )));
                    }
                }
                return Ok(Some(frame));
            }
            if self.ended {
                return match self.decoder.buffered_bytes() {
                    0 => Ok(None),
                    left => Err(ClientError::Unexpected(format!(
                        "the stream ended inside a frame ({left} bytes left over)"
                    ))),
                };
            }
            // quinn hands over its received buffers as they are: no copy, no zeroed scratch.
            match self.recv.read_chunk(CLIENT_READ_CHUNK_BYTES, true).await? {
                Some(chunk) => self.decoder.handle_bytes(&chunk.bytes),
                None => self.ended = true,
            }
        }
    }

    /// Stops reading (e.g. ends a `tail`); the server sees [`close::stream::CANCELLED`].
    pub fn cancel(mut self) {
        // Fails only when the stream is already closed, which is what we want.
        let _ = self.recv.stop(VarInt::from_u32(close::stream::CANCELLED));
    }
}
