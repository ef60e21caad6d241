//! Issue 16, defect 8: Basic auth cost one argon2 hash per request.
//!
//! The bug: every HTTP request with Basic credentials (the README's curl quick start) ran an
//! argon2 verification, about 15 ms, where the same request with a token took 0.2 ms. The
//! fix: verified credentials are cached, keyed by an HMAC of the name and password under a
//! per-process key (never the password), for at most a minute, and dropped as soon as any
//! user is created, altered or dropped. A wrong password is never cached.
//!
//! `strand_basic_auth_total` counts checks by outcome: `verified` (argon2) or `cached`.

use strand_tests::{basic, get, sql, sql_ok, AdminServer, ADMIN_PASSWORD};

fn counts(setup: &AdminServer) -> (u64, u64) {
    let text = get(&setup.server.url("/metrics")).text;
    let value = |outcome: &str| -> u64 {
        let prefix = format!("strand_basic_auth_total{{outcome=\"{outcome}\"}} ");
        text.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
    };
    (value("verified"), value("cached"))
}

#[test]
fn repeated_basic_requests_verify_the_password_once() {
    let setup = AdminServer::with_app("");
    setup.exec("CREATE USER 'carol' WITH PASSWORD 'first' ROLE user");
    let carol = basic("carol", "first");
    let before = counts(&setup);
    for _ in 0..5 {
        sql_ok(&setup.server, &carol, "SHOW NAMESPACES", &[]);
    }
    let after = counts(&setup);
    assert_eq!(
        after.0 - before.0,
        1,
        "one argon2 verification: {before:?} -> {after:?}"
    );
    assert_eq!(after.1 - before.1, 4, "the other four from the cache");

    // A wrong password is refused every time, never cached.
    let wrong = basic("carol", "guess");
    for _ in 0..2 {
        assert_eq!(
            sql(&setup.server, &wrong, "SHOW NAMESPACES", &[]).status,
            401
        );
    }
    let after_wrong = counts(&setup);
    assert_eq!(
        after_wrong.0 - after.0,
        2,
        "each wrong password costs argon2"
    );

    // ALTER USER: the old password stops working at once; the new one works.
    setup.exec("ALTER USER 'carol' SET PASSWORD 'second'");
    assert_eq!(
        sql(&setup.server, &carol, "SHOW NAMESPACES", &[]).status,
        401
    );
    let second = basic("carol", "second");
    sql_ok(&setup.server, &second, "SHOW NAMESPACES", &[]);

    // A role change is seen at once: carol becomes dba and may create a namespace.
    sql_ok(&setup.server, &second, "SHOW NAMESPACES", &[]);
    setup.exec("ALTER USER 'carol' SET ROLE dba");
    sql_ok(&setup.server, &second, "CREATE NAMESPACE carols", &[]);

    // DROP USER: the cached credentials die with the user.
    setup.exec("DROP USER 'carol'");
    assert_eq!(
        sql(&setup.server, &second, "SHOW NAMESPACES", &[]).status,
        401
    );
    // The administrator's own Basic credentials keep working.
    let admin = basic("admin", ADMIN_PASSWORD);
    sql_ok(&setup.server, &admin, "SHOW NAMESPACES", &[]);
}
