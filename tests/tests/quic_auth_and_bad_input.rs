//! The QUIC listener over a real network: TLS with the certificate the server wrote to
//! `<data-dir>/tls/cert.pem` (and reuses after a restart), ALPN `strand/1` only, `auth` first
//! (password or JWT), and bad input (garbage, oversize lengths, unknown frame types, response
//! frames from a client, requests before auth) answered with an `error` frame on its stream
//! while other connections carry on; a connection that keeps sending bad frames is closed.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use strand_tests::{bearer, ServerOptions, StrandServer};
use strand_wire::quic::client::{client_config, Client, ClientError};
use strand_wire::quic::{close, codes, frame_types, Credentials, Frame, Message, Sql};

const WAIT: Duration = Duration::from_secs(10);

/// The code of the single `error` frame in `frames`.
fn error_code(frames: &[Frame]) -> &str {
    match frames {
        [Frame {
            message: Message::Error(error),
            ..
        }] => &error.code,
        other => panic!("expected one error frame, got {other:?}"),
    }
}

/// A 16-byte header: version 1, flags 0, `frame_type`, request id 7, `length`.
fn header(frame_type: u16, length: u32) -> Vec<u8> {
    let mut bytes = vec![1u8, 0];
    bytes.extend_from_slice(&frame_type.to_le_bytes());
    bytes.extend_from_slice(&7u64.to_le_bytes());
    bytes.extend_from_slice(&length.to_le_bytes());
    bytes
}

async fn admin(server: &StrandServer, ca: &Path) -> Client {
    Client::connect_password(server.quic, ca, "admin", "pw")
        .await
        .expect("admin connects")
}

/// The application code a connection was closed with.
async fn close_code(client: &Client) -> Option<u64> {
    let closed = tokio::time::timeout(WAIT, client.connection().closed())
        .await
        .expect("the server closes the connection");
    match closed {
        quinn::ConnectionError::ApplicationClosed(close) => Some(close.error_code.into_inner()),
        other => panic!("closed by the application expected, got {other}"),
    }
}

fn sql(text: &str) -> Message {
    Message::Sql(Sql {
        sql: text.to_string(),
        params_json: "[]".to_string(),
    })
}

/// The connection still answers a request normally (an SQL `SHOW TOPICS`).
async fn assert_serves(client: &Client, what: &str) {
    let frames = client
        .request(sql("SHOW TOPICS"))
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    match frames.as_slice() {
        [Frame {
            message: Message::SqlResult(result),
            ..
        }] => assert!(
            result.body_json.contains("\"success\""),
            "{what}: {result:?}"
        ),
        other => panic!("{what}: expected sql_result, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_auth_and_bad_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = StrandServer::start(
        &dir.path().join("data"),
        &ServerOptions::with_admin_password("pw"),
    );
    let ca = server.data_dir.join("tls/cert.pem");
    let key_mode = std::fs::metadata(server.data_dir.join("tls/key.pem"))
        .expect("key.pem written")
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600);

    // Good password, then a request.
    let good = admin(&server, &ca).await;
    let me = good.auth().expect("authenticated");
    assert_eq!(
        (me.username.as_str(), me.role.as_str()),
        ("admin", "system")
    );
    assert_serves(&good, "after auth").await;

    // JWT from the HTTP login.
    let token = bearer(&server, "admin", "pw");
    let token = token.trim_start_matches("Bearer ");
    let with_token = Client::connect_token(server.quic, &ca, token)
        .await
        .expect("JWT");
    assert_eq!(with_token.auth().map(|ok| ok.role.as_str()), Some("system"));
    let forged = Client::connect_token(server.quic, &ca, "not.a.jwt").await;
    assert!(matches!(forged, Err(ClientError::Rejected(ref e)) if e.code == codes::AUTH_FAILED));

    // Bad password: `auth_failed`, then the connection is closed.
    let mut bad = Client::open(server.quic, &ca).await.expect("handshake");
    let credentials = Credentials::Password {
        username: "admin".to_string(),
        password: "wrong".to_string(),
    };
    match bad.authenticate(credentials).await {
        Err(ClientError::Rejected(error)) => assert_eq!(error.code, codes::AUTH_FAILED),
        other => panic!("bad password accepted or unanswered: {other:?}"),
    }
    assert_eq!(
        close_code(&bad).await,
        Some(u64::from(close::connection::AUTH_FAILED))
    );

    // Wrong ALPN: the handshake is refused.
    let config = client_config(&ca, b"h3").expect("config");
    let refused = Client::open_with(server.quic, "127.0.0.1", config).await;
    assert!(
        matches!(refused, Err(ClientError::Connection(_))),
        "{refused:?}"
    );

    // A request before auth: `not_authenticated`; auth still works afterwards.
    let mut early = Client::open(server.quic, &ca).await.expect("handshake");
    let frames = early.request(sql("SELECT 1")).await.expect("answered");
    assert_eq!(error_code(&frames), codes::NOT_AUTHENTICATED);
    let credentials = Credentials::Password {
        username: "admin".to_string(),
        password: "pw".to_string(),
    };
    early
        .authenticate(credentials)
        .await
        .expect("auth after a refused request");

    // Bad input on streams of an authenticated connection: each stream fails alone.
    let mut oversize = header(frame_types::PRODUCE_TOPIC, u32::MAX);
    oversize.extend_from_slice(b"and then some");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "garbage",
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            codes::UNSUPPORTED_VERSION,
        ),
        ("oversize", oversize, codes::OVERSIZE_FRAME),
        ("unknown type", header(0x7FFF, 0), codes::UNKNOWN_TYPE),
        (
            "bad payload",
            [header(frame_types::SQL, 3), vec![9, 9, 9]].concat(),
            codes::MALFORMED_FRAME,
        ),
        (
            "truncated",
            header(frame_types::SQL, 100),
            codes::MALFORMED_FRAME,
        ),
    ];
    for (what, bytes, code) in cases {
        let frames = good
            .request_raw(&bytes)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(error_code(&frames), code, "{what}");
        // Another connection is unaffected, and so is this one.
        assert_serves(&with_token, what).await;
    }
    let ack = Message::Error(strand_wire::quic::ErrorReply {
        code: "x".to_string(),
        message: "a client may not send this".to_string(),
    });
    let frames = good.request(ack).await.expect("answered");
    assert_eq!(error_code(&frames), codes::UNEXPECTED_FRAME);
    assert_serves(&good, "after an unexpected frame").await;

    // Repeated abuse closes that connection only.
    let abuser = admin(&server, &ca).await;
    for _ in 0..strand_broker::limits::BAD_FRAMES_PER_CONNECTION_MAX {
        // Answered, or the connection already closed after the last one.
        let _ = abuser.request_raw(b"\xff\xff garbage").await;
    }
    assert_eq!(
        close_code(&abuser).await,
        Some(u64::from(close::connection::PROTOCOL_VIOLATION))
    );
    assert_serves(&with_token, "after another connection's abuse").await;

    // A restart reuses the certificate: clients keep trusting the same file.
    let cert = std::fs::read(&ca).expect("cert");
    good.close().await;
    with_token.close().await;
    early.close().await;
    assert_eq!(server.terminate().code(), Some(0));
    let again = StrandServer::start(&dir.path().join("data"), &ServerOptions::default());
    assert_eq!(
        std::fs::read(&ca).expect("cert"),
        cert,
        "certificate reused"
    );
    let reconnected = admin(&again, &ca).await;
    reconnected.close().await;
    assert_eq!(again.terminate().code(), Some(0));
}
