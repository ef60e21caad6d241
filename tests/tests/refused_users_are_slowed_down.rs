//! Issue 17, latency under attack: a user whose requests keep being refused for exceeding a
//! limit (here more params than `SQL_PARAMS_MAX`, `limit_exceeded`) is slowed down: past a
//! burst of refusals, each of their requests waits its turn before its body is read, over
//! HTTP and QUIC. Other users are not held, and the penalized user's requests are still
//! answered (delayed, not refused). Without the throttle a flood of refused requests took the
//! cores an INSERT of another user needs (`strand-bench under-attack`).

use std::time::{Duration, Instant};

use serde_json::Value;
use strand_tests::{assert_client_error, bearer, get, post_json, sql, AdminServer, StrandServer};
use strand_wire::quic::{Message, Sql};

/// The server's burst of free refusals (`REFUSALS_BURST`) and the spacing of a penalized
/// user's requests (`REFUSAL_INTERVAL`).
const BURST: u32 = 20;
const INTERVAL: Duration = Duration::from_millis(100);
/// Refusals past the burst.
const PAST_BURST: u32 = 16;

/// One more parameter than the server takes (`SQL_PARAMS_MAX`): a refusal that costs the
/// server little, so the refusals come faster than the allowed rate even on a slow machine.
fn too_many_params() -> Vec<Value> {
    vec![Value::from(1); 1025]
}

/// `strand_requests_held_total` from `/metrics`.
fn held(server: &StrandServer) -> u64 {
    let text = get(&server.url("/metrics")).text;
    text.lines()
        .find_map(|line| line.strip_prefix("strand_requests_held_total "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no strand_requests_held_total in /metrics:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_refused_past_the_burst_waits_and_others_do_not() {
    let setup =
        AdminServer::with_app("CREATE TABLE app.t (a BIGINT PRIMARY KEY) WITH (TYPE = 'SHARED')");
    for name in ["mallory", "alice"] {
        setup.exec(&format!(
            "CREATE USER '{name}' PASSWORD '{name}-pw' ROLE user; GRANT SELECT ON app.t TO '{name}'"
        ));
    }
    let server = &setup.server;
    let mallory = bearer(server, "mallory", "mallory-pw");
    let alice = bearer(server, "alice", "alice-pw");
    let quic = server.quic_client("mallory", "mallory-pw").await;
    let params = too_many_params();
    let text = "SELECT a FROM app.t WHERE a = $1";
    assert_eq!(held(server), 0);

    // The burst is free: nothing is held.
    for _ in 0..BURST {
        assert_client_error(&sql(server, &mallory, text, &params), "limit_exceeded");
    }
    assert_eq!(held(server), 0, "requests within the burst were held");
    // Refusals past it, at once: each adds an interval to what mallory owes, so her next
    // requests wait about PAST_BURST intervals for their turn.
    std::thread::scope(|scope| {
        for _ in 0..PAST_BURST {
            scope.spawn(|| {
                assert_client_error(&sql(server, &mallory, text, &params), "limit_exceeded");
            });
        }
    });
    let held_before = held(server);

    // Alice is not held while mallory is penalized.
    let answer = sql(server, &alice, "SELECT a FROM app.t", &[]);
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(held(server), held_before, "alice's request was held");

    // Mallory's requests that break no limit are held too (the penalty is the user's, over
    // HTTP and QUIC alike), then served.
    let started = Instant::now();
    let over_quic = quic.request(Message::Sql(Sql {
        sql: "SELECT a FROM app.t".to_string(),
        params_json: "[]".to_string(),
    }));
    let over_http = tokio::task::spawn_blocking({
        let (url, mallory) = (server.url("/v1/api/sql"), mallory.clone());
        let body = serde_json::json!({ "sql": "SELECT a FROM app.t" });
        move || post_json(&url, Some(&mallory), &body)
    });
    let frames = over_quic.await.expect("sql over QUIC");
    assert!(matches!(
        frames.first().map(|f| &f.message),
        Some(Message::SqlResult(_))
    ));
    let answer = over_http.await.expect("the HTTP request");
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(
        held(server),
        held_before + 2,
        "mallory's requests were not held"
    );
    assert!(
        started.elapsed() >= INTERVAL,
        "held, yet answered after {:?}",
        started.elapsed()
    );

    // Once mallory stops breaking limits the penalty ends: after what she owes, her requests
    // go on at once.
    std::thread::sleep(INTERVAL * (PAST_BURST + 10));
    let answer = sql(server, &mallory, "SELECT a FROM app.t", &[]);
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(
        held(server),
        held_before + 2,
        "held after the penalty ended"
    );
}
