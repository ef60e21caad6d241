//! The WebSocket gateway's connection phase (SPEC section 5, docs/realtime.md): `authenticate`
//! with a password or a JWT, or an `Authorization` header on the upgrade request; a wrong
//! password gets `auth_error` and a close with 1008; anything before authentication gets
//! `not_authenticated` and the connection stays open. Malformed frames (bad JSON, no type, an
//! unknown type, a binary frame, wrong field shapes) each get their own error code, and the same
//! connection keeps answering `ping` with `pong`.

use std::time::Duration;

use strand_tests::ws::{admin_ws, WsClient, WsEnd};
use strand_tests::{basic, login, sql_ok, AdminServer};
use strand_wire::{codes, AuthMethod, ClientMessage, ServerMessage, Subscription};
use tungstenite::protocol::frame::coding::CloseCode;

#[test]
fn basic_authenticate_answers_auth_success_with_user_and_role() {
    let setup = setup_with_alice();
    let mut client = WsClient::connect(&setup.server, None);
    client.send(&basic_auth("alice", "alice-pw"));
    expect_auth_success(&mut client, "alice", "user");
    ping_pong(&mut client, "after basic authenticate");

    let mut admin = WsClient::connect(&setup.server, None);
    admin.send(&basic_auth("admin", strand_tests::ADMIN_PASSWORD));
    expect_auth_success(&mut admin, "admin", "system");
}

#[test]
fn jwt_authenticate_with_a_login_token_answers_auth_success() {
    let setup = setup_with_alice();
    let answer = login(&setup.server, "alice", "alice-pw");
    assert_eq!(answer.status, 200, "login: {}", answer.text);
    let token = answer.json()["token"]
        .as_str()
        .expect("login answer has a string token")
        .to_string();
    let mut client = WsClient::connect(&setup.server, None);
    client.send(&ClientMessage::Authenticate {
        method: AuthMethod::Jwt,
        username: None,
        password: None,
        token: Some(token),
    });
    expect_auth_success(&mut client, "alice", "user");
    ping_pong(&mut client, "after jwt authenticate");

    // A token that is not one of the server's is refused like a wrong password.
    let mut forged = WsClient::connect(&setup.server, None);
    forged.send(&ClientMessage::Authenticate {
        method: AuthMethod::Jwt,
        username: None,
        password: None,
        token: Some("eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl".to_string()),
    });
    expect_auth_error_then_policy_close(&mut forged);
}

#[test]
fn authorization_header_on_the_upgrade_starts_the_connection_authenticated() {
    let setup = setup_with_alice();
    let bearer = strand_tests::bearer(&setup.server, "alice", "alice-pw");
    let mut client = WsClient::connect(&setup.server, Some(&bearer));
    // No authenticate sent: the server speaks first.
    expect_auth_success(&mut client, "alice", "user");
    ping_pong(&mut client, "after header authentication");
    client.send(&basic_auth("alice", "alice-pw"));
    expect_error(&mut client, codes::ALREADY_AUTHENTICATED);
    ping_pong(&mut client, "after a second authenticate");

    let mut with_basic = WsClient::connect(&setup.server, Some(&basic("alice", "alice-pw")));
    expect_auth_success(&mut with_basic, "alice", "user");
}

#[test]
fn bad_authorization_header_on_the_upgrade_gets_http_401() {
    let setup = setup_with_alice();
    let refusals = [
        "Bearer not-a-token".to_string(),
        "Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl".to_string(),
        basic("alice", "wrong-pw"),
        basic("nobody", "alice-pw"),
    ];
    for header in &refusals {
        match WsClient::try_connect(&setup.server, Some(header)) {
            Err(error) => assert!(
                error.starts_with("HTTP 401"),
                "upgrade with {header:?}: expected HTTP 401, got {error}"
            ),
            Ok(_) => panic!("upgrade with {header:?} was accepted"),
        }
    }
    // The refusals cost nothing: a good header still works.
    let mut client = WsClient::connect(&setup.server, Some(&basic("alice", "alice-pw")));
    expect_auth_success(&mut client, "alice", "user");
}

