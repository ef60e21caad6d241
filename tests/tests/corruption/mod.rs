//! Shared by the storage-corruption tests: find a partition's segment files in a stopped
//! server's data directory, find a record's frame in one, flip a byte on disk, and run
//! `strand serve` / `strand repair` expecting them to exit.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use strand_tests::strand_binary;

/// Bytes of a segment's header; frames follow, 8-aligned (docs/log-format.md).
pub const SEGMENT_HEADER_BYTES: usize = 64;
/// Bytes of a frame's header; its payload follows.
pub const FRAME_HEADER_BYTES: usize = 40;

/// `<data>/log/partitions/<prefix>...`: the one partition directory whose path relative to
/// the partitions directory starts with `prefix` (e.g. `t/app.items.` or `system/catalog`).
pub fn partition_dir(data_dir: &Path, prefix: &str) -> PathBuf {
    let root = data_dir.join("log/partitions");
    let mut found = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        let mut has_segments = false;
        for entry in std::fs::read_dir(&dir).expect("read partitions") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "log") {
                has_segments = true;
            }
        }
        let relative = dir
            .strip_prefix(&root)
            .expect("under root")
            .to_string_lossy()
            .into_owned();
        if has_segments && relative.starts_with(prefix) {
            found.push(dir);
        }
    }
    assert_eq!(found.len(), 1, "partitions under {prefix}: {found:?}");
    found.pop().expect("one")
}

/// The segment files of a partition directory, oldest first.
pub fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read partition")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    paths.sort();
    paths
}

/// `(start, end)` of each frame of a segment file (up to a zero length word).
pub fn frames(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut frames = Vec::new();
    let mut at = SEGMENT_HEADER_BYTES;
    while at + 4 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        if len == 0 || at + len > bytes.len() {
            break;
        }
        frames.push((at, at + len.next_multiple_of(8)));
        at += len.next_multiple_of(8);
    }
    frames
}

/// The frame of `segment` whose bytes contain `needle`: `(start, end)`.
pub fn frame_containing(segment: &Path, needle: &[u8]) -> (usize, usize) {
    let bytes = std::fs::read(segment).expect("read segment");
    frames(&bytes)
        .into_iter()
        .find(|&(start, end)| bytes[start..end].windows(needle.len()).any(|w| w == needle))
        .unwrap_or_else(|| {
            panic!(
                "no frame of {} holds {:?}",
                segment.display(),
                String::from_utf8_lossy(needle)
            )
        })
}

/// Flip every bit of the byte at `position` of `file`.
pub fn flip_byte(file: &Path, position: usize) {
    let mut bytes = std::fs::read(file).expect("read file");
    bytes[position] ^= 0xff;
    std::fs::write(file, &bytes).expect("write file");
}

/// Run the `strand` binary with `args` to its exit (with a clean environment).
pub fn run_strand(args: &[&str], data_dir: &Path) -> Output {
    let mut command = Command::new(strand_binary());
    command.args(args).arg("--data-dir").arg(data_dir);
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("STRAND_")) {
        command.env_remove(name);
    }
    command
        .env("STRAND_ADMIN_PASSWORD", strand_tests::ADMIN_PASSWORD)
        .stdin(Stdio::null())
        .output()
        .expect("run strand")
}

/// How long a refused start may take (it replays the system partitions, then exits).
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(60);

/// `strand serve` over `data_dir`, expected to refuse to start: its stderr. A server that
/// starts anyway is killed and the test fails.
pub fn serve_refuses(data_dir: &Path) -> String {
    let stderr_file = tempfile::NamedTempFile::new().expect("stderr file");
    let mut command = Command::new(strand_binary());
    command
        .args([
            "serve",
            "--http-addr",
            "127.0.0.1:0",
            "--quic-addr",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(data_dir);
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("STRAND_")) {
        command.env_remove(name);
    }
    let mut child = command
        .env("STRAND_ADMIN_PASSWORD", strand_tests::ADMIN_PASSWORD)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr_file.reopen().expect("stderr handle"))
        .spawn()
        .expect("spawn strand serve");
    let deadline = Instant::now() + REFUSAL_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "strand serve started over damaged system records (still running after {REFUSAL_TIMEOUT:?}):\n{}",
                std::fs::read_to_string(stderr_file.path()).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = std::fs::read_to_string(stderr_file.path()).unwrap_or_default();
    assert!(!status.success(), "strand serve exited 0:\n{stderr}");
    stderr
}

/// `strand repair --data-dir DIR` (with `--dry-run` if asked): its exit code and stdout.
pub fn repair(data_dir: &Path, dry_run: bool) -> (i32, String) {
    let mut args = vec!["repair"];
    if dry_run {
        args.push("--dry-run");
    }
    let output = run_strand(&args, data_dir);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    (
        output.status.code().unwrap_or(-1),
        format!("{stdout}{stderr}"),
    )
}

/// The `.damaged` copies a repair left in `dir`.
pub fn damaged_copies(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .expect("read partition")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().contains(".log.damaged"))
        .collect()
}

/// A server started over `dir`, the `Authorization` of its administrator, and SHARED table
/// `app.items (id, label)` holding rows `1..=rows`, one INSERT each, labelled `label(id)`.
pub fn server_with_items(
    dir: &Path,
    options: &strand_tests::ServerOptions,
    rows: i64,
    label: impl Fn(i64) -> String,
) -> (strand_tests::StrandServer, String) {
    let server = strand_tests::StrandServer::start(dir, options);
    let admin = strand_tests::bearer(&server, "admin", strand_tests::ADMIN_PASSWORD);
    strand_tests::sql_ok(
        &server,
        &admin,
        "CREATE NAMESPACE app; \
         CREATE TABLE app.items (id BIGINT PRIMARY KEY, label TEXT) WITH (TYPE = 'SHARED')",
        &[],
    );
    for id in 1..=rows {
        let text = "INSERT INTO app.items (id, label) VALUES ($1, $2)";
        let params = [serde_json::json!(id), serde_json::json!(label(id))];
        strand_tests::sql_ok(&server, &admin, text, &params);
    }
    (server, admin)
}

/// The rows of `app.items` with key `id` (none or one).
pub fn item(server: &strand_tests::StrandServer, admin: &str, id: i64) -> Vec<serde_json::Value> {
    strand_tests::rows(
        server,
        admin,
        "SELECT id, label FROM app.items WHERE id = $1",
        &[serde_json::json!(id)],
    )
}
