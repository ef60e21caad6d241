//! The directory's records in the `system/users` partition and the in-memory state they
//! rebuild. Pure: bytes in, state out; appending and reading the log is `mod.rs`'s job.
//!
//! Keys (user names may hold any non-control character, `/` included; table names never
//! hold `/`): `u/<user>` holds a user's full current record (JSON `{"v":1,"role","password_hash",
//! "created_unix_ms","rows_by_incarnation"}`; the last is absent in records of older builds,
//! whose users keep their rows under the name alone). The `_seq` of the first `u/<user>` record
//! after none or a tombstone is the user's incarnation; `g/<user>/<namespace.table>` holds the user's full privilege set on
//! that table (JSON `{"v":1,"privileges":["select",...]}`). A tombstone deletes the key. Every
//! change writes the whole value, so replay is "the last record per key wins".

use std::collections::BTreeMap;
use strand_sql_view::{Privilege, Role, TableName, UserName};

use serde::{Deserialize, Serialize};

use super::model::{
    parse_privilege, parse_role, privilege_bit, privilege_word, table_name, user_name, RowsLayout,
    User, UserError, UserIncarnation,
};

const FORMAT_VERSION: u32 = 1;
const USER_PREFIX: &str = "u/";
const GRANT_PREFIX: &str = "g/";

/// A set of privileges, one bit each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrivilegeSet(u8);

impl PrivilegeSet {
    pub fn contains(self, privilege: Privilege) -> bool {
        self.0 & privilege_bit(privilege) != 0
    }

    pub fn with(self, privileges: &[Privilege]) -> PrivilegeSet {
        PrivilegeSet(
            privileges
                .iter()
                .fold(self.0, |bits, p| bits | privilege_bit(*p)),
        )
    }

    pub fn without(self, privileges: &[Privilege]) -> PrivilegeSet {
        PrivilegeSet(
            privileges
                .iter()
                .fold(self.0, |bits, p| bits & !privilege_bit(*p)),
        )
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn to_vec(self) -> Vec<Privilege> {
        Privilege::ALL
            .into_iter()
            .filter(|p| self.contains(*p))
            .collect()
    }
}

/// A user as stored: the public part plus the password hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredUser {
    pub role: Role,
    pub password_hash: String,
    pub created_unix_ms: u64,
    /// Not stored in the payload: the `_seq` of the creation record, known from the log.
    pub incarnation: UserIncarnation,
    pub rows: RowsLayout,
}

#[derive(Serialize, Deserialize)]
struct UserPayload {
    v: u32,
    role: String,
    password_hash: String,
    created_unix_ms: u64,
    #[serde(default)]
    rows_by_incarnation: bool,
}

#[derive(Serialize, Deserialize)]
struct GrantPayload {
    v: u32,
    privileges: Vec<String>,
}

/// Everything the directory knows, rebuilt from the partition on start.
#[derive(Debug, Default)]
pub struct DirectoryState {
    pub users: BTreeMap<UserName, StoredUser>,
    pub grants: BTreeMap<UserName, BTreeMap<TableName, PrivilegeSet>>,
}

impl DirectoryState {
    pub fn user(&self, name: &UserName) -> Option<User> {
        self.users.get(name).map(|stored| User {
            name: name.clone(),
            role: stored.role,
            created_unix_ms: stored.created_unix_ms,
            incarnation: stored.incarnation,
            rows: stored.rows,
        })
    }

