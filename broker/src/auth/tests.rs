//! Unit tests of the authenticator: logins, both header schemes, and tokens whose user was
//! dropped or changed after the token was issued.

use std::time::Duration;
use strand_sql_view::{Role, UserName};

use strand_log::{FsyncPolicy, Store, StoreConfig};

use super::*;
use crate::users::PasswordHashing;

fn authenticator(root: &std::path::Path) -> (Store, Arc<UserDirectory>, Authenticator) {
    let mut config = StoreConfig::default();
    config.partition.fsync = FsyncPolicy::Never;
    let store = Store::open(root, config).expect("store");
    let users = Arc::new(UserDirectory::open(&store, PasswordHashing::cheapest()).expect("users"));
    let secret = JwtSecret::from_bytes(vec![3; 32]);
    let auth = Authenticator::new(users.clone(), &secret, Duration::from_secs(3600));
    (store, users, auth)
}

#[test]
fn login_then_bearer_and_basic_sessions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_store, users, auth) = authenticator(dir.path());
    let alice = UserName::new("alice").expect("name");
    users.create_user(&alice, "pw", Role::User).expect("create");

    let login = auth.login("alice", "pw").expect("login");
    assert_eq!(
        (login.user.as_str(), login.role.as_str()),
        ("alice", "user")
    );
    assert!(login.expires_at.ends_with('Z'), "{}", login.expires_at);
    assert!(matches!(
        auth.login("alice", "nope"),
        Err(AuthError::BadCredentials)
    ));
    assert!(matches!(
        auth.login("nobody", "pw"),
        Err(AuthError::BadCredentials)
    ));

    let bearer = Credentials::Bearer(login.token.clone());
    let session = auth.authenticate(&bearer).expect("token works");
    assert_eq!(
        (session.user(), session.method()),
        (&alice, AuthMethod::Token)
    );

    users.set_role(&alice, Role::Dba).expect("promote");
    assert_eq!(
        auth.authenticate(&bearer).expect("still valid").role(),
        Role::Dba
    );

    let basic = Credentials::Basic {
        username: "alice".into(),
        password: "pw".into(),
    };
    assert_eq!(
        auth.authenticate(&basic).expect("basic").method(),
        AuthMethod::Basic
    );

    users.drop_user(&alice, false).expect("drop");
    assert!(matches!(
        auth.authenticate(&bearer),
        Err(AuthError::UnknownUser)
    ));
    assert!(matches!(
        auth.authenticate(&basic),
        Err(AuthError::BadCredentials)
    ));
}

#[test]
fn auth_errors_are_401_except_signing() {
    let unauthorized = ApiError::from(AuthError::ExpiredToken);
    assert_eq!(unauthorized.code, ErrorCode::Unauthorized);
    let internal = ApiError::from(AuthError::Signing("boom".into()));
    assert_eq!(internal.code, ErrorCode::Internal);
}

#[test]
fn a_token_of_a_dropped_user_does_not_pass_for_a_new_namesake() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_store, users, auth) = authenticator(dir.path());
    let bob = UserName::new("bob").expect("name");
    let first = users.create_user(&bob, "pw", Role::User).expect("create");
    let now_s = first.created_unix_ms / 1000;
    let old = auth.keys.issue(&first, now_s + 60).expect("sign").token;
    users.drop_user(&bob, false).expect("drop");
    let second = users.create_user(&bob, "pw", Role::User).expect("create");
    assert_ne!(first.incarnation, second.incarnation);
    // Issued later by the clock than the new bob's creation, and still the old bob's.
    let result = auth.authenticate(&Credentials::Bearer(old));
    assert!(matches!(result, Err(AuthError::UnknownUser)), "{result:?}");
    // A token of the new bob issued while the clock read a day before his creation (a clock
    // set back and corrected) is his: validity does not depend on the wall clock.
    let day_before = now_s.saturating_sub(86_400);
    let behind = auth.keys.issue(&second, day_before).expect("sign").token;
    let session = auth
        .authenticate_at(&Credentials::Bearer(behind), None, day_before + 1)
        .expect("the new bob's token");
    assert_eq!(session.incarnation(), second.incarnation);
}
