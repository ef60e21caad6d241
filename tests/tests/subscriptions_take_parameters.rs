//! Subscription parameters (issue 21; docs/websocket.md, "Subscribe"): `options.params` gives
//! `$1`, `$2`, ... their values once, when the subscription is compiled, with the conversions
//! of HTTP parameters. The snapshot, the live changes and a resume all follow the bound
//! filter; a missing or ill-typed parameter refuses the subscription with the SQL error; and
//! `strand subscribe --param` sends them.

use std::process::{Command, Stdio};

use serde_json::{json, Value};
use strand_tests::ws::*;
use strand_tests::{strand_binary, AdminServer, ADMIN_PASSWORD};
use strand_wire::{ChangeType, ClientMessage, ServerMessage, SubscribeOptions, Subscription};

const MESSAGES: &str = "CREATE TABLE app.messages (id BIGINT PRIMARY KEY, conversation_id BIGINT, \
     body TEXT) WITH (TYPE = 'SHARED')";
const CHAT: &str = "SELECT id, body FROM app.messages WHERE conversation_id = $1";

fn subscribe(client: &mut WsClient, id: &str, sql: &str, params: Vec<Value>, from: Option<u64>) {
    client.send(&ClientMessage::Subscribe {
        subscription: Subscription {
            id: id.to_owned(),
            sql: sql.to_owned(),
            options: SubscribeOptions {
                batch_size: None,
                from_seq_id: from.map(strand_wire::SeqText),
                bigint: None,
                params,
                as_of_seq: None,
            },
        },
    });
}

fn ids(rows: &[strand_wire::Row]) -> Vec<i64> {
    let mut ids: Vec<i64> = rows.iter().filter_map(|r| r["id"].as_i64()).collect();
    ids.sort_unstable();
    ids
}

#[test]
fn parameters_bind_the_snapshot_the_changes_and_a_resume() {
    let setup = AdminServer::with_app(MESSAGES);
    setup.exec(
        "INSERT INTO app.messages (id, conversation_id, body) VALUES \
         (1, 1, 'a'), (2, 2, 'b'), (3, 1, 'c')",
    );
    let mut client = admin_ws(&setup);
    // A string parameter for a BIGINT column converts, as over HTTP.
    subscribe(&mut client, "chat", CHAT, vec![json!("1")], None);
    let end = expect_ack(&mut client, "chat");
    let (rows, control) = expect_batch(&mut client, "chat");
    assert!(!control.has_more);
    assert_eq!(ids(&rows), [1, 3], "only conversation 1");

    setup.exec("INSERT INTO app.messages (id, conversation_id, body) VALUES (4, 2, 'd')");
    setup.exec("INSERT INTO app.messages (id, conversation_id, body) VALUES (5, 1, 'e')");
    let change = expect_change(&mut client, "chat", ChangeType::Insert);
    assert_eq!(
        change.row["id"],
        json!(5),
        "conversation 2's row was not sent"
    );
    let five = row_seq(&change.row);
    assert!(five > end);
    client.send(&ClientMessage::Unsubscribe {
        subscription_id: "chat".into(),
    });

    // Resume with the same parameters: only conversation 1's changes after the last _seq.
    setup.exec("INSERT INTO app.messages (id, conversation_id, body) VALUES (6, 2, 'f')");
    setup.exec("UPDATE app.messages SET body = 'a2' WHERE id = 1");
    subscribe(&mut client, "chat", CHAT, vec![json!(1)], Some(five));
    assert_eq!(expect_ack(&mut client, "chat"), five);
    let updated = expect_change(&mut client, "chat", ChangeType::Update);
    assert_eq!(updated.row["body"], json!("a2"));
    client.expect_silence(std::time::Duration::from_millis(300));
}

#[test]
fn missing_or_ill_typed_parameters_refuse_the_subscription() {
    let setup = AdminServer::with_app(MESSAGES);
    let mut client = admin_ws(&setup);
    subscribe(&mut client, "none", CHAT, Vec::new(), None);
    expect_error(&mut client, "none", "invalid_parameter");
    subscribe(&mut client, "text", CHAT, vec![json!("one")], None);
    let refused = client.recv();
    match refused {
        ServerMessage::Error {
            subscription_id,
            code,
            message,
            ..
        } => {
            assert_eq!(subscription_id.as_deref(), Some("text"));
            assert!(
                code == "type_mismatch" || code == "invalid_parameter",
                "{code}: {message}"
            );
            assert!(
                message.contains("$1") || message.contains("one"),
                "{message}"
            );
        }
        other => panic!("expected an error, got {other:?}"),
    }
    // The ids are free again: the same id with a good parameter works.
    subscribe(&mut client, "none", CHAT, vec![json!(1)], None);
    expect_ack(&mut client, "none");
}

#[test]
fn the_cli_sends_its_params() {
    let setup = AdminServer::with_app(MESSAGES);
    setup.exec(
        "INSERT INTO app.messages (id, conversation_id, body) VALUES (1, 1, 'a'), (2, 2, 'b')",
    );
    let url = format!("http://{}", setup.server.http);
    let output = Command::new(strand_binary())
        .args(["subscribe", "--url", &url, "--user", "admin"])
        .args(["--password", ADMIN_PASSWORD, "--param", "2", "--count", "0"])
        .arg(CHAT)
        .env_remove("STRAND_PASSWORD")
        .stdin(Stdio::null())
        .output()
        .expect("run strand subscribe");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows: Vec<Value> = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["kind"] == "snapshot")
        .map(|line| line["row"].clone())
        .collect();
    assert_eq!(rows.len(), 1, "{stdout}");
    assert_eq!(rows[0]["body"], json!("b"));
}
