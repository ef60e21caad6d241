//! `POST /v1/api/auth/login` answers a JWT for the right password; the token (and Basic
//! credentials) authenticate `/v1/api/sql`; wrong passwords, unknown users, garbled, foreign
//! and expired tokens get 401 with the JSON error shape.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use strand_broker::auth::{JwtSecret, TokenKeys};
use strand_broker::{RowsLayout, User, UserIncarnation};
use strand_sql_view::{Role, UserName};
use strand_tests::{basic, login, post_json, ServerOptions, StrandServer};

#[test]
fn login_returns_jwt_and_bad_credentials_get_401() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = StrandServer::start(dir.path(), &ServerOptions::with_admin_password("s3cret"));
    let sql = server.url("/v1/api/sql");
    let statement = json!({"sql": "SELECT 1"});

    let answer = login(&server, "admin", "s3cret");
    assert_eq!(answer.status, 200, "{}", answer.text);
    let body = answer.json();
    assert_eq!(
        (body["user"].as_str(), body["role"].as_str()),
        (Some("admin"), Some("system"))
    );
    let token = body["token"].as_str().expect("token").to_string();
    assert_eq!(token.split('.').count(), 3, "a JWT has three parts");
    let expires_at = body["expires_at"].as_str().expect("expires_at");
    assert!(
        expires_at.len() == 20 && expires_at.ends_with('Z'),
        "{expires_at}"
    );

    // Authenticated requests reach the engine (which does not run SQL yet).
    for credentials in [format!("Bearer {token}"), basic("admin", "s3cret")] {
        post_json(&sql, Some(&credentials), &statement).assert_error(400, "unsupported");
    }

    login(&server, "admin", "wrong").assert_error(401, "unauthorized");
    login(&server, "nobody", "s3cret").assert_error(401, "unauthorized");
    let wrong_basic = basic("admin", "wrong");
    post_json(&sql, Some(&wrong_basic), &statement).assert_error(401, "unauthorized");
    let garbled = format!("Bearer {}x", &token[..token.len() - 2]);
    post_json(&sql, Some(&garbled), &statement).assert_error(401, "unauthorized");

    let admin = User {
        name: UserName::new("admin").expect("name"),
        role: Role::System,
        created_unix_ms: 0,
        incarnation: UserIncarnation(0),
        rows: RowsLayout::ByIncarnation,
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let foreign = TokenKeys::new(&JwtSecret::from_bytes(vec![9; 32]), Duration::from_secs(60));
    let foreign = foreign.issue(&admin, now).expect("sign").token;
    let message = post_json(&sql, Some(&format!("Bearer {foreign}")), &statement)
        .assert_error(401, "unauthorized");
    assert!(message.contains("signature"), "{message}");

    // Signed with the server's own secret, but expired an hour ago.
    let secret = std::fs::read(server.data_dir.join("jwt.secret")).expect("secret");
    let keys = TokenKeys::new(&JwtSecret::from_bytes(secret), Duration::from_secs(60));
    let expired = keys.issue(&admin, now - 3600).expect("sign").token;
    let message = post_json(&sql, Some(&format!("Bearer {expired}")), &statement)
        .assert_error(401, "unauthorized");
    assert!(message.contains("expired"), "{message}");
}
