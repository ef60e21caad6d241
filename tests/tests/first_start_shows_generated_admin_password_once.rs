//! Without STRAND_ADMIN_PASSWORD, the first start creates `admin` with a generated password
//! printed once to stderr, clearly marked; it works for login, and a restart neither prints
//! it again nor changes it.

use strand_tests::{login, ServerOptions, StrandServer};

const MARK: &str = "STRAND ADMIN PASSWORD";

#[test]
fn first_start_shows_generated_admin_password_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = StrandServer::start(dir.path(), &ServerOptions::default());
    let stderr = first.stderr();
    assert_eq!(stderr.matches(MARK).count(), 1, "{stderr}");
    let password = stderr
        .lines()
        .skip_while(|line| !line.contains(MARK))
        .map(str::trim)
        .find(|line| line.len() == 24 && line.bytes().all(|b| b.is_ascii_alphanumeric()))
        .expect("the password follows the mark")
        .to_string();
    assert_eq!(login(&first, "admin", &password).status, 200);
    assert_eq!(first.terminate().code(), Some(0));

    let second = StrandServer::start(dir.path(), &ServerOptions::default());
    let stderr = second.stderr();
    assert!(!stderr.contains(MARK), "{stderr}");
    assert!(
        !stderr.contains(&password),
        "the password is never shown again"
    );
    assert_eq!(login(&second, "admin", &password).status, 200);
}
