//! A user only ever reads and writes their own rows of a USER table (docs/sql.md, "Tables"), whatever
//! the statement names: alice and bob write the same primary keys without conflict, and no
//! SELECT, UPDATE or DELETE of alice's reaches bob's rows. Only an administrator may run
//! `EXECUTE AS USER`. A `user` cannot administer, and reads a SHARED table only while granted.

use serde_json::{json, Value};
use strand_tests::{
    assert_client_error, bearer, login, rows, sql, sql_ok, AdminServer, StrandServer,
};
use tempfile::TempDir;

/// A server with users alice and bob (role `user`), the USER table `app.notes` holding rows of
/// both (ids 1 and 2 in each), the SHARED table `app.rooms`, and everyone's `Authorization`.
struct Setup {
    _dir: TempDir,
    server: StrandServer,
    admin: String,
    alice: String,
    bob: String,
}

impl Setup {
    fn start() -> Setup {
        let AdminServer { server, admin, dir } = AdminServer::start();
        sql_ok(
            &server,
            &admin,
            "CREATE NAMESPACE app;
             CREATE TABLE app.notes (id BIGINT PRIMARY KEY, body TEXT) WITH (TYPE = 'USER');
             CREATE TABLE app.rooms (id BIGINT PRIMARY KEY, name TEXT) WITH (TYPE = 'SHARED');
             INSERT INTO app.rooms (id, name) VALUES (1, 'lobby'), (2, 'attic');
             CREATE USER 'alice' WITH PASSWORD 'alice-pw' ROLE user;
             CREATE USER 'bob' WITH PASSWORD 'bob-pw' ROLE user",
            &[],
        );
        let alice = bearer(&server, "alice", "alice-pw");
        let bob = bearer(&server, "bob", "bob-pw");
        let insert = "INSERT INTO app.notes (id, body) VALUES (1, $1), (2, $2), ($3, $4)";
        sql_ok(
            &server,
            &alice,
            insert,
            &[json!("a1"), json!("a2"), json!(3), json!("a3")],
        );
        sql_ok(
            &server,
            &bob,
            insert,
            &[json!("b1"), json!("b2"), json!(4), json!("b4")],
        );
        Setup {
            _dir: dir,
            server,
            admin,
            alice,
            bob,
        }
    }

    /// `(id, body)` pairs of a query's rows.
    fn notes(&self, auth: &str, text: &str, params: &[Value]) -> Vec<(i64, String)> {
        rows(&self.server, auth, text, params)
            .iter()
            .map(|row| {
                let id = row["id"].as_i64().expect("id");
                (id, row["body"].as_str().expect("body").to_string())
            })
            .collect()
    }

    fn all_notes(&self, auth: &str) -> Vec<(i64, String)> {
        self.notes(auth, "SELECT id, body FROM app.notes ORDER BY id", &[])
    }

    fn affected(&self, auth: &str, text: &str) -> u64 {
        let results = sql_ok(&self.server, auth, text, &[]);
        results[0]["row_count"].as_u64().expect("row_count")
    }
}

fn pairs(expected: &[(i64, &str)]) -> Vec<(i64, String)> {
    expected
        .iter()
        .map(|(id, body)| (*id, body.to_string()))
        .collect()
}

