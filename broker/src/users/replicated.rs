//! The user directory on a cluster member: a change (CREATE/ALTER/DROP USER, GRANT, REVOKE)
//! is replicated through the meta group ([`BlockingWriter`]) as records of `system/users`,
//! which every member appends at the same `_seq`s, so a user's incarnation (the `_seq` of the
//! record that created it, and part of its rows' partition names) is the same everywhere. Each
//! member then reads the records it has not applied into memory ([`UserDirectory::catch_up`]).
//!
//! The first administrator is not replicated: every member creates it at start, at the same
//! `_seq` ([`BOOTSTRAP_SEQ`], below any `_seq` a node issues), so it exists on each member
//! before any election, with the same incarnation. Its password is the one each member was
//! started with (give every member the same `STRAND_ADMIN_PASSWORD`); the first ALTER USER
//! replicates a new one to all.

use std::sync::atomic::Ordering;

use strand_log::{NewRecord, PartitionId, ReadFrom, ReplicatedRecord, Seq, SeqRange};
use strand_sql_view::{Role, UserName};

use super::record::{encode_user, DirectoryKey, StoredUser};
use super::{now_unix_ms, UserDirectory, UserError, USERS_PARTITION};
use crate::cluster::writer::BlockingWriter;
use crate::users::{RowsLayout, UserIncarnation};

/// The `_seq` of the first administrator's record on a cluster member: a Snowflake `_seq` is
/// far above it, so every replicated record comes after.
pub const BOOTSTRAP_SEQ: Seq = Seq(1);

impl UserDirectory {
    /// From now on, changes are replicated through `writer` (a cluster member).
    pub fn replicate_through(&self, writer: BlockingWriter) {
        let _ = self.replication.set(writer);
    }

    /// Whether `id` is the directory's partition.
    pub fn is_users_partition(id: &PartitionId) -> bool {
        id.as_str() == USERS_PARTITION
    }

    /// Applies the records appended since the directory last read its partition (records a
    /// cluster member applied from its Raft group), and tells credential caches and open
    /// streams if anything changed.
    pub fn catch_up(&self) -> Result<(), UserError> {
        let mut through = self.replayed_through.lock();
        let snapshot = self.partition.snapshot();
        if snapshot.last_seq() <= *through {
            return Ok(());
        }
        {
            let mut state = self.write();
            for record in snapshot.records(ReadFrom::After(*through)) {
                let record = record?;
                let tombstone = record.flags.is_tombstone();
                state.apply(record.seq.0, record.key, record.payload, tombstone)?;
                *through = record.seq;
            }
        }
        self.credentials_generation.fetch_add(1, Ordering::AcqRel);
        self.access_changed();
        Ok(())
    }

    /// Appends a change's records: through the cluster on a member, else to the local log.
    pub(super) fn append(&self, records: &[NewRecord<'_>]) -> Result<SeqRange, UserError> {
        match self.replication.get() {
            Some(writer) => Ok(writer.append(self.partition_id(), records)?),
            None => Ok(self.partition.append(records)?),
        }
    }

    /// On a cluster member, waits until this node leads and has applied every earlier
    /// change, so the checks a change makes read the newest directory. Call before taking
    /// the change lock's checks.
    pub(super) fn ready_to_change(&self) -> Result<(), UserError> {
        if let Some(writer) = self.replication.get() {
            writer.ready_to_lead()?;
            self.catch_up()?;
        }
        Ok(())
    }

    /// [`UserDirectory::bootstrap_admin`] on a cluster member: `admin` at [`BOOTSTRAP_SEQ`]
    /// on a directory that has nothing yet (module doc).
    pub(super) fn bootstrap_admin_at_first_seq(
        &self,
        admin: &UserName,
        password: &str,
    ) -> Result<(), UserError> {
        let stored = StoredUser {
            role: Role::System,
            password_hash: self.hashing.hash(password)?,
            created_unix_ms: now_unix_ms(),
            incarnation: UserIncarnation(BOOTSTRAP_SEQ.0),
            rows: RowsLayout::ByIncarnation,
        };
        let key = DirectoryKey::User(admin.clone()).encode();
        let payload = encode_user(&stored);
        let record = ReplicatedRecord {
            seq: BOOTSTRAP_SEQ,
            timestamp_unix_ms: stored.created_unix_ms,
            record: NewRecord::new(&key, &payload),
        };
        self.partition.append_replicated(&[record])?;
        self.catch_up()
    }
}