#[test]
fn wrong_password_gets_auth_error_and_a_1008_close() {
    let setup = setup_with_alice();
    let mut client = WsClient::connect(&setup.server, None);
    client.send(&basic_auth("alice", "wrong-pw"));
    expect_auth_error_then_policy_close(&mut client);

    let mut client = WsClient::connect(&setup.server, None);
    client.send(&basic_auth("nobody", "alice-pw"));
    expect_auth_error_then_policy_close(&mut client);
}

#[test]
fn messages_before_authentication_get_not_authenticated_and_the_connection_stays_open() {
    let setup = setup_with_alice();
    let mut client = WsClient::connect(&setup.server, None);
    let early = [
        ClientMessage::Subscribe {
            subscription: Subscription {
                id: "early".to_string(),
                sql: "SELECT id FROM app.rooms".to_string(),
                options: Default::default(),
            },
        },
        ClientMessage::NextBatch {
            subscription_id: Some("early".to_string()),
        },
        ClientMessage::Unsubscribe {
            subscription_id: "early".to_string(),
        },
    ];
    for message in &early {
        client.send(message);
        expect_error(&mut client, codes::NOT_AUTHENTICATED);
    }
    client.send(&basic_auth("alice", "alice-pw"));
    expect_auth_success(&mut client, "alice", "user");
    ping_pong(&mut client, "after authenticating late");
}

#[test]
fn ping_before_authentication_is_not_authenticated_either() {
    // docs/realtime.md: "Any other message before authentication: error not_authenticated".
    let setup = setup_with_alice();
    let mut client = WsClient::connect(&setup.server, None);
    client.send(&ClientMessage::Ping);
    expect_error(&mut client, codes::NOT_AUTHENTICATED);
    client.send(&basic_auth("alice", "alice-pw"));
    expect_auth_success(&mut client, "alice", "user");
    ping_pong(&mut client, "after authenticating");
}

