//! The user directory: users (argon2-hashed passwords, roles) and per-table grants, kept
//! durably in the `system/users` partition of the store and in memory for lookups.
//!
//! The SQL engine calls [`UserDirectory`] for CREATE/ALTER/DROP USER and GRANT/REVOKE; the HTTP
//! layer calls it to check credentials. It does not parse SQL, issue tokens or decide what a
//! role may do beyond [`UserDirectory::has_privilege`].
//!
//! Every change is appended (and durable under the fsync policy) before it becomes visible in
//! memory; on open the partition is replayed, so a restart sees exactly the acknowledged changes.

mod model;
mod password;
mod record;
mod replicated;

use parking_lot::{Mutex, RwLock};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use strand_log::{NewRecord, Partition, PartitionId, ReadFrom, Seq, Store};
use strand_sql_view::{Privilege, Role, TableName, UserName};
use tokio::sync::watch;

pub use model::{
    check_new_user_name, is_admin, parse_privilege, parse_role, privilege_word, table_name,
    user_name, RowsLayout, Standing, User, UserError, UserIncarnation,
};
pub use password::{check_password, generate_password, random_bytes, PasswordHashing};
use record::{encode_grant, encode_user, DirectoryKey, DirectoryState, PrivilegeSet, StoredUser};
use replicated::ChangeLock;

use crate::cluster::writer::BlockingWriter;
use crate::limits::{GENERATED_PASSWORD_CHARS, GRANTS_PER_USER_MAX, USERS_MAX};

/// Name of the partition holding users and grants.
pub const USERS_PARTITION: &str = "system/users";
/// The superuser created on first start.
pub const ADMIN_USER: &str = "admin";

/// What [`UserDirectory::bootstrap_admin`] did. `Debug` never shows a generated password.
#[derive(PartialEq, Eq)]
pub enum AdminBootstrap {
    /// The directory already had users; nothing was created.
    AlreadyInitialized,
    /// `admin` was created with the password the caller gave.
    CreatedWithGivenPassword,
    /// `admin` was created with this generated password; show it once, never log it.
    CreatedWithGeneratedPassword(String),
}

impl std::fmt::Debug for AdminBootstrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AdminBootstrap::AlreadyInitialized => "AlreadyInitialized",
            AdminBootstrap::CreatedWithGivenPassword => "CreatedWithGivenPassword",
            AdminBootstrap::CreatedWithGeneratedPassword(_) => "CreatedWithGeneratedPassword(..)",
        })
    }
}

/// Users and grants; cheap to share (`Arc`), safe to call from many threads.
#[derive(Debug)]
pub struct UserDirectory {
    partition: Arc<Partition>,
    partition_id: PartitionId,
    /// On a cluster member: how changes are replicated (`replicated.rs`).
    replication: OnceLock<BlockingWriter>,
    /// Every record up to here is in `state` (kept for [`UserDirectory::catch_up`]).
    replayed_through: Mutex<Seq>,
    state: RwLock<DirectoryState>,
    /// Held by a change from its checks until it is applied, so checks and appends of
    /// concurrent changes never interleave. Lookups take only `state`.
    change: Mutex<()>,
    hashing: PasswordHashing,
    /// A hash verified against when the user does not exist, so that a login for an unknown
    /// name takes as long as one with a wrong password.
    decoy_hash: OnceLock<String>,
    /// Raised after every change of a user (create, password, role, drop), so caches of
    /// verified credentials can tell when theirs may be stale (`auth/basic_cache.rs`).
    credentials_generation: AtomicU64,
    /// Raised after every change of a user or a grant, so open streams (WebSocket
    /// subscriptions, QUIC tails) re-check at once whether their user may still read.
    access_changes: watch::Sender<u64>,
}

