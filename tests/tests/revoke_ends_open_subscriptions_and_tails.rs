//! Issue 17, defect 3: revocation was not enforced on open streams.
//!
//! The bug: grants were checked when a WebSocket subscription or a QUIC `tail` started, never
//! again, so after `REVOKE` (and even after `DROP USER`) both kept delivering every new row and
//! message to a user who could no longer read them. The fix: the user directory announces
//! every user and grant change; each open stream re-checks its user at once (a WebSocket
//! connection its subscriptions, a tail its topic, also before every push) and ends what its
//! user may no longer read: an error with `permission_revoked` (REVOKE, or ALTER USER ... SET
//! ROLE to a role without the right) or `user_dropped` (DROP USER; the WebSocket connection
//! closes too), which is the stream's last message. Nothing of the table or topic follows.

use std::time::Duration;

use serde_json::json;
use strand_tests::ws::{expect_ack, expect_batch, next_change, subscribe_message, WsClient, WsEnd};
use strand_tests::AdminServer;
use strand_wire::quic::client::{Client, Responses};
use strand_wire::quic::{
    Fetch, Frame, Message, PartitionIndex, Partitioning, ProduceRecord, ProduceTopic, ReadFrom,
};
use strand_wire::ServerMessage;

/// How long a revocation may take to reach an open stream; it happens at once, this is only
/// a bound for a slow, loaded machine.
const END_WITHIN: Duration = Duration::from_secs(10);

fn setup() -> AdminServer {
    let setup = AdminServer::with_app(
        "CREATE TABLE app.rooms (id BIGINT PRIMARY KEY, name TEXT) WITH (TYPE = 'SHARED'); \
         CREATE TABLE app.notes (id BIGINT PRIMARY KEY, body TEXT) WITH (TYPE = 'USER'); \
         CREATE TOPIC app.events WITH (PARTITIONS = 1); \
         CREATE USER 'bob' WITH PASSWORD 'bob-pw' ROLE user; \
         GRANT SELECT ON app.rooms TO 'bob'; \
         GRANT SELECT ON app.events TO 'bob'",
    );
    setup.exec("INSERT INTO app.rooms (id, name) VALUES (1, 'lobby')");
    setup
}

/// A subscription of `client` to `sql` under `id`, past its (one-batch) snapshot.
fn subscribed(client: &mut WsClient, id: &str, sql: &str) {
    client.send(&subscribe_message(id, sql, None, None));
    expect_ack(client, id);
    let (_, control) = expect_batch(client, id);
    assert!(!control.has_more);
}

/// The next message must be the error ending subscription `id` with `code`.
fn expect_end(client: &mut WsClient, id: &str, code: &str) {
    match client.next_within(END_WITHIN) {
        Ok(ServerMessage::Error {
            subscription_id,
            code: got,
            message,
            ..
        }) => {
            assert_eq!(subscription_id.as_deref(), Some(id), "{message}");
            assert_eq!(got, code, "{message}");
        }
        other => panic!("expected the {code} error ending {id}, got {other:?}"),
    }
}

async fn tail(client: &Client) -> Responses {
    let fetch = Fetch {
        topic: "app.events".into(),
        partition: PartitionIndex(0),
        from: ReadFrom::Earliest,
        records_max: 100,
        bytes_max: 1 << 20,
        wait_ms: 0,
    };
    client.send(Message::Tail(fetch)).await.expect("tail")
}

async fn produce(client: &Client, value: &str) {
    let message = Message::ProduceTopic(ProduceTopic {
        topic: "app.events".into(),
        partitioning: Partitioning::Explicit(PartitionIndex(0)),
        idempotence: None,
        records: vec![ProduceRecord {
            key: Vec::new().into(),
            value: value.as_bytes().to_vec().into(),
        }],
    });
    client.request(message).await.expect("produce");
}

async fn next_frame(pushes: &mut Responses) -> Option<Frame> {
    let wait = tokio::time::timeout(END_WITHIN, pushes.next());
    wait.await.expect("a frame in time").expect("read")
}

/// The next frame is a push with `value`.
async fn expect_push(pushes: &mut Responses, value: &str) {
    match next_frame(pushes).await {
        Some(Frame {
            message: Message::TailPush(records),
            ..
        }) => {
            let values: Vec<_> = records.records.iter().map(|r| r.value.to_vec()).collect();
            assert_eq!(values, [value.as_bytes().to_vec()]);
        }
        other => panic!("expected a push of {value}, got {other:?}"),
    }
}

