//! Bad input never crashes the server and always gets a 4xx with the JSON error shape:
//! invalid JSON, missing fields, wrong types, a non-JSON content type, an oversize body,
//! missing or malformed credentials, unknown routes and methods, and bytes that are not HTTP.
//! Afterwards the server still serves.

use std::io::{Read, Write};

use serde_json::json;
use strand_tests::{basic, get, login, post, post_json, raw_request, ServerOptions, StrandServer};

const JSON: Option<&str> = Some("application/json");

#[test]
fn bad_input_gets_json_4xx_and_server_keeps_serving() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = StrandServer::start(dir.path(), &ServerOptions::with_admin_password("pw"));
    let sql = server.url("/v1/api/sql");
    let login_url = server.url("/v1/api/auth/login");
    // A token, not Basic: each Basic request costs an argon2 verification.
    let token = login(&server, "admin", "pw").json()["token"]
        .as_str()
        .map(str::to_string);
    let bearer = format!("Bearer {}", token.expect("login works"));
    let auth = Some(bearer.as_str());

    post(&sql, JSON, auth, b"{\"sql\": ").assert_error(400, "invalid_json");
    post(&sql, JSON, auth, b"").assert_error(400, "invalid_json");
    post(&sql, JSON, auth, b"[1,2]").assert_error(400, "invalid_request");
    let message = post(&sql, JSON, auth, b"{\"params\":[]}").assert_error(400, "invalid_request");
    assert!(message.contains("sql"), "{message}");
    post(&sql, JSON, auth, b"{\"sql\":42}").assert_error(400, "invalid_request");
    post(&sql, JSON, auth, b"{\"sql\":\"  \"}").assert_error(400, "invalid_request");
    post(&sql, Some("text/plain"), auth, b"SELECT 1").assert_error(415, "unsupported_media_type");
    post(&login_url, JSON, None, b"{\"username\":\"admin\"}").assert_error(400, "invalid_request");

    // Over the 1 MiB limit by Content-Length: refused before any of the body is sent.
    for path in ["/v1/api/sql", "/v1/api/auth/login"] {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: strand\r\nAuthorization: {bearer}\r\n\
             Content-Type: application/json\r\nContent-Length: 2097152"
        );
        raw_request(server.http, &head, b"").assert_error(413, "payload_too_large");
    }
    // Over the limit without a length (chunked): refused while reading.
    let head = format!(
        "POST /v1/api/sql HTTP/1.1\r\nHost: strand\r\nAuthorization: {bearer}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked"
    );
    let size = 1024 * 1024 + 1;
    let chunked = [
        format!("{size:x}\r\n").into_bytes(),
        vec![b' '; size],
        b"\r\n0\r\n\r\n".to_vec(),
    ]
    .concat();
    raw_request(server.http, &head, &chunked).assert_error(413, "payload_too_large");

    let statement = json!({"sql": "SELECT 1"});
    post_json(&sql, None, &statement).assert_error(401, "unauthorized");
    let wrong_password = basic("admin", "wrong");
    for header in [
        "Basic !!!",
        "Bearer",
        "Digest x",
        "Bearer not.a.jwt",
        &wrong_password,
    ] {
        post_json(&sql, Some(header), &statement).assert_error(401, "unauthorized");
    }

    get(&server.url("/nope")).assert_error(404, "not_found");
    get(&server.url("/v1/api/sql")).assert_error(405, "method_not_allowed");
    post(&server.url("/health"), JSON, None, b"{}").assert_error(405, "method_not_allowed");

    // Bytes that are not HTTP get an answer or a closed connection, never a crash.
    let mut raw = std::net::TcpStream::connect(server.http).expect("connect");
    raw.write_all(b"\x16\x03\x01garbage\r\n\r\n")
        .expect("write");
    let mut sink = Vec::new();
    let _ = raw.read_to_end(&mut sink);

    let health = get(&server.url("/health"));
    assert_eq!(
        (health.status, health.json()),
        (200, json!({"status": "ok"}))
    );
    let metrics = get(&server.url("/metrics")).text;
    assert!(
        metrics.contains("strand_http_errors_total{code=\"invalid_json\"} 2"),
        "{metrics}"
    );
    assert_eq!(server.terminate().code(), Some(0));
}
