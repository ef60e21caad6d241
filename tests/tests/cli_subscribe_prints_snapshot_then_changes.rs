//! `strand subscribe` against a real server: the snapshot arrives as one JSON line per row
//! (over several batches), then `ready`, then one line per change with increasing `_seq`;
//! `--count` ends it with exit 0. A subscription the server refuses exits 1 with the error
//! code on stderr.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use strand_tests::{sql_ok, strand_binary, AdminServer, ADMIN_PASSWORD};

/// How long the CLI may take to print its next line or to exit.
const LINE_TIMEOUT: Duration = Duration::from_secs(30);

/// `strand subscribe` as a child process; killed on drop if still running.
struct Subscriber {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Subscriber {
    fn start(server: &AdminServer, extra: &[&str], sql: &str) -> Subscriber {
        let url = format!("http://{}", server.server.http);
        let mut command = Command::new(strand_binary());
        command
            .args(["subscribe", "--url", &url, "--user", "admin"])
            .args(["--password", ADMIN_PASSWORD])
            .args(extra)
            .arg(sql)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("STRAND_")) {
            command.env_remove(name);
        }
        let mut child = command.spawn().expect("spawn strand subscribe");
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Subscriber { child, lines }
    }

    /// The next stdout line as JSON; `None` at the end of stdout.
    fn next_line(&mut self) -> Option<Value> {
        match self.lines.recv_timeout(LINE_TIMEOUT) {
            Ok(line) => Some(
                serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}")),
            ),
            Err(mpsc::RecvTimeoutError::Disconnected) => None,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!(
                    "no line within {LINE_TIMEOUT:?}; stderr:\n{}",
                    self.stderr()
                )
            }
        }
    }

    /// The next stdout line, which must come.
    fn expect_line(&mut self, what: &str) -> Value {
        match self.next_line() {
            Some(line) => line,
            None => {
                let (status, stderr) = self.wait_exit();
                panic!("expected {what}, stdout ended; exit {status}, stderr:\n{stderr}")
            }
        }
    }

    /// Wait for the exit (bounded); the status and stderr.
    fn wait_exit(&mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + LINE_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for strand subscribe") {
                return (status, self.stderr());
            }
            assert!(
                Instant::now() < deadline,
                "strand subscribe did not exit within {LINE_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stderr so far (all of it once the process has exited).
    fn stderr(&mut self) -> String {
        let mut text = String::new();
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            if let Some(mut stderr) = self.child.stderr.take() {
                let _ = stderr.read_to_string(&mut text);
            }
        }
        text
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn seq(value: &Value) -> u64 {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("_seq is a string: {value}"));
    text.parse().expect("_seq is decimal digits")
}