/// The tail ends with an error frame of `code`, and nothing else comes.
async fn expect_tail_end(pushes: &mut Responses, code: &str) {
    match next_frame(pushes).await {
        Some(Frame {
            message: Message::Error(error),
            ..
        }) => assert_eq!(error.code, code, "{}", error.message),
        other => panic!("expected the {code} error ending the tail, got {other:?}"),
    }
    let after = tokio::time::timeout(END_WITHIN, pushes.next()).await;
    assert!(
        matches!(after, Ok(Ok(None)) | Ok(Err(_))),
        "the tail's stream ends after its error: {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_ends_the_subscription_and_the_tail_of_the_revoked_user() {
    let setup = setup();
    let server = &setup.server;
    let admin = server
        .quic_client("admin", strand_tests::ADMIN_PASSWORD)
        .await;
    let bob = server.quic_client("bob", "bob-pw").await;
    let mut ws = WsClient::authenticated(server, "bob", "bob-pw");
    subscribed(&mut ws, "rooms", "SELECT id, name FROM app.rooms");
    setup.exec("INSERT INTO app.rooms (id, name) VALUES (2, 'kitchen')");
    let change = next_change(&mut ws, "rooms");
    assert_eq!(
        change.row["name"],
        json!("kitchen"),
        "live before the revoke"
    );

    produce(&admin, "first").await;
    let mut pushes = tail(&bob).await;
    expect_push(&mut pushes, "first").await;

    setup.exec("REVOKE SELECT ON app.rooms FROM 'bob'");
    expect_end(&mut ws, "rooms", strand_wire::codes::PERMISSION_REVOKED);
    setup.exec("INSERT INTO app.rooms (id, name) VALUES (3, 'attic')");
    ws.expect_silence(Duration::from_millis(500));

    setup.exec("REVOKE SELECT ON app.events FROM 'bob'");
    produce(&admin, "secret").await;
    expect_tail_end(&mut pushes, strand_wire::quic::codes::PERMISSION_REVOKED).await;

    // The connections stay usable for what bob may still do; a new subscription to the
    // revoked table is refused.
    ws.send(&subscribe_message(
        "again",
        "SELECT id FROM app.rooms",
        None,
        None,
    ));
    let refusal = ws.recv_json();
    assert_eq!(refusal["code"], json!("forbidden"), "{refusal}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_user_ends_every_stream_of_the_user_and_closes_its_websocket() {
    let setup = setup();
    let server = &setup.server;
    let admin = server
        .quic_client("admin", strand_tests::ADMIN_PASSWORD)
        .await;
    let bob = server.quic_client("bob", "bob-pw").await;
    let mut ws = WsClient::authenticated(server, "bob", "bob-pw");
    subscribed(&mut ws, "rooms", "SELECT id, name FROM app.rooms");
    subscribed(&mut ws, "notes", "SELECT id, body FROM app.notes");
    produce(&admin, "first").await;
    let mut pushes = tail(&bob).await;
    expect_push(&mut pushes, "first").await;

    setup.exec("DROP USER 'bob'");
    let mut ended: Vec<String> = Vec::new();
    for _ in 0..2 {
        match ws.next_within(END_WITHIN) {
            Ok(ServerMessage::Error {
                subscription_id,
                code,
                ..
            }) => {
                assert_eq!(code, strand_wire::codes::USER_DROPPED);
                ended.extend(subscription_id);
            }
            other => panic!("expected user_dropped errors, got {other:?}"),
        }
    }
    ended.sort();
    assert_eq!(ended, ["notes", "rooms"]);
    match ws.next_within(END_WITHIN) {
        Err(WsEnd::Closed(_)) => {}
        other => panic!("expected the connection to close, got {other:?}"),
    }
    produce(&admin, "after").await;
    expect_tail_end(&mut pushes, strand_wire::quic::codes::USER_DROPPED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_change_that_loses_the_right_ends_streams_and_later_requests() {
    let setup = setup();
    let server = &setup.server;
    setup.exec("CREATE USER 'dora' WITH PASSWORD 'dora-pw' ROLE dba");
    let mut ws = WsClient::authenticated(server, "dora", "dora-pw");
    let quic = server.quic_client("dora", "dora-pw").await;
    // An administrator reads every SHARED table and topic without a grant.
    subscribed(&mut ws, "rooms", "SELECT id, name FROM app.rooms");
    let admin = server
        .quic_client("admin", strand_tests::ADMIN_PASSWORD)
        .await;
    produce(&admin, "first").await;
    let mut pushes = tail(&quic).await;
    // The tail is live (it was checked and is reading) before the role changes; without this
    // the tail request could reach the server after the change and be refused at its start.
    expect_push(&mut pushes, "first").await;
    setup.exec("ALTER USER 'dora' SET ROLE user");
    expect_end(&mut ws, "rooms", strand_wire::codes::PERMISSION_REVOKED);
    expect_tail_end(&mut pushes, strand_wire::quic::codes::PERMISSION_REVOKED).await;
    // Later requests on the connections authenticated as a dba use the current role too.
    let fetch = Fetch {
        topic: "app.events".into(),
        partition: PartitionIndex(0),
        from: ReadFrom::Earliest,
        records_max: 10,
        bytes_max: 1 << 20,
        wait_ms: 0,
    };
    let answer = quic.request(Message::Fetch(fetch)).await.expect("fetch");
    match answer.as_slice() {
        [Frame {
            message: Message::Error(error),
            ..
        }] => assert_eq!(error.code, "forbidden", "{error:?}"),
        other => panic!("expected forbidden, got {other:?}"),
    }
    ws.send(&subscribe_message(
        "again",
        "SELECT id FROM app.rooms",
        None,
        None,
    ));
    let refusal = ws.recv_json();
    assert_eq!(refusal["code"], json!("forbidden"), "{refusal}");
    // A password change ends nothing: the session was authenticated rightly.
    subscribed(&mut ws, "notes", "SELECT id, body FROM app.notes");
    setup.exec("ALTER USER 'dora' SET PASSWORD 'new-pw'");
    ws.expect_silence(Duration::from_millis(500));
    let dora = strand_tests::basic("dora", "new-pw");
    let insert = "INSERT INTO app.notes (id, body) VALUES (1, 'still here')";
    strand_tests::sql_ok(server, &dora, insert, &[]);
    let change = next_change(&mut ws, "notes");
    assert_eq!(change.row["body"], json!("still here"));
}
