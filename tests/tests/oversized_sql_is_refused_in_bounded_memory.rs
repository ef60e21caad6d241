//! Issue 17, defect 6: a small SQL text over a limit (a 0.4 MB `IN (1,1,...)` list, 0.4 MB of
//! nested parentheses) is refused with `limit_exceeded` before it is parsed, over HTTP,
//! WebSocket subscribe and QUIC alike, so many of them at once cost the server little memory.
//! Before the fix each one cost about 300 MB of resident memory while sqlparser built it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use strand_tests::ws::{admin_ws, expect_error, subscribe_message};
use strand_tests::{assert_client_error, sql, AdminServer, ADMIN_PASSWORD};
use strand_wire::quic::{Message, Sql};

/// Clients sending oversized texts at once, and texts each sends.
const CLIENTS: usize = 8;
const REQUESTS_PER_CLIENT: usize = 4;
/// What all of them together may add to the server's resident anonymous memory: generous (a
/// request's own buffers, the allocator's slack); before the fix one request took ~300 MB.
const GROWTH_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// The server's resident anonymous memory (`RssAnon` of `/proc/<pid>/status`), in bytes.
fn rss_anon(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let line = status
        .lines()
        .find(|line| line.starts_with("RssAnon:"))
        .expect("RssAnon line");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("RssAnon in kB");
    kib * 1024
}

/// The highest `RssAnon` seen until `stop` is set, sampled every few milliseconds.
fn sample_peak(pid: u32, stop: Arc<AtomicBool>, peak: Arc<AtomicU64>) {
    while !stop.load(Ordering::Relaxed) {
        peak.fetch_max(rss_anon(pid), Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(2));
    }
    peak.fetch_max(rss_anon(pid), Ordering::Relaxed);
}

fn in_list() -> String {
    let list = vec!["1"; 200_000].join(",");
    format!("SELECT * FROM app.t WHERE a IN ({list})")
}

fn nested() -> String {
    let depth = 200_000;
    format!(
        "SELECT * FROM app.t WHERE a = {}1{}",
        "(".repeat(depth),
        ")".repeat(depth)
    )
}

fn quic_sql(text: &str) -> Message {
    Message::Sql(Sql {
        sql: text.to_string(),
        params_json: "[]".to_string(),
    })
}

/// The `error.code` of a QUIC `sql` answer.
async fn quic_error_code(client: &strand_wire::quic::client::Client, text: &str) -> String {
    let frames = client.request(quic_sql(text)).await.expect("sql over QUIC");
    let Some(Message::SqlResult(result)) = frames.into_iter().next().map(|f| f.message) else {
        panic!("sql_result expected");
    };
    let body: Value = serde_json::from_str(&result.body_json).expect("JSON body");
    body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_sql_texts_are_refused_before_they_are_built() {
    let setup =
        AdminServer::with_app("CREATE TABLE app.t (a BIGINT PRIMARY KEY) WITH (TYPE = 'SHARED')");
    let server = &setup.server;
    let pid = server.pid();
    let (in_list, nested) = (Arc::new(in_list()), Arc::new(nested()));
    assert!(in_list.len() < 420_000 && nested.len() < 420_000);

    // Every way in once with a small text, so that what they set up is in the baseline.
    let quic = server.quic_client("admin", ADMIN_PASSWORD).await;
    let small = "SELECT * FROM app.t WHERE a IN (1, 2)";
    assert_eq!(sql(server, &setup.admin, small, &[]).status, 200);
    assert_eq!(quic_error_code(&quic, small).await, "");
    let mut ws = admin_ws(&setup);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let baseline = rss_anon(pid);

    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(baseline));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        std::thread::spawn(move || sample_peak(pid, stop, peak))
    };
    let url = server.http;
    let admin = setup.admin.clone();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (in_list, nested, admin) = (in_list.clone(), nested.clone(), admin.clone());
            std::thread::spawn(move || {
                for request in 0..REQUESTS_PER_CLIENT {
                    let text = if (client + request) % 2 == 0 {
                        &in_list
                    } else {
                        &nested
                    };
                    let answer = strand_tests::try_sql(url, &admin, text, &[])
                        .expect("an answer to the oversized text");
                    assert_client_error(&answer, "limit_exceeded");
                }
            })
        })
        .collect();
    for (index, text) in [&in_list, &nested, &in_list].into_iter().enumerate() {
        let id = format!("big-{index}");
        ws.send(&subscribe_message(&id, text, None, None));
        expect_error(&mut ws, &id, "limit_exceeded");
        assert_eq!(quic_error_code(&quic, text).await, "limit_exceeded");
    }
    for client in clients {
        client.join().expect("client thread");
    }
    stop.store(true, Ordering::Relaxed);
    sampler.join().expect("sampler");

    let growth = peak.load(Ordering::Relaxed).saturating_sub(baseline);
    assert!(
        growth < GROWTH_MAX_BYTES,
        "{} oversized texts of 0.4 MB raised the server's RssAnon by {} MB (at most {} MB)",
        CLIENTS * REQUESTS_PER_CLIENT + 6,
        growth / (1024 * 1024),
        GROWTH_MAX_BYTES / (1024 * 1024)
    );
    // And the server still answers.
    assert_eq!(sql(server, &setup.admin, small, &[]).status, 200);
}
