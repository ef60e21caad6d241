//! The nouns of the user directory: [`User`], [`UserIncarnation`], [`RowsLayout`] and the
//! typed [`UserError`]. The identity types (user names, roles, privileges, table names) are
//! `strand-sql-view`'s, parsed once; what only the broker needs of them (who is an
//! administrator, how a privilege is stored, the shorter limit on new user names) is the
//! functions here. No I/O, no state.

use strand_log::LogError;
use strand_sql_view::{Name, Privilege, Role, TableName, UserName};

use crate::limits::NEW_USER_NAME_BYTES_MAX;

/// Everything the directory can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// A user name breaks the SQL layer's rule (1 to 128 bytes, no control characters).
    #[error("invalid user name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// Which part of the rule it breaks.
        reason: String,
    },
    /// A granted table's name is not `namespace.table`, two identifiers.
    #[error("invalid table name {name:?}: {reason}")]
    InvalidTableName {
        /// The name as given.
        name: String,
        /// Which part of the rule it breaks.
        reason: String,
    },
    /// A role name that is none of `user`, `service`, `dba`, `system`.
    #[error("unknown role {0:?}: expected user, service, dba or system")]
    InvalidRole(String),
    /// A privilege name that is none of `SELECT`, `INSERT`, `UPDATE`, `DELETE`.
    #[error("unknown privilege {0:?}: expected SELECT, INSERT, UPDATE or DELETE")]
    InvalidPrivilege(String),
    /// A new password is empty or too long; the text says which.
    #[error("invalid password: {0}")]
    InvalidPassword(&'static str),
    /// A new user's name is longer than `NEW_USER_NAME_BYTES_MAX`.
    #[error(
        "user name {name:?} is {bytes} bytes; a new user's name may have at most {max} bytes \
        (its rows are stored under a path made from it)"
    )]
    NameTooLong {
        /// The name as given.
        name: String,
        /// Its length in bytes.
        bytes: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// `CREATE USER` of a name that is taken.
    #[error("user {0} already exists")]
    AlreadyExists(UserName),
    /// The named user is not in the directory.
    #[error("user {0} does not exist")]
    NotFound(UserName),
    /// The directory is full: of users, or of one user's grants.
    #[error("too many {what}: the limit is {max}")]
    TooMany {
        /// What ran out, in words ("users", "grants for one user").
        what: &'static str,
        /// The limit that was reached.
        max: usize,
    },
    /// argon2 could not hash or check a password.
    #[error("password hashing failed: {0}")]
    Hashing(String),
    /// No salt or generated password could be drawn.
    #[error("the OS random source failed: {0}")]
    Random(String),
    /// The directory's log could not be read or written.
    #[error("storage failed: {0}")]
    Storage(#[from] LogError),
    /// A cluster member could not replicate the change (not the leader, no majority).
    #[error(transparent)]
    Replication(#[from] crate::cluster::writer::ReplicationError),
    /// A stored record does not decode: the directory will not guess what it said.
    #[error("record {seq} of the user directory is unreadable: {reason}")]
    CorruptRecord {
        /// The record's `_seq` in the directory's partition.
        seq: u64,
        /// What does not decode.
        reason: String,
    },
}

/// Parses a user name that did not come through a statement (credentials, stored records):
/// the rule of `strand-sql-view`'s [`UserName`] (1 to 128 bytes, no control characters),
/// refused as a [`UserError`]. Case-sensitive, as SQL string literals are. A name with `:`
/// cannot use Basic credentials (the separator); it logs in for a token instead.
pub fn user_name(text: &str) -> Result<UserName, UserError> {
    UserName::new(text).map_err(|error| UserError::InvalidName {
        name: text.to_string(),
        reason: error.message,
    })
}

/// Refuses a name too long for a new user: every name `CREATE USER` accepts maps to a
/// partition directory within the file system's 255-byte name limit. Names already stored
/// (up to the SQL layer's `USER_NAME_BYTES_MAX`, by older builds) stay usable.
pub fn check_new_user_name(name: &UserName) -> Result<(), UserError> {
    match name.as_str().len() {
        bytes if bytes > NEW_USER_NAME_BYTES_MAX => Err(UserError::NameTooLong {
            name: name.to_string(),
            bytes,
            max: NEW_USER_NAME_BYTES_MAX,
        }),
        _ => Ok(()),
    }
}

/// Administrators (`dba`, `system`) pass every privilege check.
pub fn is_admin(role: Role) -> bool {
    matches!(role, Role::Dba | Role::System)
}

/// The role named `text`, in any case (the directory's records, `--role` flags).
pub fn parse_role(text: &str) -> Result<Role, UserError> {
    Role::from_name(text).ok_or_else(|| UserError::InvalidRole(text.to_string()))
}

/// A privilege as the directory's records store it and refusals name it: `select`,
/// `insert`, `update`, `delete`.
pub fn privilege_word(privilege: Privilege) -> &'static str {
    match privilege {
        Privilege::Select => "select",
        Privilege::Insert => "insert",
        Privilege::Update => "update",
        Privilege::Delete => "delete",
    }
}

/// The privilege named `text`, in any case.
pub fn parse_privilege(text: &str) -> Result<Privilege, UserError> {
    Privilege::ALL
        .into_iter()
        .find(|p| p.name().eq_ignore_ascii_case(text))
        .ok_or_else(|| UserError::InvalidPrivilege(text.to_string()))
}

/// The privilege's bit in a stored [`super::record::PrivilegeSet`].
pub(crate) fn privilege_bit(privilege: Privilege) -> u8 {
    1 << (privilege as u8)
}

/// Parses the name of a granted table or topic as the directory's records store it,
/// `namespace.name`: two identifiers of the SQL layer's [`Name`] rule.
pub fn table_name(text: &str) -> Result<TableName, UserError> {
    let invalid = |reason: String| UserError::InvalidTableName {
        name: text.to_string(),
        reason,
    };
    let (namespace, table) = text
        .split_once('.')
        .ok_or_else(|| invalid("expected namespace.table, each an identifier".to_string()))?;
    let namespace = Name::new(namespace).map_err(|e| invalid(e.message))?;
    let table = Name::new(table).map_err(|e| invalid(e.message))?;
    Ok(TableName { namespace, table })
}

/// Which user of a name this is: the `_seq` of the record that created it (as a table's
/// incarnation is). A user dropped and created again under the same name is another user,
/// with another incarnation: its own rows of USER tables, and no token of the old one works
/// for it. `_seq`s strictly increase, whatever the wall clock does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserIncarnation(pub u64);

/// Where a user's rows of USER and STREAM tables live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowsLayout {
    /// `u/<hex of the name>`: users created by a build before incarnations.
    ByName,
    /// `u/<hex of the name>.<incarnation>`: a re-created user starts with no rows.
    ByIncarnation,
}

