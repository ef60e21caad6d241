//! Unit tests of the user directory: every change survives a reopen (replay), and the checks
//! (duplicates, missing users, privileges) hold before and after.

use std::path::Path;

use strand_log::{FsyncPolicy, StoreConfig};

use super::*;

fn open(root: &Path) -> (Store, UserDirectory) {
    let mut config = StoreConfig::default();
    config.partition.fsync = FsyncPolicy::Never;
    let store = Store::open(root, config).expect("open store");
    let directory = UserDirectory::open(&store, PasswordHashing::cheapest()).expect("replay");
    (store, directory)
}

fn name(text: &str) -> UserName {
    UserName::new(text).expect("valid name")
}

fn table(text: &str) -> TableName {
    crate::users::table_name(text).expect("valid table")
}

#[test]
fn create_verify_and_list() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_store, users) = open(dir.path());
    let alice = users
        .create_user(&name("alice"), "pw-a", Role::User)
        .expect("create");
    assert_eq!((alice.name.as_str(), alice.role), ("alice", Role::User));
    users
        .create_user(&name("bob"), "pw-b", Role::Service)
        .expect("create");

    assert_eq!(users.verify_password("alice", "pw-a"), Some(alice.clone()));
    assert_eq!(users.verify_password("alice", "pw-b"), None);
    assert_eq!(users.verify_password("carol", "pw-a"), None);
    assert_eq!(users.verify_password("bad\nname", "pw-a"), None);
    let names: Vec<String> = users
        .list_users()
        .iter()
        .map(|u| u.name.to_string())
        .collect();
    assert_eq!(names, ["alice", "bob"]);

    let duplicate = users.create_user(&name("alice"), "x", Role::Dba);
    assert!(
        matches!(duplicate, Err(UserError::AlreadyExists(_))),
        "{duplicate:?}"
    );
    assert!(matches!(
        users.create_user(&name("eve"), "", Role::User),
        Err(UserError::InvalidPassword(_))
    ));
}

#[test]
fn every_change_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (_store, users) = open(dir.path());
        users
            .create_user(&name("alice"), "old", Role::User)
            .expect("create");
        users
            .create_user(&name("bob"), "pw", Role::User)
            .expect("create");
        users
            .create_user(&name("gone"), "pw", Role::User)
            .expect("create");
        users.set_password(&name("alice"), "new").expect("passwd");
        users.set_role(&name("bob"), Role::Dba).expect("role");
        let rooms = table("app.rooms");
        users
            .grant(
                &name("alice"),
                &rooms,
                &[Privilege::Select, Privilege::Insert],
            )
            .expect("grant");
        users
            .revoke(&name("alice"), &rooms, &[Privilege::Insert])
            .expect("revoke");
        users
            .grant(&name("alice"), &table("app.gone"), &[Privilege::Delete])
            .expect("grant");
        users
            .revoke(&name("alice"), &table("app.gone"), &Privilege::ALL)
            .expect("revoke");
        users
            .grant(&name("gone"), &rooms, &[Privilege::Select])
            .expect("grant");
        assert!(users.drop_user(&name("gone"), false).expect("drop"));
    }
    let (_store, users) = open(dir.path());
    assert!(users.verify_password("alice", "new").is_some());
    assert!(users.verify_password("alice", "old").is_none());
    assert_eq!(users.user("bob").map(|u| u.role), Some(Role::Dba));
    assert_eq!(users.user("gone"), None);
    let expected = BTreeMap::from([(table("app.rooms"), vec![Privilege::Select])]);
    assert_eq!(users.grants_of(&name("alice")), expected);
    assert!(users.grants_of(&name("gone")).is_empty());

    // A user re-created under a dropped name starts without the old grants.
    users
        .create_user(&name("gone"), "pw", Role::User)
        .expect("re-create");
    assert!(!users.has_privilege(&name("gone"), &table("app.rooms"), Privilege::Select));
}

#[test]
fn missing_users_and_if_exists() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_store, users) = open(dir.path());
    let ghost = name("ghost");
    assert!(matches!(
        users.set_password(&ghost, "x"),
        Err(UserError::NotFound(_))
    ));
    assert!(matches!(
        users.set_role(&ghost, Role::Dba),
        Err(UserError::NotFound(_))
    ));
    assert!(matches!(
        users.drop_user(&ghost, false),
        Err(UserError::NotFound(_))
    ));
    assert!(!users.drop_user(&ghost, true).expect("if exists"));
    let grant = users.grant(&ghost, &table("app.rooms"), &[Privilege::Select]);
    assert!(matches!(grant, Err(UserError::NotFound(_))), "{grant:?}");
}

