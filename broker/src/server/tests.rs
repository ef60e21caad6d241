use std::io::{Read, Write};

use strand_log::FsyncPolicy;

use super::*;
use crate::error::ApiError;
use crate::session::Session;
use crate::sql::{PreparedSql, RunCost, StatementResult};

/// Says when a statement starts, then answers after a pause: a request in flight.
struct SlowEngine {
    started: std::sync::mpsc::SyncSender<()>,
}

impl SqlEngine for SlowEngine {
    fn prepare(
        &self,
        session: &Session,
        _: &str,
        _: &[serde_json::Value],
    ) -> Result<PreparedSql, ApiError> {
        Ok(PreparedSql {
            session: session.clone(),
            statements: Vec::new(),
            params: Vec::new(),
            cost: RunCost::Long,
        })
    }

    fn run(&self, _: PreparedSql) -> Result<Vec<StatementResult>, ApiError> {
        let _ = self.started.try_send(());
        std::thread::sleep(Duration::from_millis(300));
        Ok(vec![StatementResult::message("slow but done")])
    }
}

#[test]
fn stop_finishes_requests_in_flight_then_refuses_connections() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = ServeConfig {
        data_dir: dir.path().join("data"),
        http_addr: "127.0.0.1:0".parse().expect("addr"),
        quic_addr: "127.0.0.1:0".parse().expect("addr"),
        fsync: FsyncPolicy::Never,
        segment_bytes: strand_log::limits::SEGMENT_BYTES_DEFAULT,
        open_partitions_max: strand_log::limits::OPEN_PARTITIONS_DEFAULT,
        retention_interval: Duration::from_secs(60),
        maintenance: crate::config::MaintenanceConfig::default(),
        log_level: None,
        token_ttl: Duration::from_secs(60),
        connections: crate::config::ConnectionConfig::default(),
        auth_attempts: crate::config::AttemptLimits::default(),
        cors_origins: crate::config::AllowedOrigins::default(),
        http_tls: false,
        cluster: None,
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (started, engine_started) = std::sync::mpsc::sync_channel(1);
    let slow = |_: &Broker| -> Arc<dyn SqlEngine> { Arc::new(SlowEngine { started }) };
    let (server, _) = runtime
        .block_on(Server::start_serving_sql_with(&config, Some("pw"), slow))
        .expect("start");
    let http = server.ready().http;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = runtime.spawn(server.run(async move {
        let _ = stopped.await;
    }));

    let client = std::thread::spawn(move || {
        let mut stream = std::net::TcpStream::connect(http).expect("connect");
        let body = r#"{"sql":"SELECT 1"}"#;
        let request = format!(
            "POST /v1/api/sql HTTP/1.1\r\nHost: t\r\nAuthorization: Basic YWRtaW46cHc=\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).expect("write");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read");
        answer
    });
    engine_started
        .recv_timeout(Duration::from_secs(10))
        .expect("the request reached the engine");
    let _ = stop.send(());
    let answer = client.join().expect("client");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("slow but done"), "{answer}");
    runtime
        .block_on(serving)
        .expect("joined")
        .expect("clean stop");
    assert!(
        std::net::TcpStream::connect(http).is_err(),
        "no longer accepting"
    );
}

#[test]
fn ready_line_has_the_spec_keys_in_order() {
    let ready = ReadyInfo {
        http: "127.0.0.1:8080".parse().expect("addr"),
        quic: "127.0.0.1:7100".parse().expect("addr"),
        data_dir: PathBuf::from("/var/lib/\"strand\""),
    };
    let expected = concat!(
        r#"{"event":"ready","http":"127.0.0.1:8080","quic":"127.0.0.1:7100","#,
        r#""data_dir":"/var/lib/\"strand\""}"#
    );
    assert_eq!(ready.json_line(), expected);
    let parsed: serde_json::Value = serde_json::from_str(&ready.json_line()).expect("JSON");
    assert_eq!(parsed["data_dir"], "/var/lib/\"strand\"");
}
