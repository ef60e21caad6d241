//! Issue 17, defect 4 and defect 13 (item 3): users have incarnations.
//!
//! The bug: a USER table's rows were stored under the user's name alone, so after `DROP USER
//! carol` and `CREATE USER carol` the new carol read (and could overwrite) the old carol's
//! rows. And a token was matched to its user by comparing its `iat` with the user's creation
//! time, so after a restart with the clock a day behind every fresh token was refused ("the
//! token's user no longer exists"), while a token issued with the clock a year ahead stayed
//! valid after the clock was fixed.
//!
//! The fix: a user's incarnation is the `_seq` of the record that created it (as a table's
//! is). A user's rows live in a partition named by name and incarnation, so a re-created user
//! starts with none (the old rows stay on disk, unreachable, like a dropped table's). Tokens
//! carry the incarnation (`inc`) and are matched by it, not by time; `iat` may be at most a
//! few minutes in the future and a token may not live longer than the longest lifetime.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use strand_broker::auth::{JwtSecret, TokenKeys};
use strand_broker::{RowsLayout, User, UserIncarnation};
use strand_sql_view::{Role, UserName};
use strand_tests::ws::{expect_ack, expect_batch, subscribe_message, WsClient};
use strand_tests::{basic, bearer, rows, sql, sql_ok, AdminServer, StrandServer};

const SETUP: &str = "CREATE TABLE app.notes (id BIGINT PRIMARY KEY, body TEXT) \
    WITH (TYPE = 'USER'); \
    CREATE USER 'carol' WITH PASSWORD 'pw' ROLE user";

fn notes(server: &StrandServer, authorization: &str) -> Vec<Value> {
    rows(server, authorization, "SELECT id, body FROM app.notes", &[])
}

#[test]
fn a_recreated_user_starts_with_no_rows_and_old_tokens_do_not_pass() {
    let setup = AdminServer::with_app(SETUP);
    let server = &setup.server;
    let carol = basic("carol", "pw");
    sql_ok(
        server,
        &carol,
        "INSERT INTO app.notes (id, body) VALUES (1, 'old secret'), (2, 'old diary')",
        &[],
    );
    let old_token = bearer(server, "carol", "pw");
    assert_eq!(notes(server, &old_token).len(), 2);

    setup.exec("DROP USER 'carol'; CREATE USER 'carol' WITH PASSWORD 'pw' ROLE user");
    assert_eq!(
        notes(server, &carol),
        Vec::<Value>::new(),
        "no rows of the old carol"
    );
    let mut ws = WsClient::authenticated(server, "carol", "pw");
    ws.send(&subscribe_message(
        "n",
        "SELECT id, body FROM app.notes",
        None,
        None,
    ));
    expect_ack(&mut ws, "n");
    let (snapshot, _) = expect_batch(&mut ws, "n");
    assert!(
        snapshot.is_empty(),
        "a subscription sees none either: {snapshot:?}"
    );

    // The old carol's token is not the new carol's.
    let answer = sql(server, &old_token, "SELECT id FROM app.notes", &[]);
    answer.assert_error(401, "unauthorized");

    // Her own rows: the old keys are free.
    sql_ok(
        server,
        &carol,
        "INSERT INTO app.notes (id, body) VALUES (1, 'new')",
        &[],
    );
    let mine = notes(server, &carol);
    assert_eq!(mine, [json!({"id": 1, "body": "new"})]);
    // Also after a restart (the incarnation is found again from the log).
    drop(ws);
    let data_dir = server.data_dir.clone();
    let AdminServer { server, dir, .. } = setup;
    server.terminate();
    let server = StrandServer::start(
        &data_dir,
        &strand_tests::ServerOptions::with_admin_password(strand_tests::ADMIN_PASSWORD),
    );
    assert_eq!(notes(&server, &carol), [json!({"id": 1, "body": "new"})]);
    drop(server);
    drop(dir);
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// The claims of a token, decoded without checking (the test reads its `inc`).
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has three parts");
    let bytes = URL_SAFE_NO_PAD.decode(payload).expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

#[test]
fn token_validity_does_not_depend_on_the_clock_at_user_creation() {
    let setup = AdminServer::with_app(SETUP);
    let server = &setup.server;
    let token = bearer(server, "carol", "pw");
    let token = token.strip_prefix("Bearer ").expect("bearer");
    let incarnation = claims(token)["inc"]
        .as_u64()
        .expect("the token names an incarnation");
    let carol = User {
        name: UserName::new("carol").expect("name"),
        role: Role::User,
        created_unix_ms: 0,
        incarnation: UserIncarnation(incarnation),
        rows: RowsLayout::ByIncarnation,
    };
    let secret = std::fs::read(server.data_dir.join("jwt.secret")).expect("secret");
    let secret = JwtSecret::from_bytes(secret);
    let day = 86_400;

    // Issued by this server while its clock read a day behind (before carol's creation by
    // the clock), valid for two days: carol's token.
    let keys = TokenKeys::new(&secret, Duration::from_secs(2 * day));
    let behind = keys.issue(&carol, now_s() - day).expect("sign").token;
    let behind = format!("Bearer {behind}");
    assert_eq!(notes(server, &behind), Vec::<Value>::new());

    // Issued while the clock read a year ahead: refused once the clock is right.
    let keys = TokenKeys::new(&secret, Duration::from_secs(day));
    let ahead = keys.issue(&carol, now_s() + 365 * day).expect("sign").token;
    let answer = sql(
        server,
        &format!("Bearer {ahead}"),
        "SELECT id FROM app.notes",
        &[],
    );
    let message = answer.assert_error(401, "unauthorized");
    assert!(message.contains("future"), "{message}");
}
