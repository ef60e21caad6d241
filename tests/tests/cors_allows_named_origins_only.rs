//! Browsers and CORS (docs/http.md, "Browsers and CORS"; issue 20): pages of the origins
//! named by `--cors-origins` get their preflights answered and `Access-Control-Allow-Origin`
//! on answers, and may open the WebSocket gateway; other origins get neither, and their
//! upgrades are refused with 403. The server's own origin needs no flag, and clients that send
//! no `Origin` (curl, the CLI, SDKs outside a browser) are not affected. With no flag, no
//! foreign origin is allowed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use strand_tests::{ServerOptions, StrandServer, ADMIN_PASSWORD};

const APP: &str = "http://app.example:5173";
const EVIL: &str = "https://evil.example";

/// Status and headers (names lower-cased) of one exchange; the body is not read.
struct Head {
    status: u16,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Send `request_line` with `headers` (and `body`), read the answer's head.
fn exchange(http: SocketAddr, request_line: &str, headers: &[(&str, &str)], body: &str) -> Head {
    let mut stream = TcpStream::connect(http).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut request = format!("{request_line}\r\nHost: {http}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).expect("write");
    let mut bytes = Vec::new();
    let mut byte = [0u8; 1];
    while !bytes.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => bytes.push(byte[0]),
            other => panic!("answer head cut short ({other:?}): {bytes:?}"),
        }
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let mut lines = text.lines();
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Head { status, headers }
}

fn preflight(http: SocketAddr, origin: &str) -> Head {
    exchange(
        http,
        "OPTIONS /v1/api/sql HTTP/1.1",
        &[
            ("Origin", origin),
            ("Access-Control-Request-Method", "POST"),
            (
                "Access-Control-Request-Headers",
                "authorization, content-type",
            ),
            ("Connection", "close"),
        ],
        "",
    )
}

fn sql_from(http: SocketAddr, origin: Option<&str>) -> Head {
    let authorization = strand_tests::basic("admin", ADMIN_PASSWORD);
    let mut headers = vec![
        ("Content-Type", "application/json"),
        ("Authorization", authorization.as_str()),
        ("Connection", "close"),
    ];
    if let Some(origin) = origin {
        headers.push(("Origin", origin));
    }
    exchange(
        http,
        "POST /v1/api/sql HTTP/1.1",
        &headers,
        r#"{"sql":"SHOW NAMESPACES"}"#,
    )
}

fn upgrade_from(http: SocketAddr, origin: Option<&str>) -> u16 {
    let mut headers = vec![
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
    ];
    if let Some(origin) = origin {
        headers.push(("Origin", origin));
    }
    exchange(http, "GET /v1/ws HTTP/1.1", &headers, "").status
}

fn server(args: &[&str]) -> (StrandServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut options = ServerOptions::with_admin_password(ADMIN_PASSWORD);
    options.args = args.iter().map(|a| a.to_string()).collect();
    (StrandServer::start(dir.path(), &options), dir)
}

#[test]
fn named_origins_are_answered_and_others_refused() {
    let (server, _dir) = server(&["--cors-origins", &format!("{APP},https://other.example")]);
    let http = server.http;

    let answered = preflight(http, APP);
    assert_eq!(answered.status, 204);
    assert_eq!(answered.header("access-control-allow-origin"), Some(APP));
    let methods = answered
        .header("access-control-allow-methods")
        .unwrap_or("");
    assert!(methods.contains("POST"), "{methods}");
    let allowed_headers = answered
        .header("access-control-allow-headers")
        .unwrap_or("");
    assert!(
        allowed_headers.contains("authorization"),
        "{allowed_headers}"
    );
    assert!(answered.header("access-control-max-age").is_some());

    let refused = preflight(http, EVIL);
    assert_eq!(refused.status, 403);
    assert_eq!(refused.header("access-control-allow-origin"), None);

    let from_app = sql_from(http, Some(APP));
    assert_eq!(from_app.status, 200);
    assert_eq!(from_app.header("access-control-allow-origin"), Some(APP));
    let from_evil = sql_from(http, Some(EVIL));
    assert_eq!(from_evil.header("access-control-allow-origin"), None);
    let no_origin = sql_from(http, None);
    assert_eq!(no_origin.status, 200);
    assert_eq!(no_origin.header("access-control-allow-origin"), None);

    assert_eq!(upgrade_from(http, Some(APP)), 101);
    assert_eq!(upgrade_from(http, Some(EVIL)), 403);
    assert_eq!(upgrade_from(http, None), 101, "clients outside browsers");
    let own = format!("http://{http}");
    assert_eq!(
        upgrade_from(http, Some(&own)),
        101,
        "the server's own pages"
    );
}

#[test]
fn without_the_flag_only_the_servers_own_origin_is_allowed() {
    let (server, _dir) = server(&[]);
    let http = server.http;
    assert_eq!(preflight(http, APP).status, 403);
    assert_eq!(upgrade_from(http, Some(APP)), 403);
    assert_eq!(upgrade_from(http, None), 101);
    let own = format!("http://{http}");
    assert_eq!(upgrade_from(http, Some(&own)), 101);
    assert_eq!(preflight(http, &own).status, 204);
    // A malformed flag stops the server at start with a message naming it.
    let dir = tempfile::tempdir().expect("tempdir");
    let output = std::process::Command::new(strand_tests::strand_binary())
        .args([
            "serve",
            "--http-addr",
            "127.0.0.1:0",
            "--quic-addr",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--cors-origins", "app.example/path"])
        .output()
        .expect("run strand");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--cors-origins"), "{stderr}");
}
