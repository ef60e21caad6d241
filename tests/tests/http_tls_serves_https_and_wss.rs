//! `--http-tls` (issue 20): the HTTP listener speaks TLS with the server's certificate
//! (`<data-dir>/tls/cert.pem`, the QUIC listener's), so a page served over https can call the
//! API and open `wss://`. A client that trusts `cert.pem` runs SQL over https and subscribes
//! over wss; a plain-HTTP client on that port gets no HTTP answer; a client that does not trust
//! the certificate fails its handshake.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};
use strand_tests::{basic, ServerOptions, StrandServer, ADMIN_PASSWORD};
use tungstenite::client::IntoClientRequest;
use tungstenite::Message;

type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn client_config(roots: rustls::RootCertStore) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// A TLS connection to the server's HTTP port that trusts `cert.pem` (or not).
fn connect(server: &StrandServer, trust_server: bool) -> TlsStream {
    let mut roots = rustls::RootCertStore::empty();
    if trust_server {
        let pem = std::fs::read(server.data_dir.join("tls/cert.pem")).expect("cert.pem");
        for cert in CertificateDer::pem_slice_iter(&pem) {
            roots.add(cert.expect("a certificate")).expect("added");
        }
    }
    let name = ServerName::try_from("localhost").expect("name");
    let connection = rustls::ClientConnection::new(client_config(roots), name).expect("client");
    let tcp = TcpStream::connect(server.http).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    rustls::StreamOwned::new(connection, tcp)
}

/// One request over https with `Connection: close`: status and body.
fn https(server: &StrandServer, request: &str) -> (u16, String) {
    let mut stream = connect(server, true);
    stream.write_all(request.as_bytes()).expect("send");
    let mut bytes = Vec::new();
    // The server ends with close_notify; a read error after the answer is not the test's.
    let _ = stream.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    (status, body.to_owned())
}

fn sql(server: &StrandServer, text: &str) -> Value {
    let body = json!({"sql": text}).to_string();
    let request = format!(
        "POST /v1/api/sql HTTP/1.1\r\nHost: localhost\r\nAuthorization: {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        basic("admin", ADMIN_PASSWORD),
        body.len()
    );
    let (status, body) = https(server, &request);
    assert_eq!(status, 200, "{text}: {body}");
    // The body may be chunked; the JSON object is between the first `{` and the last `}`.
    let start = body.find('{').unwrap_or(0);
    let end = body.rfind('}').map_or(body.len(), |i| i + 1);
    serde_json::from_str(&body[start..end]).unwrap_or_else(|e| panic!("{e}: {body}"))
}

fn read_json(socket: &mut tungstenite::WebSocket<TlsStream>) -> Value {
    loop {
        match socket.read().expect("a frame") {
            Message::Text(text) => return serde_json::from_str(text.as_str()).expect("JSON"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

#[test]
fn https_and_wss_with_the_servers_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut options = ServerOptions::with_admin_password(ADMIN_PASSWORD);
    options.args = vec!["--http-tls".into()];
    let server = StrandServer::start(dir.path(), &options);

    let (status, _) = https(
        &server,
        "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200);
    sql(
        &server,
        "CREATE NAMESPACE app; CREATE TABLE app.notes (id BIGINT PRIMARY KEY, body TEXT) \
         WITH (TYPE = 'SHARED'); INSERT INTO app.notes (id, body) VALUES (1, 'over tls')",
    );
    let rows = sql(&server, "SELECT id, body FROM app.notes");
    assert_eq!(
        rows["results"][0]["rows"],
        json!([{"id": 1, "body": "over tls"}])
    );

    let url = format!("wss://localhost:{}/v1/ws", server.http.port());
    let mut request = url.into_client_request().expect("request");
    let authorization = basic("admin", ADMIN_PASSWORD).parse().expect("header");
    request.headers_mut().insert("authorization", authorization);
    let (mut socket, response) =
        tungstenite::client(request, connect(&server, true)).expect("wss upgrade");
    assert_eq!(response.status().as_u16(), 101);
    let subscribe = json!({"type": "subscribe", "subscription":
        {"id": "notes", "sql": "SELECT id, body FROM app.notes"}});
    socket
        .send(Message::text(subscribe.to_string()))
        .expect("send");
    // Credentials on the upgrade: the server confirms them first.
    let authenticated = read_json(&mut socket);
    assert_eq!(authenticated["type"], "auth_success", "{authenticated}");
    let ack = read_json(&mut socket);
    assert_eq!(ack["type"], "subscription_ack", "{ack}");
    let batch = read_json(&mut socket);
    assert_eq!(batch["rows"][0]["body"], "over tls", "{batch}");
    sql(
        &server,
        "INSERT INTO app.notes (id, body) VALUES (2, 'live')",
    );
    let change = read_json(&mut socket);
    assert_eq!(change["type"], "change", "{change}");
    assert_eq!(change["rows"][0]["body"], "live", "{change}");

    // Plain HTTP on the TLS port: no HTTP answer.
    let mut plain = TcpStream::connect(server.http).expect("connect");
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    plain
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(!answer.starts_with(b"HTTP/"), "{answer:?}");

    // A client that does not trust the certificate cannot complete the handshake.
    let mut untrusting = connect(&server, false);
    let refused = untrusting.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let mut sink = [0u8; 16];
    let read = untrusting.read(&mut sink);
    assert!(refused.is_err() || read.is_err(), "{refused:?} {read:?}");
}
