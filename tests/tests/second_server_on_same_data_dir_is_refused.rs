//! Two servers must never write one log: a second `strand serve` on a data directory in
//! use exits with an error naming the problem, and the first keeps serving.

use std::process::Command;

use strand_tests::{get, strand_binary, ServerOptions, StrandServer};

#[test]
fn second_server_on_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = StrandServer::start(dir.path(), &ServerOptions::with_admin_password("pw"));
    let second = Command::new(strand_binary())
        .args([
            "serve",
            "--http-addr",
            "127.0.0.1:0",
            "--quic-addr",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .expect("run a second server");
    assert!(!second.status.success());
    assert!(second.stdout.is_empty(), "no ready line");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("in use by another strand process"),
        "{stderr}"
    );
    assert_eq!(get(&first.url("/health")).status, 200);
}