impl UserDirectory {
    /// Open the directory in `store`, replaying every record of its partition.
    pub fn open(store: &Store, hashing: PasswordHashing) -> Result<UserDirectory, UserError> {
        let id = PartitionId::new(USERS_PARTITION)?;
        let partition = store.partition(&id)?;
        let mut state = DirectoryState::default();
        let snapshot = partition.snapshot();
        for record in snapshot.records(ReadFrom::Earliest) {
            let record = record?;
            let tombstone = record.flags.is_tombstone();
            state.apply(record.seq.0, record.key, record.payload, tombstone)?;
        }
        tracing::debug!(users = state.users.len(), "user directory replayed");
        let replayed_through = Mutex::new(snapshot.last_seq());
        drop(snapshot);
        Ok(UserDirectory {
            partition,
            partition_id: id,
            replication: OnceLock::new(),
            replayed_through,
            state: RwLock::new(state),
            change: Mutex::new(()),
            hashing,
            decoy_hash: OnceLock::new(),
            credentials_generation: AtomicU64::new(0),
            access_changes: watch::Sender::new(0),
        })
    }

    /// On a directory without users, create `admin` (role `system`) with `password`, or with
    /// a generated one that the caller must show once. `clustered`: on a cluster member,
    /// where it is created at a fixed `_seq` (`replicated.rs`), and only on a directory
    /// with no records at all.
    pub fn bootstrap_admin(
        &self,
        password: Option<&str>,
        clustered: bool,
    ) -> Result<AdminBootstrap, UserError> {
        if !self.read().users.is_empty() {
            return Ok(AdminBootstrap::AlreadyInitialized);
        }
        if clustered && self.partition.last_seq() != Seq::ZERO {
            // Every user was dropped through the cluster: that is the cluster's state.
            return Ok(AdminBootstrap::AlreadyInitialized);
        }
        let admin = user_name(ADMIN_USER)?;
        let (generated, password) = match password {
            Some(password) => (None, password.to_string()),
            None => {
                let generated = generate_password(GENERATED_PASSWORD_CHARS)?;
                (Some(generated.clone()), generated)
            }
        };
        match clustered {
            true => self.bootstrap_admin_at_first_seq(&admin, &password)?,
            false => drop(self.create_user(&admin, &password, Role::System)?),
        }
        Ok(match generated {
            Some(generated) => AdminBootstrap::CreatedWithGeneratedPassword(generated),
            None => AdminBootstrap::CreatedWithGivenPassword,
        })
    }

    /// `CREATE USER`: fails with `AlreadyExists` if the name is taken.
    pub fn create_user(
        &self,
        name: &UserName,
        password: &str,
        role: Role,
    ) -> Result<User, UserError> {
        check_new_user_name(name)?;
        let password_hash = self.hashing.hash(password)?;
        let change = self.lock_change()?;
        let refused = {
            let state = self.read();
            if state.users.contains_key(name) {
                Some(UserError::AlreadyExists(name.clone()))
            } else if state.users.len() >= USERS_MAX {
                let (what, max) = ("users", USERS_MAX);
                Some(UserError::TooMany { what, max })
            } else {
                None
            }
        };
        // Not under the state's lock: applying entries takes it, and the confirmation waits
        // for this node to apply what it committed.
        if let Some(refused) = refused {
            return self.unchanged(&change, Err(refused));
        }
        let stored = StoredUser {
            role,
            password_hash,
            created_unix_ms: now_unix_ms(),
            // Replaced by the `_seq` the record gets, as a replay will find it.
            incarnation: UserIncarnation(0),
            rows: RowsLayout::ByIncarnation,
        };
        let created = self.write_user(&change, name, stored, true)?;
        self.read()
            .user(name)
            .filter(|user| user.incarnation == UserIncarnation(created.0))
            .ok_or_else(|| UserError::NotFound(name.clone()))
    }

    /// `ALTER USER ... SET PASSWORD`.
    pub fn set_password(&self, name: &UserName, password: &str) -> Result<(), UserError> {
        let password_hash = self.hashing.hash(password)?;
        let change = self.lock_change()?;
        let mut stored = self.unchanged_if_err(&change, self.stored(name))?;
        stored.password_hash = password_hash;
        self.write_user(&change, name, stored, false).map(drop)
    }

    /// `ALTER USER ... SET ROLE`.
    pub fn set_role(&self, name: &UserName, role: Role) -> Result<(), UserError> {
        let change = self.lock_change()?;
        let mut stored = self.unchanged_if_err(&change, self.stored(name))?;
        stored.role = role;
        self.write_user(&change, name, stored, false).map(drop)
    }

