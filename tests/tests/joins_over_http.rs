//! One-shot joins through a real server (issue 21; docs/sql.md, "Joins"): a USER table joined
//! to a SHARED lookup table gives each user only their own rows; LEFT JOIN keeps rows without
//! a partner; `*` names shared columns by table; grouping over a join; a SHARED table the
//! caller may not read refuses the whole join; precise errors.

use serde_json::json;
use strand_tests::ws::*;
use strand_tests::{bearer, rows, sql, AdminServer};

const SCHEMA: &str =
    "CREATE TABLE app.channels (id BIGINT PRIMARY KEY, name TEXT, private BOOLEAN) \
     WITH (TYPE = 'SHARED'); \
     CREATE TABLE app.messages (id BIGINT PRIMARY KEY, channel_id BIGINT, body TEXT) \
     WITH (TYPE = 'USER')";

fn setup() -> AdminServer {
    let setup = AdminServer::with_app(SCHEMA);
    setup.exec(
        "INSERT INTO app.channels (id, name, private) VALUES (1, 'general', false), \
         (2, 'random', false), (3, 'secret', true); \
         CREATE USER 'ann' WITH PASSWORD 'pw-ann'; CREATE USER 'bob' WITH PASSWORD 'pw-bob'; \
         GRANT SELECT ON app.channels TO 'ann'",
    );
    setup
}

#[test]
fn a_users_messages_join_the_shared_channels() {
    let setup = setup();
    let ann = bearer(&setup.server, "ann", "pw-ann");
    let bob = bearer(&setup.server, "bob", "pw-bob");
    let insert = "INSERT INTO app.messages (id, channel_id, body) VALUES ($1, $2, $3)";
    for (id, channel, body) in [(1, 1, "hi"), (2, 2, "lol"), (3, 1, "again"), (4, 9, "lost")] {
        rows(
            &setup.server,
            &ann,
            insert,
            &[json!(id), json!(channel), json!(body)],
        );
    }
    rows(
        &setup.server,
        &bob,
        insert,
        &[json!(1), json!(3), json!("bob's")],
    );
    let query = |text: &str| rows(&setup.server, &ann, text, &[]);
    assert_eq!(
        query(
            "SELECT m.id, c.name, m.body FROM app.messages m JOIN app.channels c \
             ON m.channel_id = c.id ORDER BY m.id"
        ),
        [
            json!({"id": 1, "name": "general", "body": "hi"}),
            json!({"id": 2, "name": "random", "body": "lol"}),
            json!({"id": 3, "name": "general", "body": "again"}),
        ]
    );
    assert_eq!(
        query(
            "SELECT m.id, c.name FROM app.messages AS m LEFT JOIN app.channels AS c \
             ON c.id = m.channel_id WHERE m.id > 2 ORDER BY m.id DESC"
        ),
        [
            json!({"id": 4, "name": null}),
            json!({"id": 3, "name": "general"})
        ]
    );
    assert_eq!(
        query("SELECT * FROM app.messages m JOIN app.channels c ON m.channel_id = c.id WHERE m.id = 2"),
        [json!({"m.id": 2, "channel_id": 2, "body": "lol", "c.id": 2, "name": "random",
                "private": false})]
    );
    assert_eq!(
        query(
            "SELECT c.name, COUNT(*) AS n FROM app.messages m JOIN app.channels c \
             ON m.channel_id = c.id GROUP BY c.name ORDER BY n DESC, c.name"
        ),
        [
            json!({"name": "general", "n": 2}),
            json!({"name": "random", "n": 1})
        ]
    );
    // Bob may not read the channels: the join is refused, not answered without them.
    let answer = sql(
        &setup.server,
        &bob,
        "SELECT m.body FROM app.messages m JOIN app.channels c ON m.channel_id = c.id",
        &[],
    );
    strand_tests::assert_client_error(&answer, "forbidden");
}

#[test]
fn join_errors_name_the_problem_and_its_position() {
    let setup = setup();
    let error = |text: &str, code: &str| {
        let answer = sql(&setup.server, &setup.admin, text, &[]);
        strand_tests::assert_client_error(&answer, code)
    };
    let e = error(
        "SELECT id FROM app.messages m JOIN app.channels c ON m.channel_id = c.id",
        "ambiguous_name",
    );
    assert_eq!(strand_tests::error_position(&e), (1, 8));
    error(
        "SELECT m.id FROM app.messages m JOIN app.channels c ON m.channel_id > c.id",
        "unsupported",
    );
    error(
        "SELECT m.id FROM app.messages m RIGHT JOIN app.channels c ON m.channel_id = c.id",
        "unsupported",
    );
    error(
        "SELECT m.id FROM app.messages m JOIN app.channels c ON m.body = c.id",
        "type_mismatch",
    );
}

#[test]
fn a_join_in_a_subscription_is_refused_for_now() {
    let setup = setup();
    let mut client = admin_ws(&setup);
    let text = "SELECT m.id, c.name FROM app.messages m JOIN app.channels c ON m.channel_id = c.id";
    client.send(&subscribe_message("j", text, None, None));
    expect_error(&mut client, "j", "unsupported");
}
