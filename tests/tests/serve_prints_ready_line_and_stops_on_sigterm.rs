//! `strand serve` on port 0 prints one JSON ready line (keys in the order of
//! docs/configuration.md, real ports, the data directory) and stops cleanly on SIGTERM or SIGINT: exit code 0, ports
//! released, data directory lock released.

use strand_tests::{get, ServerOptions, StrandServer};

#[test]
fn serve_prints_ready_line_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let server = StrandServer::start(&data_dir, &ServerOptions::with_admin_password("pw"));

    let expected_start = format!(
        "{{\"event\":\"ready\",\"http\":\"{}\",\"quic\":",
        server.http
    );
    assert!(
        server.ready_line.starts_with(&expected_start),
        "{}",
        server.ready_line
    );
    assert_ne!(server.http.port(), 0);
    assert_ne!(server.quic.port(), 0);
    assert_eq!(server.data_dir, data_dir.canonicalize().expect("created"));
    let health = get(&server.url("/health"));
    assert_eq!(
        (health.status, health.json()),
        (200, serde_json::json!({"status": "ok"}))
    );

    let http = server.http;
    let status = server.terminate();
    assert_eq!(status.code(), Some(0), "{status:?}");
    std::net::TcpListener::bind(http).expect("the HTTP port is released");

    // The data directory is unlocked and reusable at once.
    let again = StrandServer::start(&data_dir, &ServerOptions::default());
    assert_eq!(again.stop_with(libc::SIGINT).code(), Some(0));
}