    /// `DROP USER [IF EXISTS]`: removes the user and every grant it holds. Returns whether a
    /// user was dropped; a missing user is an error unless `if_exists`.
    pub fn drop_user(&self, name: &UserName, if_exists: bool) -> Result<bool, UserError> {
        let change = self.lock_change()?;
        if !self.read().users.contains_key(name) {
            let answer = match if_exists {
                true => Ok(false),
                false => Err(UserError::NotFound(name.clone())),
            };
            return self.unchanged(&change, answer);
        }
        let tables: Vec<TableName> = self
            .read()
            .grants
            .get(name)
            .map(|tables| tables.keys().cloned().collect())
            .unwrap_or_default();
        // Grants go first in the batch: if a torn tail keeps only a prefix of it, the user
        // may survive without its grants, never a grant without its user.
        let mut keys: Vec<Vec<u8>> = tables
            .iter()
            .map(|table| DirectoryKey::Grant(name.clone(), table.clone()).encode())
            .collect();
        keys.push(DirectoryKey::User(name.clone()).encode());
        let records: Vec<NewRecord<'_>> = keys.iter().map(|k| NewRecord::tombstone(k)).collect();
        self.append(&change, &records)?;
        let mut state = self.write();
        state.users.remove(name);
        state.grants.remove(name);
        drop(state);
        self.credentials_generation.fetch_add(1, Ordering::AcqRel);
        self.access_changed();
        Ok(true)
    }

    /// The user named `name` if `password` is theirs. Takes about one argon2 verification
    /// whether or not the user exists.
    pub fn verify_password(&self, name: &str, password: &str) -> Option<User> {
        let found = UserName::new(name).ok().and_then(|name| {
            let state = self.read();
            let stored = state.users.get(&name)?;
            Some((state.user(&name)?, stored.password_hash.clone()))
        });
        match found {
            Some((user, hash)) => self.hashing.verify(password, &hash).then_some(user),
            None => {
                let decoy = self.decoy_hash.get_or_init(|| {
                    let password = generate_password(GENERATED_PASSWORD_CHARS);
                    password
                        .and_then(|p| self.hashing.hash(&p))
                        .unwrap_or_default()
                });
                let _ = self.hashing.verify(password, decoy);
                None
            }
        }
    }

    /// The user named `name`, if it exists.
    pub fn user(&self, name: &str) -> Option<User> {
        let name = UserName::new(name).ok()?;
        self.read().user(&name)
    }

    /// Every user, ordered by name.
    pub fn list_users(&self) -> Vec<User> {
        let state = self.read();
        state
            .users
            .keys()
            .filter_map(|name| state.user(name))
            .collect()
    }

    /// `GRANT privileges ON table TO user`; granting what is already held changes nothing.
    pub fn grant(
        &self,
        name: &UserName,
        table: &TableName,
        privileges: &[Privilege],
    ) -> Result<(), UserError> {
        self.change_grant(name, table, |set| set.with(privileges))
    }

    /// `REVOKE privileges ON table FROM user`; revoking what is not held changes nothing.
    pub fn revoke(
        &self,
        name: &UserName,
        table: &TableName,
        privileges: &[Privilege],
    ) -> Result<(), UserError> {
        self.change_grant(name, table, |set| set.without(privileges))
    }

    /// Whether `name` may use `privilege` on `table`: administrators (`dba`, `system`) always
    /// may; others need a grant. Rights to one's own rows of USER tables are the engine's rule.
    pub fn has_privilege(&self, name: &UserName, table: &TableName, privilege: Privilege) -> bool {
        let state = self.read();
        match state.users.get(name) {
            Some(stored) if is_admin(stored.role) => true,
            Some(_) => state
                .grants
                .get(name)
                .and_then(|tables| tables.get(table))
                .is_some_and(|set| set.contains(privilege)),
            None => false,
        }
    }

    /// Whether the user `name` of `incarnation` (as authenticated when a stream opened) may
    /// still read: it must exist as that incarnation, and for `object` (a SHARED table or a
    /// topic; `None` for the user's own rows) be an administrator or hold `privilege` on it.
    pub fn standing(
        &self,
        name: &UserName,
        incarnation: UserIncarnation,
        object: Option<&TableName>,
        privilege: Privilege,
    ) -> Standing {
        let state = self.read();
        let Some(stored) = state.users.get(name) else {
            return Standing::Dropped;
        };
        if stored.incarnation != incarnation {
            return Standing::Dropped;
        }
        let Some(object) = object else {
            return Standing::Allowed;
        };
        let granted = state
            .grants
            .get(name)
            .and_then(|tables| tables.get(object))
            .is_some_and(|set| set.contains(privilege));
        match is_admin(stored.role) || granted {
            true => Standing::Allowed,
            false => Standing::Revoked,
        }
    }

