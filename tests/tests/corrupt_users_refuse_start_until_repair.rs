//! Regression (issue 17, defect 1), for the users partition: a flipped byte in the record of
//! one user made every user and grant written after it vanish on the next start (cut as a
//! "torn tail"), logins included. Now the server refuses to start, naming the file and the
//! byte; after `strand repair` the users whose records were intact log in again, and only the
//! user whose record was damaged is gone.

mod corruption;

use corruption::{damaged_copies, flip_byte, frame_containing, partition_dir, repair};
use corruption::{segments, serve_refuses, FRAME_HEADER_BYTES};
use strand_tests::{bearer, login, sql_ok, ServerOptions, StrandServer, ADMIN_PASSWORD};

fn options() -> ServerOptions {
    ServerOptions::with_admin_password(ADMIN_PASSWORD)
}

#[test]
fn after_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let server = StrandServer::start(dir.path(), &options());
    let admin = bearer(&server, "admin", ADMIN_PASSWORD);
    for name in ["first_user", "second_user", "third_user"] {
        let text = format!("CREATE USER '{name}' WITH PASSWORD '{name}-pw' ROLE user");
        sql_ok(&server, &admin, &text, &[]);
    }
    server.stop_with(libc::SIGKILL);

    let users = partition_dir(dir.path(), "system/users");
    let segment = segments(&users).pop().unwrap();
    let (start, _) = frame_containing(&segment, b"first_user");
    flip_byte(&segment, start + FRAME_HEADER_BYTES + 1);

    let stderr = serve_refuses(dir.path());
    let name = segment.file_name().unwrap().to_string_lossy().into_owned();
    assert!(stderr.contains(&name), "names the file: {stderr}");
    assert!(
        stderr.contains(&format!("at byte {start}")),
        "names the byte: {stderr}"
    );
    assert!(
        stderr.contains("strand repair"),
        "says how to repair: {stderr}"
    );

    let (code, report) = repair(dir.path(), false);
    assert_eq!(code, 0, "{report}");
    assert!(report.contains("system/users"), "{report}");
    assert_eq!(damaged_copies(&users).len(), 1, "{report}");

    let server = StrandServer::start(dir.path(), &options());
    for name in ["admin", "second_user", "third_user"] {
        let password = match name {
            "admin" => ADMIN_PASSWORD.to_string(),
            _ => format!("{name}-pw"),
        };
        let answer = login(&server, name, &password);
        assert_eq!(answer.status, 200, "{name}: {}", answer.text);
    }
    let gone = login(&server, "first_user", "first_user-pw");
    assert_eq!(gone.status, 401, "{}", gone.text);
}