/// A statement, its parameters and the `(id, body)` rows alice must see.
type Case<'a> = (&'a str, &'a [Value], &'a [(i64, &'a str)]);

#[test]
fn every_select_form_sees_only_the_callers_rows() {
    let setup = Setup::start();
    let alice = setup.alice.as_str();
    assert_eq!(
        setup.all_notes(alice),
        pairs(&[(1, "a1"), (2, "a2"), (3, "a3")])
    );
    assert_eq!(
        setup.all_notes(&setup.bob),
        pairs(&[(1, "b1"), (2, "b2"), (4, "b4")])
    );
    // The administrator has rows of their own (none), not everyone's.
    assert_eq!(setup.all_notes(&setup.admin), pairs(&[]));

    let cases: &[Case] = &[
        (
            "SELECT * FROM app.notes",
            &[],
            &[(1, "a1"), (2, "a2"), (3, "a3")],
        ),
        ("SELECT id, body FROM app.notes WHERE id = 4", &[], &[]),
        (
            "SELECT id, body FROM app.notes WHERE id = $1",
            &[json!(4)],
            &[],
        ),
        (
            "SELECT id, body FROM app.notes WHERE id = 1",
            &[],
            &[(1, "a1")],
        ),
        (
            "SELECT id, body FROM app.notes WHERE id IN (1, 4)",
            &[],
            &[(1, "a1")],
        ),
        ("SELECT id, body FROM app.notes WHERE body = 'b1'", &[], &[]),
        (
            "SELECT id, body FROM app.notes WHERE body LIKE 'b%'",
            &[],
            &[],
        ),
        (
            "SELECT id, body FROM app.notes WHERE id > 0 OR body = 'b4'",
            &[],
            &[(1, "a1"), (2, "a2"), (3, "a3")],
        ),
        (
            "SELECT id, body FROM app.notes ORDER BY id DESC LIMIT 2",
            &[],
            &[(3, "a3"), (2, "a2")],
        ),
        (
            "SELECT id, body FROM app.notes ORDER BY id LIMIT 5 OFFSET 2",
            &[],
            &[(3, "a3")],
        ),
    ];
    for (text, params, expected) in cases {
        let mut seen = setup.notes(alice, text, params);
        if !text.contains("ORDER BY") {
            seen.sort();
        }
        assert_eq!(seen, pairs(expected), "alice: {text}");
    }
}

#[test]
fn update_and_delete_touch_only_the_callers_rows() {
    let setup = Setup::start();
    let alice = setup.alice.as_str();
    let update = "UPDATE app.notes SET body = 'changed' WHERE id = 1";
    assert_eq!(setup.affected(alice, update), 1);
    assert_eq!(
        setup.affected(alice, "UPDATE app.notes SET body = 'x' WHERE id = 4"),
        0
    );
    let many = "UPDATE app.notes SET body = body || '!' WHERE id IN (2, 4)";
    assert_eq!(setup.affected(alice, many), 1);
    assert_eq!(
        setup.affected(alice, "DELETE FROM app.notes WHERE id = 4"),
        0
    );
    assert_eq!(
        setup.affected(alice, "DELETE FROM app.notes WHERE body = 'b2'"),
        0
    );
    assert_eq!(
        setup.affected(alice, "DELETE FROM app.notes WHERE id = 3"),
        1
    );
    // Bob's key 4 is free in alice's partition.
    let insert = "INSERT INTO app.notes (id, body) VALUES (4, 'a4')";
    assert_eq!(setup.affected(alice, insert), 1);

    let expected = pairs(&[(1, "changed"), (2, "a2!"), (4, "a4")]);
    assert_eq!(setup.all_notes(alice), expected);
    assert_eq!(
        setup.all_notes(&setup.bob),
        pairs(&[(1, "b1"), (2, "b2"), (4, "b4")])
    );
    // Bob's writes leave alice's rows alone too.
    assert_eq!(
        setup.affected(&setup.bob, "DELETE FROM app.notes WHERE id > 0"),
        3
    );
    assert_eq!(setup.all_notes(alice), expected);
}

#[test]
fn only_administrators_execute_as_another_user() {
    let setup = Setup::start();
    let as_bob = "EXECUTE AS USER 'bob' (SELECT id, body FROM app.notes ORDER BY id)";
    let refused = sql(&setup.server, &setup.alice, as_bob, &[]);
    refused.assert_error(403, "forbidden");
    let delete_as_bob = "EXECUTE AS USER 'bob' (DELETE FROM app.notes WHERE id = 1)";
    sql(&setup.server, &setup.alice, delete_as_bob, &[]).assert_error(403, "forbidden");

    let bobs = pairs(&[(1, "b1"), (2, "b2"), (4, "b4")]);
    assert_eq!(setup.notes(&setup.admin, as_bob, &[]), bobs);
    assert_eq!(setup.all_notes(&setup.bob), bobs);
    // An administrator's write as alice lands in alice's rows.
    let insert_as_alice =
        "EXECUTE AS USER 'alice' (INSERT INTO app.notes (id, body) VALUES (9, 'a9'))";
    sql_ok(&setup.server, &setup.admin, insert_as_alice, &[]);
    let alices = pairs(&[(1, "a1"), (2, "a2"), (3, "a3"), (9, "a9")]);
    assert_eq!(setup.all_notes(&setup.alice), alices);
    assert_eq!(setup.all_notes(&setup.admin), pairs(&[]));
}

#[test]
fn a_user_cannot_administer_and_reads_shared_tables_only_with_a_grant() {
    let setup = Setup::start();
    let alice = setup.alice.as_str();
    let create = "CREATE USER 'mallory' WITH PASSWORD 'mallory-pw' ROLE dba";
    sql(&setup.server, alice, create, &[]).assert_error(403, "forbidden");
    login(&setup.server, "mallory", "mallory-pw").assert_error(401, "unauthorized");
    let promote = "ALTER USER 'alice' SET ROLE dba";
    sql(&setup.server, alice, promote, &[]).assert_error(403, "forbidden");
    let table = "CREATE TABLE app.mine (id BIGINT PRIMARY KEY) WITH (TYPE = 'USER')";
    sql(&setup.server, alice, table, &[]).assert_error(403, "forbidden");
    let self_grant = "GRANT SELECT ON app.rooms TO 'alice'";
    sql(&setup.server, alice, self_grant, &[]).assert_error(403, "forbidden");

    let read = "SELECT id, name FROM app.rooms ORDER BY id";
    let rooms = json!([{"id": 1, "name": "lobby"}, {"id": 2, "name": "attic"}]);
    sql(&setup.server, alice, read, &[]).assert_error(403, "forbidden");
    sql_ok(&setup.server, &setup.admin, self_grant, &[]);
    assert_eq!(Value::from(rows(&setup.server, alice, read, &[])), rooms);
    // SELECT is not INSERT, and alice's grant is not bob's.
    let write = "INSERT INTO app.rooms (id, name) VALUES (3, 'cellar')";
    let error = assert_client_error(&sql(&setup.server, alice, write, &[]), "forbidden");
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("app.rooms"),
        "{error}"
    );
    sql(&setup.server, &setup.bob, read, &[]).assert_error(403, "forbidden");

    let revoke = "REVOKE SELECT ON app.rooms FROM 'alice'";
    sql_ok(&setup.server, &setup.admin, revoke, &[]);
    sql(&setup.server, alice, read, &[]).assert_error(403, "forbidden");
    assert_eq!(
        Value::from(rows(&setup.server, &setup.admin, read, &[])),
        rooms
    );
}
