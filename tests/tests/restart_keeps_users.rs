//! Users and the JWT secret survive a restart: admin logs in with the first start's
//! password (a different STRAND_ADMIN_PASSWORD later is ignored), `jwt.secret` keeps its
//! bytes and mode 0600, and a token issued before the restart still works after it.

use std::os::unix::fs::PermissionsExt;

use serde_json::json;
use strand_tests::{login, post_json, ServerOptions, StrandServer};

#[test]
fn restart_keeps_users() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = StrandServer::start(dir.path(), &ServerOptions::with_admin_password("first"));
    let answer = login(&first, "admin", "first");
    assert_eq!(answer.status, 200, "{}", answer.text);
    let token = answer.json()["token"].as_str().expect("token").to_string();
    let secret_path = first.data_dir.join("jwt.secret");
    let secret = std::fs::read(&secret_path).expect("secret written");
    assert_eq!(secret.len(), 32);
    assert_eq!(first.terminate().code(), Some(0));

    let second = StrandServer::start(dir.path(), &ServerOptions::with_admin_password("second"));
    assert_eq!(login(&second, "admin", "first").status, 200);
    login(&second, "admin", "second").assert_error(401, "unauthorized");
    assert_eq!(std::fs::read(&secret_path).expect("secret kept"), secret);
    let mode = std::fs::metadata(&secret_path)
        .expect("secret")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let sql = second.url("/v1/api/sql");
    let statement = json!({"sql": "SELECT 1"});
    // Past authentication: the placeholder engine answers, not the authenticator.
    post_json(&sql, Some(&format!("Bearer {token}")), &statement).assert_error(400, "unsupported");
    assert_eq!(second.terminate().code(), Some(0));
}