#[test]
fn cli_subscribe_prints_snapshot_then_changes() {
    let server = AdminServer::start();
    sql_ok(
        &server.server,
        &server.admin,
        "CREATE NAMESPACE app;
         CREATE TABLE app.tickets (id BIGINT PRIMARY KEY, title TEXT, status TEXT)
             WITH (TYPE = 'SHARED');
         INSERT INTO app.tickets (id, title, status)
             VALUES (1, 'one', 'open'), (2, 'two', 'open'), (3, 'three', 'done')",
        &[],
    );
    let mut subscriber = Subscriber::start(
        &server,
        &["--batch-size", "2", "--count", "2", "--timeout-ms", "20000"],
        "SELECT id, title, status FROM app.tickets",
    );

    let subscribed = subscriber.expect_line("a subscribed line");
    assert_eq!(subscribed["kind"], "subscribed", "{subscribed}");
    assert_eq!(subscribed["id"], "cli", "{subscribed}");
    let names: Vec<&str> = subscribed["schema"]
        .as_array()
        .expect("schema is an array")
        .iter()
        .filter_map(|column| column["name"].as_str())
        .collect();
    assert_eq!(names, ["id", "title", "status", "_seq"], "{subscribed}");

    let mut snapshot = Vec::new();
    let snapshot_end = loop {
        let line = subscriber.expect_line("snapshot lines, then ready");
        match line["kind"].as_str() {
            Some("snapshot") => snapshot.push(line["row"].clone()),
            Some("ready") => break seq(&line["snapshot_end_seq"]),
            _ => panic!("unexpected line before ready: {line}"),
        }
    };
    assert_eq!(seq(&subscribed["snapshot_end_seq"]), snapshot_end);
    let mut ids: Vec<i64> = snapshot
        .iter()
        .filter_map(|row| row["id"].as_i64())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, [1, 2, 3], "{snapshot:?}");
    for row in &snapshot {
        assert!(seq(&row["_seq"]) <= snapshot_end, "{row}");
        let expected = match row["id"].as_i64() {
            Some(1) => ("one", "open"),
            Some(2) => ("two", "open"),
            _ => ("three", "done"),
        };
        assert_eq!(row["title"], expected.0, "{row}");
        assert_eq!(row["status"], expected.1, "{row}");
    }

    sql_ok(
        &server.server,
        &server.admin,
        "INSERT INTO app.tickets (id, title, status) VALUES (4, 'four', 'open')",
        &[],
    );
    sql_ok(
        &server.server,
        &server.admin,
        "UPDATE app.tickets SET status = 'done' WHERE id = 1",
        &[],
    );

    let mut changes = Vec::new();
    while let Some(line) = subscriber.next_line() {
        changes.push(line);
    }
    let (status, stderr) = subscriber.wait_exit();
    assert!(status.success(), "exit {status}; stderr:\n{stderr}");
    assert_eq!(changes.len(), 2, "{changes:?}");
    let (insert, update) = (&changes[0], &changes[1]);
    for change in &changes {
        assert_eq!(change["kind"], "change", "{change}");
        assert_eq!(change["_seq"], change["row"]["_seq"], "{change}");
    }
    assert_eq!(insert["change_type"], "insert", "{insert}");
    assert_eq!(insert["row"]["id"], 4, "{insert}");
    assert_eq!(insert["row"]["title"], "four", "{insert}");
    assert!(insert["old_row"].is_null(), "{insert}");
    assert_eq!(update["change_type"], "update", "{update}");
    assert_eq!(update["row"]["id"], 1, "{update}");
    assert_eq!(update["row"]["status"], "done", "{update}");
    assert_eq!(update["old_row"]["status"], "open", "{update}");
    let (first, second) = (seq(&insert["_seq"]), seq(&update["_seq"]));
    assert!(snapshot_end < first && first < second, "{changes:?}");
}

#[test]
fn cli_subscribe_with_bad_sql_exits_1_with_the_error_code() {
    let server = AdminServer::start();
    let mut subscriber =
        Subscriber::start(&server, &["--timeout-ms", "20000"], "SELEC id FROM nowhere");
    let mut printed = Vec::new();
    while let Some(line) = subscriber.next_line() {
        printed.push(line);
    }
    let (status, stderr) = subscriber.wait_exit();
    assert_eq!(status.code(), Some(1), "stderr:\n{stderr}");
    assert!(stderr.contains("syntax_error"), "stderr:\n{stderr}");
    assert!(printed.is_empty(), "{printed:?}");
}

/// A top-K subscription's change is one line per write, with all its rows.
#[test]
fn cli_subscribe_prints_a_top_k_change_as_one_line() {
    let server = AdminServer::start();
    sql_ok(
        &server.server,
        &server.admin,
        "CREATE NAMESPACE app;
         CREATE TABLE app.board (id BIGINT PRIMARY KEY, score INT) WITH (TYPE = 'SHARED');
         INSERT INTO app.board (id, score) VALUES (1, 10), (2, 20), (3, 30)",
        &[],
    );
    let mut subscriber = Subscriber::start(
        &server,
        &["--count", "1", "--timeout-ms", "20000"],
        "SELECT id, score FROM app.board ORDER BY score DESC LIMIT 2",
    );
    let mut top = Vec::new();
    loop {
        let line = subscriber.expect_line("snapshot lines, then ready");
        match line["kind"].as_str() {
            Some("snapshot") => top.push(line["row"]["id"].clone()),
            Some("ready") => break,
            _ => {}
        }
    }
    assert_eq!(top, [3, 2], "the snapshot in the window's order");
    sql_ok(
        &server.server,
        &server.admin,
        "UPDATE app.board SET score = 99 WHERE id = 1",
        &[],
    );
    let change = subscriber.expect_line("the window's change");
    let (status, stderr) = subscriber.wait_exit();
    assert!(status.success(), "exit {status}; stderr:\n{stderr}");
    assert_eq!(change["kind"], "change", "{change}");
    assert_eq!(change["change_type"], "update", "{change}");
    assert_eq!(change["rows"][0]["id"], 1, "player 1 entered: {change}");
    assert_eq!(change["old_rows"][0]["id"], 2, "player 2 left: {change}");
    assert_eq!(change["_seq"], change["rows"][0]["_seq"], "{change}");
}
