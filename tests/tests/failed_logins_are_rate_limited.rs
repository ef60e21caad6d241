//! Issue 17, defect 11: no brute-force limit.
//!
//! The bug: password guesses over Basic credentials, `/v1/api/auth/login` and WebSocket
//! `authenticate` were answered as fast as argon2 allowed (45-108 per second), never with a
//! 429 or a lockout. The fix: failed password checks are counted per user name and per source
//! address (`--auth-failures-per-user-max`, `--auth-failures-per-address-max`, within
//! `--auth-failure-window-ms`); past either limit, password attempts are refused before any
//! argon2 verification with 429 `too_many_attempts` and `Retry-After` over HTTP, and an error
//! with code `too_many_attempts` over WebSocket and QUIC. Credentials already verified (the
//! Basic cache) keep working, and other names (from another address) are not affected.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use strand_tests::ws::WsClient;
use strand_tests::{basic, login, sql, sql_ok, ServerOptions, StrandServer, ADMIN_PASSWORD};
use strand_wire::quic::client::{Client, ClientError};
use strand_wire::{AuthMethod, ClientMessage, ServerMessage};

const SELECT: &str = "SHOW NAMESPACES";

fn start(dir: &tempfile::TempDir, flags: &[&str]) -> StrandServer {
    let mut options = ServerOptions::with_admin_password(ADMIN_PASSWORD);
    options.args = flags.iter().map(|flag| flag.to_string()).collect();
    let server = StrandServer::start(&dir.path().join("data"), &options);
    let admin = basic("admin", ADMIN_PASSWORD);
    sql_ok(
        &server,
        &admin,
        "CREATE USER 'erin' WITH PASSWORD 'right' ROLE user; \
         CREATE USER 'frank' WITH PASSWORD 'franks' ROLE user",
        &[],
    );
    server
}

/// The status line and headers of a login with these credentials (raw, to read headers).
fn login_head(addr: SocketAddr, user: &str, password: &str) -> String {
    let body = serde_json::json!({"username": user, "password": password}).to_string();
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let request = format!(
        "POST /v1/api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("write");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn ws_auth_error_code(server: &StrandServer, user: &str, password: &str) -> String {
    let mut client = WsClient::connect(server, None);
    client.send(&ClientMessage::Authenticate {
        method: AuthMethod::Basic,
        username: Some(user.to_owned()),
        password: Some(password.to_owned()),
        token: None,
    });
    match client.recv() {
        ServerMessage::Error { code, .. } => code,
        ServerMessage::AuthError { message } => format!("auth_error: {message}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn quic_error_code(server: &StrandServer, user: &str, password: &str) -> String {
    let ca = server.data_dir.join("tls/cert.pem");
    match Client::connect_password(server.quic, &ca, user, password).await {
        Err(ClientError::Rejected(error)) => error.code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_with_too_many_failures_is_refused_on_every_path_for_a_while() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(
        &dir,
        &[
            "--auth-failures-per-user-max",
            "3",
            "--auth-failure-window-ms",
            "600000",
        ],
    );
    // Verified before the attack: cached, so it keeps working during it.
    let erin = basic("erin", "right");
    sql_ok(&server, &erin, SELECT, &[]);

    for _ in 0..3 {
        login(&server, "erin", "guess").assert_error(401, "unauthorized");
    }
    // Now even the right password is refused: a guesser cannot tell it was right.
    let head = login_head(server.http, "erin", "right");
    assert!(head.starts_with("HTTP/1.1 429"), "{head}");
    let retry_after = head
        .lines()
        .find_map(|line| line.strip_prefix("retry-after: "))
        .and_then(|seconds| seconds.trim().parse::<u64>().ok());
    assert!(
        retry_after.is_some_and(|s| (1..=600).contains(&s)),
        "a Retry-After of at most the window: {head}"
    );
    login(&server, "erin", "right").assert_error(429, "too_many_attempts");
    let guess = basic("erin", "guess2");
    sql(&server, &guess, SELECT, &[]).assert_error(429, "too_many_attempts");
    assert_eq!(
        ws_auth_error_code(&server, "erin", "guess3"),
        "too_many_attempts"
    );
    assert_eq!(
        quic_error_code(&server, "erin", "guess4").await,
        "too_many_attempts"
    );

    // The cached credentials, and other names, are not affected.
    sql_ok(&server, &erin, SELECT, &[]);
    assert_eq!(login(&server, "frank", "franks").status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_with_too_many_failures_is_refused_for_every_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(
        &dir,
        &[
            "--auth-failures-per-address-max",
            "4",
            "--auth-failures-per-user-max",
            "100",
        ],
    );
    // Successes do not count against the address.
    for _ in 0..6 {
        assert_eq!(login(&server, "frank", "franks").status, 200);
    }
    for n in 0..4 {
        login(&server, &format!("nobody{n}"), "guess").assert_error(401, "unauthorized");
    }
    login(&server, "frank", "franks").assert_error(429, "too_many_attempts");
    assert_eq!(
        quic_error_code(&server, "erin", "right").await,
        "too_many_attempts"
    );
}