/// A user as callers see it: never the password hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// The name the user logs in with.
    pub name: UserName,
    /// What the user may do beyond its grants (administrators: everything).
    pub role: Role,
    /// When the user was created, milliseconds since the Unix epoch (informational only:
    /// nothing is decided by it, the wall clock may jump).
    pub created_unix_ms: u64,
    /// Which user of this name it is; tokens and rows belong to one incarnation.
    pub incarnation: UserIncarnation,
    /// Where its rows of USER and STREAM tables live.
    pub rows: RowsLayout,
}

/// What a user may still do with a stream it opened, as the directory says now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// The user exists and still holds the privilege: the stream goes on.
    Allowed,
    /// The user exists but no longer holds the privilege (REVOKE, or a role change).
    Revoked,
    /// The user was dropped (or dropped and created again: another incarnation).
    Dropped,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_parsed_once() {
        for good in ["alice.b-c_d@x", "o'brien", "a/b", "al ice", "é"] {
            assert!(user_name(good).is_ok(), "{good:?} refused");
        }
        for bad in ["", "a\nb", "\u{7f}", &"x".repeat(129)] {
            assert!(user_name(bad).is_err(), "{bad:?} accepted");
        }
        let longest = user_name(&"é".repeat(NEW_USER_NAME_BYTES_MAX / 2)).expect("name");
        assert!(check_new_user_name(&longest).is_ok());
        let long = user_name(&"x".repeat(NEW_USER_NAME_BYTES_MAX + 1)).expect("name");
        assert!(matches!(
            check_new_user_name(&long),
            Err(UserError::NameTooLong { .. })
        ));
        assert!(table_name("app.rooms").is_ok());
        assert!(table_name("_a.b_1").is_ok());
        for bad in ["rooms", "app.", ".rooms", "a.b.c", "1a.b", "a.b-c", "a/b.c"] {
            assert!(table_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn roles_and_privileges_parse_case_insensitively() {
        assert_eq!(parse_role("DBA").ok(), Some(Role::Dba));
        assert!(parse_role("root").is_err());
        assert_eq!(parse_privilege("Select").ok(), Some(Privilege::Select));
        assert!(parse_privilege("drop").is_err());
        assert!(is_admin(Role::System) && is_admin(Role::Dba));
        assert!(!is_admin(Role::User) && !is_admin(Role::Service));
        for privilege in Privilege::ALL {
            assert_eq!(
                parse_privilege(privilege_word(privilege)).ok(),
                Some(privilege)
            );
        }
    }
}