#[test]
fn malformed_frames_get_their_own_codes_and_the_connection_keeps_serving() {
    let setup = setup_with_alice();
    let mut client = WsClient::connect(&setup.server, None);
    client.send(&basic_auth("alice", "alice-pw"));
    expect_auth_success(&mut client, "alice", "user");

    let cases: &[(&str, &str)] = &[
        ("this is not json", codes::INVALID_JSON),
        (r#"{"type":"ping""#, codes::INVALID_JSON),
        ("", codes::INVALID_JSON),
        ("[1, 2, 3]", codes::INVALID_JSON),
        ("{}", codes::INVALID_MESSAGE),
        (r#"{"type":5}"#, codes::INVALID_MESSAGE),
        (r#"{"kind":"ping"}"#, codes::INVALID_MESSAGE),
        (r#"{"type":"subscribe"}"#, codes::INVALID_MESSAGE),
        (
            r#"{"type":"subscribe","subscription":{"id":"x","sql":"SELECT id FROM app.rooms","options":{"batch_size":"ten"}}}"#,
            codes::INVALID_MESSAGE,
        ),
        (
            r#"{"type":"subscribe","subscription":{"id":7,"sql":"SELECT id FROM app.rooms"}}"#,
            codes::INVALID_MESSAGE,
        ),
        // (Without subscription_id, next_batch is well formed: it names the one subscription
        // with a batch pending.)
        (
            r#"{"type":"next_batch","subscription_id":7}"#,
            codes::INVALID_MESSAGE,
        ),
        (r#"{"type":"frobnicate"}"#, codes::UNKNOWN_TYPE),
        (r#"{"type":"PING"}"#, codes::UNKNOWN_TYPE),
        (r#"{"type":"pong"}"#, codes::UNKNOWN_TYPE),
    ];
    for (text, code) in cases {
        client.send_text(text);
        let message = expect_error(&mut client, code);
        assert!(!message.is_empty(), "{text:?}: empty error message");
        ping_pong(&mut client, &format!("after {text:?}"));
    }

    client.send_binary(br#"{"type":"ping"}"#.to_vec());
    expect_error(&mut client, codes::INVALID_MESSAGE);
    ping_pong(&mut client, "after a binary frame");

    client.send(&basic_auth("alice", "alice-pw"));
    expect_error(&mut client, codes::ALREADY_AUTHENTICATED);
    ping_pong(&mut client, "after a second authenticate");

    // Still a fully working connection: a subscription is acknowledged.
    client.send(&ClientMessage::Subscribe {
        subscription: Subscription {
            id: "mine".to_string(),
            sql: "SELECT id, body FROM app.notes".to_string(),
            options: Default::default(),
        },
    });
    match client.recv() {
        ServerMessage::SubscriptionAck {
            subscription_id, ..
        } => assert_eq!(subscription_id, "mine"),
        other => panic!("expected subscription_ack after the bad frames, got {other:?}"),
    }
}

// ---- helpers ----

/// A server with `app.rooms` (SHARED), `app.notes` (USER) and alice (role `user`).
fn setup_with_alice() -> AdminServer {
    let setup = AdminServer::start();
    sql_ok(
        &setup.server,
        &setup.admin,
        "CREATE NAMESPACE app;
         CREATE TABLE app.rooms (id BIGINT PRIMARY KEY, name TEXT) WITH (TYPE = 'SHARED');
         CREATE TABLE app.notes (id BIGINT PRIMARY KEY, body TEXT) WITH (TYPE = 'USER');
         CREATE USER 'alice' WITH PASSWORD 'alice-pw' ROLE user",
        &[],
    );
    setup
}

fn basic_auth(user: &str, password: &str) -> ClientMessage {
    ClientMessage::Authenticate {
        method: AuthMethod::Basic,
        username: Some(user.to_string()),
        password: Some(password.to_string()),
        token: None,
    }
}

fn expect_auth_success(client: &mut WsClient, user: &str, role: &str) {
    match client.recv() {
        ServerMessage::AuthSuccess {
            user: got_user,
            role: got_role,
        } => assert_eq!((got_user.as_str(), got_role.as_str()), (user, role)),
        other => panic!("expected auth_success for {user}, got {other:?}"),
    }
}

/// `auth_error` with a message, then the server's close frame with 1008.
fn expect_auth_error_then_policy_close(client: &mut WsClient) {
    match client.recv() {
        ServerMessage::AuthError { message } => assert!(!message.is_empty(), "empty message"),
        other => panic!("expected auth_error, got {other:?}"),
    }
    match client.next_within(Duration::from_secs(5)) {
        Err(WsEnd::Closed(Some((code, _)))) => {
            assert_eq!(code, CloseCode::Policy, "close code after auth_error")
        }
        other => panic!("expected a close with 1008 after auth_error, got {other:?}"),
    }
}

/// An `error` with `code`; returns its message.
fn expect_error(client: &mut WsClient, code: &str) -> String {
    match client.recv() {
        ServerMessage::Error {
            code: got, message, ..
        } => {
            assert_eq!(got, code, "error message: {message}");
            message
        }
        other => panic!("expected error {code}, got {other:?}"),
    }
}

fn ping_pong(client: &mut WsClient, context: &str) {
    client.send(&ClientMessage::Ping);
    match client.recv() {
        ServerMessage::Pong => {}
        other => panic!("{context}: expected pong, got {other:?}"),
    }
}

#[test]
fn a_message_over_the_size_limit_ends_only_its_own_connection() {
    let setup = AdminServer::start();
    let mut bystander = admin_ws(&setup);
    let mut client = admin_ws(&setup);
    let oversized = format!(
        r#"{{"type":"ping","pad":"{}"}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    // The server may close while the frame is still being written.
    let _ = client
        .socket_mut()
        .send(tungstenite::Message::text(oversized));
    match client.next() {
        Err(WsEnd::Closed(_) | WsEnd::Failed(_)) => {}
        other => panic!("expected the connection to end, got {other:?}"),
    }
    bystander.send(&ClientMessage::Ping);
    assert!(matches!(bystander.recv(), ServerMessage::Pong));
    let mut fresh = admin_ws(&setup);
    fresh.send(&ClientMessage::Ping);
    assert!(matches!(fresh.recv(), ServerMessage::Pong));
}
