//! Issue 16, defect 2: the live feed skipped a record silently.
//!
//! The bug: when the fan-out could not read a committed record's previous version (here: a
//! tombstone whose bytes were damaged on disk after it was written), it logged the error,
//! advanced its position and went on, so every subscriber of the partition missed that change
//! without being told, while a resume over the same record returned an error. The fix: the
//! feed never skips; it ends every subscription of the partition with
//! `subscription_interrupted` (resume or subscribe again), and a resume over the record gets
//! the same code. Nothing is delivered after the error.
//!
//! How the damage is made: an INSERT after a DELETE of the same key links to the tombstone as
//! its previous version, and no writer reads that tombstone again (the INSERT checks the key
//! index only), so only the realtime paths meet the damaged bytes. The segment holding the
//! tombstone is sealed first (small segments), so the flip is in a file no one writes.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use strand_tests::ws::{expect_ack, expect_batch, subscribe_message, WsClient};
use strand_tests::{bearer, sql_ok, ServerOptions, StrandServer, ADMIN_PASSWORD};
use strand_wire::codes;

const MARKER: &str = "MARKER-tombstoned-key-0123456789";

#[test]
fn a_change_that_cannot_be_read_ends_the_subscription_instead_of_vanishing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = ServerOptions {
        admin_password: Some(ADMIN_PASSWORD.to_owned()),
        args: vec!["--segment-bytes".into(), "4096".into()],
    };
    let server = StrandServer::start(dir.path(), &options);
    let admin = bearer(&server, "admin", ADMIN_PASSWORD);
    let exec = |text: &str| sql_ok(&server, &admin, text, &[]);
    exec(
        "CREATE NAMESPACE app; CREATE TABLE app.docs (name TEXT PRIMARY KEY, body TEXT) \
         WITH (TYPE = 'SHARED')",
    );
    exec(&format!(
        "INSERT INTO app.docs (name, body) VALUES ('{MARKER}', 'first')"
    ));
    exec(&format!("DELETE FROM app.docs WHERE name = '{MARKER}'"));
    // About 5 KiB more: the segment holding the tombstone is sealed.
    let filler = "x".repeat(1000);
    for n in 0..6 {
        exec(&format!(
            "INSERT INTO app.docs (name, body) VALUES ('fill{n}', '{filler}')"
        ));
    }

    let mut client = WsClient::connect(&server, Some(&admin));
    client.recv_json(); // auth_success
    let text = "SELECT name, body FROM app.docs WHERE body <> 'nothing'";
    client.send(&subscribe_message("docs", text, None, None));
    let boundary = expect_ack(&mut client, "docs");
    let (rows, _) = expect_batch(&mut client, "docs");
    assert_eq!(rows.len(), 6, "the filler rows");

    damage_last_occurrence(&dir.path().join("log"), MARKER.as_bytes());
    exec(&format!(
        "INSERT INTO app.docs (name, body) VALUES ('{MARKER}', 'again')"
    ));
    let error = client.recv_json();
    assert_eq!(error["type"], json!("error"), "{error}");
    assert_eq!(error["subscription_id"], json!("docs"), "{error}");
    assert_eq!(
        error["code"],
        json!(codes::SUBSCRIPTION_INTERRUPTED),
        "{error}"
    );
    // Nothing more for it, also for later writes.
    exec("INSERT INTO app.docs (name, body) VALUES ('later', 'x')");
    client.expect_silence(Duration::from_millis(500));

    // A resume over the same record meets the same error, never a gap.
    client.send(&subscribe_message("docs", text, None, Some(boundary)));
    expect_ack(&mut client, "docs");
    let error = client.recv_json();
    assert_eq!(
        error["code"],
        json!(codes::SUBSCRIPTION_INTERRUPTED),
        "{error}"
    );
    assert_eq!(error["subscription_id"], json!("docs"), "{error}");
    client.expect_silence(Duration::from_millis(300));
}

/// Flip one byte of the last occurrence of `needle` in the files under `root` (the tombstone's
/// key: it was written after the row version carrying the same key).
fn damage_last_occurrence(root: &Path, needle: &[u8]) {
    let mut found: Option<(PathBuf, usize)> = None;
    for file in files_under(root) {
        let bytes = std::fs::read(&file).expect("read segment");
        let last = bytes.windows(needle.len()).rposition(|w| w == needle);
        if let Some(at) = last {
            let later = found.as_ref().is_none_or(|(path, _)| *path < file);
            if later {
                found = Some((file, at));
            }
        }
    }
    let (file, at) = found.expect("the marker is on disk");
    let bytes = std::fs::read(&file).expect("read segment");
    // In place, one byte: the server has the file mapped, and a truncating rewrite could
    // pull the pages from under it.
    let flipped = [bytes[at + 3] ^ 0x20];
    let handle = std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .expect("open segment");
    handle
        .write_all_at(&flipped, (at + 3) as u64)
        .expect("write segment");
}

fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("list").flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}