    /// Apply one record read back from the log (`seq` only names it in errors).
    pub fn apply(
        &mut self,
        seq: u64,
        key: &[u8],
        payload: &[u8],
        tombstone: bool,
    ) -> Result<(), UserError> {
        let corrupt = |reason: String| UserError::CorruptRecord { seq, reason };
        let key = std::str::from_utf8(key).map_err(|_| corrupt("key is not UTF-8".into()))?;
        match DirectoryKey::parse(key).map_err(|e| corrupt(e.to_string()))? {
            DirectoryKey::User(name) if tombstone => {
                self.users.remove(&name);
            }
            DirectoryKey::User(name) => {
                let mut user = decode_user(payload).map_err(corrupt)?;
                // A rewrite (password, role) keeps the user's incarnation; a record after none
                // or a tombstone creates a user, and its `_seq` is the new incarnation.
                user.incarnation = self
                    .users
                    .get(&name)
                    .map_or(UserIncarnation(seq), |old| old.incarnation);
                self.users.insert(name, user);
            }
            DirectoryKey::Grant(name, table) => {
                let set = if tombstone {
                    PrivilegeSet::default()
                } else {
                    decode_grant(payload).map_err(corrupt)?
                };
                self.set_grant(&name, table, set);
            }
        }
        Ok(())
    }

    pub fn set_grant(&mut self, name: &UserName, table: TableName, set: PrivilegeSet) {
        if set.is_empty() {
            if let Some(tables) = self.grants.get_mut(name) {
                tables.remove(&table);
                if tables.is_empty() {
                    self.grants.remove(name);
                }
            }
        } else {
            self.grants
                .entry(name.clone())
                .or_default()
                .insert(table, set);
        }
    }
}

/// What a key of the partition names.
#[derive(Debug, PartialEq, Eq)]
pub enum DirectoryKey {
    User(UserName),
    Grant(UserName, TableName),
}

impl DirectoryKey {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            DirectoryKey::User(name) => format!("{USER_PREFIX}{name}").into_bytes(),
            DirectoryKey::Grant(name, table) => {
                format!("{GRANT_PREFIX}{name}/{table}").into_bytes()
            }
        }
    }

    fn parse(key: &str) -> Result<DirectoryKey, UserError> {
        if let Some(name) = key.strip_prefix(USER_PREFIX) {
            return Ok(DirectoryKey::User(user_name(name)?));
        }
        let unknown = || UserError::InvalidName {
            name: key.to_string(),
            reason: "unknown directory key (written by a newer strand?)".to_string(),
        };
        let rest = key.strip_prefix(GRANT_PREFIX).ok_or_else(unknown)?;
        // A table name never holds '/'; a user name may.
        let (name, table) = rest.rsplit_once('/').ok_or_else(unknown)?;
        Ok(DirectoryKey::Grant(user_name(name)?, table_name(table)?))
    }
}

// serde_json fails only on maps with non-string keys and on failing Serialize impls; the
// payload is a struct of strings, numbers and bools.
#[allow(clippy::expect_used)]
pub fn encode_user(user: &StoredUser) -> Vec<u8> {
    let payload = UserPayload {
        v: FORMAT_VERSION,
        role: user.role.name().to_string(),
        password_hash: user.password_hash.clone(),
        created_unix_ms: user.created_unix_ms,
        rows_by_incarnation: user.rows == RowsLayout::ByIncarnation,
    };
    serde_json::to_vec(&payload).expect("strings and numbers always serialize")
}

// serde_json fails only on maps with non-string keys and on failing Serialize impls; the
// payload is a struct of strings, numbers and bools.
#[allow(clippy::expect_used)]
pub fn encode_grant(set: PrivilegeSet) -> Vec<u8> {
    let payload = GrantPayload {
        v: FORMAT_VERSION,
        privileges: set
            .to_vec()
            .iter()
            .map(|p| privilege_word(*p).to_string())
            .collect(),
    };
    serde_json::to_vec(&payload).expect("strings and numbers always serialize")
}

fn decode_user(payload: &[u8]) -> Result<StoredUser, String> {
    let decoded: UserPayload = serde_json::from_slice(payload).map_err(|e| e.to_string())?;
    check_version(decoded.v)?;
    Ok(StoredUser {
        role: parse_role(&decoded.role).map_err(|e| e.to_string())?,
        password_hash: decoded.password_hash,
        created_unix_ms: decoded.created_unix_ms,
        // Set by `DirectoryState::apply`, which knows the record's `_seq`.
        incarnation: UserIncarnation(0),
        rows: match decoded.rows_by_incarnation {
            true => RowsLayout::ByIncarnation,
            false => RowsLayout::ByName,
        },
    })
}