#[test]
fn privileges_need_a_grant_unless_admin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_store, users) = open(dir.path());
    let rooms = table("app.rooms");
    users
        .create_user(&name("alice"), "pw", Role::User)
        .expect("create");
    users
        .create_user(&name("dba"), "pw", Role::Dba)
        .expect("create");
    assert!(!users.has_privilege(&name("alice"), &rooms, Privilege::Select));
    users
        .grant(&name("alice"), &rooms, &[Privilege::Select])
        .expect("grant");
    assert!(users.has_privilege(&name("alice"), &rooms, Privilege::Select));
    assert!(!users.has_privilege(&name("alice"), &rooms, Privilege::Update));
    assert!(!users.has_privilege(&name("alice"), &table("app.other"), Privilege::Select));
    assert!(users.has_privilege(&name("dba"), &rooms, Privilege::Delete));
    assert!(!users.has_privilege(&name("nobody"), &rooms, Privilege::Select));
}

#[test]
fn admin_is_bootstrapped_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let generated = {
        let (_store, users) = open(dir.path());
        let outcome = users.bootstrap_admin(None, false).expect("bootstrap");
        let AdminBootstrap::CreatedWithGeneratedPassword(password) = outcome else {
            panic!("expected a generated password, got {outcome:?}");
        };
        password
    };
    let (_store, users) = open(dir.path());
    let again = users
        .bootstrap_admin(Some("other"), false)
        .expect("bootstrap");
    assert_eq!(again, AdminBootstrap::AlreadyInitialized);
    let admin = users
        .verify_password(ADMIN_USER, &generated)
        .expect("generated works");
    assert_eq!(admin.role, Role::System);

    let fresh = tempfile::tempdir().expect("tempdir");
    let (_store, users) = open(fresh.path());
    let given = users
        .bootstrap_admin(Some("given"), false)
        .expect("bootstrap");
    assert_eq!(given, AdminBootstrap::CreatedWithGivenPassword);
    assert!(users.verify_password(ADMIN_USER, "given").is_some());
}

#[test]
fn a_recreated_user_is_another_incarnation_and_standing_follows_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, users) = open(dir.path());
    let carol = name("carol");
    let rooms = table("app.rooms");
    let first = users.create_user(&carol, "pw", Role::User).expect("create");
    assert_eq!(first.rows, RowsLayout::ByIncarnation);
    let mut changes = users.access_changes();
    users
        .grant(&carol, &rooms, &[Privilege::Select])
        .expect("grant");
    assert!(changes.has_changed().expect("open"), "a grant is announced");
    changes.borrow_and_update();
    let standing =
        |user: &User, object| users.standing(&carol, user.incarnation, object, Privilege::Select);
    assert_eq!(standing(&first, Some(&rooms)), Standing::Allowed);
    users
        .revoke(&carol, &rooms, &[Privilege::Select])
        .expect("revoke");
    assert!(
        changes.has_changed().expect("open"),
        "a revoke is announced"
    );
    assert_eq!(standing(&first, Some(&rooms)), Standing::Revoked);
    assert_eq!(standing(&first, None), Standing::Allowed, "its own rows");

    users.drop_user(&carol, false).expect("drop");
    assert_eq!(standing(&first, None), Standing::Dropped);
    let second = users.create_user(&carol, "pw", Role::Dba).expect("create");
    assert!(second.incarnation > first.incarnation);
    assert_eq!(
        standing(&first, None),
        Standing::Dropped,
        "the old one stays gone"
    );
    assert_eq!(standing(&second, Some(&rooms)), Standing::Allowed, "a dba");
    users.set_role(&carol, Role::User).expect("alter");
    assert_eq!(standing(&second, Some(&rooms)), Standing::Revoked);

    // A restart finds the same incarnation; names over the new-user limit are refused.
    drop(users);
    drop(store);
    let (_store, users) = open(dir.path());
    let again = users.user("carol").expect("carol");
    assert_eq!(again.incarnation, second.incarnation);
    let long = name(&"x".repeat(crate::limits::NEW_USER_NAME_BYTES_MAX + 1));
    let refused = users.create_user(&long, "pw", Role::User);
    assert!(
        matches!(refused, Err(UserError::NameTooLong { .. })),
        "{refused:?}"
    );
}
