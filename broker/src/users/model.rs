//! The nouns of the user directory: [`UserName`], [`Role`], [`Privilege`], [`TableName`],
//! [`User`] and the typed [`UserError`]. Each name is parsed once, so a value of these types is
//! always valid; this module does no I/O and keeps no state.

use std::fmt;
use std::str::FromStr;

use strand_log::LogError;

use crate::limits::{NEW_USER_NAME_BYTES_MAX, TABLE_NAME_BYTES_MAX};
use strand_sql_view::limits::USER_NAME_BYTES_MAX;

/// Everything the directory can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("invalid user name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("invalid table name {name:?}: {reason}")]
    InvalidTableName { name: String, reason: &'static str },
    #[error("unknown role {0:?}: expected user, service, dba or system")]
    InvalidRole(String),
    #[error("unknown privilege {0:?}: expected SELECT, INSERT, UPDATE or DELETE")]
    InvalidPrivilege(String),
    #[error("invalid password: {0}")]
    InvalidPassword(&'static str),
    #[error(
        "user name {name:?} is {bytes} bytes; a new user's name may have at most {max} bytes \
        (its rows are stored under a path made from it)"
    )]
    NameTooLong {
        name: String,
        bytes: usize,
        max: usize,
    },
    #[error("user {0} already exists")]
    AlreadyExists(UserName),
    #[error("user {0} does not exist")]
    NotFound(UserName),
    #[error("too many {what}: the limit is {max}")]
    TooMany { what: &'static str, max: usize },
    #[error("password hashing failed: {0}")]
    Hashing(String),
    #[error("the OS random source failed: {0}")]
    Random(String),
    #[error("storage failed: {0}")]
    Storage(#[from] LogError),
    #[error("record {seq} of the user directory is unreadable: {reason}")]
    CorruptRecord { seq: u64, reason: String },
}

/// A user name: 1 to `USER_NAME_BYTES_MAX` bytes without control characters (the rule of
/// `strand-sql-view`'s user names, so every name a statement accepts can be stored).
/// Case-sensitive, as SQL string literals are. A name with `:` cannot use Basic credentials
/// (the separator); it logs in for a token instead.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserName(String);

impl UserName {
    pub fn new(name: impl Into<String>) -> Result<UserName, UserError> {
        let name = name.into();
        let reason = if name.is_empty() {
            Some("it is empty")
        } else if name.len() > USER_NAME_BYTES_MAX {
            Some("it is longer than 128 bytes")
        } else if name.chars().any(char::is_control) {
            Some("it contains control characters")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(UserError::InvalidName { name, reason }),
            None => Ok(UserName(name)),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Refuse a name too long for a new user: every name `CREATE USER` accepts maps to a
    /// partition directory within the file system's 255-byte name limit. Names already
    /// stored (up to `USER_NAME_BYTES_MAX`, by older builds) stay usable.
    pub fn check_new(&self) -> Result<(), UserError> {
        match self.0.len() {
            bytes if bytes > NEW_USER_NAME_BYTES_MAX => Err(UserError::NameTooLong {
                name: self.0.clone(),
                bytes,
                max: NEW_USER_NAME_BYTES_MAX,
            }),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a user is, in increasing power. `dba` and `system` are administrators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Reads and writes its own rows of USER tables, and what it is granted.
    User,
    /// A backend service: like `user`, meant for service accounts (consumers, producers).
    Service,
    /// Administers namespaces, tables, topics, users and grants.
    Dba,
    /// The built-in superuser (`admin`).
    System,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Service => "service",
            Role::Dba => "dba",
            Role::System => "system",
        }
    }

    /// Administrators pass every privilege check.
    pub fn is_admin(self) -> bool {
        matches!(self, Role::Dba | Role::System)
    }
}

impl FromStr for Role {
    type Err = UserError;

    fn from_str(text: &str) -> Result<Role, UserError> {
        match text.to_ascii_lowercase().as_str() {
            "user" => Ok(Role::User),
            "service" => Ok(Role::Service),
            "dba" => Ok(Role::Dba),
            "system" => Ok(Role::System),
            _ => Err(UserError::InvalidRole(text.to_string())),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a grant allows on a table or topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Privilege {
    Select,
    Insert,
    Update,
    Delete,
}

impl Privilege {
    pub const ALL: [Privilege; 4] = [
        Privilege::Select,
        Privilege::Insert,
        Privilege::Update,
        Privilege::Delete,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Privilege::Select => "select",
            Privilege::Insert => "insert",
            Privilege::Update => "update",
            Privilege::Delete => "delete",
        }
    }

    pub(crate) fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl FromStr for Privilege {
    type Err = UserError;

    fn from_str(text: &str) -> Result<Privilege, UserError> {
        Privilege::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| UserError::InvalidPrivilege(text.to_string()))
    }
}

impl fmt::Display for Privilege {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str().to_ascii_uppercase())
    }
}

/// A table or topic name, `namespace.table`: two identifiers (ASCII letter or `_`, then
/// letters, digits, `_`). The SQL layer passes names already case-normalized.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableName(String);

impl TableName {
    pub fn new(name: impl Into<String>) -> Result<TableName, UserError> {
        let name = name.into();
        let identifier = |part: &str| {
            let mut bytes = part.bytes();
            bytes
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
                && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        };
        let reason = match name.split_once('.') {
            _ if name.len() > TABLE_NAME_BYTES_MAX => Some("it is longer than 255 bytes"),
            Some((namespace, table)) if identifier(namespace) && identifier(table) => None,
            _ => Some("expected namespace.table, each an identifier"),
        };
        match reason {
            Some(reason) => Err(UserError::InvalidTableName { name, reason }),
            None => Ok(TableName(name)),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
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
    pub name: UserName,
    pub role: Role,
    /// When the user was created, milliseconds since the Unix epoch (informational only:
    /// nothing is decided by it, the wall clock may jump).
    pub created_unix_ms: u64,
    pub incarnation: UserIncarnation,
    pub rows: RowsLayout,
}

/// What a user may still do with a stream it opened, as the directory says now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
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
            assert!(UserName::new(good).is_ok(), "{good:?} refused");
        }
        for bad in ["", "a\nb", "\u{7f}", &"x".repeat(129)] {
            assert!(UserName::new(bad).is_err(), "{bad:?} accepted");
        }
        let longest = UserName::new("é".repeat(NEW_USER_NAME_BYTES_MAX / 2)).expect("name");
        assert!(longest.check_new().is_ok());
        let long = UserName::new("x".repeat(NEW_USER_NAME_BYTES_MAX + 1)).expect("name");
        assert!(matches!(
            long.check_new(),
            Err(UserError::NameTooLong { .. })
        ));
        assert!(TableName::new("app.rooms").is_ok());
        assert!(TableName::new("_a.b_1").is_ok());
        for bad in ["rooms", "app.", ".rooms", "a.b.c", "1a.b", "a.b-c", "a/b.c"] {
            assert!(TableName::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn roles_and_privileges_parse_case_insensitively() {
        assert_eq!("DBA".parse::<Role>().ok(), Some(Role::Dba));
        assert!("root".parse::<Role>().is_err());
        assert_eq!("Select".parse::<Privilege>().ok(), Some(Privilege::Select));
        assert!("drop".parse::<Privilege>().is_err());
        assert!(Role::System.is_admin() && Role::Dba.is_admin());
        assert!(!Role::User.is_admin() && !Role::Service.is_admin());
    }
}
