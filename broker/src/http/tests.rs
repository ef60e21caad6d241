//! In-process tests of the router over a real socket: the JSON error shapes of routing
//! failures, the body limit, and the metrics labels (bounded, by matched route).

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;
use strand_sql_view::{Role, UserName};

use strand_log::{FsyncPolicy, Store, StoreConfig};

use super::*;
use crate::auth::JwtSecret;
use crate::session::Session;
use crate::sql::{PreparedSql, StatementResult};
use crate::storage::SyncCounters;
use crate::users::{PasswordHashing, UserDirectory};

/// An engine that refuses every statement: what reaches it, and its answer, are what the
/// router must pass through.
struct RefusingEngine;

const REFUSAL: &str = "this test engine runs nothing";

impl SqlEngine for RefusingEngine {
    fn prepare(
        &self,
        _: &Session,
        _: &str,
        _: &[serde_json::Value],
    ) -> Result<PreparedSql, ApiError> {
        Err(ApiError::new(ErrorCode::Unsupported, REFUSAL))
    }

    fn run(&self, _: PreparedSql) -> Result<Vec<StatementResult>, ApiError> {
        Err(ApiError::new(ErrorCode::Unsupported, REFUSAL))
    }
}

struct Harness {
    base: String,
    metrics: Arc<Metrics>,
    _runtime: tokio::runtime::Runtime,
    _store: Store,
    _dir: tempfile::TempDir,
}

fn harness() -> Harness {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = StoreConfig::default();
    config.partition.fsync = FsyncPolicy::Never;
    let store = Store::open(dir.path(), config).expect("store");
    let users = Arc::new(UserDirectory::open(&store, PasswordHashing::cheapest()).expect("users"));
    let admin = UserName::new("admin").expect("name");
    users
        .create_user(&admin, "pw", Role::System)
        .expect("admin");
    let secret = JwtSecret::from_bytes(vec![1; 32]);
    let auth = Arc::new(Authenticator::new(users, &secret, Duration::from_secs(60)));
    let metrics = Arc::new(Metrics::new(Arc::new(SyncCounters::default())));
    let state = AppState::new(auth, Arc::new(RefusingEngine), metrics.clone());
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    runtime.spawn(async move { axum::serve(listener, router(state, Router::new())).await });
    Harness {
        base: format!("http://{addr}"),
        metrics,
        _runtime: runtime,
        _store: store,
        _dir: dir,
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn json_of(mut response: ureq::http::Response<ureq::Body>) -> (u16, serde_json::Value) {
    let status = response.status().as_u16();
    let body = response.body_mut().read_json().expect("JSON body");
    (status, body)
}

#[test]
fn routing_failures_are_json() {
    let h = harness();
    let (status, body) = json_of(
        agent()
            .get(format!("{}/nope", h.base))
            .call()
            .expect("call"),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, body) = json_of(
        agent()
            .get(format!("{}{ROUTE_SQL}", h.base))
            .call()
            .expect("call"),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
    assert_eq!(body["status"], "error");
}

#[test]
fn oversize_bodies_get_413_json() {
    let h = harness();
    let mut stream = std::net::TcpStream::connect(&h.base["http://".len()..]).expect("connect");
    let head = format!(
        "POST {ROUTE_LOGIN} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        REQUEST_BODY_BYTES_MAX + 1
    );
    stream.write_all(head.as_bytes()).expect("write");
    // The server answers from Content-Length alone; no body is sent.
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains(r#""code":"payload_too_large""#), "{answer}");
}

#[test]
fn sql_with_basic_credentials_reaches_the_engine() {
    let h = harness();
    let response = agent()
        .post(format!("{}{ROUTE_SQL}", h.base))
        .header("Authorization", "Basic YWRtaW46cHc=")
        .send_json(serde_json::json!({"sql": "SELECT 1"}))
        .expect("call");
    let (status, body) = json_of(response);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("unsupported"))
    );
    assert_eq!(body["error"]["message"], REFUSAL);
}

#[test]
fn metrics_are_labelled_by_route_pattern() {
    let h = harness();
    for path in ["/health", "/a/b/c", "/x"] {
        agent()
            .get(format!("{}{path}", h.base))
            .call()
            .expect("call");
    }
    let text = h.metrics.render();
    let has = |line: &str| text.lines().any(|l| l == line);
    assert!(
        has("strand_http_requests_total{route=\"/health\",status=\"200\"} 1"),
        "{text}"
    );
    assert!(
        has("strand_http_requests_total{route=\"unmatched\",status=\"404\"} 2"),
        "{text}"
    );
    assert!(
        has("strand_http_errors_total{code=\"not_found\"} 2"),
        "{text}"
    );
    assert!(!text.contains("/a/b/c"), "client paths never become labels");
}