    /// Changes after every CREATE/ALTER/DROP USER, GRANT and REVOKE: a stream that saw a
    /// change re-checks its [`UserDirectory::standing`].
    pub fn access_changes(&self) -> watch::Receiver<u64> {
        self.access_changes.subscribe()
    }

    fn access_changed(&self) {
        self.access_changes
            .send_modify(|generation| *generation += 1);
    }

    /// The grants `name` holds, by table.
    pub fn grants_of(&self, name: &UserName) -> BTreeMap<TableName, Vec<Privilege>> {
        let state = self.read();
        let Some(tables) = state.grants.get(name) else {
            return BTreeMap::new();
        };
        tables
            .iter()
            .map(|(t, set)| (t.clone(), set.to_vec()))
            .collect()
    }

    fn change_grant(
        &self,
        name: &UserName,
        table: &TableName,
        change: impl Fn(PrivilegeSet) -> PrivilegeSet,
    ) -> Result<(), UserError> {
        let lock = self.lock_change()?;
        if !self.read().users.contains_key(name) {
            return self.unchanged(&lock, Err(UserError::NotFound(name.clone())));
        }
        let (before, held) = {
            let state = self.read();
            let tables = state.grants.get(name);
            let before = tables
                .and_then(|t| t.get(table))
                .copied()
                .unwrap_or_default();
            (before, tables.map_or(0, BTreeMap::len))
        };
        let after = change(before);
        if after == before {
            return self.unchanged(&lock, Ok(()));
        }
        if before.is_empty() && held >= GRANTS_PER_USER_MAX {
            let (what, max) = ("grants for one user", GRANTS_PER_USER_MAX);
            return self.unchanged(&lock, Err(UserError::TooMany { what, max }));
        }
        let key = DirectoryKey::Grant(name.clone(), table.clone()).encode();
        let payload = encode_grant(after);
        let record = match after.is_empty() {
            true => NewRecord::tombstone(&key),
            false => NewRecord::new(&key, &payload),
        };
        self.append(&lock, &[record])?;
        self.write().set_grant(name, table.clone(), after);
        self.access_changed();
        Ok(())
    }

    fn stored(&self, name: &UserName) -> Result<StoredUser, UserError> {
        let state = self.read();
        state
            .users
            .get(name)
            .cloned()
            .ok_or_else(|| UserError::NotFound(name.clone()))
    }

    /// Append the whole record of `name`, then make it visible; returns the record's `_seq`
    /// (a new user's incarnation when `creates`). Caller holds `change`.
    fn write_user(
        &self,
        change: &ChangeLock<'_>,
        name: &UserName,
        mut stored: StoredUser,
        creates: bool,
    ) -> Result<Seq, UserError> {
        let key = DirectoryKey::User(name.clone()).encode();
        let payload = encode_user(&stored);
        let written = self.append(change, &[NewRecord::new(&key, &payload)])?;
        if creates {
            stored.incarnation = UserIncarnation(written.first.0);
        }
        self.write().users.insert(name.clone(), stored);
        self.credentials_generation.fetch_add(1, Ordering::AcqRel);
        self.access_changed();
        Ok(written.first)
    }

    /// Changes with every CREATE, ALTER and DROP USER. Read it before verifying credentials:
    /// a verification is current while the generation has not moved since.
    pub fn credentials_generation(&self) -> u64 {
        self.credentials_generation.load(Ordering::Acquire)
    }

    fn partition_id(&self) -> &PartitionId {
        &self.partition_id
    }

    fn read(&self) -> parking_lot::RwLockReadGuard<'_, DirectoryState> {
        self.state.read()
    }

    fn write(&self) -> parking_lot::RwLockWriteGuard<'_, DirectoryState> {
        self.state.write()
    }
}

fn now_unix_ms() -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