fn decode_grant(payload: &[u8]) -> Result<PrivilegeSet, String> {
    let decoded: GrantPayload = serde_json::from_slice(payload).map_err(|e| e.to_string())?;
    check_version(decoded.v)?;
    let privileges = decoded
        .privileges
        .iter()
        .map(|p| parse_privilege(p))
        .collect::<Result<Vec<Privilege>, UserError>>()
        .map_err(|e| e.to_string())?;
    Ok(PrivilegeSet::default().with(&privileges))
}

fn check_version(version: u32) -> Result<(), String> {
    if version == FORMAT_VERSION {
        Ok(())
    } else {
        Err(format!(
            "format version {version} is not supported (this build reads 1)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> UserName {
        UserName::new(text).expect("valid name")
    }

    #[test]
    fn records_round_trip_and_last_write_wins() {
        let mut state = DirectoryState::default();
        let stored = StoredUser {
            role: Role::Dba,
            password_hash: "$argon2id$x".into(),
            created_unix_ms: 7,
            incarnation: UserIncarnation(1),
            rows: RowsLayout::ByIncarnation,
        };
        let key = DirectoryKey::User(name("alice")).encode();
        state
            .apply(1, &key, &encode_user(&stored), false)
            .expect("apply");
        assert_eq!(state.users.get(&name("alice")), Some(&stored));
        // A rewrite keeps the incarnation; a record of an older build keeps rows by name.
        let old_build = br#"{"v":1,"role":"dba","password_hash":"h","created_unix_ms":7}"#;
        state.apply(5, &key, old_build, false).expect("apply");
        let alice = &state.users[&name("alice")];
        assert_eq!(
            (alice.incarnation, alice.rows),
            (UserIncarnation(1), RowsLayout::ByName)
        );
        state
            .apply(6, &key, &encode_user(&stored), false)
            .expect("apply");

        let table = table_name("app.rooms").expect("valid table");
        let grant_key = DirectoryKey::Grant(name("alice"), table.clone()).encode();
        assert_eq!(grant_key, b"g/alice/app.rooms");
        let slashed = DirectoryKey::Grant(name("a/b"), table.clone());
        let parsed = DirectoryKey::parse(std::str::from_utf8(&slashed.encode()).expect("UTF-8"));
        assert_eq!(parsed.expect("parses"), slashed);
        let set = PrivilegeSet::default().with(&[Privilege::Select, Privilege::Delete]);
        state
            .apply(2, &grant_key, &encode_grant(set), false)
            .expect("apply");
        assert_eq!(state.grants[&name("alice")][&table], set);

        state.apply(3, &grant_key, b"", true).expect("apply");
        state.apply(4, &key, b"", true).expect("apply");
        assert!(state.users.is_empty() && state.grants.is_empty());
        // Created again: another incarnation.
        state
            .apply(8, &key, &encode_user(&stored), false)
            .expect("apply");
        assert_eq!(state.users[&name("alice")].incarnation, UserIncarnation(8));
    }

    #[test]
    fn unreadable_records_are_typed_errors() {
        let mut state = DirectoryState::default();
        let cases: [(&[u8], &[u8]); 4] = [
            (b"u/alice", b"{not json"),
            (
                b"u/alice",
                br#"{"v":2,"role":"user","password_hash":"h","created_unix_ms":1}"#,
            ),
            (b"x/alice", b"{}"),
            (b"g/alice", br#"{"v":1,"privileges":[]}"#),
        ];
        for (key, payload) in cases {
            let error = state.apply(9, key, payload, false).expect_err("corrupt");
            assert!(
                matches!(error, UserError::CorruptRecord { seq: 9, .. }),
                "{error}"
            );
        }
    }
}
