//! Issue 17, defect 12: long user names broke USER tables.
//!
//! The bug: `CREATE USER` took names up to 128 bytes, but a user's partition of a USER table
//! is a directory named by the hex of the name (two bytes per byte, plus the user's
//! incarnation), so for a 128-byte name every read and write of that user's rows failed with
//! ENAMETOOLONG (500 `internal`), for good. The fix: a new user's name has at most 100 bytes
//! (`NEW_USER_NAME_BYTES_MAX`, chosen so `<hex>.<incarnation>` stays within the 255-byte
//! file name limit); a longer one is refused with `limit_exceeded` naming the limit. Table,
//! namespace and topic names are at most 63 bytes each, which keeps their directories short.

use serde_json::json;
use strand_tests::{assert_client_error, basic, rows, sql, sql_ok, AdminServer};

/// The longest table and namespace names (63 bytes each).
fn longest_identifier(first: char) -> String {
    let mut name = String::from(first);
    name.push_str(&"x".repeat(62));
    name
}

#[test]
fn a_user_name_over_100_bytes_is_refused_and_every_shorter_one_works() {
    let setup = AdminServer::start();
    let (namespace, table) = (longest_identifier('n'), longest_identifier('t'));
    setup.exec(&format!(
        "CREATE NAMESPACE {namespace}; \
         CREATE TABLE {namespace}.{table} (id BIGINT PRIMARY KEY, body TEXT) \
         WITH (TYPE = 'USER')"
    ));
    let server = &setup.server;

    for name in ["b".repeat(101), "c".repeat(128), "é".repeat(51)] {
        let create = format!("CREATE USER '{name}' WITH PASSWORD 'pw' ROLE user");
        let error = assert_client_error(&sql(server, &setup.admin, &create, &[]), "limit_exceeded");
        let message = error["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("100"),
            "the message names the limit: {message}"
        );
    }

    // The longest names that are taken work: in ASCII and in two-byte characters.
    for name in ["a".repeat(100), "é".repeat(50)] {
        assert_eq!(name.len(), 100);
        setup.exec(&format!(
            "CREATE USER '{name}' WITH PASSWORD 'pw' ROLE user"
        ));
        let user = basic(&name, "pw");
        let insert = format!("INSERT INTO {namespace}.{table} (id, body) VALUES (1, 'mine')");
        sql_ok(server, &user, &insert, &[]);
        let select = format!("SELECT id, body FROM {namespace}.{table}");
        assert_eq!(
            rows(server, &user, &select, &[]),
            [json!({"id": 1, "body": "mine"})]
        );
    }
}
