//! Users, roles and privileges (docs/sql.md, "Users"): validated [`UserName`] and [`Password`],
//! [`Role`] and [`Privilege`]. It does not own authentication or password hashing (the broker
//! hashes with argon2); [`Password`] only carries the text from the statement to the broker
//! and never prints it.

use std::fmt;

use crate::error::{code, Result, SqlError};
use crate::limits;

/// A user name: 1 to [`limits::USER_NAME_BYTES_MAX`] bytes, no control characters.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct UserName(String);

impl UserName {
    /// Validates a user name (`invalid_value` otherwise).
    pub fn new(text: &str) -> Result<UserName> {
        if text.is_empty()
            || text.len() > limits::USER_NAME_BYTES_MAX
            || text.chars().any(char::is_control)
        {
            return Err(SqlError::new(
                code::INVALID_VALUE,
                format!(
                    "invalid user name: 1 to {} bytes without control characters",
                    limits::USER_NAME_BYTES_MAX
                ),
                None,
            ));
        }
        Ok(UserName(text.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UserName {
    type Error = SqlError;
    fn try_from(text: String) -> Result<UserName> {
        UserName::new(&text)
    }
}

impl From<UserName> for String {
    fn from(name: UserName) -> String {
        name.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A password in clear text, as written in `CREATE USER` / `ALTER USER`. Debug output hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Validates a password: 1 to [`limits::PASSWORD_BYTES_MAX`] bytes (`invalid_value`).
    pub fn new(text: &str) -> Result<Password> {
        if text.is_empty() || text.len() > limits::PASSWORD_BYTES_MAX {
            return Err(SqlError::new(
                code::INVALID_VALUE,
                format!("a password has 1 to {} bytes", limits::PASSWORD_BYTES_MAX),
                None,
            ));
        }
        Ok(Password(text.to_owned()))
    }

    /// The clear text, for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A user's role.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// An application user: own rows of USER tables, granted SHARED tables.
    User,
    /// A backend service.
    Service,
    /// A database administrator.
    Dba,
    /// The system itself.
    System,
}

impl Role {
    /// `user`, `service`, `dba` or `system`.
    pub fn name(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Service => "service",
            Role::Dba => "dba",
            Role::System => "system",
        }
    }

    /// The role with this name, in any case.
    pub fn from_name(text: &str) -> Option<Role> {
        [Role::User, Role::Service, Role::Dba, Role::System]
            .into_iter()
            .find(|role| role.name().eq_ignore_ascii_case(text))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A privilege on a table or topic, granted with `GRANT`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum Privilege {
    /// Read rows, subscribe.
    Select,
    /// Insert rows.
    Insert,
    /// Update rows.
    Update,
    /// Delete rows.
    Delete,
}

impl Privilege {
    /// `SELECT`, `INSERT`, `UPDATE` or `DELETE`.
    pub fn name(self) -> &'static str {
        match self {
            Privilege::Select => "SELECT",
            Privilege::Insert => "INSERT",
            Privilege::Update => "UPDATE",
            Privilege::Delete => "DELETE",
        }
    }

    /// All four, for `GRANT ALL`.
    pub const ALL: [Privilege; 4] = [
        Privilege::Select,
        Privilege::Insert,
        Privilege::Update,
        Privilege::Delete,
    ];
}

impl fmt::Display for Privilege {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_passwords_are_validated() {
        assert!(UserName::new("alice@example.com").is_ok());
        assert_eq!(UserName::new("").unwrap_err().code, code::INVALID_VALUE);
        assert!(UserName::new("a\nb").is_err());
        assert!(Password::new("").is_err());
        assert_eq!(
            format!("{:?}", Password::new("secret").unwrap()),
            "Password(***)"
        );
    }

    #[test]
    fn roles_parse_in_any_case() {
        assert_eq!(Role::from_name("DBA"), Some(Role::Dba));
        assert_eq!(Role::from_name("root"), None);
        assert_eq!(Role::Service.to_string(), "service");
    }
}
